"""Lesson 03 walk-through: layer normalisation, its compact backward derived and checked step by step.

Run it: `minigpt lesson run 03` (or `python lesson.py` here). Prints evidence, saves figures to figures/.
MINIGPT_QUICK=1 shrinks the timing cell. Not here: where GPT-2 puts its layer-norms (lesson 07, pre-norm).
"""

# %% [markdown]
# # Layer-norm: every row to mean 0, variance 1, then a learned scale and shift
# Shape legend: B batch, T time, C channels. Statistics are per row (one position of one sequence).

# %%
import time

import matplotlib.pyplot as plt
import numpy as np

from minigpt.course.gradcheck import check_layer, rel_error
from minigpt.files.paths import figures_dir, quick
from minigpt.layers.layernorm import layernorm_backward, layernorm_forward

FIG = figures_dir(__file__)
rng = np.random.default_rng(0)

B, T, C = 8, 64, 128
# activations like a residual stream: every row has its own offset and scale, and a few loud channels
offset = rng.normal(0.0, 2.0, (B, T, 1))                 # (B, T, 1)
scale = np.exp(rng.normal(0.0, 0.7, (B, T, 1)))          # (B, T, 1)
x = offset + scale * rng.standard_normal((B, T, C))      # (B, T, C)
x[..., :3] += 8.0                                        # three outlier channels in every row
weight, bias = np.ones(C), np.zeros(C)                   # GPT-2's initialisation: identity scale, no shift
out, cache = layernorm_forward(x, weight, bias)          # (B, T, C)

for name, a in (("before", x), ("after ", out)):
    m, s = a.mean(-1), a.std(-1)                         # (B, T) per-row statistics
    print(f"{name}: per-row mean in [{m.min():+.2f}, {m.max():+.2f}], per-row std in [{s.min():.3f}, "
          f"{s.max():.3f}]")

fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
axes[0].hist(x.ravel(), bins=120, alpha=0.6, density=True, label="before: x")
axes[0].hist(out.ravel(), bins=120, alpha=0.6, density=True, label="after: layer-norm(x)")
loud = out[..., :3].ravel()                              # the three planted channels, after layer-norm
axes[0].axvspan(np.percentile(loud, 5), np.percentile(loud, 95), color="C3", alpha=0.12,
                label=f"the 3 loud channels after (middle 90 %, median {np.median(loud):+.1f})")
axes[0].set_yscale("log")                                # log axis: shows the bump of 3 in 128 channels
axes[0].set(title="all activations, pooled (log density)", xlabel="value", ylabel="density (log scale)")
axes[0].legend(fontsize=8)
print(f"the 3 loud channels after layer-norm: median {np.median(loud):+.2f}, middle 90 % in "
      f"[{np.percentile(loud, 5):+.2f}, {np.percentile(loud, 95):+.2f}]")
axes[1].scatter(x.mean(-1).ravel(), x.std(-1).ravel(), s=5, alpha=0.5, label="before: one dot per row")
axes[1].scatter(out.mean(-1).ravel(), out.std(-1).ravel(), s=40, color="C1", marker="x",
                label=f"after: every row at (0, 1) (|mean| < {np.abs(out.mean(-1)).max():.0e})")
axes[1].set(title="each row's mean and std", xlabel="mean of the row", ylabel="std of the row",
            ylim=(0, None))
