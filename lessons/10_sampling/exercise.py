"""Lesson 10 exercise: from logits to text, in five steps.

    step 1  next_token_probs: temperature, greedy at 0
    step 2  next_token_probs: top-k
    step 3  next_token_probs: top-p
    step 4  generate: the decode loop with a KV cache
    step 5  stream: text as soon as each character is complete

    minigpt lesson check 10 --impl lessons/10_sampling/exercise.py [--step K]
    minigpt lesson hint 10 K          # the first hint nudges, the last nearly gives it away

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
    """logits (V,) -> probabilities (V,) float64 that sum to 1.   (steps 1-3)

    Exactly transformers' logits warpers followed by a softmax, in their order: temperature (step 1), then
    top-k (step 2), then top-p (step 3); the grader compares the probabilities (rtol 1e-9) and the set of
    tokens kept. Temperature 0 means greedy: a one-hot on the first argmax. None switches top-k / top-p off.
    Raise ValueError for temperature < 0, top_k < 1, or top_p outside (0, 1].
    """
    raise NotImplementedError("step 1 not started: next_token_probs")


def generate(model: Any, prompt_ids: Iterable[int], max_new_tokens: int = 200, temperature: float = 0.8,
             top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
             stop: Any = None) -> list[int]:
    """The new ids (a list of ints) after prompt_ids.   (step 4)

    Greedy at temperature 0 must give transformers' generate ids. Within the context each position goes
    through the model once (use the KV cache); past block_size the result must equal recomputing the last
    block_size tokens every step. Otherwise draw from next_token_probs with np.random.default_rng(seed):
    the same seed gives the same ids. stop: a token id or a list of them; the stop id is included and
    ends the loop.
    """
    raise NotImplementedError("step 4 not started: generate")


def stream(model: Any, prompt_ids: Iterable[int], tokenizer: Any, max_new_tokens: int = 200,
           temperature: float = 0.8, top_k: int | None = None, top_p: float | None = None,
           seed: int | None = None, stop: Any = None) -> Iterator[str]:
    """The same tokens as generate, yielded as text as soon as each piece's UTF-8 is complete.   (step 5)

    Joined, the pieces equal the decoded text; no piece holds half a character.
    """
    raise NotImplementedError("step 5 not started: stream")
