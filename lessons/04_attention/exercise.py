"""Your turn: causal multi-head self-attention, forward and backward, in five steps.

    step 1  causal_mask                              the causal mask, with a KV cache's offset
    step 2  sdpa_forward                             scaled dot-product attention, forward
    step 3  sdpa_backward                            its backward
    step 4  split_heads, merge_heads                 channels into heads and back
    step 5  attention_forward, attention_backward    the whole layer

    minigpt lesson check 04 --impl lessons/04_attention/exercise.py [--step K]
    minigpt lesson hint 04 K                         # the first hint nudges, the last nearly gives it away

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
    """(Tq, Tk) bool, True where query i may NOT look at key j.   (step 1)

    The queries are the LAST Tq of the Tk positions (a KV cache holds the earlier ones). A query may look
    at its own position and every earlier one, never a later one. With Tq == Tk this is the usual causal
    mask; Tq = 2, Tk = 5 (two new tokens after three cached ones) is graded too.
    """
    raise NotImplementedError("step 1 not started: causal_mask")


def sdpa_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, attn_pdrop: float = 0.0,
                 rng: np.random.Generator | None = None, training: bool = True):
    """q (B, H, Tq, D), k and v (B, H, Tk, D) -> y (B, H, Tq, D), cache.   (step 2)

    Causal scaled dot-product attention, as torch's F.scaled_dot_product_attention with a bottom-right
    causal mask (your step 1). Must hold:
    - each query's weights over the keys are >= 0 and sum to 1 (v = 1 gives y = 1); hidden keys get a
      weight of exactly 0;
    - scores of 1e4 give no inf or NaN;
    - dropout (minigpt.layers.dropout.dropout_forward with attn_pdrop, rng, training) acts on the weights;
    - the last 2 queries against all keys give the last 2 rows of the full attention;
    - float32 in, float32 out; float64 stays float64.
    The cache is yours: keep what the backward needs.
    """
    raise NotImplementedError("step 2 not started: sdpa_forward")


def sdpa_backward(dy: np.ndarray, cache):
    """dy (B, H, Tq, D) -> dq (B, H, Tq, D), dk (B, H, Tk, D), dv (B, H, Tk, D).   (step 3)

    The gradients of sum(y * dy), graded against torch's autograd and against finite differences of
    your own forward (with and without dropout). Derive the softmax's backward on paper first.
    """
    raise NotImplementedError("step 3 not started: sdpa_backward")


def split_heads(x: np.ndarray, n_head: int) -> np.ndarray:
    """(B, T, C) -> (B, H, T, D): channels h*D .. (h+1)*D - 1 become head h.   (step 4)"""
    raise NotImplementedError("step 4 not started: split_heads")


def merge_heads(y: np.ndarray) -> np.ndarray:
    """(B, H, T, D) -> (B, T, C): the inverse of split_heads.   (step 4)"""
    raise NotImplementedError("step 4 not started: merge_heads")


def attention_forward(x: np.ndarray, c_attn_weight: np.ndarray, c_attn_bias: np.ndarray | None,
                      c_proj_weight: np.ndarray, c_proj_bias: np.ndarray | None, n_head: int,
                      attn_pdrop: float = 0.0, rng: np.random.Generator | None = None, training: bool = True):
    """x (B, T, C) -> out (B, T, C), cache. c_attn_weight (C, 3C), c_proj_weight (C, C): (in, out) layout.
    (step 5)

    GPT-2's attention layer: c_attn maps x to 3C channels holding q, k and v, IN THAT ORDER (GPT-2's
    checkpoints depend on it); each is split into n_head heads; sdpa; heads merged; c_proj maps back to
    C channels. Raise ValueError with a clear message when C is not divisible by n_head.
    """
    raise NotImplementedError("step 5 not started: attention_forward")


def attention_backward(dout: np.ndarray, cache):
    """dout (B, T, C) -> (dx, dc_attn_weight, dc_attn_bias, dc_proj_weight, dc_proj_bias).   (step 5)

    In the order of the forward's inputs; graded against torch and finite differences.
    """
    raise NotImplementedError("step 5 not started: attention_backward")
