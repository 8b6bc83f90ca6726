"""Lesson 08 exercise: write the optimizers, the schedule and clipping yourself.

Fill in every body that raises NotImplementedError, then grade your file:

    minigpt lesson check 08 --impl lessons/08_optimizer/exercise.py

The bookkeeping (storing hyperparameters, creating zero state buffers, checking grads) is given; the
update rules, the schedule, clipping and the checkpoint format are yours. Work in the chapter's order:
SGD (momentum=0), then momentum, then Adam, then AdamW, then cosine_lr and clip_grad_norm.

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
        """Return {"step": t, "lr": lr, "<kind>.<param name>": a copy of each state buffer}.

        Plain ndarrays and numbers only, so np.savez can store it without pickle.
        """
        raise NotImplementedError("Optimizer.state_dict: return step, lr and a copy of every state buffer")

    def load_state_dict(self, d: Mapping) -> None:
        """Restore what state_dict() returned; numbers may arrive as 0-d arrays (np.load gives those).

        Copy the buffers into the existing arrays (buf[...] = ...), set t and lr.
        """
        raise NotImplementedError("Optimizer.load_state_dict: copy the buffers back, restore t and lr")


class SGD(Optimizer):
    """torch.optim.SGD with dampening 0:

        g   = grad + weight_decay * p        (only for ndim >= 2)
        buf = momentum * buf + g             (only when momentum > 0)
        g   = g + momentum * buf  if nesterov  else  buf
        p  -= lr * g
    """

    buffer_names = ("momentum_buffer",)

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        if momentum == 0.0:
            self.buffer_names = ()
        super().__init__(params, lr, weight_decay)
        self.momentum = float(momentum)
        self.nesterov = nesterov

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One update of every param, in place, with the current self.lr."""
        raise NotImplementedError("SGD.step: p -= lr * g (then add momentum)")


class Adam(Optimizer):
    """torch.optim.Adam; weight_decay is the L2 penalty (added to the gradient, ndim >= 2 only):

        t += 1
        m  = beta1 * m + (1 - beta1) * g
        v  = beta2 * v + (1 - beta2) * g^2
        p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
    """

    buffer_names = ("exp_avg", "exp_avg_sq")

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, lr, weight_decay)
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One Adam update of every param, in place; state in self.state["exp_avg"], ["exp_avg_sq"]."""
        raise NotImplementedError("Adam.step: moments, bias correction, eps outside the sqrt")


class AdamW(Adam):
    """torch.optim.AdamW: first p *= 1 - lr * weight_decay (ndim >= 2 only), then Adam with no L2 term."""

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-8, weight_decay: float = 0.1):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """Decoupled weight decay with the current lr, then Adam's update with the raw gradient."""
        raise NotImplementedError("AdamW.step: decay the ndim >= 2 params first, then Adam without L2")


def cosine_lr(step: int, max_lr: float, warmup_iters: int, decay_iters: int, min_lr: float) -> float:
    """nanoGPT's schedule: max_lr * (step + 1) / (warmup_iters + 1) during warm-up; min_lr after
    decay_iters; in between min_lr + 0.5 * (1 + cos(pi * r)) * (max_lr - min_lr),
    r = (step - warmup_iters) / (decay_iters - warmup_iters)."""
    raise NotImplementedError("cosine_lr: warm-up, cosine decay, floor")


def clip_grad_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> float:
    """Global L2 norm of all grads; if max_norm / (norm + 1e-6) < 1, multiply every grad by it, in place.

    Return the norm measured before clipping. If it is not finite, return it and leave the grads alone.
    """
    raise NotImplementedError("clip_grad_norm: total norm, scale in place, return the pre-clip norm")
