"""Byte-pair encoding, the definitions: count adjacent pairs, merge the most frequent, repeat.

Everything here works on token ids, where ids 0..255 are the raw bytes (id = byte value) and every merge
adds one id: merges[(a, b)] = new_id, with new ids 256, 257, ... in the order they were learned. A merge's
id is also its priority when encoding: the lower the id, the earlier it was learned, the sooner it applies.

The lesson functions (lesson 01's exercise.py has the same signatures and contracts):

    get_stats(ids)                   -> {(a, b): count}   adjacent pairs, overlapping ("aaa" has 2 x (a, a))
    merge(ids, pair, idx)            -> ids with every non-overlapping (a, b), left to right, replaced by idx
    train(text, vocab_size, pattern) -> merges            the most frequent pair first; TIE-BREAK: among
                                                          pairs with the same count, the smallest (a, b)
    encode(text, merges, pattern)    -> ids               split with the regex, then encode_chunk each chunk
    decode(ids, merges)              -> str               bytes joined, invalid UTF-8 replaced by U+FFFD

and the two loops they are built on, `train_chunks` and `encode_chunk`. These are the definitions: short,
slow, obviously right. minigpt/tokenizer/bpe_engine.py holds the fast engines that must equal them
(`learn_merges` for train_chunks, `encode_chunk_fast` for encode_chunk); BPETokenizer uses the engines unless
`minigpt.engines` is switched off, and tests/test_tokenizer_engine.py holds them equal.

What this file does not do: special tokens, file formats, caching, speed (bpe_tokenizer.py, files.py,
bpe_cache.py, bpe_engine.py). The lesson functions assume id = byte value; only build_vocab takes GPT-2's
other byte order (byte_ids).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from itertools import pairwise

import regex

# GPT-2's pre-tokenization regex: contractions, letters, numbers, other symbols - each may take one leading
# space - and whitespace runs, which leave their last space to the next word. This is openai/gpt-2's
# encoder.py pattern with the contractions grouped, as karpathy/minbpe writes it (minbpe/regex.py).
# tiktoken (r50k_base) writes the same split with possessive quantifiers (++), `\s++$` and a final `\s`;
# the two give identical chunks (../shared/NOTES.md 1.1; tests/test_tokenizer.py checks it), and Python's
# `regex` runs this form 15-35% faster on the two corpora.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_PATTERN_TIKTOKEN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
# GPT-4's (tiktoken's cl100k_base, verbatim): case-insensitive contractions, a letter run may take one
# leading non-letter, at most 3 digits per chunk, newlines kept apart from other whitespace.
GPT4_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+"""
                r"""| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
# GPT-4o's (tiktoken's o200k_base, verbatim): words split at case changes (camelCase -> camel, Case), the
# contraction stays with its word, "/" joins a punctuation run's trailing newlines.
O200K_PATTERN = "|".join([
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
    r"""\p{N}{1,3}""",
    r""" ?[^\s\p{L}\p{N}]+[\r\n/]*""",
    r"""\s*[\r\n]+""",
    r"""\s+(?!\S)""",
    r"""\s+""",
])
PATTERNS = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN, "o200k": O200K_PATTERN}
PATTERN_ALIASES = {"r50k": "gpt2", "cl100k": "gpt4", "cl100k_base": "gpt4", "o200k_base": "o200k"}

NO_MERGE = sys.maxsize  # the "priority" of a pair that is not a merge: larger than every id

Pair = tuple[int, int]


def get_stats(ids: list[int], counts: dict[Pair, int] | None = None) -> dict[Pair, int]:
    """How often each adjacent pair occurs in ids (added to `counts` if given).

    [1, 2, 1, 2] -> {(1, 2): 2, (2, 1): 1}
    """
    counts = {} if counts is None else counts
    for pair in pairwise(ids):
        counts[pair] = counts.get(pair, 0) + 1
    return counts


def merge(ids: list[int], pair: Pair, idx: int) -> list[int]:
    """Replace every occurrence of pair in ids by idx, left to right: (a, a) in a,a,a -> idx, a."""
    out: list[int] = []
    i, n = 0, len(ids)
    while i < n:
        if i < n - 1 and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(idx)   # the pair becomes one token ...
            i += 2            # ... and both of its halves are consumed
        else:
            out.append(ids[i])
            i += 1
    return out


def split(text: str, pattern: str | None) -> list[str]:
    """Pre-tokenize: the regex's matches, in order (merges never cross them); no pattern -> [text]."""
    if pattern is None:
        return [text] if text else []
    return regex.findall(pattern, text)


