"""Dataset recipes: where a corpus comes from, how it is cleaned, which tokenizer encodes it.

    prepare("pystdlib")                                    # offline: the running Python's standard library
    prepare("shakespeare_char")                            # downloads tiny Shakespeare (cached), char-level
    prepare("shakespeare_char", from_file="input.txt")     # offline: the same file, given by hand
    prepare("textfile", from_file="my.txt", name="mine")   # any UTF-8 text -> data/mine/

Every recipe ends the same way (minigpt/data.py's format): data/<name>/train.bin, val.bin, tokenizer.json,
meta.json. The recipes, and why each is built the way it is:

- shakespeare_char: nanoGPT's yardstick. Character-level, vocabulary = the sorted distinct characters (65),
  first 90 % train / last 10 % val, exactly nanoGPT's split, so our val loss compares with its 1.88.
  No de-duplication: the file is canonical (and a play repeats short lines like "KING RICHARD III:" on
  purpose). Source: the char-rnn repository's raw file (the one nanoGPT downloads).
- shakespeare: the same text with a byte-level BPE of 1024 tokens learned on the train split only (so the
  val text cannot leak into the vocabulary). `vocab=` a gpt2.tiktoken file switches to GPT-2's own 50257
  tokens (nanoGPT's `shakespeare` recipe); we don't default to it, because a 50257 x C embedding and output
  head dominate a laptop-sized model (with C=128: 6.4M of its ~7M parameters, and the head's matmul is most of
  the step's time), and a 1024-token vocabulary trains far faster on 1 MB of text.
- tang_poems: Tang-dynasty poems from the chinese-poetry repository (poet.tang.0.json ... 4000.json, the
  same 5 files as ../shared/data/tang_poems.txt), one document per poem: title, author, lines. Character-
  level: a Chinese character is already a syllable and a morpheme, and a byte-level BPE would spend its first
  merges just re-assembling the 3-byte UTF-8 sequences of ~6,000 characters. Duplicate poems are dropped.
- pystdlib: THE OFFLINE DEFAULT. The .py files of the running interpreter's standard library (no tests, no
  site-packages, no generated tables), in sorted path order, until ~1.5 MB. Each file is one document, headed
  by a `# file: <path>` line. Vocabulary: the 95 printable ASCII characters plus newline (96, fixed, so
  it does not depend on the selection); tabs become 4 spaces, form feeds and other control characters are
  dropped, and a file with any other character (non-ASCII in a docstring, say) is skipped whole rather than
  mangled. Exact duplicate files (empty __init__.py's) are dropped. The same Python version gives the same
  bytes; meta.json records the version and the sha256.
- textfile: any UTF-8 file, character-level (or `tokenizer="bpe"`), newlines normalised, control characters
  dropped, no de-duplication (we don't know what a document is).

What this file deliberately does not do: fetch anything but the files named here, guess encodings other than
UTF-8, or filter text by content (profanity, language ID); the cleaning is what the recipe says, no more.
"""

from __future__ import annotations

import json
import os
import sys
import sysconfig
import time
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minigpt.data import (
    DataError,
    Tokenizer,
    drop_control_chars,
    drop_duplicates,
    normalize_newlines,
    sha256_bytes,
    split_text,
    token_dtype,
    write_meta,
    write_tokens,
)
from minigpt.paths import data_dir
from minigpt.tokenizer import BPETokenizer, CharTokenizer

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TANG_URLS = [
    "https://raw.githubusercontent.com/chinese-poetry/chinese-poetry/master/"
    + urllib.parse.quote(f"全唐诗/poet.tang.{k}.json") for k in range(0, 5000, 1000)
]
PYSTDLIB_BYTES = 1_500_000
PYSTDLIB_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__",
                      "encodings", "pydoc_data", "lib2to3", "__phello__"}   # tests, tables, third-party code
PYSTDLIB_CHARS = "\n" + "".join(chr(c) for c in range(32, 127))   # newline + printable ASCII: 96 characters
BPE_VOCAB = 1024


