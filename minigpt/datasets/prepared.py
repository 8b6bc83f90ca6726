"""Token files on disk and random training windows: the data pipeline after the text is clean.

A prepared dataset is a folder `data/<name>/` with four files (minigpt/datasets/recipes.py writes them):

    train.bin, val.bin   the token ids, raw little-endian uint16 (vocab <= 65535) or uint32, no header:
                         np.memmap reads them without loading them, so a corpus bigger than RAM works
    tokenizer.json       the tokenizer that made the ids (CharTokenizer or BPETokenizer's own JSON)
    meta.json            dtype, token counts, vocab size, where the text came from, its sha256, cleaning

Training reads random windows: `get_batch(ids, batch_size, block_size, rng)` picks batch_size start
positions uniformly and returns x = ids[i : i+T] and y = ids[i+1 : i+T+1] (the next token at every place),
as int64 (B, T). The rng is the caller's np.random.Generator, so a seed fixes the batches exactly.

This file also holds the small text-cleaning functions the recipes share (newlines, control characters,
duplicates) and the train/val split rule. Its writers are atomic (minigpt/files/atomic.py): an interrupted
`prepare` never leaves half a token file.

What this file deliberately does not do: download or choose corpora (recipes.py), shuffle whole
documents, pack or pad sequences to document boundaries, or stream from the network.
"""

from __future__ import annotations

import hashlib
import json
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from minigpt.files.atomic import write_bytes_atomic
from minigpt.tokenizer import BPETokenizer, CharTokenizer

META_FORMAT = "minigpt-data"
META_VERSION = 1
Tokenizer = CharTokenizer | BPETokenizer


class DataError(ValueError):
    """A dataset that cannot be prepared or read; the message names the file and says what to do."""


# ---- cleaning ------------------------------------------------------------------------------------------
def normalize_newlines(text: str) -> str:
    """Windows (\\r\\n) and old Mac (\\r) line ends become \\n: one character means one thing."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def drop_control_chars(text: str, keep: str = "\n\t") -> tuple[str, int]:
    """Remove control characters (Unicode category Cc: NUL, escape codes, form feeds ...) except `keep`.

    They are noise for a language model (invisible, and each would waste a vocabulary slot).
    Returns (clean text, number of characters removed).
    """
    bad = {c for c in set(text) if unicodedata.category(c) == "Cc" and c not in keep}
    if not bad:
        return text, 0
    clean = "".join(c for c in text if c not in bad)
    return clean, len(text) - len(clean)


def drop_duplicates(docs: Iterable[str]) -> tuple[list[str], int]:
    """Keep the first copy of every exact duplicate document, in order; returns (kept, number dropped).

    Duplicates make the model memorise, and a copy that lands in both train and val makes the val loss lie.
    """
    seen: set[str] = set()
    kept: list[str] = []
    total = 0
    for doc in docs:
        total += 1
        if doc not in seen:
            seen.add(doc)
            kept.append(doc)
    return kept, total - len(kept)


def split_text(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """nanoGPT's rule: the first (1 - val_fraction) of the characters train, the rest validate.

    A contiguous tail, not a random sample of windows: val text is text the model never saw at all.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    n = int(len(text) * (1.0 - val_fraction))
    return text[:n], text[n:]


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ---- token files ---------------------------------------------------------------------------------------
def token_dtype(vocab_size: int) -> np.dtype:
    """uint16 holds ids up to 65535 (GPT-2's 50257 fit); bigger vocabularies need uint32. Little-endian."""
    return np.dtype("<u2") if vocab_size <= 65536 else np.dtype("<u4")


def write_tokens(path: str | Path, ids: Sequence[int] | np.ndarray, dtype: np.dtype) -> int:
    """Write ids as raw little-endian integers, atomically (temp file, fsync, rename). Returns the count."""
    path = Path(path)
    arr = np.asarray(ids, dtype=np.int64)                       # (N,)
    if arr.size and (arr.min() < 0 or arr.max() > np.iinfo(dtype).max):
        raise DataError(f"{path}: token ids {arr.min()}..{arr.max()} do not fit in {dtype}")
    _atomic_write(path, arr.astype(dtype).tobytes())
    return int(arr.size)


