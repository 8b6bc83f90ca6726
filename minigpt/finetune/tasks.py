"""Task data for fine-tuning: prompt/response pairs in JSONL, and the masked rows the loss learns from.

A task file has one JSON object per line with two strings:

    {"prompt": "秦川雄帝宅，", "response": "函谷壯皇居。"}

Fine-tuning feeds the model the prompt followed by the response and its end token, and counts the loss
only where the *target* is a response token (or the end token). With block_size P and
seq = prompt_ids + response_ids (the response already ends with its end token):

    x = seq[:-1]                     the inputs, positions 0 .. n-2
    y = seq[1:]                      the targets: the next token at every position
    y[i] = ignore_index              where y[i] is a prompt token (i < len(prompt_ids) - 1)
    x, y padded to P with pad_id / ignore_index, so every row has the same length

A sequence longer than P + 1 keeps its last P + 1 tokens: the prompt loses its beginning, the same window
generation sees when it crops a long prompt (sampling.generate keeps the last block_size ids).

The end token. `encode_pair` appends END = "\\n" to the response text: the Tang poems put one couplet per
line, so a model pre-trained on them already ends a line with "\\n", and generation stops there
(`generate(..., stop="\\n")`). Any tokenizer that can encode "\\n" works (the character tokenizer of a
corpus with line breaks, GPT-2's BPE: id 198).

Unknown characters. A character tokenizer has no id for a character it never saw; fine-tuning data with
one is refused with the file, the line and the character (`TaskError`), never mapped silently to
another id: a silently wrong target teaches the wrong thing. Rebuild the tokenizer, or drop the line.

What this file deliberately does not do: chat templates, several turns, packing several examples into one
row, or the training loop (train.py runs it; finetune.py hands it these batches).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minigpt.files.atomic import write_text_atomic
from minigpt.files.boundary import FileFormatError, parse_json

IGNORE_INDEX = -100   # the loss skips targets equal to this (torch's default for cross_entropy)
END = "\n"            # appended to every response: the end token the model learns to emit


class TaskError(ValueError):
    """A task file or example that cannot be used; the message names the file and the line."""


@dataclass(frozen=True)
class Example:
    """One prompt/response pair and where it came from ("couplets.jsonl:12")."""

    prompt: str
    response: str
    where: str = ""


# ---- reading and writing JSONL -------------------------------------------------------------------------
MAX_TASK_BYTES = 1 << 30      # a task file: 1 GB (the Tang couplets are ~2 MB)
MAX_LINE_CHARS = 1_000_000    # one example; longer prompts could not fit any context anyway


def read_jsonl(path: str | Path) -> list[Example]:
    """Every line of a task file as an Example; a malformed line is a TaskError naming file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"task file {path} not found: write one JSON object per line with "
                                "'prompt' and 'response' strings, or run `minigpt prepare tang_couplets`")
    size = path.stat().st_size
    if size > MAX_TASK_BYTES:
        raise TaskError(f"{path}: {size:,} bytes, more than a task file can be ({MAX_TASK_BYTES:,}); "
                        "split it")
    examples = []
    for number, raw in enumerate(path.read_bytes().splitlines(), start=1):
        if not raw.strip():
            continue                                      # blank lines (e.g. a final newline) are fine
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise TaskError(f"{path}:{number}: not UTF-8 text ({exc.reason} at byte {exc.start} of the "
                            "line); task files are UTF-8, convert this one first") from None
        examples.append(parse_line(line, f"{path}:{number}"))
    if not examples:
        raise TaskError(f"{path}: no examples (the file is empty)")
    return examples


