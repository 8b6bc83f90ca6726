"""Lesson 02 walk-through: ids become vectors (token + position embeddings), and dropout on their sum.

Run it: `minigpt lesson run 02` (or `python lesson.py` here). Prints evidence, saves figures to figures/.
MINIGPT_QUICK=1 shrinks the timing and statistics cells. Not here: training the embeddings (lesson 09).
"""

# %% [markdown]
# # Embeddings: a lookup whose backward is a scatter-add
# Shape legend: B batch, T time, C channels, V vocabulary, P block_size (learned positions).

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from minigpt.course.gradcheck import check_layer
from minigpt.files.paths import figures_dir, quick
from minigpt.layers.dropout import dropout_backward, dropout_forward
from minigpt.layers.embedding import embedding_backward, embedding_forward

FIG = figures_dir(__file__)
rng = np.random.default_rng(0)

text = "to be or not to be"
chars = sorted(set(text))                              # a tiny character vocabulary
stoi = {ch: i for i, ch in enumerate(chars)}
V, C, P = len(chars), 12, 32                           # vocab, channels, block_size
idx = np.array([[stoi[ch] for ch in text]])            # (1, T) one sequence of ids
T = idx.shape[1]
print(f"vocabulary {chars} (V={V}); ids {idx[0].tolist()} (T={T})")

wte = 0.02 * rng.standard_normal((V, C))               # (V, C) token table, GPT-2's init scale
wpe = 0.02 * rng.standard_normal((P, C))               # (P, C) position table
out, cache = embedding_forward(idx, wte, wpe)          # (1, T, C)
print(f"out {out.shape}: one C-vector per position")

# %% [markdown]
# ## A lookup is a one-hot matrix product
# Row t of onehot (T, V) has a single 1 at column idx[t]; onehot @ wte picks that row of wte.

# %%
onehot = np.eye(V)[idx[0]]                             # (T, V)
by_matmul = onehot @ wte                               # (T, C)
by_lookup = wte[idx[0]]                                # (T, C)
print(f"max |onehot @ wte - wte[idx]| = {np.abs(by_matmul - by_lookup).max():.1e}   "
      f"(the matmul does {T * V * C} multiply-adds for {T * C} numbers a lookup just copies)")
print(f"'o' appears at t={[t for t, ch in enumerate(text) if ch == 'o']}: same token row, "
      f"different position rows -> out[0, 1] == out[0, 6]? {np.allclose(out[0, 1], out[0, 6])}")

fig, axes = plt.subplots(1, 3, figsize=(12, 4), gridspec_kw={"width_ratios": [V, C, C]})
axes[0].imshow(onehot, cmap="Greys", aspect="auto")
axes[0].set(title=f"one-hot (T={T}, V={V})", xlabel="token id", ylabel="position t",
            xticks=range(V), xticklabels=[repr(c)[1:-1] for c in chars])
