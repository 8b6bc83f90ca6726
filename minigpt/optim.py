"""Optimizers, the learning-rate schedule and gradient clipping: what turns gradients into better weights.

The chapter's progression, each a small class with the same shape:

    opt = AdamW(model.params, lr=1e-3, betas=(0.9, 0.99), eps=1e-8, weight_decay=0.1)
    for step in range(max_iters):
        loss, grads = model.loss_and_grads(x, y)
        clip_grad_norm(grads, max_norm=1.0)          # returns the norm before clipping
        opt.lr = cosine_lr(step, max_lr=1e-3, warmup_iters=100, decay_iters=2000, min_lr=1e-4)
        opt.step(grads)                              # updates model.params' arrays in place

    SGD    p -= lr * g                               (momentum=0)
           buf = momentum * buf + g;  p -= lr * buf  (momentum>0; torch.optim.SGD's rule, dampening 0)
    Adam   per-element steps from running means of g and g^2, bias-corrected (Kingma & Ba)
    AdamW  Adam with the weight decay taken out of the gradient (Loshchilov & Hutter)
    Muon   for 2-D hidden matrices only: momentum, then the update orthogonalised by a Newton-Schulz
           iteration (Keller Jordan 2024); embeddings, the head, biases and gains stay with AdamW
    MuonAdamW  that pairing behind one optimizer's surface: what `minigpt train --optimizer muon` uses

Each equals its torch.optim namesake (float64 within rounding, checked in lessons/08_optimizer; Muon
against torch's code with its bfloat16 cast made a float64 copy) under one difference in convention:
weight decay only touches tensors with ndim >= 2 (matmul weights and embeddings), never biases or
LayerNorm gains - nanoGPT's rule. torch decays every tensor it is given unless you split the parameters
into two param groups (one with weight_decay=0.0), which is how the lesson's reference does it.

Arrays of any float dtype work and keep their dtype (float32 for training, float64 for checks). The step
reuses one scratch buffer and allocates nothing per iteration (only L2 weight decay in SGD/Adam copies g;
Muon's Newton-Schulz matmuls make new (m, m) and (m, n) arrays).

`state_dict()` is a flat dict of plain ndarrays and numbers ("step", "lr", "exp_avg.wte.weight", ...):
`np.savez(path, **opt.state_dict())` stores it without pickle, `opt.load_state_dict(dict(np.load(path)))`
restores it, and the run continues bit for bit.

What this file deliberately does not do: param groups, amsgrad, maximize, sparse gradients, fused kernels,
or checking gradients for NaN (clip_grad_norm reports a non-finite norm; the trainer decides what to do).
Muon has no engine and computes in the params' own dtype (torch's runs Newton-Schulz in bfloat16).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping

import numpy as np

from minigpt import engines
from minigpt.layers.parallel import PARALLEL_MIN, n_threads, run_blocks

Params = dict[str, np.ndarray]


def decays(param: np.ndarray) -> bool:
    """nanoGPT's rule: weight decay for tensors with ndim >= 2 (weights, embeddings), not biases or gains.

    Shrinking a bias or a LayerNorm gain towards 0 does not limit what the model can express - it only
    shifts or silences features - so only the matrices that multiply activations are decayed.
    """
    return param.ndim >= 2


class Optimizer:
    """What all optimizers share: the params they update, lr, the step count t, and their state buffers."""

    buffer_names: tuple[str, ...] = ()  # per-parameter state, e.g. ("exp_avg", "exp_avg_sq")

    def __init__(self, params: Mapping[str, np.ndarray], lr: float, weight_decay: float = 0.0):
        if lr < 0.0:
            raise ValueError(f"lr must be >= 0, got {lr}")
        if weight_decay < 0.0:
            raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
        for name, p in params.items():
            if not (isinstance(p, np.ndarray) and np.issubdtype(p.dtype, np.floating)):
                raise TypeError(f"parameter {name!r} must be a float ndarray, got {type(p).__name__} "
                                f"{getattr(p, 'dtype', '')}")
        self.params: Params = dict(params)  # the caller's arrays themselves: step() writes into them
        self.lr = float(lr)  # set it before any step (a schedule does: opt.lr = cosine_lr(...))
        self.weight_decay = float(weight_decay)
        self.t = 0  # steps taken so far: the t in the bias correction 1 - beta^t
        self.decay = {name: decays(p) for name, p in self.params.items()}
        # state[kind][name]: one zero-initialised array per parameter and kind, in the parameter's dtype
        self.state: dict[str, Params] = {
            kind: {name: np.zeros_like(p) for name, p in self.params.items()} for kind in self.buffer_names}
        self._scratch: dict[np.dtype, np.ndarray] = {}
        self._by_size: list[str] | None = None         # the thread engine's order, largest first
        self._local = threading.local()                  # the thread engine's scratch, one per thread

    # ---- helpers for step() -------------------------------------------------------------------------
    def _tmp(self, p: np.ndarray) -> np.ndarray:
        """A scratch array shaped like p: a view into one buffer per dtype, sized for the largest param."""
        buf = self._scratch.get(p.dtype)
        if buf is None:
            n = max(q.size for q in self.params.values() if q.dtype == p.dtype)
            buf = self._scratch[p.dtype] = np.empty(n, dtype=p.dtype)
        return buf[: p.size].reshape(p.shape)

    def _check(self, grads: Mapping[str, np.ndarray]) -> None:
        if grads.keys() != self.params.keys():
            missing = sorted(self.params.keys() - grads.keys())[:3]
            extra = sorted(grads.keys() - self.params.keys())[:3]
            raise KeyError(f"grads must have exactly the params' names; missing {missing}, "
                           f"unexpected {extra}")
        for name, p in self.params.items():
            if grads[name].shape != p.shape:
                raise ValueError(f"grad {name!r} has shape {grads[name].shape}, param has {p.shape}")

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        raise NotImplementedError("subclasses implement step()")

    # ---- checkpoints --------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray | int | float]:
        """{"step": t, "lr": lr, "<kind>.<param name>": array copy, ...}: plain data for np.savez."""
        out: dict[str, np.ndarray | int | float] = {"step": self.t, "lr": self.lr}
        for kind, bufs in self.state.items():
            for name, buf in bufs.items():
                out[f"{kind}.{name}"] = buf.copy()
        return out

    def load_state_dict(self, d: Mapping[str, np.ndarray | int | float]) -> None:
        """Restore what state_dict() returned (numbers may come back as 0-d arrays from np.load)."""
        want = {"step", "lr"} | {f"{k}.{n}" for k in self.buffer_names for n in self.params}
        if set(d.keys()) != want:
            missing = sorted(want - set(d.keys()))[:3]
            extra = sorted(set(d.keys()) - want)[:3]
            raise KeyError(f"optimizer state does not match this {type(self).__name__} and these params: "
                           f"missing {missing}, unexpected {extra}; saved by another optimizer or model?")
        loaded = {}
        for key in want - {"step", "lr"}:  # check everything before changing anything
            kind, name = key.split(".", 1)
            src = np.asarray(d[key])
            shape = self.params[name].shape
            if src.shape != shape:
                raise ValueError(f"optimizer state {key} has shape {src.shape}, expected {shape}")
            if not np.all(np.isfinite(src)):
                raise ValueError(f"optimizer state {key} contains NaN or inf; the checkpoint is unusable")
            loaded[key] = src
        step = int(np.asarray(d["step"]))
        if step < 0:
            raise ValueError(f"optimizer state has a negative step count {step}")
        for key, src in loaded.items():
            kind, name = key.split(".", 1)
            self.state[kind][name][...] = src  # copied into our own array, in the params' dtype
        self.t = step
        self.lr = float(np.asarray(d["lr"]))


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum: torch.optim.SGD with dampening 0.

        g   = grad + weight_decay * p        (L2 penalty; only for ndim >= 2)
        buf = momentum * buf + g             (the first step sets buf = g, which is the same thing)
        g   = g + momentum * buf  if nesterov  else  buf
        p  -= lr * g
    """

    buffer_names = ("momentum_buffer",)

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3, momentum: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if nesterov and momentum == 0.0:
            raise ValueError("nesterov=True needs momentum > 0")
        if momentum == 0.0:
            self.buffer_names = ()  # plain SGD keeps no state
        super().__init__(params, lr, weight_decay)
        self.momentum = float(momentum)
        self.nesterov = nesterov

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        self._check(grads)
        self.t += 1
        for name, p in self.params.items():
            g = grads[name]
            if self.weight_decay and self.decay[name]:
                g = g + self.weight_decay * p  # a new array: the caller's grads stay untouched
            if self.momentum:
                buf = self.state["momentum_buffer"][name]
                buf *= self.momentum
                buf += g  # buf = momentum * buf + g
                if self.nesterov:
                    tmp = self._tmp(p)
                    np.multiply(buf, self.momentum, out=tmp)
                    tmp += g  # look ahead: g + momentum * buf
                    g = tmp
                else:
                    g = buf
            tmp = self._tmp(p)
            np.multiply(g, self.lr, out=tmp)  # (tmp may be g itself for nesterov: fine, element-wise)
            p -= tmp  # p = p - lr * g