axes[1].legend(loc="upper right", fontsize=8)
fig.suptitle(f"Layer-norm over C={C} channels, {B * T} rows (weight = 1, bias = 0)")
fig.tight_layout()
fig.savefig(FIG / "layernorm_before_after.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## Biased variance: divide by C, like torch and GPT-2
# np.var divides by C by default (ddof=0); statistics textbooks often divide by C - 1.

# %%
xc = x - x.mean(-1, keepdims=True)                       # (B, T, C)
unbiased = xc / np.sqrt((xc * xc).sum(-1, keepdims=True) / (C - 1) + 1e-5)
print(f"dividing by C - 1 instead of C shrinks every output by sqrt((C-1)/C): "
      f"{np.median(unbiased / np.where(out == 0, 1, out)):.5f} vs {np.sqrt((C - 1) / C):.5f} "
      f"(C={C}; at C=12 it is {np.sqrt(11 / 12):.3f}, a 4 % error every check catches)")

# %% [markdown]
# ## The backward, staged: through mean, variance and the division one step at a time
# We write the chain rule node by node (the computational graph), then compare with the compact form.

# %%
x1, w1, b1 = x[:2, :5].copy(), 1 + 0.3 * rng.standard_normal(C), 0.2 * rng.standard_normal(C)
eps = 1e-5
dout = rng.standard_normal(x1.shape)                     # (2, 5, C)

mu = x1.mean(-1, keepdims=True)                          # (2, 5, 1)
xm = x1 - mu                                             # (2, 5, C)
var = (xm ** 2).mean(-1, keepdims=True)                  # (2, 5, 1)
rstd = (var + eps) ** -0.5                               # (2, 5, 1)
xhat = xm * rstd                                         # (2, 5, C)
# backward, node by node, in reverse
dxhat = dout * w1                                        # out = xhat * w + b
dxm = dxhat * rstd                                       # xhat = xm * rstd: the xm path...
drstd = (dxhat * xm).sum(-1, keepdims=True)              # ...and the rstd path (rstd is shared by the row)
dvar = drstd * -0.5 * (var + eps) ** -1.5                # rstd = (var + eps)^(-1/2)
dxm += dvar * 2 * xm / C                                 # var = mean(xm^2): d var / d xm_i = 2 xm_i / C
dx_staged = dxm - dxm.mean(-1, keepdims=True)            # xm = x - mean(x): subtract the mean gradient

out1, cache1 = layernorm_forward(x1, w1, b1)
dx, dw, db = layernorm_backward(dout, cache1)
print(f"staged vs compact dx: rel error {rel_error(dx_staged, dx):.1e}")
errors = check_layer(layernorm_forward, layernorm_backward, [x1, w1, b1])
print(f"finite differences (float64): dx {errors['arg0']:.1e}, dweight {errors['arg1']:.1e}, "
      f"dbias {errors['arg2']:.1e}  (want < 1e-7)")

# %% [markdown]
# ## The Jacobian of one row: rstd * (I - 11^T/C - xhat xhat^T/C)
# The compact backward is this (C, C) matrix times dxhat. It is symmetric; shifting the row (direction 1)
# changes nothing, and scaling it (direction xhat) almost nothing.

# %%
row, r = xhat[0, 0], rstd[0, 0, 0]                       # (C,), scalar
J = r * (np.eye(C) - np.ones((C, C)) / C - np.outer(row, row) / C)   # (C, C) d xhat / d x
J_num = np.zeros((C, C))
h = 1e-6
for j in range(C):                                       # one column per nudged input
    e = np.zeros(C)
    e[j] = h
    plus, _ = layernorm_forward(x1[0, 0] + e, np.ones(C), None)
    minus, _ = layernorm_forward(x1[0, 0] - e, np.ones(C), None)
    J_num[:, j] = (plus - minus) / (2 * h)
sv = np.linalg.svd(J, compute_uv=False)                  # (C,) singular values, descending
print(f"Jacobian vs finite differences: rel error {rel_error(J, J_num):.1e}; symmetric: "
      f"{np.allclose(J, J.T)}; J @ 1 = {np.abs(J @ np.ones(C)).max():.1e}")
print(f"smallest singular values {sv[-2]:.2e}, {sv[-1]:.2e} vs rstd = {r:.3f}: "
      f"xhat's direction survives only through eps, 1's not at all")

# the figure uses a short row (C=12, one loud channel) so the off-diagonal terms are visible
small = np.array([0.3, -1.2, 0.8, 2.1, -0.4, 0.0, 1.1, -2.0, 0.5, -0.7, 6.0, 0.2])   # (12,)
sh, _ = layernorm_forward(small, np.ones(12), None)                                     # (12,)
sr = 1.0 / np.sqrt(small.var() + 1e-5)
J12 = sr * (np.eye(12) - np.ones((12, 12)) / 12 - np.outer(sh, sh) / 12)               # (12, 12)
fig, axes = plt.subplots(1, 2, figsize=(11, 5), layout="constrained")
for ax, (title, m) in zip(axes, (("J = d xhat / d x", J12),
                                 ("J - rstd I  =  -rstd (1 1ᵀ + xhat xhatᵀ) / C", J12 - sr * np.eye(12))),
                          strict=True):
    lim = np.abs(m).max()
    im = ax.imshow(m, cmap="RdBu", vmin=-lim, vmax=lim)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title, fontsize=10)
    ax.set(xlabel="input channel j", ylabel="output channel i", xticks=range(0, 12, 2),
           yticks=range(0, 12, 2))
fig.suptitle("Layer-norm's Jacobian for one row of C=12 (channel 10 is loud: 6.0)")
fig.savefig(FIG / "layernorm_jacobian.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## Constant rows and eps
# A constant row has var = 0: without eps, 0/0. With eps the row maps to the bias and rstd = 1/sqrt(eps).

# %%
flat = np.full((1, 1, C), 3.0)                           # (1, 1, C)
o, c = layernorm_forward(flat, w1, b1)
d = layernorm_backward(np.ones_like(flat), c)[0]
print(f"constant row -> out == bias: {np.array_equal(o[0, 0], b1)}; rstd = {c[1].item():.1f} "
      f"= 1/sqrt(1e-5); dx finite: {np.all(np.isfinite(d))}")
tiny = 1e-3 * rng.standard_normal((1, 1, C))             # var ~1e-6, below eps
for step in (1e-5, 1e-6, 1e-7):
    err = check_layer(layernorm_forward, layernorm_backward, [tiny.copy(), w1, b1], h=step)["arg0"]
    print(f"row with std 1e-3, finite-difference step h={step:.0e}: rel error {err:.1e}")

# %% [markdown]
# ## Speed at nanoGPT's CPU-recipe shapes (B=12, T=64, C=128, float32)

# %%
xs = rng.standard_normal((12, 64, 128)).astype(np.float32)
ws, bs = np.ones(128, np.float32), np.zeros(128, np.float32)
g = rng.standard_normal(xs.shape).astype(np.float32)
reps = 20 if quick() else 200
layernorm_backward(g, layernorm_forward(xs, ws, bs)[1])
t0 = time.perf_counter()
for _ in range(reps):
    o, c = layernorm_forward(xs, ws, bs)
t1 = time.perf_counter()
for _ in range(reps):
    layernorm_backward(g, c)
t2 = time.perf_counter()
print(f"forward {(t1 - t0) / reps * 1e6:.0f} us, backward {(t2 - t1) / reps * 1e6:.0f} us "
      f"(dtype {o.dtype}); figures in {FIG}")
