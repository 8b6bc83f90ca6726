"""Chapter 01, tokenizers: text <-> token ids.

    from minigpt.tokenizer import CharTokenizer, BPETokenizer

The chapter's files, in reading order:
    char.py            CharTokenizer: one id per distinct character
    bpe.py             the definitions: count pairs, merge, train (the textbook loop, ties to the smallest
                       pair), encode a chunk (merge the lowest-ranked pair, repeat), decode
    bpe_engine.py      the engines beside them: learn_merges (incremental counts and a heap) and
                       encode_chunk_fast (a priority queue over adjacent pairs, O(n log n) per chunk); each is
                       held equal to its definition by tests/test_tokenizer_engine.py
    bpe_cache.py       ChunkEncoder: the chunk and piece caches in front of encode_chunk_fast
    bpe_tokenizer.py   BPETokenizer: tiktoken's Encoding surface (encode with allowed/disallowed special
                       tokens, encode_ordinary, batches, raw bytes, decode_with_offsets, ...), regex
                       pre-splitting (GPT-2, GPT-4 cl100k, GPT-4o o200k), bytes <-> ids, save / load;
                       engines or definitions as minigpt.engines says
    files.py           reading tokenizer files (tiktoken ranks, encoder.json + vocab.bpe, our JSON) through
                       minigpt/files/boundary.py, every field checked

This file only names the two classes users import.
"""

from minigpt.tokenizer.bpe_tokenizer import BPETokenizer
from minigpt.tokenizer.char import CharTokenizer

__all__ = ["BPETokenizer", "CharTokenizer"]
