"""Inverted dropout: identity when off, 1/(1-p) scaling, same mask forward and backward, seeds, statistics."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt.course.gradcheck import check_layer
from minigpt.layers.dropout import dropout_backward, dropout_forward

X = np.random.default_rng(0).uniform(0.5, 1.5, (2, 5, 12))     # (B, T, C) no zeros, so out / x is the mask


@pytest.mark.parametrize(("p", "training"), [(0.0, True), (0.5, False), (0.0, False)])
def test_identity_when_off_draws_no_random_numbers(p, training):
    rng = np.random.default_rng(1)
    before = rng.bit_generator.state
    out, cache = dropout_forward(X, p, rng, training)
    np.testing.assert_array_equal(out, X)
    dout = np.random.default_rng(2).standard_normal(X.shape)
    np.testing.assert_array_equal(dropout_backward(dout, cache), dout)
    assert rng.bit_generator.state == before


def test_eval_needs_no_generator():
    out, _ = dropout_forward(X, 0.3, None, training=False)
    np.testing.assert_array_equal(out, X)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_survivors_are_scaled_by_inverse_keep_probability(p):
    out, _ = dropout_forward(X, p, np.random.default_rng(3), True)
    kept = out != 0
    assert kept.any() and (~kept).any()
    np.testing.assert_allclose(out[kept], X[kept] / (1 - p), rtol=1e-14)


def test_backward_uses_the_forward_mask():
    out, cache = dropout_forward(X, 0.4, np.random.default_rng(4), True)
    dout = np.random.default_rng(5).standard_normal(X.shape)
    dx = dropout_backward(dout, cache)
    np.testing.assert_allclose(dx, dout * out / X, rtol=1e-13)
    np.testing.assert_array_equal(dx == 0, out == 0)


def test_finite_differences_with_a_fresh_generator_per_call():
    # the generator advances on every draw: a new one per forward call makes every call draw the same mask
    err = check_layer(lambda x: dropout_forward(x, 0.3, np.random.default_rng(6), True), dropout_backward,
                      [X.copy()])["arg0"]
    assert err < 1e-7


def test_finite_differences_fail_when_the_generator_is_shared():
    """Why the fresh generator matters: a shared one draws a new mask per call and the check breaks."""
    shared = np.random.default_rng(6)
    err = check_layer(lambda x: dropout_forward(x, 0.3, shared, True), dropout_backward, [X.copy()])["arg0"]
    assert err > 1e-2


def test_seeded_reproducibility_and_stream():
    a, _ = dropout_forward(X, 0.3, np.random.default_rng(7), True)
    b, _ = dropout_forward(X, 0.3, np.random.default_rng(7), True)
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(7)
    first, _ = dropout_forward(X, 0.3, rng, True)
    second, _ = dropout_forward(X, 0.3, rng, True)            # the stream moved on: a new mask
    np.testing.assert_array_equal(first, a)
    assert not np.array_equal(first != 0, second != 0)


@settings(max_examples=30, deadline=None)
@given(st.floats(0.01, 0.95), st.integers(0, 2**32 - 1))
def test_kept_fraction_and_mean_match_expectation(p, seed):
    """Binomial statistics: within 5 standard deviations (a false alarm about once in 1.7 million)."""
    n = 50_000
    out, _ = dropout_forward(np.ones(n), p, np.random.default_rng(seed), True)
    kept = np.mean(out != 0)
    assert abs(kept - (1 - p)) <= 5 * np.sqrt(p * (1 - p) / n)
    assert abs(out.mean() - 1.0) <= 5 * np.sqrt(p / (1 - p) / n)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_in_dtype_out(dtype):
    x = X.astype(dtype)
    out, cache = dropout_forward(x, 0.2, np.random.default_rng(8), True)
    dx = dropout_backward(np.ones_like(x), cache)
    assert out.dtype == dx.dtype == dtype


@pytest.mark.parametrize("p", [1.0, 1.5, -0.1])
def test_bad_probability_raises(p):
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        dropout_forward(X, p, np.random.default_rng(9), True)


def test_training_without_generator_raises():
    with pytest.raises(ValueError, match="rng"):
        dropout_forward(X, 0.1, None, True)


# ---- the lesson's grader must catch the bugs the chapter warns about ------------------------------
MUTANTS = {
    "no 1/(1-p) scaling": ("mask = keep.astype(x.dtype) * (1.0 / (1.0 - p))", "mask = keep.astype(x.dtype)"),
    "drops with probability 1-p": ("keep = rng.random(x.shape, dtype=dtype) >= p",
                                   "keep = rng.random(x.shape, dtype=dtype) < p"),
    "a new mask in the backward": ("return dout if mask is None else dout * mask",
                                   "return dout if mask is None else dout * np.random.default_rng(0)"
                                   ".permutation(mask.reshape(-1)).reshape(mask.shape)"),
    "dropout in eval mode": ("if not training or p == 0.0:", "if p == 0.0:"),
}


@pytest.mark.parametrize("bug", list(MUTANTS))
def test_lesson_check_catches(bug, tmp_path):
    import io

    import minigpt.layers.dropout as module
    from minigpt.course.grader import find_lesson, grade

    source = open(module.__file__, encoding="utf-8").read()
    old, new = MUTANTS[bug]
    assert old in source, f"the mutant for {bug!r} no longer matches dropout.py; update it"
    path = tmp_path / "mutant.py"   # lesson 02 grades both pairs: minigpt's embedding plus the mutant dropout
    path.write_text(source.replace(old, new) + "\nfrom minigpt.layers.embedding import embedding_backward, "
                    "embedding_forward  # noqa: E402,F401\n", encoding="utf-8")
    out = io.StringIO()
    g = grade(find_lesson("02"), impl=path, out=out)
    assert g.failed > 0, out.getvalue()
