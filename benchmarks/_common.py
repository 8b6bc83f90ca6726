"""What every benchmark script shares: pinning BLAS's thread count, and timing a function by its median.

Import it first, before numpy (and before minigpt, which imports numpy): BLAS reads its thread count once,
when numpy or torch is first loaded, so `set_blas_threads` only works before that. This module itself imports
only the standard library. It does not parse arguments or print anything: each script keeps its own options
and output. Scripts run as `python benchmarks/x.py`, which puts this folder on sys.path, so they import it
as `_common`.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from collections.abc import Callable

THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def default_threads() -> int:
    """The machine's core count, the default of every script's --threads."""
    return os.cpu_count() or 1


def set_blas_threads(n: int) -> None:
    """Set OpenBLAS's, OpenMP's and MKL's thread count to n; must run before numpy or torch is imported."""
    if "numpy" in sys.modules:
        raise RuntimeError("set_blas_threads must run before numpy is imported (BLAS reads its thread count "
                           "once, when numpy loads): import benchmarks/_common.py first")
    for var in THREAD_VARS:
        os.environ[var] = str(n)


def keep_memory() -> bool:
    """Apply minigpt's allocator setting (minigpt/allocator.py), as the `minigpt` command does; a benchmark
    is an entry point, so it makes the choice. MINIGPT_KEEP_MEMORY=0 measures without it."""
    from minigpt.allocator import keep_freed_memory  # stdlib only: safe before numpy loads

    return keep_freed_memory()


def median_seconds(fn: Callable[[], object], repeat: int, warmup: int = 0) -> float:
    """Call fn `warmup` times untimed (allocator, BLAS threads, caches), then `repeat` times timed: the
    median in seconds."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def median_ms(fn: Callable[[], object], repeat: int, warmup: int = 1) -> float:
    """median_seconds in milliseconds; one warm-up call by default."""
    return 1e3 * median_seconds(fn, repeat, warmup)
