"""Causal self-attention (minigpt/layers/attention.py): finite differences, edge cases, properties.

The comparison with PyTorch lives in lessons/04_attention/check.py (run by tests/test_lessons.py); here
the layer is checked against itself (backward vs central differences) and against facts every correct
causal attention obeys. Shapes are all distinct (B=2, T=5, C=12, H=3, D=4) so a wrong transpose fails.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt.course.gradcheck import check_layer
from minigpt.layers.attention import (
    attention_backward,
    attention_forward,
    causal_mask,
    merge_heads,
    sdpa_backward,
    sdpa_forward,
    split_heads,
)

B, T, C, H = 2, 5, 12, 3
D = C // H


def layer_params(rng, c=C, dtype=np.float64):
    """c_attn_weight (C, 3C), c_attn_bias (3C,), c_proj_weight (C, C), c_proj_bias (C,)."""
    return [(s * rng.standard_normal(shape)).astype(dtype)
            for s, shape in ((0.3, (c, 3 * c)), (0.1, (3 * c,)), (0.3, (c, c)), (0.1, (c,)))]


# ---- finite differences ------------------------------------------------------------------------------
@pytest.mark.parametrize("tq,tk", [(5, 5), (2, 5), (1, 1)])
def test_sdpa_backward_matches_finite_differences(tq, tk):
    rng = np.random.default_rng(0)
    q = rng.standard_normal((B, H, tq, D))
    k, v = rng.standard_normal((B, H, tk, D)), rng.standard_normal((B, H, tk, D))
    errors = check_layer(sdpa_forward, sdpa_backward, [q, k, v])
    assert max(errors.values()) < 1e-7, errors


def test_attention_backward_matches_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((B, T, C))
    errors = check_layer(attention_forward, attention_backward, [x, *layer_params(rng)], kwargs={"n_head": H})
    assert len(errors) == 5 and max(errors.values()) < 1e-7, errors


def test_attention_backward_with_dropout_matches_finite_differences():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((B, T, C))

    def forward(*args):  # a fresh generator per call, so every nudge sees the same dropout mask
        return attention_forward(*args, n_head=H, attn_pdrop=0.25, rng=np.random.default_rng(3))

    errors = check_layer(forward, attention_backward, [x, *layer_params(rng)])
    assert max(errors.values()) < 1e-7, errors


def test_attention_without_biases():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((B, T, C))
    wa, _, wp, _ = layer_params(rng)
    out, cache = attention_forward(x, wa, None, wp, None, n_head=H)
    dx, dwa, dba, dwp, dbp = attention_backward(np.ones_like(out), cache)
    assert dba is None and dbp is None

    def backward(dout, cache):  # only the arrays that exist: dx, dc_attn_weight, dc_proj_weight
        dx, dwa, _, dwp, _ = attention_backward(dout, cache)
        return dx, dwa, dwp

    errors = check_layer(lambda x, wa, wp: attention_forward(x, wa, None, wp, None, n_head=H), backward,
                         [x, wa, wp])
    assert max(errors.values()) < 1e-7, errors


# ---- edge cases ------------------------------------------------------------------------------------------
def test_t_equal_one_attends_to_itself():
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((B, H, 1, D)) for _ in range(3))
    y, cache = sdpa_forward(q, k, v)
    np.testing.assert_allclose(y, v, rtol=1e-15, atol=0)
    dy = rng.standard_normal(y.shape)
    dq, dk, dv = sdpa_backward(dy, cache)
    assert np.all(dq == 0) and np.all(dk == 0)   # softmax of a single score is the constant 1
    np.testing.assert_allclose(dv, dy, rtol=1e-15, atol=0)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_huge_scores_stay_finite(dtype):
    """Scores of +-1e4 before the scale: exp would overflow without subtracting the row max."""
    q = np.full((1, 1, 3, 1), 100.0, dtype=dtype)
    k = np.array([100.0, -100.0, 100.0], dtype=dtype).reshape(1, 1, 3, 1)   # q.k = +-1e4
    v = np.arange(3, dtype=dtype).reshape(1, 1, 3, 1)
    y, cache = sdpa_forward(q, k, v)
    grads = sdpa_backward(np.ones_like(y), cache)
    assert y.dtype == dtype and all(g.dtype == dtype for g in grads)
    assert all(np.all(np.isfinite(a)) for a in (y, *grads))
    # row 0 sees key 0 only; row 1 puts all weight on key 0 (score +1e4 vs -1e4); row 2 splits keys 0 and 2
    np.testing.assert_allclose(y.ravel(), [0.0, 0.0, 1.0], atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype):
    rng = np.random.default_rng(6)
    x = rng.standard_normal((B, T, C)).astype(dtype)
    params = layer_params(rng, dtype=dtype)
    out, cache = attention_forward(x, *params, n_head=H)
    grads = attention_backward(np.ones_like(out), cache)
    assert out.dtype == dtype and all(g.dtype == dtype for g in grads)
    assert [g.shape for g in grads] == [x.shape, *(p.shape for p in params)]


def test_float32_agrees_with_float64():
    rng = np.random.default_rng(7)
    x = rng.standard_normal((B, T, C))
    params = layer_params(rng)
    out64, _ = attention_forward(x, *params, n_head=H)
    out32, _ = attention_forward(x.astype(np.float32), *(p.astype(np.float32) for p in params), n_head=H)
    np.testing.assert_allclose(out32, out64, rtol=1e-4, atol=1e-5)


def test_bad_n_head_is_refused():
    rng = np.random.default_rng(8)
    with pytest.raises(ValueError, match="not divisible by n_head"):
        attention_forward(rng.standard_normal((B, T, C)), *layer_params(rng), n_head=5)


def test_causal_mask_shapes_and_offset():
    np.testing.assert_array_equal(causal_mask(3, 3), np.triu(np.ones((3, 3), bool), k=1))
    np.testing.assert_array_equal(causal_mask(2, 5), [[0, 0, 0, 0, 1], [0, 0, 0, 0, 0]])   # queries at 3, 4
    assert not causal_mask(1, 7).any()                      # the newest token sees everything


def test_split_and_merge_heads_are_inverse_and_ordered():
    x = np.arange(B * T * C, dtype=np.float64).reshape(B, T, C)
    heads = split_heads(x, H)                               # (B, H, T, D)
    assert heads.shape == (B, H, T, D)
    np.testing.assert_array_equal(heads[1, 2, 3], x[1, 3, 2 * D:3 * D])   # head h = channels h*D..(h+1)*D
    np.testing.assert_array_equal(merge_heads(heads), x)


# ---- properties (hypothesis) ------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(t=st.integers(1, 8), n_head=st.sampled_from([1, 2, 4]), seed=st.integers(0, 2**31 - 1),
       cut=st.integers(0, 7))
def test_causality_future_never_changes_the_past(t, n_head, seed, cut):
    """Changing x at positions > i leaves out[:, :i+1] unchanged (exactly: masked weights are 0)."""
    i = min(cut, t - 1)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, t, 8))
    params = layer_params(rng, c=8)
    out, _ = attention_forward(x, *params, n_head=n_head)
    x2 = x.copy()
    x2[:, i + 1:] = 100.0 * rng.standard_normal(x2[:, i + 1:].shape)
    out2, _ = attention_forward(x2, *params, n_head=n_head)
    np.testing.assert_array_equal(out2[:, :i + 1], out[:, :i + 1])


@settings(max_examples=30, deadline=None)
@given(tq=st.integers(1, 6), extra=st.integers(0, 5), seed=st.integers(0, 2**31 - 1),
       scale=st.sampled_from([0.01, 1.0, 30.0]))
def test_weights_are_a_convex_combination(tq, extra, seed, scale):
    """Each output row is a weighted average of the values: v = 1 gives 1, and y stays within v's range."""
    tk = tq + extra
    rng = np.random.default_rng(seed)
    q = scale * rng.standard_normal((2, 3, tq, 4))
    k = scale * rng.standard_normal((2, 3, tk, 4))
    y1, _ = sdpa_forward(q, k, np.ones((2, 3, tk, 4)))
    np.testing.assert_allclose(y1, 1.0, rtol=1e-12)
    v = rng.standard_normal((2, 3, tk, 4))
    y, _ = sdpa_forward(q, k, v)
    assert np.all(y <= v.max(axis=2, keepdims=True) + 1e-12)
    assert np.all(y >= v.min(axis=2, keepdims=True) - 1e-12)


