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

from minigpt import engines
from minigpt.layers.dropout import dropout_backward, dropout_forward
from minigpt.layers.linear import linear_backward, linear_forward
from minigpt.layers.parallel import BLAS_THREADED, PARALLEL_MIN, run_blocks
from minigpt.layers.softmax import softmax, softmax_backward


def causal_mask(Tq: int, Tk: int) -> np.ndarray:
    """(Tq, Tk) bool, True where query i may NOT look at key j (j is in its future)."""
    offset = Tk - Tq                                  # position of query 0 among the keys
    return np.arange(Tk)[None, :] > np.arange(Tq)[:, None] + offset


def sdpa_forward(q: np.ndarray, k: np.ndarray, v: np.ndarray, attn_pdrop: float = 0.0,
                 rng: np.random.Generator | None = None, training: bool = True):
    """q (B, H, Tq, D), k and v (B, H, Tk, D) -> y (B, H, Tq, D): causal scaled dot-product attention.

    With engines on, large inputs without dropout go to sdpa_forward_engine (the same numbers, faster)."""
    Tq, D = q.shape[-2], q.shape[-1]
    Tk = k.shape[-2]
    if _engine_fits(q, Tk, attn_pdrop if training else 0.0):
        return sdpa_forward_engine(q, k, v)
    scale = 1.0 / math.sqrt(D)
    att = q @ k.swapaxes(-1, -2)                      # (B, H, Tq, Tk) scores: query . key
    att *= scale                                      # keeps the scores' variance ~1 as D grows
    np.copyto(att, -np.inf, where=causal_mask(Tq, Tk))   # no peeking at future positions
    att = softmax(att, out=att)                       # (B, H, Tq, Tk) each row sums to 1 over the keys
    att_drop, drop_cache = dropout_forward(att, attn_pdrop, rng, training)   # (B, H, Tq, Tk)
    y = att_drop @ v                                  # (B, H, Tq, D) weighted sum of values
    cache = (q, k, v, att, att_drop, drop_cache, scale)   # att for softmax backward; q, k, v for matmuls
    return y, cache


def sdpa_backward(dy: np.ndarray, cache):
    """dy (B, H, Tq, D) -> dq (B, H, Tq, D), dk (B, H, Tk, D), dv (B, H, Tk, D)."""
    q, k, v, att, att_drop, drop_cache, scale = cache
    if drop_cache is None and _engine_fits(q, k.shape[-2], 0.0):
        return sdpa_backward_engine(dy, cache)
    dv = att_drop.swapaxes(-1, -2) @ dy               # (B, H, Tk, D)
    datt = dy @ v.swapaxes(-1, -2)                    # (B, H, Tq, Tk)
    datt = dropout_backward(datt, drop_cache)         # (B, H, Tq, Tk)
    dscores = softmax_backward(datt, att)             # (B, H, Tq, Tk) row by row: p * (dp - sum(dp * p))
    dscores *= scale                                  # the forward scaled the scores
    dq = dscores @ k                                  # (B, H, Tq, D)
    dk = dscores.swapaxes(-1, -2) @ q                 # (B, H, Tk, D)
    return dq, dk, dv


# ---- engines: the same pair, keys-by-queries, batch blocks on every core -------------------------------
def _engine_fits(q: np.ndarray, Tk: int, pdrop: float) -> bool:
    """Engines on, no dropout (its random draws stay in the definition's order) and enough work."""
    B, H, Tq, _ = q.shape
    return engines.enabled() and pdrop == 0.0 and B * H * Tq * Tk >= PARALLEL_MIN


def _blas_threads_itself(Tq: int, Tk: int, D: int) -> int:
    """1 (blocks on the calling thread only) when each head's matmul is large enough for BLAS to spread
    it over the cores itself, else 0 (the pool's threads): two threads each asking BLAS for all cores
    would only queue behind each other."""
    return 1 if Tq * Tk * D > BLAS_THREADED else 0


