"""Layer normalisation over the channels of each position (Ba, Kiros & Hinton 2016), as in GPT-2.

    mean = x.mean(-1),  var = ((x - mean)**2).mean(-1)       biased variance, like torch and GPT-2
    xhat = (x - mean) / sqrt(var + eps),   out = xhat * weight + bias

The backward uses the compact form (derived in lessons/03_layernorm/README.md):

    dxhat = dout * weight
    dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat))

Not here: RMSNorm or any other variant; eps is GPT-2's 1e-5 unless passed.
"""

from __future__ import annotations

import numpy as np


def layernorm_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, eps: float = 1e-5):
    """x (B, T, C), weight (C,), bias (C,) -> out (B, T, C)."""
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
    C = dout.shape[-1]
    dweight = (dout * xhat).reshape(-1, C).sum(axis=0)               # (C,)
    dbias = dout.reshape(-1, C).sum(axis=0) if has_bias else None    # (C,)
    dxhat = dout * weight                                            # (B, T, C)
    mean_dxhat = dxhat.mean(axis=-1, keepdims=True)                  # (B, T, 1)
    mean_dxhat_xhat = np.mean(dxhat * xhat, axis=-1, keepdims=True)  # (B, T, 1)
    dx = rstd * (dxhat - mean_dxhat - xhat * mean_dxhat_xhat)        # (B, T, C)
    return dx, dweight, dbias