@dataclass
class Corpus:
    """What a recipe's source step hands to the common tail: clean text and what was done to it."""

    text: str
    source: str                    # URL or path
    source_sha256: str             # of the raw bytes read
    cleaning: dict[str, Any]       # what was removed, for meta.json and the printout
    documents: int | None = None   # poems or files kept, where the recipe has documents


def prepare(name: str, *, from_file: str | Path | None = None, out: str | Path | None = None,
            url: str | None = None, vocab: str | Path | None = None, tokenizer: str = "char",
            vocab_size: int = BPE_VOCAB, progress: bool = True, log: Callable[[str], None] = print) -> Path:
    """Run recipe `name`; returns the dataset folder (default data/<name>, for textfile data/<file stem>).

    from_file: a local copy of the source (tests, offline users). url: another download location.
    vocab: a gpt2.tiktoken file (shakespeare). tokenizer / vocab_size: textfile's tokenizer ("char" | "bpe").
    """
    if name not in RECIPES:
        raise DataError(f"unknown dataset recipe {name!r}; the recipes are: {', '.join(RECIPES)}")
    if name == "tang_couplets":     # a task (prompt/response JSONL), not a token corpus: see couplets.py
        from minigpt.couplets import prepare_couplets

        return prepare_couplets(from_file=from_file, out=out, url=url, progress=progress, log=log)
    if name == "textfile" and from_file is None:
        raise DataError("textfile needs the path of a UTF-8 text file: `minigpt prepare textfile PATH`")
    default_name = Path(from_file).stem if name == "textfile" else name
    folder = Path(out) if out is not None else data_dir() / default_name
    t0 = time.time()
    corpus = _SOURCES[name](folder, from_file, url, progress)
    for what, count in corpus.cleaning.items():
        if count:
            log(f"cleaning: removed {count:,} {what}")
    if corpus.documents is not None:
        log(f"{corpus.documents:,} documents kept")
    train_text, val_text = split_text(corpus.text, 0.1)
    tok, tok_desc = _tokenizer_for(name, corpus.text, train_text, vocab, tokenizer, vocab_size, log)
    train_ids, val_ids = tok.encode(train_text), tok.encode(val_text)
    if not train_ids or not val_ids:
        raise DataError(f"{corpus.source}: after cleaning the text is too short to split into train and "
                        f"val ({len(corpus.text)} characters); use a longer file")
    dtype = token_dtype(tok.vocab_size)
    folder.mkdir(parents=True, exist_ok=True)
    write_tokens(folder / "train.bin", train_ids, dtype)
    write_tokens(folder / "val.bin", val_ids, dtype)
    tok.save(folder / "tokenizer.json")
    write_meta(folder, {
        "name": folder.name, "recipe": name, "tokenizer": "tokenizer.json", "tokenizer_kind": tok_desc,
        "vocab_size": tok.vocab_size, "dtype": "uint16" if dtype.itemsize == 2 else "uint32",
        "train_tokens": len(train_ids), "val_tokens": len(val_ids), "characters": len(corpus.text),
        "split": "first 90% of the characters train, last 10% val", "source": corpus.source,
        "source_sha256": corpus.source_sha256, "cleaning": corpus.cleaning, "documents": corpus.documents,
        "python": sys.version.split()[0] if name == "pystdlib" else None,
    })
    log(f"{folder}: {len(train_ids):,} train + {len(val_ids):,} val tokens, vocab {tok.vocab_size} "
        f"({tok_desc}), {dtype.name}, {time.time() - t0:.1f} s")
    return folder


