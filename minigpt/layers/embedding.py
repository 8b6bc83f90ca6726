"""Token + position embeddings: the first layer, turning ids into vectors.

    x[b, t] = wte[idx[b, t]] + wpe[start + t]        wte (V, C), wpe (block_size, C)

The forward is a table lookup; the backward is a scatter-add, because the same token id can appear many
times in a batch and every use adds its gradient to the same row of wte.

Not here: dropout on the sum (dropout.py) and the output head that reuses wte (model.py).
"""

from __future__ import annotations

import numpy as np

from minigpt import engines


def embedding_forward(idx: np.ndarray, wte: np.ndarray, wpe: np.ndarray, start: int = 0):
    """idx (B, T) int -> out (B, T, C). `start` is the position of idx[:, 0] (non-zero with a KV cache)."""
    B, T = idx.shape
    V, P = wte.shape[0], wpe.shape[0]
    if start < 0:
        raise ValueError(f"start must be a position >= 0, got {start}")
    if start + T > P:
        raise ValueError(f"positions {start}..{start + T - 1} exceed the {P} learned positions (block_size)")
    if idx.size and (idx.min() < 0 or idx.max() >= V):
        bad = idx[(idx < 0) | (idx >= V)].flat[0]
        raise IndexError(f"token id {bad} is outside the vocabulary of {V} tokens")
    out = wte[idx] + wpe[start:start + T]             # (B, T, C): lookup, then broadcast (T, C) over B
    cache = (idx, wte.shape, wpe.shape, start)        # ids say which rows get gradient; shapes size it
    return out, cache


def embedding_backward(dout: np.ndarray, cache):
    """dout (B, T, C) -> dwte (V, C), dwpe (block_size, C). idx is an integer input: no gradient."""
    idx, wte_shape, wpe_shape, start = cache
    B, T, C = dout.shape
    if engines.enabled() and idx.size:
        return embedding_backward_engine(dout, cache)
    dwte = np.zeros(wte_shape, dtype=dout.dtype)      # (V, C)
    np.add.at(dwte, idx.reshape(-1), dout.reshape(-1, C))   # scatter-add: repeated ids accumulate
    dwpe = np.zeros(wpe_shape, dtype=dout.dtype)      # (block_size, C)
    dwpe[start:start + T] = dout.sum(axis=0)          # (T, C): every batch row used the same positions
    return dwte, dwpe


def embedding_backward_engine(dout: np.ndarray, cache):
    """embedding_backward with the scatter-add done by sorting: the rows of equal ids become neighbours and
    np.add.reduceat sums each run at once (np.add.at handles one row at a time). Equals it to rounding (the
    sums are taken in another order). Baby shape, 768 ids, V 65, C 128: 0.69 -> 0.14 ms."""
    idx, wte_shape, wpe_shape, start = cache
    B, T, C = dout.shape
    ids = idx.reshape(-1)                             # (N,)
    order = np.argsort(ids, kind="stable")            # (N,) positions grouped by id
    sorted_ids = ids[order]                           # (N,)
    first = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))   # (U,) run starts
    dwte = np.zeros(wte_shape, dtype=dout.dtype)      # (V, C)
    dwte[sorted_ids[first]] = np.add.reduceat(dout.reshape(-1, C)[order], first, axis=0)   # (U, C)
    dwpe = np.zeros(wpe_shape, dtype=dout.dtype)      # (block_size, C)
    dwpe[start:start + T] = dout.sum(axis=0)          # (T, C)
    return dwte, dwpe