class Adam(Optimizer):
    """Adam (Kingma & Ba 2015), torch.optim.Adam's exact update. weight_decay here is the L2 penalty.

        g  = grad + weight_decay * p               (L2, coupled: it goes through the moments; ndim >= 2)
        m  = beta1 * m + (1 - beta1) * g           first moment: a running mean of the gradient
        v  = beta2 * v + (1 - beta2) * g^2         second moment: a running mean of its square
        p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)

    Dividing by 1 - beta^t undoes the pull towards the zeros m and v start from (bias correction); eps
    sits outside the square root, added to sqrt(v-hat), exactly as torch does.
    """

    buffer_names = ("exp_avg", "exp_avg_sq")
    decoupled = False  # AdamW flips this

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8, weight_decay: float = 0.0):
        beta1, beta2 = betas
        if not (0.0 <= beta1 < 1.0 and 0.0 <= beta2 < 1.0):
            raise ValueError(f"betas must be in [0, 1), got {betas}")
        if eps < 0.0:
            raise ValueError(f"eps must be >= 0, got {eps}")
        super().__init__(params, lr, weight_decay)
        self.betas = (float(beta1), float(beta2))
        self.eps = float(eps)

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        self._check(grads)
        self.t += 1
        step_size = self.lr / (1.0 - self.betas[0] ** self.t)  # lr / bias correction 1 (a Python float)
        bc2_sqrt = math.sqrt(1.0 - self.betas[1] ** self.t)  # sqrt(bias correction 2)
        total = sum(p.size for p in self.params.values())
        if engines.enabled() and n_threads() > 1 and total >= PARALLEL_MIN:
            self._step_on_threads(grads, step_size, bc2_sqrt)  # the engine: the same updates, on every core
            return
        for name, p in self.params.items():
            self._update(name, grads[name], self._tmp(p), step_size, bc2_sqrt)

    def _update(self, name: str, g: np.ndarray, tmp: np.ndarray, step_size: float, bc2_sqrt: float) -> None:
        """One parameter's Adam update, in place; tmp is a scratch array shaped like it."""
        beta1, beta2 = self.betas
        p = self.params[name]
        m = self.state["exp_avg"][name]
        v = self.state["exp_avg_sq"][name]
        if self.weight_decay and self.decay[name]:
            if self.decoupled:
                p *= 1.0 - self.lr * self.weight_decay  # AdamW: shrink p directly, before the moments
            else:
                g = g + self.weight_decay * p  # Adam + L2: the penalty's gradient joins g
        m *= beta1
        np.multiply(g, 1.0 - beta1, out=tmp)
        m += tmp  # m = beta1 * m + (1 - beta1) * g
        v *= beta2
        np.multiply(g, g, out=tmp)
        tmp *= 1.0 - beta2
        v += tmp  # v = beta2 * v + (1 - beta2) * g^2
        np.sqrt(v, out=tmp)
        tmp /= bc2_sqrt
        tmp += self.eps  # denom = sqrt(v_hat) + eps: eps outside the sqrt
        np.divide(m, tmp, out=tmp)
        tmp *= step_size
        p -= tmp  # p = p - lr * m_hat / denom

    def _step_on_threads(self, grads: Mapping[str, np.ndarray], step_size: float, bc2_sqrt: float) -> None:
        """Engine beside step()'s loop: the parameters, largest first, taken one at a time by every core
        (minigpt/layers/parallel.py), each thread with its own scratch. Every parameter gets exactly
        _update's operations, so the result equals the loop bit for bit (tests/test_engines.py)."""
        names = self._by_size
        if names is None:
            names = self._by_size = sorted(self.params, key=lambda n: -self.params[n].size)
        local = self._local

        def work(start: int, stop: int) -> None:
            scratch = getattr(local, "scratch", None)
            if scratch is None:
                scratch = local.scratch = {}
            for name in names[start:stop]:
                p = self.params[name]
                buf = scratch.get(p.dtype)
                if buf is None or buf.size < p.size:
                    buf = scratch[p.dtype] = np.empty(self.params[names[0]].size, p.dtype)
                self._update(name, grads[name], buf[: p.size].reshape(p.shape), step_size, bc2_sqrt)

        run_blocks(work, len(names), 1, block_size=1, parallel_min=0)   # one parameter per block


