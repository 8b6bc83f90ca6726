"""The engine beside the model's cached forward: generation's hot path, one token of one sequence.

    layers = layer_params(model)                       # each block's arrays, looked up once per run
    logits = prefill(model, prompt[None], cache, layers)    # (V,): the last position's logits only
    logits = decode_step(model, token, cache, layers)       # (V,): one new position, the cache grows by one

The definition is minigpt/model.py: `gpt_forward(params, idx, config, kv_cache)` runs `block_forward` on
(B, T, C) arrays, with the past keys and values from the cache. These two functions must equal it:
- prefill is model.forward(idx, kv_cache=cache)[0, -1] without the head's (T, V) matmul for the T - 1
  positions whose logits a sampler throws away (for GPT-2 small and a 1024-token window: 79 of 291 GFLOP
  and a 200 MB temporary);
- decode_step is model.forward(np.array([[token]]), kv_cache=cache)[0, -1], written on (C,) vectors, so
  each projection is one vector-matrix product and nothing is reshaped, masked or copied that need not be
  (a single query sees every cached key, so there is no mask). Measured with benchmarks/sampling.py
  --shape baby: 3,586 tok/s vs 1,277 with MINIGPT_ENGINES=0, 2.8x (per-call overhead dominates there).
tests/test_sampling.py holds both equal to the definition; MINIGPT_ENGINES=0 makes the sampler use the
definition instead (minigpt/engines.py).

What this file deliberately does not do: batches (one sequence), training (the cache keeps no backward
state), or anything the model file does not define.
"""

from __future__ import annotations

import math

import numpy as np

from minigpt.kv_cache import KVCache
from minigpt.layers.embedding import embedding_forward
from minigpt.layers.layernorm import layernorm_forward, layernorm_vector_engine
from minigpt.layers.mlp import gelu_forward
from minigpt.layers.softmax import softmax
from minigpt.model import BLOCK_NAMES, block_forward, check_idx


def layer_params(model) -> list[tuple]:
    """Each block's twelve arrays in BLOCK_NAMES order (None for absent biases): look them up once per run."""
    return [tuple(model.params.get(f"h.{i}.{n}") for n in BLOCK_NAMES) for i in range(model.config.n_layer)]


def prefill(model, idx: np.ndarray, cache: KVCache, layers: list[tuple] | None = None) -> np.ndarray:
    """idx (1, T) new tokens after the cached ones -> the logits of the last one only (V,).

    model.forward(idx, kv_cache=cache)[0, -1] without the head's (T, V) matmul for the T - 1 positions
    whose logits a sampler throws away: for GPT-2 small and a 1024-token window that is 79 of 291 GFLOP
    and a 200 MB temporary.
    """
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
    C, H, eps = config.n_embd, config.n_head, config.layer_norm_epsilon
    D = C // H
    scale = 1.0 / math.sqrt(D)
    wte = params["wte.weight"]                                 # (V, C)
    x = wte[token] + params["wpe.weight"][pos]                 # (C,) token + position
    for layer, (ln1_w, ln1_b, attn_w, attn_b, aproj_w, aproj_b,
                ln2_w, ln2_b, fc_w, fc_b, mproj_w, mproj_b) in enumerate(layers):
        h = layernorm_vector_engine(x, ln1_w, ln1_b, eps)    # (C,)
        qkv = h @ attn_w                                       # (3C,) one product for q, k and v
        if attn_b is not None:
            qkv += attn_b
        q = qkv[:C].reshape(H, D)                              # (H, D) views, no copies
        keys, values = cache.append_one(layer, qkv[C:2 * C].reshape(H, D),
                                        qkv[2 * C:].reshape(H, D))   # (H, t, D) views, t = pos + 1
        att = np.matmul(keys, q[:, :, None])[:, :, 0]          # (H, t) scores of the one query
        att *= scale
        softmax(att, out=att)                                  # (H, t) over the keys
        y = np.matmul(att[:, None, :], values).reshape(C)      # (C,) heads side by side
        a = y @ aproj_w                                        # (C,)
        if aproj_b is not None:
            a += aproj_b
        x = x + a                                              # (C,) residual
        h = layernorm_vector_engine(x, ln2_w, ln2_b, eps)    # (C,)
        m = h @ fc_w                                           # (4C,)
        if fc_b is not None:
            m += fc_b
        m, _ = gelu_forward(m)                                 # (4C,)
        m = m @ mproj_w                                        # (C,)
        if mproj_b is not None:
            m += mproj_b
        x += m                                                 # (C,) residual
    cache.advance(1)                                           # every layer wrote position pos: commit
    x = layernorm_vector_engine(x, params["ln_f.weight"], params.get("ln_f.bias"), eps)   # (C,)
    return wte @ x                                             # (V,) the tied head
