"""Lesson 01 exercise: write a byte-level BPE tokenizer in five functions.

Ids 0..255 are the raw bytes (id = byte value); every merge adds one id, 256, 257, ... in the order it was
learned, stored as merges[(a, b)] = new_id. Grade your file with

    minigpt lesson check 01 --impl lessons/01_tokenizer/exercise.py

The checker hands encode/decode GPT-2's 50,000 merges translated to this byte numbering (GPT-2 numbers
its byte tokens in another order; the checker translates for you) and compares with tiktoken's ids.
Only `regex` (the third-party module, for \\p{L} and friends) and the standard library are needed.
What you do not need here: special tokens, saving, streaming (minigpt/tokenizer/bpe_tokenizer.py has those).
"""

from __future__ import annotations


def get_stats(ids: list[int], counts: dict[tuple[int, int], int] | None = None) -> dict[tuple[int, int], int]:
    """Count every adjacent pair in ids, adding to `counts` when given (so you can sum over chunks).

    Pairs overlap: [7, 7, 7] has the pair (7, 7) twice. [1, 2, 1, 2] -> {(1, 2): 2, (2, 1): 1}.
    """
    raise NotImplementedError("get_stats: count the adjacent pairs, e.g. with zip(ids, ids[1:])")


def merge(ids: list[int], pair: tuple[int, int], idx: int) -> list[int]:
    """Return a new list where each occurrence of pair, scanning left to right, is replaced by idx.

    Occurrences do not overlap: merge([7, 7, 7], (7, 7), 300) -> [300, 7].
    """
    raise NotImplementedError("merge: walk the list; on a match append idx and skip two, else copy one")


def train(text: str, vocab_size: int, pattern: str | None = None) -> dict[tuple[int, int], int]:
    """Learn vocab_size - 256 merges from text; return {(a, b): new_id} with new ids 256, 257, ...

    Split the text with regex.findall(pattern, text) first (None: the whole text is one chunk); each chunk
    becomes its UTF-8 bytes, and merges never cross chunks. At every step take the pair with the highest
    count summed over all chunks; if several pairs tie, take the smallest (a, b). Merge it everywhere.
    """
    raise NotImplementedError("train: loop vocab_size - 256 times: get_stats over all chunks, pick, merge")


def encode(text: str, merges: dict[tuple[int, int], int], pattern: str | None = None) -> list[int]:
    """Text -> ids: split with the regex, take each chunk's UTF-8 bytes, then apply merges.

    Within a chunk, repeatedly merge the adjacent pair with the lowest merge id (the earliest learned)
    until no adjacent pair is in merges.
    """
    raise NotImplementedError("encode: per chunk, min(pairs, key=lambda p: merges.get(p, inf)) until none")


def decode(ids: list[int], merges: dict[tuple[int, int], int]) -> str:
    """Ids -> text: rebuild each id's bytes from the merges, join them, decode UTF-8 with errors="replace"."""
    raise NotImplementedError("decode: vocab = {i: bytes([i])}, then vocab[new] = vocab[a] + vocab[b]")
