"""Token + position embedding: finite differences, the scatter-add with repeated ids, edge cases, dtypes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt.course.gradcheck import check_layer, rel_error
from minigpt.layers.embedding import embedding_backward, embedding_forward

B, T, C, V, P = 2, 5, 12, 11, 8


def tables(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((V, C)).astype(dtype), rng.standard_normal((P, C)).astype(dtype)


REPEATED = np.array([[3, 7, 3, 3, 0], [7, 1, 2, 3, 10]])    # (B, T) id 3 four times, 7 twice


@pytest.mark.parametrize("start", [0, 3])
def test_finite_differences_with_repeated_ids(start):
    wte, wpe = tables()
    errors = check_layer(embedding_forward, embedding_backward, [REPEATED, wte, wpe], kwargs={"start": start})
    assert set(errors) == {"arg1", "arg2"}
    assert max(errors.values()) < 1e-7, errors


def test_finite_differences_t1():
    wte, wpe = tables()
    errors = check_layer(embedding_forward, embedding_backward, [REPEATED[:, :1], wte, wpe])
    assert max(errors.values()) < 1e-7, errors


def test_forward_is_lookup_plus_position():
    wte, wpe = tables()
    out, _ = embedding_forward(REPEATED, wte, wpe, start=2)
    assert out.shape == (B, T, C)
    for b in range(B):
        for t in range(T):
            np.testing.assert_array_equal(out[b, t], wte[REPEATED[b, t]] + wpe[2 + t])


def test_repeated_ids_accumulate_and_naive_assignment_does_not():
    wte, wpe = tables()
    _, cache = embedding_forward(REPEATED, wte, wpe)
    dout = np.ones((B, T, C))
    dwte, dwpe = embedding_backward(dout, cache)
    counts = np.bincount(REPEATED.ravel(), minlength=V)       # (V,)
    np.testing.assert_array_equal(dwte, np.repeat(counts[:, None], C, axis=1).astype(float))
    np.testing.assert_array_equal(dwpe[:T], np.full((T, C), float(B)))
    np.testing.assert_array_equal(dwpe[T:], 0.0)
    naive = np.zeros_like(wte)
    naive[REPEATED] += dout                                  # the pitfall the chapter warns about
    assert rel_error(naive, dwte) > 0.1                      # the check above would have caught it


def test_unused_positions_get_zero_gradient_with_start():
    wte, wpe = tables()
    _, cache = embedding_forward(REPEATED[:, :3], wte, wpe, start=4)
    _, dwpe = embedding_backward(np.ones((B, 3, C)), cache)
    assert np.all(dwpe[:4] == 0) and np.all(dwpe[7:] == 0) and np.all(dwpe[4:7] == B)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_in_dtype_out(dtype):
    wte, wpe = tables(dtype)
    out, cache = embedding_forward(REPEATED, wte, wpe)
    dwte, dwpe = embedding_backward(np.ones((B, T, C), dtype=dtype), cache)
    assert out.dtype == dwte.dtype == dwpe.dtype == dtype


@pytest.mark.parametrize("bad", [V, V + 5, -1])
def test_bad_token_id_raises_with_the_id(bad):
    wte, wpe = tables()
    with pytest.raises(IndexError, match=f"token id {bad} "):
        embedding_forward(np.array([[1, bad, 2]]), wte, wpe)


def test_too_many_positions_raise():
    wte, wpe = tables()
    with pytest.raises(ValueError, match="block_size"):
        embedding_forward(np.zeros((1, P + 1), dtype=np.int64), wte, wpe)
    with pytest.raises(ValueError, match="block_size"):
        embedding_forward(np.zeros((1, 3), dtype=np.int64), wte, wpe, start=P - 2)
    embedding_forward(np.zeros((1, 3), dtype=np.int64), wte, wpe, start=P - 3)   # the last fit is fine


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 3), st.integers(1, P), st.integers(0, 2**32 - 1))
def test_backward_equals_one_hot_transpose(b, t, seed):
    """The lookup is onehot @ wte, so its backward is onehot^T @ dout, summed over every use of an id."""
    rng = np.random.default_rng(seed)
    wte, wpe = tables(seed=seed % 7)
    idx = rng.integers(0, V, (b, t))                          # (b, t) repeats are likely
    out, cache = embedding_forward(idx, wte, wpe)
    onehot = np.eye(V)[idx.reshape(-1)]                       # (N, V)
    np.testing.assert_allclose(out.reshape(-1, C), onehot @ wte + np.tile(wpe[:t], (b, 1)), rtol=1e-12)
    dout = rng.standard_normal((b, t, C))
    dwte, dwpe = embedding_backward(dout, cache)
    np.testing.assert_allclose(dwte, onehot.T @ dout.reshape(-1, C), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dwpe[:t], dout.sum(axis=0), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dwte.sum(axis=0), dout.sum(axis=(0, 1)), rtol=1e-10, atol=1e-12)


def test_negative_start_raises():
    wte, wpe = tables()
    with pytest.raises(ValueError, match="start"):
        embedding_forward(np.zeros((1, 2), dtype=np.int64), wte, wpe, start=-1)


# ---- the lesson's grader must catch the bugs the chapter warns about ------------------------------
MUTANTS = {
    "dwte[idx] += dout": ("np.add.at(dwte, idx.reshape(-1), dout.reshape(-1, C))",
                          "dwte[idx.reshape(-1)] += dout.reshape(-1, C)"),
    "positions from 0, ignoring start": ("wpe[start:start + T]  ", "wpe[:T]  "),
    "no range check (negative ids wrap)": ("idx.min() < 0 or idx.max() >= V", "idx.max() >= V"),
}


@pytest.mark.parametrize("bug", list(MUTANTS))
def test_lesson_check_catches(bug, tmp_path):
    import io

    import minigpt.layers.embedding as module
    from minigpt import engines
    from minigpt.course.grader import find_lesson, grade

    source = open(module.__file__, encoding="utf-8").read()
    old, new = MUTANTS[bug]
    assert old in source, f"the mutant for {bug!r} no longer matches embedding.py; update it"
    path = tmp_path / "mutant.py"   # lesson 02 grades both pairs: the mutant embedding plus minigpt's dropout
    path.write_text(source.replace(old, new) + "\nfrom minigpt.layers.dropout import dropout_backward, "
                    "dropout_forward  # noqa: E402,F401\n", encoding="utf-8")
    out = io.StringIO()
    with engines.disabled():        # the mutant is in the definition; its engine would take over
        g = grade(find_lesson("02"), impl=path, out=out)
    assert g.failed > 0, out.getvalue()
