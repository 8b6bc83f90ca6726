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
from minigpt.files.boundary import (
    FileFormatError,
    check_format,
    file_name,
    get_choice,
    get_field,
    get_optional,
    read_json,
    read_json_object,
)
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


META_MAX_BYTES = 1 << 20          # meta.json is ~1 KB
MAX_TOKENS = 2**48                # a count no real corpus reaches, small enough for any arithmetic


def load_meta(folder: str | Path) -> dict[str, Any]:
    """Read and check data/<name>/meta.json; a clear error if the dataset was never prepared or is damaged.

    Checked (boundary.get_field): format/version exact; dtype "uint16" or "uint32", and wide enough for
    vocab_size (uint16 holds at most 65,536 ids); vocab_size, train_tokens, val_tokens integers in range;
    tokenizer a plain file name in the folder; source_sha256 a string or null. Other fields are only shown.
    """
    folder = Path(folder)
    path = folder / "meta.json"
    if not path.is_file():
        raise DataError(f"{folder} is not a prepared dataset (no meta.json): run `minigpt prepare "
                        f"{folder.name}` first (`minigpt prepare --help` lists the recipes)")
    where = str(path)
    try:
        meta = read_json_object(path, "meta.json", META_MAX_BYTES)
        check_format(meta, META_FORMAT, META_VERSION, where)
        dtype = get_choice(meta, "dtype", ("uint16", "uint32"), where)
        vocab_size = get_field(meta, "vocab_size", int, where, lo=1, hi=2**32)
        if dtype == "uint16" and vocab_size > 65536:
            raise FileFormatError(f"{where}: vocab_size {vocab_size} does not fit the uint16 token files")
        for key in ("train_tokens", "val_tokens"):
            get_field(meta, key, int, where, lo=0, hi=MAX_TOKENS)
        file_name(meta, "tokenizer", where, default="tokenizer.json")
        get_optional(meta, "source_sha256", str, where)
    except FileFormatError as exc:
        raise DataError(f"{exc}; prepare the dataset again (`minigpt prepare {folder.name}`)") from None
    except OSError as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    return meta


def load_tokens(folder: str | Path, split: str, check: bool = True) -> np.memmap:
    """data/<name>/<split>.bin as a read-only memmap, checked against meta.json's count and dtype, and
    (check=True) every id against its vocab_size: check_tokens, one vectorised pass over the file."""
    folder = Path(folder)
    meta = load_meta(folder)
    if split not in ("train", "val"):
        raise DataError(f"{folder}: a prepared dataset has the splits 'train' and 'val', not {split!r:.40}")
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
    ids = np.memmap(path, dtype=dtype, mode="r")
    if check:
        check_tokens(ids, meta["vocab_size"], path)
    return ids


def check_tokens(ids: np.ndarray, vocab_size: int, path: str | Path) -> None:
    """Refuse token ids >= vocab_size (a .bin from another tokenizer, or damaged): one np.max over the
    array, vectorised: a memmap is read once (50M uint16 ids from the page cache: ~20 ms here; a cold file
    goes at the disk's speed)."""
    top = int(ids.max()) if len(ids) else -1
    if top >= vocab_size:
        at = int(np.argmax(ids >= vocab_size))
        raise DataError(f"{path}: token id {top} (first bad id at position {at:,}) is outside the vocabulary "
                        f"of {vocab_size} ids in meta.json: the token file and the tokenizer come from "
                        "different runs; prepare the dataset again")


def check_vocab(meta: dict[str, Any], tokenizer: Tokenizer, folder: str | Path) -> None:
    """meta.json's vocab_size must be the tokenizer's: a model sized by one and fed by the other would train
    to the end and save checkpoints no one can load."""
    if tokenizer.vocab_size != meta["vocab_size"]:
        raise DataError(f"{Path(folder) / 'meta.json'} says vocab_size {meta['vocab_size']} but its "
                        f"tokenizer has {tokenizer.vocab_size} tokens: the files come from different runs; "
                        "prepare the dataset again")


def load_tokenizer(path: str | Path) -> Tokenizer:
    """A tokenizer JSON file of either kind: CharTokenizer's ("minigpt-char") or BPETokenizer's.

    Only the "format" field is read here (through boundary.read_json); each tokenizer class checks the rest.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"tokenizer file {path} is missing; prepare the dataset again")
    try:
        data = read_json(path, "tokenizer file")
        kind = get_field(data, "format", str, str(path))
    except FileFormatError as exc:
        raise DataError(f"{exc} (not a minigpt tokenizer file)") from None
    if kind == "minigpt-char":
        return CharTokenizer.load(path)
    if kind == "minigpt-bpe":
        return BPETokenizer.load(path)
    raise DataError(f"{path}: unknown tokenizer format {kind!r:.60} (expected 'minigpt-char' or "
                    "'minigpt-bpe')")


def _atomic_write(path: Path, data: bytes) -> None:
    """write_bytes_atomic (temp file, fsync, rename: never half a file), creating the folder first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)
