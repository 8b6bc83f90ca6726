"""Lesson 09 exercise: the three pieces of the training loop, in three steps.

    step 1  get_batch       random windows of the corpus and their targets
    step 2  estimate_loss   the eval loss estimate
    step 3  train_step      one optimizer step over micro-batches (graded over 20 seeded steps against
                            the losses PyTorch + transformers gave for the same batches)

    minigpt lesson check 09 --impl lessons/09_training/exercise.py [--step K]
    minigpt lesson hint 09 K          # the first hint nudges, the last nearly gives it away

(Step 4 of the check grades a real `minigpt train --preset baby` run against PyTorch's band: minigpt's
loop, not this file.)

The model (minigpt.model.GPT) and the optimizer (minigpt.optim.AdamW) are given; this file is the glue.
Shape legend: B batch, T time (block_size).
"""

from __future__ import annotations

import numpy as np

from minigpt.model import GPT
from minigpt.optim import Optimizer
from minigpt.training.config import TrainConfig  # noqa: F401 - the type of estimate_loss's cfg


def get_batch(ids: np.ndarray, batch_size: int, block_size: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """batch_size random windows of ids: x (B, T) and their targets y (B, T), both int64.   (step 1)

    y[b, t] is the token that follows x[b, t] in the corpus. Every start position for which a whole window
    and its targets fit is possible, and no other. Draw the start positions with ONE call,
    rng.integers(0, <the number of valid starts>, size=batch_size), so the same seed gives the same
    batches as the reference. Raise ValueError if len(ids) < block_size + 1.
    """
    raise NotImplementedError("step 1 not started: get_batch")


def estimate_loss(model: GPT, ids: np.ndarray, cfg, rng: np.random.Generator) -> float:
    """The mean of model.loss(x, y) (eval mode: no dropout) over cfg.eval_iters batches drawn with
    get_batch(ids, cfg.batch_size, cfg.block_size, rng).   (step 2)
    """
    raise NotImplementedError("step 2 not started: estimate_loss")


def train_step(model: GPT, opt: Optimizer, batches: list[tuple[np.ndarray, np.ndarray]],
               grad_clip: float = 1.0, dropout_rng: np.random.Generator | None = None) -> tuple[float, float]:
    """One optimizer step on the mean loss of the micro-batches; returns (mean loss, norm before clipping).
    (step 3)

    For each (x, y): loss, grads = model.loss_and_grads(x, y, rng=dropout_rng). The step must be the one a
    single batch holding all the micro-batches would give (minigpt.optim.accumulate helps); clip with
    minigpt.optim.clip_grad_norm when grad_clip > 0 (else report the norm unclipped); then opt.step -
    but only if the loss and the norm are finite: a NaN must never reach the weights.
    """
    raise NotImplementedError("step 3 not started: train_step")