def sdpa_forward_engine(q: np.ndarray, k: np.ndarray, v: np.ndarray):
    """sdpa_forward without dropout, blocks of the batch on every core; equals it to rounding (float32
    ~1e-6, float64 ~1e-15). The scores are computed transposed, (Tk, Tq) per head = k q^T, so the softmax
    runs down the columns: NumPy's max and sum along a short last axis are 3-4x slower than along the
    second-to-last one. Baby shape (12, 4, 64, 32) float32, CPU time on one core: 1.26 -> 1.00 ms; the
    batch blocks also run on every core (BLAS runs these small matmuls on one thread)."""
    B, H, Tq, D = q.shape
    Tk = k.shape[-2]
    scale = 1.0 / math.sqrt(D)
    att_t = np.empty((B, H, Tk, Tq), dtype=np.result_type(q, k))    # (B, H, Tk, Tq) scores, transposed
    y = np.empty((B, Tq, H, D), dtype=np.result_type(att_t, v))      # (B, Tq, H, D): merge_heads is a view
    mask = np.where(causal_mask(Tq, Tk).T, -np.inf, 0.0).astype(att_t.dtype)   # (Tk, Tq) -inf: the future

    def work(start: int, stop: int) -> None:
        a = att_t[start:stop]                                         # (b, H, Tk, Tq)
        q_scaled = q[start:stop] * scale                              # (b, H, Tq, D) smaller than a (D < T)
        np.matmul(k[start:stop], q_scaled.swapaxes(-1, -2), out=a)    # k . q / sqrt(D) for every pair
        a += mask                                                     # one pass (copyto where= is 2x slower)
        softmax(a, axis=-2, out=a)                                    # over the keys: down each column
        np.matmul(a.swapaxes(-1, -2), v[start:stop], out=y[start:stop].transpose(0, 2, 1, 3))

    run_blocks(work, B, H * Tq * Tk, max_threads=_blas_threads_itself(Tq, Tk, D))
    att = att_t.swapaxes(-1, -2)                                      # (B, H, Tq, Tk) a view
    return y.transpose(0, 2, 1, 3), (q, k, v, att, att, None, scale)  # the definition's cache


def sdpa_backward_engine(dy: np.ndarray, cache, out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None):
    """sdpa_backward without dropout, blocks of the batch on every core, on the engine's transposed
    scores; equals it to rounding. Baby shape, CPU time on one core: about equal (1.03 ms), the gain is the
    spread over the cores. With out, the matmuls write straight into it (no copy)."""
    q, k, v, att, _, _, scale = cache
    B, H, Tq, D = q.shape
    Tk = k.shape[-2]
    att_t = att.swapaxes(-1, -2)                                      # (B, H, Tk, Tq)
    if out is None:
        out = (np.empty(q.shape, dtype=np.result_type(dy, k)),       # (B, H, Tq, D)
               np.empty(k.shape, dtype=np.result_type(dy, q)),       # (B, H, Tk, D)
               np.empty(v.shape, dtype=np.result_type(att, dy)))     # (B, H, Tk, D)
    dq, dk, dv = out
    datt_t = np.empty(att_t.shape, dtype=np.result_type(dy, v))       # (B, H, Tk, Tq)
    tmp = np.empty(att_t.shape, dtype=datt_t.dtype)                   # (B, H, Tk, Tq) scratch

    def work(start: int, stop: int) -> None:
        p, dp, t, g = att_t[start:stop], datt_t[start:stop], tmp[start:stop], dy[start:stop]
        np.matmul(p, g, out=dv[start:stop])                           # (b, H, Tk, D)
        np.matmul(v[start:stop], g.swapaxes(-1, -2), out=dp)          # (b, H, Tk, Tq) dP transposed
        np.multiply(dp, p, out=t)
        dp -= np.add.reduce(t, axis=-2, keepdims=True)                # dp - sum over the keys of dp * p
        dp *= p
        dp *= scale                                                   # dS transposed, scaled
        np.matmul(dp.swapaxes(-1, -2), k[start:stop], out=dq[start:stop])
        np.matmul(dp, q[start:stop], out=dk[start:stop])

    run_blocks(work, B, H * Tq * Tk, max_threads=_blas_threads_itself(Tq, Tk, D))
    return dq, dk, dv


def qkv_grad_engine(dy: np.ndarray, cache) -> np.ndarray:
    """attention_backward's dq, dk, dv merged into one (B, T, 3C) gradient of c_attn's output, written by
    sdpa_backward_engine's matmuls straight into its three column blocks instead of concatenated
    afterwards: the same numbers (tests/test_engines.py: the training step), one copy less (~0.9 ms of a
    33 ms half-batch baby step on one thread)."""
    q = cache[0]                                                      # (B, H, T, D)
    B, H, T, D = q.shape
    dqkv = np.empty((B, T, 3 * H * D), dtype=np.result_type(dy, q))   # (B, T, 3C) q, k, v's order
    C = H * D
    sdpa_backward_engine(dy, cache, out=tuple(split_heads(dqkv[..., i * C:(i + 1) * C], H) for i in range(3)))
    return dqkv


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
    q, k, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]        # 3 x (B, T, C), q first (views)
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
    q, k, _, _, _, drop_cache, _ = sdpa_cache
    if drop_cache is None and _engine_fits(q, k.shape[-2], 0.0):           # engine: no concatenate copy
        dqkv = qkv_grad_engine(split_heads(dy, H), sdpa_cache)            # (B, T, 3C)
    else:
        dq, dk, dv = sdpa_backward(split_heads(dy, H), sdpa_cache)         # 3 x (B, H, T, D)
        dqkv = np.concatenate([merge_heads(dq), merge_heads(dk), merge_heads(dv)], axis=-1)   # (B, T, 3C)
    dx, dc_attn_weight, dc_attn_bias = linear_backward(dqkv, attn_cache)  # dx (B, T, C)
    return dx, dc_attn_weight, dc_attn_bias, dc_proj_weight, dc_proj_bias
