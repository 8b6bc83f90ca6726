"""Lesson 05 walk-through: the Conv1D linear layer, GPT-2's tanh GELU, and the block's MLP.

Run it with `minigpt lesson run 05` (or `python lesson.py` in this folder). It prints evidence at every
step and saves figures/gelu.png. With MINIGPT_QUICK=1 it times fewer repetitions.

Not here: the reference comparison against PyTorch (that is check.py: `minigpt lesson check 05`).
"""

# %% [markdown]
# # The MLP: c_fc -> GELU -> c_proj
# Every GPT-2 block ends with a two-layer perceptron applied to each position on its own:
# (B, T, C) -> (B, T, 4C) -> GELU -> (B, T, C).

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np

from minigpt.course.gradcheck import check_layer, numeric_grad, rel_error
from minigpt.files.paths import figures_dir, quick
from minigpt.layers.linear import linear_backward, linear_forward
from minigpt.layers.mlp import gelu_backward, gelu_forward, mlp_backward, mlp_forward

rng = np.random.default_rng(0)
np.set_printoptions(precision=4, suppress=True)

# %% [markdown]
# ## 1. Conv1D: the weight is stored (in, out)
# GPT-2's checkpoints store c_fc.weight as (768, 3072): input features first. torch's nn.Linear stores
# (out, in) and computes x @ W.T. Same map, transposed storage.

# %%
B, T, C, C_OUT = 2, 5, 12, 7
x = rng.standard_normal((B, T, C))                      # (B, T, C)
w = rng.standard_normal((C, C_OUT)) / math.sqrt(C)      # (C, C_OUT): Conv1D layout
b = rng.standard_normal(C_OUT)                          # (C_OUT,)
out, cache = linear_forward(x, w, b)                    # (B, T, C_OUT)
w_linear = w.T.copy()                                   # (C_OUT, C): how nn.Linear would store it
print("Conv1D  x @ w + b      :", out.shape, out[0, 0, :3])
print("Linear  x @ w_linear.T + b:", (x @ w_linear.T + b)[0, 0, :3])
try:
    linear_forward(x, w_linear, b)
except ValueError as exc:
    print("passing the (out, in) weight as is ->", exc)

# %% [markdown]
# The backward: out = x W + b, so dx = dout W^T, dW = x^T dout (summed over all B*T rows, because every
# position used the same W), db = dout summed over rows.

# %%
errors = check_layer(linear_forward, linear_backward, [x, w, b])
print("finite differences, linear (x, weight, bias):", {k: f"{v:.1e}" for k, v in errors.items()})

# %% [markdown]
# ## 2. GELU, GPT-2's way
# GELU(x) = x * Phi(x), Phi the standard normal CDF. GPT-2 computed it with a tanh approximation
# (transformers calls it "gelu_new"): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
# torch's nn.GELU() (and nanoGPT, which uses it) computes the exact erf form. How far apart are they?

# %%
grid = np.linspace(-6.0, 6.0, 1201)                    # (1201,)
g_tanh, g_cache = gelu_forward(grid)                    # (1201,)
erf = np.vectorize(math.erf)
g_erf = 0.5 * grid * (1.0 + erf(grid / math.sqrt(2.0)))   # (1201,) exact GELU
diff = g_tanh - g_erf
i = int(np.argmax(np.abs(diff)))
print(f"max |gelu_tanh - gelu_erf| = {abs(diff[i]):.3g} at x = {grid[i]:.2f}")
print("small, but a model trained with one and run with the other drifts: GPT-2's weights expect tanh")
j = int(np.argmin(g_tanh))
print(f"GELU is not monotonic: minimum {g_tanh[j]:.4f} at x = {grid[j]:.2f}; GELU(0) = {g_tanh[600]:.1f}")

# %% [markdown]
# ## 3. The derivative, by hand
# With u = sqrt(2/pi) (x + 0.044715 x^3) and t = tanh(u):
# d/dx [0.5 x (1 + t)] = 0.5 (1 + t) + 0.5 x (1 - t^2) du/dx,  du/dx = sqrt(2/pi) (1 + 3 * 0.044715 x^2).
# (product rule, then tanh' = 1 - tanh^2, then the chain rule through u.)

