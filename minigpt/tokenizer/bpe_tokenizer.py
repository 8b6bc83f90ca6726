"""Text <-> token ids: a character tokenizer and a byte-level BPE tokenizer that reproduces GPT-2 exactly.

    tok = BPETokenizer.train(text, vocab_size=1024, pattern="gpt2", special_tokens=("<|endoftext|>",))
    gpt2 = BPETokenizer.from_tiktoken("gpt2.tiktoken")     # same ids as tiktoken's GPT-2 encoding
    ids = tok.encode(text); text = tok.decode(ids)

Design choices, stated once:
- Special tokens. `encode(text)` treats "<|endoftext|>" in the text as ordinary characters (7 tokens for
  GPT-2), because text from users must never be able to smuggle in a control token. Pass
  `allowed_special="all"` (or a set of names) when *you* put them there. tiktoken instead raises an error
  by default; we encode them as plain text so that tokenizing arbitrary data never fails.
- Lone surrogates (code points that are not characters, from badly decoded text) become U+FFFD before
  encoding and surrogate pairs are joined, exactly as tiktoken does.
- Ids. Every id 0..vocab_size-1 means something: the 256 bytes, then the merges in the order they were
  learned, then the special tokens. Byte b's id is usually b, but GPT-2's byte tokens come in another
  order (see bpe_files.bytes_to_unicode), so the byte -> id table is part of the tokenizer.
- Speed. Encoding caches each regex chunk's ids and cuts new chunks into cached pieces (bpe_cache.py);
  the BPE itself is bpe.encode_chunk. Training is bpe.learn_merges, which updates pair counts
  incrementally. benchmarks/tokenizer.py compares the speed with tiktoken's.

What this file does not do: the merge algorithm (bpe.py), the encoding caches (bpe_cache.py), parsing
files (bpe_files.py), or the character tokenizer (char_tokenizer.py, re-exported here so
`from minigpt.tokenizer import CharTokenizer` works).
"""

from __future__ import annotations

import codecs
import json
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import regex

from minigpt.files.atomic import write_text_atomic
from minigpt.tokenizer.bpe import PATTERNS, Pair, build_vocab, learn_merges, split
from minigpt.tokenizer.bpe_cache import ChunkEncoder
from minigpt.tokenizer.files import (
    FORMAT_VERSION,
    read_gpt2_files,
    read_json,
    read_tiktoken,
    recover_merges,
)


