"""ZeRO-1: AdamW whose moments are split across the ranks, each rank keeping those of 1/N of the parameters.

    opt = ZeroAdamW(model.params, comm, lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    loss, norm = opt.reduce_and_step(grads, loss, grad_clip)   # replaces all-reduce + clip + opt.step(grads)
    opt.state_dict()                                           # collective: the whole moments, as AdamW's

Plain data parallelism (minigpt/training/loop.py's train_step) keeps on every rank the parameters, the
gradients and both AdamW moments of every parameter: in float32, 4 + 4 + 8 bytes per parameter. ZeRO stage 1
(Rajbhandari et al. 2020) notices that after the all-reduce every rank computes the same AdamW update of every
element, N times over. Instead, the one flat buffer of gradients (allreduce.pack, every gradient end to end)
is cut into N chunks (allreduce.chunk_bounds); rank r owns chunk r:

    reduce-scatter   sum the gradients over the ranks, but each rank receives only its own chunk, summed
    clip             the global norm from the shards: sum of squares of my chunk, all-reduced, square root
    AdamW            on my chunk only, with my chunk's moments m, v (the only ones this rank holds)
    all-gather       every rank receives every updated chunk: the whole parameters again, bit-identical

A reduce-scatter plus an all-gather move exactly the bytes of one all-reduce (the ring's two phases), so the
step costs the same communication and 8/N instead of 8 bytes of moments per parameter (float32). What it
buys: memory, not speed. Measured here (benchmarks/data_parallel.py, baby shape, 2 ranks, a loaded 2-core
machine): moments 3.09 MiB per rank instead of 6.18, for 1.03x the plain 2-rank step time.

Weight decay stays nanoGPT's rule (optim.decays: tensors with ndim >= 2 only). In the flat shard, which
cuts across tensors, the rule is carried element by element in a boolean mask built from the parameters'
shapes, and applied with `where=mask`, so a decayed element is multiplied by exactly the same factor.

Which definition this equals: optim.AdamW's step (the oracle, unchanged) after the data-parallel all-reduce
and optim.clip_grad_norm, i.e. the unsharded run. Element by element the update is the same arithmetic in
the same order; only the gradient norm is summed in another order (by shard, not by tensor), so runs agree
to rounding: float64, relative 1e-12 on losses and parameters (tests/test_parallel.py). adamw_shard_step
on chunks of the flat buffer equals AdamW.step bit for bit (tested in one process).

The collectives: MPI's Reduce_scatter and Allgatherv when minigpt.engines.enabled(); with engines off, the
ring all-reduce's two phases (allreduce.ring_schedule, chunks renumbered so rank r owns chunk r), the
definition. Checkpoints: state_dict() all-gathers the moments, so rank 0 writes the same optimizer file as an
unsharded run (every rank briefly holds the whole moments while saving), and load_state_dict() of a whole
state (checked by optim.AdamW's own loader, which briefly holds it all too) keeps this rank's chunk: a
resume re-shards. (The training loop refuses a changed `zero` on resume; the files would allow it.)

What this file deliberately does not do: ZeRO-2/3 (sharded gradients or parameters), overlap of the
collectives with the backward pass, other optimizers than AdamW, or a world of one (nothing to shard: the
training loop then uses optim.AdamW).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

from minigpt import engines, optim
from minigpt.parallel.allreduce import chunk_bounds, pack, ring_schedule
from minigpt.parallel.comm import Comm


def reduce_scatter(comm: Comm, buf: np.ndarray) -> np.ndarray:
    """Sum buf (n,) over the ranks; returns this rank's chunk r of the sum (chunk_bounds), a view into buf.
    MPI's Reduce_scatter (the engine) or the ring's reduce phase (engines off); the rest of buf is scratch."""
    bounds = chunk_bounds(buf.size, comm.size)
    lo, hi = bounds[comm.rank]
    if comm.size == 1:
        return buf
    if engines.enabled():
        mine = np.empty(hi - lo, dtype=buf.dtype)                                    # (n_r,)
        comm.reduce_scatter_(buf, mine, [b - a for a, b in bounds])
        buf[lo:hi] = mine
    else:
        _ring_phase(comm, buf, bounds, "reduce")
    return buf[lo:hi]


def allgather(comm: Comm, buf: np.ndarray) -> np.ndarray:
    """Every rank's chunk r of buf (n,) copied to every rank, in place: MPI's Allgatherv or the ring's gather
    phase. Returns buf."""
    if comm.size == 1:
        return buf
    bounds = chunk_bounds(buf.size, comm.size)
    if engines.enabled():
        comm.allgather_(buf, [b - a for a, b in bounds])
    else:
        _ring_phase(comm, buf, bounds, "gather")
    return buf


def _ring_phase(comm: Comm, buf: np.ndarray, bounds: list[tuple[int, int]], phase: str) -> None:
    """One phase of allreduce.ring_allreduce, with the schedule's chunk c renamed c - 1, so that the reduce
    phase leaves rank r holding the sum of chunk r (not r + 1) and the gather phase starts from there."""
    size, rank = comm.size, comm.rank
    right, left = (rank + 1) % size, (rank - 1) % size
    incoming = np.empty(max(b - a for a, b in bounds), dtype=buf.dtype)           # the largest chunk
    for step_phase, send, recv in ring_schedule(rank, size):
        if step_phase != phase:
            continue
        (s0, s1), (r0, r1) = bounds[(send - 1) % size], bounds[(recv - 1) % size]
        got = incoming[: r1 - r0]
        comm.sendrecv(buf[s0:s1], right, got, left)
        if phase == "reduce":
            buf[r0:r1] += got
        else:
            buf[r0:r1] = got


def decay_mask(params: Mapping[str, np.ndarray]) -> np.ndarray:
    """(n,) bool, params laid end to end like allreduce.pack: True where optim.decays(param) (ndim >= 2)."""
    return np.concatenate([np.full(p.size, optim.decays(p)) for p in params.values()]) if params else \
        np.zeros(0, dtype=bool)


def adamw_shard_step(p: np.ndarray, g: np.ndarray, m: np.ndarray, v: np.ndarray, decay: np.ndarray,
                     t: int, lr: float, betas: tuple[float, float], eps: float, weight_decay: float) -> None:
    """optim.AdamW.step's update on flat slices p, g, m, v (k,) in place; `decay` (k,) says which elements
    get weight decay. Same operations in the same order as the oracle, so the same bits."""
    beta1, beta2 = betas
    step_size = lr / (1.0 - beta1 ** t)
    bc2_sqrt = math.sqrt(1.0 - beta2 ** t)
    tmp = np.empty_like(p)                                                          # (k,)
    if weight_decay:
        np.multiply(p, 1.0 - lr * weight_decay, out=p, where=decay)               # decoupled, ndim >= 2 only
    m *= beta1
    np.multiply(g, 1.0 - beta1, out=tmp)
    m += tmp                                                                        # m = b1 m + (1 - b1) g
    v *= beta2
    np.multiply(g, g, out=tmp)
    tmp *= 1.0 - beta2
    v += tmp                                                                        # v = b2 v + (1 - b2) g^2
    np.sqrt(v, out=tmp)
    tmp /= bc2_sqrt
    tmp += eps
    np.divide(m, tmp, out=tmp)
    tmp *= step_size
    p -= tmp


class ZeroAdamW:
    """AdamW with its moments sharded over comm's ranks (ZeRO-1); equals optim.AdamW after the all-reduce.

    Looks like an optim.AdamW to the training loop (lr, t, params, state_dict, load_state_dict), but its
    step takes the ranks' unsummed gradients: reduce_and_step does the reduction, the clipping and the
    update together."""

    buffer_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, params: Mapping[str, np.ndarray], comm: Comm, lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-8, weight_decay: float = 0.1):
        if lr < 0.0 or weight_decay < 0.0 or eps < 0.0 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"ZeroAdamW needs lr, weight_decay, eps >= 0 and betas in [0, 1); got lr {lr}, "
                             f"weight_decay {weight_decay}, eps {eps}, betas {betas}")
        self.params = dict(params)                     # the model's arrays: the all-gather writes into them
        self.comm = comm
        self.lr, self.betas, self.eps, self.weight_decay = float(lr), tuple(betas), float(eps), \
            float(weight_decay)
        self.t = 0
        self.n = sum(p.size for p in self.params.values())
        self.lo, self.hi = chunk_bounds(self.n, comm.size)[comm.rank]
        dtype = next(iter(self.params.values())).dtype
        self.decay = decay_mask(self.params)[self.lo:self.hi]                       # (n_r,) bool
        self.exp_avg = np.zeros(self.hi - self.lo, dtype=dtype)                     # (n_r,) this rank's m
        self.exp_avg_sq = np.zeros(self.hi - self.lo, dtype=dtype)                  # (n_r,) and v

    def moment_bytes(self) -> tuple[int, int]:
        """(bytes of moments this rank holds, bytes an unsharded AdamW holds on every rank)."""
        item = self.exp_avg.itemsize
        return 2 * (self.hi - self.lo) * item, 2 * self.n * item

    def reduce_and_step(self, grads: Mapping[str, np.ndarray], loss: float,
                        grad_clip: float) -> tuple[float, float]:
        """This rank's weighted gradients and loss -> (summed loss, global norm before clipping), with the
        AdamW step applied to every rank's parameters when both are finite (the same decision everywhere).

        reduce-scatter the flat gradients; one all-reduce of [loss, |my chunk|^2]; clip my chunk by the
        global norm (optim.clip_grad_norm's rule); AdamW on my chunk; all-gather the parameters."""
        flat = pack(grads)                                                          # (n,)
        g = reduce_scatter(self.comm, flat)                                         # (n_r,) summed
        sums = self.comm.allreduce_(np.array([loss, float(np.dot(g, g))], dtype=np.float64), "sum")   # (2,)
        loss, norm = float(sums[0]), math.sqrt(float(sums[1]))
        if not (math.isfinite(loss) and math.isfinite(norm)):
            return loss, norm                                                      # every rank skips
        if grad_clip > 0:
            coef = grad_clip / (norm + 1e-6)
            if coef < 1.0:
                g *= coef
        self.t += 1
        p_flat = pack(self.params)                                                  # (n,)
        adamw_shard_step(p_flat[self.lo:self.hi], g, self.exp_avg, self.exp_avg_sq, self.decay, self.t,
                         self.lr, self.betas, self.eps, self.weight_decay)
        allgather(self.comm, p_flat)
        at = 0
        for p in self.params.values():
            p[...] = p_flat[at:at + p.size].reshape(p.shape)
            at += p.size
        return loss, norm

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        raise TypeError("ZeroAdamW steps on unsummed gradients: call reduce_and_step(grads, loss, grad_clip)")

    # ---- checkpoints: the same state as optim.AdamW ------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray | int | float]:
        """Collective (every rank must call it): optim.AdamW's state_dict, the moments all-gathered."""
        out: dict[str, np.ndarray | int | float] = {"step": self.t, "lr": self.lr}
        for kind, mine in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
            full = np.zeros(self.n, dtype=mine.dtype)                               # (n,)
            full[self.lo:self.hi] = mine
            allgather(self.comm, full)
            at = 0
            for name, p in self.params.items():
                out[f"{kind}.{name}"] = full[at:at + p.size].reshape(p.shape).copy()
                at += p.size
        return out

    def load_state_dict(self, d: Mapping[str, np.ndarray | int | float]) -> None:
        """A whole optimizer state (optim.AdamW's, from a checkpoint of either mode): keep my shard."""
        plain = optim.AdamW(self.params, lr=self.lr, betas=self.betas, eps=self.eps,
                            weight_decay=self.weight_decay)
        plain.load_state_dict(d)                                                   # its checks, its errors
        for kind, mine in (("exp_avg", self.exp_avg), ("exp_avg_sq", self.exp_avg_sq)):
            mine[...] = pack(plain.state[kind])[self.lo:self.hi]
        self.t, self.lr = plain.t, plain.lr
