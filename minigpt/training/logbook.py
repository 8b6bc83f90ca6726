"""A run's record: log.jsonl (one JSON object per logged step and evaluation) and its picture, loss.png.

    book = Logbook(out / "log.jsonl", start=it, eval_done=...)   # keeps the records up to the checkpoint
    book.emit({"kind": "train", "iter": 10, "loss": 3.2, ...})    # appended and flushed
    book.plot(out / "loss.png", title)                           # batch loss, train/val estimates

On resume the file is cut back to the checkpoint's iteration (a killed run may have logged steps it then
lost) and rewritten atomically (minigpt/files/atomic.py), so a kill during the rewrite keeps the old
records. Lines cut short by a kill are skipped when read.

What this file deliberately does not do: log to anything but the run folder, or keep metrics in memory
beyond the records of this run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO, Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from minigpt.files.atomic import write_text_atomic


class Logbook:
    """log.jsonl of one run, opened for appending after the records of the steps before `start`."""

    def __init__(self, path: Path, start: int = 0, eval_done: bool = False, write: bool = True):
        self.path = path
        self.records = read_log(path, start, eval_done)
        self._file: IO[str] | None = None
        if write:               # only one process writes (rank 0 under MPI)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in self.records))
            self._file = open(path, "a", encoding="utf-8")

    def emit(self, record: dict[str, Any]) -> None:
        self.records.append(record)
        if self._file is not None:
            self._file.write(json.dumps(record) + "\n")
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def plot(self, path: Path, title: str) -> None:
        """loss.png: training loss per logged step, and the train/val estimates at each evaluation."""
        if self._file is not None:
            plot_losses(self.records, path, title)


def read_log(path: Path, start: int, eval_done: bool) -> list[dict[str, Any]]:
    """log.jsonl's records up to the checkpoint at iteration `start` (and its evaluation if it was done)."""
    if not path.is_file() or start == 0 and not eval_done:
        return []
    keep = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            rec = json.loads(line)
        except ValueError:
            continue                                  # a line cut short by kill -9
        if not isinstance(rec, dict) or not isinstance(rec.get("iter"), int):
            continue
        at_start_eval = rec["iter"] == start and rec.get("kind") == "eval" and eval_done
        if rec["iter"] < start or at_start_eval:
            keep.append(rec)
    return keep


def plot_losses(records: list[dict[str, Any]], path: Path, title: str) -> None:
    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    steps = [r for r in records if r.get("kind") == "train"]
    evals = [r for r in records if r.get("kind") == "eval"]
    if steps:
        ax.plot([r["iter"] for r in steps], [r["loss"] for r in steps], color="0.75", lw=0.8,
                label="batch loss")
    ax.plot([r["iter"] for r in evals], [r["train_loss"] for r in evals], "o-", label="train (estimate)")
    ax.plot([r["iter"] for r in evals], [r["val_loss"] for r in evals], "s-", label="val (estimate)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cross-entropy loss (nats/token)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)
