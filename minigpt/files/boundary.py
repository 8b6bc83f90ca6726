"""The boundary: reading JSON and TOML files we did not write ourselves, and checking their fields.

Every file minigpt reads may be truncated, hand-edited or hostile. This file is the one place that turns
such bytes into Python values, with limits, so that every reader fails the same way: a `FileFormatError`
that names the file, the field and what to do, never a RecursionError, TypeError or MemoryError.

    data = read_json(path, what="tokenizer file", max_bytes=64 << 20)     # any JSON value
    data = parse_json(text, where="task.jsonl:12")                         # one line / one string
    cfg = read_toml(path, what="preset")
    n = get_field(data, "n_layer", int, where, lo=1, hi=10_000)            # typed, ranged, finite
    name = get_field(data, "name", str, where, default=None)

Limits, and why:
- size: a file is read only if it is smaller than max_bytes (each caller picks a bound that fits the
  format), so a 10 GB "config.json" is refused before it is read;
- nesting: JSON or TOML nested deeper than MAX_DEPTH is refused by a linear scan before parsing (Python's
  parsers recurse and would raise RecursionError on `[` x 100,000);
- numbers: NaN, Infinity and integers of more than MAX_INT_DIGITS digits are refused (a 400-digit
  integer would overflow the first float() or NumPy call that sees it);
- text: invalid UTF-8 is an error naming the file, not a UnicodeDecodeError.

Also here, because several readers share them: get_choice / get_optional / file_name (field checks),
MODEL_LIMITS (the largest hyperparameters accepted from config.json and state.json) and first_nonfinite
(NaN/inf in arrays read from a file).

What this file deliberately does not do: know any file format's fields (each reader lists its own through
get_field), or read binary formats (safetensors.py validates its own header).
"""

from __future__ import annotations

import json
import math
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

MAX_DEPTH = 64                 # no file minigpt reads nests deeper than ~4; 64 leaves room and stays safe
MAX_INT_DIGITS = 30            # larger integers are never a valid count, size or id in our files
DEFAULT_MAX_BYTES = 64 << 20   # 64 MiB: GPT-2's encoder.json is 1 MB, a tokenizer with 100k merges ~3 MB


class FileFormatError(ValueError):
    """A file (or a field in it) is not what minigpt expects; the message names the file and the field."""


