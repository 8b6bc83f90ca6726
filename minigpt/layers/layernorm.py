"""Layer normalisation over the channels of each position (Ba, Kiros & Hinton 2016), as in GPT-2.

    mean = x.mean(-1),  var = ((x - mean)**2).mean(-1)       biased variance, like torch and GPT-2
    xhat = (x - mean) / sqrt(var + eps),   out = xhat * weight + bias

The backward uses the compact form (derived in lessons/03_layernorm/README.md):

    dxhat = dout * weight
    dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

Not here: RMSNorm or any other variant; eps is GPT-2's 1e-5 unless passed.
"""

from __future__ import annotations

import math

import numpy as np

from minigpt import engines
from minigpt.layers.parallel import PARALLEL_MIN, run_blocks


def layernorm_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, eps: float = 1e-5):
    """x (B, T, C), weight (C,), bias (C,) -> out (B, T, C). Any leading shape works, (C,) too.

    With engines on, a large x goes to layernorm_forward_engine (the same numbers, faster)."""
    if engines.enabled() and x.size >= PARALLEL_MIN and x.ndim > 1:
        return layernorm_forward_engine(x, weight, bias, eps)
    mean = x.mean(axis=-1, keepdims=True)             # (B, T, 1)
    xc = x - mean                                     # (B, T, C) centred
    var = np.mean(xc * xc, axis=-1, keepdims=True)    # (B, T, 1) biased variance
    rstd = 1.0 / np.sqrt(var + eps)                   # (B, T, 1) reciprocal standard deviation
    xhat = xc * rstd                                  # (B, T, C) zero mean, unit variance per row
    out = xhat * weight                               # (B, T, C)
    if bias is not None:
        out += bias
    cache = (xhat, rstd, weight, bias is not None)    # xhat and rstd: all the backward needs of x
    return out, cache


def layernorm_backward(dout: np.ndarray, cache):
    """dout (B, T, C) -> dx (B, T, C), dweight (C,), dbias (C,) or None."""
    xhat, rstd, weight, has_bias = cache
    if engines.enabled() and dout.size >= PARALLEL_MIN and dout.ndim > 1:
        return layernorm_backward_engine(dout, cache)
    C = dout.shape[-1]
    dweight = (dout * xhat).reshape(-1, C).sum(axis=0)               # (C,)
    dbias = dout.reshape(-1, C).sum(axis=0) if has_bias else None    # (C,)
    dxhat = dout * weight                                            # (B, T, C)
    mean_dxhat = dxhat.mean(axis=-1, keepdims=True)                  # (B, T, 1)
    mean_dxhat_xhat = np.mean(dxhat * xhat, axis=-1, keepdims=True)  # (B, T, 1)
    dx = rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)        # (B, T, C)
    return dx, dweight, dbias


# ---- engines: the same pair, fewer passes, blocks of rows on every core --------------------------------
def layernorm_forward_engine(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, eps: float = 1e-5):
    """layernorm_forward over blocks of rows on every core, the row sums by np.einsum (2-3x faster than
    NumPy's sum along a short last axis, and the variance's square and sum in one pass); equals it to
    rounding (float64 ~1e-15, float32 ~1e-6). Baby shape, (12, 64, 128) float32, CPU time on one core:
    0.25 -> 0.18 ms."""
    C = x.shape[-1]
    x2 = x.reshape(-1, C)                                             # (N, C)
    dtype = np.result_type(x, weight)
    xhat = np.empty(x2.shape, dtype)                                  # (N, C)
    out = np.empty(x2.shape, dtype)                                   # (N, C)
    rstd = np.empty((x2.shape[0], 1), dtype)                          # (N, 1)

    def work(start: int, stop: int) -> None:
        xb, hb, ob, rb = x2[start:stop], xhat[start:stop], out[start:stop], rstd[start:stop]
        mean = np.einsum("ij->i", xb)                                 # (r,) row sums
        mean *= 1.0 / C
        np.subtract(xb, mean[:, None], out=hb)                        # centred
        var = np.einsum("ij,ij->i", hb, hb)                           # (r,) sums of squares
        var *= 1.0 / C                                                # biased variance
        var += eps
        np.sqrt(var, out=var)
        np.divide(1.0, var[:, None], out=rb)                          # (r, 1) rstd
        hb *= rb                                                      # xhat
        np.multiply(hb, weight, out=ob)
        if bias is not None:
            ob += bias

    run_blocks(work, x2.shape[0], C)
    shape = x.shape[:-1]
    cache = (xhat.reshape(x.shape), rstd.reshape(*shape, 1), weight, bias is not None)
    return out.reshape(x.shape), cache


def layernorm_backward_engine(dout: np.ndarray, cache):
    """layernorm_backward over blocks of rows on every core, the two row means by np.einsum and dweight's
    product dout * xhat shared with mean(dxhat * xhat); equals it to rounding (float64 ~1e-15, float32
    ~1e-6). Baby shape, (12, 64, 128) float32, CPU time on one core: 0.41 -> 0.28 ms."""
    xhat, rstd, weight, has_bias = cache
    C = dout.shape[-1]
    d2 = dout.reshape(-1, C)                                          # (N, C)
    h2, r2 = xhat.reshape(-1, C), rstd.reshape(-1, 1)                 # (N, C), (N, 1)
    dtype = np.result_type(dout, xhat)
    dx = np.empty(d2.shape, dtype)                                    # (N, C)
    tmp = np.empty(d2.shape, dtype)                                   # (N, C) scratch
    w_mean = (weight / C).astype(dtype)                               # (C,) sum(v * w_mean): mean(v * w)
    partial: dict[int, tuple[np.ndarray, np.ndarray]] = {}           # block start -> its dweight, dbias

    def work(start: int, stop: int) -> None:
        db, hb, xb, tb = d2[start:stop], h2[start:stop], dx[start:stop], tmp[start:stop]
        np.multiply(db, hb, out=tb)                                   # dout * xhat
        partial[start] = (np.add.reduce(tb, axis=0), np.add.reduce(db, axis=0))
        mean_dxhat_xhat = np.einsum("ij,j->i", tb, w_mean)            # (r,) mean(dxhat * xhat)
        mean_dxhat = np.einsum("ij,j->i", db, w_mean)                 # (r,) mean(dxhat)
        np.multiply(db, weight, out=xb)                               # dxhat
        xb -= mean_dxhat[:, None]
        np.multiply(hb, mean_dxhat_xhat[:, None], out=tb)
        xb -= tb
        xb *= r2[start:stop]

    run_blocks(work, d2.shape[0], C)
    parts = [partial[start] for start in sorted(partial)]             # a fixed order: reproducible sums
    dweight = np.add.reduce([p[0] for p in parts], axis=0).astype(dtype, copy=False)   # (C,)
    dbias = np.add.reduce([p[1] for p in parts], axis=0).astype(dtype, copy=False) if has_bias else None
    return dx.reshape(dout.shape), dweight, dbias


def layernorm_vector_engine(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None,
                            eps: float) -> np.ndarray:
    """x (C,) -> (C,): layernorm_forward for one position without the backward's cache (the decode step's,
    minigpt/decode.py); equals it to rounding. C = 128 float32: 11 -> 3 us per call (9 calls per token)."""
    C = x.shape[0]
    xc = x - np.add.reduce(x) / C                                     # (C,) centred (cheaper than x.mean())
    out = xc * (weight * (1.0 / math.sqrt(float(np.dot(xc, xc)) / C + eps)))   # (C,) gain / std
    if bias is not None:
        out += bias
    return out
