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

Losses are deterministic for a seed and a thread count; wall times need an otherwise idle machine. On a
busy one use --threads 1 (two BLAS threads spin-wait for each other when a core is taken) and compare only
the ratio, which interleaving the recipes seed by seed keeps roughly fair.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import tempfile
import time
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


def quiet(_msg: str) -> None:
    pass


def run_minigpt(preset: str, seed: int, folder: Path) -> dict:
    """One `minigpt train --preset NAME --seed N` in this process; the whole-val loss of its last weights."""
    cfg = config_from_preset(preset, {"seed": seed})
    if cfg.dataset != DATASET:
        raise SystemExit(f"preset {preset} trains on {cfg.dataset}; this benchmark compares on {DATASET}")
    data = load_token_data(data_dir() / DATASET, cfg.batch_size, cfg.block_size)
    out = folder / f"{preset}_s{seed}"
    t0, c0 = time.perf_counter(), time.process_time()
    summary = train(cfg, out, data, progress=False, sample=False, log=quiet)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    model = checkpoint.load(out / "last").model
    val, _ = mean_nll(model, np.asarray(data.val.ids), batch_size=32)
    return {"recipe": preset, "seed": seed, "iters": summary["iter"], "wall_s": wall, "cpu_s": cpu,
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
    print(f"speedrun benchmark: recipes {' '.join(ARGS.recipes)}{' torch' if ARGS.torch else ''}, seeds "
          f"{' '.join(map(str, ARGS.seeds))}, {ARGS.threads} thread(s); wall time to the end, val loss over "
          f"the whole val split", flush=True)
    print(f"{'recipe':<10} {'seed':>5} {'iters':>6} {'wall s':>8} {'cpu s':>8} {'whole val':>10}", flush=True)
    runs: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="speedrun_") as tmp:
        for seed in ARGS.seeds:                      # interleaved: a load that drifts hits every recipe
            for recipe in ARGS.recipes + (["torch"] if ARGS.torch else []):
                res = run_torch(seed) if recipe == "torch" else run_minigpt(recipe, seed, Path(tmp))
                runs.append(res)
                print(f"{res['recipe']:<10} {res['seed']:>5} {res['iters']:>6} {res['wall_s']:>8.1f} "
                      f"{res['cpu_s']:>8.1f} {res['val']:>10.4f}", flush=True)
    means = {}
    for recipe in dict.fromkeys(r["recipe"] for r in runs):
        mine = [r for r in runs if r["recipe"] == recipe]
        wall, cpu = statistics.mean(r["wall_s"] for r in mine), statistics.mean(r["cpu_s"] for r in mine)
        val = statistics.mean(r["val"] for r in mine)
        spread = statistics.stdev(r["val"] for r in mine) if len(mine) > 1 else 0.0
        means[recipe] = (wall, cpu, val)
        print(f"{recipe:<10} {'mean':>5} {mine[0]['iters']:>6} {wall:>8.1f} {cpu:>8.1f} {val:>10.4f} "
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
