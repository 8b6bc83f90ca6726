"""Shared test set-up: a non-interactive matplotlib backend, and the shared corpora (skip when absent)."""

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

from minigpt.paths import shared_data  # noqa: E402


@pytest.fixture
def shared():
    """shared("tinyshakespeare.txt") -> Path, skipping the test when ../shared/data is not there."""

    def get(name: str):
        path = shared_data(name)
        if path is None:
            pytest.skip(f"shared corpus {name} not available (../shared/data)")
        return path

    return get
