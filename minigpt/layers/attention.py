"""Causal multi-head self-attention, GPT-2's `attn` sub-layer, forward and backward.

Two pairs, the inner one usable on its own:

    sdpa_forward(q, k, v)      softmax(q k^T / sqrt(D) + mask) v            per head, all heads at once
    attention_forward(x, ...)  c_attn (C -> 3C, split q, k, v in that order) -> H heads of size D
                               -> sdpa -> heads merged back to C -> c_proj (C -> C)

The causal mask lets query i see keys 0..i. When there are more keys than queries (a KV cache holds the
past), the queries are the *last* Tq positions, so query i sees keys 0..(Tk - Tq + i).

Softmax backward, for one row p = softmax(s) and upstream dp:  ds = p * (dp - sum(dp * p)).
Masked entries have p = 0, so they get no gradient without any special case.

Not here: the KV cache's bookkeeping (kv_cache.py) and dropout on the c_proj output (model.py).
"""

from __future__ import annotations

import math

import numpy as np

from minigpt.layers.dropout import dropout_backward, dropout_forward
from minigpt.layers.linear import linear_backward, linear_forward


def causal_mask(Tq: int, Tk: int) -> np.ndarray:
    """(Tq, Tk) bool, True where query i may NOT look at key j (j is in its future)."""
    offset = Tk - Tq                                  # position of query 0 among the keys
    return np.arange(Tk)[None, :] > np.arange(Tq)[:, None] + offset


def sdpa_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, attn_pdrop: float = 0.0,
                 rng: np.random.Generator | None = None, training: bool = True):
    """q (B, H, Tq, D), k and v (B, H, Tk, D) -> y (B, H, Tq, D): causal scaled dot-product attention."""
    Tq, D = q.shape[-2], q.shape[-1]
    Tk = k.shape[-2]
    scale = 1.0 / math.sqrt(D)
    att = q @ k.swapaxes(-1, -2)                      # (B, H, Tq, Tk) scores: query . key
    att *= scale                                      # keeps the scores' variance ~1 as D grows
    np.copyto(att, -np.inf, where=causal_mask(Tq, Tk))   # no peeking at future positions
    att -= att.max(axis=-1, keepdims=True)            # stable softmax: the largest exponent is 0
    np.exp(att, out=att)                              # (B, H, Tq, Tk)
    att /= att.sum(axis=-1, keepdims=True)            # (B, H, Tq, Tk) each row sums to 1 over the keys
    att_drop, drop_cache = dropout_forward(att, attn_pdrop, rng, training)   # (B, H, Tq, Tk)
    y = att_drop @ v                                  # (B, H, Tq, D) weighted sum of values
    cache = (q, k, v, att, att_drop, drop_cache, scale)   # att for softmax backward; q, k, v for matmuls
    return y, cache


def sdpa_backward(dy: np.ndarray, cache):
    """dy (B, H, Tq, D) -> dq (B, H, Tq, D), dk (B, H, Tk, D), dv (B, H, Tk, D)."""
    q, k, v, att, att_drop, drop_cache, scale = cache
    dv = att_drop.swapaxes(-1, -2) @ dy               # (B, H, Tk, D)
    datt = dy @ v.swapaxes(-1, -2)                    # (B, H, Tq, Tk)
    datt = dropout_backward(datt, drop_cache)         # (B, H, Tq, Tk)
    # softmax backward, row by row: ds = p * (dp - sum_j dp_j p_j)
    dscores = att * (datt - np.sum(datt * att, axis=-1, keepdims=True))   # (B, H, Tq, Tk)
    dscores *= scale                                  # the forward scaled the scores
    dq = dscores @ k                                  # (B, H, Tq, D)
    dk = dscores.swapaxes(-1, -2) @ q                 # (B, H, Tk, D)
    return dq, dk, dv


def split_heads(x: np.ndarray, n_head: int) -> np.ndarray:
    """(B, T, C) -> (B, H, T, D)."""
    B, T, C = x.shape
    return x.reshape(B, T, n_head, C // n_head).transpose(0, 2, 1, 3)


def merge_heads(y: np.ndarray) -> np.ndarray:
    """(B, H, T, D) -> (B, T, C)."""
    B, H, T, D = y.shape
    return y.transpose(0, 2, 1, 3).reshape(B, T, H * D)


def attention_forward(x: np.ndarray, c_attn_weight: np.ndarray, c_attn_bias: np.ndarray | None,
                      c_proj_weight: np.ndarray, c_proj_bias: np.ndarray | None, n_head: int,
                      attn_pdrop: float = 0.0, rng: np.random.Generator | None = None, training: bool = True):
    """x (B, T, C) -> out (B, T, C). c_attn_weight (C, 3C), c_proj_weight (C, C), Conv1D layout."""
    B, T, C = x.shape
    if C % n_head:
        raise ValueError(f"n_embd {C} is not divisible by n_head {n_head}")
    qkv, attn_cache = linear_forward(x, c_attn_weight, c_attn_bias)   # (B, T, 3C)
    q, k, v = np.split(qkv, 3, axis=-1)                               # 3 x (B, T, C), q first
    q, k, v = (split_heads(a, n_head) for a in (q, k, v))             # 3 x (B, H, T, D)
    y, sdpa_cache = sdpa_forward(q, k, v, attn_pdrop, rng, training)  # (B, H, T, D)
    y = merge_heads(y)                                                # (B, T, C)
    out, proj_cache = linear_forward(y, c_proj_weight, c_proj_bias)   # (B, T, C)
    return out, (attn_cache, sdpa_cache, proj_cache)


def attention_backward(dout: np.ndarray, cache):
    """dout (B, T, C) -> dx, dc_attn_weight, dc_attn_bias, dc_proj_weight, dc_proj_bias."""
    attn_cache, sdpa_cache, proj_cache = cache
    H = sdpa_cache[0].shape[1]                                             # q (B, H, T, D) holds H
    dy, dc_proj_weight, dc_proj_bias = linear_backward(dout, proj_cache)   # dy (B, T, C)
    dq, dk, dv = sdpa_backward(split_heads(dy, H), sdpa_cache)             # 3 x (B, H, T, D)
    dqkv = np.concatenate([merge_heads(dq), merge_heads(dk), merge_heads(dv)], axis=-1)   # (B, T, 3C)
    dx, dc_attn_weight, dc_attn_bias = linear_backward(dqkv, attn_cache)  # dx (B, T, C)
    return dx, dc_attn_weight, dc_attn_bias, dc_proj_weight, dc_proj_bias
