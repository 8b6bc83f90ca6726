"""BPETokenizer: a byte-level BPE tokenizer with tiktoken's Encoding surface; it reproduces GPT-2 exactly.

    tok = BPETokenizer.train(text, vocab_size=1024, pattern="gpt2", special_tokens=("<|endoftext|>",))
    gpt2 = BPETokenizer.from_tiktoken("gpt2.tiktoken")       # same ids as tiktoken's GPT-2 encoding
    gpt4 = BPETokenizer.from_tiktoken("cl100k_base.tiktoken", pattern="gpt4")   # given that file
    ids = tok.encode(text); text = tok.decode(ids)

Design choices, stated once:
- Special tokens, as tiktoken: `encode(text)` raises ValueError if the text contains a special token's
  text (a user must never be able to smuggle in a control token, and silently encoding it as plain text
  hides the problem). `allowed_special="all"` or a set of names makes them control tokens (unknown names
  are ignored, as tiktoken does); `disallowed_special=()` or `encode_ordinary` makes them ordinary text
  (GPT-2: `<|endoftext|>` is 7 tokens). Special ids may be any ids not used by bytes or merges.
- Lone surrogates (code points that are not characters, from badly decoded text) become U+FFFD before
  encoding and surrogate pairs are joined, exactly as tiktoken does.
- Ids. 0..255 + len(merges) - 1 are the 256 bytes then the merges in the order they were learned; special
  tokens follow (trained) or sit anywhere above (GPT-4's files leave gaps). Byte b's id is usually b, but
  GPT-2's byte tokens come in another order (files.bytes_to_unicode), so byte -> id is a table here.
  `vocab_size` = `n_vocab` = the largest id + 1 (what an embedding table needs).
- Engines. With `minigpt.engines.enabled()` (the default), training is bpe_engine.learn_merges and encoding
  goes through bpe_cache.ChunkEncoder; switched off, the definitions in bpe.py run (train_chunks and
  encode_chunk), slowly and with the same results.

What this file does not do: the merge algorithm (bpe.py, bpe_engine.py), the encoding caches (bpe_cache.py),
parsing files (files.py), or the character tokenizer (char.py).
"""

from __future__ import annotations

import codecs
import json
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Literal

import regex

from minigpt import engines
from minigpt.files.atomic import write_text_atomic
from minigpt.tokenizer import bpe
from minigpt.tokenizer.bpe import PATTERN_ALIASES, PATTERNS, Pair, build_vocab, split
from minigpt.tokenizer.bpe_cache import CACHE_LIMIT, ChunkEncoder
from minigpt.tokenizer.bpe_engine import learn_merges
from minigpt.tokenizer.files import (
    FORMAT_VERSION,
    read_bpe_json,
    read_gpt2_files,
    read_tiktoken,
    recover_merges,
)

