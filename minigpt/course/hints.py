"""A lesson's progressive hints and pitfalls, read from lessons/NN_name/hints.toml.

The file (TOML, read through minigpt.files.boundary) has one table per exercise step and one table of
pitfalls, each a short paragraph the grader prints next to a failing case:

    [steps.1]
    hints = [
        "a nudge: which quantity to think about",
        "the idea, in words",
        "nearly the answer: the formula, with shapes",
    ]

    [pitfalls]
    eps = "eps goes inside the square root, added to the variance ..."

`minigpt lesson hint NN STEP` shows the hints of a step one level at a time (--level L, --all).
What this file does not do: grade, or know which case uses which pitfall (check.py says so).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from minigpt.files.boundary import FileFormatError, get_field, read_toml

HINTS_FILE = "hints.toml"


@dataclass
class Hints:
    """Per step number, its hints (first a nudge, last nearly the answer); per pitfall key, its text."""

    steps: dict[int, list[str]] = field(default_factory=dict)
    pitfalls: dict[str, str] = field(default_factory=dict)


def load_hints(lesson: Path) -> Hints:
    """lessons/NN_name/hints.toml -> Hints; an empty Hints when the lesson has no such file."""
    path = Path(lesson) / HINTS_FILE
    if not path.is_file():
        return Hints()
    data = read_toml(path, "hints file")
    steps = get_field(data, "steps", dict, str(path), default={})
    out = Hints()
    for key, table in steps.items():
        where = f"{path}: [steps.{key}]"
        if not key.isdigit():
            raise FileFormatError(f"{where}: step keys are numbers, e.g. [steps.1]")
        hints = get_field(table, "hints", list, where)
        if not hints or not all(isinstance(h, str) and h.strip() for h in hints):
            raise FileFormatError(f"{where}: 'hints' must be a list of non-empty strings")
        out.steps[int(key)] = [" ".join(h.split()) for h in hints]
    pitfalls = get_field(data, "pitfalls", dict, str(path), default={})
    for key, text in pitfalls.items():
        if not isinstance(text, str) or not text.strip():
            raise FileFormatError(f"{path}: [pitfalls] {key} must be a non-empty string")
        out.pitfalls[key] = " ".join(text.split())
    return out
