"""Lesson 13 walk-through: data parallelism. Why averaging the ranks' gradients is the big-batch gradient,
the ring all-reduce step by step, what it costs as N grows, and ZeRO-1's memory arithmetic.

Run it: `minigpt lesson run 13` (or `python lesson.py` here). Prints evidence, saves two figures to figures/.
With mpiexec installed (pip install -e ".[distributed]") it also measures a real 2-rank step;
MINIGPT_QUICK=1 skips that and shortens the timing. Not here: the training loop itself (lesson 09).
"""

# %% [markdown]
# # Data parallelism: N processes, one model
# Every rank holds the whole model, draws the same global batch of N x B rows from the shared seed, and
# keeps its own B rows. Each computes the gradient of its slice's mean loss; one all-reduce sums them
# (weighted), and every rank takes the same AdamW step. We check the algebra first, in one process.

# %%
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")        # one BLAS thread, as each rank gets (set before numpy)

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minigpt.files.paths import figures_dir, quick
from minigpt.model import GPT, GPTConfig
from minigpt.parallel import allreduce
from minigpt.training.batches import shard

FIG = figures_dir(__file__)
QUICK = quick()
REPO = Path(__file__).resolve().parents[2]


def rel(a, b) -> float:
    """max |a - b| / max |b| over every gradient."""
    return max(float(np.abs(a[k] - b[k]).max() / np.abs(b[k]).max()) for k in b)


N, B, T = 4, 3, 8
cfg = GPTConfig(vocab_size=13, block_size=T, n_layer=2, n_head=2, n_embd=12, dropout=0.0)
model = GPT(cfg, seed=0, dtype=np.float64)
rng = np.random.default_rng(13)
x = rng.integers(0, 13, (N * B, T))                  # (N*B, T): the global batch every rank draws
y = rng.integers(0, 13, (N * B, T))                  # (N*B, T)

_, full = model.loss_and_grads(x, y)                 # one process, batch N*B
summed = {k: np.zeros_like(v) for k, v in full.items()}
for r in range(N):
    xs, ys, w = shard(x, y, r, N)                    # (B, T), (B, T), 1/N
    _, g = model.loss_and_grads(xs, ys)
    for k in summed:
        summed[k] += w * g[k]
print(f"{N} ranks x batch {B} vs 1 process x batch {N * B}: max relative difference {rel(summed, full):.1e}")

# %% [markdown]
# ## When it is not equal
# Fine-tuning masks the prompt's targets, so slices count different numbers of targets. A plain average of
# the ranks' means then weighs a target in a short slice more than one in a long slice; weighting by each
# slice's share of the counted targets is exact again. Dropout is the other difference: each rank draws its
# own masks, a different (equally valid) random sample than one process would draw.

# %%
y_masked = y.copy()
y_masked[:B, : T - 2] = -100                          # rank 0's rows keep 2 targets each
_, full_m = model.loss_and_grads(x, y_masked)
plain = {k: np.zeros_like(v) for k, v in full.items()}
weighted = {k: np.zeros_like(v) for k, v in full.items()}
for r in range(N):
    xs, ys, w = shard(x, y_masked, r, N)
    _, g = model.loss_and_grads(xs, ys)
    for k in plain:
        plain[k] += g[k] / N
        weighted[k] += w * g[k]
print(f"masked targets: plain average of the ranks' gradients off by {rel(plain, full_m):.1e}; weighted "
      f"by counted targets: {rel(weighted, full_m):.1e}")

drop = GPT(GPTConfig(**{**cfg.__dict__, "dropout": 0.1}), seed=0, dtype=np.float64)
_, one = drop.loss_and_grads(x, y, rng=np.random.default_rng([0, 1]))
ranks = {k: np.zeros_like(v) for k, v in one.items()}
for r in range(N):
    xs, ys, w = shard(x, y, r, N)
    _, g = drop.loss_and_grads(xs, ys, rng=np.random.default_rng([0, 1, 0, r]))   # the loop's per-rank seed
    for k in ranks:
        ranks[k] += w * g[k]
