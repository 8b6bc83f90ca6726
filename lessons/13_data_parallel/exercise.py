"""Lesson 13 exercise: cut the buffer, slice the batch, sum with a ring, price the ring.

Fill in every body that raises NotImplementedError, in order, then grade your file, one step or all:

    minigpt lesson check 13 --impl lessons/13_data_parallel/exercise.py [--step K]
    minigpt lesson hint 13 K          # the first hint nudges, the last nearly gives it away

No MPI needed: the ring runs simulated, N ranks' buffers in one process, and the grader compares it with
what torch.distributed's all-reduce gave in real processes. The steps:

  1. chunk_bounds              cut n elements into N nearly equal chunks
  2. shard                     rank r's rows of a global batch, and the weight its gradient gets
  3. simulate_ring_allreduce   reduce-scatter then all-gather, each rank talking only to its neighbours
  4. ring_bytes_per_rank, ring_seconds   the ring's cost on a link with latency and bandwidth

The README's math section has the ring's schedule and its cost; the shapes and rules are below.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


# ---- step 1 ------------------------------------------------------------------------------------------------
def chunk_bounds(n: int, size: int) -> list[tuple[int, int]]:
    """[start, stop) of each of `size` chunks of n elements, in order, covering 0 .. n without gap.

    Lengths differ by at most one; the longer chunks come first (torch.tensor_split's and
    np.array_split's convention). n may be smaller than size (some chunks are then empty).
    """
    raise NotImplementedError("step 1 not started: chunk_bounds")


# ---- step 2 ------------------------------------------------------------------------------------------------
def shard(x: np.ndarray, y: np.ndarray, rank: int, size: int,
          ignore_index: int = -100) -> tuple[np.ndarray, np.ndarray, float]:
    """Rank `rank`'s rows of a global batch, and the weight of its gradient.

    x, y: (N*B, T) int, the global batch every rank drew with the same seed; size = N.
    Returns x_r, y_r: (B, T), rows r*B .. (r+1)*B - 1, and weight_r: a float such that
    sum over r of weight_r * (gradient of rank r's mean loss) == gradient of the whole batch's mean loss,
    where a mean counts only targets != ignore_index (fine-tuning masks the prompts). The weights sum to 1.
    Raise ValueError if N does not divide the number of rows.
    """
    raise NotImplementedError("step 2 not started: shard")


# ---- step 3 ------------------------------------------------------------------------------------------------
def simulate_ring_allreduce(buffers: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The ring all-reduce of N ranks' (n,) float buffers, simulated in one process.

    Returns N new arrays, each the element-wise sum of all buffers; the inputs stay unchanged. Rules of
    the ring: rank r sends only to rank (r + 1) % N and receives only from rank (r - 1) % N; at each of the
    2(N - 1) steps every rank sends one chunk (chunk_bounds(n, N)) at the same time; a chunk is summed
    completely on one rank and then copied around, so every rank ends with the same bits.
    """
    raise NotImplementedError("step 3 not started: simulate_ring_allreduce")


# ---- step 4 ------------------------------------------------------------------------------------------------
def ring_bytes_per_rank(n_bytes: float, size: int) -> float:
    """Bytes each rank sends in your ring all-reduce of an n_bytes buffer over `size` ranks (0 for 1)."""
    raise NotImplementedError("step 4 not started: ring_bytes_per_rank")


def ring_seconds(n_bytes: float, size: int, latency_s: float, bandwidth: float) -> float:
    """Its time when each message costs latency_s seconds plus its bytes / bandwidth (bytes/s); 0 for 1."""
    raise NotImplementedError("step 4 not started: ring_seconds")
