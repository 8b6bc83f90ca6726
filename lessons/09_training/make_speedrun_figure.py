"""Draws figures/speedrun.png: loss against wall-clock seconds for runs of benchmarks/speedrun.py.

    python benchmarks/speedrun.py --seeds 0 --threads 1 --ablation --keep runs/ablation
    python lessons/09_training/make_speedrun_figure.py runs/ablation/a_baby_s0 runs/ablation/e_1500steps_s0 \
        --labels baby speedrun

Each argument is a run folder (log.jsonl and last/, as `minigpt train` writes them; logbook.py has the
records' format). Per run, in one colour:

- the batch loss of every logged step (every log_interval-th step), a thin line;
- the val loss estimates (eval_iters random batches) at each evaluation, dots;
- the loss over the WHOLE val split of the last weights (minigpt.metrics.perplexity.mean_nll, the measure
  the benchmark prints), a star at the end of the run.

The clock. log.jsonl does not store a clock per step, so it is rebuilt: an eval record holds the seconds
since the start (time_s, taken after the evaluation); a train record holds that one step's time in ms, and
stands for the log_interval steps up to the next logged one. So a step's time is the last evaluation's
time_s plus the logged step times since, each counted log_interval times. The end of the run is its last
evaluation. Wall-clock, not CPU time: on a shared machine the curves stretch where the load rose.

What this does not do: train, average seeds, or read anything but the folders it is given (and the val split
of their dataset, for the whole-val loss).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from minigpt.datasets.prepared import load_tokens
from minigpt.files import checkpoint
from minigpt.files.paths import data_dir
from minigpt.metrics.perplexity import mean_nll

TARGET = 1.88          # nanoGPT's val loss for its CPU recipe (GUIDE.md section 6): the speedrun's goal
OUT = Path(__file__).resolve().parent / "figures" / "speedrun.png"


def timeline(records: list[dict], log_interval: int) -> tuple[list[tuple[float, float]],
                                                                list[tuple[float, float]]]:
    """(seconds, batch loss) of each logged step and (seconds, val estimate) of each evaluation."""
    steps, evals, clock = [], [], 0.0            # clock: the start of the next step, in seconds
    for rec in records:
        if rec.get("kind") == "eval":
            clock = rec["time_s"]
            evals.append((clock, rec["val_loss"]))
        elif rec.get("kind") == "train":
            step_s = rec["ms"] / 1000
            steps.append((clock + step_s, rec["loss"]))
            clock += step_s * log_interval            # this step and the unlogged ones until the next
    return steps, evals


def read_run(folder: Path) -> dict:
    """A run's timeline, settings and whole-val loss."""
    records = [json.loads(line) for line in (folder / "log.jsonl").read_text(encoding="utf-8").splitlines()
               if line.strip()]
    ckpt = checkpoint.load(folder / "last")
    cfg = ckpt.state["train_config"]
    steps, evals = timeline(records, cfg["log_interval"])
    val_ids = np.asarray(load_tokens(data_dir() / cfg["dataset"], "val"))            # (N,)
    whole, _ = mean_nll(ckpt.model, val_ids, batch_size=32)
    return {"steps": steps, "evals": evals, "whole": whole, "cfg": cfg, "name": folder.name}


def plot(runs: list[dict], labels: list[str], out: Path, points: list[tuple[str, float, float]] = ()) -> None:
    """The runs' timelines; points: (label, seconds, whole-val loss) of runs measured elsewhere (a
    PyTorch run of benchmarks/speedrun.py --torch keeps no log), each a grey diamond."""
    fig = Figure(figsize=(8, 4.6))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    colours = ("tab:blue", "tab:orange", "tab:green", "tab:red")
    for run, name, colour in zip(runs, labels, colours, strict=False):
        c = run["cfg"]
        label = (f"{name}: {c['n_layer']} layers, lr {c['lr']:g}, {c['max_iters']} steps, "
                 f"{c['max_iters'] // c['eval_interval'] + 1} evaluations, seed {c['seed']}")
        ax.plot([t for t, _ in run["steps"]], [loss for _, loss in run["steps"]], color=colour, lw=0.6,
                alpha=0.45)
        ax.plot([t for t, _ in run["evals"]], [loss for _, loss in run["evals"]], "o", color=colour, ms=5,
                label=label)
        end = run["evals"][-1][0]
        ax.plot([end], [run["whole"]], "*", color=colour, ms=14, mec="black", mew=0.6)
        ax.annotate(f"whole val {run['whole']:.3f}\nat {end:.0f} s", (end, run["whole"]),
                    textcoords="offset points", xytext=(8, -22), fontsize=9, color=colour)
    for name, seconds, loss in points:
        ax.plot([seconds], [loss], "D", color="0.35", ms=7, mec="black", mew=0.6, label=name)
        ax.annotate(f"whole val {loss:.3f}\nat {seconds:.0f} s", (seconds, loss), textcoords="offset points",
                    xytext=(-10, -34), ha="right", fontsize=9, color="0.25",
                    bbox={"fc": "white", "ec": "none", "alpha": 0.85, "pad": 1})
    ax.axhline(TARGET, color="0.3", ls="--", lw=1)
    ax.text(0.01, TARGET + 0.02, f"target {TARGET} (nanoGPT's val loss)", transform=ax.get_yaxis_transform(),
            ha="left", va="bottom", fontsize=9, color="0.3")
    ax.set_ylim(1.5, 3.0)                                   # the start (ln 65 = 4.17) is off the top
    ends = [run["evals"][-1][0] for run in runs] + [seconds for _, seconds, _ in points]
    ax.set_xlim(0, 1.18 * max(ends))                                  # room for the last annotation
    ax.set_xlabel("wall-clock seconds since the start of training")
    ax.set_ylabel("loss (nats per character)")
    ax.set_title("tiny Shakespeare, char-level. Thin lines: batch loss; dots: val estimates; "
                 "stars: whole val split", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("runs", type=Path, nargs="+", help="run folders (log.jsonl, last/), at most four")
    p.add_argument("--labels", nargs="+", help="a name per run for the legend (default: the folders')")
    p.add_argument("--out", type=Path, default=OUT, help=f"the figure (default: {OUT})")
    p.add_argument("--point", nargs=3, action="append", default=[], metavar=("LABEL", "SECONDS", "LOSS"),
                   help="a run measured elsewhere, e.g. the benchmark's PyTorch nanoGPT (repeatable)")
    args = p.parse_args()
    if len(args.runs) > 4:
        p.error("at most four runs (one colour each)")
    labels = args.labels or [folder.name for folder in args.runs]
    if len(labels) != len(args.runs):
        p.error(f"{len(args.runs)} runs but {len(labels)} labels")
    runs = [read_run(folder) for folder in args.runs]
    for run in runs:
        print(f"{run['name']}: {len(run['steps'])} logged steps, {len(run['evals'])} evaluations, end at "
              f"{run['evals'][-1][0]:.1f} s, whole val {run['whole']:.4f}")
    points = [(label, float(seconds), float(loss)) for label, seconds, loss in args.point]
    plot(runs, labels, args.out, points)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
