"""Lesson 11, your turn: the rows fine-tuning learns from, with the prompt masked out of the loss.

Fill in the two bodies, then grade them:

    minigpt lesson check 11 --impl lessons/11_finetuning/exercise.py

The checks compare your x and y, exactly, with masks built the Hugging Face way (labels = the ids with
the prompt's positions at -100, shifted by one), including rows that need padding and rows too long for
the context; then the loss and every gradient of a tiny GPT-2 on your batch with PyTorch's.
Shape legend: B batch, T time, P block_size.

Not here: the training loop (minigpt/training/loop.py), reading JSONL (minigpt/finetune/tasks.py read_jsonl).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def build_example(prompt_ids: Sequence[int], response_ids: Sequence[int], block_size: int,
                  pad_id: int = 0, ignore_index: int = -100) -> tuple[np.ndarray, np.ndarray]:
    """One training row: x (P,) and y (P,) int64, P = block_size.

    seq = prompt_ids + response_ids; if it is longer than block_size + 1, keep its LAST block_size + 1
    tokens (the prompt loses its beginning). x = seq[:-1], y = seq[1:], then every y that is a prompt
    token becomes ignore_index; pad x with pad_id and y with ignore_index up to block_size.
    Raise ValueError when the prompt or the response is empty.
    """
    raise NotImplementedError("build_example: concatenate, crop from the left, shift by one, mask the prompt")


def make_batch(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], block_size: int, pad_id: int = 0,
               ignore_index: int = -100) -> tuple[np.ndarray, np.ndarray]:
    """Stack build_example rows into x, y (B, T), keeping only the first T columns, where
    T = max over the pairs of min(len(prompt) + len(response) - 1, block_size): the other columns are
    padding in every row.
    """
    raise NotImplementedError("make_batch: build each row, stack them, drop the all-padding columns")
