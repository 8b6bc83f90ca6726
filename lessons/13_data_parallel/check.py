"""Lesson 13's checks: chunks, a rank's slice and its weight, the ring all-reduce, and the ring's cost,
against references from PyTorch (autograd, torch.distributed with gloo, tensor_split).

Steps, graded one by one (an untouched step reports "not implemented yet"):

  1. chunk_bounds(n, size)                 == torch.tensor_split's chunks of arange(n), for 42 (n, N) pairs
  2. shard(x, y, rank, size)               rows and weights == torch.chunk's and the counted targets';
                                           then sum_r weight_r x grad_r (torch's per-rank gradients) ==
                                           torch's gradient of the whole batch's masked mean
  3. simulate_ring_allreduce(buffers)      == what torch.distributed.all_reduce (gloo, real processes) gave,
                                           for N = 2, 3, 5 and n = 0 .. 100 (incl. n < N and n not divisible
                                           by N); every rank bit-identical; inputs untouched; then the ring
                                           of the weighted per-rank gradients == the big-batch gradient
  4. ring_bytes_per_rank, ring_seconds     == the cost formulas written out in make_reference.py

Tolerance: float64, rtol 1e-12 (atol 1e-12 for sums near zero). Summation order differs between a ring and
gloo's algorithms, so results agree to rounding, not bit for bit; nothing looser would pass a missing term.

What it does not check: real MPI (tests/test_parallel.py runs minigpt's ring under mpiexec), speed.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from minigpt.course.grader import Grader, Step, load_reference

IMPL = ("minigpt.parallel.allreduce", "minigpt.training.batches")
RTOL, ATOL = 1e-12, 1e-12


NAMES = ("wte", "w_out")


def _chunks(impl: ModuleType, g: Grader) -> None:
    with g.case("chunk_bounds (torch.tensor_split's chunks)", pitfall="chunks"):
        cases = load_reference(__file__, "chunks.json")
        got = [[list(b) for b in impl.chunk_bounds(c["n"], c["size"])] for c in cases]
        want = [c["bounds"] for c in cases]
        bad = [i for i, (a, b) in enumerate(zip(got, want, strict=True)) if a != b]
        detail = ""
        if bad:
            c = cases[bad[0]]
            detail = (f"{len(bad)} wrong; first: n={c['n']}, N={c['size']}: yours {got[bad[0]]}, reference "
                      f"{want[bad[0]]}. The first n % N chunks are one longer; together they cover 0 .. n")
        g.true(f"bounds of {len(cases)} (n, N) pairs, n = 0 .. 100, N = 1 .. 8", not bad, detail)


def _weights(impl: ModuleType, n_ranks: int, ref: dict) -> list[float]:
    return [float(impl.shard(ref["x"], ref["y"], r, n_ranks)[2]) for r in range(n_ranks)]


def _shard(impl: ModuleType, g: Grader) -> None:
    meta = load_reference(__file__, "meta.json")
    ref = load_reference(__file__, "shards.npz")
    n_ranks = meta["shards"]["N"]
    with g.case(f"shard (N = {n_ranks} ranks, masked targets)", pitfall="weights"):
        weights = []
        for r in range(n_ranks):
            xs, ys, w = impl.shard(ref["x"], ref["y"], r, n_ranks)
            g.equal(f"rank {r}: x rows", np.asarray(xs), ref[f"x_rank{r}"])
            g.equal(f"rank {r}: y rows", np.asarray(ys), ref[f"y_rank{r}"])
            weights.append(float(w))
        g.close("weights (each rank's counted targets / the batch's)", np.array(weights), ref["weight"],
                rtol=RTOL)
        if np.allclose(weights, 1.0 / n_ranks) and not np.allclose(ref["weight"], 1.0 / n_ranks):
            g.true("diagnosis", False, "every weight is 1/N: count the targets that are not ignore_index "
                                       "(-100), in the slice and in the whole batch")
        for name in NAMES:
            combined = sum(w * ref[f"grad_rank{r}.{name}"] for r, w in enumerate(weights))
            g.close(f"sum_r weight_r x grad_r == torch's big-batch gradient ({name})", combined,
                    ref[f"grad_full.{name}"], rtol=RTOL, atol=1e-15)


def _ring(impl: ModuleType, g: Grader) -> None:
    meta = load_reference(__file__, "meta.json")
    ring = load_reference(__file__, "ring.npz")
    with g.case("simulate_ring_allreduce == torch.distributed.all_reduce (gloo)", pitfall="ring"):
        for size in meta["ring"]["sizes"]:
            for n in meta["ring"]["lengths"]:
                bufs = [ring[f"in.N{size}.n{n}.rank{r}"] for r in range(size)]
                before = [b.copy() for b in bufs]
                out = impl.simulate_ring_allreduce(bufs)
                want = np.stack([ring[f"out.N{size}.n{n}.rank{r}"] for r in range(size)])      # (N, n)
                got = np.stack([np.asarray(o, dtype=np.float64) for o in out]) if len(out) else np.zeros(0)
                g.close(f"N={size}, n={n}: every rank's result", got, want, rtol=RTOL, atol=ATOL)
                same = all(np.array_equal(out[0], o) for o in out)
                g.true(f"N={size}, n={n}: every rank holds the same bits", same, pitfall="same_bits")
                g.true(f"N={size}, n={n}: the input buffers are unchanged", all(
                    np.array_equal(a, b) for a, b in zip(bufs, before, strict=True)), pitfall="inputs")
    ref = load_reference(__file__, "shards.npz")
    n_ranks = meta["shards"]["N"]
    with g.case("the ring of the weighted per-rank gradients == the big-batch gradient (uses step 2's shard)",
                pitfall="weights"):
        weights = _weights(impl, n_ranks, ref)
        flat = [np.concatenate([weights[r] * ref[f"grad_rank{r}.{n}"].ravel() for n in NAMES])
                for r in range(n_ranks)]
        want = np.concatenate([ref[f"grad_full.{n}"].ravel() for n in NAMES])
        out = impl.simulate_ring_allreduce(flat)
        for r in range(n_ranks):
            g.close(f"rank {r}", out[r], want, rtol=RTOL, atol=1e-15)


def _cost(impl: ModuleType, g: Grader) -> None:
    with g.case("the ring's cost (bytes per rank, seconds)", pitfall="cost"):
        cost = load_reference(__file__, "cost.json")
        got_b = [impl.ring_bytes_per_rank(c["n_bytes"], c["size"]) for c in cost]
        got_s = [impl.ring_seconds(c["n_bytes"], c["size"], c["latency_s"], c["bandwidth"]) for c in cost]
        g.close(f"ring_bytes_per_rank, {len(cost)} cases (N = 1 .. 64)", np.array(got_b, dtype=np.float64),
                np.array([c["bytes_per_rank"] for c in cost]), rtol=RTOL)
        g.close(f"ring_seconds, {len(cost)} cases (two links)", np.array(got_s, dtype=np.float64),
                np.array([c["seconds"] for c in cost]), rtol=RTOL)


STEPS = [
    Step(1, "cut a buffer into N nearly equal chunks", ("chunk_bounds",), _chunks),
    Step(2, "each rank's rows, and the weight of its gradient", ("shard",), _shard),
    Step(3, "the ring all-reduce, simulated", ("simulate_ring_allreduce",), _ring),
    Step(4, "the ring's cost", ("ring_bytes_per_rank", "ring_seconds"), _cost),
]
