"""Write lesson 05's references with PyTorch autograd: Conv1D linear, GPT-2's tanh GELU, and the MLP.

Run from anywhere: `python lessons/05_mlp/make_reference.py` (needs torch==2.13.0, CPU is enough).
Inputs are drawn with NumPy from a fixed seed; every output and gradient is computed by torch
(F.linear, F.gelu(approximate="tanh"), matmuls in GPT-2's (in, out) layout, .backward() with a random
upstream gradient), never by minigpt. Versions, seed and shapes go to reference/meta.json.

Not here: anything minigpt computes, and the grading itself (check.py).
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # pragma: no cover - only the reference writer needs torch
    raise SystemExit("make_reference.py needs PyTorch: pip install -e '.[reference]'") from exc

SEED = 0
B, T, C = 2, 5, 12          # batch, time, channels: all distinct so a wrong transpose cannot pass
HIDDEN = 4 * C              # the MLP's hidden width, 48
C_OUT = 7                   # a lone linear layer's output width, distinct from everything else
OUT = Path(__file__).resolve().parent / "reference"


def tensors(arrays: dict[str, np.ndarray], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {k: torch.tensor(v, dtype=dtype, requires_grad=True) for k, v in arrays.items()}


def numpy_of(t: torch.Tensor) -> np.ndarray:
    return t.detach().numpy().copy()


def linear_case(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """y = x @ weight + bias, weight (in, out): torch's F.linear with weight.T (nn.Linear is (out, in))."""
    arrays = {"x": rng.standard_normal((B, T, C)),
              "weight": rng.standard_normal((C, C_OUT)) / np.sqrt(C),
              "bias": rng.standard_normal(C_OUT) * 0.5}
    dout = rng.standard_normal((B, T, C_OUT))
    t = tensors(arrays, torch.float64)
    out = F.linear(t["x"], t["weight"].T, t["bias"])                     # (B, T, C_OUT)
    out.backward(torch.tensor(dout))
    out_nobias = F.linear(t["x"].detach(), t["weight"].detach().T)      # (B, T, C_OUT)
    return {**arrays, "dout": dout, "out": numpy_of(out), "out_nobias": numpy_of(out_nobias),
            "dx": numpy_of(t["x"].grad), "dweight": numpy_of(t["weight"].grad),
            "dbias": numpy_of(t["bias"].grad)}


def gelu_case(rng: np.random.Generator) -> dict[str, np.ndarray]:
    """GPT-2's tanh GELU on random inputs; both GELUs and their derivatives on a grid (for the figure)."""
    x = rng.standard_normal((B, T, HIDDEN)) * 2.0                        # (B, T, 4C): covers the bend
    x[0, 0, :6] = [0.0, -30.0, 30.0, -5.0, 5.0, 1e-8]                    # saturated tails and the origin
    dout = rng.standard_normal(x.shape)
    xt = torch.tensor(x, requires_grad=True)
    out = F.gelu(xt, approximate="tanh")
    out.backward(torch.tensor(dout))
    grid = np.linspace(-6.0, 6.0, 1201)
    g_tanh = torch.tensor(grid, requires_grad=True)
    g_erf = torch.tensor(grid, requires_grad=True)
    y_tanh = F.gelu(g_tanh, approximate="tanh")
    y_erf = F.gelu(g_erf)                                                # exact: 0.5 x (1 + erf(x / sqrt 2))
    y_tanh.sum().backward()
    y_erf.sum().backward()
    return {"x": x, "dout": dout, "out": numpy_of(out), "dx": numpy_of(xt.grad),
            "grid": grid, "grid_tanh": numpy_of(y_tanh), "grid_erf": numpy_of(y_erf),
            "grid_dtanh": numpy_of(g_tanh.grad), "grid_derf": numpy_of(g_erf.grad)}


def mlp_params(rng: np.random.Generator) -> dict[str, np.ndarray]:
    return {"c_fc_weight": rng.standard_normal((C, HIDDEN)) / np.sqrt(C),
            "c_fc_bias": rng.standard_normal(HIDDEN) * 0.5,
            "c_proj_weight": rng.standard_normal((HIDDEN, C)) / np.sqrt(HIDDEN),
            "c_proj_bias": rng.standard_normal(C) * 0.5}


def mlp_case(x: np.ndarray, params: dict[str, np.ndarray], dout: np.ndarray,
             dtype: torch.dtype) -> dict[str, np.ndarray]:
    """c_fc (C -> 4C), GPT-2's tanh GELU, c_proj (4C -> C), written with torch matmuls in Conv1D layout."""
    t = tensors({"x": x, **params}, dtype)
    h = t["x"] @ t["c_fc_weight"] + t["c_fc_bias"]                       # (B, T, 4C)
    a = F.gelu(h, approximate="tanh")                                    # (B, T, 4C)
    out = a @ t["c_proj_weight"] + t["c_proj_bias"]                      # (B, T, C)
    out.backward(torch.tensor(dout, dtype=dtype))
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    result = {k: v.astype(np_dtype) for k, v in {"x": x, **params, "dout": dout}.items()}
    result["out"] = numpy_of(out)
    for k, v in t.items():
        result["d" + k] = numpy_of(v.grad)
    return result


def main() -> None:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    OUT.mkdir(exist_ok=True)
    files = {"linear.npz": linear_case(rng), "gelu.npz": gelu_case(rng)}
    params = mlp_params(rng)
    x, dout = rng.standard_normal((B, T, C)), rng.standard_normal((B, T, C))
    files["mlp.npz"] = mlp_case(x, params, dout, torch.float64)
    files["mlp_t1.npz"] = mlp_case(rng.standard_normal((B, 1, C)), params,
                                   rng.standard_normal((B, 1, C)), torch.float64)
    # float32: the same numbers rounded to float32, computed by torch in float32
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    x32, dout32 = x.astype(np.float32), dout.astype(np.float32)
    files["mlp_float32.npz"] = mlp_case(x32, params32, dout32, torch.float32)
    for name, arrays in files.items():
        np.savez_compressed(OUT / name, **arrays)
    g = files["gelu.npz"]
    diff = np.abs(g["grid_tanh"] - g["grid_erf"])
    meta = {
        "generator": "lessons/05_mlp/make_reference.py",
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "seed": SEED, "input_rng": "numpy.random.default_rng(seed), drawn in the order of main()",
        "ops": {"linear": "F.linear(x, weight.T, bias)  (weight stored (in, out) like GPT-2's Conv1D)",
                "gelu": "F.gelu(x, approximate='tanh')  (GPT-2's gelu_new); grid also F.gelu(x) exact erf",
                "mlp": "x @ c_fc_weight + c_fc_bias -> F.gelu(approximate='tanh') "
                       "-> @ c_proj_weight + c_proj_bias"},
        "shapes": {name: {k: list(v.shape) for k, v in arrays.items()} for name, arrays in files.items()},
        "dtypes": {name: sorted({str(v.dtype) for v in arrays.values()}) for name, arrays in files.items()},
        "gelu_tanh_vs_erf": {"max_abs_diff": float(diff.max()), "at_x": float(g["grid"][diff.argmax()]),
                             "grid": "linspace(-6, 6, 1201)"},
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(files)} npz files + meta.json to {OUT} ({total / 1024:.1f} KiB)")
    print(f"max |gelu_tanh - gelu_erf| = {diff.max():.3g} at x = {g['grid'][diff.argmax()]:.2f}")


if __name__ == "__main__":
    main()
