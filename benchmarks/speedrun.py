"""The laptop speedrun: nanoGPT's CPU recipe against the speedrun preset, side by side in one run.

Both train on tiny Shakespeare, character-level, with nanoGPT's split (`minigpt prepare shakespeare_char`);
for each seed, one after the other:

- `baby`: nanoGPT's CPU recipe (minigpt/training/presets/baby.toml): 4 layers x 128 channels, block 64,
  batch 12, 2000 iterations at lr 1e-3, evaluated every 250 iterations on 20 batches;
- `speedrun`: minigpt/training/presets/speedrun.toml, the recipe changed to get there sooner;
- `torch` (with --torch, when PyTorch is installed): nanoGPT's recipe in PyTorch, a twin of its model.py and
  train.py loop written in this file (exact GELU, no biases, tied head, AdamW with decay on matrices only,
  nanoGPT's warm-up + cosine), as an independent baseline. It saves no checkpoints.

Printed per run: wall time from start to end (`minigpt train` as a user runs it: evaluations and
checkpoints included, the final sample left out), and the val loss over the WHOLE val split (every token
scored once, in back-to-back windows of the model's block size: minigpt.metrics.perplexity.mean_nll), not a
20-batch estimate. Then per recipe the means, and the ratio of the speedrun's mean wall time to baby's,
against the goal of issue 16: mean val <= 1.88 in at most half of baby's wall time.

    python benchmarks/speedrun.py                                # seeds 0 1 2, all cores
    python benchmarks/speedrun.py --seeds 0 --threads 1 --torch  # one seed, one thread, PyTorch too
    python benchmarks/speedrun.py --seeds 0 --threads 1 --ablation --keep runs/ablation

--ablation runs, instead of the recipes, what made the speedrun fast: baby with the speedrun's changes
applied one at a time, cumulatively (ABLATION_STEPS; the last step is checked to equal the speedrun preset
field by field), then the speedrun with one change undone (ABLATION_UNDO). Printed per run as above, then
each step's CPU time relative to baby's and its change in whole-val loss from the step before.
--keep DIR keeps the run folders (log.jsonl, last/, best/) in DIR/<name>_s<seed> instead of deleting them;
lessons/09_training/make_speedrun_figure.py draws the chapter's figure from two of them.

Losses are deterministic for a seed and a thread count; wall times need an otherwise idle machine. On a
busy one use --threads 1 (two BLAS threads spin-wait for each other when a core is taken) and compare only
the ratio, which interleaving the recipes seed by seed keeps roughly fair.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import math
import os
import statistics
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from _common import default_threads, keep_memory, set_blas_threads

GOAL_VAL, GOAL_RATIO = 1.88, 0.5


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--threads", type=int, default=default_threads())
    p.add_argument("--recipes", nargs="+", default=["baby", "speedrun"],
                   help="minigpt presets to run (default: baby speedrun); any preset on shakespeare_char")
    p.add_argument("--torch", action="store_true", help="also run nanoGPT's recipe in PyTorch (if installed)")
    p.add_argument("--ablation", action="store_true",
                   help="run the ablation (baby -> speedrun one change at a time) instead of --recipes")
    p.add_argument("--keep", type=Path, metavar="DIR",
                   help="keep the run folders in DIR (default: a temporary folder, deleted at the end)")
    return p.parse_args()


ARGS = parse()
set_blas_threads(ARGS.threads)   # read by BLAS when numpy / torch load: set before importing them
keep_memory()                    # the allocator setting the `minigpt` command applies

import numpy as np  # noqa: E402

from minigpt.datasets.prepared import load_meta, load_tokens  # noqa: E402
from minigpt.files import checkpoint  # noqa: E402
from minigpt.files.paths import data_dir  # noqa: E402
from minigpt.metrics.perplexity import mean_nll  # noqa: E402
from minigpt.training.batches import load_token_data  # noqa: E402
from minigpt.training.config import config_from_preset  # noqa: E402
from minigpt.training.loop import train  # noqa: E402

DATASET = "shakespeare_char"
BABY = config_from_preset("baby")  # the PyTorch twin runs exactly these settings

# The ablation: (name, what it adds) applied to baby in this order, each on top of the ones before.
ABLATION_STEPS = [
    ("a_baby", {}),
    ("b_eval_ends", {"eval_interval": 2000, "eval_iters": 10, "checkpoint_interval": 2000}),  # start, end
    ("c_lr6e-3", {"lr": 6e-3, "warmup_iters": 30, "min_lr": 1e-5}),    # cosine to 1e-5 at lr_decay_iters
    ("d_2layers", {"n_layer": 2}),
    ("e_1500steps", {"max_iters": 1500, "lr_decay_iters": 1500, "eval_interval": 1500,
                     "checkpoint_interval": 1500}),                       # = the speedrun preset
]
# ... and the speedrun with one of its changes undone.
ABLATION_UNDO = [("f_speedrun_4layers", {"n_layer": 4}), ("g_speedrun_lr1e-3", {"lr": 1e-3})]


def cpu_seconds() -> float:
    """CPU time of this process and of its ended children: with two or more threads train() runs each
    step on worker processes (minigpt/parallel/team.py), which end with the run (os.times: POSIX)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def quiet(_msg: str) -> None:
    pass


