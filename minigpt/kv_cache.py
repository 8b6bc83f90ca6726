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

prefill(model, idx, cache) feeds a prompt (or a refilled window) and returns only the last position's
logits. decode_step(model, token, cache) is the generation loop's hot path: the same arithmetic as
model.forward(np.array([[token]]), kv_cache=cache)[0, -1] for one sequence and one new token, written on
(C,) vectors so each projection is one vector-matrix product and nothing is reshaped, masked or copied
that need not be (a single query sees every cached key, so there is no mask). tests/test_sampling.py
checks it against model.forward.

What this file deliberately does not do: training (the cache holds no backward state, it is eval only),
beam search reordering, or a sliding window over absolute positions.
"""

from __future__ import annotations

import math

import numpy as np

from minigpt.layers.attention import merge_heads, sdpa_forward, split_heads
from minigpt.layers.embedding import embedding_forward
from minigpt.layers.layernorm import layernorm_forward
from minigpt.layers.linear import linear_forward
from minigpt.layers.mlp import gelu_forward


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


# ---- the hot path of generation: one token, one sequence ---------------------------------------------
BLOCK_NAMES = ("ln_1.weight", "ln_1.bias", "attn.c_attn.weight", "attn.c_attn.bias", "attn.c_proj.weight",
               "attn.c_proj.bias", "ln_2.weight", "ln_2.bias", "mlp.c_fc.weight", "mlp.c_fc.bias",
               "mlp.c_proj.weight", "mlp.c_proj.bias")     # a block's parameters, short names (model.py too)


def _layernorm_1d(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, eps: float) -> np.ndarray:
    """x (C,) -> (C,): layernorm_forward for one position, without the backward's cache."""
    C = x.shape[0]
    xc = x - np.add.reduce(x) / C                              # (C,) centred (cheaper than x.mean())
    out = xc * (weight * (1.0 / math.sqrt(float(np.dot(xc, xc)) / C + eps)))   # (C,) gain / std
    if bias is not None:
        out += bias
    return out


def layer_params(model) -> list[tuple]:
    """Each block's twelve arrays in BLOCK_NAMES order (None for absent biases): look them up once per run."""
    return [tuple(model.params.get(f"h.{i}.{n}") for n in BLOCK_NAMES) for i in range(model.config.n_layer)]


def prefill(model, idx: np.ndarray, cache: KVCache, layers: list[tuple] | None = None) -> np.ndarray:
    """idx (1, T) new tokens after the cached ones -> the logits of the last one only (V,).

    model.forward(idx, kv_cache=cache)[0, -1] without the head's (T, V) matmul for the T - 1 positions
    whose logits a sampler throws away: for GPT-2 small and a 1024-token window that is 79 of 291 GFLOP
    and a 200 MB temporary.
    """
    from minigpt.model import block_forward, check_idx  # here, not on top: model.py imports this module

    config, params = model.config, model.params
    check_idx(idx, config, len(cache))
    if layers is None:
        layers = layer_params(model)
    x, _ = embedding_forward(idx, params["wte.weight"], params["wpe.weight"], len(cache))   # (1, T, C)
    for i, arrays in enumerate(layers):
        x, _ = block_forward(x, dict(zip(BLOCK_NAMES, arrays, strict=True)), config, kv_cache=cache, layer=i)
    cache.advance(idx.shape[1])                                 # every layer has appended: commit
    x, _ = layernorm_forward(x[:, -1], params["ln_f.weight"], params.get("ln_f.bias"),
                             config.layer_norm_epsilon)         # (1, C) the last position only
    return x[0] @ params["wte.weight"].T                        # (V,)


def decode_step(model, token: int, cache: KVCache, layers: list[tuple] | None = None) -> np.ndarray:
    """One new token at position len(cache) -> its logits (V,); the cache grows by one.

    The cache must already hold a batch-1 prefill (model.forward(prompt[None], kv_cache=cache)): that
    allocates its buffers. Equal to model.forward(np.array([[token]]), kv_cache=cache)[0, -1].
    layers: layer_params(model), computed once by the caller to save the lookups on every token.
    """
    config, params = model.config, model.params
    if layers is None:
        layers = layer_params(model)
    pos, P = cache.length, config.block_size
    if pos >= P:
        raise ValueError(f"the KV cache is full ({P} positions): reset() it and prefill the last tokens")
    if cache._k[0] is None or cache._k[0].shape[0] != 1:
        raise ValueError("decode_step needs a cache holding one sequence's prefill; call model.forward first")
    C, H, eps = config.n_embd, config.n_head, config.layer_norm_epsilon
    D = C // H
    scale = 1.0 / math.sqrt(D)
    wte = params["wte.weight"]                                 # (V, C)
    x = wte[token] + params["wpe.weight"][pos]                 # (C,) token + position
    for layer, (ln1_w, ln1_b, attn_w, attn_b, aproj_w, aproj_b,
                ln2_w, ln2_b, fc_w, fc_b, mproj_w, mproj_b) in enumerate(layers):
        h = _layernorm_1d(x, ln1_w, ln1_b, eps)                # (C,)
        qkv = h @ attn_w                                       # (3C,) one product for q, k and v
        if attn_b is not None:
            qkv += attn_b
        q = qkv[:C].reshape(H, D)                              # (H, D) views, no copies
        k_buf, v_buf = cache._k[layer][0], cache._v[layer][0]  # (H, P, D) each
        k_buf[:, pos] = qkv[C:2 * C].reshape(H, D)             # write the new key and value in place
        v_buf[:, pos] = qkv[2 * C:].reshape(H, D)
        keys, values = k_buf[:, :pos + 1], v_buf[:, :pos + 1]  # (H, t, D) views, t = pos + 1
        att = np.matmul(keys, q[:, :, None])[:, :, 0]          # (H, t) scores of the one query
        att *= scale
        att -= np.maximum.reduce(att, axis=1)[:, None]         # stable softmax over the keys
        np.exp(att, out=att)
        att /= np.add.reduce(att, axis=1)[:, None]             # (H, t)
        y = np.matmul(att[:, None, :], values).reshape(C)      # (C,) heads side by side
        a = y @ aproj_w                                        # (C,)
        if aproj_b is not None:
            a += aproj_b
        x = x + a                                              # (C,) residual
        h = _layernorm_1d(x, ln2_w, ln2_b, eps)                # (C,)
        m = h @ fc_w                                           # (4C,)
        if fc_b is not None:
            m += fc_b
        m, _ = gelu_forward(m)                                 # (4C,)
        m = m @ mproj_w                                        # (C,)
        if mproj_b is not None:
            m += mproj_b
        x += m                                                 # (C,) residual
    cache.length = pos + 1                                     # every layer wrote position pos: commit
    x = _layernorm_1d(x, params["ln_f.weight"], params.get("ln_f.bias"), eps)   # (C,)
    return wte @ x                                             # (V,) the tied head
