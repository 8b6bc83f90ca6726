"""Lesson 09 exercise: the three pieces of the training loop. Fill in the bodies, then grade them:

    minigpt lesson check 09 --impl lessons/09_training/exercise.py

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
    """batch_size random windows of ids: x (B, T) and the same shifted by one, y (B, T), both int64.

    Draw the start positions with ONE call, rng.integers(0, len(ids) - block_size, size=batch_size), so
    the same seed gives the same batches as the reference. Raise ValueError if len(ids) < block_size + 1.
    """
    raise NotImplementedError("get_batch: draw the starts, cut x = ids[s:s+T] and y = ids[s+1:s+T+1]")


def estimate_loss(model: GPT, ids: np.ndarray, cfg, rng: np.random.Generator) -> float:
    """The mean of model.loss(x, y) (eval mode: no dropout) over cfg.eval_iters batches drawn with
    get_batch(ids, cfg.batch_size, cfg.block_size, rng)."""
    raise NotImplementedError("estimate_loss: average model.loss over cfg.eval_iters random batches")


def train_step(model: GPT, opt: Optimizer, batches: list[tuple[np.ndarray, np.ndarray]],
               grad_clip: float = 1.0, dropout_rng: np.random.Generator | None = None) -> tuple[float, float]:
    """One optimizer step on the mean loss of the micro-batches; returns (mean loss, norm before clipping).

    For each (x, y): loss, grads = model.loss_and_grads(x, y, rng=dropout_rng); average the losses and the
    gradients over the micro-batches (minigpt.optim.accumulate helps); clip with
    minigpt.optim.clip_grad_norm when grad_clip > 0 (else compute the norm yourself); then opt.step(grads)
    - but only if the loss and the norm are finite: a NaN must never reach the weights.
    """
    raise NotImplementedError("train_step: accumulate, clip, and step only when everything is finite")
