"""Every lesson, four ways: minigpt passes its check step by step, the shipped exercise is "not started"
(one line per step, no failure storm), every step has progressive hints, and the walk-through (lesson.py)
runs start to finish with a non-interactive backend in quick mode."""

import ast
import io
import os
import re
import subprocess
import sys

import pytest

from minigpt.course.grader import grade, list_lessons, list_steps
from minigpt.course.hints import load_hints

LESSONS = list_lessons()
IDS = [p.name for p in LESSONS]


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_minigpt_passes_the_check(lesson):
    out = io.StringIO()
    g = grade(lesson, out=out)
    assert g.failed == 0 and g.ok, out.getvalue()
    assert g.passed > 0, out.getvalue()
    assert all(status in ("PASS", "SKIPPED") for _, status, _ in g.steps), g.summary()
    assert not g.unknown_pitfalls, f"check.py names pitfalls hints.toml lacks: {sorted(g.unknown_pitfalls)}"


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_shipped_exercise_is_not_started_step_by_step(lesson):
    out = io.StringIO()
    g = grade(lesson, impl=lesson / "exercise.py", out=out)
    text = out.getvalue()
    steps = list_steps(lesson)
    graded = [s.number for s in steps if s.functions and not s.title.startswith(("optional", "a real run"))]
    assert g.failed == 0, text                              # not a storm of failures ...
    assert g.not_started == graded and not g.ok, text        # ... but every exercise step not started
    todo = [r for r in g.results if r.status == "TODO"]
    assert len(todo) == len(graded) and all(not r.lines for r in todo), text     # one line per step
    assert "not started" in text and "ALL PASS" not in text, text


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_every_step_has_progressive_hints(lesson):
    hints = load_hints(lesson)
    numbers = [s.number for s in list_steps(lesson)]
    assert numbers == list(range(1, len(numbers) + 1)), numbers
    with_functions = [s.number for s in list_steps(lesson) if s.functions]
    assert sorted(hints.steps) == with_functions, (sorted(hints.steps), with_functions)
    for n, texts in hints.steps.items():
        assert len(texts) >= 3, f"step {n}: a nudge, the idea, nearly the answer"
    assert hints.pitfalls, "the chapter's pitfalls, for the grader to print"


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_exercise_errors_say_only_which_step(lesson):
    """NotImplementedError("step K not started: <function>") and nothing more: no formula in the message."""
    tree = ast.parse((lesson / "exercise.py").read_text(encoding="utf-8"))
    steps: dict[str, int] = {}
    for s in list_steps(lesson):
        for f in s.functions:
            steps.setdefault(f, s.number)                         # the first step that asks for it
    found = 0
    for node in ast.walk(tree):
        if isinstance(node, ast.Raise) and isinstance(node.exc, ast.Call) and \
                getattr(node.exc.func, "id", "") == "NotImplementedError" and node.exc.args:
            message = node.exc.args[0].value
            if message == "subclasses implement step()":
                continue
            m = re.fullmatch(r"step (\d+) not started: ([\w.]+)", message)
            assert m, f"{lesson.name}: {message!r}"
            assert steps.get(m.group(2)) == int(m.group(1)), f"{message!r} vs the check's steps {steps}"
            found += 1
    assert found > 0


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_lesson_script_runs(lesson, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg", MINIGPT_QUICK="1", MINIGPT_FIGURES=str(tmp_path))
    proc = subprocess.run([sys.executable, "lesson.py"], cwd=lesson, env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]


def test_cli_lesson_list_and_unknown_lesson(capsys):
    from minigpt.cli import main

    assert main(["lesson", "list"]) == 0
    assert main(["lesson", "check", "99"]) == 2
    assert "no lesson" in capsys.readouterr().err
