"""The laptop numbers a learner should see: nanoGPT's CPU recipe trained in PyTorch, several seeds.

Writes reference/laptop.json: train and val loss at iterations 0, 250, ..., 2000 for each seed, their mean
and spread, wall time, ms per iteration, peak memory, the torch version and thread count. check.py compares
a learner's `minigpt train --preset baby` run (runs/baby/log.jsonl) with the mean +- a band.

    python lessons/09_training/make_laptop_reference.py                      # seeds 0 1 2 3, 2 at a time
    python lessons/09_training/make_laptop_reference.py --seeds 0 1 --jobs 1 --gelu tanh --out /tmp/x.json

Everything here follows karpathy/nanoGPT (train.py, model.py, data/shakespeare_char/prepare.py), rewritten
for this script, with the README's CPU overrides (4 layers, 4 heads, 128 channels, block 64, batch 12,
2000 iterations, lr 1e-3 cosine to 1e-4 at 2000 after 100 warm-up steps, beta2 0.99, dropout 0, 20 eval
batches, bias False: train.py's default):

- data: the sorted distinct characters of tiny Shakespeare, the first 90 % of characters train, the rest val;
- get_batch: torch.randint(len(data) - block_size, (batch_size,)) start positions, x and y shifted by one;
  one torch generator (torch.manual_seed(seed)) draws the weights, the training batches and the evaluation
  batches, in nanoGPT's order (the next training batch is fetched right after each forward);
- estimate_loss: model.eval(), eval_iters batches per split, the mean; at every iteration that is a multiple
  of eval_interval, before that iteration's step (so "iter 2000" is after 2000 updates);
- get_lr: nanoGPT's current formula, warm-up lr * (it + 1) / (warmup + 1), then cosine to min_lr;
- AdamW (torch.optim.AdamW, eps 1e-8), weight decay 0.1 on tensors with ndim >= 2 only; clip_grad_norm_ 1.0;
- the model: pre-LN GPT, LayerNorm without bias when bias=False, head tied to wte, weights N(0, 0.02), the
  residual projections (c_proj) N(0, 0.02 / sqrt(2 n_layer)), wte and wpe N(0, 0.02), biases 0;
- GELU: nanoGPT's exact erf GELU (nn.GELU()) by default; --gelu tanh gives GPT-2's tanh form, which minigpt
  uses (they differ by at most 5e-4). laptop.json records which.

Each seed runs in its own process with 1 thread (torch.set_num_threads(1)), so peak memory (ru_maxrss) is
per run. What this script does not do: dropout, gradient accumulation, checkpoints, torch.compile, CUDA.
Needs the `reference` extra (torch); minigpt is not imported.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_TEXT = HERE.parents[1].parent / "shared" / "data" / "tinyshakespeare.txt"
RECIPE = {  # nanoGPT's README CPU command on config/train_shakespeare_char.py; the keys are minigpt's names
    "dataset": "shakespeare_char", "n_layer": 4, "n_head": 4, "n_embd": 128, "block_size": 64,
    "dropout": 0.0, "bias": False, "batch_size": 12, "grad_accum": 1, "max_iters": 2000, "lr": 1e-3,
    "min_lr": 1e-4, "warmup_iters": 100, "lr_decay_iters": 2000, "beta1": 0.9, "beta2": 0.99,
    "weight_decay": 0.1, "grad_clip": 1.0, "eval_interval": 250, "eval_iters": 20,
}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    p.add_argument("--jobs", type=int, default=2, help="seeds trained at the same time (1 thread each)")
    p.add_argument("--gelu", choices=("exact", "tanh"), default="exact")
    p.add_argument("--text", type=Path, default=DEFAULT_TEXT, help="tiny Shakespeare (input.txt)")
    p.add_argument("--out", type=Path, default=HERE / "reference" / "laptop.json")
    p.add_argument("--one-seed", type=int, default=None, help=argparse.SUPPRESS)   # internal: a child run
    p.add_argument("--result", type=Path, default=None, help=argparse.SUPPRESS)
    return p.parse_args()


# ---- one run (a child process) -----------------------------------------------------------------------------
def train_one(seed: int, text_path: Path, gelu: str) -> dict:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    torch.set_num_threads(1)
    r = RECIPE
    C, H, L, T, B = r["n_embd"], r["n_head"], r["n_layer"], r["block_size"], r["batch_size"]

    text = text_path.read_text(encoding="utf-8")                # prepare.py: chars sorted, 90 / 10 split
    chars = sorted(set(text))
    stoi = {ch: i for i, ch in enumerate(chars)}
    ids = np.array([stoi[ch] for ch in text], dtype=np.uint16)
    n = len(ids)
    data = {"train": ids[: int(n * 0.9)], "val": ids[int(n * 0.9):]}
    V = len(chars)

    def get_batch(split: str):
        d = data[split]
        ix = torch.randint(len(d) - T, (B,))
        x = torch.stack([torch.from_numpy(d[i:i + T].astype(np.int64)) for i in ix])
        y = torch.stack([torch.from_numpy(d[i + 1:i + 1 + T].astype(np.int64)) for i in ix])
        return x, y

    act = nn.GELU() if gelu == "exact" else nn.GELU(approximate="tanh")

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = nn.Linear(C, 3 * C, bias=r["bias"])
            self.c_proj = nn.Linear(C, C, bias=r["bias"])

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = self.c_attn(x).split(C, dim=2)
            q, k, v = (z.view(b, t, H, C // H).transpose(1, 2) for z in (q, k, v))     # (B, H, T, D)
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)                 # (B, H, T, D)
            return self.c_proj(y.transpose(1, 2).contiguous().view(b, t, C))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.c_fc = nn.Linear(C, 4 * C, bias=r["bias"])
            self.c_proj = nn.Linear(4 * C, C, bias=r["bias"])

        def forward(self, x):
            return self.c_proj(act(self.c_fc(x)))

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.attn = nn.LayerNorm(C, bias=r["bias"]), Attention()
            self.ln_2, self.mlp = nn.LayerNorm(C, bias=r["bias"]), MLP()

        def forward(self, x):
            x = x + self.attn(self.ln_1(x))
            return x + self.mlp(self.ln_2(x))

    class GPT(nn.Module):
        def __init__(self):
            super().__init__()
            self.wte, self.wpe = nn.Embedding(V, C), nn.Embedding(T, C)
            self.h = nn.ModuleList(Block() for _ in range(L))
            self.ln_f = nn.LayerNorm(C, bias=r["bias"])
            self.lm_head = nn.Linear(C, V, bias=False)
            self.wte.weight = self.lm_head.weight                    # tied: one parameter, decayed once
            self.apply(self._init_weights)
            for name, p in self.named_parameters():
                if name.endswith("c_proj.weight"):
                    nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * L))

        @staticmethod
        def _init_weights(m):
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, mean=0.0, std=0.02)

        def forward(self, idx, targets):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))                     # (B, T, C)
            for block in self.h:
                x = block(x)
            logits = self.lm_head(self.ln_f(x))                                         # (B, T, V)
            return F.cross_entropy(logits.view(-1, V), targets.view(-1), ignore_index=-1)

    @torch.no_grad()
    def estimate_loss(model) -> dict:
        model.eval()
        out = {}
        for split in ("train", "val"):
            out[split] = float(torch.tensor([model(*get_batch(split)).item()
                                             for _ in range(r["eval_iters"])]).mean())
        model.train()
        return out

    @torch.no_grad()
    def full_val_loss(model) -> float:
        """The mean loss over every token of val, in back-to-back windows of T (the last partial one too)."""
        model.eval()
        d = torch.from_numpy(data["val"].astype(np.int64))
        total, count = 0.0, 0
        for start in range(0, len(d) - 1, T):           # every val token is predicted exactly once
            end = min(start + T, len(d) - 1)
            total += model(d[start:end][None], d[start + 1:end + 1][None]).item() * (end - start)
            count += end - start
        model.train()
        return total / count

    def get_lr(it: int) -> float:
        if it < r["warmup_iters"]:
            return r["lr"] * (it + 1) / (r["warmup_iters"] + 1)
        if it > r["lr_decay_iters"]:
            return r["min_lr"]
        ratio = (it - r["warmup_iters"]) / (r["lr_decay_iters"] - r["warmup_iters"])
        return r["min_lr"] + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (r["lr"] - r["min_lr"])

    torch.manual_seed(seed)
    model = GPT()
    params = list(model.parameters())                   # the tied weight appears once
    groups = [{"params": [p for p in params if p.dim() >= 2], "weight_decay": r["weight_decay"]},
              {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=r["lr"], betas=(r["beta1"], r["beta2"]), eps=1e-8)

    evals, step_s = [], 0.0
    t_start = time.perf_counter()
    x, y = get_batch("train")
    it = 0
    while True:
        lr = get_lr(it)
        for group in opt.param_groups:
            group["lr"] = lr
        if it % r["eval_interval"] == 0:
            losses = estimate_loss(model)
            evals.append({"iter": it, "train_loss": losses["train"], "val_loss": losses["val"],
                          "time_s": round(time.perf_counter() - t_start, 2)})
            print(f"seed {seed} iter {it}: train {losses['train']:.4f} val {losses['val']:.4f}", flush=True)
        if it >= r["max_iters"]:      # nanoGPT takes one more step after this evaluation: it changes nothing
            break
        t0 = time.perf_counter()
        loss = model(x, y)
        x, y = get_batch("train")     # nanoGPT prefetches the next batch right after the forward
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), r["grad_clip"])
        opt.step()
        opt.zero_grad(set_to_none=True)
        step_s += time.perf_counter() - t0
        it += 1
    wall = time.perf_counter() - t_start
    full = full_val_loss(model)
    print(f"seed {seed}: val loss over the whole val split {full:.4f}", flush=True)
    return {"seed": seed, "evals": evals, "val_loss_full": full, "wall_s": round(wall, 1),
            "ms_per_iter": round(1000 * step_s / r["max_iters"], 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "vocab_size": V, "train_tokens": len(data["train"]), "val_tokens": len(data["val"])}


# ---- the parent: run the seeds, gather, summarise ----------------------------------------------------------
def run_seeds(args: argparse.Namespace) -> list[dict]:
    env = os.environ | {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    tmp = Path(tempfile.mkdtemp(prefix="laptop_ref_"))
    pending, running, results = list(args.seeds), [], []
    while pending or running:
        while pending and len(running) < args.jobs:
            seed = pending.pop(0)
            out = tmp / f"seed{seed}.json"
            cmd = [sys.executable, __file__, "--one-seed", str(seed), "--result", str(out),
                   "--gelu", args.gelu, "--text", str(args.text)]
            running.append((subprocess.Popen(cmd, env=env), out, seed))
        time.sleep(1.0)
        for job in list(running):
            proc, out, seed = job
            if proc.poll() is None:
                continue
            running.remove(job)
            if proc.returncode != 0:
                raise SystemExit(f"seed {seed} failed (exit {proc.returncode})")
            results.append(json.loads(out.read_text(encoding="utf-8")))
            out.unlink()
    tmp.rmdir()
    return sorted(results, key=lambda res: res["seed"])


def summarise(runs: list[dict], args: argparse.Namespace) -> dict:
    import numpy as np
    import torch

    iters = [e["iter"] for e in runs[0]["evals"]]
    table = {}
    for key in ("train_loss", "val_loss"):
        values = np.array([[e[key] for e in res["evals"]] for res in runs])          # (seeds, evals)
        table[key] = {"mean": values.mean(0).round(4).tolist(),
                      "std": (values.std(0, ddof=1) if len(runs) > 1 else 0 * values[0]).round(4).tolist(),
                      "min": values.min(0).round(4).tolist(), "max": values.max(0).round(4).tolist()}
    return {
        "generator": "lessons/09_training/make_laptop_reference.py",
        "what": "nanoGPT's CPU recipe (the `baby` preset) on tiny Shakespeare, char-level, in PyTorch",
        "recipe": RECIPE,
        "gelu": "exact erf (nanoGPT's nn.GELU())" if args.gelu == "exact" else "tanh (GPT-2's, minigpt's)",
        "seeds": [res["seed"] for res in runs],
        "iters": iters,
        "summary": table,
        "spread": "std over seeds (ddof=1); min and max over seeds",
        "val_loss_full": {"what": "after the last iteration, the mean loss over every token of the val "
                          "split (back-to-back windows of block_size): the 20-batch estimate without its "
                          "sampling noise",
                          "per_seed": [round(res["val_loss_full"], 4) for res in runs],
                          "mean": round(float(np.mean([res["val_loss_full"] for res in runs])), 4),
                          "std": round(float(np.std([res["val_loss_full"] for res in runs], ddof=1)), 4)
                          if len(runs) > 1 else 0.0},
        "runs": runs,
        "machine": {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
                    "threads_per_run": 1, "runs_at_once": args.jobs, "cpu": platform.processor() or
                    platform.machine(), "cpus": os.cpu_count()},
        "note": "time and memory depend on the machine and on what else runs; the losses should not",
    }


def main() -> None:
    args = parse()
    if args.one_seed is not None:
        res = train_one(args.one_seed, args.text, args.gelu)
        args.result.write_text(json.dumps(res), encoding="utf-8")
        return
    if not args.text.is_file():
        raise SystemExit(f"{args.text} not found: pass --text path/to/tinyshakespeare.txt (the char-rnn "
                         "input.txt)")
    try:
        import torch  # noqa: F401
    except ImportError:
        raise SystemExit("needs PyTorch: pip install -e '.[reference]'") from None
    runs = run_seeds(args)
    ref = summarise(runs, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(ref, indent=1) + "\n", encoding="utf-8")
    val = ref["summary"]["val_loss"]
    print(f"wrote {args.out}: val loss at {ref['iters'][-1]} = {val['mean'][-1]:.4f} +- {val['std'][-1]:.4f} "
          f"(seeds {ref['seeds']}, {args.gelu} GELU)")


if __name__ == "__main__":
    main()
