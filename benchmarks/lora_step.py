"""One LoRA fine-tuning step vs one full fine-tuning step at GPT-2 small's shape: seconds and peak memory.

GPT-2 small's shape (V 50257, block 1024, 12 layers, 12 heads, 768 channels) with random weights, float32:
real weights come from `minigpt download gpt2` on a connected machine and change nothing here. A step is
loss_and_grads + clip_grad_norm + AdamW.step on one batch of --batch rows of --tokens tokens. Each mode runs
in its own process, so its peak resident memory (ru_maxrss) is its own:

- full: every weight trained; AdamW keeps two moments per parameter;
- lora: the model frozen, rank --rank adapters on --targets (default c_attn: 294,912 trainable); AdamW
  keeps moments for the adapters only.

Printed: the median seconds per step (after one warm-up step), the peak RSS of each process, their ratios,
and what --steps such steps would take.

    python benchmarks/lora_step.py [--batch 4] [--tokens 128] [--rank 8] [--targets c_attn] [--repeat 3]
                                   [--threads 2] [--steps 200]

Needs an otherwise idle machine; on a busy one pass --threads 1 (OpenBLAS threads fighting other jobs slow
everything down by several times).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys

from _common import default_threads, keep_memory, median_seconds, set_blas_threads


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--tokens", type=int, default=128)
    p.add_argument("--rank", type=int, default=8)
    p.add_argument("--targets", default="c_attn", help="comma-separated: c_attn, c_proj, c_fc")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=default_threads())
    p.add_argument("--steps", type=int, default=200, help="report the time of this many steps")
    p.add_argument("--mode", choices=("both", "full", "lora"), default="both", help=argparse.SUPPRESS)
    return p.parse_args()


ARGS = parse()
set_blas_threads(ARGS.threads)
keep_memory()

import numpy as np  # noqa: E402

from minigpt import optim  # noqa: E402
from minigpt.finetune.lora import LoRAConfig, LoRAGPT  # noqa: E402
from minigpt.model import GPT, GPTConfig  # noqa: E402


def one_mode(mode: str) -> dict:
    """Build the model, time the step, report seconds and this process's peak memory."""
    config = GPTConfig(50257, 1024, 12, 12, 768)
    model = GPT(config, seed=0, dtype=np.float32)
    if mode == "lora":
        model = LoRAGPT(model, LoRAConfig(r=ARGS.rank, alpha=2 * ARGS.rank,
                                          targets=tuple(ARGS.targets.split(","))), seed=0)
    opt = optim.AdamW(model.params, lr=1e-4, weight_decay=0.0)
    rng = np.random.default_rng(0)
    x = rng.integers(0, config.vocab_size, (ARGS.batch, ARGS.tokens))                  # (B, T)
    y = rng.integers(0, config.vocab_size, (ARGS.batch, ARGS.tokens))                  # (B, T)

    def step() -> None:
        _, grads = model.loss_and_grads(x, y)
        optim.clip_grad_norm(grads, 1.0)
        opt.step(grads)

    seconds = median_seconds(step, ARGS.repeat, warmup=1)
    trainable = sum(int(v.size) for v in model.params.values())
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024              # Linux: KiB
    return {"mode": mode, "seconds": seconds, "peak_mib": peak_mib, "trainable": trainable}


def main() -> None:
    if ARGS.mode != "both":
        print(json.dumps(one_mode(ARGS.mode)))
        return
    results = {}
    for mode in ("full", "lora"):
        argv = [sys.executable, __file__, "--mode", mode] + [
            f"--{k}={v}" for k, v in vars(ARGS).items() if k not in ("mode",)]
        proc = subprocess.run(argv, capture_output=True, text=True, check=True)
        results[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    full, lora = results["full"], results["lora"]
    print(f"GPT-2 small shape, float32, batch {ARGS.batch} x {ARGS.tokens} tokens, {ARGS.threads} thread(s); "
          f"LoRA r {ARGS.rank} on {ARGS.targets}")
    for r in (full, lora):
        minutes = ARGS.steps * r["seconds"] / 60
        print(f"{r['mode']:>5}: {r['trainable']:>11,} trainable  {r['seconds']:6.2f} s/step  "
              f"peak RSS {r['peak_mib']:6,.0f} MiB  {ARGS.steps} steps ~ {minutes:5.1f} min")
    print(f"LoRA / full: time {lora['seconds'] / full['seconds']:.2f}, peak memory "
          f"{lora['peak_mib'] / full['peak_mib']:.2f}")


if __name__ == "__main__":
    main()
