"""Lesson 06 walk-through: softmax cross-entropy over the vocabulary, its fused backward, ignore_index.

Run it with `minigpt lesson run 06` (or `python lesson.py` in this folder). It prints evidence at every
step and saves figures/loss.png. It is fast either way; MINIGPT_QUICK=1 changes nothing but is honoured.

Not here: the reference comparison against PyTorch (that is check.py: `minigpt lesson check 06`).
"""

# %% [markdown]
# # The loss: how surprised was the model by the right next token?
# The model ends with logits (B, T, V): one score per vocabulary entry at every position. Softmax turns a
# row into probabilities; the loss is -log of the probability given to the token that actually came next,
# averaged over the positions that count.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np

from minigpt.course.gradcheck import numeric_grad, rel_error
from minigpt.files.paths import figures_dir, quick
from minigpt.layers.loss import cross_entropy_backward, cross_entropy_forward

rng = np.random.default_rng(0)
np.set_printoptions(precision=4, suppress=True)
quick()  # nothing here is slow enough to shrink

# %% [markdown]
# ## 1. One row by hand
# loss = -log softmax(z)[y] = log(sum_j e^{z_j}) - z_y: log-sum-exp minus the right token's logit.

# %%
V = 11
z = rng.standard_normal(V) * 2.0                       # (V,) one position's logits
y = 3                                                  # the token that came next
p = np.exp(z) / np.exp(z).sum()                        # (V,) softmax
by_hand = -math.log(p[y])
loss, _ = cross_entropy_forward(z[None, :], np.array([y]))
print(f"p[y] = {p[y]:.4f}   -log p[y] = {by_hand:.6f}   minigpt: {loss:.6f}")

# %% [markdown]
# ## 2. Stability: subtract the max first
# e^{1e4} is inf in float64 (float32 overflows already above 88.7). Softmax does not change when every
# logit moves by the same amount, so subtract the row's max: the largest exponent becomes e^0 = 1.

# %%
big = np.array([[1e4, -1e4, 0.0, 9999.0]])             # (1, 4)
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(big) / np.exp(big).sum()
print("naive softmax of [1e4, -1e4, 0, 9999]:", naive[0])
loss_big, cache_big = cross_entropy_forward(big, np.array([3]))
print(f"stable loss, target 9999 (one below the top): {loss_big:.6f} "
      f"= 1 + log(1 + e^-1) = {1.0 + math.log(1 + math.exp(-1.0)):.6f}")
loss_far, _ = cross_entropy_forward(big, np.array([1]))
print(f"target at -1e4: loss {loss_far:.6f} = 2e4 + log(1 + e^-1), finite")
print("float32 overflow threshold: e^x = inf for x >", f"{math.log(np.finfo(np.float32).max):.1f}")

# %% [markdown]
# ## 3. Sanity check before training: an untrained model scores ln(V)
# With equal logits every token gets 1/V, so the loss is -log(1/V) = ln V. A freshly initialised GPT has
# small logits, so its first loss should be close to ln V; much larger means a bug (or a bad init).

# %%
for v, what in ((65, "tiny Shakespeare, characters"), (50257, "GPT-2 BPE")):
    logits = rng.standard_normal((4, 16, v)) * 0.02     # (B, T, V) small, like an initialised model
    targets = rng.integers(0, v, size=(4, 16))          # (B, T)
    loss, _ = cross_entropy_forward(logits, targets)
    print(f"V = {v:>5} ({what}): ln V = {math.log(v):.4f}, loss of near-equal logits = {loss:.4f}")

# %% [markdown]
# ## 4. The fused backward: softmax minus one-hot
# d(-log p_y)/dz_j = p_j - [j == y]. No V x V Jacobian needed: for GPT-2 that would be 50257^2 numbers
# (20 GB in float64) per position. Divide by the number of counted positions, because the loss is a mean.

# %%
logits = rng.standard_normal((2, 5, V))                # (B, T, V)
targets = rng.integers(0, V, size=(2, 5))              # (B, T)
loss, cache = cross_entropy_forward(logits, targets)
dlogits = cross_entropy_backward(1.0, cache)           # (B, T, V)
numeric = numeric_grad(lambda: cross_entropy_forward(logits, targets)[0], logits, 1.0)
print(f"fused backward vs central differences: relative error {rel_error(dlogits, numeric):.1e}")
row = logits[0, 0]
pr = np.exp(row - row.max()) / np.exp(row - row.max()).sum()          # (V,)
jac = np.diag(pr) - np.outer(pr, pr)                                  # (V, V) dsoftmax/dz
via_jacobian = jac.T @ np.where(np.arange(V) == targets[0, 0], -1.0 / pr[targets[0, 0]], 0.0) / 10
print("through the full Jacobian, same row:", np.allclose(via_jacobian, dlogits[0, 0]))
print("each row of the gradient sums to 0:", np.abs(dlogits.sum(axis=-1)).max() < 1e-15)

# %% [markdown]
# ## 5. ignore_index: only the answer counts
# Fine-tuning on "prompt -> answer" pairs should not teach the model to predict the prompt. Mark the
# prompt's targets with ignore_index (-100, torch's default): they leave the mean and get zero gradient.

# %%
targets_masked = targets.copy()
targets_masked[:, :3] = -100                           # the first 3 positions of each row are prompt
loss_m, cache_m = cross_entropy_forward(logits, targets_masked)
d_m = cross_entropy_backward(1.0, cache_m)             # (B, T, V)
nll = -np.log(np.exp(logits) / np.exp(logits).sum(-1, keepdims=True))
manual = np.mean([nll[b, t, targets[b, t]] for b in range(2) for t in range(3, 5)])
print(f"masked loss {loss_m:.6f} = mean over the 4 answer positions {manual:.6f}")
print("gradient on prompt positions is zero:", not d_m[:, :3].any())
none_left, cache_0 = cross_entropy_forward(logits, np.full((2, 5), -100))
print(f"every position ignored: loss {none_left} and gradient all zero: "
      f"{not cross_entropy_backward(1.0, cache_0).any()}  (torch returns nan: 0 / 0)")

# %% [markdown]
# ## 6. Figure: the loss and its gradient

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
pgrid = np.linspace(1e-3, 1.0, 500)
axes[0].plot(pgrid, -np.log(pgrid), label="loss = -ln p(right token)")
axes[0].plot(pgrid, pgrid - 1.0, label="dloss/dz(right token) = p - 1")
axes[0].axvline(1.0 / V, color="gray", linestyle=":",
                label=f"untrained: p = 1/V = 1/{V}, loss ln V = {math.log(V):.2f}")
axes[0].axhline(0.0, color="black", linewidth=0.5)
axes[0].set(xlabel="probability the model gives the right token", ylim=(-1.2, 7), title="cross-entropy")
axes[0].legend(fontsize=8)
axes[0].grid(alpha=0.3)
yb = int(targets[0, 0])
onehot = (np.arange(V) == yb).astype(float)
xs = np.arange(V)
axes[1].bar(xs - 0.2, pr, width=0.4, label="softmax p")
axes[1].bar(xs + 0.2, pr - onehot, width=0.4, label="gradient p - onehot")
axes[1].axhline(0.0, color="black", linewidth=0.5)
axes[1].set(xlabel=f"vocabulary id (right token: {yb})", title="gradient on one row of logits", xticks=xs)
axes[1].legend(fontsize=8)
fig.tight_layout()
path = figures_dir(__file__) / "loss.png"
fig.savefig(path, dpi=110)
print("saved", path)
