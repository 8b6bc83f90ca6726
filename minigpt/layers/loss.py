"""Softmax cross-entropy over the vocabulary: the training loss of a language model.

    loss = mean over counted positions of  -log softmax(logits[n])[targets[n]]

A position whose target equals ignore_index is not counted (fine-tuning masks the prompt this way).
The backward is fused, never forming the softmax's Jacobian:

    dlogits[n] = (softmax(logits[n]) - onehot(targets[n])) / n_counted     for counted n, 0 otherwise

When no position is counted the loss is defined as 0.0 with a zero gradient (torch returns NaN here).

Not here: label smoothing, class weights, or a sum reduction.
"""

from __future__ import annotations

import numpy as np

from minigpt.layers.softmax import log_softmax


def cross_entropy_forward(logits: np.ndarray, targets: np.ndarray, ignore_index: int = -100):
    """logits (B, T, V) (or (N, V)), targets (B, T) int -> loss (a Python float), cache."""
    V = logits.shape[-1]
    z = logits.reshape(-1, V)                          # (N, V)
    t = np.asarray(targets).reshape(-1)                # (N,)
    if t.shape[0] != z.shape[0]:
        raise ValueError(f"{t.shape[0]} targets for {z.shape[0]} rows of logits")
    counted = t != ignore_index                        # (N,) which positions enter the mean
    bad = counted & ((t < 0) | (t >= V))
    if bad.any():
        raise IndexError(f"target id {t[bad][0]} is outside the vocabulary of {V} tokens "
                         f"(use ignore_index={ignore_index} for positions without a target)")
    logp = log_softmax(z)                              # (N, V) log-probabilities: finite even for +-1e4
    rows = np.flatnonzero(counted)                     # (n,) indices of counted positions
    n = rows.size
    nll = -logp[rows, t[rows]]                         # (n,) -log p[target]
    loss = float(nll.sum(dtype=np.float64) / n) if n else 0.0
    probs = np.exp(logp, out=logp)                     # (N, V) softmax, in place: kept for the backward
    cache = (probs, t, rows, logits.shape)             # probs and targets are all the backward needs
    return loss, cache


def cross_entropy_backward(dloss: float, cache):
    """dloss (scalar, usually 1.0) -> dlogits with the shape of logits."""
    probs, t, rows, shape = cache
    n = rows.size
    dz = np.zeros_like(probs)                          # (N, V) ignored rows stay 0
    if n:
        dz[rows] = probs[rows]                         # (n, V)
        dz[rows, t[rows]] -= 1.0                       # softmax minus one-hot
        dz *= dloss / n                                # the mean over counted positions
    return dz.reshape(shape)
