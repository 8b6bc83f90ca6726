"""Your turn: layer normalisation over the channels, forward and the compact backward.

Fill in the two bodies, then grade your file:

    minigpt lesson check 03 --impl lessons/03_layernorm/exercise.py

Shape legend: B batch, T time, C channels. Use NumPy only; no loops over B or T — reduce over axis=-1
with keepdims=True so the (B, T, 1) statistics broadcast back over C.
"""

from __future__ import annotations

import numpy as np


def layernorm_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, eps: float = 1e-5):
    """x (B, T, C), weight (C,), bias (C,) or None -> out (B, T, C), cache.

    Per row (one position of one sequence): mean = x.mean(-1); var = mean of (x - mean)**2 — the *biased*
    variance, dividing by C like torch and GPT-2; xhat = (x - mean) / sqrt(var + eps);
    out = xhat * weight + bias (no bias term when bias is None). A constant row must give out = bias,
    not NaN. Keep in the cache only what the backward needs (xhat and 1/sqrt(var + eps) are enough,
    with the weight and whether there was a bias). float32 in, float32 out.
    """
    raise NotImplementedError("layernorm_forward: centre, divide by sqrt(var + eps), scale and shift")


def layernorm_backward(dout: np.ndarray, cache):
    """dout (B, T, C) -> (dx (B, T, C), dweight (C,), dbias (C,) or None when the forward had no bias).

    dweight and dbias sum over every row (B and T). For dx use the compact form derived in the chapter:
    dxhat = dout * weight;  dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)),
    the means taken over the channels of each row.
    """
    raise NotImplementedError("layernorm_backward: dweight, dbias, then the compact dx formula")