print(f"dropout 0.1: the ranks' gradient differs from one process's by {rel(ranks, one):.1e} (other masks, "
      "same distribution)")

# %% [markdown]
# ## The ring all-reduce, step by step
# Give rank r a buffer full of 2^r: then every element's value says which ranks' numbers it contains
# (its binary digits). N - 1 reduce-scatter steps leave each rank with one complete chunk (value 2^N - 1);
# N - 1 all-gather steps pass the complete chunks around.

# %%
N_RING, n = 4, 10
bounds = allreduce.chunk_bounds(n, N_RING)
bufs = [np.full(n, 2.0**r) for r in range(N_RING)]
states = [np.array([[b[s0] for s0, _ in bounds] for b in bufs])]               # (N, N): rank x chunk
for step in range(2 * (N_RING - 1)):
    plan = [allreduce.ring_schedule(r, N_RING)[step] for r in range(N_RING)]     # (phase, send, recv)
    sent = [bufs[r][slice(*bounds[plan[r][1]])].copy() for r in range(N_RING)]   # all in flight at once
    for r in range(N_RING):
        phase, _, recv = plan[r]
        part = slice(*bounds[recv])
        got = sent[(r - 1) % N_RING]                                            # from the left neighbour
        bufs[r][part] = bufs[r][part] + got if phase == "reduce" else got
    states.append(np.array([[b[s0] for s0, _ in bounds] for b in bufs]))
contributors = [np.vectorize(lambda v: bin(int(v)).count("1"))(s) for s in states]
print("ranks summed into each (rank, chunk) after each step:")
for step, c in enumerate(contributors):
    label = "start" if step == 0 else ("reduce" if step < N_RING else "gather") + f" {step}"
    print(f"  {label:<9} " + "  ".join("".join(str(v) for v in row) for row in c))
ring = allreduce.simulate_ring_allreduce([np.full(n, 2.0**r) for r in range(N_RING)])
print(f"simulate_ring_allreduce: every rank holds {ring[0][0]:.0f} = 2^{N_RING} - 1 everywhere: "
      f"{all(np.all(b == 2**N_RING - 1) for b in ring)}")

fig, axes = plt.subplots(1, len(contributors), figsize=(2 * len(contributors), 2.6))
for step, (ax, c) in enumerate(zip(axes, contributors, strict=True)):
    ax.imshow(c, vmin=1, vmax=N_RING, cmap="Blues")
    for (i, j), v in np.ndenumerate(c):
        ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color="white" if v > 2 else "black")
    phase = "start" if step == 0 else ("reduce " if step < N_RING else "gather ") + str(step)
    ax.set_title(phase, fontsize=9)
    ax.set_xticks(range(N_RING))
    ax.set_yticks(range(N_RING))
    ax.set_xlabel("chunk", fontsize=8)
axes[0].set_ylabel("rank")
fig.suptitle(f"Ring all-reduce, {N_RING} ranks: how many ranks' numbers each chunk holds", fontsize=10)
fig.tight_layout()
fig.savefig(FIG / "ring_steps.png", dpi=100)
plt.close(fig)

# %% [markdown]
# ## What it costs
# Count what each rank sends in the schedule, and compare with 2(N-1)/N x the buffer.

# %%
n_floats = 1000
for size in (2, 3, 4, 8):
    b = allreduce.chunk_bounds(n_floats, size)
    sent = max(sum(b[s][1] - b[s][0] for _, s, _ in allreduce.ring_schedule(r, size)) for r in range(size))
    print(f"N={size}: the busiest rank sends {sent} of {n_floats} floats; 2(N-1)/N x n = "
          f"{allreduce.ring_bytes_per_rank(n_floats, size):.1f}")

# %% [markdown]
# A training step of the baby GPT (nanoGPT's CPU recipe), timed here: the compute that the all-reduce of its
# gradients (0.8 M floats, 3.2 MB) must hide behind. Weak scaling: each rank keeps batch 12, so N ranks
# train N x 12 windows per step, and the step time grows only by the all-reduce.

