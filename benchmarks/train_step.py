"""A whole training step (forward, backward, clip, AdamW) of minigpt vs the same GPT in PyTorch eager.

The default shape is nanoGPT's CPU recipe ("baby": 4 layers, 4 heads, 128 channels, block 64, batch 12,
65-token vocabulary), float32, the same thread count for both. Printed, all measured in this one run:

- median ms per step for minigpt in one process, for minigpt's step engine (with 2+ threads: the batch
  split over that many worker processes, minigpt/parallel/team.py, what `minigpt train` runs), and for
  PyTorch eager, and the ratio of what `minigpt train` runs to PyTorch (below 1.0: minigpt is faster),
  timed in alternating rounds so that a change of load on a shared machine hits all of them;
- minigpt's achieved GFLOP/s (model.flops_per_token() x tokens / time) against np.matmul's peak on
  this machine at the model's own matmul shapes — how much of the machine the step uses.

    python benchmarks/train_step.py [--preset baby|small-ctx256] [--repeat 30] [--threads 2] [--profile]

--profile also prints where minigpt's step spends its time (cProfile, ms per step per layer function, as
seen from the calling thread; the profiler itself adds ~10 %). MINIGPT_ENGINES=0 measures the plain
definitions only (minigpt/engines.py).

Needs an otherwise idle machine (2 cores: anything beside it distorts both numbers). PyTorch is optional.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from _common import default_threads, keep_memory, median_ms, set_blas_threads

SHAPES = {  # name: (vocab, block, layers, heads, channels, batch)
    "baby": (65, 64, 4, 4, 128, 12),
    "small-ctx256": (65, 256, 6, 6, 384, 8),
}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(SHAPES), default="baby")
    p.add_argument("--repeat", type=int, default=30)
    p.add_argument("--threads", type=int, default=default_threads())
    p.add_argument("--rounds", type=int, default=5, help="alternate minigpt and PyTorch this many times")
    p.add_argument("--profile", action="store_true", help="print where minigpt's step spends its time")
    return p.parse_args()


ARGS = parse()
set_blas_threads(ARGS.threads)   # read by BLAS when numpy / torch load: set before importing them
keep_memory()                    # the allocator setting the `minigpt` command applies

import numpy as np  # noqa: E402

from minigpt import engines, optim  # noqa: E402
from minigpt.model import GPT, GPTConfig  # noqa: E402
from minigpt.parallel.team import Team  # noqa: E402


def minigpt_step(cfg: GPTConfig, B: int, team: Team | None = None):
    """A training step of a fresh model on fixed random ids: the function to time, and the model.
    With a team, the whole step runs on its worker processes (what `minigpt train` does on two or more
    cores: minigpt/parallel/team.py): their rows' gradients, then clipping and AdamW on their shards."""
    model = GPT(cfg, seed=0, dtype=np.float32)
    opt = optim.AdamW(model.params, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, cfg.vocab_size, (B, cfg.block_size))
    targets = rng.integers(0, cfg.vocab_size, (B, cfg.block_size))

    if team is not None:
        team.adopt(model.params, opt)                 # as train() does: AdamW's step on the workers too

    def step():
        if team is not None:
            team.step(opt, idx, targets, 1.0)
            return
        _, grads = model.loss_and_grads(idx, targets)
        optim.clip_grad_norm(grads, 1.0)
        opt.step(grads)

    return step, model


PROFILED = ("linear_forward", "linear_backward", "sdpa_forward", "sdpa_backward", "gelu_forward",
            "gelu_backward", "layernorm_forward", "layernorm_backward", "embedding_forward",
            "embedding_backward", "cross_entropy_forward", "cross_entropy_backward", "clip_grad_norm", "step")


def profile(step, steps: int = 20) -> None:
    """Where the step's time goes: cumulative ms per step of each layer function (calling thread's view)."""
    import cProfile
    import pstats

    step()
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(steps):
        step()
    prof.disable()
    stats = pstats.Stats(prof).stats                  # (file, line, name) -> (cc, nc, tottime, cumtime, ...)
    total = sum(v[3] for k, v in stats.items() if k[2] == "step" and k[0] == __file__) / steps
    rows = {}
    for (file, _, name), (_, _, _, cum, _) in stats.items():
        if name in PROFILED and "minigpt" in file and not (name == "step" and "optim" not in file):
            rows[name] = rows.get(name, 0.0) + cum / steps
    print(f"  where minigpt's step goes (cProfile, {total * 1e3:.1f} ms/step profiled):")
    for name, sec in sorted(rows.items(), key=lambda kv: -kv[1]):
        print(f"    {name:24s} {sec * 1e3:6.2f} ms  {sec / total:4.0%}")
    print("    (the rest: the head's matmuls, residual adds, reshapes and Python in gpt_loss_and_grads)")


