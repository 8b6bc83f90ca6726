"""The autograder: runs a lesson's check.py against an implementation and prints a readable report.

A lesson's `check.py` is written once and grades any implementation with the same function names:
minigpt's own module, or a learner's file (`minigpt lesson check 04 --impl my_attention.py`).
It defines two things:

    IMPL = "minigpt.layers.attention"          # the module graded when no --impl is given

    def run(impl, g: Grader) -> None:          # impl is the module under test
        ref = load_reference(__file__, "attention.npz")
        with g.case("forward, float64"):       # an exception inside a case is a FAIL, not a crash
            out, cache = impl.attention_forward(...)
            g.close("out", out, ref["out"], rtol=1e-10, atol=1e-12)

For each comparison the report shows the first values side by side, the largest absolute and relative
difference, the tolerance, and PASS/FAIL. `Grader.failed` tells the caller whether to exit non-zero.

What this file deliberately does not do: know anything about a particular lesson, or run pytest.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

import numpy as np

from minigpt.files.paths import lessons_dir


@dataclass
class Result:
    """One graded item: its name, PASS / FAIL / SKIP, and the lines that explain it."""

    name: str
    status: str
    lines: list[str]


class Grader:
    """Collects check results and prints each as it is made."""

    def __init__(self, out: TextIO | None = None, verbose: bool = True):
        self.out = out if out is not None else sys.stdout
        self.verbose = verbose
        self.results: list[Result] = []
        self._prefix = ""

    # ---- recording -------------------------------------------------------------------------------
    def _record(self, name: str, status: str, lines: list[str]) -> bool:
        full = f"{self._prefix}{name}" if self._prefix else name
        self.results.append(Result(full, status, lines))
        if self.verbose:
            print(f"{status:<4}  {full}", file=self.out)
            for line in lines:
                print(f"      {line}", file=self.out)
        return status != "FAIL"

    @property
    def failed(self) -> int:
        return sum(r.status == "FAIL" for r in self.results)

    @property
    def passed(self) -> int:
        return sum(r.status == "PASS" for r in self.results)

    @property
    def skipped(self) -> int:
        return sum(r.status == "SKIP" for r in self.results)

    def summary(self) -> str:
        text = f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"
        return ("ALL PASS: " if self.failed == 0 else "NOT YET: ") + text

    # ---- cases -----------------------------------------------------------------------------------
    @contextmanager
    def case(self, name: str) -> Iterator[None]:
        """Group checks under a name; an exception inside is recorded as a FAIL and grading goes on."""
        previous, self._prefix = self._prefix, f"{name}: "
        try:
            yield
        except NotImplementedError as exc:
            self._prefix = previous
            msg = str(exc) or "this function raises NotImplementedError"
            self._record(name, "FAIL", [f"not implemented yet: {msg}", "fill in the body and re-run"])
        except Exception as exc:  # noqa: BLE001 - a learner's bug must become a report line, not a crash
            self._prefix = previous
            self._record(name, "FAIL", [f"raised {type(exc).__name__}: {exc}", *_where(exc)])
        finally:
            self._prefix = previous

    # ---- comparisons -----------------------------------------------------------------------------
    def close(self, name: str, got: Any, want: Any, rtol: float, atol: float = 0.0,
              dtype: Any = None) -> bool:
        """Element-wise |got - want| <= atol + rtol * |want| (numpy.allclose's rule), shapes equal.

        With dtype=..., also require the result to have that dtype (e.g. float32 in -> float32 out).
        """
        want_arr = np.asarray(want)
        try:
            got_arr = np.asarray(got)
        except Exception as exc:  # noqa: BLE001
            return self._record(name, "FAIL", [f"could not turn the result into an array: {exc}"])
        if got_arr.shape != want_arr.shape:
            return self._record(name, "FAIL", [
                f"shape {got_arr.shape}, but the reference has shape {want_arr.shape}",
                "(a wrong transpose or reshape is the usual cause)"])
        if dtype is not None and got_arr.dtype != np.dtype(dtype):
            return self._record(name, "FAIL", [f"dtype {got_arr.dtype}, expected {np.dtype(dtype)}"])
        if not np.issubdtype(got_arr.dtype, np.number):
            return self._record(name, "FAIL", [f"expected numbers, got dtype {got_arr.dtype}"])
        g = got_arr.astype(np.float64)
        w = want_arr.astype(np.float64)
        diff = np.abs(g - w)
        finite = bool(np.all(np.isfinite(g)))
        ok = finite and bool(np.all(diff <= atol + rtol * np.abs(w)))
        max_abs = float(diff.max()) if diff.size else 0.0
        scale = np.maximum(np.abs(w), atol if atol > 0 else np.finfo(np.float64).tiny)
        max_rel = float((diff / scale).max()) if diff.size else 0.0
        lines = [
            f"yours:     {_first(g)}",
            f"reference: {_first(w)}",
            f"shape {got_arr.shape} {got_arr.dtype}   max |diff| {max_abs:.3g}   max rel {max_rel:.3g}"
            f"   tolerance rtol {rtol:g} atol {atol:g}",
        ]
        if not finite:
            lines.append("your result contains NaN or inf")
        return self._record(name, "PASS" if ok else "FAIL", lines)

    def equal(self, name: str, got: Any, want: Any) -> bool:
        """Exact equality: token ids, counts, strings, hashes."""
        if isinstance(want, np.ndarray) or isinstance(got, np.ndarray):
            ok = np.shape(got) == np.shape(want) and bool(np.all(np.asarray(got) == np.asarray(want)))
        else:
            ok = got == want
        lines = [f"yours:     {_short(got)}", f"reference: {_short(want)}", "tolerance: exact"]
        if not ok and isinstance(want, list | tuple) and isinstance(got, list | tuple):
            at = next((i for i, (a, b) in enumerate(zip(got, want, strict=False)) if a != b),
                      min(len(got), len(want)))
            lines.append(f"first difference at position {at} (lengths {len(got)} vs {len(want)})")
        return self._record(name, "PASS" if ok else "FAIL", lines)

    def true(self, name: str, ok: bool, detail: str = "") -> bool:
        """A property that holds or not (e.g. 'raises ValueError on a bad id')."""
        return self._record(name, "PASS" if ok else "FAIL", [detail] if detail else [])

    def skip(self, name: str, reason: str) -> None:
        self._record(name, "SKIP", [reason])

    @contextmanager
    def raises(self, name: str, exc_type: type[BaseException] | tuple[type[BaseException], ...]):
        """Check that the block raises exc_type (a clear error on bad input)."""
        try:
            yield
        except exc_type as exc:
            self._record(name, "PASS", [f"raised {type(exc).__name__}: {exc}"])
        except NotImplementedError as exc:
            self._record(name, "FAIL", [f"not implemented yet: {exc or 'NotImplementedError'}"])
        except Exception as exc:  # noqa: BLE001
            self._record(name, "FAIL", [f"raised {type(exc).__name__} ({exc}), expected {_names(exc_type)}"])
        else:
            self._record(name, "FAIL", [f"did not raise; expected {_names(exc_type)}"])


# ---- helpers for check.py files ------------------------------------------------------------------
def load_reference(check_file: str | Path, name: str) -> Any:
    """Read lessons/NN/reference/<name>: .npz as a dict of arrays (never pickle), .json as data."""
    path = Path(check_file).resolve().parent / "reference" / name
    if not path.is_file():
        raise FileNotFoundError(f"reference file {path} is missing; regenerate it with make_reference.py")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    raise ValueError(f"unknown reference format: {path}")


def load_impl(spec: str | Path | tuple[str, ...]) -> ModuleType:
    """The implementation under test: a file path (a learner's .py), a dotted module name, or a tuple of
    module names whose public names are graded together (a chapter whose code spans several files)."""
    if isinstance(spec, tuple | list):
        merged = ModuleType("+".join(spec))
        for name in spec:
            module = importlib.import_module(name)
            merged.__dict__.update({k: v for k, v in vars(module).items() if not k.startswith("_")})
        return merged
    text = str(spec)
    if text.endswith(".py") or Path(text).is_file():
        path = Path(text).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"implementation file {path} does not exist")
        name = f"_minigpt_impl_{abs(hash(str(path)))}"
        module_spec = importlib.util.spec_from_file_location(name, path)
        assert module_spec is not None and module_spec.loader is not None
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        module_spec.loader.exec_module(module)
        return module
    return importlib.import_module(text)


# ---- lessons ---------------------------------------------------------------------------------------
def list_lessons() -> list[Path]:
    """Every lessons/NN_name folder, in order."""
    return sorted(p for p in lessons_dir().iterdir() if p.is_dir() and p.name[:2].isdigit())


def find_lesson(number: str | int) -> Path:
    """Lesson '4', '04' or '04_attention' -> its folder."""
    key = str(number)
    for path in list_lessons():
        if path.name == key or path.name.split("_", 1)[0] == key.zfill(2):
            return path
    names = ", ".join(p.name for p in list_lessons())
    raise KeyError(f"no lesson {number!r}; the lessons are: {names}")


def load_check(lesson: Path) -> ModuleType:
    return load_impl(lesson / "check.py")


def grade(lesson: str | int | Path, impl: str | Path | None = None, out: TextIO | None = None,
          verbose: bool = True) -> Grader:
    """Run lesson's check.py against impl (default: the lesson's own IMPL, i.e. minigpt)."""
    folder = lesson if isinstance(lesson, Path) else find_lesson(lesson)
    check = load_check(folder)
    g = Grader(out=out, verbose=verbose)
    target = impl if impl is not None else check.IMPL
    if verbose:
        print(f"Grading {target} against {folder.name}'s references\n", file=g.out)
    try:
        module = load_impl(target)
    except Exception as exc:  # noqa: BLE001 - a file that does not import is a FAIL with the reason
        g._record(f"import {target}", "FAIL", [f"{type(exc).__name__}: {exc}", *_where(exc)])
    else:
        check.run(module, g)
    if verbose:
        print(f"\n{g.summary()}", file=g.out)
    return g


# ---- formatting ------------------------------------------------------------------------------------
def _first(a: np.ndarray, n: int = 4) -> str:
    flat = np.ravel(a)[:n]
    body = ", ".join(f"{v: .6g}" for v in flat)
    return f"[{body}{', ...' if np.size(a) > n else ''}]"


def _short(x: Any, n: int = 80) -> str:
    text = repr(x.tolist() if isinstance(x, np.ndarray) else x)
    return text if len(text) <= n else text[: n - 5] + " ...]"


def _names(exc_type: type | tuple) -> str:
    types = exc_type if isinstance(exc_type, tuple) else (exc_type,)
    return " or ".join(t.__name__ for t in types)


def _where(exc: BaseException) -> list[str]:
    """The innermost frame of the traceback: where in the learner's file it went wrong."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return []
    f = frames[-1]
    return [f"at {Path(f.filename).name}:{f.lineno} in {f.name}: {f.line}"]
