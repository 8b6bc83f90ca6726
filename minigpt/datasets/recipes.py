"""Dataset recipes: where a corpus comes from, how it is cleaned, which tokenizer encodes it.

    prepare("pystdlib")                                    # offline: the running Python's standard library
    prepare("shakespeare_char")                            # downloads tiny Shakespeare (cached), char-level
    prepare("shakespeare_char", from_file="input.txt")     # offline: the same file, given by hand
    prepare("textfile", from_file="my.txt", name="mine")   # any UTF-8 text -> data/mine/

Every recipe ends the same way (minigpt/datasets/prepared.py's format): data/<name>/train.bin, val.bin,
tokenizer.json,
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

import sys
import time
from collections.abc import Callable
from pathlib import Path

from minigpt.datasets.couplets import prepare_couplets
from minigpt.datasets.prepared import DataError, Tokenizer, split_text, token_dtype, write_meta, write_tokens
from minigpt.datasets.sources import (
    PYSTDLIB_CHARS,
    read_pystdlib,
    read_shakespeare,
    read_tang_poems,
    read_textfile,
)
from minigpt.files.paths import data_dir
from minigpt.tokenizer import BPETokenizer, CharTokenizer

BPE_VOCAB = 1024


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
    train_ids, val_ids = tok.encode_ordinary(train_text), tok.encode_ordinary(val_text)   # data is text:
    # "<|endoftext|>" written in a corpus is characters, never the control token
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


_SOURCES = {"shakespeare_char": read_shakespeare, "shakespeare": read_shakespeare,
            "tang_poems": read_tang_poems, "pystdlib": read_pystdlib, "textfile": read_textfile}
RECIPES = {
    "pystdlib": "the Python standard library's own source, ~1.5 MB, char-level (offline; the default)",
    "shakespeare_char": "tiny Shakespeare (1.1 MB), char-level, nanoGPT's split (downloads 1 MB)",
    "shakespeare": "tiny Shakespeare with a 1024-token BPE (or --vocab gpt2.tiktoken for GPT-2's)",
    "tang_poems": "4,875 Tang poems from chinese-poetry, char-level (downloads 5 JSON files, ~3 MB)",
    "textfile": "any UTF-8 text file: minigpt prepare textfile PATH [--name NAME]",
    "tang_couplets": "a fine-tuning task from the Tang poems: complete a couplet's second half (JSONL)",
}
