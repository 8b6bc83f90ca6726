"""Lesson 04's checks: causal self-attention (sdpa and the full layer), forward and backward.

Graded against PyTorch's references (reference/attention.npz, written by make_reference.py), against
finite differences, and against properties any correct attention has. Tolerances:

    float64 vs torch   rtol 1e-10, atol 1e-12: both sides round at ~1e-16 per operation, and a few dozen
                       operations per output keep the difference near 1e-15; atol covers entries that are
                       (close to) zero, where a relative test means nothing.
    float32 vs torch   rtol 1e-4, atol 1e-5: float32 has ~7 digits (eps 1.2e-7); different summation orders
                       in the matmuls leave differences of a few 1e-7 on values of order 1-10.
    large scores       the softmax is saturated: the true dq, dk are below 1e-40, and what torch stores
                       (~1e-14) is rounding noise of dp - sum(dp * p) with p = 1, so those two use atol 1e-12.
    finite differences relative error < 1e-7 (minigpt.course.gradcheck, central differences, h = 1e-5,
    float64).

Not here: speed (benchmarks/) and the KV cache's bookkeeping (a later lesson).
"""

from __future__ import annotations

import numpy as np

from minigpt.course.gradcheck import check_layer
from minigpt.course.grader import Step, load_reference

IMPL = "minigpt.layers.attention"

RTOL64, ATOL64 = 1e-10, 1e-12
RTOL32, ATOL32 = 1e-4, 1e-5
FD_MAX = 1e-7
LAYER_ARGS = ("x", "c_attn_weight", "c_attn_bias", "c_proj_weight", "c_proj_bias")
LAYER_GRADS = ("dx", "dc_attn_weight", "dc_attn_bias", "dc_proj_weight", "dc_proj_bias")
H = 3


def _layer(ref, dtype=np.float64) -> list[np.ndarray]:
    return [ref[f"layer_{n}"].astype(dtype) for n in LAYER_ARGS]


SDPA_CASES = (("sdpa", "float64, causal, B=2 H=3 T=5 D=4", ("scale", "mask_after")),
              ("offset", "float64, KV cache: 2 queries, 5 keys (bottom-right causal mask)", "mask_offset"),
              ("large", "float64, scores up to |q.k| ~ 1e4 before the scale", "stable"))


def _causal_mask(impl, g) -> None:
    for Tq, Tk in ((5, 5), (2, 5), (1, 4), (3, 6)):
        with g.case(f"causal_mask({Tq}, {Tk})", pitfall="mask_offset" if Tq < Tk else None):
            m = np.asarray(impl.causal_mask(Tq, Tk))
            visible = np.arange(Tk - Tq + 1, Tk + 1)                      # query i sees Tk - Tq + i + 1 keys
            g.equal("shape", m.shape, (Tq, Tk))
            g.equal("keys each query may see (False entries per row)", (~m).sum(axis=1), visible)
            g.equal("the visible keys come first in every row", m, np.cumsum(m, axis=1) > 0)


def _sdpa_forward(impl, g) -> None:
    ref = load_reference(__file__, "attention.npz")
    for prefix, title, pitfall in SDPA_CASES:
        with g.case(f"sdpa_forward {title}", pitfall=pitfall):
            y, _ = impl.sdpa_forward(*(ref[f"{prefix}_{n}"] for n in ("q", "k", "v")))
            g.close("y", y, ref[f"{prefix}_y"], rtol=RTOL64, atol=ATOL64, dtype=np.float64)
    with g.case("sdpa_forward float32"):
        y, _ = impl.sdpa_forward(*(ref[f"sdpa_{n}"].astype(np.float32) for n in ("q", "k", "v")))
        g.close("y", y, ref["sdpa_f32_y"], rtol=RTOL32, atol=ATOL32, dtype=np.float32)
    rng = np.random.default_rng(4)
    with g.case("T=1: a single position attends only to itself"):
        q, k, v = (rng.standard_normal((2, 3, 1, 4)) for _ in range(3))
        y, _ = impl.sdpa_forward(q, k, v)
        g.close("y == v (the one weight is 1)", y, v, rtol=1e-12, atol=1e-14)
    with g.case("weights sum to 1 over the keys: v = 1 gives y = 1", pitfall=("axis", "mask_after")):
        q, k = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 7, 4))
        y, _ = impl.sdpa_forward(q, k, np.ones((2, 3, 7, 4)))
        g.close("y", y, np.ones((2, 3, 5, 4)), rtol=1e-12, atol=1e-14)
    with g.case("KV cache: the last 2 queries against 6 keys == the last 2 rows of the full attention",
                pitfall="mask_offset"):
        q, k, v = (rng.standard_normal((2, 3, 6, 4)) for _ in range(3))
        full, _ = impl.sdpa_forward(q, k, v)
        last, _ = impl.sdpa_forward(q[:, :, -2:], k, v)
        g.close("y", last, full[:, :, -2:], rtol=1e-12, atol=1e-14)


