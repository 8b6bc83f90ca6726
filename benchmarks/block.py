"""One transformer block, forward + backward, minigpt (NumPy) vs PyTorch eager on the same shapes.

Shapes default to nanoGPT's CPU recipe (B=12, T=64, C=128, H=4), float32, the same thread count for both.
Prints the median time of each (timed in alternating rounds; MINIGPT_ENGINES=0 measures the definitions),
their ratio (minigpt / torch: below 1.0 means minigpt is faster) and where minigpt's time goes (matmuls vs
the rest), measured in the same run. Needs an otherwise idle machine.

    python benchmarks/block.py [--B 12 --T 64 --C 128 --H 4 --repeat 50 --threads 2]

PyTorch is optional: without it only minigpt's numbers are printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys

from _common import default_threads, keep_memory, median_ms, set_blas_threads


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--B", type=int, default=12)
    p.add_argument("--T", type=int, default=64)
    p.add_argument("--C", type=int, default=128)
    p.add_argument("--H", type=int, default=4)
    p.add_argument("--repeat", type=int, default=50)
    p.add_argument("--threads", type=int, default=default_threads())
    p.add_argument("--rounds", type=int, default=5, help="alternate minigpt and PyTorch this many times")
    return p.parse_args()


ARGS = parse()
set_blas_threads(ARGS.threads)
keep_memory()                    # the allocator setting the `minigpt` command applies

import numpy as np  # noqa: E402

from minigpt import engines  # noqa: E402
from minigpt.layers import (  # noqa: E402
    attention_backward,
    attention_forward,
    layernorm_backward,
    layernorm_forward,
    mlp_backward,
    mlp_forward,
)


def make_params(C: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    f32 = np.float32
    return {
        "ln_1.weight": np.ones(C, f32), "ln_1.bias": np.zeros(C, f32),
        "attn.c_attn.weight": (0.02 * rng.standard_normal((C, 3 * C))).astype(f32),
        "attn.c_attn.bias": np.zeros(3 * C, f32),
        "attn.c_proj.weight": (0.02 * rng.standard_normal((C, C))).astype(f32),
        "attn.c_proj.bias": np.zeros(C, f32),
        "ln_2.weight": np.ones(C, f32), "ln_2.bias": np.zeros(C, f32),
        "mlp.c_fc.weight": (0.02 * rng.standard_normal((C, 4 * C))).astype(f32),
        "mlp.c_fc.bias": np.zeros(4 * C, f32),
        "mlp.c_proj.weight": (0.02 * rng.standard_normal((4 * C, C))).astype(f32),
        "mlp.c_proj.bias": np.zeros(C, f32),
    }


def numpy_block_step(x: np.ndarray, p: dict[str, np.ndarray], H: int, dout: np.ndarray) -> np.ndarray:
    """x + attn(ln_1(x)), then + mlp(ln_2(.)); forward, then backward for dout. Returns dx."""
    a, c1 = layernorm_forward(x, p["ln_1.weight"], p["ln_1.bias"])
    a, c2 = attention_forward(a, p["attn.c_attn.weight"], p["attn.c_attn.bias"],
                              p["attn.c_proj.weight"], p["attn.c_proj.bias"], H)
    x1 = x + a
    m, c3 = layernorm_forward(x1, p["ln_2.weight"], p["ln_2.bias"])
    m, c4 = mlp_forward(m, p["mlp.c_fc.weight"], p["mlp.c_fc.bias"],
                        p["mlp.c_proj.weight"], p["mlp.c_proj.bias"])
    # backward, in reverse
    dm = mlp_backward(dout, c4)[0]
    dx1 = dout + layernorm_backward(dm, c3)[0]
    da = attention_backward(dx1, c2)[0]
    return dx1 + layernorm_backward(da, c1)[0]


def torch_block(B: int, T: int, C: int, H: int, threads: int):
    """The same block's forward + backward in PyTorch eager (None without torch): the function to time."""
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return None
    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    ln1, ln2 = torch.nn.LayerNorm(C), torch.nn.LayerNorm(C)
    c_attn, c_proj = torch.nn.Linear(C, 3 * C), torch.nn.Linear(C, C)
    c_fc, m_proj = torch.nn.Linear(C, 4 * C), torch.nn.Linear(4 * C, C)
    x = torch.randn(B, T, C, generator=g, requires_grad=True)
    dout = torch.randn(B, T, C, generator=g)

    def step():
        q, k, v = c_attn(ln1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x1 = x + c_proj(y)
        out = x1 + m_proj(F.gelu(c_fc(ln2(x1)), approximate="tanh"))
        out.backward(dout)

    return step


def main() -> None:
    B, T, C, H = ARGS.B, ARGS.T, ARGS.C, ARGS.H
    rng = np.random.default_rng(0)
    p = make_params(C, rng)
    x = rng.standard_normal((B, T, C)).astype(np.float32)
    dout = rng.standard_normal((B, T, C)).astype(np.float32)
    theirs_step = torch_block(B, T, C, H, ARGS.threads)
    fns = [lambda: numpy_block_step(x, p, H, dout)] + ([] if theirs_step is None else [theirs_step])
    samples: list[list[float]] = [[] for _ in fns]
    for fn in fns:
        median_ms(fn, 1, warmup=2)
    for _ in range(ARGS.rounds):                  # alternate, so a change of load hits both alike
        for fn, out in zip(fns, samples, strict=True):
            out.extend(median_ms(fn, 1, warmup=0) for _ in range(max(1, ARGS.repeat // ARGS.rounds)))
    ours, *rest = (statistics.median(out) for out in samples)
    theirs = rest[0] if rest else None

    # the matmuls alone (same shapes, same count) tell how much of the step is BLAS
    N = B * T
    shapes = [(N, C, 3 * C), (N, C, C), (N, C, 4 * C), (N, 4 * C, C)]
    mats = [(rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32),
             rng.standard_normal((m, n)).astype(np.float32)) for m, k, n in shapes]
    q = rng.standard_normal((B, H, T, C // H)).astype(np.float32)
    att = rng.standard_normal((B, H, T, T)).astype(np.float32)

    def matmuls():
        for a, b, d in mats:  # forward, dx and dweight of every linear layer
            a @ b
            d @ b.T
            a.T @ d
        for _ in range(2):  # q k^T and att v forward; 4 batched matmuls backward
            q @ q.swapaxes(-1, -2)
            att @ q
            att @ q
            att.swapaxes(-1, -2) @ q
    mm = median_ms(matmuls, ARGS.repeat, warmup=2)
    flops = 3 * 2 * N * C * (3 * C + C + 4 * C + 4 * C) + 3 * 2 * 2 * B * H * T * T * (C // H)

    print(f"block fwd+bwd  B={B} T={T} C={C} H={H} float32, {ARGS.threads} thread(s), "
          f"median of {ARGS.repeat} in {ARGS.rounds} alternating rounds, "
          f"engines {'on' if engines.enabled() else 'off'}")
    print(f"  minigpt (NumPy)  {ours:8.2f} ms   {flops / ours / 1e6:6.1f} GFLOP/s")
    print(f"  its matmuls only {mm:8.2f} ms   (~{100 * mm / ours:.0f}% of the step; the rest is elementwise,"
          " softmax, layer-norm, copies)")
    if theirs is None:
        print("  PyTorch not installed: no ratio (pip install -e '.[reference]')")
        return
    print(f"  PyTorch eager    {theirs:8.2f} ms   {flops / theirs / 1e6:6.1f} GFLOP/s")
    print(f"  ratio minigpt / PyTorch = {ours / theirs:.2f}  (goal <= 0.8)")


if __name__ == "__main__":
    sys.exit(main())
