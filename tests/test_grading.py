"""The autograder itself: it must pass what is right, fail what is wrong, name the bug, and never crash."""

import io
import subprocess
import sys

import numpy as np
import pytest

from minigpt.course.diagnose import diagnose, where_worst
from minigpt.course.grader import Grader, Step, grade
from minigpt.course.hints import load_hints
from minigpt.files.boundary import FileFormatError


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


def test_the_worst_difference_is_shown_where_it_is():
    want = np.zeros((2, 3, 4))
    got = want.copy()
    got[1, 2, 3] = 0.5                                   # the only wrong value, far from the first four
    g = make()
    g.close("x", got, want, rtol=1e-10, atol=1e-12)
    text = g.out.getvalue()
    assert "worst at index (1, 2, 3): yours 0.5, reference 0" in text
    assert "tolerance rtol 1e-10 atol 1e-12" in text and "max |diff| 0.5" in text
    assert where_worst(got, want, 1e-10, 1e-12).startswith("worst at index (1, 2, 3)")


RNG = np.random.default_rng(0)
W = RNG.standard_normal((3, 4, 5)) + 2.0                 # (3, 4, 5): every axis a different length


@pytest.mark.parametrize("got, want, phrase", [
    (0.9166 * W, W, "constant ratio: yours ≈ 0.9166 × reference"),
    (-W, W, "sign flip"),
    (W + 0.25, W, "constant offset: yours ≈ reference + 0.25"),
    (np.swapaxes(W[:, :4, :4], 1, 2), W[:, :4, :4], "transpose: yours with axes 1 and 2 swapped"),
    (W[:, :, 1:], W[:, :, :-1], "shift by one"),
    (np.where(np.arange(5) == 2, np.nan, W), W, "NaN/inf: 12 NaN"),
    (np.zeros_like(W), W, "all zeros"),
    (np.stack([W] * 6), W, "missing sum: summing yours over axis 0"),
    (W.reshape(12, 5).T, W.reshape(12, 5), "transposed: np.transpose(yours, (1, 0))"),
    (W[None], W, "extra axes of length 1"),
])
def test_bug_signatures_are_named(got, want, phrase):
    if phrase.startswith("shift"):
        got = np.concatenate([got, W[:, :, :1]], axis=2)                  # yours[i] = reference[i + 1]
        want = W
    if phrase.startswith("missing sum"):
        got, want = got, 6 * W
    if phrase.startswith("constant ratio"):
        lines = diagnose(got, want, 1e-10, 1e-12)
        assert any(line.startswith("constant ratio: yours ≈ 0.9166") for line in lines), lines
        return
    lines = diagnose(got, want, 1e-10, 1e-12)
    assert any(phrase in line for line in lines), lines


def test_no_signature_for_noise():
    noisy = W + 1e-3 * np.random.default_rng(1).standard_normal(W.shape)
    lines = diagnose(noisy, W, 1e-10, 1e-12)
    assert not any(k in " ".join(lines) for k in ("ratio", "sign", "transpose", "shift", "offset")), lines


def test_unchanged_in_place_argument_is_named():
    before = W.copy()
    g = make()
    g.close("p after the step", before, W - 0.1, rtol=1e-12, atol=1e-14, initial=before)
    assert "not updated in place" in g.out.getvalue()


def test_exact_comparisons_of_ids_diagnose_a_shift():
    g = make()
    g.equal("y", np.array([[9, 5, 1, 4, 2]]), np.array([[5, 1, 4, 2, 7]]))
    assert "shift by one" in g.out.getvalue()


def test_case_turns_exceptions_into_failures_and_prints_the_pitfall_once():
    g = make()
    g.hints.pitfalls["eps"] = "eps goes inside the square root"
    with g.case("todo"):
        raise NotImplementedError("write layernorm_forward")
    with g.case("bug"):
        _ = np.zeros(2) @ np.zeros(3)
    with g.case("fine"):
        g.equal("ids", [1, 2], [1, 2])
    with g.case("wrong", pitfall="eps"):
        g.close("a", 1.0, 2.0, rtol=0)
        g.close("b", 1.0, 2.0, rtol=0)
    text = g.out.getvalue()
    assert g.failed == 4 and g.passed == 1
    assert "not implemented yet" in text and "ValueError" in text
    assert text.count("pitfall: eps goes inside the square root") == 1


def test_raises_and_equal():
    g = make()
    with g.raises("bad id", ValueError):
        raise ValueError("id 99 is out of range")
    with g.raises("silent", ValueError):
        pass
    assert not g.equal("ids", [1, 2, 3], [1, 2, 4])
    assert "first difference at position 2" in g.out.getvalue()
    assert g.failed == 2 and g.passed == 1


def test_a_failing_finite_difference_check_reads_greater_than():
    g = make()
    assert not g.below("relative error", 0.48, 1e-6)
    assert g.below("relative error", 3e-9, 1e-7)
    text = g.out.getvalue()
    assert "relative error 4.8e-01 > 1e-06" in text and "relative error 3.0e-09 < 1e-07" in text
    assert "4.8e-01 <" not in text


