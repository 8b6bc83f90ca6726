"""Your turn: causal multi-head self-attention, forward and backward.

Fill in the bodies, then grade your file:

    minigpt lesson check 04 --impl lessons/04_attention/exercise.py

Shape legend: B batch, T time, C channels, H heads, D head size (C = H * D); Tq queries, Tk keys.
Use NumPy only, and no Python loop over batch, heads or time steps: batched matmuls (`@`) do all heads
at once. The affine map (GPT-2's Conv1D, minigpt/layers/linear.py) and dropout (lesson 02) are given.
Not here: the KV cache's bookkeeping, the residual connection and the dropout after c_proj (the model's).
"""

from __future__ import annotations

import numpy as np

from minigpt.layers.dropout import dropout_backward, dropout_forward  # noqa: F401  (yours to use)
from minigpt.layers.linear import linear_backward, linear_forward  # noqa: F401  (yours to use)


def causal_mask(Tq: int, Tk: int) -> np.ndarray:
    """(Tq, Tk) bool, True where query i may NOT look at key j.

    The queries are the LAST Tq of the Tk positions (a KV cache holds the earlier ones), so query i sits
    at position Tk - Tq + i and may see keys 0 .. Tk - Tq + i. With Tq == Tk this is the strict upper
    triangle.
    """
    raise NotImplementedError("causal_mask: compare key positions with query positions (+ the offset)")


def sdpa_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, attn_pdrop: float = 0.0,
                 rng: np.random.Generator | None = None, training: bool = True):
    """q (B, H, Tq, D), k and v (B, H, Tk, D) -> y (B, H, Tq, D), cache.

    y = dropout(softmax(q k^T / sqrt(D) + mask)) v, the softmax over the keys (the last axis).
    - Masked scores become -inf, so their weights are exactly 0.
    - Subtract each row's maximum before exp: scores of 1e4 must not overflow to inf (and then NaN).
    - Dropout (minigpt.layers.dropout.dropout_forward with attn_pdrop, rng, training) acts on the weights.
    - Keep in the cache what the backward needs: the weights before and after dropout, q, k, v, the scale.
    Must work in float32 (result float32) and float64.
    """
    raise NotImplementedError("sdpa_forward: scores, scale, mask, stable softmax, dropout, weights @ v")


def sdpa_backward(dy: np.ndarray, cache):
    """dy (B, H, Tq, D) -> dq (B, H, Tq, D), dk (B, H, Tk, D), dv (B, H, Tk, D).

    Walk the forward backwards: y = A v gives dv and dA; dropout's backward; then the softmax backward,
    row by row, ds = p * (dp - sum(dp * p)) with p the softmax output; then the scale; then the scores
    s = q k^T give dq and dk. Masked entries have p = 0, so they need no special case.
    """
    raise NotImplementedError("sdpa_backward: dv, dA, dropout, softmax backward, scale, dq and dk")


def split_heads(x: np.ndarray, n_head: int) -> np.ndarray:
    """(B, T, C) -> (B, H, T, D): channels h*D .. (h+1)*D - 1 become head h."""
    raise NotImplementedError("split_heads: reshape to (B, T, H, D), then move H before T")


def merge_heads(y: np.ndarray) -> np.ndarray:
    """(B, H, T, D) -> (B, T, C): the inverse of split_heads."""
    raise NotImplementedError("merge_heads: move H back after T, then reshape to (B, T, H * D)")


def attention_forward(x: np.ndarray, c_attn_weight: np.ndarray, c_attn_bias: np.ndarray | None,
                      c_proj_weight: np.ndarray, c_proj_bias: np.ndarray | None, n_head: int,
                      attn_pdrop: float = 0.0, rng: np.random.Generator | None = None, training: bool = True):
    """x (B, T, C) -> out (B, T, C), cache. c_attn_weight (C, 3C), c_proj_weight (C, C): (in, out) layout.

    qkv = x @ c_attn_weight + c_attn_bias, split along the last axis into q, k, v IN THAT ORDER (GPT-2's
    checkpoints depend on it), each split into n_head heads; sdpa; heads merged; out = y @ c_proj_weight
    + c_proj_bias. Raise ValueError with a clear message when C is not divisible by n_head.
    """
    raise NotImplementedError("attention_forward: c_attn, split q|k|v, heads, sdpa, merge, c_proj")


def attention_backward(dout: np.ndarray, cache):
    """dout (B, T, C) -> (dx, dc_attn_weight, dc_attn_bias, dc_proj_weight, dc_proj_bias).

    In reverse: c_proj's backward, split the gradient into heads, sdpa_backward, merge dq, dk, dv and
    concatenate them (q, k, v order) into dqkv (B, T, 3C), then c_attn's backward.
    """
    raise NotImplementedError("attention_backward: c_proj back, heads, sdpa back, merge, c_attn back")
