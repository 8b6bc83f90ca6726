"""Lesson 05, your turn: GPT-2's Conv1D linear layer, the tanh GELU and the MLP, forward and backward.

Fill in the six bodies, then grade them:

    minigpt lesson check 05 --impl lessons/05_mlp/exercise.py

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
    """x (..., Cin) @ weight (Cin, Cout) + bias (Cout,) -> out (..., Cout), cache.

    weight is stored (in, out) like GPT-2's Conv1D (torch's nn.Linear stores (out, in)). bias may be None.
    Raise ValueError when x's last dimension is not weight.shape[0] (a transposed weight, say).
    """
    raise NotImplementedError("linear_forward: out = x @ weight + bias, for any number of leading dims")


def linear_backward(dout: np.ndarray, cache):
    """dout (..., Cout) -> dx (..., Cin), dweight (Cin, Cout), dbias (Cout,) or None when there was no bias.

    Every leading position used the same weight, so dweight and dbias sum over all N = B*T rows.
    """
    raise NotImplementedError("linear_backward: dx = dout @ weight.T, dweight = x.T @ dout, dbias = sum")


def gelu_forward(x: np.ndarray):
    """x (...) -> out (...), cache: GPT-2's tanh GELU ("gelu_new"), element by element.

        out = 0.5 x (1 + tanh(GELU_SCALE (x + GELU_CUBIC x^3)))
    """
    raise NotImplementedError("gelu_forward: 0.5 * x * (1 + tanh(u)), u = sqrt(2/pi) (x + 0.044715 x^3)")


def gelu_backward(dout: np.ndarray, cache):
    """dout (...) -> dx (...): dout times the derivative of the tanh GELU at x (derive it; see README)."""
    raise NotImplementedError("gelu_backward: product rule on 0.5 x (1 + tanh(u)), chain rule through u")


def mlp_forward(x: np.ndarray, c_fc_weight: np.ndarray, c_fc_bias: np.ndarray | None,
                c_proj_weight: np.ndarray, c_proj_bias: np.ndarray | None):
    """x (B, T, C) -> out (B, T, C), cache: c_fc (C -> 4C), GELU, c_proj (4C -> C)."""
    raise NotImplementedError("mlp_forward: compose linear_forward, gelu_forward, linear_forward")


def mlp_backward(dout: np.ndarray, cache):
    """dout (B, T, C) -> dx, dc_fc_weight, dc_fc_bias, dc_proj_weight, dc_proj_bias (input order)."""
    raise NotImplementedError("mlp_backward: run the three backwards in reverse order")