def best_pair(stats: dict[Pair, int]) -> Pair:
    """The pair to merge next: the highest count; among equal counts the smallest pair (a, b), comparing
    a first, then b. This tie-break is part of the definition: bpe_engine.learn_merges uses the same."""
    return min(stats, key=lambda pair: (-stats[pair], pair))


def train_chunks(chunks: Iterable[bytes], num_merges: int, first_id: int = 256
                 ) -> tuple[dict[Pair, int], list[int]]:
    """The training loop: count pairs over all chunks, merge the best pair everywhere, repeat.

    chunks: every chunk of the text (repeats included) as bytes. Returns (merges, tokens), where tokens[k]
    is the text's length in tokens after k + 1 merges. Raises ValueError when no pair is left.
    """
    words = [list(chunk) for chunk in chunks]
    merges: dict[Pair, int] = {}
    tokens: list[int] = []
    for step in range(num_merges):
        stats: dict[Pair, int] = {}
        for ids in words:
            get_stats(ids, stats)
        if not stats:
            raise ValueError(f"the training text has no pairs left to merge after {step} merges: use "
                             f"a longer text or a smaller vocab_size (at most {first_id + step} + specials)")
        pair = best_pair(stats)
        idx = first_id + step
        merges[pair] = idx
        words = [merge(ids, pair, idx) for ids in words]
        tokens.append(sum(map(len, words)))
    return merges, tokens


def train(text: str, vocab_size: int, pattern: str | None = None) -> dict[Pair, int]:
    """Learn vocab_size - 256 merges from text, split first with the regex `pattern` (None: no split).

    Each step merges the pair with the highest count summed over all chunks; ties go to the smallest pair
    (a, b) (see best_pair). Raises ValueError when the text runs out of pairs before reaching vocab_size.
    """
    if vocab_size < 256:
        raise ValueError(f"vocab_size must be at least 256 (one id per byte), got {vocab_size}")
    merges, _ = train_chunks([chunk.encode("utf-8") for chunk in split(text, pattern)], vocab_size - 256)
    return merges


def encode_chunk(ids: list[int], merges: dict[Pair, int]) -> list[int]:
    """One chunk's ids -> its BPE ids: merge the adjacent pair with the lowest merge id, repeat until no
    adjacent pair is a merge. (Ties are copies of the same pair; merge() takes them left to right.)"""
    ids = list(ids)
    while len(ids) >= 2:
        pair = min(pairwise(ids), key=lambda p: merges.get(p, NO_MERGE))   # the earliest-learned pair
        if pair not in merges:
            break
        ids = merge(ids, pair, merges[pair])
    return ids


def encode(text: str, merges: dict[Pair, int], pattern: str | None = None) -> list[int]:
    """Text -> ids: split with the regex, turn each chunk into its UTF-8 bytes, apply merges by priority."""
    ids: list[int] = []
    seen: dict[str, list[int]] = {}          # words repeat: each distinct chunk is merged only once
    for chunk in split(text, pattern):
        if chunk not in seen:
            seen[chunk] = encode_chunk(list(chunk.encode("utf-8")), merges)
        ids.extend(seen[chunk])
    return ids


def build_vocab(merges: dict[Pair, int], byte_ids: list[int] | None = None) -> dict[int, bytes]:
    """id -> the bytes it stands for. byte_ids[b] is the id of byte b (default: b itself)."""
    vocab = {(b if byte_ids is None else byte_ids[b]): bytes([b]) for b in range(256)}
    for (a, b), idx in sorted(merges.items(), key=lambda item: item[1]):  # in the order they were learned
        vocab[idx] = vocab[a] + vocab[b]
    return vocab


def decode(ids: Iterable[int], merges: dict[Pair, int]) -> str:
    """Ids -> text: look up each id's bytes, join, decode UTF-8 (broken sequences become U+FFFD)."""
    vocab = build_vocab(merges)
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
