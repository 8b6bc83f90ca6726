"""Write lesson 03's references with PyTorch autograd: layer-norm forward and every gradient.

What it writes (reference/):
    layernorm.npz   per case: x, weight, bias, dout, eps and torch's out, dx, dweight, dbias
                    f64    float64 rows with different scales and offsets (B=2, T=5, C=12)
                    f32    the same in float32
                    t1     T = 1
                    nobias bias=None (F.layer_norm without a bias)
                    const  constant rows, rows of tiny variance (where eps matters), and a row at 1e4
                    eps    eps = 0.1 on rows of small variance: is eps inside the square root?
    meta.json       torch / numpy versions, seed, shapes

It never imports minigpt: the references must come from an independent implementation.
Run: python lessons/03_layernorm/make_reference.py   (needs torch==2.13.0, the `reference` extra)
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SEED = 303
B, T, C = 2, 5, 12
OUT = Path(__file__).resolve().parent / "reference"


def layer_norm(x, weight, bias, eps, dout) -> dict:
    """torch: out = F.layer_norm(x, (C,), weight, bias, eps); backward of sum(out * dout)."""
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(weight, requires_grad=True)
    bt = None if bias is None else torch.tensor(bias, requires_grad=True)
    out = F.layer_norm(xt, (x.shape[-1],), wt, bt, eps)                  # (B, T, C)
    out.backward(torch.tensor(dout))
    res = {"out": out.detach().numpy(), "dx": xt.grad.numpy(), "dweight": wt.grad.numpy()}
    if bt is not None:
        res["dbias"] = bt.grad.numpy()
    return res


def case(rng, name: str, x: np.ndarray, eps: float = 1e-5, with_bias: bool = True, dtype=np.float64) -> dict:
    x = x.astype(dtype)
    weight = (1.0 + 0.3 * rng.standard_normal(C)).astype(dtype)         # (C,) near GPT-2's init of 1
    bias = (0.2 * rng.standard_normal(C)).astype(dtype) if with_bias else None   # (C,)
    dout = rng.standard_normal(x.shape).astype(dtype)                     # (B, T, C)
    res = layer_norm(x, weight, bias, eps, dout)
    arrays = {"x": x, "weight": weight, "dout": dout, "eps": np.array(eps), **res}
    if bias is not None:
        arrays["bias"] = bias
    return {f"{name}/{k}": v for k, v in arrays.items()}


def main() -> None:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)

    scale = rng.uniform(0.1, 5.0, (B, T, 1))                              # (B, T, 1) rows differ in scale
    shift = rng.uniform(-3.0, 3.0, (B, T, 1))                             # (B, T, 1) and in offset
    x = shift + scale * rng.standard_normal((B, T, C))                    # (B, T, C)

    edge = rng.standard_normal((B, T, C))                                 # (B, T, C)
    edge[0, 0] = 2.5                                                      # a constant row: var = 0
    edge[0, 1] = 0.0                                                      # all zeros
    edge[0, 2] = 1e-3 * rng.standard_normal(C)                            # var ~1e-6 < eps: eps dominates
    edge[1, 0] = 1e4 + rng.standard_normal(C)                             # a large offset: centre first
    edge[1, 1] = -7.0                                                     # another constant row

    small = 0.05 * rng.standard_normal((B, T, C))                         # (B, T, C) var ~2.5e-3

    arrays: dict[str, np.ndarray] = {}
    arrays |= case(rng, "f64", x)
    arrays |= case(rng, "f32", x, dtype=np.float32)
    arrays |= case(rng, "t1", x[:, :1])
    arrays |= case(rng, "nobias", x, with_bias=False)
    arrays |= case(rng, "const", edge)
    arrays |= case(rng, "eps", small, eps=0.1)
    for k, v in arrays.items():
        assert np.all(np.isfinite(v)), k
    np.savez(OUT / "layernorm.npz", **arrays)

    meta = {
        "generator": "lessons/03_layernorm/make_reference.py",
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "seed": SEED, "shapes": {"B": B, "T": T, "C": C},
        "ops": "F.layer_norm(x, (C,), weight, bias, eps); out.backward(dout)",
        "cases": {
            "f64": "float64, eps 1e-5", "f32": "float32, eps 1e-5", "t1": "T = 1",
            "nobias": "bias=None", "const": "constant rows, tiny-variance row, row at 1e4",
            "eps": "eps = 0.1 on rows of variance ~2.5e-3",
        },
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {sorted(p.name for p in OUT.iterdir())}")


if __name__ == "__main__":
    main()
