"""Perplexity of a language model on a long token sequence, scored in sliding windows.

    perplexity = exp( mean over tokens of -log p(token | the tokens before it) )

It is the model's average "branching factor": a perplexity of 20 means the model is, on average, as unsure
as if it chose uniformly among 20 tokens. A model that always predicts uniformly over V tokens scores V.
It is exp of the cross-entropy training reports, so it only compares models that share a tokenizer.

A model sees at most block_size tokens, so a long text is scored in windows (the procedure of Hugging
Face's "Perplexity of fixed-length models" guide). Window k feeds ids[k*stride : k*stride + block_size]
and predicts the token after each position, but only the targets that no earlier window predicted count:
every token after the first is scored exactly once, with as much context as its window gives (at least
block_size - stride + 1 tokens, except in the first window). stride = block_size (the default) gives
disjoint windows, the cheapest choice and the same quantity as the validation loss printed in training;
a smaller stride gives each token more context and a lower (fairer) perplexity at block_size/stride times
the cost. The last window stops at the end of the sequence, so it may be shorter. One difference from
the guide's code: there a window of block_size ids gives block_size - 1 predictions (the labels shift
inside the model); here a window feeds block_size ids and takes the id after them as its last target.

Needs only `model.forward(idx) -> logits (B, T, V)` and `model.config.block_size`. Full windows are batched.
Deliberately not here: padding, or ignoring chosen positions (a prompt) — that is fine-tuning's loss mask.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from minigpt.layers.softmax import log_softmax


def sliding_windows(n_tokens: int, block_size: int, stride: int) -> list[tuple[int, int, int]]:
    """The windows for a sequence of n_tokens ids: (start, stop, skip) each.

    The window feeds ids[start:stop] and predicts ids[start+1:stop+1]; its first `skip` predictions were
    already scored by the window before and are left out.
    """
    if n_tokens < 2:
        raise ValueError(f"perplexity needs at least 2 tokens (one to predict from, one to predict), "
                         f"got {n_tokens}")
    if not 1 <= stride <= block_size:
        raise ValueError(f"stride must be between 1 and block_size={block_size}, got {stride}")
    windows = []
    scored_up_to = 0  # index of the last target scored so far (the first token is never a target)
    start = 0
    while scored_up_to < n_tokens - 1:
        stop = min(start + block_size, n_tokens - 1)  # inputs ids[start:stop], last target ids[stop]
        windows.append((start, stop, scored_up_to - start))
        scored_up_to = stop
        start += stride
    return windows


def _token_nll(logits: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """-log softmax(logits)[target] per position, in float64 (the shared log_softmax, in place on a copy:
    with engines on its exp temporary is one block of rows, not a second (B, T, V) float64 array)."""
    z = logits.astype(np.float64)                             # (B, T, V) a private copy
    logp = log_softmax(z, out=z)                              # (B, T, V) in place
    return -np.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]   # (B, T)


def mean_nll(model: Any, ids: Any, stride: int | None = None, batch_size: int = 8) -> tuple[float, int]:
    """(mean negative log-likelihood in nats per token, number of tokens scored) over ids (1-D)."""
    ids = np.asarray(ids)
    if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be a 1-D array of integer token ids, got shape {ids.shape} "
                         f"dtype {ids.dtype}; flatten a batch with ids.reshape(-1) first")
    block_size = int(model.config.block_size)
    stride = block_size if stride is None else int(stride)
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    windows = sliding_windows(len(ids), block_size, stride)
    total, count = 0.0, 0
    # All windows have block_size inputs except perhaps the last: batch the full ones, run the last alone.
    full = [w for w in windows if w[1] - w[0] == block_size]
    groups = [full[i:i + batch_size] for i in range(0, len(full), batch_size)]
    groups += [[w] for w in windows if w[1] - w[0] != block_size]
    for group in groups:
        x = np.stack([ids[a:b] for a, b, _ in group])          # (B, T) inputs
        y = np.stack([ids[a + 1:b + 1] for a, b, _ in group])  # (B, T) the next tokens
        nll = _token_nll(np.asarray(model.forward(x)), y)      # (B, T)
        for row, (_, _, skip) in zip(nll, group, strict=True):
            total += float(row[skip:].sum())
            count += len(row) - skip
    return total / count, count


def perplexity(model: Any, ids: Any, stride: int | None = None, batch_size: int = 8) -> float:
    """exp(mean cross-entropy) of model on the 1-D id sequence ids, in windows of block_size every stride.

    stride=None means block_size (disjoint windows). batch_size windows go through forward at once:
    memory is batch_size * block_size * vocab_size floats for the logits.
    """
    nll, _ = mean_nll(model, ids, stride, batch_size)
    return math.exp(nll)
