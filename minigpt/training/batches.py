"""Where a training run's batches come from: one interface, two kinds of data.

    data = load_token_data("data/shakespeare_char", batch_size=12, block_size=64)
    x, y = data.train.get_batch(rng)                         # x, y (B, T) int64
    loss = data.val.estimate_loss(model, n_batches=20, rng=rng)

A batch source has two methods, and the training loop knows nothing else about it:

    get_batch(rng) -> (x, y)                     one batch, drawn with the generator it is given (so a
                                                 resumed run, restoring the generator, draws the same ones)
    estimate_loss(model, n_batches, rng) -> float   the mean eval-mode loss over n_batches batches

- TokenBatches (here): random windows of a long token array, y = x shifted by one (pre-training);
- TaskBatches (minigpt/finetune/tasks.py): prompt/response rows with the prompt masked (fine-tuning).

`get_batch(ids, batch_size, block_size, rng)` is the definition the chapter teaches: B random start
positions, then the windows by fancy indexing.

Data parallel (lesson 13). Under MPI every rank holds the same sources with the *global* batch size N x B
(`for_ranks`), draws the same global batch from the shared generator, and keeps its own B rows with
`shard`, which also returns the slice's weight: its share of the counted targets. Summing weight x
gradient over the ranks gives exactly the gradient of the global batch's mean loss, even when fine-tuning
masks a different number of targets in each slice.

What this file deliberately does not do: shuffle epochs (windows are drawn with replacement, as nanoGPT
does), prepare datasets (minigpt/datasets/recipes.py does, from the command line), or read files other than
through minigpt/datasets/prepared.py.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from minigpt.datasets.prepared import DataError, check_vocab, load_meta, load_tokenizer, load_tokens


def get_batch(ids: np.ndarray, batch_size: int, block_size: int,
              rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """batch_size random windows of ids: x (B, T) and the same shifted by one, y (B, T), both int64.

    Start positions are uniform over 0 .. len(ids) - T - 1, so every window and its target fit.
    """
    n = len(ids)
    if n < block_size + 1:
        raise DataError(f"only {n} tokens, need at least block_size + 1 = {block_size + 1} for one window: "
                        f"use a bigger corpus or a smaller block_size")
    starts = rng.integers(0, n - block_size, size=batch_size)                  # (B,)
    offsets = np.arange(block_size)                                            # (T,)
    x = np.asarray(ids[starts[:, None] + offsets], dtype=np.int64)             # (B, T)
    y = np.asarray(ids[starts[:, None] + offsets + 1], dtype=np.int64)         # (B, T)
    return x, y


def estimate_loss(model: Any, ids: np.ndarray, cfg: Any, rng: np.random.Generator) -> float:
    """The mean eval-mode loss (no dropout, no gradients) over cfg.eval_iters batches of
    get_batch(ids, cfg.batch_size, cfg.block_size, rng): how the loop measures train and val loss."""
    losses = [model.loss(*get_batch(ids, cfg.batch_size, cfg.block_size, rng)) for _ in range(cfg.eval_iters)]
    return float(np.mean(losses))


def shard(x: np.ndarray, y: np.ndarray, rank: int, size: int,
          ignore_index: int = -100) -> tuple[np.ndarray, np.ndarray, float]:
    """Rank `rank`'s rows of a global batch x, y (N*B, T) -> x, y (B, T) and the slice's weight: its
    counted targets (y != ignore_index) over the whole batch's. Weights sum to 1 over the ranks; every
    slice weighs 1/N when nothing is masked (pre-training)."""
    rows = len(x)
    if rows % size:
        raise ValueError(f"a global batch of {rows} rows cannot be split evenly over {size} ranks")
    b = rows // size
    xs, ys = x[rank * b:(rank + 1) * b], y[rank * b:(rank + 1) * b]           # (B, T), (B, T)
    total = int(np.count_nonzero(y != ignore_index))
    weight = int(np.count_nonzero(ys != ignore_index)) / total if total else 1.0 / size
    return xs, ys, weight


def estimate_loss_shard(source: TokenBatches, model: Any, n_batches: int, rng: np.random.Generator,
                        rank: int, size: int) -> float:
    """This rank's part of source.estimate_loss over n_batches global batches: the sum over the ranks of
    the parts is the mean loss one process gets with the global batch (up to summation order)."""
    part = 0.0
    for _ in range(n_batches):
        xs, ys, weight = shard(*source.get_batch(rng), rank, size)
        part += weight * model.loss(xs, ys)
    return part / n_batches


class BatchSource(Protocol):
    """What the training loop draws from (see the module docstring)."""

    batch_size: int             # rows per batch

    def get_batch(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]: ...

    def estimate_loss(self, model: Any, n_batches: int, rng: np.random.Generator) -> float: ...

    def __len__(self) -> int: ...


class TokenBatches:
    """Random (B, T) windows of one token array (a prepared split)."""

    def __init__(self, ids: np.ndarray, batch_size: int, block_size: int):
        self.ids, self.batch_size, self.block_size = ids, batch_size, block_size

    def __len__(self) -> int:
        return len(self.ids)

    def get_batch(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        return get_batch(self.ids, self.batch_size, self.block_size, rng)

    def estimate_loss(self, model: Any, n_batches: int, rng: np.random.Generator) -> float:
        """Mean eval-mode loss over n_batches random batches (no dropout, no gradients)."""
        return float(np.mean([model.loss(*self.get_batch(rng)) for _ in range(n_batches)]))


@dataclass
class Data:
    """Everything a run needs to know about its data: the two batch sources and the data's identity."""

    name: str                  # for messages and the checkpoint (a dataset name or a task file)
    train: BatchSource
    val: BatchSource
    tokenizer_file: Path       # copied into every checkpoint, so a checkpoint can generate text alone
    vocab_size: int
    sha256: str | None         # of the source: a resume checks it is the same data
    unit: str = "tokens"       # what len(train) counts: tokens, or examples for a task


def for_ranks(data: Data, size: int) -> Data:
    """The same data with every source drawing global batches of size x batch_size rows (one per rank)."""
    if size == 1:
        return data
    scaled = {}
    for split in ("train", "val"):
        source = copy.copy(getattr(data, split))
        source.batch_size = source.batch_size * size
        scaled[split] = source
    return replace(data, **scaled)


def load_token_data(folder: str | Path, batch_size: int, block_size: int) -> Data:
    """A prepared dataset folder (data/<name>: train.bin, val.bin, meta.json, tokenizer.json), checked:
    the tokenizer's vocabulary is meta.json's, every token id is below it, each split holds a window."""
    folder = Path(folder)
    meta = load_meta(folder)
    tokenizer_file = folder / "tokenizer.json"
    check_vocab(meta, load_tokenizer(tokenizer_file), folder)
    splits = {}
    for split in ("train", "val"):
        ids = load_tokens(folder, split)                # checks every id against the vocabulary
        if len(ids) < block_size + 1:
            raise DataError(f"{folder}/{split}.bin has {len(ids)} tokens, fewer than block_size + 1 = "
                            f"{block_size + 1}: use a smaller --block_size or a bigger corpus")
        splits[split] = TokenBatches(ids, batch_size, block_size)
    return Data(folder.name, splits["train"], splits["val"], tokenizer_file, meta["vocab_size"],
                meta.get("source_sha256"))
