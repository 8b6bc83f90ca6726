"""Write lessons/04_attention/reference/ with PyTorch autograd, never with minigpt.

Four float64 cases and two float32 ones, every dimension distinct (B=2, T=5, C=12, H=3, D=4):

    sdpa          q, k, v (B, H, T, D) -> F.scaled_dot_product_attention(is_causal=True): y, dq, dk, dv
    sdpa_offset   q (B, H, Tq=2, D), k, v (B, H, Tk=5, D), the KV-cache case. torch's is_causal aligns the
                  mask top-left (query i sees keys 0..i), which is wrong here; we pass an explicit boolean
                  mask aligned bottom-right (query i sees keys 0..Tk-Tq+i), and record what is_causal gives.
    sdpa_large    scores q.k of about +-1e4 before the 1/sqrt(D) scale: softmax must not overflow
    layer         the full layer: c_attn (Conv1D, weight (C, 3C)), split q|k|v, heads, SDPA, merge, c_proj:
                  out and the gradients of x and all four parameters
    *_f32         sdpa and layer again in float32 (inputs: the float64 ones rounded to float32)

For each case a random upstream gradient (dy or dout) is stored with the inputs, so the gradients are
those of sum(output * upstream). Versions, seed and shapes go to reference/meta.json.

Not here: dropout (its random mask cannot match torch's), checked numerically by check.py instead.

Run: python lessons/04_attention/make_reference.py   (needs torch==2.13.0, CPU is enough)
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SEED = 1234
B, T, C, H = 2, 5, 12, 3
D = C // H
TQ = 2                                       # queries in the KV-cache case (the last TQ positions)
OUT = Path(__file__).resolve().parent / "reference"


def sdpa_case(q, k, v, dy, mask=None, is_causal=True):
    """Forward and backward of torch's SDPA; returns numpy arrays y, dq, dk, dv."""
    q, k, v = (torch.tensor(a, requires_grad=True) for a in (q, k, v))
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
    y.backward(torch.tensor(dy))
    return y.detach().numpy(), q.grad.numpy(), k.grad.numpy(), v.grad.numpy()


