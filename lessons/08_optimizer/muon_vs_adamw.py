"""A measured comparison: AdamW on everything vs Muon on the blocks' matrices + AdamW on the rest.

    MINIGPT_DATA=/path/to/data python lessons/08_optimizer/muon_vs_adamw.py [--steps 400] [--seeds 0 1]

The speedrun's shape (2 layers x 128 channels, 4 heads, block 64, batch 12, no bias, no dropout) on tiny
Shakespeare, char-level (`minigpt prepare shakespeare_char` first), with the speedrun's recipe around the
optimizer: cosine_lr with a 30-step warm-up down to 1e-5 at the last step, clip_grad_norm 1.0. Every run
of a seed starts from the same weights and draws the same batches. After --steps steps it prints the loss
on the whole val split (non-overlapping windows), the mean training loss of the last 50 steps and the time.

    adamw lr X   AdamW(lr X, betas (0.9, 0.99), wd 0.1) on every param (the speedrun's: lr 6e-3)
    muon lr X    Muon(lr X, momentum 0.95, Nesterov, wd 0.1) on the 2-D weights of the blocks (h.*),
                 AdamW(lr 6e-3) on the embeddings and the LayerNorm gains; one schedule scales both lrs

What it does not do: tune either optimizer beyond a few learning rates, run the full 1500-step speedrun,
or change the trainer (the loop below is the trainer's step, written out).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from minigpt import optim
from minigpt.files.paths import data_dir
from minigpt.model import GPT, GPTConfig
from minigpt.training.batches import load_token_data

ADAMW = {"lr": 6e-3, "betas": (0.9, 0.99), "weight_decay": 0.1}


def val_loss(model: GPT, ids: np.ndarray, block: int, rows: int = 64) -> float:
    """Mean loss over every non-overlapping window of the val split (the same windows for every run)."""
    n = (len(ids) - 1) // block
    starts = np.arange(n) * block                                             # (N,)
    total = 0.0
    for i in range(0, n, rows):
        s = starts[i:i + rows, None] + np.arange(block)                       # (R, T)
        total += model.loss(ids[s], ids[s + 1]) * len(s)
    return total / n


def run(name: str, adamw_lr: float | None, muon_lr: float | None, steps: int, seed: int, data,
        cfg: GPTConfig) -> dict:
    model = GPT(cfg, seed=seed, dtype=np.float32)
    params = model.params
    hidden = {n: p for n, p in params.items() if n.startswith("h.") and p.ndim == 2}
    if muon_lr is None:
        opts = [(optim.AdamW(params, **dict(ADAMW, lr=adamw_lr)), list(params), adamw_lr)]
    else:
        rest = {n: p for n, p in params.items() if n not in hidden}
        opts = [(optim.Muon(hidden, lr=muon_lr, weight_decay=0.1), list(hidden), muon_lr),
                (optim.AdamW(rest, **ADAMW), list(rest), ADAMW["lr"])]
    rng = np.random.default_rng(1000 + seed)                                  # the same batches per seed
    losses = []
    t0 = time.perf_counter()
    for it in range(steps):
        x, y = data.train.get_batch(rng)                                      # (B, T), (B, T)
        loss, grads = model.loss_and_grads(x, y)
        optim.clip_grad_norm(grads, 1.0)
        scale = optim.cosine_lr(it, 1.0, warmup_iters=30, decay_iters=steps, min_lr=1e-5 / ADAMW["lr"])
        for opt, names, peak in opts:
            opt.lr = peak * scale
            opt.step({n: grads[n] for n in names})
        losses.append(loss)
    seconds = time.perf_counter() - t0
    return {"name": name, "seed": seed, "val": val_loss(model, data.val.ids, cfg.block_size),
            "train50": float(np.mean(losses[-50:])), "ms_per_step": 1000 * seconds / steps}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--adamw_lr", type=float, nargs="*", default=[6e-3], help="AdamW-only runs")
    ap.add_argument("--muon_lr", type=float, nargs="*", default=[0.02, 0.05], help="Muon + AdamW runs")
    args = ap.parse_args()
    data = load_token_data(data_dir() / "shakespeare_char", 12, 64)
    cfg = GPTConfig(vocab_size=data.vocab_size, block_size=64, n_layer=2, n_head=4, n_embd=128,
                    dropout=0.0, bias=False)
    runs = [(f"adamw lr {lr:g}", lr, None) for lr in args.adamw_lr] + \
        [(f"muon lr {lr:g}", None, lr) for lr in args.muon_lr]
    print(f"{args.steps} steps, seeds {args.seeds}: val loss over the whole val split "
          f"({(len(data.val.ids) - 1) // 64} windows of 64)")
    results = []
    for seed in args.seeds:
        for name, adamw_lr, muon_lr in runs:
            r = run(name, adamw_lr, muon_lr, args.steps, seed, data, cfg)
            results.append(r)
            print(f"  seed {seed}  {name:<15} val {r['val']:.4f}   train (last 50) {r['train50']:.4f}   "
                  f"{r['ms_per_step']:.0f} ms/step", flush=True)
    for name, _, _ in runs:
        vals = [r["val"] for r in results if r["name"] == name]
        print(f"{name:<15} mean val {np.mean(vals):.4f} over {len(vals)} seed(s)")


if __name__ == "__main__":
    main()
