"""The character tokenizer: one id per distinct character of a text, sorted (nanoGPT's shakespeare_char).

Simple and exact for a fixed corpus (tiny Shakespeare has 65 characters), but it cannot encode a character it
has not seen: that is a clear error naming the character, never a silent substitute. For arbitrary text use
the byte-level BPETokenizer. Import it as `from minigpt.tokenizer import CharTokenizer`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

from minigpt.files.atomic import write_text_atomic
from minigpt.tokenizer.files import FORMAT_VERSION, read_char_json


class CharTokenizer:
    """One id per distinct character of a training text, in sorted order (nanoGPT's shakespeare_char)."""

    def __init__(self, chars: Iterable[str]):
        self.chars = list(chars)
        if any(not isinstance(c, str) or len(c) != 1 for c in self.chars):
            raise ValueError("CharTokenizer needs single characters")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("CharTokenizer characters must be distinct")
        self.stoi = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> list[int]:
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            pos = next(i for i, c in enumerate(text) if c not in self.stoi)
            c = text[pos]
            raise ValueError(f"character {c!r} (U+{ord(c):04X}) at position {pos} is not in this tokenizer's "
                             f"{self.vocab_size} characters; build the tokenizer from text that contains it"
                             ) from None

    def encode_ordinary(self, text: str) -> list[int]:
        """The same as encode: a character tokenizer has no special tokens (BPETokenizer's name for it)."""
        return self.encode(text)

    def decode(self, ids: Iterable[int]) -> str:
        ids = list(ids)
        for pos, i in enumerate(ids):
            if not (isinstance(i, int) or hasattr(i, "__index__")) or not 0 <= i < self.vocab_size:
                i = int(i) if hasattr(i, "__index__") else i
                raise ValueError(f"token id {i!r} at position {pos} is not in 0..{self.vocab_size - 1}")
        return "".join(self.chars[i] for i in ids)

    def save(self, path: str | Path) -> None:
        data = {"format": "minigpt-char", "version": FORMAT_VERSION, "chars": self.chars}
        write_text_atomic(Path(path), json.dumps(data, ensure_ascii=False, indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> CharTokenizer:
        """A file written by save(); every field is checked (files.read_char_json), errors name the file."""
        return cls(read_char_json(Path(path)))