class BPETokenizer:
    """Byte-level BPE: any text encodes (unknown characters fall back to their UTF-8 bytes)."""

    def __init__(self, merges: dict[Pair, int], special_tokens: dict[str, int] | None = None,
                 pattern: str | None = "gpt2", byte_ids: list[int] | None = None, source: str = "tokenizer"):
        if pattern is not None and (not isinstance(pattern, str) or pattern not in PATTERNS):
            raise ValueError(f"{source}: pattern must be one of {sorted(PATTERNS)} or None, got {pattern!r}")
        self.merges = dict(merges)
        self.special_tokens = dict(special_tokens or {})
        self.pattern = pattern
        self.byte_ids = list(range(256)) if byte_ids is None else list(byte_ids)
        _validate(self.merges, self.special_tokens, self.byte_ids, source)
        vocab = build_vocab(self.merges, self.byte_ids)
        vocab.update({idx: name.encode("utf-8") for name, idx in self.special_tokens.items()})
        self._vocab = [vocab[i] for i in range(len(vocab))]  # id -> bytes
        self._split = regex.compile(PATTERNS[pattern]).findall if pattern else (lambda t: [t] if t else [])
        self._encoder = ChunkEncoder(self.merges, self.byte_ids, self._vocab[256:256 + len(self.merges)])
        self.train_tokens: list[int] = []             # after train(): the text's length after each merge

    # ---- building ----------------------------------------------------------------------------------------
    @classmethod
    def train(cls, text: str, vocab_size: int = 1024, pattern: str | None = "gpt2",
              special_tokens: Iterable[str] = ("<|endoftext|>",), verbose: bool = False) -> BPETokenizer:
        """Learn vocab_size - 256 - len(special_tokens) merges; ties go to the smallest pair (a, b).

        Special-token text in `text` is cut out first (never merged into other tokens). verbose: a tqdm bar.
        """
        special_tokens = list(dict.fromkeys(special_tokens))
        num_merges = vocab_size - 256 - len(special_tokens)
        if num_merges < 0:
            raise ValueError(f"vocab_size {vocab_size} is too small for 256 bytes + {len(special_tokens)} "
                             "special tokens")
        if pattern is not None and pattern not in PATTERNS:
            raise ValueError(f"pattern must be one of {sorted(PATTERNS)} or None, got {pattern!r}")
        text = _fix_surrogates(text)
        pieces = _split_specials(text, special_tokens)[::2] if special_tokens else [text]
        regex_pattern = PATTERNS[pattern] if pattern else None
        chunks: Counter[str] = Counter()
        for piece in pieces:
            chunks.update(split(piece, regex_pattern))
        merges, tokens = learn_merges({c.encode("utf-8"): n for c, n in chunks.items()}, num_merges,
                                      progress=verbose)
        first = 256 + num_merges
        tok = cls(merges, {name: first + i for i, name in enumerate(special_tokens)}, pattern)
        tok.train_tokens = tokens
        return tok

    @classmethod
    def from_tiktoken(cls, path: str | Path, special_tokens: dict[str, int] | None = None) -> BPETokenizer:
        """GPT-2 from a `.tiktoken` rank file; `<|endoftext|>` gets the next id (50256) unless given."""
        ranks = read_tiktoken(path)
        byte_ids, merges = recover_merges(ranks, source=str(path))
        specials = {"<|endoftext|>": len(ranks)} if special_tokens is None else special_tokens
        tok = cls(merges, specials, "gpt2", byte_ids, source=str(path))
        # recover_merges found each token's bytes BPE to two pieces using only the merges ranked below it,
        # and those two pieces are merged next: every token BPEs to itself, so pieces that are whole tokens
        # can be looked up instead of BPE'd (tiktoken does the same).
        tok._encoder.whole.update(ranks)
        return tok

    @classmethod
    def from_gpt2_files(cls, encoder_json: str | Path, vocab_bpe: str | Path) -> BPETokenizer:
        """GPT-2 from OpenAI's encoder.json + vocab.bpe (or Hugging Face's vocab.json + merges.txt)."""
        byte_ids, merges, specials = read_gpt2_files(encoder_json, vocab_bpe)
        return cls(merges, specials, "gpt2", byte_ids, source=f"{encoder_json} + {vocab_bpe}")

    @property
    def vocab_size(self) -> int:
        return len(self._vocab)

    # ---- encoding -----------------------------------------------------------------------------------------
    def encode_ordinary(self, text: str) -> list[int]:
        """Text -> ids, with special-token text treated as ordinary text."""
        try:
            return self._encoder.encode(self._split(text))           # cached; see bpe_cache.py
        except UnicodeEncodeError:                        # a lone surrogate is not a character:
            return self._encoder.encode(self._split(_fix_surrogates(text)))   # repair it, as tiktoken does

    def encode(self, text: str, allowed_special: str | set[str] | frozenset[str] = "none") -> list[int]:
        """Text -> ids. Special tokens are recognised only if allowed: "none" (default), "all" or a set."""
        if allowed_special == "none" or not self.special_tokens:
            return self.encode_ordinary(text)
        if allowed_special == "all":
            allowed = list(self.special_tokens)
        elif isinstance(allowed_special, set | frozenset | list | tuple):
            unknown = [s for s in allowed_special if s not in self.special_tokens]
            if unknown:
                raise ValueError(f"unknown special token(s) {unknown}; this tokenizer has "
                                 f"{sorted(self.special_tokens)}")
            allowed = list(allowed_special)
        else:
            raise ValueError(f'allowed_special must be "none", "all" or a set of names, '
                             f"got {allowed_special!r}")
        if not allowed:
            return self.encode_ordinary(text)
        ids: list[int] = []
        for k, piece in enumerate(_split_specials(text, allowed)):
            if k % 2:                                     # odd pieces are the special tokens themselves
                ids.append(self.special_tokens[piece])
            elif piece:
                ids += self.encode_ordinary(piece)
        return ids

    # ---- decoding -----------------------------------------------------------------------------------------
    def decode_bytes(self, ids: Iterable[int]) -> bytes:
        """Ids -> the exact bytes they stand for (may end mid-character)."""
        ids = list(ids)
        vocab = self._vocab
        try:
            if ids and min(ids) < 0:
                raise IndexError
            return b"".join([vocab[i] for i in ids])
        except (IndexError, TypeError):
            pos, bad = next((p, i) for p, i in enumerate(ids)
                            if not hasattr(i, "__index__") or not 0 <= i < len(vocab))
            bad = int(bad) if hasattr(bad, "__index__") else bad     # np.int64(5) prints as 5
            raise ValueError(f"token id {bad!r} at position {pos} is not in this tokenizer's vocabulary "
                             f"(0..{len(vocab) - 1})") from None

    def decode(self, ids: Iterable[int]) -> str:
        """Ids -> text; bytes that are not valid UTF-8 become U+FFFD (errors="replace", like tiktoken)."""
        return self.decode_bytes(ids).decode("utf-8", errors="replace")

    def stream_decoder(self) -> StreamDecoder:
        """An incremental decoder for sampling: push ids one at a time, get only complete characters back."""
        return StreamDecoder(self)

    # ---- files ---------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Human-readable JSON: one merge per line as [left, right, id, "the token's text"]."""
        def text(i: int) -> str:
            return self._vocab[i].decode("utf-8", errors="backslashreplace")

        merges = sorted(self.merges.items(), key=lambda item: item[1])
        lines = [json.dumps([a, b, idx, text(idx)], ensure_ascii=False) for (a, b), idx in merges]
        head = {"format": "minigpt-bpe", "version": FORMAT_VERSION, "pattern": self.pattern,
                "regex": PATTERNS.get(self.pattern or ""), "vocab_size": self.vocab_size,
                "special_tokens": self.special_tokens, "byte_ids": self.byte_ids}
        body = ",\n".join(f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in head.items())
        merges_text = '  "merges": [\n    ' + ",\n    ".join(lines) + "\n  ]\n"
        write_text_atomic(Path(path), "{\n" + body + ",\n" + merges_text + "}\n")

    @classmethod
    def load(cls, path: str | Path) -> BPETokenizer:
        data = read_json(Path(path), "minigpt-bpe", ["pattern", "special_tokens", "byte_ids", "merges"])
        if not isinstance(data["merges"], list):
            raise ValueError(f"{path}: 'merges' must be a list of [left_id, right_id, new_id, text]")
        merges: dict[Pair, int] = {}
        for k, item in enumerate(data["merges"]):
            if (not isinstance(item, list) or len(item) not in (3, 4)
                    or not all(type(x) is int for x in item[:3])):
                raise ValueError(f"{path}: merge #{k} must be [left_id, right_id, new_id, text], "
                                 f"got {item!r}")
            merges[(item[0], item[1])] = item[2]
        if len(merges) != len(data["merges"]):
            raise ValueError(f"{path}: the same pair is merged twice")
        specials = data["special_tokens"]
        if not isinstance(specials, dict) or not all(type(v) is int for v in specials.values()):
            raise ValueError(f"{path}: 'special_tokens' must map names to integer ids")
        if not isinstance(data["byte_ids"], list) or not all(type(v) is int for v in data["byte_ids"]):
            raise ValueError(f"{path}: 'byte_ids' must be a list of 256 integer ids")
        tok = cls(merges, specials, data["pattern"], data["byte_ids"], source=str(path))
        if data.get("vocab_size", tok.vocab_size) != tok.vocab_size:
            raise ValueError(f"{path}: says vocab_size {data['vocab_size']} but holds {tok.vocab_size} "
                             "tokens (256 bytes + merges + special tokens); the file was edited or truncated")
        return tok