def _sdpa_backward(impl, g) -> None:
    ref = load_reference(__file__, "attention.npz")
    for prefix, title, _ in SDPA_CASES:
        with g.case(f"sdpa_backward {title}", pitfall="backward"):
            y, cache = impl.sdpa_forward(*(ref[f"{prefix}_{n}"] for n in ("q", "k", "v")))
            dq, dk, dv = impl.sdpa_backward(ref[f"{prefix}_dy"], cache)
            grad_atol = 1e-12 if prefix == "large" else ATOL64
            if prefix == "large":
                g.true("no NaN or inf in y, dq, dk, dv", all(np.all(np.isfinite(a)) for a in (y, dq, dk, dv)))
            g.close("dq", dq, ref[f"{prefix}_dq"], rtol=RTOL64, atol=grad_atol)
            g.close("dk", dk, ref[f"{prefix}_dk"], rtol=RTOL64, atol=grad_atol)
            g.close("dv", dv, ref[f"{prefix}_dv"], rtol=RTOL64, atol=ATOL64)
    with g.case("sdpa_backward float32", pitfall="backward"):
        q, k, v, dy = (ref[f"sdpa_{n}"].astype(np.float32) for n in ("q", "k", "v", "dy"))
        _, cache = impl.sdpa_forward(q, k, v)
        for name, got in zip(("dq", "dk", "dv"), impl.sdpa_backward(dy, cache), strict=True):
            g.close(name, got, ref[f"sdpa_f32_{name}"], rtol=RTOL32, atol=ATOL32, dtype=np.float32)
    rng = np.random.default_rng(4)
    with g.case("T=1: the softmax of one score is constant"):
        q, k, v = (rng.standard_normal((2, 3, 1, 4)) for _ in range(3))
        y, cache = impl.sdpa_forward(q, k, v)
        dy = rng.standard_normal(y.shape)
        dq, dk, dv = impl.sdpa_backward(dy, cache)
        g.close("dq == 0", dq, np.zeros_like(q), rtol=0, atol=1e-14)
        g.close("dk == 0", dk, np.zeros_like(k), rtol=0, atol=1e-14)
        g.close("dv == dy", dv, dy, rtol=1e-12, atol=1e-14)
    with g.case("finite differences, sdpa (q, k, v), Tq=3 < Tk=6", pitfall="backward"):
        q, k, v = rng.standard_normal((2, 3, 3, 4)), *(rng.standard_normal((2, 3, 6, 4)) for _ in range(2))
        errors = check_layer(impl.sdpa_forward, impl.sdpa_backward, [q, k, v])
        for name, err in zip(("dq", "dk", "dv"), errors.values(), strict=True):
            g.below(f"{name} relative error", err, FD_MAX)


def _heads(impl, g) -> None:
    x = np.random.default_rng(5).standard_normal((2, 5, 12))             # (B, T, C), C = H * D = 3 * 4
    with g.case("split_heads (2, 5, 12) into 3 heads", pitfall="heads"):
        heads = np.asarray(impl.split_heads(x, H))
        g.equal("shape (B, H, T, D)", heads.shape, (2, 3, 5, 4))
        for h in range(H):
            g.close(f"head {h} holds channels {4 * h}..{4 * h + 3}", heads[:, h], x[:, :, 4 * h:4 * h + 4],
                    rtol=0, atol=0)
    with g.case("merge_heads undoes split_heads", pitfall="heads"):
        g.close("merge_heads(split_heads(x))", impl.merge_heads(impl.split_heads(x, H)), x, rtol=0, atol=0)


