"""A key/value cache for generation: each layer's past keys and values, so a new token attends without
recomputing the whole prefix.

Generating token t+1 needs the attention of the newest position over positions 0..t. Its query is new, but
the keys and values of 0..t-1 were computed at earlier steps and never change (the model is causal), so we
keep them. The sampler's loop (minigpt/sampling.py) is then:

    cache = model.new_kv_cache()
    logits = model.forward(prompt, kv_cache=cache)     # (B, T0, V); the cache now holds T0 positions
    while ...:
        logits = model.forward(next_ids, kv_cache=cache)   # next_ids (B, 1): position len(cache)
    len(cache)          # positions held, the same for every layer
    cache.crop(n)       # keep only the first n positions (n <= len(cache)); crop(0) empties it
    cache.reset()       # the same as crop(0)

Positions continue from len(cache): the new tokens are embedded with wpe[len(cache):len(cache) + T].
GPT-2's positions are absolute, so a full context cannot "slide" by dropping the oldest keys: those keys
were computed at their old positions. When len(cache) + T would exceed block_size the model raises; the
sampler then resets the cache and feeds the last tokens again (window re-encoding, what transformers
and nanoGPT's crop do too).

Storage: one buffer per layer for keys and one for values, (B, H, block_size, D), allocated on the first
forward and written in place; attention reads the views [:, :, :len]. No concatenation per step.

The generation loop's hot path, one token of one sequence on (C,) vectors, is minigpt/decode.py: an engine
beside model.forward(..., kv_cache=cache), which writes through append_one below.

What this file deliberately does not do: training (the cache holds no backward state, it is eval only),
beam search reordering, or a sliding window over absolute positions.
"""

from __future__ import annotations

import numpy as np

from minigpt.layers.attention import merge_heads, sdpa_forward, split_heads
from minigpt.layers.linear import linear_forward


class KVCache:
    """Per-layer keys and values of the positions seen so far: k[l], v[l] are (B, H, len, D) views."""

    def __init__(self, n_layer: int, block_size: int):
        self.n_layer = n_layer
        self.block_size = block_size                  # capacity: the model's number of positions
        self.length = 0                               # positions committed (the same in every layer)
        self._k: list[np.ndarray | None] = [None] * n_layer   # (B, H, block_size, D) buffers
        self._v: list[np.ndarray | None] = [None] * n_layer

    def __len__(self) -> int:
        return self.length

    def k(self, layer: int) -> np.ndarray:
        """The keys held for one layer, (B, H, len, D) (a view, do not write to it)."""
        return self._k[layer][:, :, :self.length]

    def v(self, layer: int) -> np.ndarray:
        """The values held for one layer, (B, H, len, D)."""
        return self._v[layer][:, :, :self.length]

    def crop(self, n: int) -> None:
        """Keep the first n positions and forget the rest (the buffers stay allocated)."""
        if not 0 <= n <= self.length:
            raise ValueError(f"cannot crop a cache of {self.length} positions to {n}; "
                             f"use 0 <= n <= {self.length}")
        self.length = n

    def reset(self) -> None:
        """Forget every position (crop(0))."""
        self.length = 0

    def append(self, layer: int, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Write T new positions after the held ones; return all keys and values, (B, H, len + T, D).

        The new positions only become part of len(cache) when the model calls advance(T) after the
        last layer, so a forward that fails half-way leaves the cache as it was.
        """
        B, H, T, D = k.shape
        start, end = self.length, self.length + T
        if end > self.block_size:
            raise ValueError(f"the KV cache holds {start} positions and {T} more would exceed block_size "
                             f"{self.block_size}; reset() it and feed the last tokens again")
        buf_k = self._k[layer]
        if buf_k is None or buf_k.shape[:2] != (B, H) or buf_k.shape[3] != D or buf_k.dtype != k.dtype:
            if start > 0:
                raise ValueError(f"the KV cache holds (B, H, _, D) = {buf_k.shape[:2]}, {buf_k.shape[3]} "
                                 f"{buf_k.dtype}, got {(B, H)}, {D} {k.dtype}; use one cache per batch "
                                 "size (model.new_kv_cache()) or reset() it first")
            self._k[layer] = np.empty((B, H, self.block_size, D), dtype=k.dtype)   # (B, H, block, D)
            self._v[layer] = np.empty((B, H, self.block_size, D), dtype=v.dtype)
        self._k[layer][:, :, start:end] = k                 # write in place: no copy of the past
        self._v[layer][:, :, start:end] = v
        return self._k[layer][:, :, :end], self._v[layer][:, :, :end]   # (B, H, len + T, D) views

    def append_one(self, layer: int, k: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """One sequence, one new position: k, v (H, D) -> all keys and values (H, len + 1, D), views.

        The decode engine's write (minigpt/decode.py): append() for B = T = 1 without the reshapes. The
        cache must already hold a batch-1 prefill, which allocated the buffers.
        """
        buf_k = self._k[layer]
        pos = self.length
        if buf_k is None or buf_k.shape[0] != 1 or buf_k.shape[1] != k.shape[0]:
            raise ValueError("append_one needs a cache holding one sequence's prefill; "
                             "call model.forward(prompt[None], kv_cache=cache) first")
        if pos >= self.block_size:
            raise ValueError(f"the KV cache is full ({self.block_size} positions): reset() it and feed "
                             "the last tokens again")
        k_buf, v_buf = buf_k[0], self._v[layer][0]          # (H, block_size, D) each
        k_buf[:, pos] = k                                   # write the new key and value in place
        v_buf[:, pos] = v
        return k_buf[:, :pos + 1], v_buf[:, :pos + 1]       # (H, len + 1, D) views

    def advance(self, T: int) -> None:
        """Commit the T positions every layer has just appended (the model calls this once per forward)."""
        self.length += T


def cached_attention_forward(x: np.ndarray, c_attn_weight: np.ndarray, c_attn_bias: np.ndarray | None,
                             c_proj_weight: np.ndarray, c_proj_bias: np.ndarray | None, n_head: int,
                             cache: KVCache, layer: int) -> np.ndarray:
    """x (B, T, C) of the new positions -> out (B, T, C), attending over the cached past and themselves.

    The same computation as layers.attention.attention_forward in eval mode; the only difference is that
    k and v of the past come from the cache (sdpa_forward applies the causal offset for Tk > Tq).
    """
    qkv, _ = linear_forward(x, c_attn_weight, c_attn_bias)          # (B, T, 3C)
    q, k, v = np.split(qkv, 3, axis=-1)                             # 3 x (B, T, C), q first
    q, k, v = (split_heads(a, n_head) for a in (q, k, v))           # 3 x (B, H, T, D)
    k_all, v_all = cache.append(layer, k, v)                        # 2 x (B, H, len + T, D)
    y, _ = sdpa_forward(q, k_all, v_all, training=False)            # (B, H, T, D)
    out, _ = linear_forward(merge_heads(y), c_proj_weight, c_proj_bias)   # (B, T, C)
    return out