MAX_ID = 2**31 - 1                       # ids are stored as int32 / uint32 downstream
# tiktoken's special tokens for its published rank files, keyed by the number of ranks in the file
KNOWN_SPECIALS = {
    50256: {"<|endoftext|>": 50256},                                                    # gpt2 / r50k_base
    100256: {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259,
             "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276},                       # cl100k_base
    199998: {"<|endoftext|>": 199999, "<|endofprompt|>": 200018},                        # o200k_base
}
AllowedSpecial = Literal["all"] | Collection[str]


def pattern_name(pattern: object, source: str = "tokenizer") -> str | None:
    """A split pattern's canonical name ("gpt2", "gpt4", "o200k") from it or an alias (cl100k, ...)."""
    if pattern is None:
        return None
    if isinstance(pattern, str):
        name = PATTERN_ALIASES.get(pattern, pattern)
        if name in PATTERNS:
            return name
    raise ValueError(f"{source}: pattern must be one of {sorted(PATTERNS)} (or {sorted(PATTERN_ALIASES)}) "
                     f"or None, got {pattern!r}")


class BPETokenizer:
    """Byte-level BPE: any text encodes (unknown characters fall back to their UTF-8 bytes)."""

    def __init__(self, merges: dict[Pair, int], special_tokens: dict[str, int] | None = None,
                 pattern: str | None = "gpt2", byte_ids: list[int] | None = None, source: str = "tokenizer"):
        self.pattern = pattern_name(pattern, source)
        self.merges = dict(merges)
        self.special_tokens = dict(special_tokens or {})
        self.byte_ids = list(range(256)) if byte_ids is None else list(byte_ids)
        _validate(self.merges, self.special_tokens, self.byte_ids, source)
        vocab = build_vocab(self.merges, self.byte_ids)
        vocab.update({idx: name.encode("utf-8") for name, idx in self.special_tokens.items()})
        self._vocab: list[bytes | None] = [vocab.get(i) for i in range(max(vocab) + 1)]   # id -> bytes
        self._bytes_to_id = {token: i for i, token in enumerate(self._vocab[:256 + len(self.merges)])}
        self._regex = regex.compile(PATTERNS[self.pattern]) if self.pattern else None
        self._table = bytes(self.byte_ids)                # bytes.translate: byte -> its id, in one call
        self._encoder = ChunkEncoder(self.merges, self.byte_ids, [vocab[i] for i in self.merges.values()])
        self.train_tokens: list[int] = []             # after train(): the text's length after each merge

    # ---- building ----------------------------------------------------------------------------------------
    @classmethod
    def train(cls, text: str, vocab_size: int = 1024, pattern: str | None = "gpt2",
              special_tokens: Iterable[str] = ("<|endoftext|>",), verbose: bool = False) -> BPETokenizer:
        """Learn vocab_size - 256 - len(special_tokens) merges; ties go to the smallest pair (a, b).

        Special-token text in `text` is cut out first (never merged into other tokens); the special tokens
        get the ids after the merges. verbose: a tqdm bar (engines only).
        """
        special_tokens = list(dict.fromkeys(special_tokens))
        num_merges = vocab_size - 256 - len(special_tokens)
        if num_merges < 0:
            raise ValueError(f"vocab_size {vocab_size} is too small for 256 bytes + {len(special_tokens)} "
                             "special tokens")
        name = pattern_name(pattern)
        text = _fix_surrogates(text)
        pieces = _split_specials(text, special_tokens)[::2] if special_tokens else [text]
        regex_pattern = PATTERNS[name] if name else None
        chunks = [chunk.encode("utf-8") for piece in pieces for chunk in split(piece, regex_pattern)]
        if engines.enabled():
            merges, tokens = learn_merges(Counter(chunks), num_merges, progress=verbose)
        else:
            merges, tokens = bpe.train_chunks(chunks, num_merges)
        first = 256 + num_merges
        tok = cls(merges, {name: first + i for i, name in enumerate(special_tokens)}, pattern)
        tok.train_tokens = tokens
        return tok

    @classmethod
    def from_tiktoken(cls, path: str | Path, special_tokens: dict[str, int] | None = None,
                      pattern: str = "gpt2") -> BPETokenizer:
        """A `.tiktoken` rank file (gpt2, or cl100k_base with pattern="gpt4", o200k_base with "o200k").

        special_tokens: default tiktoken's for that file (recognised by its size), else
        {"<|endoftext|>": number of ranks}.
        """
        ranks = read_tiktoken(path)
        byte_ids, merges = recover_merges(ranks, source=str(path))
        if special_tokens is None:
            special_tokens = KNOWN_SPECIALS.get(len(ranks), {"<|endoftext|>": len(ranks)})
        tok = cls(merges, special_tokens, pattern, byte_ids, source=str(path))
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
        """The largest id + 1 (the rows an embedding table needs); equals n_vocab."""
        return len(self._vocab)

    @property
    def n_vocab(self) -> int:
        """tiktoken's name for vocab_size: max_token_value + 1."""
        return len(self._vocab)

    @property
    def max_token_value(self) -> int:
        return len(self._vocab) - 1

    @property
    def eot_token(self) -> int:
        """The id of <|endoftext|>."""
        if "<|endoftext|>" not in self.special_tokens:
            raise ValueError(f"this tokenizer has no <|endoftext|> token (its special tokens: "
                             f"{sorted(self.special_tokens)})")
        return self.special_tokens["<|endoftext|>"]

    @property
    def special_tokens_set(self) -> set[str]:
        return set(self.special_tokens)

    def is_special_token(self, token: int) -> bool:
        return token in self.special_tokens.values()

    # ---- encoding -----------------------------------------------------------------------------------------
    def encode_ordinary(self, text: str) -> list[int]:
        """Text -> ids, with special-token text treated as ordinary text (tiktoken's encode_ordinary)."""
        text = _fix_surrogates(text)                      # a lone surrogate is not a character: U+FFFD
        chunks = self._regex.findall(text) if self._regex else ([text] if text else [])
        if engines.enabled():
            return self._encoder.encode(chunks)           # cached, O(n log n) per chunk; see bpe_cache.py
        table, merges = self._table, self.merges
        return [i for chunk in chunks for i in bpe.encode_chunk(list(chunk.encode("utf-8").translate(table)),
                                                                  merges)]

    def encode(self, text: str, *, allowed_special: AllowedSpecial = frozenset(),
               disallowed_special: AllowedSpecial = "all") -> list[int]:
        """Text -> ids, with tiktoken's rules for special-token text:

        allowed_special     "all" or names: their text becomes the special token (unknown names are ignored)
        disallowed_special  "all" (the default: every special token not allowed) or names: their text in
                            `text` raises ValueError; () lets it through as ordinary text
        """
        allowed = self._allowed(allowed_special)
        if disallowed_special == "all":
            disallowed = set(self.special_tokens) - allowed
        elif isinstance(disallowed_special, str) or not isinstance(disallowed_special, Collection):
            raise ValueError(f'disallowed_special must be "all" or a collection of names, '
                             f"got {disallowed_special!r}")
        else:
            disallowed = set(disallowed_special)
        if disallowed and (found := _find_any(text, disallowed)) is not None:
            raise ValueError(f"the text contains {found!r}, a special token's text. Pass allowed_special="
                             f"{{{found!r}}} (or \"all\") to encode it as the special token, or "
                             "disallowed_special=() (or use encode_ordinary) to encode it as ordinary text")
        if not allowed:
            return self.encode_ordinary(text)
        ids: list[int] = []
        for k, piece in enumerate(_split_specials(text, allowed)):
            if k % 2:                                     # odd pieces are the special tokens themselves
                ids.append(self.special_tokens[piece])
            elif piece:
                ids += self.encode_ordinary(piece)
        return ids

    def encode_batch(self, texts: Sequence[str], *, allowed_special: AllowedSpecial = frozenset(),
                     disallowed_special: AllowedSpecial = "all") -> list[list[int]]:
        """encode() of each text (one thread: the caches are shared)."""
        return [self.encode(t, allowed_special=allowed_special, disallowed_special=disallowed_special)
                for t in texts]

    def encode_ordinary_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.encode_ordinary(t) for t in texts]

    def encode_bytes(self, data: bytes) -> list[int]:
        """Raw bytes -> ids, valid UTF-8 or not; decode_bytes gives the same bytes back.

        Valid UTF-8 encodes exactly as encode_ordinary(data.decode()). Bytes that are not UTF-8 are carried
        through the regex split as Python's surrogate escapes (which the patterns treat as punctuation) and
        BPE'd as the raw bytes they are. (tiktoken's private _encode_bytes agrees on valid UTF-8 only.)
        """
        text = bytes(data).decode("utf-8", errors="surrogateescape")
        chunks = self._regex.findall(text) if self._regex else ([text] if text else [])
        raw = [chunk.encode("utf-8", errors="surrogateescape") for chunk in chunks]
        if engines.enabled():
            if len(self._encoder.pieces) > CACHE_LIMIT:
                self._encoder.pieces.clear()
            return [i for chunk in raw for i in self._encoder.pieces[chunk]]  # the piece cache BPEs raw bytes
        return [i for chunk in raw for i in bpe.encode_chunk(list(chunk.translate(self._table)), self.merges)]

    def encode_single_token(self, text_or_bytes: str | bytes) -> int:
        """The id of one token given its text or bytes (special tokens included); KeyError if none."""
        if isinstance(text_or_bytes, str):
            if text_or_bytes in self.special_tokens:
                return self.special_tokens[text_or_bytes]
            text_or_bytes = text_or_bytes.encode("utf-8")
        idx = self._bytes_to_id.get(bytes(text_or_bytes))
        if idx is None:
            name = text_or_bytes.decode("utf-8", errors="replace")
            idx = self.special_tokens.get(name)
        if idx is None:
            raise KeyError(f"{text_or_bytes!r} is not a single token of this tokenizer")
        return idx

    def _allowed(self, allowed_special: AllowedSpecial) -> set[str]:
        if allowed_special == "all":
            return set(self.special_tokens)
        if isinstance(allowed_special, str) or not isinstance(allowed_special, Collection):
            raise ValueError(f'allowed_special must be "all" or a collection of special-token names, '
                             f"got {allowed_special!r}")
        return set(allowed_special) & set(self.special_tokens)     # unknown names ignored, as tiktoken

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
                            if not hasattr(i, "__index__") or not 0 <= i < len(vocab) or vocab[i] is None)
            bad = int(bad) if hasattr(bad, "__index__") else bad     # np.int64(5) prints as 5
            raise ValueError(f"token id {bad!r} at position {pos} is not in this tokenizer's vocabulary "
                             f"(0..{len(vocab) - 1}{', with gaps' if None in vocab else ''})") from None

    def decode(self, ids: Iterable[int], errors: str = "replace") -> str:
        """Ids -> text; bytes that are not valid UTF-8 become U+FFFD (errors="replace", like tiktoken)."""
        return self.decode_bytes(ids).decode("utf-8", errors=errors)

    def decode_single_token_bytes(self, token: int) -> bytes:
        """One id -> its bytes (special tokens included); KeyError if the id is not in the vocabulary."""
        if not hasattr(token, "__index__") or not 0 <= token < len(self._vocab) or self._vocab[token] is None:
            raise KeyError(f"token id {token!r} is not in this tokenizer's vocabulary")
        return self._vocab[token]

    def decode_tokens_bytes(self, ids: Iterable[int]) -> list[bytes]:
        return [self.decode_single_token_bytes(i) for i in ids]

    def decode_with_offsets(self, ids: Sequence[int]) -> tuple[str, list[int]]:
        """(text, offsets): offsets[k] is the index in text of the character where token k starts (of the
        character holding its first byte, if the token starts mid-character). Raises UnicodeDecodeError if
        the ids do not decode to valid UTF-8 (tiktoken's rule)."""
        token_bytes = self.decode_tokens_bytes(ids)
        text_len, offsets = 0, []
        for token in token_bytes:
            offsets.append(max(0, text_len - (0x80 <= token[0] < 0xC0)) if token else text_len)
            text_len += sum(1 for c in token if not 0x80 <= c < 0xC0)   # each non-continuation byte: 1 char
        return b"".join(token_bytes).decode("utf-8", errors="strict"), offsets

    def stream_decoder(self) -> StreamDecoder:
        """An incremental decoder for sampling: push ids one at a time, get only complete characters back."""
        return StreamDecoder(self)

    # ---- files ---------------------------------------------------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Human-readable JSON: one merge per line as [left, right, id, "the token's text"]."""
        def text(i: int) -> str:
            return (self._vocab[i] or b"").decode("utf-8", errors="backslashreplace")

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
        """A file written by save(); every field is checked (files.read_bpe_json), errors name the field."""
        data = read_bpe_json(Path(path))
        tok = cls(data["merges"], data["special_tokens"], data["pattern"], data["byte_ids"], source=str(path))
        if data["vocab_size"] != tok.vocab_size:
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


