"""Lesson 08 exercise: write the optimizers, the schedule and clipping yourself, in nine steps.

    step 1  SGD.step (momentum=0)                           plain SGD, and its L2 penalty
    step 2  SGD.step (momentum > 0, nesterov)               momentum, torch's convention
    step 3  Adam.step                                       Adam, with L2 as torch.optim.Adam does it
    step 4  AdamW.step                                      decoupled weight decay
    step 5  Optimizer.state_dict, .load_state_dict          save and resume
    step 6  cosine_lr                                       nanoGPT's schedule
    step 7  clip_grad_norm                                  clipping by the global norm
    step 8  newton_schulz                                   Muon's orthogonalisation of a matrix
    step 9  Muon.step                                       Muon: momentum, orthogonalise, decay, step

    minigpt lesson check 08 --impl lessons/08_optimizer/exercise.py [--step K]
    minigpt lesson hint 08 K          # the first hint nudges, the last nearly gives it away

The bookkeeping (storing hyperparameters, creating zero state buffers, checking grads) is given; the
update rules, the schedule, clipping and the checkpoint format are yours. Each step is graded against
torch.optim's trajectory over 25 steps with a changing lr (rtol 1e-12); Muon's steps against torch's
Newton-Schulz and 10 steps of torch.optim.Muon, in float64 (rtol 1e-10).

Rules the check expects (see README.md): update the params' arrays in place (the caller's dict holds the
same arrays); apply weight decay only to arrays with ndim >= 2; keep each array's dtype.
"""

from __future__ import annotations

import math
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


NS_COEFFICIENTS = (3.4445, -4.775, 2.0315)  # torch's (Keller Jordan's) quintic coefficients (a, b, c)


def newton_schulz(G: np.ndarray, steps: int = 5, coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
                  eps: float = 1e-7) -> np.ndarray:
    """Approximately orthogonalise G (m, n): return an (m, n) array with G's singular vectors and singular
    values near 1, as torch.optim.Muon's Newton-Schulz iteration does (in float64 here).   (step 8)

    Scale G first so the iteration converges (an eps keeps a zero G finite - torch clamps the scale's
    divisor at eps, it does not add eps), then apply the quintic (a, b, c) = coefficients `steps` times.
    Work on the wide orientation (transpose a tall G, and transpose back). Return a new array; G must not
    change. A 1-D G raises ValueError. Graded on square, wide, tall, below-eps and zero matrices.
    """
    raise NotImplementedError("step 8 not started: newton_schulz")


class Muon(Optimizer):
    """torch.optim.Muon for 2-D matrices (Keller Jordan 2024): a momentum buffer that is a running mean of
    the gradients (torch's lerp), an optionally Nesterov look-ahead, newton_schulz of that, decoupled weight
    decay with the plain lr, then a step of lr * lr_ratio(p.shape) along the orthogonalised matrix. Step 9.

    The bookkeeping and torch's lr adjustment (a convention, not a derivation) are given.
    """

    buffer_names = ("momentum_buffer",)

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3, weight_decay: float = 0.1,
                 momentum: float = 0.95, nesterov: bool = True,
                 ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS, eps: float = 1e-7,
                 ns_steps: int = 5, adjust_lr_fn: str | None = None):
        super().__init__(params, lr, weight_decay)
        for name, p in self.params.items():
            if p.ndim != 2:
                raise ValueError(f"Muon updates 2-D matrices only; {name!r} has shape {p.shape}: use AdamW")
        self.momentum = float(momentum)
        self.nesterov = nesterov
        self.ns_coefficients = ns_coefficients
        self.eps = float(eps)
        self.ns_steps = int(ns_steps)
        self.adjust_lr_fn = adjust_lr_fn or "original"

    def lr_ratio(self, shape: tuple[int, ...]) -> float:
        """torch's _adjust_lr: Keller Jordan's sqrt(max(1, m / n)), or Moonshot's 0.2 sqrt(max(m, n))."""
        m, n = shape
        if self.adjust_lr_fn == "match_rms_adamw":
            return 0.2 * math.sqrt(max(m, n))
        return math.sqrt(max(1.0, m / n))

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        """One Muon update of every matrix, in place; state in self.state["momentum_buffer"].   (step 9)"""
        raise NotImplementedError("step 9 not started: Muon.step")
