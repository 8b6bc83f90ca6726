"""Conv1D linear layer (weight (in, out)): finite differences, layout, leading dims, dtypes, bad shapes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt.course.gradcheck import check_layer
from minigpt.layers.linear import linear_backward, linear_forward

B, T, C, C_OUT = 2, 5, 12, 7


def arrays(dtype=np.float64, seed=0, lead=(B, T)):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*lead, C)).astype(dtype)                  # (..., C)
    w = (rng.standard_normal((C, C_OUT)) / np.sqrt(C)).astype(dtype)   # (C, C_OUT)
    b = rng.standard_normal(C_OUT).astype(dtype)                       # (C_OUT,)
    return x, w, b


@pytest.mark.parametrize("lead", [(B, T), (B, 1), (3,), (2, 3, 4)])
def test_finite_differences(lead):
    errors = check_layer(linear_forward, linear_backward, list(arrays(lead=lead)))
    assert set(errors) == {"arg0", "arg1", "arg2"}
    assert max(errors.values()) < 1e-7, errors


def test_finite_differences_without_bias():
    x, w, _ = arrays()

    def backward(dout, cache):
        dx, dw, db = linear_backward(dout, cache)
        assert db is None
        return dx, dw

    errors = check_layer(lambda x, w: linear_forward(x, w, None), backward, [x, w])
    assert max(errors.values()) < 1e-7, errors


def test_conv1d_is_nn_linear_with_the_weight_transposed():
    x, w, b = arrays()
    out, _ = linear_forward(x, w, b)
    w_linear = w.T.copy()                                              # (C_OUT, C): nn.Linear's storage
    np.testing.assert_allclose(out, x @ w_linear.T + b, rtol=1e-13, atol=1e-14)
    assert out.shape == (B, T, C_OUT)


def test_backward_formulas_by_hand():
    x, w, b = arrays()
    dout = np.random.default_rng(1).standard_normal((B, T, C_OUT))
    _, cache = linear_forward(x, w, b)
    dx, dw, db = linear_backward(dout, cache)
    np.testing.assert_allclose(dx, np.einsum("bto,co->btc", dout, w), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dw, np.einsum("btc,bto->co", x, dout), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(db, dout.sum(axis=(0, 1)), rtol=1e-12, atol=1e-13)


def test_a_single_vector_works():
    x, w, b = arrays(lead=())
    out, cache = linear_forward(x, w, b)
    assert out.shape == (C_OUT,)
    dx, dw, db = linear_backward(np.ones(C_OUT), cache)
    assert dx.shape == (C,) and dw.shape == (C, C_OUT) and db.shape == (C_OUT,)


def test_transposed_weight_is_refused_with_a_clear_message():
    x, w, b = arrays()
    with pytest.raises(ValueError, match=r"\(in, out\)"):
        linear_forward(x, w.T.copy(), b)


@pytest.mark.parametrize("bias", [True, False])
def test_float32_in_float32_out(bias):
    x, w, b = arrays(np.float32)
    out, cache = linear_forward(x, w, b if bias else None)
    grads = linear_backward(np.ones_like(out), cache)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in grads if g is not None)
    x64, w64, b64 = (a.astype(np.float64) for a in (x, w, b))
    ref = x64 @ w64 + (b64 if bias else 0.0)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


def test_inputs_are_not_modified():
    x, w, b = arrays()
    dout = np.ones((B, T, C_OUT))
    copies = [a.copy() for a in (x, w, b, dout)]
    _, cache = linear_forward(x, w, b)
    linear_backward(dout, cache)
    for before, after in zip(copies, (x, w, b, dout), strict=True):
        np.testing.assert_array_equal(before, after)


@settings(max_examples=25, deadline=None)
@given(lead=st.lists(st.integers(1, 4), min_size=0, max_size=3), c_in=st.integers(1, 6),
       c_out=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_any_shape_matches_einsum(lead, c_in, c_out, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*lead, c_in))
    w, b = rng.standard_normal((c_in, c_out)), rng.standard_normal(c_out)
    out, cache = linear_forward(x, w, b)
    np.testing.assert_allclose(out, np.einsum("...i,io->...o", x, w) + b, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = linear_backward(dout, cache)
    assert dx.shape == x.shape
    x2, d2 = x.reshape(-1, c_in), dout.reshape(-1, c_out)             # (N, c_in), (N, c_out)
    np.testing.assert_allclose(dw, np.einsum("ni,no->io", x2, d2), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(db, d2.sum(axis=0), rtol=1e-12, atol=1e-12)
