"""Byte-pair encoding, the algorithm: count adjacent pairs, merge the most frequent, repeat.

Everything here works on token ids, where ids 0..255 are the raw bytes (id = byte value) and every merge
adds one id: merges[(a, b)] = new_id, with new ids 256, 257, ... in the order they were learned. A merge's
id is also its priority when encoding: the lower the id, the earlier it was learned, the sooner it applies.

The five lesson functions (lesson 01's exercise.py has the same signatures):

    get_stats(ids)                  -> {(a, b): count}     adjacent pairs, overlapping ("aaa" has 2 x (a, a))
    merge(ids, pair, idx)           -> ids with every non-overlapping (a, b), left to right, replaced by idx
    train(text, vocab_size, pattern)-> merges              most frequent pair first; ties: smallest (a, b)
    encode(text, merges, pattern)   -> ids                 split with the regex, then merge by priority
    decode(ids, merges)             -> str                 bytes joined, invalid UTF-8 replaced by U+FFFD

and the two fast engines the BPETokenizer class (minigpt/tokenizer/bpe_tokenizer.py) is built on:
`learn_merges`, which
keeps pair counts up to date incrementally instead of recounting after every merge, and `encode_chunk`.

What this file does not do: special tokens, file formats, caching (tokenizer.py, bpe_files.py, bpe_cache.py).
The lesson functions assume id = byte value; only build_vocab takes GPT-2's other byte order (byte_ids).
"""

from __future__ import annotations

import heapq
import sys
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import pairwise, repeat

import regex

