"""Lesson 08 walk-through: from gradient descent to AdamW, the learning-rate schedule, gradient clipping.

Run it: `minigpt lesson run 08` (or `python lesson.py` here). Prints evidence, saves four figures to
figures/. MINIGPT_QUICK=1 shortens the runs. Not here: the training loop, data and checkpoints (lesson 09).
"""

# %% [markdown]
# # Optimizers: turning gradients into better weights
# Every optimizer in minigpt/optim.py takes a dict of named arrays and updates them in place:
# `opt = AdamW(params, lr=...)`, then `opt.step(grads)` once per batch. We start on a 2-D valley where
# we can watch every step, then look at weight decay, the schedule, clipping, and a tiny GPT.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np

from minigpt import optim
from minigpt.files.paths import figures_dir, quick
from minigpt.model import GPT, GPTConfig

FIG = figures_dir(__file__)
QUICK = quick()

# An ill-conditioned valley: f(x, y) = (x^2 + 25 y^2) / 2, steep across (y), shallow along (x).
# Its curvatures are 1 and 25 (condition number 25): the lr that is safe across is slow along.
CURV = np.array([1.0, 25.0])


def f(xy: np.ndarray) -> float:
    return 0.5 * float(np.sum(CURV * xy**2))


def grad_f(xy: np.ndarray) -> np.ndarray:
    return CURV * xy  # (2,)


def descend(make, steps: int, start=(-4.0, 1.5)) -> np.ndarray:
    """Run an optimizer on f from start; return the path, (steps + 1, 2)."""
    params = {"xy": np.array(start, dtype=np.float64)}  # 1-D: never weight-decayed
    opt = make(params)
    path = [params["xy"].copy()]
    for _ in range(steps):
        opt.step({"xy": grad_f(params["xy"])})
        path.append(params["xy"].copy())  # the optimizer changed params["xy"] in place
    return np.array(path)


STEPS = 30 if QUICK else 60
runs = {
    "SGD lr 0.07": lambda p: optim.SGD(p, lr=0.07),
    "momentum 0.8, lr 0.02": lambda p: optim.SGD(p, lr=0.02, momentum=0.8),
    "Adam lr 0.3": lambda p: optim.Adam(p, lr=0.3, betas=(0.9, 0.999)),
}
paths = {name: descend(make, STEPS) for name, make in runs.items()}
for name, path in paths.items():
    print(f"{name:<24} f after 10 steps {f(path[10]):9.4f}   after {STEPS}: {f(path[-1]):.2e}")
print("2/25 = 0.08 is SGD's stability limit across the valley; along it, lr 0.07 shrinks x by only 7% a step")

# %%
xs, ys = np.meshgrid(np.linspace(-4.5, 4.5, 300), np.linspace(-2, 2, 200))
zs = 0.5 * (CURV[0] * xs**2 + CURV[1] * ys**2)
fig, axes = plt.subplots(1, 3, figsize=(15, 3.4), sharey=True)
for ax, (name, path) in zip(axes, paths.items(), strict=True):
    ax.contour(xs, ys, zs, levels=np.geomspace(0.05, 60, 12), colors="0.55", linewidths=0.7)
    ax.plot(path[:, 0], path[:, 1], "o-", ms=3, lw=1, color="C3")
    ax.plot(0, 0, "k*", ms=10)
    ax.set(title=f"{name}: f = {f(path[-1]):.1e} after {STEPS} steps", xlabel="x", aspect="equal")
axes[0].set_ylabel("y")
fig.suptitle("f(x, y) = (x² + 25 y²) / 2 from (-4, 1.5): SGD zig-zags, momentum builds speed along the "
             "valley, Adam steps ~lr in every coordinate")
