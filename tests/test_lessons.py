"""Every lesson, three ways: minigpt passes its check, the shipped exercise fails it readably, and the
walk-through (lesson.py) runs start to finish with a non-interactive backend in quick mode."""

import io
import os
import subprocess
import sys

import pytest

from minigpt.course.grader import grade, list_lessons

LESSONS = list_lessons()
IDS = [p.name for p in LESSONS]


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_minigpt_passes_the_check(lesson):
    out = io.StringIO()
    g = grade(lesson, out=out)
    assert g.failed == 0, out.getvalue()
    assert g.passed > 0, out.getvalue()


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_shipped_exercise_fails_readably(lesson):
    out = io.StringIO()
    g = grade(lesson, impl=lesson / "exercise.py", out=out)
    text = out.getvalue()
    assert g.failed > 0, text
    assert "not implemented yet" in text, text


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