class StreamDecoder:
    """Decodes ids one at a time, returning text only once its UTF-8 is complete (holds back 1-3 bytes)."""

    def __init__(self, tokenizer: BPETokenizer):
        self.tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def push(self, idx: int) -> str:
        """Add one id; return the characters it completed ("" while a character is still incomplete)."""
        return self._utf8.decode(self.tokenizer.decode_bytes([idx]))

    def flush(self) -> str:
        """End of stream: whatever is left (an incomplete character becomes U+FFFD)."""
        return self._utf8.decode(b"", final=True)


# ---- helpers --------------------------------------------------------------------------------------------
def _fix_surrogates(text: str) -> str:
    """Join surrogate pairs into their character and turn lone surrogates into U+FFFD (tiktoken's rule)."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _split_specials(text: str, names: Iterable[str]) -> list[str]:
    """[ordinary, special, ordinary, special, ..., ordinary]; longest names first so none hides another."""
    alternatives = "|".join(regex.escape(n) for n in sorted(names, key=len, reverse=True))
    return regex.split(f"({alternatives})", text)


def _validate(merges: dict[Pair, int], specials: dict[str, int], byte_ids: list[int], source: str) -> None:
    """Ids must be exactly 0..n-1: 256 bytes, merges in order (each from known ids), then special tokens."""
    if sorted(byte_ids) != list(range(256)):
        raise ValueError(f"{source}: byte_ids must list each of the ids 0..255 once")
    for k, ((a, b), idx) in enumerate(sorted(merges.items(), key=lambda item: item[1])):
        if idx != 256 + k:
            raise ValueError(f"{source}: merge ids must be 256, 257, ... in order; found {idx} where "
                             f"{256 + k} was expected")
        for part in (a, b):
            if not 0 <= part < idx:
                raise ValueError(f"{source}: merge ({a}, {b}) -> {idx} names id {part}, which is not defined "
                                 "before it")
    first = 256 + len(merges)
    if sorted(specials.values()) != list(range(first, first + len(specials))):
        raise ValueError(f"{source}: special token ids must follow the merges: "
                         f"{first}..{first + len(specials) - 1}, got {specials}")
    if any(not isinstance(name, str) or not name for name in specials):
        raise ValueError(f"{source}: special token names must be non-empty strings")