@settings(max_examples=30, deadline=None)
@given(tq=st.integers(1, 6), extra=st.integers(0, 5), seed=st.integers(0, 2**31 - 1))
def test_kv_cache_rows_equal_the_full_computation(tq, extra, seed):
    """The last tq queries against all keys == the last tq rows of full causal attention."""
    tk = tq + extra
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((1, 2, tk, 4)) for _ in range(3))
    full, _ = sdpa_forward(q, k, v)
    last, _ = sdpa_forward(q[:, :, tk - tq:], k, v)
    np.testing.assert_allclose(last, full[:, :, tk - tq:], rtol=1e-13, atol=1e-15)


def test_eval_mode_ignores_dropout_and_training_uses_it():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((B, T, C))
    params = layer_params(rng)
    out, _ = attention_forward(x, *params, n_head=H)
    out_eval, _ = attention_forward(x, *params, n_head=H, attn_pdrop=0.5, training=False)
    np.testing.assert_array_equal(out_eval, out)
    a, _ = attention_forward(x, *params, n_head=H, attn_pdrop=0.5, rng=np.random.default_rng(1))
    b, _ = attention_forward(x, *params, n_head=H, attn_pdrop=0.5, rng=np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)                     # same seed, same mask
    assert not np.allclose(a, out)