def _steps():
    def one(impl, g):
        with g.case("forward"):
            g.close("out", impl.forward(), 1.0, rtol=0)

    def two(impl, g):
        with g.case("backward"):
            impl.forward()
            g.close("dx", impl.backward(), 2.0, rtol=0)

    return [Step(1, "forward", ("forward",), one), Step(2, "backward", ("backward",), two)]


class _Impl:
    def __init__(self, forward=None, backward=None):
        self._f, self._b = forward, backward

    def forward(self):
        if self._f is None:
            raise NotImplementedError("step 1 not started: forward")
        return self._f

    def backward(self):
        if self._b is None:
            raise NotImplementedError("step 2 not started: backward")
        return self._b


def test_a_step_not_started_is_one_line_and_never_a_pass():
    g = make()
    for s in _steps():
        g.run_step(s, _Impl())
    text = g.out.getvalue()
    assert g.failed == 0 and g.not_started == [1, 2] and not g.ok
    assert text.count("TODO") == 2
    assert "step 2 not started: waits for step 1 (step 1 not started: forward)" in text
    assert "NOT YET" in g.summary() and "steps 1, 2 not started" in g.summary()


def test_steps_are_reported_separately():
    g = make()
    for s in _steps():
        g.run_step(s, _Impl(forward=1.0, backward=3.0))
    assert [status for _, status, _ in g.steps] == ["PASS", "FAIL"]
    assert g.failed == 1 and not g.ok


def test_skips_never_end_in_all_pass():
    g = make()
    g.true("something", True)
    g.skip("GPT-2 ids", "gpt2.tiktoken is absent: put it in ../shared/data/ to grade encode")
    summary = g.summary()
    assert "ALL PASS" not in summary and g.ok
    assert "NOT EVERYTHING WAS TESTED" in summary and "put it in ../shared/data/" in summary


def test_grade_one_step_alone():
    out = io.StringIO()
    g = grade("03", out=out, step=2)
    assert g.ok and [s.number for s, _, _ in g.steps] == [2]
    assert "(step 2 only)" in out.getvalue()
    with pytest.raises(KeyError, match="no step 9"):
        grade("03", out=io.StringIO(), step=9)


def test_hints_file_is_checked(tmp_path):
    (tmp_path / "hints.toml").write_text('[steps.1]\nhints = ["a nudge", "the answer"]\n'
                                         '[pitfalls]\neps = "inside the root"\n', encoding="utf-8")
    hints = load_hints(tmp_path)
    assert hints.steps == {1: ["a nudge", "the answer"]} and hints.pitfalls == {"eps": "inside the root"}
    (tmp_path / "hints.toml").write_text('[steps.one]\nhints = ["x"]\n', encoding="utf-8")
    with pytest.raises(FileFormatError, match="step keys are numbers"):
        load_hints(tmp_path)
    (tmp_path / "hints.toml").write_text('[steps.1]\nhints = []\n', encoding="utf-8")
    with pytest.raises(FileFormatError, match="non-empty strings"):
        load_hints(tmp_path)


def test_cli_hint_and_step(capsys):
    from minigpt.cli import main

    assert main(["lesson", "hint", "03"]) == 0
    assert "step 2" in capsys.readouterr().out
    assert main(["lesson", "hint", "03", "2"]) == 0
    out = capsys.readouterr().out
    assert "hint 1/" in out and "hint 2/" not in out and "--level 2" in out
    assert main(["lesson", "hint", "03", "2", "--all"]) == 0
    assert "hint 3/3" in capsys.readouterr().out
    assert main(["lesson", "hint", "03", "7"]) == 2
    assert main(["lesson", "check", "03", "--step", "1", "--quiet"]) == 0
    assert "ALL PASS (step 1 only)" in capsys.readouterr().out


def test_cli_exit_code_is_1_for_an_untouched_exercise():
    proc = subprocess.run([sys.executable, "-m", "minigpt", "lesson", "check", "03", "--impl",
                           "lessons/03_layernorm/exercise.py", "--quiet"], capture_output=True, text=True)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "steps 1, 2 not started" in proc.stdout


def test_a_step_half_written_is_unfinished_and_keeps_its_checks():
    def both(impl, g):
        with g.case("forward"):
            g.close("out", impl.forward(), 1.0, rtol=0)
        with g.case("backward"):
            g.close("dx", impl.backward(), 2.0, rtol=0)

    g = make()
    g.run_step(Step(1, "forward and backward", ("forward", "backward"), both), _Impl(forward=1.0))
    assert g.passed == 1 and g.failed == 0 and not g.ok
    assert g.steps[0][1] == "UNFINISHED"
    assert "TODO  step 1 unfinished:" in g.out.getvalue() and "not started: backward" in g.out.getvalue()
