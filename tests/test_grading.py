"""The autograder itself: it must pass what is right, fail what is wrong, and never crash on a bug."""

import io

import numpy as np

from minigpt.course.grader import Grader


def make():
    return Grader(out=io.StringIO())


def test_close_passes_within_tolerance_and_fails_outside():
    g = make()
    assert g.close("ok", np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-12]), rtol=1e-10)
    assert not g.close("off", np.array([1.0, 2.1]), np.array([1.0, 2.0]), rtol=1e-10)
    assert not g.close("shape", np.zeros((2, 3)), np.zeros((3, 2)), rtol=1e-10)
    assert not g.close("nan", np.array([np.nan]), np.array([1.0]), rtol=1.0, atol=1.0)
    assert not g.close("dtype", np.zeros(2), np.zeros(2), rtol=0, dtype=np.float32)
    assert g.failed == 4 and g.passed == 1
    assert "shape (2, 3), but the reference has shape (3, 2)" in g.out.getvalue()


def test_case_turns_exceptions_into_failures():
    g = make()
    with g.case("todo"):
        raise NotImplementedError("write layernorm_forward")
    with g.case("bug"):
        _ = np.zeros(2) @ np.zeros(3)
    with g.case("fine"):
        g.equal("ids", [1, 2], [1, 2])
    text = g.out.getvalue()
    assert g.failed == 2 and g.passed == 1
    assert "not implemented yet" in text and "ValueError" in text


def test_raises_and_equal():
    g = make()
    with g.raises("bad id", ValueError):
        raise ValueError("id 99 is out of range")
    with g.raises("silent", ValueError):
        pass
    assert not g.equal("ids", [1, 2, 3], [1, 2, 4])
    assert "first difference at position 2" in g.out.getvalue()
    assert g.failed == 2 and g.passed == 1
