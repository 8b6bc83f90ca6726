"""Lesson 14's checks: a LoRA layer (forward, backward, merge, unmerge, init) vs PEFT and finite differences.

References (reference/layer.npz) come from PEFT 0.21 wrapping one transformers Conv1D (12 -> 7) with an
adapter of rank 3 and lora_alpha 6 (scale 2), fan_in_fan_out=True, A and B set to seeded non-zero values,
and autograd for a random upstream gradient: out, dx, dlora_A, dlora_B, and merge_and_unload()'s weight.
reference/peft_init.npz holds one adapter as PEFT initialises it (r 4 on a 12 -> 36 layer).

Tolerances (stated once, used below):
  float64: rtol 1e-10, atol 1e-12. Each entry is a sum of at most 12 + 3 products; NumPy and torch add them
           in another order and differ by ~1e-16 relative (measured: 0.0 here). atol covers entries that
           cancel to ~0.
  float32: only the dtype is checked (float32 in -> float32 out); the values are float64's concern.
  finite differences: relative error < 1e-7 (central differences, h = 1e-5, float64), with and without
           dropout (the same mask on every evaluation: a fresh generator with one seed).
  init: A within ±1/sqrt(Cin); on a (768, 64) draw the variance within 3 % of the uniform law's bound²/3.

The whole model with adapters on every layer is checked against PEFT in tests/test_lora.py.
"""

from __future__ import annotations

import numpy as np

from minigpt.course.gradcheck import check_layer
from minigpt.course.grader import Step, load_reference

IMPL = "minigpt.layers.lora"

F64 = {"rtol": 1e-10, "atol": 1e-12}
FD_LIMIT = 1e-7


def _args(ref: dict) -> tuple:
    return ref["x"], ref["weight"], ref["bias"], ref["lora_A"], ref["lora_B"], float(ref["scale"])


def _forward(impl, g) -> None:
    ref = load_reference(__file__, "layer.npz")
    x, w, b, A, B, s = _args(ref)
    with g.case("step 1, lora_forward float64 vs PEFT"):
        out, _ = impl.lora_forward(x, w, b, A, B, s)
        g.close("out", out, ref["out"], dtype=np.float64, **F64)
    with g.case("step 1, B = 0 computes the frozen layer exactly"):
        out, _ = impl.lora_forward(x, w, b, A, np.zeros_like(B), s)
        g.equal("out == x @ W + b", np.asarray(out), x @ w + b)
    with g.case("step 1, the scale multiplies the update only"):
        out1, _ = impl.lora_forward(x, w, b, A, B, 1.0)
        out2, _ = impl.lora_forward(x, w, b, A, B, 2.0)
        frozen = x @ w + b
        g.close("(out at scale 2) - frozen = 2 x ((out at scale 1) - frozen)", np.asarray(out2) - frozen,
                2 * (np.asarray(out1) - frozen), **F64)
    with g.case("step 1, float32 in -> float32 out"):
        f = np.float32
        out, _ = impl.lora_forward(x.astype(f), w.astype(f), b.astype(f), A.astype(f), B.astype(f),
                                   np.float64(s))
        g.true("dtype float32 (a NumPy float64 scale must not promote)", np.asarray(out).dtype == f,
               f"got {np.asarray(out).dtype}")
    with g.raises("step 1, PEFT's (r, in) lora_A layout is refused", ValueError):
        impl.lora_forward(x, w, b, A.T.copy(), B, s)
    with g.case("step 1, dropout is the adapter's only"):
        out, _ = impl.lora_forward(x, w, b, A, np.zeros_like(B), s, 0.5, np.random.default_rng(0), True)
        g.equal("B = 0 with dropout 0.5: still x @ W + b", np.asarray(out), x @ w + b)
        out, _ = impl.lora_forward(x, w, b, A, B, s, 0.5, None, False)
        g.close("eval mode: no dropout", out, ref["out"], **F64)


