"""Your turn: token + position embeddings, and inverted dropout, forward and backward.

Fill in the four bodies, then grade your file:

    minigpt lesson check 02 --impl lessons/02_embeddings/exercise.py

Shape legend: B batch, T time, C channels, V vocabulary size, P block_size (the number of learned positions).
Use NumPy only. Not here: the output head that reuses wte (lesson 07), dropout anywhere but where you call it.
"""

from __future__ import annotations

import numpy as np


def embedding_forward(idx: np.ndarray, wte: np.ndarray, wpe: np.ndarray, start: int = 0):
    """idx (B, T) int, wte (V, C), wpe (P, C) -> out (B, T, C), cache.

    out[b, t] = wte[idx[b, t]] + wpe[start + t]. `start` is the position of idx[:, 0] (non-zero when
    generating with a KV cache). Refuse bad input with a message that says what is wrong:
    - a token id < 0 or >= V raises IndexError (careful: NumPy reads wte[-1] without complaint);
    - start + T > P raises ValueError (there is no learned vector for that position).
    The cache holds only what the backward needs: which rows were read, and the shapes of wte and wpe.
    """
    raise NotImplementedError("embedding_forward: look up wte rows, add the position rows")


def embedding_backward(dout: np.ndarray, cache):
    """dout (B, T, C) -> (dwte (V, C), dwpe (P, C)), in dout's dtype.

    Every use of a token id adds its dout row to that id's gradient row: a scatter-add
    (np.add.at, or np.bincount per channel, or a one-hot matmul). `dwte[idx] += dout` is wrong: with a
    repeated id only one of the additions survives. Rows of ids that were not used are exactly zero, and
    so are the rows of positions that were not used. idx is an integer input: it has no gradient.
    """
    raise NotImplementedError("embedding_backward: scatter-add dout into dwte, sum over the batch for dwpe")


def dropout_forward(x: np.ndarray, p: float, rng: np.random.Generator | None = None, training: bool = True):
    """x (...) -> out (...) of the same shape and dtype, cache.

    Inverted dropout: zero each element independently with probability p and scale the survivors by
    1 / (1 - p), so the expected value of every element is unchanged. When training is False or p == 0,
    return x unchanged and draw no random numbers. Draw the mask only from `rng` (a np.random.Generator):
    the same seed must give the same mask. Raise ValueError when p is not in [0, 1), and when training
    with p > 0 but rng is None. The cache is whatever the backward needs to apply the same mask.
    """
    raise NotImplementedError("dropout_forward: draw a keep-mask from rng, scale the survivors by 1/(1-p)")


def dropout_backward(dout: np.ndarray, cache):
    """dout (...) -> dx (...): a single array, the upstream gradient through the same mask and scale."""
    raise NotImplementedError("dropout_backward: multiply dout by the forward's mask")