def ablation_runs() -> list[tuple[str, str, dict]]:
    """(name, preset, overrides) of every ablation run: baby plus the steps so far, then the speedrun with
    one change undone. Stops if the last step is not exactly the speedrun preset."""
    runs, so_far = [], {}
    for name, change in ABLATION_STEPS:
        so_far = so_far | change
        runs.append((name, "baby", so_far))
    last, fast = asdict(config_from_preset("baby", so_far)), asdict(config_from_preset("speedrun"))
    if last != fast:
        diff = {k: (last[k], fast[k]) for k in last if last[k] != fast[k]}
        raise SystemExit(f"the ablation's last step is not the speedrun preset: (step, preset) {diff}")
    return runs + [(name, "speedrun", change) for name, change in ABLATION_UNDO]


def run_minigpt(preset: str, seed: int, folder: Path, overrides: dict | None = None,
                name: str | None = None) -> dict:
    """One `minigpt train --preset NAME --seed N [--key value ...]` in this process; the whole-val loss of
    its last weights. The run is called `name` (default: the preset's)."""
    cfg = config_from_preset(preset, (overrides or {}) | {"seed": seed})
    name = name or preset
    if cfg.dataset != DATASET:
        raise SystemExit(f"preset {preset} trains on {cfg.dataset}; this benchmark compares on {DATASET}")
    data = load_token_data(data_dir() / DATASET, cfg.batch_size, cfg.block_size)
    out = folder / f"{name}_s{seed}"
    t0, c0 = time.perf_counter(), cpu_seconds()
    summary = train(cfg, out, data, progress=False, sample=False, log=quiet)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    model = checkpoint.load(out / "last").model
    val, _ = mean_nll(model, np.asarray(data.val.ids), batch_size=32)
    return {"recipe": name, "seed": seed, "iters": summary["iter"], "wall_s": wall, "cpu_s": cpu,
            "val": val}


