"""The softmax, its log and its backward: the one stable softmax of minigpt, used by attention, the loss,
perplexity, the sampler and the decode step.

    softmax(s)      = exp(s - max(s)) / sum(exp(s - max(s)))          along one axis (the last by default)
    log_softmax(s)  = s - max(s) - log(sum(exp(s - max(s))))
    softmax backward, p = softmax(s) and upstream dp:   ds = p * (dp - sum(dp * p))

Subtracting the row max changes nothing mathematically (it cancels between numerator and denominator) and
makes the largest exponent 0, so exp cannot overflow (float32 overflows above 88.7, float64 above 709.8).
A row of -inf and finite values gets probability 0 at the -inf entries (the causal mask relies on this);
log_softmax is computed without a division, so log p stays finite where p itself underflows to 0.

Engine: `softmax(s, out=s)` on a large array with engines on runs `softmax_rows_engine`: the same five
passes, block by block over the rows on every core (minigpt/layers/parallel.py); the per-row numbers are
the definition's bit for bit. log_softmax's engine does the same and also bounds the exp temporary to one
block (perplexity's (B, T, V) float64 logits: one extra block instead of one extra (B, T, V) array).

What this file deliberately does not do: temperature, masking or top-k (the callers do), or a softmax over
more than one axis.
"""

from __future__ import annotations

import numpy as np

from minigpt import engines
from minigpt.layers.parallel import PARALLEL_MIN, run_blocks


def softmax(x: np.ndarray, axis: int = -1, out: np.ndarray | None = None) -> np.ndarray:
    """x (...) -> p (...), each slice along `axis` sums to 1. out=x computes in place."""
    if _engine_fits(x, axis, out):
        return softmax_rows_engine(x, out)
    p = np.subtract(x, x.max(axis=axis, keepdims=True), out=out)   # (...) the largest entry is 0
    np.exp(p, out=p)                                                # (...) in (0, 1]
    p /= p.sum(axis=axis, keepdims=True)                            # (...) normalised
    return p


def log_softmax(x: np.ndarray, axis: int = -1, out: np.ndarray | None = None) -> np.ndarray:
    """x (...) -> log p (...), finite wherever x is. out=x computes in place."""
    if _engine_fits(x, axis, out):
        return log_softmax_rows_engine(x, out)
    shifted = np.subtract(x, x.max(axis=axis, keepdims=True), out=out)   # (...) the largest entry is 0
    shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))    # (...) minus log-sum-exp
    return shifted


def softmax_backward(dp: np.ndarray, p: np.ndarray, axis: int = -1) -> np.ndarray:
    """dp (...) upstream gradient, p (...) = softmax(s) -> ds (...). Never forms the (n, n) Jacobian."""
    return p * (dp - np.sum(dp * p, axis=axis, keepdims=True))     # (...)


# ---- engines ------------------------------------------------------------------------------------------
def _engine_fits(x: np.ndarray, axis: int, out: np.ndarray | None) -> bool:
    """Engines on, an array worth spreading, the last axis, and an `out` the engine can write through."""
    return (engines.enabled() and x.size >= PARALLEL_MIN and axis in (-1, x.ndim - 1)
            and (out is None or out.flags.c_contiguous))


def softmax_rows_engine(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """softmax(x, axis=-1) over row blocks on every core; equals the definition bit for bit (each row sees
    the same five passes). On one core it costs the same as the definition (0.7 ms for a (12, 4, 64, 64)
    float32 array); the gain is the spread over the cores."""
    n = x.shape[-1]
    x2 = x.reshape(-1, n)                                        # (rows, n), a view for contiguous x
    p = np.empty(x.shape, x.dtype) if out is None else out
    p2 = p.reshape(-1, n)                                        # (rows, n) a view: p is C-contiguous

    def work(start: int, stop: int) -> None:
        xb, pb = x2[start:stop], p2[start:stop]                  # (r, n)
        np.subtract(xb, np.maximum.reduce(xb, axis=1, keepdims=True), out=pb)
        np.exp(pb, out=pb)
        pb /= np.add.reduce(pb, axis=1, keepdims=True)

    run_blocks(work, x2.shape[0], n)
    return p


def log_softmax_rows_engine(x: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """log_softmax(x, axis=-1) over row blocks on every core, the exp temporary one block long; equals the
    definition bit for bit. Perplexity's (4, 256, 50257) float64 logits: peak memory one array less."""
    n = x.shape[-1]
    x2 = x.reshape(-1, n)                                        # (rows, n)
    res = np.empty(x.shape, x.dtype) if out is None else out
    r2 = res.reshape(-1, n)                                      # (rows, n) a view: res is C-contiguous

    def work(start: int, stop: int) -> None:
        xb, rb = x2[start:stop], r2[start:stop]                  # (r, n)
        np.subtract(xb, np.maximum.reduce(xb, axis=1, keepdims=True), out=rb)
        rb -= np.log(np.add.reduce(np.exp(rb), axis=1, keepdims=True))

    run_blocks(work, x2.shape[0], n)
    return res