# GPT-2's pre-tokenization regex: contractions, letters, numbers, other symbols - each may take one leading
# space - and whitespace runs, which leave their last space to the next word. This is openai/gpt-2's
# encoder.py pattern with the contractions grouped, as karpathy/minbpe writes it (minbpe/regex.py).
# tiktoken (r50k_base) writes the same split with possessive quantifiers (++), `\s++$` and a final `\s`;
# the two give identical chunks (../shared/NOTES.md 1.1; tests/test_tokenizer.py checks it), and Python's
# `regex` runs this form 15-35% faster on the two corpora.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
GPT2_PATTERN_TIKTOKEN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""
# GPT-4's (cl100k_base): case-insensitive contractions, at most 3 digits per chunk, newlines kept apart.
GPT4_PATTERN = (r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+"""
                r"""| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s""")
PATTERNS = {"gpt2": GPT2_PATTERN, "gpt4": GPT4_PATTERN}

NO_MERGE = sys.maxsize  # the "priority" of a pair that is not a merge: larger than every id

Pair = tuple[int, int]


# ---- the lesson functions ---------------------------------------------------------------------------------
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


def train(text: str, vocab_size: int, pattern: str | None = None) -> dict[Pair, int]:
    """Learn vocab_size - 256 merges from text, split first with the regex `pattern` (None: no split).

    Each step merges the pair with the highest count over all chunks; ties go to the smallest pair (a, b).
    Raises ValueError when the text runs out of pairs before reaching vocab_size.
    """
    if vocab_size < 256:
        raise ValueError(f"vocab_size must be at least 256 (one id per byte), got {vocab_size}")
    chunks = Counter(split(text, pattern))
    merges, _ = learn_merges({c.encode("utf-8"): n for c, n in chunks.items()}, vocab_size - 256)
    return merges


def encode(text: str, merges: dict[Pair, int], pattern: str | None = None) -> list[int]:
    """Text -> ids: split with the regex, turn each chunk into its UTF-8 bytes, apply merges by priority."""
    ids: list[int] = []
    seen: dict[str, list[int]] = {}          # words repeat: each distinct chunk is merged only once
    for chunk in split(text, pattern):
        if chunk not in seen:
            seen[chunk] = encode_chunk(list(chunk.encode("utf-8")), merges)
        ids.extend(seen[chunk])
    return ids


def decode(ids: Iterable[int], merges: dict[Pair, int]) -> str:
    """Ids -> text: look up each id's bytes, join, decode UTF-8 (broken sequences become U+FFFD)."""
    vocab = build_vocab(merges)
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")


# ---- the engines -------------------------------------------------------------------------------------------
def build_vocab(merges: dict[Pair, int], byte_ids: list[int] | None = None) -> dict[int, bytes]:
    """id -> the bytes it stands for. byte_ids[b] is the id of byte b (default: b itself)."""
    vocab = {(b if byte_ids is None else byte_ids[b]): bytes([b]) for b in range(256)}
    for (a, b), idx in sorted(merges.items(), key=lambda item: item[1]):  # in the order they were learned
        vocab[idx] = vocab[a] + vocab[b]
    return vocab


def encode_chunk(ids: list[int], merges: dict[Pair, int]) -> list[int]:
    """Apply merges to one chunk's ids (modified in place and returned), lowest merge id first.

    Same result as "find the best pair, merge() it everywhere, repeat", but it keeps a list of each
    adjacent pair's priority and after a merge only re-looks-up the two pairs next to it. A new id's
    pairs always rank after it, so the remaining copies of the pair just merged are taken next.
    """
    if len(ids) < 2:
        return ids
    get = merges.get
    ranks = list(map(get, pairwise(ids), repeat(NO_MERGE)))  # ranks[i]: priority of (ids[i], ids[i+1])
    while ranks:
        best = min(ranks)
        if best == NO_MERGE:
            break
        i = ranks.index(best)       # the leftmost copy of the best pair
        ids[i] = best               # merge ids[i], ids[i + 1] into the new id (which equals its priority)
        del ids[i + 1]
        del ranks[i]
        if i > 0:
            ranks[i - 1] = get((ids[i - 1], best), NO_MERGE)
        if i < len(ids) - 1:
            ranks[i] = get((best, ids[i + 1]), NO_MERGE)
    return ids


def learn_merges(chunks: dict[bytes, int], num_merges: int, first_id: int = 256,
                 progress: bool = False) -> tuple[dict[Pair, int], list[int]]:
    """Learn num_merges merges from unique chunks (bytes -> how often the chunk occurs in the text).

    Returns (merges, tokens): tokens[k] is the training text's length in tokens after k + 1 merges.
    Instead of recounting every pair after every merge, it keeps `counts` (pair -> count over the text)
    and `where` (pair -> the chunks that contain it, or once did), and after a merge visits only those
    chunks, adjusting only the pairs next to each merge site.
    The best pair comes from a heap of (-count, pair): highest count first, ties to the smallest (a, b).
    A count only grows for the pairs a merge creates, and those are pushed; when a count shrinks its
    heap entry is left as an upper bound, and a popped entry that is too high is pushed back corrected.
    """
    from tqdm import tqdm

    words = [list(chunk) for chunk in chunks]             # each unique chunk as ids (bytes at first)
    freqs = list(chunks.values())                         # how often each chunk occurs
    counts: dict[Pair, int] = defaultdict(int)
    where: dict[Pair, set[int]] = defaultdict(set)
    for w, (word, freq) in enumerate(zip(words, freqs, strict=True)):
        for pair in pairwise(word):
            counts[pair] += freq
            where[pair].add(w)
    heap = [(-n, pair) for pair, n in counts.items()]
    heapq.heapify(heap)
    total = sum(len(word) * freq for word, freq in zip(words, freqs, strict=True))

    merges: dict[Pair, int] = {}
    tokens: list[int] = []
    bar = tqdm(total=num_merges, desc="BPE merges", unit="merge", disable=not progress)
    for step in range(num_merges):
        while heap:                                       # the best pair whose count is exact
            neg, pair = heapq.heappop(heap)
            now = counts.get(pair, 0)
            if now == -neg:
                break
            if now > 0:                                   # the count shrank since this entry was pushed
                heapq.heappush(heap, (-now, pair))
        else:
            raise ValueError(f"the training text has no pairs left to merge after {step} merges: use "
                             f"a longer text or a smaller vocab_size (at most {first_id + step} + specials)")
        idx = first_id + step
        merges[pair] = idx
        a, b = pair
        created: set[Pair] = set()
        for w in where.pop(pair):                         # only the chunks that contain the pair change
            word, freq = words[w], freqs[w]
            out: list[int] = []
            i, n, last_end = 0, len(word), -2
            while i < n:
                if i < n - 1 and word[i] == a and word[i + 1] == b:     # a merge site at i, i + 1
                    if i > 0 and last_end != i - 1:       # the pair on its left disappears (unless the
                        counts[(word[i - 1], a)] -= freq  # previous site already took it away)
                    if i < n - 2:                         # the pair on its right disappears
                        counts[(b, word[i + 2])] -= freq
                    if out:                               # new pair: (left neighbour, idx)
                        new = (out[-1], idx)
                        counts[new] += freq
                        where[new].add(w)
                        created.add(new)
                    out.append(idx)
                    last_end = i + 1
                    i += 2
                    total -= freq
                else:
                    if out and out[-1] == idx:            # new pair: (idx, right neighbour)
                        new = (idx, word[i])
                        counts[new] += freq
                        where[new].add(w)
                        created.add(new)
                    out.append(word[i])
                    i += 1
            words[w] = out
        del counts[pair]
        for p in created:                                 # only pairs with idx gained count
            heapq.heappush(heap, (-counts[p], p))
        tokens.append(total)
        bar.update(1)
    bar.close()
    return merges, tokens