# ---- sources: read (or download) and clean ---------------------------------------------------------------
def _fetch(folder: Path, name: str, url: str, from_file: str | Path | None, filename: str,
           progress: bool) -> Path:
    """The local file to read: from_file if given, else url downloaded (cached) to data/<name>/filename."""
    if from_file is not None:
        path = Path(from_file)
        if not path.is_file():
            raise DataError(f"--from-file {path} does not exist")
        return path
    from minigpt.download import DownloadError, download_file

    dest = folder / "source" / filename
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        return download_file(url, dest, progress=progress)
    except (DownloadError, OSError) as exc:
        raise DataError(f"could not download {url} ({exc}).\nOffline? Get the file another way (a browser, "
                        f"curl, a colleague) and run: minigpt prepare {name} --from-file PATH"
                        + ("\nOr train on the offline corpus, which needs no network: minigpt train"
                           if name != "pystdlib" else "")) from None


def _read_utf8(path: Path) -> tuple[str, str]:
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{path} is not UTF-8 text: bad byte {raw[exc.start]:#04x} at offset {exc.start} "
                        f"({exc.reason}); convert it first, e.g. `iconv -f latin1 -t utf-8`") from None
    return text.removeprefix("\ufeff"), sha256_bytes(raw)   # a byte-order mark is not text


def _clean(text: str) -> tuple[str, dict[str, int]]:
    text = normalize_newlines(text)
    text, n_ctrl = drop_control_chars(text)
    return text, {"control characters": n_ctrl}


def _shakespeare(folder: Path, from_file, url, progress) -> Corpus:
    path = _fetch(folder, folder.name, url or SHAKESPEARE_URL, from_file, "input.txt", progress)
    raw, digest = _read_utf8(path)
    text, cleaning = _clean(raw)
    return Corpus(text, str(from_file or url or SHAKESPEARE_URL), digest, cleaning)


def _tang_poems(folder: Path, from_file, url, progress) -> Corpus:
    if from_file is not None:
        paths = [_fetch(folder, "tang_poems", "", from_file, "", progress)]
    else:
        urls = [url] if url else TANG_URLS
        paths = [_fetch(folder, "tang_poems", u, None, Path(urllib.parse.unquote(u)).name, progress)
                 for u in urls]
    poems: list[str] = []
    digests = []
    for path in paths:
        raw, digest = _read_utf8(path)
        digests.append(digest)
        poems += _poems_from_json(raw, path) if raw.lstrip().startswith("[") else _poems_from_text(raw)
    cleaning: dict[str, int] = {"control characters": 0}
    clean = []
    for poem in poems:
        poem, n = drop_control_chars(normalize_newlines(poem).strip(), keep="\n")
        cleaning["control characters"] += n
        if poem:
            clean.append(poem)
    cleaning["empty poems"] = len(poems) - len(clean)
    kept, cleaning["duplicate poems"] = drop_duplicates(clean)
    if not kept:
        raise DataError(f"{paths[0]}: no poems found (expected poems separated by blank lines, or "
                        f"chinese-poetry JSON)")
    source = str(from_file) if from_file is not None else " ".join(url and [url] or TANG_URLS)
    digest = digests[0] if len(digests) == 1 else sha256_bytes("".join(digests).encode())
    return Corpus("\n\n".join(kept) + "\n", source, digest, cleaning, len(kept))


def _poems_from_text(text: str) -> list[str]:
    return normalize_newlines(text).split("\n\n")


def _poems_from_json(raw: str, path: Path) -> list[str]:
    """chinese-poetry's format: a list of {"title": str, "author": str, "paragraphs": [str, ...]}."""
    try:
        items = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path} is not valid JSON ({exc})") from None
    poems = []
    for k, item in enumerate(items):
        if not (isinstance(item, dict) and isinstance(item.get("paragraphs"), list)
                and all(isinstance(s, str) for s in item["paragraphs"])):
            raise DataError(f"{path}: poem #{k} is not an object with a list of strings in 'paragraphs'")
        head = [str(item.get("title", "")), str(item.get("author", ""))]
        poems.append("\n".join([h for h in head if h] + item["paragraphs"]))
    return poems


