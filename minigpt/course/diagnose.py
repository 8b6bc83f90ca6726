"""Bug signatures: what a wrong array tells about the code that made it, in plain words.

    lines = diagnose(got, want, rtol=1e-10, atol=1e-12, initial=before)

`where_worst` names the element that is furthest outside the tolerance, with both values there;
`diagnose` tries the classic signatures one after the other and returns a line for each that holds:

    NaN / inf            the result is not finite (where, how many)
    not updated          equals the value the argument had before the call (an in-place update that
                         rebound a name instead of writing into the array)
    all zeros            the reference is not
    sign flip            yours ≈ -reference
    constant ratio       yours ≈ k × reference (a 1/N, a scale, sqrt(C/(C-1)) ...)
    constant offset      yours ≈ reference + c
    transpose            two axes of equal length swapped
    shift by one         yours[i] ≈ reference[i ± 1] along an axis
    one slice wrong      every mismatch sits at one index of one axis (e.g. the ignored rows)
    shape: transposed    the shapes differ by an order of axes and the values match once reordered
    shape: missing sum   summing yours over some axes gives the reference
    shape: extra axes    yours has axes of length 1 the reference does not (keepdims)

A signature is reported only when it matches to a loose tolerance (10x the check's, at least 1e-6
relative), so a noisy near-miss is not misnamed. What this file does not do: know about lessons or print.
"""

from __future__ import annotations

import itertools

import numpy as np


def _loose(rtol: float, atol: float) -> tuple[float, float]:
    return max(10 * rtol, 1e-6), max(10 * atol, 1e-12)


def _close(a: np.ndarray, b: np.ndarray, rtol: float, atol: float) -> bool:
    return a.shape == b.shape and a.size > 0 and bool(np.all(np.abs(a - b) <= atol + rtol * np.abs(b)))


def _fmt(v: float) -> str:
    return f"{v:.10g}"


def _index(i: tuple) -> str:
    return "(" + ", ".join(str(int(k)) for k in i) + ")" if i else "()"


