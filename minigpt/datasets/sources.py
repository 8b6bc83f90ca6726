"""Dataset sources: read (or download) a corpus and clean it, ready for a recipe to split and tokenize.

    corpus = read_shakespeare(folder, from_file, url, progress)   # -> Corpus(text, source, sha256, cleaning)

One reader per source: tiny Shakespeare, the Tang poems (plain text or chinese-poetry JSON), the running
Python's standard library, any UTF-8 text file. Each returns a Corpus: the clean text, where it came from,
the sha256 of the raw bytes, and counts of what cleaning removed. recipes.py says why each source is cleaned
the way it is; couplets.py reuses the Tang reader for its task.

What this file deliberately does not do: split, tokenize or write anything (recipes.py does), or fetch
anything but the files named here.
"""

from __future__ import annotations

import os
import sysconfig
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from minigpt.datasets.prepared import (
    DataError,
    drop_control_chars,
    drop_duplicates,
    normalize_newlines,
    sha256_bytes,
)
from minigpt.files.boundary import FileFormatError, get_field, get_optional, parse_json
from minigpt.files.download import DownloadError, download_file

SHAKESPEARE_URL = "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/tinyshakespeare/input.txt"
TANG_URLS = [
    "https://raw.githubusercontent.com/chinese-poetry/chinese-poetry/master/"
    + urllib.parse.quote(f"全唐诗/poet.tang.{k}.json") for k in range(0, 5000, 1000)
]
PYSTDLIB_BYTES = 1_500_000
PYSTDLIB_SKIP_DIRS = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__",
                      "encodings", "pydoc_data", "lib2to3", "__phello__"}   # tests, tables, third-party code
PYSTDLIB_CHARS = "\n" + "".join(chr(c) for c in range(32, 127))   # newline + printable ASCII: 96 characters


@dataclass
class Corpus:
    """What a recipe's source step hands to the common tail: clean text and what was done to it."""

    text: str
    source: str                    # URL or path
    source_sha256: str             # of the raw bytes read
    cleaning: dict[str, Any]       # what was removed, for meta.json and the printout
    documents: int | None = None   # poems or files kept, where the recipe has documents


# ---- sources: read (or download) and clean ---------------------------------------------------------------
def _fetch(folder: Path, name: str, url: str, from_file: str | Path | None, filename: str,
           progress: bool) -> Path:
    """The local file to read: from_file if given, else url downloaded (cached) to data/<name>/filename."""
    if from_file is not None:
        path = Path(from_file)
        if not path.is_file():
            raise DataError(f"--from-file {path} does not exist")
        return path
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


def read_shakespeare(folder: Path, from_file, url, progress) -> Corpus:
    path = _fetch(folder, folder.name, url or SHAKESPEARE_URL, from_file, "input.txt", progress)
    raw, digest = _read_utf8(path)
    text, cleaning = _clean(raw)
    return Corpus(text, str(from_file or url or SHAKESPEARE_URL), digest, cleaning)


def read_tang_poems(folder: Path, from_file, url, progress) -> Corpus:
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


MAX_POEM_CHARS = 1_000_000     # one poem; the longest Tang poem is a few thousand characters
MAX_POEM_LINES = 100_000


def _poems_from_json(raw: str, path: Path) -> list[str]:
    """chinese-poetry's format: a list of {"title": str, "author": str, "paragraphs": [str, ...]}.

    Checked through boundary: the nesting depth, every item an object, "paragraphs" a list of strings
    (at most MAX_POEM_LINES, MAX_POEM_CHARS in all), "title" and "author" strings or absent/null.
    """
    try:
        items = parse_json(raw, str(path))
    except FileFormatError as exc:
        raise DataError(str(exc)) from None
    if not isinstance(items, list):
        raise DataError(f"{path}: expected a JSON list of poems, got {type(items).__name__}")
    poems = []
    for k, item in enumerate(items):
        where = f"{path}: poem #{k}"
        try:
            paragraphs = get_field(item, "paragraphs", list, where)
            head = [get_optional(item, key, str, where) or "" for key in ("title", "author")]
        except FileFormatError as exc:
            raise DataError(f"{exc} (poem #{k} must be an object with a list of strings in 'paragraphs')") \
                from None
        if not all(isinstance(line, str) for line in paragraphs):
            raise DataError(f"{where} is not an object with a list of strings in 'paragraphs'")
        if len(paragraphs) > MAX_POEM_LINES or sum(map(len, paragraphs)) > MAX_POEM_CHARS:
            raise DataError(f"{where}: longer than {MAX_POEM_LINES:,} lines or {MAX_POEM_CHARS:,} "
                            "characters; not a poem")
        poems.append("\n".join([h for h in head if h] + paragraphs))
    return poems


def read_pystdlib(folder: Path, from_file, url, progress) -> Corpus:
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


def read_textfile(folder: Path, from_file, url, progress) -> Corpus:
    path = Path(from_file)
    if not path.is_file():
        raise DataError(f"{path} does not exist")
    raw, digest = _read_utf8(path)
    text, cleaning = _clean(raw)
    return Corpus(text, str(path), digest, cleaning)
