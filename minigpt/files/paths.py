"""Where things live: the repository's lessons/ and data/ folders, and the shared test corpora.

minigpt is meant to be used from a clone (`pip install -e .`), so the lessons and data folders sit
next to the package. This file only finds folders (figures_dir also creates a lesson's figures/); it
downloads nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def lessons_dir() -> Path:
    """The lessons/ folder of the clone minigpt was installed from (override: $MINIGPT_LESSONS)."""
    path = Path(os.environ.get("MINIGPT_LESSONS", REPO_ROOT / "lessons"))
    if not path.is_dir():
        raise FileNotFoundError(
            f"lessons folder not found at {path}. The lessons ship with the source tree: clone the "
            "repository and install it with `pip install -e .`, or set MINIGPT_LESSONS to the folder."
        )
    return path


def data_dir() -> Path:
    """Where dataset recipes write prepared data: data/ in the clone (override: $MINIGPT_DATA)."""
    return Path(os.environ.get("MINIGPT_DATA", REPO_ROOT / "data"))


def shared_data(name: str) -> Path | None:
    """A file from the shared corpora folder (../shared/data beside the clone, or $MINIGPT_SHARED_DATA).

    Returns None when it is absent, so tests and checks that need it can skip cleanly.
    """
    folder = Path(os.environ.get("MINIGPT_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    path = folder / name
    return path if path.is_file() else None


def figures_dir(lesson_file: str | Path) -> Path:
    """Where a lesson.py saves its figures: lessons/NN_name/figures/ (override: $MINIGPT_FIGURES).

    The tests point it at a temporary folder so running them never rewrites the committed figures.
    """
    default = Path(lesson_file).resolve().parent / "figures"
    path = Path(os.environ.get("MINIGPT_FIGURES", default))
    path.mkdir(parents=True, exist_ok=True)
    return path


def quick() -> bool:
    """True when $MINIGPT_QUICK=1: lessons and demos shrink their work (the tests set it)."""
    return os.environ.get("MINIGPT_QUICK", "") == "1"