# %%
baby = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0), seed=0)
xb = rng.integers(0, 65, (12, 64))
yb = rng.integers(0, 65, (12, 64))
times = []
for _ in range(3 if QUICK else 10):
    t0 = time.perf_counter()
    baby.loss_and_grads(xb, yb)
    times.append(time.perf_counter() - t0)
compute = float(np.median(times))
grad_bytes = 4 * baby.num_params()
print(f"baby GPT: forward + backward at batch 12, 1 thread, takes {compute * 1e3:.0f} ms here; gradients "
      f"{grad_bytes / 1e6:.1f} MB")

LINKS = {"shared memory (2 us, 5 GB/s)": (2e-6, 5e9), "10 Gb/s Ethernet (20 us, 1.25 GB/s)": (20e-6, 1.25e9),
         "1 Gb/s Ethernet (50 us, 0.125 GB/s)": (50e-6, 0.125e9)}
sizes = np.array([1, 2, 4, 8, 16, 32, 64])
for name, (alpha, beta) in LINKS.items():
    t8 = allreduce.ring_seconds(grad_bytes, 8, alpha, beta)
    print(f"{name:<38} all-reduce at N=8: {t8 * 1e3:6.2f} ms = {100 * t8 / compute:5.1f}% of the compute")

measured = {}
mpiexec = shutil.which("mpiexec")
if mpiexec and not QUICK:
    script = REPO / "benchmarks" / "data_parallel.py"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for ranks in (1, 2):
        cmd = ([mpiexec, "-n", "2"] if ranks == 2 else []) + [sys.executable, str(script), "--worker",
                                                               "--threads", "1", "--global-batch",
                                                               str(12 * ranks), "--steps", "8"]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
        if proc.returncode == 0:
            measured[ranks] = json.loads(proc.stdout.strip().splitlines()[-1])
    for ranks, m in measured.items():
        extra = f", all-reduce {m['allreduce_ms']:.1f} ms" if "allreduce_ms" in m else ""
        print(f"measured, {ranks} rank(s) x batch 12, 1 thread each: {m['step_ms']:.0f} ms/step, "
              f"{m['tokens_per_s']:,.0f} tokens/s{extra} (a shared 2-core machine: noisy)")
else:
    print("(no real 2-rank measurement: mpiexec missing, or MINIGPT_QUICK=1)")

base = measured[1]["step_ms"] / 1e3 if 1 in measured else compute   # the 1-rank step the model grows from
fig, ax = plt.subplots(figsize=(7, 4))
for name, (alpha, beta) in LINKS.items():
    step = np.array([base + allreduce.ring_seconds(grad_bytes, int(s), alpha, beta) for s in sizes])
    ax.plot(sizes, 1e3 * step, "o-", label=f"model: {name}")
if measured:
    ax.plot(list(measured), [m["step_ms"] for m in measured.values()], "k*", ms=12,
            label="measured here (1 BLAS thread per rank)")
ax.set_xscale("log", base=2)
ax.set_ylim(bottom=0)
ax.set_xlabel("ranks N (batch 12 each)")
ax.set_ylabel("ms per step")
ax.set_title("Baby GPT step time as N grows: compute + ring all-reduce of 3.2 MB")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(FIG / "scaling.png", dpi=100)
plt.close(fig)

# %% [markdown]
# ## ZeRO-1: the optimizer's memory, sharded
# In float32, each parameter costs 4 bytes of weight, 4 of gradient and 8 of AdamW moments (m and v).
# ZeRO-1 keeps the moments of only 1/N of the parameters on each rank: 8 + 8/N bytes per parameter.

# %%
P = 124_439_808                                       # GPT-2 small (tied embeddings)
for size in (1, 2, 8, 64):
    plain_gb = 16 * P / 1e9
    zero_gb = (8 + 8 / size) * P / 1e9
    print(f"GPT-2 small on N={size:>2}: plain data parallel {plain_gb:.2f} GB per rank, ZeRO-1 "
          f"{zero_gb:.2f} GB")
print(f"figures saved to {FIG}")
