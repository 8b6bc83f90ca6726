"""Lesson 05, your turn: GPT-2's Conv1D linear layer, the tanh GELU and the MLP, in four steps.

    step 1  linear_forward, linear_backward    GPT-2's Conv1D linear layer
    step 2  gelu_forward                       the tanh GELU ("gelu_new")
    step 3  gelu_backward                      its derivative (derive it: the chapter's math)
    step 4  mlp_forward, mlp_backward          c_fc (C -> 4C), GELU, c_proj (4C -> C)

    minigpt lesson check 05 --impl lessons/05_mlp/exercise.py [--step K]
    minigpt lesson hint 05 K                   # the first hint nudges, the last nearly gives it away

The checks compare your results with PyTorch's (float64, rtol 1e-10), run float32 in -> float32 out, and
compare your backward with finite differences. Shape legend: B batch, T time, C channels, N = B*T rows.
Cache whatever your backward needs; the grader never looks inside it.

Not here: dropout and the residual connection around the MLP (the model adds those).
"""

from __future__ import annotations

import math

import numpy as np

GELU_SCALE = math.sqrt(2.0 / math.pi)   # sqrt(2/pi)
GELU_CUBIC = 0.044715


def linear_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None):
    """x (..., Cin), weight (Cin, Cout), bias (Cout,) or None -> out (..., Cout), cache.   (step 1)

    weight is stored (in, out) like GPT-2's Conv1D (torch's nn.Linear stores (out, in)). Any number of
    leading axes. Raise ValueError when x's last dimension is not weight.shape[0] (a transposed weight, say).
    """
    raise NotImplementedError("step 1 not started: linear_forward")


def linear_backward(dout: np.ndarray, cache):
    """dout (..., Cout) -> dx (..., Cin), dweight (Cin, Cout), dbias (Cout,) or None without bias.   (step 1)

    The gradients of sum(out * dout), in the order of the forward's inputs.
    """
    raise NotImplementedError("step 1 not started: linear_backward")


def gelu_forward(x: np.ndarray):
    """x (...) -> out (...), cache: GPT-2's tanh GELU ("gelu_new"), element by element.   (step 2)

    Built from tanh with the two constants above; transformers' ACT2FN["gelu_new"] is the reference. It is
    not the exact erf GELU (torch's nn.GELU()): the two differ by up to 5e-4. float32 stays float32.
    """
    raise NotImplementedError("step 2 not started: gelu_forward")


def gelu_backward(dout: np.ndarray, cache):
    """dout (...) -> dx (...): dout times the derivative of the tanh GELU at x.   (step 3)"""
    raise NotImplementedError("step 3 not started: gelu_backward")


def mlp_forward(x: np.ndarray, c_fc_weight: np.ndarray, c_fc_bias: np.ndarray | None,
                c_proj_weight: np.ndarray, c_proj_bias: np.ndarray | None):
    """x (B, T, C) -> out (B, T, C), cache: c_fc (C -> 4C), GELU, c_proj (4C -> C).   (step 4)"""
    raise NotImplementedError("step 4 not started: mlp_forward")


def mlp_backward(dout: np.ndarray, cache):
    """dout (B, T, C) -> dx, dc_fc_weight, dc_fc_bias, dc_proj_weight, dc_proj_bias (input order). (step 4)"""
    raise NotImplementedError("step 4 not started: mlp_backward")
