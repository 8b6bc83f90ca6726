"""Lesson 01 exercise: write a byte-level BPE tokenizer in five functions, in four steps.

    step 1  get_stats         count adjacent pairs
    step 2  merge             merge a pair, left to right
    step 3  train             learn the merges
    step 4  encode, decode    text <-> ids with GPT-2's merges

Ids 0..255 are the raw bytes (id = byte value); every merge adds one id, 256, 257, ... in the order it was
learned, stored as merges[(a, b)] = new_id. Grade your file, one step or all, and ask for hints:

    minigpt lesson check 01 --impl lessons/01_tokenizer/exercise.py [--step K]
    minigpt lesson hint 01 K          # the first hint nudges, the last nearly gives it away

The checker hands encode/decode GPT-2's merges translated to this byte numbering (GPT-2 numbers its byte
tokens in another order; the checker translates for you) and compares with tiktoken's ids: the first
1,000 tokens always (shipped in reference/), all 50,000 when ../shared/data/gpt2.tiktoken is there.
Only `regex` (the third-party module, for \\p{L} and friends) and the standard library are needed.
What you do not need here: special tokens, saving, streaming (minigpt/tokenizer/bpe_tokenizer.py has those).
"""

from __future__ import annotations


def get_stats(ids: list[int], counts: dict[tuple[int, int], int] | None = None) -> dict[tuple[int, int], int]:
    """Count every adjacent pair in ids, adding to `counts` when given (so you can sum over chunks).
    (step 1)

    Pairs overlap: [7, 7, 7] has the pair (7, 7) twice. [1, 2, 1, 2] -> {(1, 2): 2, (2, 1): 1}.
    """
    raise NotImplementedError("step 1 not started: get_stats")


def merge(ids: list[int], pair: tuple[int, int], idx: int) -> list[int]:
    """Return a new list where each occurrence of pair, scanning left to right, is replaced by idx.   (step 2)

    Occurrences do not overlap: merge([7, 7, 7], (7, 7), 300) -> [300, 7].
    """
    raise NotImplementedError("step 2 not started: merge")


def train(text: str, vocab_size: int, pattern: str | None = None) -> dict[tuple[int, int], int]:
    """Learn vocab_size - 256 merges from text; return {(a, b): new_id} with new ids 256, 257, ...   (step 3)

    Split the text with regex.findall(pattern, text) first (None: the whole text is one chunk); each chunk
    becomes its UTF-8 bytes, and merges never cross chunks. At every step the pair with the highest count
    summed over all chunks is merged everywhere; if several pairs tie, the smallest (a, b) wins.
    """
    raise NotImplementedError("step 3 not started: train")


def encode(text: str, merges: dict[tuple[int, int], int], pattern: str | None = None) -> list[int]:
    """Text -> ids: split with the regex, take each chunk's UTF-8 bytes, then apply the merges the way
    training would have: the result must equal tiktoken's ids for GPT-2's merges.   (step 4)
    """
    raise NotImplementedError("step 4 not started: encode")


def decode(ids: list[int], merges: dict[tuple[int, int], int]) -> str:
    """Ids -> text: the UTF-8 text the ids stand for; broken UTF-8 (ids that end mid-character) becomes
    U+FFFD, as bytes.decode(errors="replace") does.   (step 4)
    """
    raise NotImplementedError("step 4 not started: decode")