def _backward(impl, g) -> None:
    ref = load_reference(__file__, "layer.npz")
    x, w, b, A, B, s = _args(ref)
    with g.case("step 2, lora_backward float64 vs PEFT"):
        _, cache = impl.lora_forward(x, w, b, A, B, s)
        grads = impl.lora_backward(ref["dout"], cache)
        g.equal("three gradients: dx, dlora_A, dlora_B (none for the frozen W, b)", len(grads), 3)
        dx, dA, dB = grads
        g.close("dx", dx, ref["dx"], dtype=np.float64, **F64)
        g.close("dlora_A", dA, ref["dlora_A"], dtype=np.float64, **F64)
        g.close("dlora_B", dB, ref["dlora_B"], dtype=np.float64, **F64)
    with g.case("step 2, B = 0: A gets no gradient, B does"):
        _, cache = impl.lora_forward(x, w, b, A, np.zeros_like(B), s)
        _, dA, dB = impl.lora_backward(ref["dout"], cache)
        g.close("dlora_A", dA, np.zeros_like(A), rtol=0, atol=0)
        g.true("dlora_B is not zero", bool(np.any(np.asarray(dB) != 0)))
    for p in (0.0, 0.3):
        with g.case(f"step 2, finite differences, dropout {p}"):
            def forward(x, A, B, p=p):
                return impl.lora_forward(x, w, b, A, B, s, p, np.random.default_rng(5), True)

            errors = check_layer(forward, impl.lora_backward, [x.copy(), A.copy(), B.copy()])
            detail = ", ".join(f"{n} {e:.1e}" for n, e in
                               zip(("dx", "dA", "dB"), errors.values(), strict=True))
            g.below("relative error", max(errors.values()), FD_LIMIT, detail)


def _merge(impl, g) -> None:
    ref = load_reference(__file__, "layer.npz")
    x, w, b, A, B, s = _args(ref)
    with g.case("step 3, lora_merge vs PEFT's merge_and_unload"):
        before = w.copy()
        merged = impl.lora_merge(w, A, B, s)
        g.close("merged weight", merged, ref["merged"], dtype=np.float64, **F64)
        g.equal("the base weight is unchanged (a new array, not in place)", w, before)
        g.close("x @ merged + b equals the adapted layer", x @ np.asarray(merged) + b, ref["out"], **F64)
    with g.case("step 3, lora_unmerge undoes lora_merge"):
        merged = impl.lora_merge(w, A, B, s)
        g.close("unmerge(merge(W)) == W", impl.lora_unmerge(merged, A, B, s), w, **F64)


def _init(impl, g) -> None:
    ref = load_reference(__file__, "peft_init.npz")
    with g.case("step 4, lora_init: shapes, B zero, A in PEFT's range"):
        A, B = impl.lora_init(12, 36, 4, np.random.default_rng(0), np.float64)
        g.equal("lora_A shape (in, r)", np.shape(A), ref["lora_A"].shape)
        g.equal("lora_B shape (r, out)", np.shape(B), ref["lora_B"].shape)
        g.equal("lora_B is zero (so training starts from the base model)", np.asarray(B), ref["lora_B"])
        bound = float(np.abs(ref["lora_A"]).max())
        g.true("A stays within ±1/sqrt(in) (PEFT's draw reaches "
               f"{bound:.3f} of {1 / np.sqrt(12):.3f})", float(np.abs(A).max()) <= 1 / np.sqrt(12),
               f"your max |A| {float(np.abs(A).max()):.3f}")
    with g.case("step 4, lora_init: the law (768 -> 2304, r 64)"):
        A, B = impl.lora_init(768, 2304, 64, np.random.default_rng(1))
        A = np.asarray(A)
        g.true("float32 by default", A.dtype == np.float32 and np.asarray(B).dtype == np.float32,
               f"got {A.dtype}, {np.asarray(B).dtype}")
        ratio = float(A.var() / (1 / 768 / 3))
        g.true("variance / (1/(3 x 768)) within 3 % of 1 (uniform in ±1/sqrt(768))", abs(ratio - 1) < 0.03,
               f"ratio {ratio:.3f}")
    with g.raises("step 4, rank 0 is refused", ValueError):
        impl.lora_init(12, 36, 0, np.random.default_rng(0))


STEPS = [
    Step(1, "the adapted layer's forward", ("lora_forward",), _forward),
    Step(2, "its backward: dx, dA, dB", ("lora_backward",), _backward),
    Step(3, "merge the adapter into the weight, and back", ("lora_merge", "lora_unmerge"), _merge),
    Step(4, "PEFT's initialisation", ("lora_init",), _init),
]