def _pystdlib(folder: Path, from_file, url, progress) -> Corpus:
    root = Path(from_file) if from_file is not None else Path(sysconfig.get_paths()["stdlib"])
    if not root.is_dir():
        raise DataError(f"{root} is not a folder of Python files (pystdlib reads a standard library folder)")
    allowed = set(PYSTDLIB_CHARS)
    files = sorted(_python_files(root))
    docs: list[str] = []
    cleaning = {"control characters": 0, "files with other characters": 0, "empty files": 0,
                "duplicate files": 0}
    seen: set[str] = set()
    size = 0
    for rel in files:
        try:
            text = (root / rel).read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            cleaning["files with other characters"] += 1
            continue
        text, n = drop_control_chars(normalize_newlines(text).expandtabs(4), keep="\n")
        cleaning["control characters"] += n
        if not text.strip():
            cleaning["empty files"] += 1
            continue
        if not set(text) <= allowed:
            cleaning["files with other characters"] += 1
            continue
        if text in seen:
            cleaning["duplicate files"] += 1
            continue
        seen.add(text)
        doc = f"# file: {rel}\n{text.rstrip()}\n\n"
        docs.append(doc)
        size += len(doc)
        if size >= PYSTDLIB_BYTES:
            break
    if not docs:
        raise DataError(f"{root}: no usable .py files found")
    text = "".join(docs)
    return Corpus(text, f"{root} ({len(docs)} files, sorted by path)", sha256_bytes(text.encode()), cleaning,
                  len(docs))


def _python_files(root: Path) -> list[str]:
    """Relative posix paths of the .py files under root, not descending into PYSTDLIB_SKIP_DIRS."""
    found = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d not in PYSTDLIB_SKIP_DIRS]
        rel = Path(folder).relative_to(root)
        found += [(rel / n).as_posix() for n in names if n.endswith(".py")]
    return found


def _textfile(folder: Path, from_file, url, progress) -> Corpus:
    path = Path(from_file)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    raw, digest = _read_utf8(path)
    text, cleaning = _clean(raw)
    return Corpus(text, str(path), digest, cleaning)


# ---- tokenizers ------------------------------------------------------------------------------------------
def _tokenizer_for(name: str, text: str, train_text: str, vocab, kind: str, vocab_size: int,
                   log: Callable[[str], None]) -> tuple[Tokenizer, str]:
    if name == "pystdlib":
        return CharTokenizer(PYSTDLIB_CHARS), "char: newline + printable ASCII"
    if name == "shakespeare" and vocab is not None:
        return BPETokenizer.from_tiktoken(vocab), f"GPT-2 BPE from {Path(vocab).name}"
    if name == "shakespeare" or (name == "textfile" and kind == "bpe"):
        log(f"learning a {vocab_size}-token byte-level BPE on the train split ...")
        tok = BPETokenizer.train(train_text, vocab_size=vocab_size, pattern="gpt2", special_tokens=())
        return tok, f"BPE {vocab_size} learned on the train split"
    if kind not in ("char", "bpe"):
        raise DataError(f"tokenizer must be 'char' or 'bpe', got {kind!r}")
    return CharTokenizer.from_text(text), "char: the text's distinct characters"


_SOURCES = {"shakespeare_char": _shakespeare, "shakespeare": _shakespeare, "tang_poems": _tang_poems,
            "pystdlib": _pystdlib, "textfile": _textfile}
RECIPES = {
    "pystdlib": "the Python standard library's own source, ~1.5 MB, char-level (offline; the default)",
    "shakespeare_char": "tiny Shakespeare (1.1 MB), char-level, nanoGPT's split (downloads 1 MB)",
    "shakespeare": "tiny Shakespeare with a 1024-token BPE (or --vocab gpt2.tiktoken for GPT-2's)",
    "tang_poems": "4,875 Tang poems from chinese-poetry, char-level (downloads 5 JSON files, ~3 MB)",
    "textfile": "any UTF-8 text file: minigpt prepare textfile PATH [--name NAME]",
    "tang_couplets": "a fine-tuning task from the Tang poems: complete a couplet's second half (JSONL)",
}
