"""The BPE engines: the same results as bpe.py's definitions, with work bounded by the input's size.

    learn_merges(chunks, num_merges)       == bpe.train_chunks      incremental pair counts and a heap
    encode_chunk_fast(ids, merges, table)  == bpe.encode_chunk      a heap over adjacent pairs and a linked
                                                                    list; O(n log n) per chunk

Each engine's docstring says what it speeds up and by how much (measured on this project's 2-core machine,
shared with other jobs; benchmarks/tokenizer.py), and tests/test_tokenizer_engine.py holds it equal to its
definition on random texts, random merge tables and GPT-2's ranks. BPETokenizer calls these only while
`minigpt.engines.enabled()`.

What this file does not do: split text, cache chunks (bpe_cache.py), special tokens (bpe_tokenizer.py).
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from itertools import pairwise, repeat

import numpy as np

from minigpt.tokenizer.bpe import Pair

HEAP_MIN = 32          # chunks shorter than this use the list scan below (faster for short chunks)
BULK_MIN = 2048        # chunks at least this long try whole-array NumPy steps first
BULK_RATIO = 64        # ... as long as one step merges at least 1/BULK_RATIO of the tokens
_SHIFT = 32            # a heap entry is one int: rank << _SHIFT | position (ints compare fastest)
_MASK = (1 << _SHIFT) - 1


def learn_merges(chunks: dict[bytes, int], num_merges: int, first_id: int = 256,
                 progress: bool = False) -> tuple[dict[Pair, int], list[int]]:
    """Engine for bpe.train_chunks (same merges, same tie-break, same token counts), given each distinct
    chunk once with its count. Tiny Shakespeare to vocab 1024: 0.4-1.3 s instead of ~6 min (the definition
    took 4.8 s for its first 10 merges; CPU time, busy 2-core machine).

    Instead of recounting every pair after every merge, it keeps `counts` (pair -> count over the text)
    and `where` (pair -> the chunks that contain it, or once did), and after a merge visits only those
    chunks, adjusting only the pairs next to each merge site.
    The best pair comes from a heap of (-count, pair): highest count first, ties to the smallest (a, b),
    which is bpe.best_pair's rule. A count only grows for the pairs a merge creates, and those are pushed;
    when a count shrinks its heap entry is left as an upper bound, and a popped entry that is too high is
    pushed back corrected.
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


class PairTable:
    """The merges as a sorted NumPy array of pair keys (a << 31 | b): the ranks of all adjacent pairs of a
    long chunk in one lookup. `add` inserts more merges (recover_merges grows it as it reads a file)."""

    def __init__(self, merges: dict[Pair, int]):
        self.keys = np.zeros(0, dtype=np.int64)                                        # (M,) sorted
        self.ranks = np.zeros(0, dtype=np.int64)                                       # (M,)
        self.add(merges)

    def add(self, merges: dict[Pair, int]) -> None:
        keys = np.array([a << 31 | b for a, b in merges], dtype=np.int64)             # (m,)
        ranks = np.array(list(merges.values()), dtype=np.int64)                       # (m,)
        order = np.argsort(keys)
        where = np.searchsorted(self.keys, keys[order])
        self.keys = np.insert(self.keys, where, keys[order])
        self.ranks = np.insert(self.ranks, where, ranks[order])

    def lookup(self, ids: np.ndarray) -> np.ndarray:
        """(n,) ids -> (n-1,) the merge id of each adjacent pair, or -1 where the pair is not a merge."""
        if len(self.keys) == 0:
            return np.full(max(len(ids) - 1, 0), -1, dtype=np.int64)
        keys = ids[:-1] << 31 | ids[1:]                                                # (n-1,)
        pos = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[pos] == keys, self.ranks[pos], -1)


