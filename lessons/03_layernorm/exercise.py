"""Your turn: layer normalisation over the channels, forward and backward, in two steps.

    step 1  layernorm_forward     normalise each row, then scale and shift
    step 2  layernorm_backward    dweight, dbias and dx

Grade your file, one step or all of them, and ask for hints when stuck (the first nudges, the last
nearly gives it away); the derivation is in the chapter's math section:

    minigpt lesson check 03 --impl lessons/03_layernorm/exercise.py --step 1
    minigpt lesson hint 03 1

Shape legend: B batch, T time, C channels. NumPy only; no Python loops over B or T.
"""

from __future__ import annotations

import numpy as np


def layernorm_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, eps: float = 1e-5):
    """x (B, T, C), weight (C,), bias (C,) or None -> out (B, T, C), cache.   (step 1)

    What must hold, for every row (one position of one sequence):
    - with weight = 1 and bias = 0 the row comes out with mean 0 and variance var / (var + eps), where var
      is the row's biased variance (divided by C, as torch's F.layer_norm and GPT-2 do);
    - a constant row comes out as exactly the bias (no NaN, no inf); eps guards that case;
    - eps = 0.1 is graded too, so where eps enters matters;
    - bias None means no shift; float32 in, float32 out; float64 stays float64;
    - a row at 1e4 with spread 1 is still normalised to ~1e-12 (no catastrophic cancellation).
    The cache is yours: keep only what the backward needs.
    """
    raise NotImplementedError("step 1 not started: layernorm_forward")


def layernorm_backward(dout: np.ndarray, cache):
    """dout (B, T, C) -> (dx (B, T, C), dweight (C,), dbias (C,) or None).   (step 2)

    Gradients of sum(out * dout) with respect to x, weight and bias, in the order of the forward's
    inputs; dbias is None when the forward had no bias. Graded against PyTorch's autograd and against
    finite differences of your own forward; dx must sum to 0 over each row's channels (adding a constant
    to a row changes nothing). Derive dx on paper first (the chapter's math, `minigpt lesson hint 03 2`).
    """
    raise NotImplementedError("step 2 not started: layernorm_backward")
