"""Lesson 06, your turn: softmax cross-entropy over the vocabulary, with ignore_index, forward and backward.

Fill in the two bodies, then grade them:

    minigpt lesson check 06 --impl lessons/06_loss/exercise.py

The checks compare your loss and gradient with torch.nn.functional.cross_entropy (float64, rtol 1e-10),
feed logits of +-1e4, ignore every position, pass bad target ids, and compare your backward with finite
differences. Shape legend: B batch, T time, V vocabulary, N = B*T rows. Cache what your backward needs.

Not here: label smoothing, class weights, a sum reduction.
"""

from __future__ import annotations

import numpy as np


def cross_entropy_forward(logits: np.ndarray, targets: np.ndarray, ignore_index: int = -100):
    """logits (B, T, V) or (N, V), targets (B, T) or (N,) ints -> loss (a Python float), cache.

    loss = mean over the positions whose target != ignore_index of -log softmax(logits[n])[targets[n]].
    Subtract each row's max before exp (logits of 1e4 must not overflow). When every position is ignored,
    return 0.0 (not NaN). Raise IndexError (or ValueError) for a counted target outside [0, V), and
    ValueError when there are not as many targets as rows of logits.
    """
    raise NotImplementedError("cross_entropy_forward: log-sum-exp minus the target's logit, averaged")


def cross_entropy_backward(dloss: float, cache):
    """dloss (a scalar, 1.0 for the loss itself) -> dlogits with the shape of logits.

    For a counted row: (softmax(logits[n]) - onehot(targets[n])) * dloss / n_counted; ignored rows are 0.
    """
    raise NotImplementedError("cross_entropy_backward: softmax minus one-hot, divided by the count")