def _bulk_steps(ids: list[int], table: PairTable) -> list[int]:
    """bpe.encode_chunk's own steps, each done for the whole array with NumPy: find the lowest-ranked pair,
    merge all its non-overlapping copies left to right. Stops once the steps so far merged fewer than one
    token per BULK_RATIO array elements they passed over (the heap is cheaper per merge then)."""
    x = np.asarray(ids, dtype=np.int64)                                                # (n,)
    merged = passed = 0
    while len(x) >= 2:
        ranks = table.lookup(x)                                                        # (n-1,)
        best = ranks.max()
        if best < 0:
            break
        best = np.where(ranks < 0, best, ranks).min()      # the lowest merge id present
        pos = np.flatnonzero(ranks == best)                                            # (k,) sites
        passed += len(x)
        if (merged + len(pos)) * BULK_RATIO < passed:
            break
        if x[pos[0]] == x[pos[0] + 1]:               # (a, a): copies in a row overlap; keep every other
            starts = np.empty(len(pos), dtype=bool)                                    # (k,) run starts
            starts[0] = True
            np.not_equal(pos[1:] - pos[:-1], 1, out=starts[1:])
            first = pos[starts][np.cumsum(starts) - 1]                                 # (k,) run's start
            pos = pos[(pos - first) % 2 == 0]
        x[pos] = best
        keep = np.ones(len(x), dtype=bool)
        keep[pos + 1] = False
        x = x[keep]
        merged += len(pos)
    return x.tolist()


def _scan(ids: list[int], merges: dict[Pair, int]) -> list[int]:
    """Short chunks: a list of each adjacent pair's rank; take the minimum, merge, re-rank its two
    neighbours (min and list.index run in C, which beats a heap below HEAP_MIN tokens)."""
    get = merges.get
    ranks = list(map(get, pairwise(ids), repeat(_MASK)))     # _MASK: larger than every merge id
    while ranks:
        best = min(ranks)
        if best == _MASK:
            break
        i = ranks.index(best)                               # the leftmost copy of the best pair
        ids[i] = best
        del ids[i + 1]
        del ranks[i]
        if i > 0:
            ranks[i - 1] = get((ids[i - 1], best), _MASK)
        if i < len(ids) - 1:
            ranks[i] = get((best, ids[i + 1]), _MASK)
    return ids


def encode_chunk_fast(ids: list[int], merges: dict[Pair, int], table: PairTable | None = None,
                      bulk_min: int = BULK_MIN) -> list[int]:
    """Engine for bpe.encode_chunk (same ids), O(n log n) for a chunk of n tokens instead of O(n x merges
    used). GPT-2, 20,000 random letters as one chunk: 0.016 s instead of 4.2 s; 1,000,000 of them: 0.7 s
    (the definition: hours; tiktoken 0.26 s); "x" * 10**6: 0.15 s (tiktoken 0.32 s). CPU time, busy machine.

    Heap entries are (rank, position) of adjacent pairs, packed into one int; the tokens form a linked list
    (nxt, prv) so a merge is O(1). Lowest rank first and, among copies of the same pair, leftmost first:
    the definition's order. A merge makes the entries of the two pairs around it stale; a popped entry is
    used only if its pair is still there with that rank. A merged pair's new neighbours always rank after
    it (a merge id is larger than the ids it joins), so this is the definition's merge-all-copies step taken
    one copy at a time. Chunks of bulk_min tokens or more (table given: the same merges) first take the
    definition's steps on the whole array with NumPy while they merge many copies ("x" x 10**6: 4 steps).
    """
    if len(ids) < HEAP_MIN:
        return _scan(list(ids), merges)
    ids = list(ids)
    if table is not None and len(ids) >= bulk_min:
        ids = _bulk_steps(ids, table)
    n = len(ids)
    get = merges.get
    tok = ids                                                  # tok[i]: the token at node i, -1 once merged
    nxt = list(range(1, n + 1))
    prv = list(range(-1, n - 1))
    heap = [r << _SHIFT | i for i, r in enumerate(map(get, pairwise(ids))) if r is not None]
    heapq.heapify(heap)
    pop, push = heapq.heappop, heapq.heappush
    while heap:
        key = pop(heap)
        rank, i = key >> _SHIFT, key & _MASK
        a = tok[i]
        j = nxt[i]
        if a < 0 or j >= n or get((a, tok[j])) != rank:       # stale: one of its tokens has changed
            continue
        tok[i], tok[j] = rank, -1                             # node i becomes the merged token
        k = nxt[j]
        nxt[i] = k
        if k < n:
            prv[k] = i
            r = get((rank, tok[k]))
            if r is not None:
                push(heap, r << _SHIFT | i)
        p = prv[i]
        if p >= 0:
            r = get((tok[p], rank))
            if r is not None:
                push(heap, r << _SHIFT | p)
    return [t for t in tok if t >= 0]