class AdamW(Adam):
    """AdamW (Loshchilov & Hutter 2019): Adam whose weight decay shrinks the weights directly,

        p = p * (1 - lr * weight_decay)            first, with the current lr, only for ndim >= 2
        ... then exactly Adam's update with g = grad (the decay never enters m or v).

    With L2 inside Adam, the penalty's gradient is divided by sqrt(v) like any other, so weights with large
    gradients are barely decayed; decoupled, every decayed weight shrinks by the same factor per step.
    Defaults are nanoGPT's Shakespeare recipe (torch's own are betas (0.9, 0.999), weight_decay 0.01).
    """

    decoupled = True

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-8, weight_decay: float = 0.1):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


# ---- Muon: orthogonalised updates for the hidden matrices -------------------------------------------
NS_COEFFICIENTS = (3.4445, -4.775, 2.0315)  # Keller Jordan's quintic (a, b, c): steep at 0, not convergent


def newton_schulz(G: np.ndarray, steps: int = 5, coefficients: tuple[float, float, float] = NS_COEFFICIENTS,
                  eps: float = 1e-7) -> np.ndarray:
    """An approximate orthogonalisation of G (m, n): U S' V^T with S' near 1, where G = U S V^T.

    torch.optim.Muon's _zeropower_via_newtonschulz, in G's dtype (torch casts to bfloat16):

        X = G (or G^T when G is tall, so the Gram matrix X X^T is the small one)
        X = X / max(||X||_F, eps)             every singular value is now <= 1
        repeat steps times:  A = X X^T;  X = a X + (b A + c A A) X
                             (each singular value s becomes a s + b s^3 + c s^5)

    Returns a new array shaped like G; G is not changed. It does not compute the exact U V^T (an SVD
    would): the quintic pushes small singular values up fast and leaves them in about [0.7, 1.2].
    """
    if G.ndim != 2:
        raise ValueError(f"newton_schulz needs a 2-D matrix, got shape {G.shape}")
    a, b, c = coefficients
    tall = G.shape[0] > G.shape[1]
    X = G.T if tall else G                                 # (m, n) with m <= n
    X = X / max(float(np.linalg.norm(X)), eps)             # (m, n), Frobenius norm >= spectral norm
    for _ in range(steps):
        A = X @ X.T                                        # (m, m) Gram matrix
        B = b * A + c * (A @ A)                            # (m, m)
        X = a * X + B @ X                                  # (m, n)
    return X.T if tall else X                              # G's shape


