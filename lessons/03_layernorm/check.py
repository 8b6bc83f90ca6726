"""Lesson 03's checks: layer-norm forward and its compact backward, against PyTorch and finite differences.

References (reference/layernorm.npz) come from torch's F.layer_norm and autograd: the output and the
gradients of x, weight and bias for a random upstream gradient. Cases: float64 rows of different scale and
offset, float32, T = 1, no bias, constant rows (variance 0) next to a tiny-variance row and a row at 1e4,
and eps = 0.1 (is eps inside the square root?).

Tolerances (stated once, used below):
  float64: rtol 1e-10, atol 1e-12. Both libraries compute the same formula in another order; rows near 1e4
           lose ~4 digits to the subtraction x - mean (differences ~3e-12 measured), still far inside.
           atol covers outputs and gradients that cancel to ~0.
  float32: rtol 1e-4, atol 1e-5. float32 keeps ~7 digits; a mean, a variance and a 12-term sum in another
           order differ by a few 1e-7 (measured: 7e-7), so this catches real bugs, not rounding.
  finite differences: relative error < 1e-7 (central differences, h = 1e-5, float64).
"""

from __future__ import annotations

import numpy as np

from minigpt.course.gradcheck import check_layer
from minigpt.course.grader import Step, load_reference

IMPL = "minigpt.layers.layernorm"

F64 = {"rtol": 1e-10, "atol": 1e-12}
F32 = {"rtol": 1e-4, "atol": 1e-5}

CASES = [
    ("f64", "float64", F64, np.float64),
    ("t1", "T = 1", F64, np.float64),
    ("nobias", "bias=None", F64, np.float64),
    ("const", "constant rows, a tiny-variance row, a row at 1e4", F64, np.float64),
    ("eps", "eps = 0.1 (eps goes inside the square root, added to the variance)", F64, np.float64),
    ("f32", "float32 in, float32 out", F32, np.float32),
]


def _case(ref: dict, key: str) -> dict:
    return {k.split("/", 1)[1]: v for k, v in ref.items() if k.startswith(key + "/")}


def _forward(impl, g) -> None:
    ref = load_reference(__file__, "layernorm.npz")
    for key, title, tol, dtype in CASES:
        r = _case(ref, key)
        with g.case(f"layernorm_forward {title}", pitfall=(PITFALLS.get(key, "variance"), "axis")):
            out, _ = impl.layernorm_forward(r["x"], r["weight"], r.get("bias"), eps=float(r["eps"]))
            g.close("out", out, r["out"], dtype=dtype, **tol)

    r = _case(ref, "f64")
    x = r["x"]
    C = x.shape[-1]
    with g.case("layernorm_forward properties", pitfall="variance"):
        out, _ = impl.layernorm_forward(x, np.ones(C), np.zeros(C))
        out = np.asarray(out)
        var = x.var(axis=-1, keepdims=True)                                # (B, T, 1) biased, like torch
        g.close("each row of the normalised output has mean 0", out.mean(axis=-1),
                np.zeros(out.shape[:-1]), rtol=0, atol=1e-12)
        g.close("... and variance var / (var + eps), i.e. ~1 (divide by C, not C - 1)",
                out.var(axis=-1, keepdims=True), var / (var + 1e-5), rtol=1e-10, atol=1e-12)

    c = _case(ref, "const")
    with g.case("layernorm_forward constant rows", pitfall="one_pass"):
        out, _ = impl.layernorm_forward(c["x"], c["weight"], c["bias"])
        out = np.asarray(out)
        g.true("no NaN or inf", bool(np.all(np.isfinite(out))))
        g.close("a constant row comes out as the bias (x - mean = 0)", out[0, 0], c["bias"],
                rtol=0, atol=1e-12)


def _backward(impl, g) -> None:
    ref = load_reference(__file__, "layernorm.npz")
    for key, title, tol, dtype in CASES:
        r = _case(ref, key)
        with g.case(f"layernorm_backward {title}", pitfall="dx_terms"):
            _, cache = impl.layernorm_forward(r["x"], r["weight"], r.get("bias"), eps=float(r["eps"]))
            dx, dweight, dbias = impl.layernorm_backward(r["dout"], cache)
            g.close("dweight", dweight, r["dweight"], dtype=dtype, pitfall="sum_rows", **tol)
            if "dbias" in r:
                g.close("dbias", dbias, r["dbias"], dtype=dtype, pitfall="sum_rows", **tol)
            else:
                g.true("dbias is None when there is no bias", dbias is None, f"got {type(dbias).__name__}")
            g.close("dx", dx, r["dx"], dtype=dtype, **tol)

    r = _case(ref, "f64")
    x = r["x"]
    C = x.shape[-1]
    with g.case("layernorm_backward: shift invariance", pitfall="dx_terms"):
        _, cache = impl.layernorm_forward(x, np.ones(C), np.zeros(C))
        dx, _, _ = impl.layernorm_backward(r["dout"], cache)
        g.close("dx sums to 0 over the channels (adding a constant to a row changes nothing)",
                np.asarray(dx).sum(axis=-1), np.zeros(x.shape[:-1]), rtol=0, atol=1e-12)

    with g.case("layernorm finite differences (float64)", pitfall="dx_terms"):
        args = [x.copy(), r["weight"].copy(), r["bias"].copy()]
        errors = check_layer(impl.layernorm_forward, impl.layernorm_backward, args)
        for name, label in (("arg0", "dx"), ("arg1", "dweight"), ("arg2", "dbias")):
            g.below(f"{label}: relative error", errors[name], 1e-7,
                    pitfall="dx_terms" if label == "dx" else "sum_rows")


PITFALLS = {"eps": "eps", "const": "one_pass"}

STEPS = [
    Step(1, "normalise each row, then scale and shift", ("layernorm_forward",), _forward),
    Step(2, "the backward: dweight, dbias and the compact dx", ("layernorm_backward",), _backward),
]