def run_torch(seed: int) -> dict:
    """nanoGPT's recipe (the baby preset's settings) in PyTorch eager (main checked it is installed)."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(ARGS.threads)
    r = BABY
    C, H, L, T, B = r.n_embd, r.n_head, r.n_layer, r.block_size, r.batch_size
    folder = data_dir() / DATASET
    V = load_meta(folder)["vocab_size"]
    splits = {s: torch.from_numpy(np.asarray(load_tokens(folder, s), dtype=np.int64))
              for s in ("train", "val")}

    def get_batch(split: str):
        d = splits[split]
        ix = torch.randint(len(d) - T, (B,))
        return torch.stack([d[i:i + T] for i in ix]), torch.stack([d[i + 1:i + 1 + T] for i in ix])

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(C, bias=r.bias), nn.LayerNorm(C, bias=r.bias)
            self.c_attn, self.attn_proj = nn.Linear(C, 3 * C, bias=r.bias), nn.Linear(C, C, bias=r.bias)
            self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C, bias=r.bias), nn.Linear(4 * C, C, bias=r.bias)

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (z.view(b, t, H, C // H).transpose(1, 2) for z in (q, k, v))     # (B, H, T, D)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, C)
            x = x + self.attn_proj(y)
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))                   # nanoGPT: exact GELU

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
            self.h = nn.ModuleList(Block() for _ in range(L))
            self.ln_f = nn.LayerNorm(C, bias=r.bias)
            for name, p in self.named_parameters():                  # nanoGPT's _init_weights
                if p.dim() >= 2:
                    std = 0.02 / math.sqrt(2 * L) if name.endswith("proj.weight") else 0.02
                    nn.init.normal_(p, mean=0.0, std=std)

        def forward(self, idx, targets):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))                   # (B, T, C)
            for block in self.h:
                x = block(x)
            logits = self.ln_f(x) @ self.wte.weight.T                                   # (B, T, V) tied
            return F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1))

    def lr_at(it: int) -> float:                                      # nanoGPT's get_lr
        if it < r.warmup_iters:
            return r.lr * (it + 1) / (r.warmup_iters + 1)
        ratio = min(1.0, (it - r.warmup_iters) / (r.lr_decay_iters - r.warmup_iters))
        return r.min_lr + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (r.lr - r.min_lr)

    torch.manual_seed(seed)
    model = GPT()
    params = list(model.parameters())
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": r.weight_decay},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=r.lr, betas=(r.beta1, r.beta2), eps=1e-8)
    t0, c0 = time.perf_counter(), time.process_time()
    x, y = get_batch("train")
    for it in range(r.max_iters + 1):
        if it % r.eval_interval == 0 or it == r.max_iters:             # nanoGPT's estimate_loss
            model.eval()
            with torch.no_grad():
                for split in ("train", "val"):
                    [model(*get_batch(split)).item() for _ in range(r.eval_iters)]
            model.train()
        if it == r.max_iters:
            break
        for group in opt.param_groups:
            group["lr"] = lr_at(it)
        loss = model(x, y)
        x, y = get_batch("train")
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), r.grad_clip)
        opt.step()
        opt.zero_grad(set_to_none=True)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    model.eval()
    d, total = splits["val"], 0.0
    with torch.no_grad():                            # whole val: back-to-back windows of T, each token once
        for start in range(0, len(d) - 1, T):
            end = min(start + T, len(d) - 1)
            total += model(d[start:end][None], d[start + 1:end + 1][None]).item() * (end - start)
    return {"recipe": "torch", "seed": seed, "iters": r.max_iters, "wall_s": wall, "cpu_s": cpu,
            "val": total / (len(d) - 1)}


def main() -> int:
    if not (data_dir() / DATASET / "meta.json").is_file():
        raise SystemExit(f"{data_dir() / DATASET} is not prepared: run `minigpt prepare {DATASET}` (or "
                         f"`minigpt prepare {DATASET} --from-file tinyshakespeare.txt`) first")
    if ARGS.torch and importlib.util.find_spec("torch") is None:
        raise SystemExit("--torch needs PyTorch: pip install -e '.[reference]'")
    if ARGS.ablation and ARGS.torch:
        raise SystemExit("--ablation runs minigpt presets only: leave out --torch")
    # (name, preset, overrides) of each run, per seed
    jobs = ablation_runs() if ARGS.ablation else [(r, r, {}) for r in ARGS.recipes]
    if ARGS.keep:
        taken = [f"{name}_s{seed}" for seed in ARGS.seeds for name, _, _ in jobs
                 if (ARGS.keep / f"{name}_s{seed}").exists()]
        if taken:
            raise SystemExit(f"{ARGS.keep} already holds {', '.join(taken)}: give another --keep folder")
    what = "ablation" if ARGS.ablation else \
        f"recipes {' '.join(ARGS.recipes)}{' torch' if ARGS.torch else ''}"
    print(f"speedrun benchmark: {what}, seeds "
          f"{' '.join(map(str, ARGS.seeds))}, {ARGS.threads} thread(s); wall time to the end, val loss over "
          f"the whole val split", flush=True)
    w = max([10] + [len(name) for name, _, _ in jobs])          # the name column
    print(f"{'recipe':<{w}} {'seed':>5} {'iters':>6} {'wall s':>8} {'cpu s':>8} {'whole val':>10}",
          flush=True)
    runs: list[dict] = []
    where = contextlib.nullcontext(str(ARGS.keep)) if ARGS.keep else \
        tempfile.TemporaryDirectory(prefix="speedrun_")
    with where as folder:
        for seed in ARGS.seeds:                      # interleaved: a load that drifts hits every recipe
            for name, preset, overrides in jobs + ([("torch", "", {})] if ARGS.torch else []):
                res = run_torch(seed) if name == "torch" else \
                    run_minigpt(preset, seed, Path(folder), overrides, name)
                runs.append(res)
                print(f"{res['recipe']:<{w}} {res['seed']:>5} {res['iters']:>6} {res['wall_s']:>8.1f} "
                      f"{res['cpu_s']:>8.1f} {res['val']:>10.4f}", flush=True)
    means = {}
    for recipe in dict.fromkeys(r["recipe"] for r in runs):
        mine = [r for r in runs if r["recipe"] == recipe]
        wall, cpu = statistics.mean(r["wall_s"] for r in mine), statistics.mean(r["cpu_s"] for r in mine)
        val = statistics.mean(r["val"] for r in mine)
        spread = statistics.stdev(r["val"] for r in mine) if len(mine) > 1 else 0.0
        means[recipe] = (wall, cpu, val)
        print(f"{recipe:<{w}} {'mean':>5} {mine[0]['iters']:>6} {wall:>8.1f} {cpu:>8.1f} {val:>10.4f} "
              f"+- {spread:.4f}")
    if "baby" in means and "speedrun" in means:
        ratio = means["speedrun"][0] / means["baby"][0]
        met = ratio <= GOAL_RATIO and means["speedrun"][2] <= GOAL_VAL
        print(f"speedrun / baby: wall time {ratio:.3f} (goal <= {GOAL_RATIO}), cpu time "
              f"{means['speedrun'][1] / means['baby'][1]:.3f}; mean whole val speedrun "
              f"{means['speedrun'][2]:.4f} (goal <= {GOAL_VAL}), baby {means['baby'][2]:.4f}: "
              f"{'goal met' if met else 'goal NOT met'}")
    if "torch" in means and "speedrun" in means:
        print(f"speedrun / PyTorch nanoGPT: wall time {means['speedrun'][0] / means['torch'][0]:.3f}, "
              f"cpu time {means['speedrun'][1] / means['torch'][1]:.3f}")
    if ARGS.ablation:
        print_ablation(means, w)
    if ARGS.keep:
        print(f"run folders kept in {ARGS.keep}")
    return 0


def print_ablation(means: dict[str, tuple[float, float, float]], w: int) -> None:
    """Each ablation run's mean CPU and wall time as a fraction of baby's (a_), and its whole-val change
    from the step before (the undo rows: from the speedrun, the last step)."""
    names = list(means)
    steps, fast = len(ABLATION_STEPS), names[len(ABLATION_STEPS) - 1]
    base_wall, base_cpu, _ = means[names[0]]
    print(f"ablation: time as a fraction of {names[0]}'s, whole-val change from the step before "
          f"(undo rows: from {fast})")
    print(f"{'recipe':<{w}} {'cpu':>6} {'wall':>6} {'whole val':>10} {'change':>8}")
    for i, name in enumerate(names):
        wall, cpu, val = means[name]
        before = names[i - 1] if 0 < i < steps else fast if i >= steps else None
        change = f"{val - means[before][2]:+8.4f}" if before else ""
        print(f"{name:<{w}} {cpu / base_cpu:>6.3f} {wall / base_wall:>6.3f} {val:>10.4f} {change:>8}")


if __name__ == "__main__":
    sys.exit(main())
