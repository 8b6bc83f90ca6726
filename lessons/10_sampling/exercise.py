"""Lesson 10 exercise: from logits to text. Fill in the bodies, then grade your file:

    minigpt lesson check 10 --impl lessons/10_sampling/exercise.py

The model is given (minigpt's GPT): model.forward(idx, kv_cache=cache) with idx (1, T) returns logits
(1, T, V); model.new_kv_cache() makes an empty cache; len(cache) is the number of positions it holds and
cache.reset() empties it; model.config.block_size is the context. tokenizer.stream_decoder() gives an
object with push(id) -> str and flush() -> str.

Shape legend: T time, V vocabulary.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np


def next_token_probs(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> np.ndarray:
    """logits (V,) -> probabilities (V,) float64 that sum to 1.

    In transformers' order: divide by temperature; then top-k (keep every logit >= the k-th largest, so
    ties at the k-th value all stay); then softmax; then top-p (keep the smallest most-probable set whose
    mass reaches top_p, the token that crosses it included) and renormalise.
    temperature 0: greedy, a one-hot on the first argmax. Raise ValueError for temperature < 0,
    top_k < 1, or top_p outside (0, 1]. None switches top-k / top-p off.
    """
    raise NotImplementedError("next_token_probs: temperature, then top-k, then top-p")


def generate(model: Any, prompt_ids: Iterable[int], max_new_tokens: int = 200, temperature: float = 0.8,
             top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
             stop: Any = None) -> list[int]:
    """The new ids (a list of ints) after prompt_ids.

    Use the KV cache: one forward over the prompt, then one token per step. When the sequence is longer
    than block_size, the window is the last block_size tokens (reset the cache and feed them again).
    temperature 0: argmax, no random draw. Otherwise draw from next_token_probs with
    np.random.default_rng(seed). stop: a token id or a list of them; the stop id is included and ends
    the loop.
    """
    raise NotImplementedError("generate: prefill the prompt, then one position per step with the cache")


def stream(model: Any, prompt_ids: Iterable[int], tokenizer: Any, max_new_tokens: int = 200,
           temperature: float = 0.8, top_k: int | None = None, top_p: float | None = None,
           seed: int | None = None, stop: Any = None) -> Iterator[str]:
    """The same tokens as generate, yielded as text as soon as each piece's UTF-8 is complete.

    Push each new id into tokenizer.stream_decoder(); yield what it returns when non-empty; flush at the end.
    """
    raise NotImplementedError("stream: the generate loop, through the tokenizer's stream decoder")
