"""The position-wise MLP of a GPT-2 block: c_fc (C -> 4C), GELU, c_proj (4C -> C).

GPT-2 uses the tanh approximation of GELU (Hendrycks & Gimpel 2016), which transformers calls "gelu_new":

    gelu(x) = 0.5 x (1 + tanh(u)),   u = sqrt(2/pi) (x + 0.044715 x^3)
    gelu'(x) = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)

Not here: the exact erf GELU (torch's default nn.GELU, which nanoGPT uses): it differs by up to 5e-4 and
would not reproduce GPT-2's checkpoints. Dropout on the MLP's output is applied by the model.
"""

from __future__ import annotations

import math

import numpy as np

from minigpt.layers.linear import linear_backward, linear_forward

GELU_SCALE = math.sqrt(2.0 / math.pi)   # sqrt(2/pi)
GELU_CUBIC = 0.044715


def gelu_forward(x: np.ndarray):
    """x (...) -> out (...): GPT-2's tanh GELU, element by element.

    Written with in-place operations (`*=`, out=): each avoided temporary saves a pass over memory.
    """
    t = x * x                                                 # (...) x^2
    t *= GELU_CUBIC * GELU_SCALE
    t += GELU_SCALE
    t *= x                                                    # (...) u = sqrt(2/pi) (x + 0.044715 x^3)
    np.tanh(t, out=t)                                         # (...) tanh(u)
    out = t + 1.0
    out *= x
    out *= 0.5                                                # (...) 0.5 x (1 + tanh(u))
    return out, (x, t)                                        # x and tanh(u) give the derivative


def gelu_backward(dout: np.ndarray, cache):
    """dout (...) -> dx (...)."""
    x, t = cache
    du_dx = x * x                                             # (...)
    du_dx *= 3.0 * GELU_CUBIC * GELU_SCALE
    du_dx += GELU_SCALE                                       # (...) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
    dx = t * t
    np.subtract(1.0, dx, out=dx)                              # (...) 1 - tanh(u)^2
    dx *= x
    dx *= du_dx                                               # (...) x (1 - tanh^2) du/dx
    dx += t
    dx += 1.0
    dx *= 0.5                                                 # (...) 0.5(1 + tanh) + 0.5 x(1 - tanh^2) du/dx
    dx *= dout                                                # (...) chain rule
    return dx


def mlp_forward(x: np.ndarray, c_fc_weight: np.ndarray, c_fc_bias: np.ndarray | None,
                c_proj_weight: np.ndarray, c_proj_bias: np.ndarray | None):
    """x (B, T, C) -> out (B, T, C) through a hidden layer of 4C."""
    h, fc_cache = linear_forward(x, c_fc_weight, c_fc_bias)          # (B, T, 4C)
    a, gelu_cache = gelu_forward(h)                                   # (B, T, 4C)
    out, proj_cache = linear_forward(a, c_proj_weight, c_proj_bias)  # (B, T, C)
    return out, (fc_cache, gelu_cache, proj_cache)


def mlp_backward(dout: np.ndarray, cache):
    """dout (B, T, C) -> dx, dc_fc_weight, dc_fc_bias, dc_proj_weight, dc_proj_bias."""
    fc_cache, gelu_cache, proj_cache = cache
    da, dc_proj_weight, dc_proj_bias = linear_backward(dout, proj_cache)   # da (B, T, 4C)
    dh = gelu_backward(da, gelu_cache)                                      # (B, T, 4C)
    dx, dc_fc_weight, dc_fc_bias = linear_backward(dh, fc_cache)           # dx (B, T, C)
    return dx, dc_fc_weight, dc_fc_bias, dc_proj_weight, dc_proj_bias
