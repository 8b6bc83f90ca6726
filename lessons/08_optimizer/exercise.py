"""Lesson 08 exercise: write the optimizers, the schedule and clipping yourself, in seven steps.

    step 1  SGD.step (momentum=0)                           plain SGD, and its L2 penalty
    step 2  SGD.step (momentum > 0, nesterov)               momentum, torch's convention
    step 3  Adam.step                                       Adam, with L2 as torch.optim.Adam does it
    step 4  AdamW.step                                      decoupled weight decay
    step 5  Optimizer.state_dict, .load_state_dict          save and resume
    step 6  cosine_lr                                       nanoGPT's schedule
    step 7  clip_grad_norm                                  clipping by the global norm

    minigpt lesson check 08 --impl lessons/08_optimizer/exercise.py [--step K]
    minigpt lesson hint 08 K          # the first hint nudges, the last nearly gives it away

The bookkeeping (storing hyperparameters, creating zero state buffers, checking grads) is given; the
update rules, the schedule, clipping and the checkpoint format are yours. Each step is graded against
torch.optim's trajectory over 25 steps with a changing lr (rtol 1e-12).

Rules the check expects (see README.md): update the params' arrays in place (the caller's dict holds the
same arrays); apply weight decay only to arrays with ndim >= 2; keep each array's dtype.
"""

from __future__ import annotations

import math  # noqa: F401 - you will want math.cos, math.pi, math.sqrt
from collections.abc import Mapping

import numpy as np


def decays(param: np.ndarray) -> bool:
    """nanoGPT's rule: weight decay for tensors with ndim >= 2 (weights, embeddings), not biases or gains."""
    return param.ndim >= 2


class Optimizer:
    """Shared bookkeeping: params (the caller's arrays), lr, step count t, per-parameter state buffers."""

    buffer_names: tuple[str, ...] = ()

    def __init__(self, params: Mapping[str, np.ndarray], lr: float, weight_decay: float = 0.0):
        self.params = dict(params)
        self.lr = float(lr)
        self.weight_decay = float(weight_decay)
        self.t = 0
        self.decay = {name: decays(p) for name, p in self.params.items()}
        self.state = {kind: {name: np.zeros_like(p) for name, p in self.params.items()}
                      for kind in self.buffer_names}

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        raise NotImplementedError("subclasses implement step()")

    def state_dict(self) -> dict:
        """Return {"step": t, "lr": lr, "<kind>.<param name>": a copy of each state buffer}.   (step 5)

        Plain ndarrays and numbers only, so np.savez can store it without pickle.
        """
        raise NotImplementedError("step 5 not started: Optimizer.state_dict")

    def load_state_dict(self, d: Mapping) -> None:
        """Restore what state_dict() returned; numbers may arrive as 0-d arrays (from np.load).   (step 5)

        Copy the buffers into the existing arrays, set t and lr: a resumed run must continue exactly.
        """
        raise NotImplementedError("step 5 not started: Optimizer.load_state_dict")


class SGD(Optimizer):
    """torch.optim.SGD with dampening 0: a step against the gradient (step 1), weight_decay as an L2
    penalty on the ndim >= 2 params, and momentum / Nesterov momentum in torch's convention (step 2):
    the velocity buffer accumulates gradients and the lr multiplies it at the step."""

    buffer_names = ("momentum_buffer",)

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        if momentum == 0.0:
            self.buffer_names = ()
        super().__init__(params, lr, weight_decay)
        self.momentum = float(momentum)
        self.nesterov = nesterov

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One update of every param, in place, with the current self.lr.   (steps 1 and 2)"""
        raise NotImplementedError("step 1 not started: SGD.step")


class Adam(Optimizer):
    """torch.optim.Adam (Kingma & Ba): per-element steps from running means of g and g^2, corrected for
    their start at zero, with eps exactly where torch puts it; weight_decay is the L2 penalty (added to
    the gradient, ndim >= 2 only). Step 3."""

    buffer_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr, weight_decay)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One Adam update of every param, in place; state in self.state["exp_avg"], ["exp_avg_sq"].

        (step 3)
        """
        raise NotImplementedError("step 3 not started: Adam.step")


class AdamW(Adam):
    """torch.optim.AdamW (Loshchilov & Hutter): Adam with the weight decay taken out of the gradient and
    applied to the ndim >= 2 params directly, in torch's order and with the current lr. Step 4."""

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-8, weight_decay: float = 0.1):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One AdamW update of every param, in place.   (step 4)"""
        raise NotImplementedError("step 4 not started: AdamW.step")


def cosine_lr(step: int, max_lr: float, warmup_iters: int, decay_iters: int, min_lr: float) -> float:
    """nanoGPT's learning-rate schedule (its get_lr): a linear warm-up over warmup_iters steps that never
    gives lr 0 (step 0 already moves), then a half-cosine from max_lr down to min_lr at decay_iters, then
    min_lr. Graded at the steps around both corners.   (step 6)
    """
    raise NotImplementedError("step 6 not started: cosine_lr")


def clip_grad_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> float:
    """torch.nn.utils.clip_grad_norm_'s rule: if the global L2 norm of all grads together exceeds
    max_norm, scale every grad in place so that it (almost) does not; return the norm measured before
    clipping. If it is not finite, return it and leave the grads alone.   (step 7)
    """
    raise NotImplementedError("step 7 not started: clip_grad_norm")