def parse_line(line: str, where: str) -> Example:
    """One JSONL line -> Example, or a TaskError that says what is wrong at `where`.

    Checked: at most MAX_LINE_CHARS characters, one JSON object (boundary.parse_json: nesting depth,
    no NaN, no huge numbers), 'prompt' and 'response' strings, the response not empty.
    """
    if len(line) > MAX_LINE_CHARS:
        raise TaskError(f"{where}: {len(line):,} characters, longer than an example can be "
                        f"({MAX_LINE_CHARS:,}); shorten or drop this line")
    try:
        obj = parse_json(line, where)
    except FileFormatError as exc:
        raise TaskError(f"{exc}; each line must be one object like "
                        '{"prompt": "...", "response": "..."}') from None
    if not isinstance(obj, dict):
        raise TaskError(f"{where}: expected a JSON object with 'prompt' and 'response', got "
                        f"{type(obj).__name__}")
    for key in ("prompt", "response"):
        if key not in obj:
            raise TaskError(f"{where}: missing field '{key}' (found: {sorted(obj)[:10]})")
        if not isinstance(obj[key], str):
            raise TaskError(f"{where}: field '{key}' must be a string, got {type(obj[key]).__name__}")
        if not _is_utf8(obj[key]):
            raise TaskError(f"{where}: field '{key}' holds a lone surrogate (a \\ud800-\\udfff escape), "
                            "which is not text")
    if not obj["response"]:
        raise TaskError(f"{where}: the response is empty: there would be nothing to learn from this line")
    return Example(obj["prompt"], obj["response"], where)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def write_jsonl(path: str | Path, pairs: Iterable[Example | tuple[str, str]]) -> int:
    """Write pairs as JSONL (UTF-8, Chinese kept readable), atomically; returns the number of lines."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pairs = [(pair.prompt, pair.response) if isinstance(pair, Example) else pair for pair in pairs]
    lines = [json.dumps({"prompt": prompt, "response": response}, ensure_ascii=False) + "\n"
             for prompt, response in pairs]
    write_text_atomic(path, "".join(lines))               # readers never see a half-written file
    return len(lines)


# ---- tokens ----------------------------------------------------------------------------------------------
def encode_pair(tokenizer: Any, example: Example, end: str = END) -> tuple[list[int], list[int]]:
    """(prompt_ids, response_ids): the response text with `end` appended, both encoded."""
    try:
        prompt_ids = list(tokenizer.encode_ordinary(example.prompt))    # task text is text: special-token
        response_ids = list(tokenizer.encode_ordinary(example.response + end))   # names are characters
    except ValueError as exc:                             # CharTokenizer: a character it has no id for
        raise TaskError(f"{example.where or 'example'}: {exc}. The tokenizer comes from the checkpoint; "
                        "drop this line or pre-train with a tokenizer that covers it") from None
    if not prompt_ids:
        raise TaskError(f"{example.where or 'example'}: the prompt is empty; fine-tuning needs at least one "
                        "prompt token to predict the response from")
    return prompt_ids, response_ids


def encode_examples(tokenizer: Any, examples: Sequence[Example], end: str = END
                    ) -> list[tuple[list[int], list[int]]]:
    """encode_pair for every example (the first bad line raises, naming its file and line)."""
    return [encode_pair(tokenizer, ex, end) for ex in examples]


# ---- the masked rows -------------------------------------------------------------------------------------
def build_example(prompt_ids: Sequence[int], response_ids: Sequence[int], block_size: int,
                  pad_id: int = 0, ignore_index: int = IGNORE_INDEX) -> tuple[np.ndarray, np.ndarray]:
    """One training row: x (P,) inputs and y (P,) targets, y = ignore_index on prompt targets and padding."""
    if block_size < 1:
        raise ValueError(f"block_size must be >= 1, got {block_size}")
    if len(prompt_ids) < 1 or len(response_ids) < 1:
        raise ValueError("build_example needs at least one prompt token and one response token, got "
                         f"{len(prompt_ids)} and {len(response_ids)}")
    seq = [int(i) for i in prompt_ids] + [int(i) for i in response_ids]
    dropped = max(0, len(seq) - (block_size + 1))        # too long: keep the last P + 1 tokens
    seq = seq[dropped:]
    n_prompt = max(0, len(prompt_ids) - dropped)          # prompt tokens still in the window
    n = len(seq) - 1                                      # positions with a target
    x = np.full(block_size, pad_id, dtype=np.int64)       # (P,)
    y = np.full(block_size, ignore_index, dtype=np.int64)  # (P,)
    x[:n] = seq[:-1]
    y[:n] = seq[1:]
    y[:max(0, n_prompt - 1)] = ignore_index               # y[i] = seq[i + 1] is in the prompt: mask it
    return x, y


def make_batch(pairs: Sequence[tuple[Sequence[int], Sequence[int]]], block_size: int, pad_id: int = 0,
               ignore_index: int = IGNORE_INDEX) -> tuple[np.ndarray, np.ndarray]:
    """Stack build_example rows into x, y (B, T), T = the longest row: trailing all-padding columns go.

    Dropping them changes nothing: attention is causal, so no real position sees a later padding one,
    and their targets are ignored. Couplets of 13-17 tokens in a 128-token context train ~8x faster.
    """
    if not pairs:
        raise ValueError("make_batch needs at least one (prompt_ids, response_ids) pair")
    rows = [build_example(p, r, block_size, pad_id, ignore_index) for p, r in pairs]
    x = np.stack([row[0] for row in rows])                # (B, P)
    y = np.stack([row[1] for row in rows])                # (B, P)
    lengths = [min(len(p) + len(r) - 1, block_size) for p, r in pairs]
    T = max(lengths)
    return x[:, :T], y[:, :T]                             # (B, T)


class TaskBatches:
    """Random batches of task rows, seeded: get_batch(rng) -> (x, y) with the prompts masked.

    A batch source for the training loop (minigpt/training/batches.py): get_batch(rng) and
    estimate_loss(model, n_batches, rng), like random windows of a token file. The rows are drawn from the
    rng it is given, so a resumed run draws the same batches.
    """

    def __init__(self, pairs: Sequence[tuple[Sequence[int], Sequence[int]]], block_size: int,
                 batch_size: int, pad_id: int = 0, ignore_index: int = IGNORE_INDEX):
        if not pairs:
            raise ValueError("no task examples to draw batches from")
        self.pairs = list(pairs)
        self.block_size = block_size
        self.batch_size = batch_size
        self.pad_id = pad_id
        self.ignore_index = ignore_index

    def __len__(self) -> int:
        return len(self.pairs)

    def get_batch(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """batch_size rows drawn with replacement, as nanoGPT draws its windows."""
        picks = rng.integers(0, len(self.pairs), size=self.batch_size)         # (B,)
        return make_batch([self.pairs[i] for i in picks], self.block_size, self.pad_id, self.ignore_index)

    def mean_loss(self, model: Any, n_examples: int, batch_size: int = 64) -> float:
        """The masked loss over a fixed, evenly spaced subset of n_examples rows (all if fewer), every
        response token weighted equally: the same examples at every evaluation, so val losses compare
        like with like and early stopping does not react to which rows a random draw picked."""
        picks = np.unique(np.linspace(0, len(self.pairs) - 1, min(n_examples, len(self.pairs))).astype(int))
        total, count = 0.0, 0
        for start in range(0, len(picks), batch_size):
            x, y = make_batch([self.pairs[i] for i in picks[start:start + batch_size]], self.block_size,
                              self.pad_id, self.ignore_index)                     # (B, T), (B, T)
            n = int((y != self.ignore_index).sum())
            total += model.loss(x, y, self.ignore_index) * n                       # the batch mean, as a sum
            count += n
        return total / count

    def estimate_loss(self, model: Any, n_batches: int, rng: np.random.Generator | None = None) -> float:
        """The loop's evaluation: mean_loss over n_batches x batch_size fixed examples (rng unused)."""
        return self.mean_loss(model, n_batches * self.batch_size)

    def batches(self, batch_size: int | None = None):
        """Every row once, in order, in batches (for a full pass over a validation set)."""
        size = batch_size or self.batch_size
        for start in range(0, len(self.pairs), size):
            yield make_batch(self.pairs[start:start + size], self.block_size, self.pad_id, self.ignore_index)
