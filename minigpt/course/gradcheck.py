"""Numeric gradients by central differences, and the relative error that compares them with ours.

Every hand-written backward in minigpt/layers/ is checked against this in float64:

    errors = check_layer(layernorm_forward, layernorm_backward, [x, w, b])
    # {'arg0': 3e-11, 'arg1': 2e-11, 'arg2': 1e-11}: all well under 1e-7

What to expect (the CS231n rule of thumb, stated for our normwise measure): with h = 1e-5 in float64, a
correct backward gives a relative error of 1e-8 or smaller; 1e-5 means something is subtly off (a
missing term, a wrong mean); above 1e-3 the backward is wrong. Kinks (max, ReLU at 0) and float32 spoil
the estimate, which is why checks run in float64 on smooth functions.

What this file does not do: differentiate integer inputs (token ids, targets) or check float32 code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """Normwise relative error ||a - b|| / max(||a|| + ||b||, tiny); 0 when both are zero."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    if denom == 0.0:
        return 0.0
    return float(np.linalg.norm(a - b) / max(denom, np.finfo(np.float64).tiny))


def numeric_grad(f: Callable[[], Any], x: np.ndarray, dout: np.ndarray | float,
                 h: float = 1e-5) -> np.ndarray:
    """Gradient of sum(f() * dout) with respect to x, by central differences, changing x in place.

    f takes no arguments and reads x (it closes over it); x is restored after each nudge.
    """
    if x.dtype != np.float64:
        raise TypeError(f"numeric gradients need float64 inputs, got {x.dtype}")
    grad = np.zeros_like(x)
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)  # views: writing flat_x writes x
    for i in range(flat_x.size):  # one element at a time: slow, obviously right
        old = flat_x[i]
        flat_x[i] = old + h
        plus = np.sum(np.asarray(f()) * dout)
        flat_x[i] = old - h
        minus = np.sum(np.asarray(f()) * dout)
        flat_x[i] = old
        flat_g[i] = (plus - minus) / (2 * h)
    return grad


def check_layer(forward: Callable[..., tuple[Any, Any]], backward: Callable[[Any, Any], Any],
                args: Sequence[Any], wrt: Sequence[int] | None = None, kwargs: dict | None = None,
                seed: int = 0, h: float = 1e-5) -> dict[str, float]:
    """Compare backward(dout, cache) with numeric gradients for a (forward, backward) pair.

    args are the forward's positional inputs; wrt lists which of them are differentiated (default: every
    float64 array). The backward must return one gradient per differentiated input, in the same order.
    A random upstream gradient dout makes every output element matter. Returns {"arg<i>": rel_error}.
    """
    kwargs = kwargs or {}
    args = list(args)
    if wrt is None:
        wrt = [i for i, a in enumerate(args) if isinstance(a, np.ndarray) and a.dtype == np.float64]
    out, cache = forward(*args, **kwargs)
    rng = np.random.default_rng(seed)
    dout = rng.standard_normal(np.shape(out)) if np.ndim(out) else 1.0
    grads = backward(dout, cache)
    grads = grads if isinstance(grads, tuple) else (grads,)
    if len(grads) != len(wrt):
        raise ValueError(f"backward returned {len(grads)} gradients for {len(wrt)} differentiated inputs")
    errors = {}
    for i, analytic in zip(wrt, grads, strict=True):
        numeric = numeric_grad(lambda: forward(*args, **kwargs)[0], args[i], dout, h=h)
        errors[f"arg{i}"] = rel_error(analytic, numeric)
    return errors


def sampled_grad_errors(loss: Callable[[], float], params: dict[str, np.ndarray],
                        grads: dict[str, np.ndarray], samples: int, rng: np.random.Generator,
                        h: float = 1e-5) -> dict[str, tuple[float, float]]:
    """A whole model's gradient check: `samples` random entries of every parameter, central differences.

    loss takes no arguments and reads params (each entry is nudged in place, then restored); grads are the
    analytic gradients at the unchanged params. Returns {name: (rel_error, max |analytic - numeric|)}: the
    absolute difference is the fair measure where the true gradient is exactly zero and both sides are
    rounding noise.
    """
    errors = {}
    for name, p in params.items():
        flat = p.reshape(-1)                                     # a view: writing flat writes p
        picks = rng.choice(flat.size, size=min(samples, flat.size), replace=False)
        numeric = np.empty(len(picks))
        for j, i in enumerate(picks):
            old = flat[i]
            flat[i] = old + h
            plus = loss()
            flat[i] = old - h
            minus = loss()
            flat[i] = old
            numeric[j] = (plus - minus) / (2 * h)
        analytic = grads[name].reshape(-1)[picks]
        errors[name] = (rel_error(analytic, numeric), float(np.abs(analytic - numeric).max()))
    return errors