def read_text(path: str | Path, what: str = "file", max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The UTF-8 text of a file no larger than max_bytes; errors name the file (OSError passes through)."""
    path = Path(path)
    if path.is_dir():
        raise FileFormatError(f"{path} is a folder, not a {what}")
    size = path.stat().st_size
    if size > max_bytes:
        raise FileFormatError(f"{path}: {size:,} bytes is larger than a {what} can be ({max_bytes:,} bytes)")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileFormatError(f"{path}: not UTF-8 text (byte {exc.start}); a {what} must be UTF-8") from None


_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)   # a JSON string, escapes included
_NOT_BRACKET = re.compile(r"[^][{}]+")


def check_depth(text: str, where: str, max_depth: int = MAX_DEPTH) -> None:
    """Refuse text whose brackets nest deeper than max_depth (brackets inside strings do not count).

    Linear and mostly C-speed: strings and everything but brackets are removed with regular expressions,
    then the depth is a cumulative sum over the brackets left (NumPy). Text with at most max_depth
    brackets in all cannot nest deeper and is not scanned (one JSONL line, a small config).
    """
    if text.count("[") + text.count("{") <= max_depth:
        return
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text)).encode("ascii")
    steps = np.frombuffer(brackets, dtype=np.uint8)
    depth = np.cumsum(np.where((steps == ord("[")) | (steps == ord("{")), 1, -1), dtype=np.int64)
    if depth.size and depth.max() > max_depth:
        raise FileFormatError(f"{where}: nested deeper than {max_depth} levels; not a file minigpt "
                              "wrote or reads")


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number JSON allows")


def _int_parser(max_digits: int):
    def bounded_int(text: str) -> int:
        if len(text.lstrip("-")) > max_digits:
            raise ValueError(f"an integer of {len(text)} digits")
        return int(text)
    return bounded_int


_bounded_int = _int_parser(MAX_INT_DIGITS)


def parse_json(text: str, where: str, max_int_digits: int = MAX_INT_DIGITS) -> Any:
    """A JSON value from text; `where` names the file (and line) in the error. max_int_digits is raised
    only by files that hold big integers on purpose (state.json's 128-bit RNG states: 39 digits)."""
    check_depth(text, where)
    parse_int = _bounded_int if max_int_digits == MAX_INT_DIGITS else _int_parser(max_int_digits)
    try:
        return json.loads(text, parse_constant=_refuse_constant, parse_int=parse_int)
    except (json.JSONDecodeError, ValueError) as exc:
        raise FileFormatError(f"{where}: not valid JSON ({exc})") from None


def read_json(path: str | Path, what: str = "JSON file", max_bytes: int = DEFAULT_MAX_BYTES,
              max_int_digits: int = MAX_INT_DIGITS) -> Any:
    """A JSON file's value, within the limits above."""
    return parse_json(read_text(path, what, max_bytes), str(path), max_int_digits)


def read_json_object(path: str | Path, what: str = "JSON file", max_bytes: int = DEFAULT_MAX_BYTES,
                     max_int_digits: int = MAX_INT_DIGITS) -> dict[str, Any]:
    """read_json for the files whose top level must be an object (configs, meta.json, state.json)."""
    data = read_json(path, what, max_bytes, max_int_digits)
    if not isinstance(data, dict):
        raise FileFormatError(f"{path}: expected a JSON object, got {type(data).__name__}")
    return data


def check_format(obj: dict[str, Any], fmt: str, version: int, where: str) -> None:
    """A file of minigpt's own: its "format" and "version" fields must be the ones this minigpt reads."""
    got_fmt, got_version = get_field(obj, "format", str, where), get_field(obj, "version", int, where)
    if got_fmt != fmt or got_version != version:
        raise FileFormatError(f"{where}: format {got_fmt!r:.60} version {got_version}; this minigpt reads "
                              f"{fmt!r} version {version}")


def read_toml(path: str | Path, what: str = "TOML file", max_bytes: int = 1 << 20) -> dict[str, Any]:
    """A TOML file's table, within the limits above (TOML's arrays and inline tables nest like JSON's)."""
    text = read_text(path, what, max_bytes)
    check_depth(text.replace("'", '"'), str(path))
    try:
        return tomllib.loads(text)
    except (tomllib.TOMLDecodeError, ValueError, RecursionError) as exc:
        raise FileFormatError(f"{path}: not valid TOML ({exc})") from None


_KIND_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false",
               list: "a list", dict: "an object"}
_MISSING = object()


def get_field(obj: Any, key: str, kind: type, where: str, *, lo: float | None = None,
              hi: float | None = None, default: Any = _MISSING) -> Any:
    """obj[key], checked: of type `kind` (an int is accepted for float, a bool never for a number),
    finite, within [lo, hi]. A missing key returns `default` if one is given, else it is an error."""
    if not isinstance(obj, dict):
        raise FileFormatError(f"{where}: expected an object with field {key!r}, got {type(obj).__name__}")
    if key not in obj:
        if default is not _MISSING:
            return default
        raise FileFormatError(f"{where}: field {key!r} is missing")
    value = obj[key]
    ok = isinstance(value, kind) and not (kind in (int, float) and isinstance(value, bool))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        ok = abs(value) < 10**308                       # float() of a larger int raises OverflowError
        value = float(value) if ok else value
    if not ok:
        raise FileFormatError(f"{where}: field {key!r} must be {_KIND_NAMES.get(kind, kind.__name__)}, "
                              f"got {_short(value)}")
    if kind in (int, float):
        if not math.isfinite(value):
            raise FileFormatError(f"{where}: field {key!r} must be finite, got {value}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise FileFormatError(f"{where}: field {key!r} = {_short(value)} is outside [{lo}, {hi}]")
    return value


def get_choice(obj: Any, key: str, choices: tuple, where: str, default: Any = _MISSING) -> Any:
    """obj[key], which must be one of `choices` (compared by type and value: true is not 1)."""
    value = get_field(obj, key, object, where, default=default)
    if not any(type(value) is type(c) and value == c for c in choices):
        raise FileFormatError(f"{where}: field {key!r} must be one of {', '.join(map(repr, choices))}, "
                              f"got {_short(value)}")
    return value


def get_optional(obj: Any, key: str, kind: type, where: str, **limits: Any) -> Any:
    """obj[key] checked like get_field, except that null (or a missing key) gives None."""
    if isinstance(obj, dict) and obj.get(key) is None:
        return None
    return get_field(obj, key, kind, where, **limits)


def file_name(obj: Any, key: str, where: str, default: Any = _MISSING) -> str:
    """A plain file name (no folder, not '.' or '..', at most 255 bytes): a file we read must not point
    outside its folder."""
    name = get_field(obj, key, str, where, default=default)
    if (name != Path(name).name or name in ("", ".", "..") or "\\" in name or "\0" in name
            or len(name.encode("utf-8", "replace")) > 255):          # the usual file-name limit
        raise FileFormatError(f"{where}: field {key!r} = {_short(name)} must be a plain file name in the "
                              "same folder")
    return name


# The largest hyperparameters minigpt accepts from a file (config.json, state.json), checked before
# anything is allocated; each reader then also compares the parameter count with the weights file's size.
MODEL_LIMITS: dict[str, tuple[int, int]] = {
    "vocab_size": (1, 10_000_000), "block_size": (1, 1_000_000), "n_layer": (1, 10_000),
    "n_head": (1, 10_000), "n_embd": (1, 1_000_000),
}


def first_nonfinite(arrays: Mapping[str, np.ndarray]) -> tuple[str, int] | None:
    """(name, count) of the first float array holding NaN or inf, or None if all are finite.

    Cost: one sum per array (no temporary: a finite sum proves every element finite), and an exact
    np.isfinite pass only when the sum is not finite (a NaN/inf, or a float16 sum overflowing). GPT-2
    small's 124M float32 weights: ~0.13 s here, against ~0.5 s for np.isfinite(a).all() per tensor
    (which also allocates a bool copy of each).
    """
    for name, arr in arrays.items():
        if arr.dtype.kind == "f" and arr.size and not np.isfinite(arr.sum()):
            bad = int(arr.size - np.count_nonzero(np.isfinite(arr)))
            if bad:
                return name, bad
    return None


def _short(value: Any, n: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= n else text[:n] + "..."
