"""Lesson 06, your turn: softmax cross-entropy over the vocabulary, with ignore_index, in two steps.

    step 1  cross_entropy_forward     the mean loss over the counted positions
    step 2  cross_entropy_backward    its gradient with respect to the logits (derive it)

    minigpt lesson check 06 --impl lessons/06_loss/exercise.py [--step K]
    minigpt lesson hint 06 K          # the first hint nudges, the last nearly gives it away

The checks compare your loss and gradient with torch.nn.functional.cross_entropy (float64, rtol 1e-10),
feed logits of +-1e4, ignore every position, pass bad target ids, and compare your backward with finite
differences. Shape legend: B batch, T time, V vocabulary, N = B*T rows. Cache what your backward needs.

Not here: label smoothing, class weights, a sum reduction.
"""

from __future__ import annotations

import numpy as np


def cross_entropy_forward(logits: np.ndarray, targets: np.ndarray, ignore_index: int = -100):
    """logits (B, T, V) or (N, V), targets (B, T) or (N,) ints -> loss (a Python float), cache.   (step 1)

    The mean, over the positions whose target != ignore_index, of -log of the softmax probability of the
    target: torch's F.cross_entropy(ignore_index=...). Must hold: logits of +-1e4 give a finite loss; equal
    logits give ln(V); when every position is ignored, return 0.0 (not NaN). Raise IndexError (or
    ValueError) for a counted target outside [0, V), and ValueError when there are not as many targets as
    rows of logits. The cache is yours.
    """
    raise NotImplementedError("step 1 not started: cross_entropy_forward")


def cross_entropy_backward(dloss: float, cache):
    """dloss (a scalar, 1.0 for the loss itself) -> dlogits with the shape and dtype of logits.   (step 2)

    The gradient of dloss * loss with respect to the logits. Ignored rows get exactly 0; every counted row
    sums to 0 over the vocabulary. Graded against torch's autograd and finite differences.
    """
    raise NotImplementedError("step 2 not started: cross_entropy_backward")