def write_meta(folder: str | Path, meta: dict[str, Any]) -> None:
    text = json.dumps({"format": META_FORMAT, "version": META_VERSION, **meta}, indent=1, ensure_ascii=False)
    _atomic_write(Path(folder) / "meta.json", (text + "\n").encode("utf-8"))


def load_meta(folder: str | Path) -> dict[str, Any]:
    """Read and check data/<name>/meta.json; a clear error if the dataset was never prepared or is damaged."""
    folder = Path(folder)
    path = folder / "meta.json"
    if not path.is_file():
        raise DataError(f"{folder} is not a prepared dataset (no meta.json): run `minigpt prepare "
                        f"{folder.name}` first (`minigpt prepare --help` lists the recipes)")
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON ({exc}); prepare the dataset again") from None
    need = {"format": str, "dtype": str, "vocab_size": int, "train_tokens": int, "val_tokens": int}
    for key, kind in need.items():
        if not isinstance(meta, dict) or not isinstance(meta.get(key), kind):
            raise DataError(f"{path}: field {key!r} is missing or not a {kind.__name__}; prepare it again")
    if meta["format"] != META_FORMAT or meta.get("version") != META_VERSION:
        raise DataError(f"{path}: format {meta['format']!r} version {meta.get('version')!r}; this minigpt "
                        f"reads {META_FORMAT!r} version {META_VERSION}: prepare the dataset again")
    if meta["dtype"] not in ("uint16", "uint32"):
        raise DataError(f"{path}: dtype must be uint16 or uint32, got {meta['dtype']!r}")
    return meta


def load_tokens(folder: str | Path, split: str) -> np.memmap:
    """data/<name>/<split>.bin as a read-only memmap, checked against meta.json's count and dtype."""
    folder = Path(folder)
    meta = load_meta(folder)
    path = folder / f"{split}.bin"
    dtype = np.dtype("<u2") if meta["dtype"] == "uint16" else np.dtype("<u4")
    want = meta[f"{split}_tokens"]
    if not path.is_file():
        raise DataError(f"{path} is missing: prepare the dataset again (`minigpt prepare {folder.name}`)")
    size = path.stat().st_size
    if size != want * dtype.itemsize:
        raise DataError(f"{path} has {size} bytes but meta.json says {want} {meta['dtype']} tokens "
                        f"({want * dtype.itemsize} bytes): the file is truncated or from another run; "
                        f"prepare the dataset again")
    if want == 0:
        return np.zeros(0, dtype=dtype)  # type: ignore[return-value]  (memmap refuses empty files)
    return np.memmap(path, dtype=dtype, mode="r")


def load_tokenizer(path: str | Path) -> Tokenizer:
    """A tokenizer JSON file of either kind: CharTokenizer's ("minigpt-char") or BPETokenizer's."""
    path = Path(path)
    try:
        kind = json.loads(path.read_text(encoding="utf-8")).get("format")
    except FileNotFoundError:
        raise DataError(f"tokenizer file {path} is missing; prepare the dataset again") from None
    except (UnicodeDecodeError, json.JSONDecodeError, AttributeError) as exc:
        raise DataError(f"{path} is not a tokenizer JSON file ({exc})") from None
    if kind == "minigpt-char":
        return CharTokenizer.load(path)
    if kind == "minigpt-bpe":
        return BPETokenizer.load(path)
    raise DataError(f"{path}: unknown tokenizer format {kind!r} (expected 'minigpt-char' or 'minigpt-bpe')")


def check_tokens(ids: np.ndarray, vocab_size: int, path: str | Path) -> None:
    """Every id in a token file is a valid row of a vocab_size embedding (one vectorised pass)."""
    if len(ids) and int(ids.max()) >= vocab_size:
        raise DataError(f"{path} holds token id {int(ids.max())}, but the vocabulary has {vocab_size} ids: "
                        f"the file does not belong to this dataset's tokenizer; prepare the dataset again")


def _atomic_write(path: Path, data: bytes) -> None:
    """write_bytes_atomic (temp file, fsync, rename: never half a file), creating the folder first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)
