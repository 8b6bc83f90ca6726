"""The optimizer's share of a training step: minigpt's AdamW and clip_grad_norm vs torch.optim.AdamW and
torch.nn.utils.clip_grad_norm_ on the same GPT-2-named float32 params, same thread count, in one run.

    python benchmarks/optim_step.py [--shape baby|gpt2] [--repeat 50] [--threads 2]

`baby` is nanoGPT's CPU recipe (V 65, T 64, C 128, 4 layers: 0.8M params); `gpt2` is GPT-2 small's 124M
(needs ~4 GB of memory for both libraries' params, grads and moments). Prints the median ms of each, the
ratios (minigpt / torch: below 1.0 means minigpt is faster) and a calibration: one in-place pass
`p += g` over every tensor, so you can read AdamW's cost as "N memory passes". torch is timed with its CPU
default (foreach=False) and with foreach=True. Needs an otherwise idle machine; torch is optional.
"""

from __future__ import annotations

import argparse

from _common import default_threads, keep_memory, median_ms, set_blas_threads


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=("baby", "gpt2"), default="baby")
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument("--threads", type=int, default=default_threads())
    return p.parse_args()


ARGS = parse()
set_blas_threads(ARGS.threads)
keep_memory()                    # the allocator setting the `minigpt` command applies

import numpy as np  # noqa: E402

from minigpt import optim  # noqa: E402
from minigpt.model import GPTConfig, param_shapes  # noqa: E402

CONFIGS = {"baby": GPTConfig(65, 64, 4, 4, 128), "gpt2": GPTConfig(50257, 1024, 12, 12, 768)}


def main() -> None:
    rng = np.random.default_rng(0)
    shapes = param_shapes(CONFIGS[ARGS.shape])
    params = {n: (0.02 * rng.standard_normal(s, dtype=np.float32)) for n, s in shapes.items()}
    grads = {n: (0.01 * rng.standard_normal(s, dtype=np.float32)) for n, s in shapes.items()}
    print(f"{ARGS.shape}: {sum(p.size for p in params.values()):,} float32 params in {len(params)} tensors, "
          f"{ARGS.threads} threads, median of {ARGS.repeat}")

    one_pass = median_ms(lambda: [np.add(params[n], grads[n], out=params[n]) for n in params], ARGS.repeat)
    opt = optim.AdamW(params, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    ours = median_ms(lambda: opt.step(grads), ARGS.repeat)
    ours_clip = median_ms(lambda: optim.clip_grad_norm(grads, 1e9), ARGS.repeat)  # measure, never scale
    print(f"one pass p += g         {one_pass:8.2f} ms")
    print(f"minigpt AdamW.step      {ours:8.2f} ms  (= {ours / one_pass:.1f} passes)")
    print(f"minigpt clip_grad_norm  {ours_clip:8.2f} ms")

    try:
        import torch
    except ImportError:
        print("torch not installed: no comparison")
        return
    torch.set_num_threads(ARGS.threads)
    tparams = {n: torch.from_numpy(p.copy()).requires_grad_(True) for n, p in params.items()}
    for n, p in tparams.items():
        p.grad = torch.from_numpy(grads[n])
    groups = [{"params": [p for p in tparams.values() if p.ndim >= 2], "weight_decay": 0.1},
              {"params": [p for p in tparams.values() if p.ndim < 2], "weight_decay": 0.0}]
    for foreach in (False, True):
        topt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99), foreach=foreach)
        theirs = median_ms(topt.step, ARGS.repeat)
        print(f"torch AdamW foreach={foreach!s:<5}  {theirs:8.2f} ms  minigpt/torch {ours / theirs:.2f}")
        del topt
    tclip = median_ms(lambda: torch.nn.utils.clip_grad_norm_(list(tparams.values()), 1e9), ARGS.repeat)
    print(f"torch clip_grad_norm_   {tclip:8.2f} ms  minigpt/torch {ours_clip / tclip:.2f}")


if __name__ == "__main__":
    main()
