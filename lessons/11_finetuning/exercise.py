"""Lesson 11, your turn: the rows fine-tuning learns from, with the prompt masked out of the loss.

    step 1  build_example   one row: shift, mask the prompt's targets, pad, crop
    step 2  make_batch      a batch, without the all-padding columns

    minigpt lesson check 11 --impl lessons/11_finetuning/exercise.py [--step K]
    minigpt lesson hint 11 K          # the first hint nudges, the last nearly gives it away

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
    """One training row: x (P,) and y (P,) int64, P = block_size.   (step 1)

    x holds the prompt followed by the response, y the token that follows each position of x; the model
    must learn only to continue into the response, so a target that is a prompt token is ignore_index.
    What must hold (graded exactly against Hugging Face's masks: labels = ids with the prompt at -100,
    truncated from the left, shifted by one):
    - a row longer than the context keeps the tokens generation will see (the end, never the response's);
    - short rows are padded at the end: x with pad_id, y with ignore_index;
    - the first response token is a counted target.
    Raise ValueError when the prompt or the response is empty.
    """
    raise NotImplementedError("step 1 not started: build_example")


def make_batch(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], block_size: int, pad_id: int = 0,
               ignore_index: int = -100) -> tuple[np.ndarray, np.ndarray]:
    """Stack build_example rows into x, y (B, T), without the columns that are padding in every row.
    (step 2)

    The masked loss of a tiny GPT-2 on your batch must equal torch's, gradients included.
    """
    raise NotImplementedError("step 2 not started: make_batch")
