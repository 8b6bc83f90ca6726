"""GPT-2's tanh GELU and the MLP (c_fc -> GELU -> c_proj): finite differences, exact identities, the gap
to the erf GELU, edge values, position-wise independence, dtypes."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt.course.gradcheck import check_layer, numeric_grad, rel_error
from minigpt.layers.mlp import gelu_backward, gelu_forward, mlp_backward, mlp_forward

B, T, C = 2, 5, 12
H4 = 4 * C


def mlp_args(dtype=np.float64, seed=0, t=T):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal((B, t, C)).astype(dtype),                       # x (B, T, C)
            (rng.standard_normal((C, H4)) / np.sqrt(C)).astype(dtype),         # c_fc_weight (C, 4C)
            (rng.standard_normal(H4) * 0.5).astype(dtype),                     # c_fc_bias (4C,)
            (rng.standard_normal((H4, C)) / np.sqrt(H4)).astype(dtype),        # c_proj_weight (4C, C)
            (rng.standard_normal(C) * 0.5).astype(dtype)]                      # c_proj_bias (C,)


def gelu_by_formula(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def gelu_erf(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def test_gelu_finite_differences():
    x = np.random.default_rng(0).standard_normal((B, T, H4)) * 2.0
    errors = check_layer(gelu_forward, gelu_backward, [x])
    assert errors["arg0"] < 1e-7, errors


@pytest.mark.parametrize("t", [T, 1])
def test_mlp_finite_differences(t):
    errors = check_layer(mlp_forward, mlp_backward, mlp_args(t=t))
    assert set(errors) == {f"arg{i}" for i in range(5)}
    assert max(errors.values()) < 1e-7, errors


def test_gelu_is_the_tanh_formula_not_erf():
    x = np.linspace(-6.0, 6.0, 1201)
    out, _ = gelu_forward(x)
    np.testing.assert_allclose(out, gelu_by_formula(x), rtol=1e-14, atol=1e-15)
    gap = np.abs(out - gelu_erf(x))
    assert 4.7e-4 < gap.max() < 4.8e-4                       # the documented difference, at |x| ~ 2.70
    assert abs(abs(x[gap.argmax()]) - 2.70) < 0.02


def test_gelu_known_values():
    out, cache = gelu_forward(np.array([0.0, 1.0, -1.0, 3.0]))
    # 0.5 x (1 + tanh(u)) evaluated with mpmath at 30 digits
    np.testing.assert_allclose(out, [0.0, 0.84119199060827670, -0.15880800939172330, 2.9963626079182270],
                               rtol=1e-14)
    d = gelu_backward(np.ones(4), cache)
    assert d[0] == 0.5                                       # GELU'(0) = 1/2 exactly


def test_gelu_minimum_and_negative_slope():
    x = np.linspace(-3.0, 0.0, 30001)
    out, cache = gelu_forward(x)
    d = gelu_backward(np.ones_like(x), cache)
    i = int(out.argmin())
    assert abs(out[i] + 0.1700) < 1e-3 and abs(x[i] + 0.752) < 2e-3
    assert np.all(d[x < -0.76] < 0) and np.all(d[x > -0.74] > 0)   # the slope changes sign at the minimum


@settings(max_examples=50, deadline=None)
@given(st.floats(-50.0, 50.0, allow_nan=False))
def test_gelu_odd_part_is_identity(v):
    # tanh is odd, so gelu(x) - gelu(-x) = 0.5 x (1 + t) + 0.5 x (1 - t) = x exactly (up to rounding)
    out, _ = gelu_forward(np.array([v, -v]))
    assert abs((out[0] - out[1]) - v) <= 1e-12 * max(1.0, abs(v))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gelu_saturates_without_nan(dtype):
    x = np.array([-1e4, -30.0, 30.0, 1e4], dtype=dtype)
    out, cache = gelu_forward(x)
    d = gelu_backward(np.ones_like(x), cache)
    assert out.dtype == dtype and d.dtype == dtype
    np.testing.assert_array_equal(out, np.array([0.0, 0.0, 30.0, 1e4], dtype=dtype))
    np.testing.assert_array_equal(d, np.array([0.0, 0.0, 1.0, 1.0], dtype=dtype))


def test_gelu_backward_against_numeric_on_a_grid():
    x = np.linspace(-5.0, 5.0, 101)
    _, cache = gelu_forward(x)
    analytic = gelu_backward(np.ones_like(x), cache)
    numeric = numeric_grad(lambda: gelu_forward(x)[0], x, np.ones_like(x))
    assert rel_error(analytic, numeric) < 1e-9


def test_mlp_is_the_composition_by_hand():
    x, w1, b1, w2, b2 = mlp_args()
    out, _ = mlp_forward(x, w1, b1, w2, b2)
    np.testing.assert_allclose(out, gelu_by_formula(x @ w1 + b1) @ w2 + b2, rtol=1e-12, atol=1e-13)


@settings(max_examples=20, deadline=None)
@given(t=st.integers(0, T - 1), seed=st.integers(0, 2**16))
def test_mlp_is_position_wise(t, seed):
    args = mlp_args()
    out, _ = mlp_forward(*args)
    x2 = args[0].copy()
    x2[:, t] += np.random.default_rng(seed).standard_normal((B, C))
    out2, _ = mlp_forward(x2, *args[1:])
    others = [s for s in range(T) if s != t]
    np.testing.assert_array_equal(out2[:, others], out[:, others])
    assert not np.allclose(out2[:, t], out[:, t])


def test_mlp_float32_in_float32_out():
    args = mlp_args(np.float32)
    out, cache = mlp_forward(*args)
    grads = mlp_backward(np.ones_like(out), cache)
    assert out.dtype == np.float32
    assert [g.dtype for g in grads] == [np.float32] * 5
    ref, _ = mlp_forward(*(a.astype(np.float64) for a in args))
    np.testing.assert_allclose(out, ref, rtol=1e-4, atol=1e-5)


def test_mlp_gradient_shapes_follow_the_inputs():
    args = mlp_args()
    out, cache = mlp_forward(*args)
    grads = mlp_backward(np.ones_like(out), cache)
    assert [g.shape for g in grads] == [a.shape for a in args]


def test_mlp_inputs_are_not_modified():
    args = mlp_args()
    dout = np.random.default_rng(3).standard_normal((B, T, C))
    copies = [a.copy() for a in (*args, dout)]
    _, cache = mlp_forward(*args)
    mlp_backward(dout, cache)
    for before, after in zip(copies, (*args, dout), strict=True):
        np.testing.assert_array_equal(before, after)
