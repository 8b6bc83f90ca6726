"""LoRA, low-rank adaptation (Hu et al., 2021): a frozen Conv1D layer plus a trainable rank-r update.

    out = x W + b + s · (dropout(x) A) B          s = alpha / r
    x (N, Cin)  W (Cin, Cout)  b (Cout,)  A (Cin, r)  B (r, Cout)  out (N, Cout)      N = all leading axes

W and b stay frozen: the backward returns dx (the layers below still need it), dA and dB, and no dW.
B starts at zero, so a freshly adapted model computes exactly what the base model computes; A starts
random (PEFT's default, the same as torch's nn.Linear: uniform in ±1/sqrt(Cin)), so B's first gradient is
not zero. A and B are kept in GPT-2's (in, out) layout; PEFT stores them as nn.Linear weights, A as (r, Cin)
and B as (Cout, r): its A is our A transposed.

The backward, with xd = dropout(x) (N, Cin), u = xd A (N, r) and dout (N, Cout):

    out = x W + b + s u B         so   dB = s uᵀ dout                        (r, Cout)
    du  = s dout Bᵀ   (N, r)           dA = xdᵀ du                           (Cin, r)
    dx  = dout Wᵀ + dropout_backward(du Aᵀ)                                  (N, Cin)

The adapter's path costs N r (Cin + Cout) multiply-adds forward, against N Cin Cout for the frozen
matmul: with r = 8 and Cin = Cout = 768 that is 2 % of the layer.

Not here: which layers get adapters, freezing the rest of the model, the optimizer (minigpt/finetune/lora.py);
LoRA on embeddings; other variants (DoRA, rsLoRA's alpha / sqrt(r), biases on the adapters).
"""

from __future__ import annotations

import math

import numpy as np

from minigpt.layers.dropout import dropout_backward, dropout_forward


def lora_init(c_in: int, c_out: int, r: int, rng: np.random.Generator, dtype=np.float32):
    """A (Cin, r), B (r, Cout) as PEFT initialises them: A ~ U(-1/sqrt(Cin), 1/sqrt(Cin)), B = 0.

    PEFT calls torch's kaiming_uniform_(a=sqrt(5)) on its (r, Cin) A: gain sqrt(2 / (1 + 5)), fan-in Cin,
    bound gain * sqrt(3 / Cin) = 1 / sqrt(Cin). Drawn in float64, then cast (both dtypes draw the same A).
    """
    if isinstance(r, bool) or not isinstance(r, int | np.integer) or r < 1:
        raise ValueError(f"LoRA rank r must be a positive integer, got {r!r}")
    bound = 1.0 / math.sqrt(c_in)
    lora_A = rng.uniform(-bound, bound, size=(c_in, r)).astype(dtype)      # (Cin, r)
    lora_B = np.zeros((r, c_out), dtype=dtype)                             # (r, Cout): starts as the base
    return lora_A, lora_B


def lora_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, lora_A: np.ndarray,
                 lora_B: np.ndarray, scale: float, dropout: float = 0.0,
                 rng: np.random.Generator | None = None, training: bool = True):
    """x (..., Cin) -> out (..., Cout) = x W + b + scale · (dropout(x) A) B. scale is alpha / r.

    dropout acts on the adapter's input only (PEFT's lora_dropout); the frozen path sees x unchanged.
    """
    c_in, c_out = weight.shape
    if x.shape[-1] != c_in:
        raise ValueError(f"x has {x.shape[-1]} features, but weight {weight.shape} is read as (in, out) and "
                         f"needs {c_in}: GPT-2's Conv1D layout")
    r = lora_A.shape[1]
    if lora_A.shape != (c_in, r) or lora_B.shape != (r, c_out):
        raise ValueError(f"adapter shapes {lora_A.shape} and {lora_B.shape} do not fit weight "
                         f"{weight.shape}: A must be (in, r) = ({c_in}, r) and B (r, out) = (r, {c_out}); "
                         "PEFT's lora_A.weight and lora_B.weight are the transposes")
    scale = float(scale)                                  # a Python float keeps float32 float32
    x2 = x.reshape(-1, c_in)                              # (N, Cin)
    xd, drop = dropout_forward(x2, dropout, rng, training)   # (N, Cin) the adapter's input
    u = xd @ lora_A                                       # (N, r) the input squeezed to r numbers a row
    out = x2 @ weight                                     # (N, Cout) the frozen layer
    if bias is not None:
        out += bias                                       # (N, Cout)
    out += scale * (u @ lora_B)                           # (N, Cout) plus the low-rank update
    # kept: xd for dA, u for dB, W for dx, A and B for the adapter's part of dx, the dropout mask
    cache = (xd, u, weight, lora_A, lora_B, scale, drop, x.shape)
    return out.reshape(*x.shape[:-1], c_out), cache       # (..., Cout)


def lora_backward(dout: np.ndarray, cache):
    """dout (..., Cout) -> dx (..., Cin), dA (Cin, r), dB (r, Cout). No dW or db: the base is frozen."""
    xd, u, weight, lora_A, lora_B, scale, drop, x_shape = cache
    d2 = dout.reshape(-1, weight.shape[1])                # (N, Cout)
    dB = scale * (u.T @ d2)                               # (r, Cout): out = ... + s u B
    du = scale * (d2 @ lora_B.T)                          # (N, r)
    dA = xd.T @ du                                        # (Cin, r): u = xd A, summed over the N rows
    dx = d2 @ weight.T                                    # (N, Cin) through the frozen W
    dx += dropout_backward(du @ lora_A.T, drop)           # (N, Cin) and through the adapter
    return dx.reshape(x_shape), dA, dB


def lora_merge(weight: np.ndarray, lora_A: np.ndarray, lora_B: np.ndarray, scale: float) -> np.ndarray:
    """W + scale · A B (Cin, Cout): one plain Conv1D weight that computes what the adapted layer computes
    (in eval mode: dropout is off). A new array; weight is not changed."""
    return weight + scale * (lora_A @ lora_B)             # (Cin, Cout)


def lora_unmerge(merged: np.ndarray, lora_A: np.ndarray, lora_B: np.ndarray, scale: float) -> np.ndarray:
    """The inverse of lora_merge: merged - scale · A B (Cin, Cout), the base weight again up to rounding."""
    return merged - scale * (lora_A @ lora_B)             # (Cin, Cout)