def layer_torch(x, w_attn, b_attn, w_proj, b_proj, n_head):
    """GPT-2's attention sub-layer in torch: Conv1D weights are (in, out), so x @ w + b."""
    Bx, Tx, Cx = x.shape
    qkv = x @ w_attn + b_attn                                    # (B, T, 3C)
    q, k, v = qkv.split(Cx, dim=-1)                              # 3 x (B, T, C), q first
    heads = [a.view(Bx, Tx, n_head, Cx // n_head).transpose(1, 2) for a in (q, k, v)]  # (B, H, T, D)
    y = F.scaled_dot_product_attention(*heads, is_causal=True)   # (B, H, T, D)
    y = y.transpose(1, 2).reshape(Bx, Tx, Cx)                    # (B, T, C)
    return y @ w_proj + b_proj                                   # (B, T, C)


def layer_case(x, w_attn, b_attn, w_proj, b_proj, dout):
    ts = [torch.tensor(a, requires_grad=True) for a in (x, w_attn, b_attn, w_proj, b_proj)]
    out = layer_torch(*ts, n_head=H)
    out.backward(torch.tensor(dout))
    return out.detach().numpy(), *(t.grad.numpy() for t in ts)


def main() -> None:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    OUT.mkdir(exist_ok=True)
    arrays: dict[str, np.ndarray] = {}

    # sdpa, causal, Tq == Tk
    q, k, v, dy = (rng.standard_normal((B, H, T, D)) for _ in range(4))
    y, dq, dk, dv = sdpa_case(q, k, v, dy)
    arrays.update(sdpa_q=q, sdpa_k=k, sdpa_v=v, sdpa_dy=dy, sdpa_y=y, sdpa_dq=dq, sdpa_dk=dk, sdpa_dv=dv)

    # sdpa with a KV cache: 2 queries (positions 3 and 4) against 5 keys
    qo = rng.standard_normal((B, H, TQ, D))
    ko, vo = (rng.standard_normal((B, H, T, D)) for _ in range(2))
    dyo = rng.standard_normal((B, H, TQ, D))
    allowed = torch.ones(TQ, T, dtype=torch.bool).tril(diagonal=T - TQ)   # True = may attend (torch's rule)
    y, dq, dk, dv = sdpa_case(qo, ko, vo, dyo, mask=allowed, is_causal=False)
    y_topleft = sdpa_case(qo, ko, vo, dyo, is_causal=True)[0]   # what is_causal=True would give
    arrays.update(offset_q=qo, offset_k=ko, offset_v=vo, offset_dy=dyo, offset_y=y, offset_dq=dq,
                  offset_dk=dk, offset_dv=dv, offset_y_is_causal_topleft=y_topleft)

    # large scores: entries ~ N(0, 35^2) give |q.k| of thousands, up to ~1e4
    ql, kl = (35.0 * rng.standard_normal((B, H, T, D)) for _ in range(2))
    vl, dyl = (rng.standard_normal((B, H, T, D)) for _ in range(2))
    y, dq, dk, dv = sdpa_case(ql, kl, vl, dyl)
    arrays.update(large_q=ql, large_k=kl, large_v=vl, large_dy=dyl, large_y=y, large_dq=dq, large_dk=dk,
                  large_dv=dv)
    max_score = float(np.abs(ql @ kl.swapaxes(-1, -2)).max())

    # the full layer, GPT-2's init scale 0.02 is too small to make attention interesting: use 0.3
    x = rng.standard_normal((B, T, C))
    w_attn, w_proj = 0.3 * rng.standard_normal((C, 3 * C)), 0.3 * rng.standard_normal((C, C))
    b_attn, b_proj = 0.1 * rng.standard_normal(3 * C), 0.1 * rng.standard_normal(C)
    dout = rng.standard_normal((B, T, C))
    out, dx, dwa, dba, dwp, dbp = layer_case(x, w_attn, b_attn, w_proj, b_proj, dout)
    arrays.update(layer_x=x, layer_c_attn_weight=w_attn, layer_c_attn_bias=b_attn, layer_c_proj_weight=w_proj,
                  layer_c_proj_bias=b_proj, layer_dout=dout, layer_out=out, layer_dx=dx,
                  layer_dc_attn_weight=dwa, layer_dc_attn_bias=dba, layer_dc_proj_weight=dwp,
                  layer_dc_proj_bias=dbp)

    # float32: the same inputs rounded to float32, torch computing in float32
    f32 = np.float32
    y, dq, dk, dv = sdpa_case(q.astype(f32), k.astype(f32), v.astype(f32), dy.astype(f32))
    arrays.update(sdpa_f32_y=y, sdpa_f32_dq=dq, sdpa_f32_dk=dk, sdpa_f32_dv=dv)
    res = layer_case(*(a.astype(f32) for a in (x, w_attn, b_attn, w_proj, b_proj, dout)))
    for name, a in zip(("out", "dx", "dc_attn_weight", "dc_attn_bias", "dc_proj_weight", "dc_proj_bias"),
                       res, strict=True):
        arrays[f"layer_f32_{name}"] = a

    np.savez_compressed(OUT / "attention.npz", **arrays)
    meta = {
        "generator": "lessons/04_attention/make_reference.py",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "seed": SEED,
        "rng": "numpy.random.default_rng(seed), inputs drawn in the order written in make_reference.py",
        "shapes": {"B": B, "T": T, "C": C, "H": H, "D": D, "Tq_offset_case": TQ},
        "sdpa": "torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True), default scale "
                "1/sqrt(D)",
        "offset_mask": "explicit boolean attn_mask = ones(Tq, Tk).tril(Tk - Tq) (True = may attend), "
                       "bottom-right aligned like a KV cache; is_causal=True aligns top-left instead "
                       "(query i sees keys 0..i), stored as offset_y_is_causal_topleft for comparison",
        "large_max_abs_score_before_scale": max_score,
        "layer": "x @ c_attn_weight + c_attn_bias, split q|k|v, (B, H, T, D) heads, SDPA is_causal, "
                 "merge, @ c_proj_weight + c_proj_bias; weights in GPT-2's Conv1D (in, out) layout",
        "gradients": "of sum(output * upstream) with the stored upstream arrays (sdpa_dy, layer_dout, ...)",
        "float32": "inputs are the float64 ones cast to float32; torch computes in float32",
        "dtypes": {k: str(a.dtype) for k, a in sorted(arrays.items())},
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {len(arrays)} arrays to {OUT / 'attention.npz'}; largest |q.k| = {max_score:.4g}")


if __name__ == "__main__":
    main()