class Muon(Optimizer):
    """Muon (Keller Jordan 2024) for 2-D weight matrices: torch.optim.Muon's update, adjust_lr_fn included.

        buf = momentum * buf + (1 - momentum) * g          a running mean of g (torch's lerp)
        u   = (1 - momentum) * g + momentum * buf  if nesterov  else  buf
        O   = newton_schulz(u)                              (m, n) like p, singular values near 1
        p   = p * (1 - lr * weight_decay)                   decoupled decay with the plain lr
        p  -= lr * ratio * O        ratio = sqrt(max(1, m / n))   ("original", torch's default)
                                    ratio = 0.2 * sqrt(max(m, n)) ("match_rms_adamw", Moonshot's)

    ratio reads p's own shape (m, n) as torch reads a Linear weight (out, in). minigpt's Conv1D weights are
    (in, out), so here the (4C, C) mlp.c_proj gets sqrt(4) = 2, where torch would give its (4C, C) c_fc 2.

    Only for the hidden matrices: a 1-D param is refused (give biases, gains, embeddings and the head to
    AdamW). No threaded engine: the matmuls already run on BLAS's threads.
    """

    buffer_names = ("momentum_buffer",)

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 1e-3, weight_decay: float = 0.1,
                 momentum: float = 0.95, nesterov: bool = True,
                 ns_coefficients: tuple[float, float, float] = NS_COEFFICIENTS, eps: float = 1e-7,
                 ns_steps: int = 5, adjust_lr_fn: str | None = None):
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must be in [0, 1), got {momentum}")
        if adjust_lr_fn not in (None, "original", "match_rms_adamw"):
            raise ValueError(f"adjust_lr_fn must be None (= 'original') or 'match_rms_adamw', got "
                             f"{adjust_lr_fn!r}")
        if not 0 < ns_steps < 100 or len(ns_coefficients) != 3:
            raise ValueError(f"need 0 < ns_steps < 100 and three coefficients, got {ns_steps}, "
                             f"{ns_coefficients}")
        super().__init__(params, lr, weight_decay)
        for name, p in self.params.items():
            if p.ndim != 2:
                raise ValueError(f"Muon updates 2-D matrices only; {name!r} has shape {p.shape}: give it "
                                 "(and the embeddings, the head, biases and gains) to AdamW")
        self.momentum = float(momentum)
        self.nesterov = nesterov
        self.ns_coefficients = tuple(float(x) for x in ns_coefficients)
        self.eps = float(eps)
        self.ns_steps = int(ns_steps)
        self.adjust_lr_fn = adjust_lr_fn or "original"

    def lr_ratio(self, shape: tuple[int, ...]) -> float:
        """torch's _adjust_lr: how much larger than lr the step of a matrix of this shape is."""
        m, n = shape
        if self.adjust_lr_fn == "match_rms_adamw":
            return 0.2 * math.sqrt(max(m, n))
        return math.sqrt(max(1.0, m / n))

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        self._check(grads)
        self.t += 1
        mu = self.momentum
        for name, p in self.params.items():
            g = grads[name]                                   # (m, n)
            buf = self.state["momentum_buffer"][name]         # (m, n)
            buf *= mu
            buf += (1.0 - mu) * g                             # buf = mu buf + (1 - mu) g
            u = (1.0 - mu) * g + mu * buf if self.nesterov else buf   # (m, n)
            O = newton_schulz(u, self.ns_steps, self.ns_coefficients, self.eps)   # (m, n)
            p *= 1.0 - self.lr * self.weight_decay            # decoupled decay, with the plain lr
            p -= (self.lr * self.lr_ratio(p.shape)) * O.astype(p.dtype, copy=False)