def _layer_step(impl, g) -> None:
    ref = load_reference(__file__, "attention.npz")
    with g.case("attention layer float64, B=2 T=5 C=12 H=3", pitfall="qkv"):
        out, cache = impl.attention_forward(*_layer(ref), n_head=H)
        g.close("out", out, ref["layer_out"], rtol=RTOL64, atol=ATOL64, dtype=np.float64)
        grads = impl.attention_backward(ref["layer_dout"], cache)
        if len(grads) != 5:
            raise ValueError(f"attention_backward returned {len(grads)} arrays; it must return 5: "
                             "dx, dc_attn_weight, dc_attn_bias, dc_proj_weight, dc_proj_bias")
        for name, got in zip(LAYER_GRADS, grads, strict=True):
            g.close(name, got, ref[f"layer_{name}"], rtol=RTOL64, atol=ATOL64)

    with g.case("attention layer float32"):
        out, cache = impl.attention_forward(*_layer(ref, np.float32), n_head=H)
        g.close("out", out, ref["layer_f32_out"], rtol=RTOL32, atol=ATOL32, dtype=np.float32)
        grads = impl.attention_backward(ref["layer_dout"].astype(np.float32), cache)
        for name, got in zip(LAYER_GRADS, grads, strict=True):
            g.close(name, got, ref[f"layer_f32_{name}"], rtol=RTOL32, atol=ATOL32, dtype=np.float32)

    with g.case("finite differences, attention layer (x and 4 parameters)"):
        errors = check_layer(impl.attention_forward, impl.attention_backward, _layer(ref),
                             kwargs={"n_head": H})
        for name, err in zip(LAYER_GRADS, errors.values(), strict=True):
            g.below(f"{name} relative error", err, FD_MAX)

    with g.case("finite differences, attention layer with attn_pdrop=0.3 (same mask every call)",
                pitfall="backward"):
        def forward(*a):  # a fresh generator per call: every forward draws the same dropout mask
            return impl.attention_forward(*a, n_head=H, attn_pdrop=0.3, rng=np.random.default_rng(7),
                                          training=True)
        errors = check_layer(forward, impl.attention_backward, _layer(ref))
        for name, err in zip(LAYER_GRADS, errors.values(), strict=True):
            g.below(f"{name} relative error", err, FD_MAX)

    rng = np.random.default_rng(4)
    with g.case("T=1: the layer's output is c_proj of the position's own value", pitfall="qkv"):
        x, wa, ba, wp, bp = _layer(ref)
        x1 = x[:, :1]                                           # (B, 1, C)
        out, _ = impl.attention_forward(x1, wa, ba, wp, bp, n_head=H)
        C = x.shape[-1]
        want = (x1 @ wa[:, 2 * C:] + ba[2 * C:]) @ wp + bp      # out = c_proj(value of itself)
        g.close("layer out == c_proj(v)", out, want, rtol=1e-12, atol=1e-14)

    with g.case("causality: changing x at positions > 2 leaves out[:, :3] unchanged"):
        x, wa, ba, wp, bp = _layer(ref)
        out, _ = impl.attention_forward(x, wa, ba, wp, bp, n_head=H)
        x2 = x.copy()
        x2[:, 3:] += 10.0 * rng.standard_normal(x2[:, 3:].shape)
        out2, _ = impl.attention_forward(x2, wa, ba, wp, bp, n_head=H)
        g.close("out[:, :3]", out2[:, :3], out[:, :3], rtol=1e-12, atol=1e-14)
        g.true("out[:, 3:] did change", not np.allclose(out2[:, 3:], out[:, 3:]))

    with g.case("dropout on the attention weights"):
        args = _layer(ref)
        out, _ = impl.attention_forward(*args, n_head=H)
        out_drop, _ = impl.attention_forward(*args, n_head=H, attn_pdrop=0.3, rng=np.random.default_rng(7),
                                             training=True)
        g.true("training=True with attn_pdrop=0.3 changes the output", not np.allclose(out_drop, out))
        out_eval, _ = impl.attention_forward(*args, n_head=H, attn_pdrop=0.5, rng=None, training=False)
        g.close("training=False ignores attn_pdrop", out_eval, out, rtol=0, atol=0)

    with g.case("bad input"):
        x, wa, ba, wp, bp = _layer(ref)
        with g.raises("n_embd=12 with n_head=5 raises ValueError", ValueError):
            impl.attention_forward(x, wa, ba, wp, bp, n_head=5)


STEPS = [
    Step(1, "the causal mask, with a KV cache's offset", ("causal_mask",), _causal_mask),
    Step(2, "scaled dot-product attention, forward", ("sdpa_forward",), _sdpa_forward),
    Step(3, "scaled dot-product attention, backward", ("sdpa_backward",), _sdpa_backward),
    Step(4, "split the channels into heads and back", ("split_heads", "merge_heads"), _heads),
    Step(5, "the whole layer, forward and backward", ("attention_forward", "attention_backward"),
         _layer_step),
]
