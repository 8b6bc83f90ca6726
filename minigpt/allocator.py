"""Keep freed memory for reuse: one allocator setting that makes NumPy training much faster on Linux.

A training step makes hundreds of temporary arrays of a few MB each. glibc's malloc serves any block
larger than its mmap threshold (128 KB at start) with fresh pages from the operating system and returns
them when the array is freed, so the next array pays a page fault for every 4 KB it touches. On the
2-core VM this project is measured on, that was 40% of a transformer block's forward+backward time.

`keep_freed_memory()` raises glibc's mmap threshold and trim threshold (mallopt), so freed blocks stay
in the heap and are reused without page faults. The price: the process keeps its peak memory instead of
returning it between steps. Importing minigpt never calls it: the entry points that want it do (the
`minigpt` command line, and the benchmarks); a notebook or a library user calls it explicitly.
MINIGPT_KEEP_MEMORY=0 turns it off everywhere. Measured with benchmarks/block.py (--no-keep-memory for
the other side): see the README's Speed section.

What this file does not do: anything on systems without glibc (macOS, Windows, musl) — there it is a
no-op — or any caching of its own.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1   # mallopt parameter numbers from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
THRESHOLD = 256 * 1024 * 1024   # blocks below 256 MB come from (and go back to) the reusable heap


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks below THRESHOLD for reuse. Returns True if it took effect."""
    if os.environ.get("MINIGPT_KEEP_MEMORY", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):   # not glibc
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, THRESHOLD))