def where_worst(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> str:
    """The element furthest outside atol + rtol |want|, with both values there ('' when the shapes differ)."""
    if got.shape != want.shape or got.size == 0:
        return ""
    bad = ~np.isfinite(got)
    if bad.any():
        i = np.unravel_index(int(np.argmax(bad)), got.shape)
    else:
        excess = np.abs(got - want) / (atol + rtol * np.abs(want) + np.finfo(np.float64).tiny)
        i = np.unravel_index(int(np.argmax(excess)), got.shape)
    return f"worst at index {_index(i)}: yours {_fmt(got[i])}, reference {_fmt(want[i])}"


def diagnose(got: np.ndarray, want: np.ndarray, rtol: float, atol: float,
             initial: np.ndarray | None = None) -> list[str]:
    """Plain-words bug signatures of a failing comparison; [] when none is recognised."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    if got.shape != want.shape:
        return _shape_signatures(got, want, rtol, atol)
    lines = []
    finite = np.isfinite(got)
    if not finite.all():
        n_nan, n_inf = int(np.isnan(got).sum()), int(np.isinf(got).sum())
        first = np.unravel_index(int(np.argmin(finite)), got.shape)
        lines.append(f"NaN/inf: {n_nan} NaN and {n_inf} inf values, the first at index {_index(first)} "
                     "(an overflow in exp, a 0/0, or a log of 0)")
        return lines
    r, a = _loose(rtol, atol)
    if initial is not None and _close(got, np.asarray(initial, dtype=np.float64), 0.0, 0.0) \
            and not _close(want, np.asarray(initial, dtype=np.float64), rtol, atol):
        return ["not updated in place: the array still holds the value it had before the call "
                "(write into it, p -= ... or p[...] = ...; do not rebind the name)"]
    if not np.any(got) and np.any(want):
        return ["all zeros: yours is zero everywhere, the reference is not"]
    if _close(-got, want, r, a):
        return ["sign flip: yours ≈ -1 × reference"]
    if got.size == 1 and float(want.ravel()[0]) != 0.0:
        lines.append(f"yours / reference = {float(got.ravel()[0] / want.ravel()[0]):.6g}")
    ww = float(np.sum(want * want))
    if ww > 0 and got.size > 1:
        k = float(np.sum(got * want) / ww)
        rk = max(r, 1e-4)                               # a ratio off by > 0.1 % is a bug, not noise
        if abs(k - 1) > 10 * rk and _close(got, k * want, rk, a):
            lines.append(f"constant ratio: yours ≈ {k:.6g} × reference (a missing or extra factor: "
                         "a scale, a 1/N, a count, a square root)")
    if not lines and got.size > 1:
        c = float(np.mean(got - want))
        if abs(c) > a and _close(got - c, want, r, a):
            lines.append(f"constant offset: yours ≈ reference + {c:.6g}")
    if not lines:
        for i, j in itertools.combinations(range(got.ndim), 2):
            if got.shape[i] == got.shape[j] > 1 and _close(np.swapaxes(got, i, j), want, r, a):
                lines.append(f"transpose: yours with axes {i} and {j} swapped matches the reference")
                break
    if not lines:
        lines += _shift(got, want, r, a)
    if not lines:
        lines += _one_slice(got, want, rtol, atol)
    return lines


def _shift(got: np.ndarray, want: np.ndarray, r: float, a: float) -> list[str]:
    for axis in range(got.ndim):
        n = got.shape[axis]
        if n < 3:
            continue
        head, tail = np.arange(n - 1), np.arange(1, n)
        for s, (mine, ref) in ((+1, (head, tail)), (-1, (tail, head))):
            if _close(got.take(mine, axis), want.take(ref, axis), r, a):
                sign = "+" if s > 0 else "-"
                return [f"shift by one: yours[i] ≈ reference[i {sign} 1] along axis {axis} "
                        "(an off-by-one in an index or a slice)"]
    return []


def _one_slice(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> list[str]:
    bad = np.abs(got - want) > atol + rtol * np.abs(want)
    total = int(bad.sum())
    lines = [f"{total} of {got.size} values are outside the tolerance"] if 0 < total < got.size else []
    if got.ndim >= 2 and total:
        for axis in range(got.ndim):
            hit = np.flatnonzero(bad.any(axis=tuple(k for k in range(got.ndim) if k != axis)))
            if got.shape[axis] > 1 and hit.size == 1:
                lines.append(f"every mismatch is at index {int(hit[0])} of axis {axis}")
                break
    return lines


def _shape_signatures(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> list[str]:
    r, a = _loose(rtol, atol)
    lines = [f"shape {got.shape}, but the reference has shape {want.shape}"]
    if got.size == want.size and got.ndim == want.ndim:
        for perm in itertools.permutations(range(got.ndim)):
            if perm != tuple(range(got.ndim)) and _close(np.transpose(got, perm), want, r, a):
                return lines + [f"transposed: np.transpose(yours, {perm}) matches the reference"]
    if got.size == want.size and _close(got.reshape(want.shape), want, r, a):
        if got.squeeze().shape == want.squeeze().shape:
            return lines + ["extra axes of length 1 (keepdims?): the values are right"]
        return lines + ["the values are right in another shape: a reshape is missing"]
    if got.ndim > want.ndim:
        for k in range(1, got.ndim - want.ndim + 1):
            for axes in itertools.combinations(range(got.ndim), k):
                summed = got.sum(axis=axes)
                if summed.shape == want.shape and _close(summed, want, r, a):
                    return lines + [f"missing sum: summing yours over axis {axes if k > 1 else axes[0]} "
                                    "matches the reference (a parameter used at every position gets the sum "
                                    "of their gradients)"]
                if summed.shape == want.shape and _close(got.mean(axis=axes), want, r, a):
                    return lines + [f"missing mean: averaging yours over axis {axes if k > 1 else axes[0]} "
                                    "matches the reference"]
    if got.size == want.size:
        return lines + ["same number of values in another shape: a wrong transpose or reshape?"]
    return lines