class MuonAdamW:
    """The usual pairing: Muon for the blocks' 2-D weights ("h.<i>.*" matrices), AdamW for the rest (the
    embeddings, the head tied to wte, biases and gains), behind one optimizer's surface (lr, t, step,
    state_dict, load_state_dict) so the trainer treats it like AdamW.

    One schedule drives both: the trainer sets opt.lr = cosine_lr(...) (peak lr), AdamW takes it as is and
    Muon takes it times muon_lr / lr, so Muon's peak is muon_lr and both warm up and decay together. Weight
    decay is the same setting for both (decoupled, with each one's own lr). The state is the two
    optimizers' buffers side by side ("exp_avg.<name>", "exp_avg_sq.<name>" for AdamW's parameters,
    "momentum_buffer.<name>" for Muon's), "step" and "lr" once: a checkpoint stores it like AdamW's.
    """

    def __init__(self, params: Mapping[str, np.ndarray], lr: float = 6e-3, muon_lr: float = 0.05,
                 betas: tuple[float, float] = (0.9, 0.99), eps: float = 1e-8, weight_decay: float = 0.1,
                 momentum: float = 0.95):
        if lr <= 0.0 or muon_lr < 0.0:
            raise ValueError(f"MuonAdamW needs lr > 0 (Muon's lr is scaled from it) and muon_lr >= 0, got "
                             f"{lr}, {muon_lr}")
        self.params = dict(params)
        hidden = {n: p for n, p in self.params.items() if n.startswith("h.") and p.ndim == 2}
        if not hidden:
            raise ValueError("MuonAdamW found no hidden matrices (parameters named h.<i>.* with 2 dims)")
        rest = {n: p for n, p in self.params.items() if n not in hidden}
        self.muon = Muon(hidden, lr=muon_lr, weight_decay=weight_decay, momentum=momentum)
        self.adamw = AdamW(rest, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        self.muon_scale = muon_lr / lr                        # Muon's lr per unit of the schedule's lr

    @property
    def lr(self) -> float:
        return self.adamw.lr

    @lr.setter
    def lr(self, value: float) -> None:
        self.adamw.lr = float(value)
        self.muon.lr = float(value) * self.muon_scale

    @property
    def t(self) -> int:
        return self.adamw.t

    def step(self, grads: Mapping[str, np.ndarray]) -> None:
        if grads.keys() != self.params.keys():
            raise KeyError(f"grads must have exactly the params' names ({len(grads)} for {len(self.params)})")
        self.muon.step({n: grads[n] for n in self.muon.params})
        self.adamw.step({n: grads[n] for n in self.adamw.params})

    def state_dict(self) -> dict[str, np.ndarray | int | float]:
        muon, adamw = self.muon.state_dict(), self.adamw.state_dict()
        return {**{k: v for k, v in muon.items() if k not in ("step", "lr")}, **adamw}

    def load_state_dict(self, d: Mapping[str, np.ndarray | int | float]) -> None:
        """Restore what state_dict() returned: each optimizer its own buffers, the step and lr for both.
        AdamW's load checks its part first: an AdamW-only state (from a run without Muon) is refused there."""
        mine = {f"{k}.{n}" for k in self.muon.buffer_names for n in self.muon.params}
        self.adamw.load_state_dict({k: v for k, v in d.items() if k not in mine})
        self.muon.load_state_dict({k: d[k] for k in mine if k in d}
                                  | {"step": d["step"], "lr": float(np.asarray(d["lr"])) * self.muon_scale})


def cosine_lr(step: int, max_lr: float, warmup_iters: int, decay_iters: int, min_lr: float) -> float:
    """nanoGPT's current schedule (get_lr since commit dc81cb3, Dec 2024): linear warm-up, cosine decay.

        step <  warmup_iters:  max_lr * (step + 1) / (warmup_iters + 1)   never 0, even at step 0
        step >  decay_iters:   min_lr
        otherwise:             min_lr + 0.5 * (1 + cos(pi * r)) * (max_lr - min_lr),
                               r = (step - warmup_iters) / (decay_iters - warmup_iters)

    (The older variant, max_lr * step / warmup_iters, wastes step 0 with lr = 0.)
    """
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if warmup_iters < 0 or decay_iters <= warmup_iters:
        raise ValueError(f"need 0 <= warmup_iters < decay_iters, got warmup_iters={warmup_iters}, "
                         f"decay_iters={decay_iters}; for a constant lr, don't call the schedule")
    if step < warmup_iters:
        return max_lr * (step + 1) / (warmup_iters + 1)
    if step > decay_iters:
        return min_lr
    ratio = (step - warmup_iters) / (decay_iters - warmup_iters)  # 0 -> 1
    coeff = 0.5 * (1.0 + math.cos(math.pi * ratio))  # 1 -> 0
    return min_lr + coeff * (max_lr - min_lr)


def clip_grad_norm(grads: Mapping[str, np.ndarray], max_norm: float) -> float:
    """Scale all grads in place so their global L2 norm is at most max_norm; return the norm before.

    torch.nn.utils.clip_grad_norm_'s rule: total = ||(||g_1||, ..., ||g_k||)||, the norm of all gradients
    laid end to end; if max_norm / (total + 1e-6) < 1, every g is multiplied by it. The 1e-6 keeps the
    division finite when total is 0 (and makes the clipped norm a hair under max_norm).

    A non-finite total (a NaN or inf anywhere) is returned as is and the grads are left alone, so the
    caller can stop with a clear message. (torch would multiply every gradient by NaN.)
    """
    if max_norm <= 0.0:
        raise ValueError(f"max_norm must be > 0, got {max_norm}")
    squares = 0.0
    for g in grads.values():
        flat = g.ravel()  # a view for contiguous g
        squares += float(np.linalg.norm(flat)) ** 2  # ||g_i||^2, computed in g's dtype like torch
    total = math.sqrt(squares)
    if not math.isfinite(total):
        return total
    coef = max_norm / (total + 1e-6)
    if coef < 1.0:
        for g in grads.values():
            g *= coef
    return total


def accumulate(total: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray], scale: float = 1.0) -> None:
    """Gradient accumulation over micro-batches: total[name] += scale * grads[name], in place.

    With n micro-batches, scale = 1 / n makes the sum the gradient of the mean loss - what one big batch
    would give. To allocate nothing, grads is used as scratch: when scale != 1 it is multiplied in place.
    """
    for name, acc in total.items():
        g = grads[name]
        if scale != 1.0:
            g *= scale
        acc += g