fig.tight_layout()
fig.savefig(FIG / "trajectories.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## Adam's first step: the same size in every coordinate
# With bias correction, m-hat = g and v-hat = g^2 at step 1, so the step is lr * g / (|g| + eps): about
# lr in every coordinate whatever the gradient's scale. Without the correction it would be
# lr * (1 - beta1) / sqrt(1 - beta2) = 3.2 lr for betas (0.9, 0.999).

# %%
g0 = grad_f(np.array([-4.0, 1.5]))
p = {"xy": np.array([-4.0, 1.5])}
optim.Adam(p, lr=0.3).step({"xy": g0})
print(f"gradient at the start {g0}; SGD lr 0.07 would move {-0.07 * g0}; Adam lr 0.3 moved "
      f"{p['xy'] - np.array([-4.0, 1.5])}")

# %% [markdown]
# ## Weight decay: L2 inside Adam vs AdamW's decoupled decay
# Two weights with equal values but noisy gradients of very different sizes (sigma 100 and 0.01) and no
# signal: only weight decay pulls them to 0. With L2 in Adam the pull wd * w is divided by sqrt(v) - tiny
# for the noisy weight. AdamW shrinks both by the same factor (1 - lr * wd) every step.

# %%
DECAY_STEPS = 1000 if QUICK else 3000
sigma = np.array([[100.0, 0.01]])  # (1, 2): a matrix, so it is decayed
history = {}
for name, make in (("Adam + L2 (wd 1)", lambda p: optim.Adam(p, lr=1e-3, weight_decay=1.0)),
                   ("AdamW (wd 1)", lambda p: optim.AdamW(p, lr=1e-3, betas=(0.9, 0.999), weight_decay=1.0))):
    rng = np.random.default_rng(0)
    params = {"w": np.ones((1, 2))}
    opt = make(params)
    trace = []
    for _ in range(DECAY_STEPS):
        opt.step({"w": sigma * rng.standard_normal((1, 2))})
        trace.append(params["w"][0].copy())
    history[name] = np.array(trace)  # (steps, 2)
    print(f"{name:<17} after {DECAY_STEPS} steps: w(noisy grad) = {trace[-1][0]:+.4f}, "
          f"w(quiet grad) = {trace[-1][1]:+.4f}")
print(f"pure decay (1 - lr*wd)^steps = {(1 - 1e-3) ** DECAY_STEPS:.3f}")

fig, ax = plt.subplots(figsize=(7, 4))
for (name, trace), color in zip(history.items(), ("C0", "C1"), strict=True):
    ax.plot(trace[:, 0], color=color, label=f"{name}: gradient noise sigma 100")
    ax.plot(trace[:, 1], color=color, ls="--", label=f"{name}: gradient noise sigma 0.01")
ax.set(xlabel="step", ylabel="weight", title="Weight decay with noise-only gradients (lr 1e-3)")
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(FIG / "weight_decay.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## The learning-rate schedule: linear warm-up, then cosine down to min_lr
# nanoGPT's baby recipe: max 1e-3, 100 warm-up steps, decay to 1e-4 by step 2000.

# %%
kw = {"max_lr": 1e-3, "warmup_iters": 100, "decay_iters": 2000, "min_lr": 1e-4}
steps = np.arange(2200)
lrs = np.array([optim.cosine_lr(int(s), **kw) for s in steps])
for s in (0, 1, 99, 100, 1050, 2000, 2100):
    print(f"cosine_lr({s:>4}) = {optim.cosine_lr(s, **kw):.6f}")

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
axes[0].plot(steps, lrs)
axes[0].axvline(100, color="grey", ls=":", label="end of warm-up (100)")
axes[0].axvline(2000, color="grey", ls="--", label="decay_iters (2000): min_lr from here")
axes[0].set(xlabel="step", ylabel="lr", title="cosine_lr: nanoGPT's baby recipe")
axes[0].legend(fontsize=8)
axes[1].plot(steps[:120], lrs[:120], "o", ms=2)
axes[1].set(xlabel="step", ylabel="lr", title="warm-up: max_lr (step + 1) / (warmup + 1), never 0")
fig.tight_layout()
fig.savefig(FIG / "lr_schedule.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## Gradient clipping: one bad batch should not throw the weights away
# clip_grad_norm measures the norm of all gradients laid end to end and, if it exceeds max_norm, scales
# every gradient by the same factor: the direction is kept, only the length is capped.

# %%
rng = np.random.default_rng(1)
grads = {"wte.weight": rng.standard_normal((11, 4)), "h.0.mlp.c_fc.bias": rng.standard_normal(7)}
grads["wte.weight"][3] *= 40  # a spike: one token's row got a huge gradient
before = np.concatenate([g.ravel() for g in grads.values()])
norm = optim.clip_grad_norm(grads, max_norm=1.0)
after = np.concatenate([g.ravel() for g in grads.values()])
cos = before @ after / (np.linalg.norm(before) * np.linalg.norm(after))
print(f"norm before {norm:.3f}, after {np.linalg.norm(after):.6f}, cosine(before, after) = {cos:.12f}")

# %% [markdown]
# ## On a real (tiny) GPT: SGD, momentum, Adam, AdamW with the schedule and clipping
# A 2-layer, 32-channel GPT learns to continue a short repeated text. Same data, same init, same steps.

# %%
text = "the quick brown fox jumps over the lazy dog. " * 20
chars = sorted(set(text))
data = np.array([chars.index(c) for c in text])
cfg = GPTConfig(vocab_size=len(chars), block_size=16, n_layer=2, n_head=2, n_embd=32, dropout=0.0)
TRAIN_STEPS = 30 if QUICK else 150


def train(make, max_lr: float) -> tuple[list[float], list[float], float]:
    model = GPT(cfg, seed=0, dtype=np.float32)
    opt = make(model.params)
    batch_rng = np.random.default_rng(0)
    losses, norms = [], []   # norms: of the weights that decay (ndim >= 2), where AdamW differs from Adam
    t0 = time.perf_counter()
    for step in range(TRAIN_STEPS):
        starts = batch_rng.integers(0, len(data) - cfg.block_size - 1, size=8)
        x = np.stack([data[s:s + cfg.block_size] for s in starts])  # (B, T)
        y = np.stack([data[s + 1:s + cfg.block_size + 1] for s in starts])  # (B, T)
        loss, grads = model.loss_and_grads(x, y)
        optim.clip_grad_norm(grads, max_norm=1.0)
        opt.lr = optim.cosine_lr(step, max_lr=max_lr, warmup_iters=10, decay_iters=TRAIN_STEPS,
                                 min_lr=max_lr / 10)
        opt.step(grads)
        losses.append(loss)
        norms.append(float(np.sqrt(sum(np.sum(np.square(p, dtype=np.float64))
                                       for p in model.params.values() if p.ndim >= 2))))
    return losses, norms, time.perf_counter() - t0


trainers = {  # name: (peak lr, optimizer); the schedule sets opt.lr before every step
    "SGD lr 0.5": (0.5, lambda p: optim.SGD(p, lr=0.5)),
    "momentum 0.9, lr 0.1": (0.1, lambda p: optim.SGD(p, lr=0.1, momentum=0.9)),
    "Adam lr 1e-2": (1e-2, lambda p: optim.Adam(p, lr=1e-2)),
    "AdamW lr 1e-2, wd 0.1": (1e-2, lambda p: optim.AdamW(p, lr=1e-2, weight_decay=0.1)),
}
fig, (ax, ax_norm) = plt.subplots(1, 2, figsize=(12, 4.2))
styles = {"SGD lr 0.5": "-", "momentum 0.9, lr 0.1": "-", "Adam lr 1e-2": "-", "AdamW lr 1e-2, wd 0.1": "--"}
print(f"uniform guessing would give loss ln({len(chars)}) = {math.log(len(chars)):.3f}")
for name, (max_lr, make) in trainers.items():
    losses, norms, seconds = train(make, max_lr)
    print(f"{name:<22} loss {losses[0]:.3f} -> {np.mean(losses[-10:]):.3f} (mean of last 10), "
          f"norm of the decayed weights {norms[0]:.2f} -> {norms[-1]:.2f}, in {seconds:.1f} s")
    ax.plot(losses, styles[name], label=name)
    ax_norm.plot(norms, styles[name], label=name)
ax.set(xlabel="step", ylabel="training loss (log scale)", yscale="log",
       title=f"Tiny GPT ({GPT(cfg).num_params():,} params) on a repeated sentence")
ax.legend()
ax_norm.set(xlabel="step", ylabel="‖weights with ndim ≥ 2‖",
            title="Where Adam and AdamW differ: the decayed weights")
ax_norm.legend(fontsize=8)
fig.tight_layout()
fig.savefig(FIG / "tiny_gpt.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## Muon: orthogonalised updates
# Muon (for 2-D hidden matrices only) replaces the update matrix by newton_schulz(update): the same
# singular vectors, every singular value pushed towards 1. The quintic s -> a s + b s^3 + c s^5 with
# torch's (a, b, c) is steep at 0 and does not converge to 1: it keeps the values in a band.

# %%
a, b, c = optim.NS_COEFFICIENTS
quintic = lambda s: a * s + b * s**3 + c * s**5  # noqa: E731 - one line of math
grid = np.linspace(0.0, 1.0, 100_001)
print(f"quintic: slope at 0 = a = {a}, p(1) = {quintic(1.0):.4f}, max on [0, 1] = {quintic(grid).max():.4f}, "
      f"five rounds lift a tiny s by up to a^5 = {a**5:.0f}")
rng = np.random.default_rng(8)
G = rng.standard_normal((32, 8)) @ np.diag(np.logspace(-1, 1, 8)) @ rng.standard_normal((8, 96))  # (32, 96)
for label, M in (("G", G), ("newton_schulz(G)", optim.newton_schulz(G))):
    sv = np.linalg.svd(M, compute_uv=False)[:8]                    # G has rank 8
    print(f"{label:<17} singular values {np.array2string(sv, precision=3)}  spread {sv[0] / sv[-1]:.3g}")
print(f"figures in {FIG}")
