"""Your turn: token + position embeddings, and inverted dropout, in three steps.

    step 1  embedding_forward                    look up token and position vectors
    step 2  embedding_backward                   scatter the gradient back to the rows
    step 3  dropout_forward, dropout_backward    inverted dropout

    minigpt lesson check 02 --impl lessons/02_embeddings/exercise.py [--step K]
    minigpt lesson hint 02 K                     # the first hint nudges, the last nearly gives it away

Shape legend: B batch, T time, C channels, V vocabulary size, P block_size (the number of learned positions).
Use NumPy only. Not here: the output head that reuses wte (lesson 07), dropout anywhere but where you call it.
"""

from __future__ import annotations

import numpy as np


def embedding_forward(idx: np.ndarray, wte: np.ndarray, wpe: np.ndarray, start: int = 0):
    """idx (B, T) int, wte (V, C), wpe (P, C) -> out (B, T, C), cache.   (step 1)

    out[b, t] is token idx[b, t]'s vector plus the vector of its position; `start` is the position of
    idx[:, 0] (non-zero when generating with a KV cache). Graded against torch's F.embedding. Refuse bad
    input with a message that says what is wrong:
    - a token id < 0 or >= V raises IndexError;
    - start + T > P raises ValueError (there is no learned vector for that position).
    float32 in, float32 out. The cache holds only what the backward needs.
    """
    raise NotImplementedError("step 1 not started: embedding_forward")


def embedding_backward(dout: np.ndarray, cache):
    """dout (B, T, C) -> (dwte (V, C), dwpe (P, C)), in dout's dtype.   (step 2)

    The gradients of sum(out * dout) with respect to wte and wpe. Must hold: an id used ten times gets
    all ten contributions; rows of ids that were not used, and of positions that were not used, are
    exactly zero. idx is an integer input: it has no gradient.
    """
    raise NotImplementedError("step 2 not started: embedding_backward")


def dropout_forward(x: np.ndarray, p: float, rng: np.random.Generator | None = None, training: bool = True):
    """x (...) -> out (...) of the same shape and dtype, cache.   (step 3)

    Inverted dropout, like torch's F.dropout: each element is zeroed independently with probability p,
    and the expected value of every element is unchanged. When training is False or p == 0, return x
    unchanged and draw no random numbers. Draw only from `rng` (the same seed gives the same mask).
    Raise ValueError when p is not in [0, 1), and when training with p > 0 but rng is None.
    """
    raise NotImplementedError("step 3 not started: dropout_forward")


def dropout_backward(dout: np.ndarray, cache):
    """dout (...) -> dx (...): a single array, the gradient through the forward's dropout.   (step 3)"""
    raise NotImplementedError("step 3 not started: dropout_backward")
