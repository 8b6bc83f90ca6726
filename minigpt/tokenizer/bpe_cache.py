"""Fast encoding for BPETokenizer: chunk and piece caches, and all new chunks cut into pieces at once.

Text repeats its words, so each regex chunk's ids are cached. The chunks not seen before are handled
together: BPE can never merge across two adjacent bytes that occur side by side in no token (the result
would be a token containing them), so every new chunk is cut there, in one NumPy pass over all of them.
The pieces are cached too, and only a piece never seen before is BPE'd (by bpe_engine.encode_chunk_fast,
in O(n log n) however long the piece): GPT-2 on the
Tang poems has 49k distinct chunks (whole lines of Chinese) but only 9,943 distinct pieces.

    encoder = ChunkEncoder(merges, byte_ids, tokens)      # tokens: the merged tokens' bytes
    ids = encoder.encode(regex.findall(pattern, text))    # same ids as bpe.encode_chunk on each chunk

An engine beside bpe.encode_chunk applied chunk by chunk (the definition): GPT-2 on tiny Shakespeare 0.25 s
cold / 0.13 s warm instead of 1.4 s (CPU time, busy 2-core machine); tests/test_tokenizer.py and
tests/test_tokenizer_engine.py hold it equal to the definition, chunk by chunk.
What this file does not do: the merge loop (bpe_engine.py), the regex split, special tokens or repairing
lone surrogates (bpe_tokenizer.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import chain, pairwise

import numpy as np

from minigpt.tokenizer.bpe import Pair
from minigpt.tokenizer.bpe_engine import BULK_MIN, PairTable, encode_chunk_fast

CACHE_LIMIT = 200_000  # entries a cache may hold before it is emptied


class ChunkEncoder:
    """Chunks (str) -> ids, with a chunk -> ids cache and a piece -> ids cache."""

    def __init__(self, merges: dict[Pair, int], byte_ids: list[int], tokens: Iterable[bytes]):
        pairs = {pair for token in tokens for pair in pairwise(token)}
        self.joined = np.zeros((256, 256), dtype=bool)    # joined[a, b]: bytes a, b side by side in a token
        self.joined[tuple(np.array(sorted(pairs), dtype=np.intp).reshape(-1, 2).T)] = True
        # token bytes -> id, for tokens known to BPE to themselves: such a piece is looked up, not BPE'd
        # (BPETokenizer.from_tiktoken fills it: recover_merges proved it there for every token)
        self.whole: dict[bytes, int] = {}
        self.chunks: dict[str, list[int]] = {}
        self.pieces = _PieceCache(bytes(byte_ids), merges, self.whole)

    def clear(self) -> None:
        """Empty both caches."""
        self.chunks.clear()
        self.pieces.clear()

    def encode(self, chunks: list[str]) -> list[int]:
        """The chunks' ids, one after the other. A lone surrogate raises UnicodeEncodeError."""
        cache = self.chunks
        new = list(set(chunks).difference(cache))         # chunks never seen before
        if len(cache) + len(new) > CACHE_LIMIT:
            cache.clear()
            new = list(set(chunks))
        raw = [chunk.encode("utf-8") for chunk in new]
        cache.update(zip(new, self._encode_new(raw), strict=True))
        return list(chain.from_iterable(map(cache.__getitem__, chunks)))   # the rest is dict lookups

    def _encode_new(self, raw: list[bytes]) -> list[list[int]]:
        """New chunks' bytes -> their ids, all at once: cut where no token can span, look up each piece.

        The cuts are found with NumPy over all the chunks joined end to end; the pieces are then split off,
        looked up (a new piece is BPE'd once and cached) and handed back to their chunks, with loops that
        run in C (bytes.split, map, chain): no Python code runs per piece or per chunk unless a piece is new.
        """
        if not raw:
            return []
        x = np.frombuffer(b"".join(raw), dtype=np.uint8)    # (L,) the bytes of all the chunks
        ends = np.cumsum(list(map(len, raw)))               # (N,) where each chunk ends in x
        whole = self.joined[x[:-1], x[1:]]                  # (L-1,) may a token span x[i], x[i + 1]?
        whole |= (x[1:] & 0xC0) == 0x80                     # don't cut inside a character: fewer pieces
        whole[ends[:-1] - 1] = False                        # always cut between two chunks
        cuts = np.flatnonzero(~whole) + 1                   # (P-1,) where pieces 1..P-1 start
        # 0xFF never occurs in UTF-8, so it can mark the cuts, and one bytes.split makes all the pieces
        pieces = np.insert(x, cuts, 0xFF).tobytes().split(b"\xff")
        if len(self.pieces) > CACHE_LIMIT:
            self.pieces.clear()
        piece_ids = list(map(self.pieces.__getitem__, pieces))      # the BPE happens here, once per piece
        last = (np.searchsorted(cuts, ends) + 1).tolist()  # (N,) the piece after each chunk's last one
        per_chunk = map(piece_ids.__getitem__, map(slice, [0, *last], last))   # each chunk's pieces' ids
        return list(map(list, map(chain.from_iterable, per_chunk)))


class _PieceCache(dict):
    """bytes -> ids; a missing piece is BPE'd on first lookup (dict.__missing__), then remembered."""

    def __init__(self, table: bytes, merges: dict[Pair, int], whole: dict[bytes, int]):
        super().__init__()
        self.table, self.merges, self.whole = table, merges, whole
        self.pair_table: PairTable | None = None          # built on the first piece long enough to use it

    def __missing__(self, piece: bytes) -> list[int]:
        idx = self.whole.get(piece)
        if idx is None:
            if len(piece) >= BULK_MIN and self.pair_table is None:
                self.pair_table = PairTable(self.merges)
            ids = encode_chunk_fast(list(piece.translate(self.table)), self.merges, self.pair_table)
            self[piece] = ids
        else:
            ids = self[piece] = [idx]
        return ids

