"""A whole training step (forward, backward, clip, AdamW) of minigpt vs the same GPT in PyTorch eager.

The default shape is nanoGPT's CPU recipe ("baby": 4 layers, 4 heads, 128 channels, block 64, batch 12,
65-token vocabulary), float32, the same thread count for both. Printed, all measured in this one run:

- median ms per step for minigpt and for PyTorch eager, and their ratio (below 1.0: minigpt is faster);
- minigpt's achieved GFLOP/s (model.flops_per_token() x tokens / time) against np.matmul's peak on
  this machine at the model's own matmul shapes — how much of the machine the step uses.

    python benchmarks/train_step.py [--preset baby|gpt2-small-ish] [--repeat 30] [--threads 2]

Needs an otherwise idle machine (2 cores: anything beside it distorts both numbers). PyTorch is optional.
"""

from __future__ import annotations

import argparse
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
    return p.parse_args()


ARGS = parse()
set_blas_threads(ARGS.threads)   # read by BLAS when numpy / torch load: set before importing them
keep_memory()                    # the allocator setting the `minigpt` command applies

import numpy as np  # noqa: E402

from minigpt import optim  # noqa: E402
from minigpt.model import GPT, GPTConfig  # noqa: E402


def minigpt_step_ms(cfg: GPTConfig, B: int, repeat: int) -> tuple[float, GPT]:
    model = GPT(cfg, seed=0, dtype=np.float32)
    opt = optim.AdamW(model.params, lr=1e-3, betas=(0.9, 0.99), weight_decay=0.1)
    rng = np.random.default_rng(0)
    idx = rng.integers(0, cfg.vocab_size, (B, cfg.block_size))
    targets = rng.integers(0, cfg.vocab_size, (B, cfg.block_size))

    def step():
        _, grads = model.loss_and_grads(idx, targets)
        optim.clip_grad_norm(grads, 1.0)
        opt.step(grads)

    return median_ms(step, repeat, warmup=3), model


def matmul_peak_gflops(cfg: GPTConfig, B: int) -> float:
    """np.matmul's best rate at the step's largest linear-layer shapes (N x C @ C x 4C and back)."""
    rng = np.random.default_rng(0)
    N, C = B * cfg.block_size, cfg.n_embd
    a = rng.standard_normal((N, C)).astype(np.float32)
    w = rng.standard_normal((C, 4 * C)).astype(np.float32)
    ms = median_ms(lambda: a @ w, 50, warmup=3)
    return 2 * N * C * 4 * C / ms / 1e6


def torch_step_ms(cfg: GPTConfig, B: int, repeat: int, threads: int) -> float | None:
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

    return median_ms(step, repeat, warmup=3)


def main() -> None:
    V, P, L, H, C, B = SHAPES[ARGS.preset]
    cfg = GPTConfig(vocab_size=V, block_size=P, n_layer=L, n_head=H, n_embd=C)
    ours, model = minigpt_step_ms(cfg, B, ARGS.repeat)
    flops = model.flops_per_token() * B * P
    peak = matmul_peak_gflops(cfg, B)
    print(f"training step, preset {ARGS.preset} (L{L} H{H} C{C} block {P} batch {B} V{V}), float32, "
          f"{ARGS.threads} thread(s), median of {ARGS.repeat}")
    print(f"  minigpt (NumPy)   {ours:8.2f} ms/step   {flops / ours / 1e6:6.1f} GFLOP/s "
          f"= {flops / ours / 1e6 / peak:.0%} of np.matmul's {peak:.0f} GFLOP/s peak at these shapes")
    theirs = torch_step_ms(cfg, B, ARGS.repeat, ARGS.threads)
    if theirs is None:
        print("  PyTorch not installed: no ratio (pip install -e '.[reference]')")
        return
    print(f"  PyTorch eager     {theirs:8.2f} ms/step   {flops / theirs / 1e6:6.1f} GFLOP/s")
    print(f"  ratio minigpt / PyTorch = {ours / theirs:.2f}  (goal <= 0.8)")


if __name__ == "__main__":
    sys.exit(main())
