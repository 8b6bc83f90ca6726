"""minigpt.files.atomic: a write appears whole or not at all, and leaves no temporary file behind."""

from __future__ import annotations

import pytest

from minigpt.files.atomic import atomic_open, write_bytes_atomic, write_text_atomic


def test_text_is_utf8_with_plain_newlines(tmp_path):
    path = tmp_path / "a.json"
    write_text_atomic(path, "秦川\nline\n")
    assert path.read_bytes() == "秦川\nline\n".encode()
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_replaces_an_existing_file(tmp_path):
    path = tmp_path / "a.bin"
    write_bytes_atomic(path, b"old")
    write_bytes_atomic(path, b"new, longer")
    assert path.read_bytes() == b"new, longer"


def test_a_failed_write_keeps_the_old_file_and_cleans_up(tmp_path):
    path = tmp_path / "a.bin"
    write_bytes_atomic(path, b"old")
    with pytest.raises(KeyboardInterrupt), atomic_open(path) as f:
        f.write(b"half of the new")
        raise KeyboardInterrupt
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.bin"]


def test_a_missing_folder_is_an_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_bytes_atomic(tmp_path / "nope" / "a.bin", b"x")
