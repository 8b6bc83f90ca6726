"""Chapter 01, tokenizers: text <-> token ids.

    from minigpt.tokenizer import CharTokenizer, BPETokenizer

The chapter's files, in reading order:
    char.py            CharTokenizer: one id per distinct character
    bpe.py             the definitions: count pairs, merge, train (the textbook loop), encode a chunk
    bpe_engine.py      the engines beside them: incremental training with a heap, encoding with a priority
                       queue and a chunk cache; each is held equal to its definition by a test
    bpe_tokenizer.py   BPETokenizer: regex pre-splitting, special tokens, bytes <-> ids, save / load
    files.py           reading GPT-2's files (tiktoken ranks, encoder.json + vocab.bpe) and our JSON

This file only names the two classes users import.
"""

from minigpt.tokenizer.bpe_tokenizer import BPETokenizer
from minigpt.tokenizer.char import CharTokenizer

__all__ = ["BPETokenizer", "CharTokenizer"]
