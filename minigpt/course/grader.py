"""The autograder: runs a lesson's check.py against an implementation, step by step, and diagnoses.

A lesson's `check.py` is written once and grades any implementation with the same function names:
minigpt's own module, or a learner's file (`minigpt lesson check 03 --impl my_layernorm.py`).
It defines the module graded by default and the exercise's numbered steps:

    IMPL = "minigpt.layers.layernorm"

    def _forward(impl, g: Grader) -> None:     # one step: a function or two of the exercise
        ref = load_reference(__file__, "layernorm.npz")
        with g.case("forward, float64", pitfall="eps"):   # an exception inside a case is a FAIL
            out, cache = impl.layernorm_forward(...)
            g.close("out", out, ref["out"], rtol=1e-10, atol=1e-12)

    STEPS = [Step(1, "the forward", ("layernorm_forward",), _forward), ...]

Per step, the report says PASS / FAIL / NOT STARTED. A step whose code still raises NotImplementedError
is "not started": one line, and its other checks are not run. `grade(..., step=K)` grades step K alone.
For a failing array the report shows the worst element's index with both values there, max abs / rel
difference, the tolerance, and the bug signatures minigpt.course.diagnose recognises; a failing case
also prints its pitfall from the lesson's hints.toml. Skipped checks are listed in the summary with how
to enable them: the run then never ends in "ALL PASS".

What this file deliberately does not do: know anything about a particular lesson, or run pytest.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, TextIO

import numpy as np

from minigpt.course.diagnose import diagnose, where_worst
from minigpt.course.hints import Hints, load_hints
from minigpt.files.paths import lessons_dir


@dataclass
class Result:
    """One graded item: its name, PASS / FAIL / SKIP / TODO, the lines that explain it, its step."""

    name: str
    status: str
    lines: list[str]
    step: int | None = None


@dataclass(frozen=True)
class Step:
    """One numbered step of an exercise: the functions it asks for and the checks that grade them."""

    number: int
    title: str
    functions: tuple[str, ...]
    run: Callable[[Any, Grader], None]


class _StepStopped(Exception):
    """Raised inside a step when the code under test is not written yet; ends that step only."""

    def __init__(self, message: str):
        super().__init__(message)


class Grader:
    """Collects check results and prints each as it is made."""

    def __init__(self, out: TextIO | None = None, verbose: bool = True, hints: Hints | None = None):
        self.out = out if out is not None else sys.stdout
        self.verbose = verbose
        self.hints = hints if hints is not None else Hints()
        self.results: list[Result] = []
        self.steps: list[tuple[Step, str, str]] = []      # (step, status, detail) in the order graded
        self._prefix = ""
        self._step: Step | None = None
        self._pitfall: str | None = None
        self._pitfall_shown = False
        self.only_step: int | None = None
        self.unknown_pitfalls: set[str] = set()              # keys check.py names that hints.toml lacks

    # ---- recording -------------------------------------------------------------------------------
    def _record(self, name: str, status: str, lines: list[str], pitfall: str | None = None) -> bool:
        full = f"{self._prefix}{name}" if self._prefix else name
        if status == "FAIL" and pitfall:                  # this comparison's own pitfall
            self._note_unknown((pitfall,))
            lines = [*lines, f"pitfall: {self.hints.pitfalls.get(pitfall, pitfall)}"]
        elif status == "FAIL" and self._pitfall and not self._pitfall_shown:
            lines = [*lines, f"pitfall: {self._pitfall}"]
            self._pitfall_shown = True
        self.results.append(Result(full, status, lines, self._step.number if self._step else None))
        if self.verbose:
            print(f"{status:<4}  {full}", file=self.out)
            for line in lines:
                print(f"      {line}", file=self.out)
        return status != "FAIL"

    def _note_unknown(self, keys: tuple[str, ...]) -> None:
        self.unknown_pitfalls.update(k for k in keys if k not in self.hints.pitfalls and " " not in k)

    def _say(self, text: str) -> None:
        if self.verbose:
            print(text, file=self.out)

    @property
    def failed(self) -> int:
        return sum(r.status == "FAIL" for r in self.results)

    @property
    def passed(self) -> int:
        return sum(r.status == "PASS" for r in self.results)

    @property
    def skipped(self) -> int:
        return sum(r.status == "SKIP" for r in self.results)

    @property
    def not_started(self) -> list[int]:
        """The numbers of the steps that are not started (their code raises NotImplementedError)."""
        return [s.number for s, status, _ in self.steps if status in ("NOT STARTED", "UNFINISHED")]

    @property
    def ok(self) -> bool:
        """Nothing failed and every graded step was started: the exit code is 0 only then."""
        return self.failed == 0 and not self.not_started

    def summary(self) -> str:
        lines = []
        if self.steps:
            width = max(len(s.title) for s, _, _ in self.steps)
            for s, status, detail in self.steps:
                lines.append(f"  step {s.number}  {s.title:<{width}}  {status:<11} {detail}")
        text = f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"
        todo = self.not_started
        if todo:
            text += f", step{'s' if len(todo) > 1 else ''} {', '.join(map(str, todo))} not started"
        only = f" (step {self.only_step} only)" if self.only_step is not None else ""
        if self.failed or todo:
            lines.append(f"NOT YET{only}: {text}")
        elif self.skipped:
            lines.append(f"PASS, BUT NOT EVERYTHING WAS TESTED{only}: {text}. Not tested:")
            lines += [f"  - {r.name}: {r.lines[0]}" for r in self.results if r.status == "SKIP"]
        else:
            lines.append(f"ALL PASS{only}: {text}")
        return "\n".join(lines)

    # ---- steps -----------------------------------------------------------------------------------
    def run_step(self, step: Step, impl: Any) -> None:
        """Grade one step; a NotImplementedError ends the step as "not started" (one line)."""
        names = f" ({', '.join(step.functions)})" if step.functions else ""
        self._say(f"\n== step {step.number}: {step.title}{names}")
        first = len(self.results)
        self._step = step
        try:
            step.run(impl, self)
        except (_StepStopped, NotImplementedError) as exc:
            message = str(exc) or "NotImplementedError"
            status = "UNFINISHED" if len(self.results) > first else "NOT STARTED"
            waits = _waits_for(message, step.number)
            detail = f"waits for step {waits} ({message})" if waits else message
            self._step = None
            name = detail if detail.startswith(f"step {step.number} not started") else \
                f"step {step.number} {status.lower()}: {detail}"
            self._record(name, "TODO", [])
            self.steps.append((step, status, detail))
            return
        except Exception as exc:  # noqa: BLE001 - a bug in the learner's code outside a case
            self._record(f"step {step.number}", "FAIL", [f"raised {type(exc).__name__}: {exc}", *_where(exc)])
        finally:
            self._step = None
        mine = self.results[first:]
        n_fail = sum(r.status == "FAIL" for r in mine)
        n_pass = sum(r.status == "PASS" for r in mine)
        n_skip = sum(r.status == "SKIP" for r in mine)
        if n_fail:
            self.steps.append((step, "FAIL", f"{n_fail} of {n_fail + n_pass} checks failed"))
        elif n_pass == 0 and n_skip:
            self.steps.append((step, "SKIPPED", f"{n_skip} skipped: see below"))
        else:
            skip = f", {n_skip} skipped" if n_skip else ""
            self.steps.append((step, "PASS", f"{n_pass} checks{skip}"))

    # ---- cases -----------------------------------------------------------------------------------
    @contextmanager
    def case(self, name: str, pitfall: str | tuple[str, ...] | None = None) -> Iterator[None]:
        """Group checks under a name; an exception inside is recorded as a FAIL and grading goes on.

        pitfall: a key of the lesson's hints.toml [pitfalls] (or the text itself), or several, printed
        once with the case's first failure. A NotImplementedError inside a step ends the step ("not started").
        """
        previous, self._prefix = self._prefix, f"{name}: "
        saved = self._pitfall, self._pitfall_shown
        keys = (pitfall,) if isinstance(pitfall, str) else tuple(pitfall or ())
        self._note_unknown(keys)
        self._pitfall = " Or: ".join(self.hints.pitfalls.get(k, k) for k in keys) or None
        self._pitfall_shown = False
        try:
            yield
        except NotImplementedError as exc:
            self._prefix = previous
            if self._step is not None:
                raise _StepStopped(str(exc) or f"{name}: NotImplementedError") from None
            msg = str(exc) or "this function raises NotImplementedError"
            self._record(name, "FAIL", [f"not implemented yet: {msg}", "fill in the body and re-run"])
        except _StepStopped:
            raise
        except Exception as exc:  # noqa: BLE001 - a learner's bug must become a report line, not a crash
            self._prefix = previous
            self._record(name, "FAIL", [f"raised {type(exc).__name__}: {exc}", *_where(exc)])
        finally:
            self._prefix = previous
            self._pitfall, self._pitfall_shown = saved

    # ---- comparisons -----------------------------------------------------------------------------
    def close(self, name: str, got: Any, want: Any, rtol: float, atol: float = 0.0,
              dtype: Any = None, initial: Any = None, pitfall: str | None = None) -> bool:
        """Element-wise |got - want| <= atol + rtol * |want| (numpy.allclose's rule), shapes equal.

        With dtype=..., also require the result to have that dtype (e.g. float32 in -> float32 out).
        With initial=..., the value the argument had before an in-place update: a result equal to it is
        named ("not updated in place"). pitfall: a hints.toml key for this comparison (instead of the case's).
        """
        want_arr = np.asarray(want)
        try:
            got_arr = np.asarray(got)
        except Exception as exc:  # noqa: BLE001
            return self._record(name, "FAIL", [f"could not turn the result into an array: {exc}"],
                                pitfall=pitfall)
        if not np.issubdtype(got_arr.dtype, np.number) and got_arr.dtype != bool:
            return self._record(name, "FAIL", [f"expected numbers, got dtype {got_arr.dtype}"],
                                pitfall=pitfall)
        tol = f"tolerance rtol {rtol:g} atol {atol:g}"
        if got_arr.shape != want_arr.shape:
            return self._record(name, "FAIL", [*diagnose(got_arr, want_arr, rtol, atol), tol],
                                pitfall=pitfall)
        if dtype is not None and got_arr.dtype != np.dtype(dtype):
            return self._record(name, "FAIL", [f"dtype {got_arr.dtype}, expected {np.dtype(dtype)}"],
                                pitfall=pitfall)
        g = got_arr.astype(np.float64)
        w = want_arr.astype(np.float64)
        with np.errstate(invalid="ignore", over="ignore"):
            diff = np.abs(g - w)
            finite = bool(np.all(np.isfinite(g)))
            ok = finite and bool(np.all(diff <= atol + rtol * np.abs(w)))
            max_abs = float(np.nanmax(diff)) if diff.size and not np.all(np.isnan(diff)) else 0.0
            scale = np.maximum(np.abs(w), atol if atol > 0 else np.finfo(np.float64).tiny)
            max_rel = float(np.nanmax(diff / scale)) if diff.size and not np.all(np.isnan(diff)) else 0.0
        lines = [f"shape {got_arr.shape} {got_arr.dtype}   max |diff| {max_abs:.3g}   max rel {max_rel:.3g}"
                 f"   {tol}"]
        if not ok:
            worst = where_worst(g, w, rtol, atol)
            lines = ([worst] if worst else []) + lines
            lines += diagnose(g, w, rtol, atol, initial=initial)
        return self._record(name, "PASS" if ok else "FAIL", lines, pitfall=pitfall)

    def equal(self, name: str, got: Any, want: Any, pitfall: str | None = None) -> bool:
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
        if not ok:
            lines += _numeric_signatures(got, want)
        return self._record(name, "PASS" if ok else "FAIL", lines, pitfall=pitfall)

    def true(self, name: str, ok: bool, detail: str = "", pitfall: str | None = None) -> bool:
        """A property that holds or not (e.g. 'raises ValueError on a bad id')."""
        return self._record(name, "PASS" if ok else "FAIL", [detail] if detail else [], pitfall=pitfall)

    def below(self, name: str, value: float, limit: float, detail: str = "",
              pitfall: str | None = None) -> bool:
        """value < limit, reported with the right sign: 'relative error 4.8e-01 > 1e-07' when it fails."""
        ok = bool(np.isfinite(value)) and value < limit
        text = f"{name} {value:.1e} {'<' if ok else '=' if value == limit else '>'} {limit:g}"
        lines = [detail] if detail else []
        if not ok and np.isfinite(value) and value > 1e-3:
            lines.append("above 1e-3 the backward is wrong (not rounding): a missing term or a wrong factor")
        return self._record(text, "PASS" if ok else "FAIL", lines, pitfall=pitfall)

    def note(self, text: str) -> None:
        """A line of context in the report (not a check)."""
        self._say(f"      note: {text}")

    def skip(self, name: str, reason: str) -> None:
        """A check that could not run; reason says why and how to make it run."""
        self._record(name, "SKIP", [reason])

    @contextmanager
    def raises(self, name: str, exc_type: type[BaseException] | tuple[type[BaseException], ...]):
        """Check that the block raises exc_type (a clear error on bad input)."""
        try:
            yield
        except exc_type as exc:
            self._record(name, "PASS", [f"raised {type(exc).__name__}: {exc}"])
        except NotImplementedError as exc:
            if self._step is not None:
                raise _StepStopped(str(exc) or f"{name}: NotImplementedError") from None
            self._record(name, "FAIL", [f"not implemented yet: {exc or 'NotImplementedError'}"])
        except Exception as exc:  # noqa: BLE001
            self._record(name, "FAIL", [f"raised {type(exc).__name__} ({exc}), expected {_names(exc_type)}"])
        else:
            self._record(name, "FAIL", [f"did not raise; expected {_names(exc_type)}"])


def _waits_for(message: str, number: int) -> int | None:
    """'step 1 not started: ...' raised while grading step 3 -> 1 (step 3 needs step 1's code)."""
    words = message.split()
    if len(words) >= 2 and words[0] == "step" and words[1].isdigit() and int(words[1]) != number:
        return int(words[1])
    return None


def _numeric_signatures(got: Any, want: Any) -> list[str]:
    """Bug signatures for exact comparisons of numbers (ids, counts): a shift, a sign, a transpose."""
    try:
        g = np.asarray(got, dtype=np.float64)
        w = np.asarray(want, dtype=np.float64)
    except (TypeError, ValueError):
        return []
    if g.ndim == 0 or w.ndim == 0:
        return []
    return diagnose(g, w, rtol=0.0, atol=0.0)


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
    module names whose public names are gathered into one namespace (a chapter spread over files)."""
    if isinstance(spec, tuple | list):
        merged = ModuleType(" + ".join(spec))
        for name in spec:
            for key, value in vars(importlib.import_module(name)).items():
                if not key.startswith("_"):
                    merged.__dict__.setdefault(key, value)          # the first module's names win
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


def grade(lesson: str | int | Path, impl: str | Path | ModuleType | tuple[str, ...] | None = None,
          out: TextIO | None = None,
          verbose: bool = True, step: int | None = None) -> Grader:
    """Run lesson's check.py against impl (default: the lesson's own IMPL, i.e. minigpt), step by step.

    step: grade that step alone. impl may be a file, a module name or an already imported module.
    """
    folder = lesson if isinstance(lesson, Path) else find_lesson(lesson)
    check = load_check(folder)
    g = Grader(out=out, verbose=verbose, hints=load_hints(folder))
    steps = list(getattr(check, "STEPS", []))
    if step is not None:
        numbers = [s.number for s in steps]
        if step not in numbers:
            raise KeyError(f"{folder.name} has no step {step}; its steps are {numbers}")
        steps = [s for s in steps if s.number == step]
        g.only_step = step
    target = impl if impl is not None else check.IMPL
    label = getattr(target, "__name__", None) or (" + ".join(target) if isinstance(target, tuple) else target)
    if verbose:
        print(f"Grading {label} against {folder.name}'s references", file=g.out)
    try:
        module = target if isinstance(target, ModuleType) else load_impl(target)
    except NotImplementedError as exc:
        g._record(f"import {label}", "FAIL", [f"NotImplementedError on import: {exc}"])
    except Exception as exc:  # noqa: BLE001 - a file that does not import is a FAIL with the reason
        g._record(f"import {label}", "FAIL", [f"{type(exc).__name__}: {exc}", *_where(exc)])
    else:
        if steps:
            for s in steps:
                g.run_step(s, module)
        else:
            check.run(module, g)
    if verbose:
        print(f"\n{g.summary()}", file=g.out)
    return g


def list_steps(lesson: str | int | Path) -> list[Step]:
    """The numbered steps of a lesson's exercise, as its check.py declares them."""
    folder = lesson if isinstance(lesson, Path) else find_lesson(lesson)
    return list(getattr(load_check(folder), "STEPS", []))


# ---- formatting ------------------------------------------------------------------------------------
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
