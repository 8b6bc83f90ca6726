"""Lesson 05's checks: Conv1D linear, GPT-2's tanh GELU and the MLP, forward and backward.

Graded three ways: against PyTorch autograd's float64 references (rtol 1e-10), in float32 (float32 in ->
float32 out, rtol 1e-4 / atol 1e-5 against torch's own float32 run), and against central finite differences
(minigpt.course.gradcheck, relative error < 1e-7), so a learner's backward is also checked numerically.

Tolerances. float64: rtol 1e-10 with atol 1e-12. The entries are O(1) and each is a sum of at most 48
products, so NumPy and torch differ by ~1e-15; atol only matters for entries that cancel to nearly 0, where
a relative test would ask for more digits than float64 has, and 1e-12 is still 1e-10 below a typical entry.
float32: eps is 1.2e-7 and the MLP chains two matmuls and a tanh; minigpt and torch differ by at most
1.4e-6 on entries up to ~4, so rtol 1e-4 / atol 1e-5 leaves a ~7x margin for another summation order.

Not here: the model's use of the MLP (dropout, residual), which lesson 07 grades.
"""

from __future__ import annotations

import numpy as np

from minigpt.course.gradcheck import check_layer
from minigpt.course.grader import Step, load_reference

IMPL = "minigpt.layers.mlp"

F64 = {"rtol": 1e-10, "atol": 1e-12}
F32 = {"rtol": 1e-4, "atol": 1e-5}
FD_LIMIT = 1e-7
MLP_PARAMS = ("c_fc_weight", "c_fc_bias", "c_proj_weight", "c_proj_bias")


def _close_all(g, names, got, ref, dtype, tol) -> None:
    for name, value in zip(names, got, strict=True):
        pitfall = "sum_rows" if name.endswith(("weight", "bias")) else None
        g.close(name, value, ref[name], dtype=dtype, pitfall=pitfall, **tol)


def _fd(impl, g, name, forward, backward, args, pitfall) -> None:
    with g.case(f"finite differences, {name}", pitfall=pitfall):
        errors = check_layer(forward, backward, args)
        for k, v in errors.items():
            g.below(f"{k} relative error", v, FD_LIMIT)


def _linear(impl, g) -> None:
    ref = load_reference(__file__, "linear.npz")
    with g.case("linear, float64", pitfall="sum_rows"):
        out, cache = impl.linear_forward(ref["x"], ref["weight"], ref["bias"])
        g.close("out", out, ref["out"], dtype=np.float64, **F64)
        grads = impl.linear_backward(ref["dout"], cache)
        _close_all(g, ("dx", "dweight", "dbias"), grads, ref, np.float64, F64)
    with g.case("linear without bias"):
        out, cache = impl.linear_forward(ref["x"], ref["weight"], None)
        g.close("out", out, ref["out_nobias"], **F64)
        dbias = impl.linear_backward(ref["dout"], cache)[2]
        g.true("dbias is None when there is no bias", dbias is None, f"got {type(dbias).__name__}")
    with g.case("linear refuses the nn.Linear layout", pitfall="layout"):
        with g.raises("a (out, in) weight (nn.Linear's layout) is refused", ValueError):
            impl.linear_forward(ref["x"], ref["weight"].T.copy(), ref["bias"])
    _fd(impl, g, "linear", impl.linear_forward, impl.linear_backward, [ref["x"], ref["weight"], ref["bias"]],
        "sum_rows")


def _gelu_forward(impl, g) -> None:
    ref = load_reference(__file__, "gelu.npz")
    with g.case("gelu_forward, float64", pitfall="inside_u"):
        out, _ = impl.gelu_forward(ref["x"])
        g.close("out", out, ref["out"], dtype=np.float64, **F64)
    with g.case("gelu is GPT-2's tanh approximation", pitfall="erf"):
        grid = ref["grid"]
        out, _ = impl.gelu_forward(grid)
        to_tanh = float(np.max(np.abs(out - ref["grid_tanh"])))
        to_erf = float(np.max(np.abs(out - ref["grid_erf"])))
        hint = ""
        if to_erf < 1e-10:
            hint = "  <- this is the exact erf GELU (nanoGPT's nn.GELU); GPT-2 uses the tanh one"
        elif to_tanh >= 1e-10:
            hint = "  <- neither GELU: check the constants and the power of x inside u"
        g.true("forward on [-6, 6]", to_tanh < 1e-10,
               f"max |yours - tanh GELU| {to_tanh:.3g}, max |yours - erf GELU| {to_erf:.3g}{hint}")
    with g.case("gelu_forward float32 in, float32 out", pitfall="dtype"):
        out, _ = impl.gelu_forward(ref["x"].astype(np.float32))
        g.true(f"out dtype {np.asarray(out).dtype} is float32", np.asarray(out).dtype == np.float32)


def _gelu_backward(impl, g) -> None:
    ref = load_reference(__file__, "gelu.npz")
    with g.case("gelu_backward, float64", pitfall="product"):
        _, cache = impl.gelu_forward(ref["x"])
        g.close("dx", impl.gelu_backward(ref["dout"], cache), ref["dx"], dtype=np.float64, **F64)
    with g.case("gelu's derivative on [-6, 6]", pitfall="product"):
        grid = ref["grid"]
        _, cache = impl.gelu_forward(grid)
        g.close("derivative", impl.gelu_backward(np.ones_like(grid), cache), ref["grid_dtanh"], **F64)
    _fd(impl, g, "gelu", impl.gelu_forward, impl.gelu_backward, [ref["x"][:, :, :16].copy()], "product")


def _mlp(impl, g) -> None:
    names = ("dx", *("d" + p for p in MLP_PARAMS))
    for file, label, dtype, tol in (("mlp.npz", "mlp, float64", np.float64, F64),
                                    ("mlp_t1.npz", "mlp, T=1", np.float64, F64),
                                    ("mlp_float32.npz", "mlp, float32 in -> float32 out", np.float32, F32)):
        ref = load_reference(__file__, file)
        with g.case(label, pitfall="dtype" if dtype == np.float32 else None):
            out, cache = impl.mlp_forward(ref["x"], *(ref[p] for p in MLP_PARAMS))
            g.close("out", out, ref["out"], dtype=dtype, **tol)
            _close_all(g, names, impl.mlp_backward(ref["dout"], cache), ref, dtype, tol)
    mlp = load_reference(__file__, "mlp.npz")
    _fd(impl, g, "mlp", impl.mlp_forward, impl.mlp_backward, [mlp["x"], *(mlp[p] for p in MLP_PARAMS)],
        "inplace")


STEPS = [
    Step(1, "GPT-2's Conv1D linear layer", ("linear_forward", "linear_backward"), _linear),
    Step(2, "the tanh GELU", ("gelu_forward",), _gelu_forward),
    Step(3, "the GELU's derivative", ("gelu_backward",), _gelu_backward),
    Step(4, "the MLP: c_fc, GELU, c_proj", ("mlp_forward", "mlp_backward"), _mlp),
]
