"""The engines' thread pool: run one function over blocks of rows, on every core, with cache-sized blocks.

NumPy releases the GIL inside its ufuncs, reductions and matmuls, so plain Python threads that each call
NumPy on their own rows of an array run on separate cores. The layer engines use it like this:

    def work(start, stop):                      # rows start..stop of every array involved
        np.tanh(x[start:stop], out=t[start:stop])
    run_blocks(work, n_rows=x.shape[0], row_size=x[0].size)

`run_blocks` cuts range(n_rows) into blocks of about BLOCK_SIZE elements (so a chain of passes over one
block stays in the core's L2 cache: fusing by blocking, since NumPy cannot fuse expressions); the calling
thread and the pool's workers take blocks from one shared counter until none is left, and it returns when
all are done. Below PARALLEL_MIN elements, or with one thread, the caller runs the blocks itself: no pool.

The pool is the only state here. It is created on first use by an engine (never on import), sized like
BLAS: OPENBLAS_NUM_THREADS / OMP_NUM_THREADS / MKL_NUM_THREADS if set, else os.cpu_count(). With
MINIGPT_ENGINES=0 no engine runs, so no thread is ever started.

What this file deliberately does not do: pin threads, nest (inside a worker run_blocks runs inline), split
matmuls that BLAS already spreads over the cores, or decide whether an engine is on (minigpt/engines.py).
"""

from __future__ import annotations

import itertools
import math
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

# Measured on the 2-core VM (benchmarks/train_step.py shapes): handing a block to the other thread costs
# ~10 us; a pass over 32K float32 elements costs ~5-15 us, a chain of passes several times that.
PARALLEL_MIN = 32_768     # elements below which an engine runs on the calling thread only
BLOCK_SIZE = 65_536       # elements per block: 256 KiB of float32, a few of them fit in L2 together
BLAS_THREADED = 262_144   # m*n*k above which OpenBLAS splits one matmul over its own threads (its
                          # GEMM_MULTITHREAD_THRESHOLD 4 x 65536): engines then leave those matmuls to it

_PREFIX = "minigpt-engine"
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def n_threads() -> int:
    """Threads the engines use: the BLAS thread count if one is set, else the number of cores."""
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        value = os.environ.get(var, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return os.cpu_count() or 1


def _get_pool(workers: int) -> ThreadPoolExecutor:
    """The shared pool, created on first use (workers: threads besides the caller's)."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=_PREFIX)
        return _pool


def split(n_rows: int, n_parts: int) -> list[tuple[int, int]]:
    """range(n_rows) cut into n_parts contiguous (start, stop) ranges of near-equal length (none empty)."""
    n_parts = max(1, min(n_parts, n_rows))
    return [(n_rows * i // n_parts, n_rows * (i + 1) // n_parts) for i in range(n_parts)]


def run_blocks(work: Callable[[int, int], None], n_rows: int, row_size: int,
               block_size: int = BLOCK_SIZE, parallel_min: int = PARALLEL_MIN, max_threads: int = 0) -> None:
    """Call work(start, stop) over blocks covering range(n_rows), spread over the pool's threads.

    row_size: elements per row (sets the block length). Each row is handled by exactly one call, so
    anything computed per row (an element-wise pass, a reduction along the row) is the same number it
    would be on the whole array. The blocks are taken from one shared counter by the calling thread and
    the workers alike, and the caller waits only for blocks already taken: on a loaded machine, where a
    worker may wake up late, the caller simply does more of them itself. An exception in any block is
    raised here, after every block has ended. max_threads > 0 caps the threads (1: blocks, no pool).
    """
    if n_rows <= 0:
        return
    total = n_rows * max(1, row_size)
    threads = min(n_threads() if total >= parallel_min else 1, n_rows, max_threads or n_rows)
    blocks = split(n_rows, max(threads, math.ceil(total / block_size)))
    if threads == 1 or threading.current_thread().name.startswith(_PREFIX):
        for start, stop in blocks:                       # inline; a worker never waits on its own pool
            work(start, stop)
        return
    job = _Job(work, blocks)
    pool = _get_pool(n_threads() - 1)
    for _ in range(threads - 1):
        pool.submit(job.run)
    job.run()                                            # the caller takes blocks too
    job.done.wait()
    if job.error is not None:
        raise job.error


class _Job:
    """One run_blocks call: blocks handed out by a shared counter, and an event set when all have ended."""

    def __init__(self, work: Callable[[int, int], None], blocks: list[tuple[int, int]]):
        self.work, self.blocks = work, blocks
        self.taken = itertools.count()                   # next() is atomic under the GIL
        self.left = len(blocks)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        while (i := next(self.taken)) < len(self.blocks):
            try:
                self.work(*self.blocks[i])
            except BaseException as error:              # noqa: BLE001 - handed to the caller
                self.error = self.error or error
            with self.lock:
                self.left -= 1
                if self.left == 0:
                    self.done.set()