def matmul_peak_gflops(cfg: GPTConfig, B: int) -> float:
    """np.matmul's best rate at the step's largest linear-layer shapes (N x C @ C x 4C and back)."""
    rng = np.random.default_rng(0)
    N, C = B * cfg.block_size, cfg.n_embd
    a = rng.standard_normal((N, C)).astype(np.float32)
    w = rng.standard_normal((C, 4 * C)).astype(np.float32)
    ms = median_ms(lambda: a @ w, 50, warmup=3)
    return 2 * N * C * 4 * C / ms / 1e6


def torch_step(cfg: GPTConfig, B: int, threads: int):
    """The same step in PyTorch eager (None without torch): the function to time."""
    try:
        import torch
        import torch.nn as nn
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    C, H = cfg.n_embd, cfg.n_head

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.ln_1, self.ln_2 = nn.LayerNorm(C), nn.LayerNorm(C)
            self.c_attn, self.attn_proj = nn.Linear(C, 3 * C), nn.Linear(C, C)
            self.c_fc, self.mlp_proj = nn.Linear(C, 4 * C), nn.Linear(4 * C, C)

        def forward(self, x):
            b, t, _ = x.shape
            q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
            q, k, v = (z.view(b, t, H, C // H).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, C)
            x = x + self.attn_proj(y)
            return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x)), approximate="tanh"))

    class TorchGPT(nn.Module):   # nanoGPT's shape: tied head, pre-LN blocks, no dropout
        def __init__(self):
            super().__init__()
            self.wte = nn.Embedding(cfg.vocab_size, C)
            self.wpe = nn.Embedding(cfg.block_size, C)
            self.h = nn.ModuleList(Block() for _ in range(cfg.n_layer))
            self.ln_f = nn.LayerNorm(C)

        def forward(self, idx, targets):
            x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1]))
            for block in self.h:
                x = block(x)
            logits = self.ln_f(x) @ self.wte.weight.T
            return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))

    model = TorchGPT()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=1e-3, betas=(0.9, 0.99))
    idx = torch.randint(0, cfg.vocab_size, (B, cfg.block_size))
    targets = torch.randint(0, cfg.vocab_size, (B, cfg.block_size))

    def step():
        loss = model(idx, targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)

    return step


def interleaved_ms(fns: list, repeat: int, rounds: int) -> list[float]:
    """Median ms of each function, timed in alternating rounds (a load change hits both alike)."""
    samples: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        median_ms(fn, 1, warmup=3)
    per_round = max(1, repeat // rounds)
    for _ in range(rounds):
        for fn, out in zip(fns, samples, strict=True):
            out.extend(median_ms(fn, 1, warmup=0) for _ in range(per_round))
    return [statistics.median(out) for out in samples]


def main() -> None:
    V, P, L, H, C, B = SHAPES[ARGS.preset]
    cfg = GPTConfig(vocab_size=V, block_size=P, n_layer=L, n_head=H, n_embd=C)
    use_team = engines.enabled() and ARGS.threads >= 2
    team = Team(cfg, np.float32, min(ARGS.threads, B), B) if use_team else None
    try:
        step, model = minigpt_step(cfg, B)
        fns = {"minigpt, one process": step}
        if team is not None:
            fns[f"minigpt, {team.n_workers} workers"] = minigpt_step(cfg, B, team)[0]
        theirs_step = torch_step(cfg, B, ARGS.threads)
        if theirs_step is not None:
            fns["PyTorch eager"] = theirs_step
        times = dict(zip(fns, interleaved_ms(list(fns.values()), ARGS.repeat, ARGS.rounds), strict=True))
    finally:
        if team is not None:
            team.close()
    flops = model.flops_per_token() * B * P
    peak = matmul_peak_gflops(cfg, B)
    print(f"training step, preset {ARGS.preset} (L{L} H{H} C{C} block {P} batch {B} V{V}), float32, "
          f"{ARGS.threads} thread(s), median of {ARGS.repeat} in {ARGS.rounds} alternating rounds, "
          f"engines {'on' if engines.enabled() else 'off'}")
    for name, ms in times.items():
        print(f"  {name:22s} {ms:8.2f} ms/step   {flops / ms / 1e6:6.1f} GFLOP/s = "
              f"{flops / ms / 1e6 / peak:4.0%} of np.matmul's {peak:.0f} GFLOP/s peak at these shapes")
    ours_name = list(times)[1] if team is not None else list(times)[0]   # what `minigpt train` runs
    if "PyTorch eager" not in times:
        print("  PyTorch not installed: no ratio (pip install -e '.[reference]')")
    else:
        ratio = times[ours_name] / times["PyTorch eager"]
        print(f"  ratio {ours_name} / PyTorch = {ratio:.2f}  (goal <= 0.8)")
    if ARGS.profile:
        profile(step)


if __name__ == "__main__":
    sys.exit(main())
