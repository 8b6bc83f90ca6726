"""Lesson 09's laptop band: a baby run's logged val losses against PyTorch nanoGPT's reference/laptop.json."""

import io
import json

from minigpt.course.grader import Grader, find_lesson, load_check, load_reference


def band_report(tmp_path, shift_at=None, shift=0.0, write_log=True):
    lesson = find_lesson("09")
    check = load_check(lesson)
    ref = load_reference(lesson / "check.py", "laptop.json")
    mean = ref["summary"]["val_loss"]["mean"]
    if write_log:
        lines = []
        for it, m in zip(ref["iters"], mean, strict=True):
            val = m + (shift if it == shift_at else 0.0)
            lines.append(json.dumps({"kind": "eval", "iter": it, "train_loss": m, "val_loss": val}))
        torn = '{"kind": "ev'                                    # a last line cut short by kill -9
        (tmp_path / "log.jsonl").write_text("\n".join(lines) + "\n" + torn, encoding="utf-8")
    g = Grader(out=io.StringIO())
    check._compare_baby_run(g, ref, tmp_path)
    return g


def test_a_run_on_the_reference_mean_passes(tmp_path):
    g = band_report(tmp_path)
    assert g.failed == 0 and g.passed >= 2, g.out.getvalue()


def test_a_run_far_from_the_band_fails(tmp_path):
    g = band_report(tmp_path, shift_at=2000, shift=0.5)
    assert g.failed == 1, g.out.getvalue()
    assert "iter 2000" in g.out.getvalue()


def test_no_run_is_skipped_with_the_command(tmp_path):
    g = band_report(tmp_path, write_log=False)
    assert g.skipped == 1 and g.failed == 0
    assert "minigpt train --preset baby" in g.out.getvalue()