def _find_any(text: str, names: Iterable[str]) -> str | None:
    """The first of `names` found in text (leftmost; longest at the same place), or None."""
    alternatives = "|".join(regex.escape(n) for n in sorted(names, key=len, reverse=True) if n)
    match = regex.search(alternatives, text) if alternatives else None
    return match.group() if match else None


def _validate(merges: dict[Pair, int], specials: dict[str, int], byte_ids: list[int], source: str) -> None:
    """256 byte ids, then merges 256, 257, ... in order (each from known ids); special ids anywhere above."""
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
    if any(not isinstance(name, str) or not name for name in specials):
        raise ValueError(f"{source}: special token names must be non-empty strings")
    ids = list(specials.values())
    bad = [i for i in ids if type(i) is not int or not first <= i <= MAX_ID]
    if bad:
        raise ValueError(f"{source}: special token ids must be integers from {first} (after the bytes and "
                         f"merges) to {MAX_ID}, got {bad[0]!r}")
    if len(set(ids)) != len(ids):
        raise ValueError(f"{source}: two special tokens share an id: {specials}")
    if max(ids, default=0) > first + len(ids) + (1 << 20):
        raise ValueError(f"{source}: special token id {max(ids)} leaves more than 2**20 unused ids after the "
                         f"merges (up to {first - 1}); that is not a real vocabulary")