# %%
d_tanh = gelu_backward(np.ones_like(grid), g_cache)    # (1201,) derivative at every grid point
probe = grid[::50].copy()                               # (25,) finite differences on a coarser grid
numeric = numeric_grad(lambda: gelu_forward(probe)[0], probe, np.ones_like(probe))
print(f"derivative vs central differences: relative error {rel_error(d_tanh[::50], numeric):.1e}")
zero = grid[np.argmax(d_tanh >= 0)]
print(f"GELU'(0) = {d_tanh[600]:.3f} (ReLU has no derivative at 0); GELU' < 0 for x < {zero:.2f}")
d_erf = 0.5 * (1.0 + erf(grid / math.sqrt(2.0))) + grid * np.exp(-0.5 * grid**2) / math.sqrt(2.0 * math.pi)
print(f"max |GELU'_tanh - GELU'_erf| = {np.abs(d_tanh - d_erf).max():.3g}")

# %% [markdown]
# ## 4. The MLP, and its backward run in reverse
# c_fc widens C -> 4C, GELU bends, c_proj narrows back. The backward calls the three backwards in reverse.

# %%
H4 = 4 * C
params = [rng.standard_normal((C, H4)) / math.sqrt(C), rng.standard_normal(H4) * 0.5,
          rng.standard_normal((H4, C)) / math.sqrt(H4), rng.standard_normal(C) * 0.5]
y, mlp_cache = mlp_forward(x, *params)                  # (B, T, C)
hidden = linear_forward(x, params[0], params[1])[0]     # (B, T, 4C)
print("mlp:", x.shape, "-> c_fc", hidden.shape, "-> GELU -> c_proj", y.shape)
errors = check_layer(mlp_forward, mlp_backward, [x, *params])
names = ["x", "c_fc_weight", "c_fc_bias", "c_proj_weight", "c_proj_bias"]
print("finite differences, mlp:", {n: f"{v:.1e}" for n, v in zip(names, errors.values(), strict=True)})
same = np.allclose(mlp_forward(x[:, :1], *params)[0], y[:, :1])
print("position-wise: the first position's output does not depend on the others:", same)

# %% [markdown]
# ## 5. How long does it take? (nanoGPT's CPU recipe: B=12, T=64, C=128, float32)

# %%
Bt, Tt, Ct = 12, 64, 128
xt = rng.standard_normal((Bt, Tt, Ct)).astype(np.float32)
shapes = [(Ct, 4 * Ct), (4 * Ct,), (4 * Ct, Ct), (Ct,)]
pt = [(rng.standard_normal(s) * 0.02).astype(np.float32) for s in shapes]
reps = 3 if quick() else 20
times = []
for _ in range(reps):
    start = time.perf_counter()
    yt, ct = mlp_forward(xt, *pt)                        # (12, 64, 128)
    grads = mlp_backward(np.ones_like(yt), ct)
    times.append(time.perf_counter() - start)
best = min(times)                                        # the least disturbed run: the machine is shared
flops = 3 * 2 * (2 * Bt * Tt * Ct * 4 * Ct)              # two matmuls forward, twice that backward
print(f"mlp forward+backward at (12, 64, 128) float32: best {best * 1e3:.2f} ms of {reps} runs, "
      f"{flops / best / 1e9:.1f} GFLOP/s in the matmuls' arithmetic")
print(f"float32 in -> float32 out: out {yt.dtype}, grads {sorted({g.dtype.name for g in grads})}")

# %% [markdown]
# ## 6. Figure: GELU vs ReLU, their derivatives, and tanh minus erf

# %%
relu = np.maximum(grid, 0.0)
d_relu = (grid > 0).astype(float)
fig, axes = plt.subplots(1, 3, figsize=(14, 4))
axes[0].plot(grid, relu, label="ReLU", color="gray", linestyle="--")
axes[0].plot(grid, g_tanh, label="GELU (tanh, GPT-2)")
axes[0].set(title="activation", xlim=(-4, 4), ylim=(-0.5, 4), xlabel="x")
axes[1].plot(grid, d_relu, label="ReLU'", color="gray", linestyle="--")
axes[1].plot(grid, d_tanh, label="GELU' (tanh)")
axes[1].axhline(0.0, color="black", linewidth=0.5)
axes[1].set(title="derivative", xlim=(-4, 4), xlabel="x")
axes[2].plot(grid, diff * 1e4)
axes[2].set(title="GELU tanh - GELU erf (x 1e-4)", xlabel="x")
axes[2].axhline(0.0, color="black", linewidth=0.5)
for ax in axes[:2]:
    ax.legend()
    ax.grid(alpha=0.3)
axes[2].grid(alpha=0.3)
fig.tight_layout()
path = figures_dir(__file__) / "gelu.png"
fig.savefig(path, dpi=110)
print("saved", path)
