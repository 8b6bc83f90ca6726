"""Atomic file writes: into a temporary file beside the target, fsynced, then renamed over it.

A crash or Ctrl-C mid-write leaves the old file (if any) intact, never half a new one, and the temporary
file (`.<name>.<random>.tmp`, hidden) is removed when the write fails. The new file gets the usual
permissions (0o666 less the umask), like any other file the process creates.

Deliberately not here: creating the parent folder (callers that want it call mkdir first), fsyncing the
folder after the rename, swapping whole folders (checkpoint.py) and resumable downloads (download.py keeps
its `<file>.part` on purpose).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_open(path: str | Path) -> Iterator[BinaryIO]:
    """Open a binary file for writing that appears at path, complete, only when the `with` block succeeds."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write bytes to path atomically (see the module docstring)."""
    with atomic_open(path) as f:
        f.write(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write text to path as UTF-8 atomically, newlines kept as "\\n" on every platform."""
    write_bytes_atomic(path, text.encode("utf-8"))
