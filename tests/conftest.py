"""Shared test set-up: a non-interactive matplotlib backend, and the shared corpora (skip when absent)."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# Lesson 09's check compares a local runs/baby with its laptop band when one exists; tests must not depend on
# what a developer happens to have trained, so point it at a folder that is never there.
os.environ["MINIGPT_BABY_RUN"] = os.path.join(os.path.dirname(__file__), "no-such-run")

from minigpt.files.paths import shared_data  # noqa: E402


@pytest.fixture
def shared():
    """shared("tinyshakespeare.txt") -> Path, skipping the test when ../shared/data is not there."""

    def get(name: str):
        path = shared_data(name)
        if path is None:
            pytest.skip(f"shared corpus {name} not available (../shared/data)")
        return path

    return get