lim = np.abs(wte).max()
axes[1].imshow(wte, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
axes[1].set(title=f"wte (V={V}, C={C})", xlabel="channel", ylabel="token id")
axes[2].imshow(by_matmul, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
axes[2].set(title="one-hot @ wte = wte[idx]  (T, C)", xlabel="channel", ylabel="position t")
fig.suptitle("An embedding lookup is a product with a one-hot matrix")
fig.tight_layout()
fig.savefig(FIG / "onehot_lookup.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## The backward: every use of an id adds to its row
# d out / d wte = onehot^T @ dout. The lookup's transpose is a scatter-add.

# %%
dout = rng.standard_normal(out.shape)                  # (1, T, C) a random upstream gradient
dwte, dwpe = embedding_backward(dout, cache)           # (V, C), (P, C)
print(f"max |dwte - onehot^T @ dout| = {np.abs(dwte - onehot.T @ dout[0]).max():.1e}")

naive = np.zeros_like(wte)                             # (V, C)
naive[idx[0]] += dout[0]                               # WRONG: one write per distinct id wins
counts = np.bincount(idx[0], minlength=V)              # (V,) how often each id is used
lost = int((counts - (counts > 0)).sum())
print(f"dwte[idx] += dout keeps one of each repeated id's rows: {lost} of {T} contributions lost, "
      f"max error {np.abs(naive - dwte).max():.2f}")

ones = np.ones_like(dout)                              # with dout = 1, a row's gradient is its count
right, _ = embedding_backward(ones, cache)
wrong = np.zeros_like(wte)
wrong[idx[0]] += ones[0]
fig, ax = plt.subplots(figsize=(7, 3.5))
x = np.arange(V)
ax.bar(x - 0.2, right[:, 0], width=0.4, label="np.add.at (scatter-add): = count")
ax.bar(x + 0.2, wrong[:, 0], width=0.4, label="dwte[idx] += dout: at most 1")
ax.set(xticks=x, xticklabels=[repr(c)[1:-1] for c in chars], xlabel="token",
       ylabel="dwte[:, 0] with dout = 1", title=f"Repeated ids must accumulate ('{text}')")
ax.legend()
fig.tight_layout()
fig.savefig(FIG / "scatter_add.png", dpi=110)
plt.close(fig)

errors = check_layer(embedding_forward, embedding_backward, [idx, wte.copy(), wpe.copy()])
print(f"finite differences (float64): dwte {errors['arg1']:.1e}, dwpe {errors['arg2']:.1e}  (want < 1e-7)")

# %% [markdown]
# ## Positions: learned (GPT-2) or fixed (the original Transformer)
# GPT-2 starts wpe as random N(0, 0.02) noise and learns it. Vaswani et al. used fixed sinusoids instead.
# We compare what the two look like *at initialisation*, and how similar position i is to position j.

# %%
P_fig, C_fig = 64, 128
wpe_random = 0.02 * rng.standard_normal((P_fig, C_fig))        # (P, C)
pos = np.arange(P_fig)[:, None]                                 # (P, 1)
freq = 1.0 / 10000 ** (np.arange(0, C_fig, 2) / C_fig)          # (C/2,)
wpe_sin = np.zeros((P_fig, C_fig))                              # (P, C)
wpe_sin[:, 0::2] = np.sin(pos * freq)
wpe_sin[:, 1::2] = np.cos(pos * freq)


def cosine(m: np.ndarray) -> np.ndarray:
    unit = m / np.linalg.norm(m, axis=1, keepdims=True)          # (P, C)
    return unit @ unit.T                                         # (P, P)


fig, axes = plt.subplots(2, 2, figsize=(10, 8))
for col, (name, m) in enumerate((("random init N(0, 0.02) (GPT-2, before training)", wpe_random),
                                 ("sinusoidal (Vaswani et al. 2017, fixed)", wpe_sin))):
    lim = np.abs(m).max()
    axes[0, col].imshow(m, cmap="RdBu", vmin=-lim, vmax=lim, aspect="auto")
    axes[0, col].set(title=name, xlabel="channel", ylabel="position")
    im = axes[1, col].imshow(cosine(m), cmap="viridis", vmin=-1, vmax=1)
    fig.colorbar(im, ax=axes[1, col], shrink=0.8)
    axes[1, col].set(title="cosine similarity of positions", xlabel="position j", ylabel="position i")
fig.suptitle("wpe at initialisation: random noise has no notion of 'nearby'; sinusoids do")
fig.tight_layout()
fig.savefig(FIG / "wpe_random_vs_sinusoidal.png", dpi=110)
plt.close(fig)
off = ~np.eye(P_fig, dtype=bool)
sin_cos = cosine(wpe_sin)                                       # (P, P)
print(f"mean |cos| between different positions, random init: {np.abs(cosine(wpe_random)[off]).mean():.3f}")
print(f"sinusoidal: neighbours (i, i+1) {np.mean(np.diag(sin_cos, 1)):.3f}, "
      f"(i, i+8) {np.mean(np.diag(sin_cos, 8)):.3f}, (i, i+32) {np.mean(np.diag(sin_cos, 32)):.3f}")

# %% [markdown]
# ## Weight tying, a preview of lesson 07
# GPT-2 reuses wte as its output layer: logits = x @ wte.T. wte then gets gradient from both ends,
# and the two contributions are *added* — the same rule as repeated ids.

# %%
n_gpt2 = 50257 * 768
print(f"GPT-2 small's wte is {n_gpt2:,} numbers; tying saves a second table of the same size "
      f"({n_gpt2 / 124_439_808:.0%} of the 124M parameters)")

# %% [markdown]
# ## Dropout on the embedding sum
# Training zeroes each element with probability p and scales the survivors by 1/(1-p), so the expected
# value is unchanged; evaluation is the identity. The backward applies the same mask.

# %%
p = 0.1
x = np.ones((64, 64, 128)) if not quick() else np.ones((16, 64, 128))
y, mask = dropout_forward(x, p, np.random.default_rng(1), training=True)
print(f"p={p}: kept {np.mean(y != 0):.4f} (expect {1 - p}), survivors = {y[y != 0][0]:.4f} = 1/(1-p), "
      f"mean(out) = {y.mean():.4f}")
y_eval, _ = dropout_forward(x, p, None, training=False)
print(f"eval mode is the identity: {y_eval is x}")
dx = dropout_backward(np.ones_like(y), mask)
print(f"backward uses the same mask: {np.array_equal(dx != 0, y != 0)}")
err = check_layer(lambda a: dropout_forward(a, 0.3, np.random.default_rng(2), True), dropout_backward,
                  [rng.standard_normal((2, 3, 4))])["arg0"]
print(f"finite differences with a fresh generator per call: {err:.1e}")

n_seeds = 50 if quick() else 400
n = 4096
kept = np.array([np.mean(dropout_forward(np.ones(n), p, np.random.default_rng(s), True)[0] != 0)
                 for s in range(n_seeds)])
sigma = np.sqrt(p * (1 - p) / n)
print(f"kept fraction over {n_seeds} seeds: mean {kept.mean():.4f}, std {kept.std():.4f} "
      f"(binomial predicts {sigma:.4f})")
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.hist(kept, bins=30, density=True, alpha=0.7, label=f"{n_seeds} seeds, {n} elements each")
grid = np.linspace(kept.min(), kept.max(), 200)
ax.plot(grid, np.exp(-0.5 * ((grid - (1 - p)) / sigma) ** 2) / (sigma * np.sqrt(2 * np.pi)),
        label=f"normal(1-p, sqrt(p(1-p)/n)) = ({1 - p}, {sigma:.4f})")
ax.set(xlabel="fraction of elements kept", ylabel="density", title=f"Dropout p={p}: the kept fraction")
ax.legend()
fig.tight_layout()
fig.savefig(FIG / "dropout_kept_fraction.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## How fast is the scatter-add?
# np.add.at is correct but not the fastest way to scatter; np.bincount per channel and a one-hot matmul
# are the usual alternatives. Measured at nanoGPT's CPU-recipe shapes (B=12, T=64, C=128, V=65).

# %%
B, T, C, V = 12, 64, 128, 65
ids = rng.integers(0, V, (B, T))
g = rng.standard_normal((B, T, C)).astype(np.float32)  # (B, T, C)
reps = 20 if quick() else 200


def timeit(fn) -> float:
    fn()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - t0) / reps * 1e6


def add_at():
    d = np.zeros((V, C), np.float32)
    np.add.at(d, ids.reshape(-1), g.reshape(-1, C))
    return d


def one_hot():
    return np.eye(V, dtype=np.float32)[ids.reshape(-1)].T @ g.reshape(-1, C)   # (V, N) @ (N, C)


flat = ids.reshape(-1)


def bincount():
    return np.stack([np.bincount(flat, weights=g.reshape(-1, C)[:, c], minlength=V) for c in range(C)], 1)


ref = add_at()
for name, fn in (("np.add.at", add_at), ("one-hot matmul", one_hot), ("bincount per channel", bincount)):
    same = np.allclose(fn(), ref, rtol=1e-4, atol=1e-4)
    print(f"{name:<22} {timeit(fn):8.0f} us   same result: {same}")
print(f"figures in {FIG}")
