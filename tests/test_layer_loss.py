"""Softmax cross-entropy with ignore_index: finite differences, +-1e4 logits, all-ignored, ln(V), bad ids,
shift invariance, masking equals dropping rows, dtypes."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt.course.gradcheck import check_layer
from minigpt.layers.loss import cross_entropy_backward, cross_entropy_forward

B, T, V = 2, 5, 11


def case(seed=0, scale=2.0, shape=(B, T)):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((*shape, V)) * scale, rng.integers(0, V, size=shape)


def masked(targets, ignore_index=-100):
    t = targets.copy()
    t.reshape(-1)[[0, 1, 7]] = ignore_index
    return t


def nll_by_hand(logits, targets):
    """-log softmax(z)[y] per row, log-sum-exp written out; rows with ignored targets give nan."""
    z = logits.reshape(-1, V)
    t = targets.reshape(-1)
    m = z.max(axis=-1)
    lse = m + np.log(np.exp(z - m[:, None]).sum(axis=-1))
    return np.where((t >= 0) & (t < V), lse - z[np.arange(len(t)), np.clip(t, 0, V - 1)], np.nan)


@pytest.mark.parametrize("shape", [(B, T), (B, 1), (7,)])
@pytest.mark.parametrize("mask", [False, True])
def test_finite_differences(shape, mask):
    logits, targets = case(shape=shape)
    if mask and targets.size > 7:
        targets = masked(targets)
    errors = check_layer(cross_entropy_forward, cross_entropy_backward, [logits, targets])
    assert set(errors) == {"arg0"}
    assert errors["arg0"] < 1e-7, errors


def test_matches_log_sum_exp_by_hand():
    logits, targets = case()
    targets = masked(targets)
    loss, _ = cross_entropy_forward(logits, targets)
    nll = nll_by_hand(logits, targets)
    assert isinstance(loss, float)
    assert loss == pytest.approx(np.nanmean(nll), rel=1e-13)


def test_backward_is_softmax_minus_onehot_over_the_count():
    logits, targets = case()
    targets = masked(targets)
    _, cache = cross_entropy_forward(logits, targets)
    d = cross_entropy_backward(2.5, cache).reshape(-1, V)          # (N, V)
    z, t = logits.reshape(-1, V), targets.reshape(-1)
    p = np.exp(z - z.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    counted = t != -100
    expected = np.zeros_like(p)
    expected[counted] = p[counted]
    expected[counted, t[counted]] -= 1.0
    expected *= 2.5 / counted.sum()
    np.testing.assert_allclose(d, expected, rtol=1e-13, atol=1e-16)
    np.testing.assert_array_equal(d[~counted], 0.0)
    assert np.all(d[counted, t[counted]] < 0)                      # pushes the right logit up
    np.testing.assert_allclose(d.sum(axis=-1), 0.0, atol=1e-15)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_huge_logits_do_not_overflow(dtype):
    logits = np.where(np.random.default_rng(0).random((B, T, V)) < 0.5, -1e4, 1e4).astype(dtype)
    targets = np.random.default_rng(1).integers(0, V, size=(B, T))
    logits[0, 0, targets[0, 0]] = -1e4                             # a hopeless right token: loss ~2e4
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss, cache = cross_entropy_forward(logits, targets)
        d = cross_entropy_backward(1.0, cache)
    assert math.isfinite(loss) and loss > 2e4 / (B * T)
    assert np.all(np.isfinite(d)) and d.dtype == dtype


def test_plus_minus_1e4_exact_value():
    logits = np.array([[1e4, -1e4, 0.0, 9999.0]])
    assert cross_entropy_forward(logits, np.array([3]))[0] == pytest.approx(1 + math.log1p(math.exp(-1)),
                                                                            rel=1e-12)
    assert cross_entropy_forward(logits, np.array([1]))[0] == pytest.approx(2e4 + math.log1p(math.exp(-1)),
                                                                            rel=1e-15)


def test_all_ignored_is_zero_not_nan():
    logits, _ = case()
    with np.errstate(all="raise"):
        loss, cache = cross_entropy_forward(logits, np.full((B, T), -100))
        d = cross_entropy_backward(1.0, cache)
    assert loss == 0.0 and isinstance(loss, float)
    assert d.shape == logits.shape and not d.any()


@settings(max_examples=25, deadline=None)
@given(v=st.integers(1, 5000), n=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_equal_logits_give_ln_v(v, n, seed):
    rng = np.random.default_rng(seed)
    const = rng.standard_normal() * 100
    loss, cache = cross_entropy_forward(np.full((n, v), const), rng.integers(0, v, size=n))
    assert loss == pytest.approx(math.log(v), rel=1e-12, abs=1e-12)
    d = cross_entropy_backward(1.0, cache)
    assert d.max() == pytest.approx(1.0 / (v * n)) or v == 1


@settings(max_examples=25, deadline=None)
@given(shift=st.floats(-1e3, 1e3), seed=st.integers(0, 2**16))
def test_shifting_a_row_changes_nothing(shift, seed):
    logits, targets = case(seed)
    rows = np.random.default_rng(seed).standard_normal((B, T, 1)) * shift   # a different shift per row
    l1, c1 = cross_entropy_forward(logits, targets)
    l2, c2 = cross_entropy_forward(logits + rows, targets)
    assert l2 == pytest.approx(l1, rel=1e-9, abs=1e-9)
    np.testing.assert_allclose(cross_entropy_backward(1.0, c2), cross_entropy_backward(1.0, c1), atol=1e-9)


def test_masking_equals_dropping_the_rows():
    logits, targets = case()
    t = masked(targets)
    keep = t.reshape(-1) != -100
    loss_masked, cm = cross_entropy_forward(logits, t)
    loss_kept, ck = cross_entropy_forward(logits.reshape(-1, V)[keep], t.reshape(-1)[keep])
    assert loss_masked == pytest.approx(loss_kept, rel=1e-14)
    dm = cross_entropy_backward(1.0, cm).reshape(-1, V)
    np.testing.assert_allclose(dm[keep], cross_entropy_backward(1.0, ck), rtol=1e-14)


def test_ignore_index_can_be_a_real_id():
    logits, targets = case()
    targets[:, 0] = 0                                              # id 0 used as padding
    loss, _ = cross_entropy_forward(logits, targets, ignore_index=0)
    nll = nll_by_hand(logits, targets).reshape(B, T)
    assert loss == pytest.approx(nll[targets != 0].mean(), rel=1e-13)
    with pytest.raises(IndexError):                                # -100 is an ordinary (bad) id now
        cross_entropy_forward(logits, masked(targets), ignore_index=0)


@pytest.mark.parametrize("bad", [V, V + 5, -1, -5])
def test_out_of_range_targets_raise(bad):
    logits, targets = case()
    targets[1, 2] = bad
    with pytest.raises(IndexError, match="ignore_index"):
        cross_entropy_forward(logits, targets)


def test_wrong_number_of_targets_raises():
    logits, targets = case()
    with pytest.raises(ValueError, match="targets"):
        cross_entropy_forward(logits, targets[:, :3])


def test_float32_in_float32_gradient_out():
    logits, targets = case()
    loss32, cache = cross_entropy_forward(logits.astype(np.float32), targets)
    d32 = cross_entropy_backward(1.0, cache)
    loss64, cache64 = cross_entropy_forward(logits.astype(np.float32).astype(np.float64), targets)
    assert isinstance(loss32, float) and d32.dtype == np.float32
    assert loss32 == pytest.approx(loss64, rel=1e-6)
    np.testing.assert_allclose(d32, cross_entropy_backward(1.0, cache64), rtol=1e-4, atol=1e-7)


def test_inputs_are_not_modified():
    logits, targets = case()
    targets = masked(targets)
    before = logits.copy(), targets.copy()
    _, cache = cross_entropy_forward(logits, targets)
    cross_entropy_backward(1.0, cache)
    np.testing.assert_array_equal(before[0], logits)
    np.testing.assert_array_equal(before[1], targets)
