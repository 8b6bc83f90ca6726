"""The tang_couplets task: complete the second line of a couplet, built offline from the Tang poems.

The corpus (../shared/data/tang_poems.txt) is poems separated by blank lines: a title line, an author line,
then one couplet per line, its two halves joined by a comma and closed by a full stop:

    秦川雄帝宅，函谷壯皇居。        ->   {"prompt": "秦川雄帝宅，", "response": "函谷壯皇居。"}

A line is a couplet when it is exactly two runs of characters without punctuation, the first ending in
"，" (or "？", "！", "；") and the second in "。" (or "？", "！", "；"): 23,700 of the corpus's 23,935 body
lines; lines with several clauses are skipped. The prompt keeps its comma, so the model sees exactly
the text it saw in pre-training, and the response is what follows up to the line's end.

The split is by poem, so the two halves of a poem never sit in different splits, and it agrees with the
pre-training split, so the held-out couplets come from poems the pre-trained model never read:
- the tang_poems recipe trains on the first 90% of the (cleaned) text's characters and validates on the
  last 10% (data.split_text); the poems that start in the train part (the one poem across the cut
  included) give the couplet train split;
- the poems wholly inside the last 10% are shuffled with `seed` and dealt half to val, half to test.
That is 4,397 / 239 / 239 poems, about 90% / 5% / 5% of the couplets. Finally a val or test pair whose
prompt also appears in train (a stock phrase reused by another poet) is dropped, so a test score is
never a lookup.

The text is the tang_poems recipe's own cleaned text (minigpt/datasets/recipes.py: parsed, control characters
dropped, duplicate poems dropped), read from --from-file or from the tang_poems download cache
(data/tang_poems/source/, fetched if absent), so the cut falls exactly where pre-training's does.
`prepare_couplets` writes data/tang_couplets/{train,val,test}.jsonl and meta.json (counts, seed, rule).

What this file deliberately does not do: other poem forms (ci, with irregular lines), punctuation
normalisation, or tokenisation (tasks.py and the checkpoint's tokenizer do that).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from minigpt.datasets.sources import read_tang_poems
from minigpt.files.atomic import write_text_atomic
from minigpt.files.paths import data_dir
from minigpt.finetune.tasks import write_jsonl

HALF = r"[^，。？！；：、\s]+"
COUPLET = re.compile(rf"^({HALF}[，？！；])({HALF}[。？！；])$")
SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Poem:
    """One poem: its title, author, body lines, and where it starts in the text (a character offset)."""

    title: str
    author: str
    lines: tuple[str, ...]
    start: int


def parse_poems(text: str) -> list[Poem]:
    """Blank-line separated blocks -> Poems (title, author, then the body lines)."""
    poems = []
    for match in re.finditer(r"[^\n](?:.|\n(?!\n))*", text):   # a block: lines up to a blank line
        lines = [line.strip() for line in match.group().split("\n") if line.strip()]
        if len(lines) >= 3:                                      # a poem needs a title, an author, a line
            poems.append(Poem(lines[0], lines[1], tuple(lines[2:]), match.start()))
    return poems


def couplet_pairs(lines: tuple[str, ...] | list[str]) -> list[tuple[str, str]]:
    """The (first half, second half) of every line that is one couplet; other lines are skipped."""
    pairs = []
    for line in lines:
        m = COUPLET.match(line)
        if m:
            pairs.append((m.group(1), m.group(2)))
    return pairs


def split_couplets(text: str, val_fraction: float = 0.1, seed: int = 1337
                   ) -> tuple[dict[str, list[tuple[str, str]]], dict[str, int]]:
    """{"train"|"val"|"test": [(prompt, response), ...]} and counts, split by poem as the docstring says."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    cut = int(len(text) * (1.0 - val_fraction))                  # data.split_text's cut
    poems = parse_poems(text)
    train_poems = [p for p in poems if p.start < cut]
    held_out = [p for p in poems if p.start >= cut]
    if not train_poems or len(held_out) < 2:
        raise ValueError(f"found {len(train_poems)} poems before the {1 - val_fraction:.0%} cut and "
                         f"{len(held_out)} after it: the text does not look like the Tang poems "
                         "(title, author, lines; blank line between poems)")
    order = np.random.default_rng(seed).permutation(len(held_out))   # (n_held,) which poem goes where
    half = len(held_out) // 2
    by_split = {"train": train_poems, "val": [held_out[i] for i in sorted(order[:half])],
                "test": [held_out[i] for i in sorted(order[half:])]}
    pairs = {name: [pair for poem in group for pair in couplet_pairs(poem.lines)]
             for name, group in by_split.items()}
    seen = {prompt for prompt, _ in pairs["train"]}
    counts: dict[str, int] = {}
    for name in ("val", "test"):
        kept = [pair for pair in pairs[name] if pair[0] not in seen]
        counts[f"{name}_dropped_seen_prompt"] = len(pairs[name]) - len(kept)
        pairs[name] = kept
    for name in SPLITS:
        counts[f"{name}_poems"] = len(by_split[name])
        counts[f"{name}_pairs"] = len(pairs[name])
    return pairs, counts


def prepare_couplets(*, from_file: str | Path | None = None, out: str | Path | None = None,
                     url: str | None = None, seed: int = 1337, progress: bool = True,
                     log: Callable[[str], None] = print) -> Path:
    """`minigpt prepare tang_couplets`: write train/val/test JSONL and meta.json; returns the folder."""
    t0 = time.time()
    folder = Path(out) if out is not None else data_dir() / "tang_couplets"
    corpus = read_tang_poems(data_dir() / "tang_poems", from_file, url, progress)
    pairs, counts = split_couplets(corpus.text, 0.1, seed)
    for name in SPLITS:
        write_jsonl(folder / f"{name}.jsonl", pairs[name])
    meta = {
        "format": "minigpt-task", "version": 1, "name": folder.name, "recipe": "tang_couplets",
        "files": [f"{name}.jsonl" for name in SPLITS],
        "fields": {"prompt": "the first half of a couplet line, with its comma",
                   "response": "the second half, with its full stop"},
        "split": "by poem: poems starting in the first 90% of the tang_poems text -> train (the "
                 "pre-training train split); the poems after the cut shuffled with the seed, half val, half "
                 "test; val/test pairs whose prompt is also a train prompt dropped",
        "seed": seed, **counts, "source": corpus.source, "source_sha256": corpus.source_sha256,
    }
    write_text_atomic(folder / "meta.json", json.dumps(meta, indent=1, ensure_ascii=False) + "\n")
    log(f"{folder}: {counts['train_pairs']:,} train / {counts['val_pairs']:,} val / {counts['test_pairs']:,} "
        f"test couplets from {counts['train_poems']:,} / {counts['val_poems']:,} / {counts['test_poems']:,} "
        f"poems ({counts['val_dropped_seen_prompt'] + counts['test_dropped_seen_prompt']} held-out pairs "
        f"dropped: prompt seen in train), {time.time() - t0:.1f} s")
    return folder

