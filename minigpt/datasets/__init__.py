"""Wing: datasets. Where a corpus comes from, how it is cleaned, and the prepared format the trainer reads.

    sources.py    read (or download) a corpus and clean it
    recipes.py    `minigpt prepare NAME`: source -> split -> tokenizer -> data/<name>/
    couplets.py   the Tang-couplet fine-tuning task (JSONL), from the same poems
    prepared.py   the prepared format: train.bin / val.bin token ids, meta.json, tokenizer.json

Teaches nothing by itself; chapter 09 reads prepared data through minigpt/training/batches.py.
"""
