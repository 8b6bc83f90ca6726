"""Inverted dropout (Srivastava et al. 2014): zero each element with probability p, scale the rest by 1/(1-p).

Scaling at training time keeps the expected activation unchanged, so evaluation needs no rescaling:
with training=False or p == 0 the layer is the identity and draws no random numbers.

The random mask comes from a np.random.Generator the caller passes in, so a seeded run is reproducible
and a resumed run can continue the same random stream. Nothing here keeps global state.
"""

from __future__ import annotations

import numpy as np


def dropout_forward(x: np.ndarray, p: float, rng: np.random.Generator | None = None, training: bool = True):
    """x (...) -> out (...), same shape and dtype."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout probability must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x, None                                # identity: nothing to remember
    if rng is None:
        raise ValueError("dropout in training mode needs a np.random.Generator (pass rng=...)")
    dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float64
    keep = rng.random(x.shape, dtype=dtype) >= p      # (...) True where the element survives
    mask = keep.astype(x.dtype) * (1.0 / (1.0 - p))   # (...) 0 or 1/(1-p)
    return x * mask, mask                             # the mask is the whole cache


def dropout_backward(dout: np.ndarray, cache):
    """dout (...) -> dx (...): the same mask, applied again."""
    mask = cache
    return dout if mask is None else dout * mask
