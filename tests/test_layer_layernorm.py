"""Layer-norm: finite differences, constant rows, float32, properties, graders catching the usual bugs."""

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt.course.gradcheck import check_layer
from minigpt.course.grader import find_lesson, grade
from minigpt.layers.layernorm import layernorm_backward, layernorm_forward

B, T, C = 2, 5, 12


def inputs(seed=0, dtype=np.float64):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-3, 3, (B, T, 1)) + rng.uniform(0.1, 5, (B, T, 1)) * rng.standard_normal((B, T, C))
    w = 1.0 + 0.3 * rng.standard_normal(C)
    b = 0.2 * rng.standard_normal(C)
    return x.astype(dtype), w.astype(dtype), b.astype(dtype)


@pytest.mark.parametrize("t", [1, T])
def test_finite_differences(t):
    x, w, b = inputs()
    errors = check_layer(layernorm_forward, layernorm_backward, [x[:, :t].copy(), w, b])
    assert set(errors) == {"arg0", "arg1", "arg2"}
    assert max(errors.values()) < 1e-7, errors


def test_finite_differences_without_bias():
    x, w, _ = inputs()
    errors = check_layer(lambda x_, w_: layernorm_forward(x_, w_, None),
                         lambda d, c: layernorm_backward(d, c)[:2], [x, w])
    assert max(errors.values()) < 1e-7, errors
    _, cache = layernorm_forward(x, w, None)
    assert layernorm_backward(np.ones_like(x), cache)[2] is None


def test_finite_differences_near_constant_rows():
    """Variance below eps: the eps term dominates and the backward must still be exact.

    The row's spread is ~1e-3, so the default step h = 1e-5 is 1 % of it and the central difference's
    truncation error (~h**2 * rstd**3) reaches ~2e-7; a step of 1e-7 measures the gradient, not the step.
    """
    x, w, b = inputs()
    x[0, 0] = 1e-3 * np.random.default_rng(1).standard_normal(C)
    errors = check_layer(layernorm_forward, layernorm_backward, [x, w, b], h=1e-7)
    assert max(errors.values()) < 1e-7, errors


def test_constant_rows_give_bias_and_finite_gradients():
    x, w, b = inputs()
    x[0, 0], x[1, 3] = 2.5, -1e4                           # var = 0 exactly
    out, cache = layernorm_forward(x, w, b)
    dx, dw, db = layernorm_backward(np.random.default_rng(2).standard_normal(x.shape), cache)
    assert all(np.all(np.isfinite(a)) for a in (out, dx, dw, db))
    np.testing.assert_array_equal(out[0, 0], b)
    np.testing.assert_array_equal(out[1, 3], b)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_in_dtype_out(dtype):
    x, w, b = inputs(dtype=dtype)
    out, cache = layernorm_forward(x, w, b)
    dx, dw, db = layernorm_backward(np.ones_like(x), cache)
    assert out.dtype == dx.dtype == dw.dtype == db.dtype == dtype


def test_float32_agrees_with_float64():
    x, w, b = inputs()
    out64, c64 = layernorm_forward(x, w, b)
    out32, c32 = layernorm_forward(x.astype(np.float32), w.astype(np.float32), b.astype(np.float32))
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)
    dout = np.random.default_rng(3).standard_normal(x.shape)
    for g32, g64 in zip(layernorm_backward(dout.astype(np.float32), c32), layernorm_backward(dout, c64),
                        strict=True):
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-5)


def test_biased_variance_and_eps_inside_the_root():
    x, _, _ = inputs()
    out, _ = layernorm_forward(x, np.ones(C), np.zeros(C), eps=0.5)
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).sum(-1, keepdims=True) / C      # biased: divide by C
    np.testing.assert_allclose(out, (x - mean) / np.sqrt(var + 0.5), rtol=1e-12)


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 40), st.floats(-1e3, 1e3), st.floats(1e-2, 1e2), st.integers(0, 2**32 - 1))
def test_output_rows_have_mean_zero_variance_one_and_dx_sums_to_zero(c, shift, scale, seed):
    rng = np.random.default_rng(seed)
    x = shift + scale * rng.standard_normal((3, c))       # (N, C) any offset and scale
    out, cache = layernorm_forward(x, np.ones(c), np.zeros(c))
    var = x.var(-1, keepdims=True)
    np.testing.assert_allclose(out.mean(-1), 0.0, atol=1e-9)
    np.testing.assert_allclose(out.var(-1, keepdims=True), var / (var + 1e-5), rtol=1e-8)
    dx, _, _ = layernorm_backward(rng.standard_normal(x.shape), cache)
    np.testing.assert_allclose(dx.sum(-1), 0.0, atol=1e-9 * (1 + np.abs(dx).max()))   # shift invariance


# ---- the grader must catch the bugs the chapter warns about ---------------------------------------
MUTANTS = {
    "unbiased variance": ("var = np.mean(xc * xc, axis=-1, keepdims=True)",
                          "var = np.sum(xc * xc, axis=-1, keepdims=True) / (x.shape[-1] - 1)"),
    "eps outside the root": ("rstd = 1.0 / np.sqrt(var + eps)", "rstd = 1.0 / (np.sqrt(var) + eps)"),
    "dx without the xhat term": ("dx = rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)",
                                 "dx = rstd * (dxhat - mean_dxhat)"),
    "dx without the mean term": ("dx = rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)",
                                 "dx = rstd * (dxhat - xhat * mean_dxhat_xhat)"),
}


@pytest.mark.parametrize("bug", list(MUTANTS))
def test_lesson_check_catches(bug, tmp_path):
    import minigpt.layers.layernorm as module

    source = open(module.__file__, encoding="utf-8").read()
    old, new = MUTANTS[bug]
    assert old in source, f"the mutant for {bug!r} no longer matches layernorm.py; update it"
    path = tmp_path / "mutant.py"
    path.write_text(source.replace(old, new), encoding="utf-8")
    g = grade(find_lesson("03"), impl=path, out=io.StringIO())
    assert g.failed > 0
