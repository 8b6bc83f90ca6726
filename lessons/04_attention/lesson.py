"""Lesson 04 walk-through: causal multi-head self-attention, forward and backward, with evidence.

Run it: `minigpt lesson run 04` (or `python lesson.py` in this folder). It prints numbers and saves three
figures to figures/: the causal mask, attention weights per head, and softmax saturation without the scale.
MINIGPT_QUICK=1 shrinks the timing loop so the whole script stays well under 20 s.
"""

# %% [markdown]
# # Causal self-attention
# Every position asks a question (its query), every earlier position offers an answer key and a value;
# the output is the values averaged with weights softmax(query . key / sqrt(D)).

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np

from minigpt.course.gradcheck import check_layer, numeric_grad, rel_error
from minigpt.files.paths import figures_dir, quick
from minigpt.layers.attention import (
    attention_backward,
    attention_forward,
    causal_mask,
    merge_heads,
    sdpa_backward,
    sdpa_forward,
    split_heads,
)
from minigpt.layers.linear import linear_backward, linear_forward

FIG = figures_dir(__file__)
rng = np.random.default_rng(0)
np.set_printoptions(precision=3, suppress=True, linewidth=110)

# %% [markdown]
# ## 0. The linear layer (Conv1D) that every projection uses
# y = x @ W + b with W stored (in, out). Backward: dx = dout W^T, dW = x^T dout summed over every (b, t) row,
# db = the sum of dout over those rows. Checked against finite differences in float64.

# %%
rng0 = np.random.default_rng(4)                                       # its own stream: §1-§9 keep theirs
x_lin = rng0.standard_normal((2, 5, 6))                               # (B, T, Cin)
w_lin, b_lin = rng0.standard_normal((6, 7)), rng0.standard_normal(7)  # (Cin, Cout), (Cout,)
y_lin, cache_lin = linear_forward(x_lin, w_lin, b_lin)                # (B, T, Cout)
dy_lin = rng0.standard_normal(y_lin.shape)                            # (B, T, Cout)
dx_lin, dw_lin, db_lin = linear_backward(dy_lin, cache_lin)
by_hand = (dy_lin @ w_lin.T, np.einsum("bti,bto->io", x_lin, dy_lin), dy_lin.sum(axis=(0, 1)))
print("linear: x", x_lin.shape, "-> y", y_lin.shape, "| dW", dw_lin.shape, "db", db_lin.shape,
      "| formulas vs linear_backward:", [f"{rel_error(a, b):.0e}" for a, b in zip((dx_lin, dw_lin, db_lin),
                                                                                  by_hand, strict=True)])
errs = check_layer(linear_forward, linear_backward, [x_lin, w_lin, b_lin])
print("linear, finite differences:", {k: f"{v:.1e}" for k, v in errs.items()})
att32 = rng0.standard_normal((2, 2)).astype(np.float32)               # float32 scores
print("float32 scores * (1 / np.sqrt(D)):", (att32 * (1 / np.sqrt(4))).dtype,
      "| * (1.0 / math.sqrt(D)):", (att32 * (1.0 / math.sqrt(4))).dtype, "(NumPy", np.__version__ + ")")

# %% [markdown]
# ## 1. The formula as the article wrote it, and what it leaves out
# `Attention(Q,K,V) = e^{QK^T/sqrt(d_k)} / sum_j e^{Q_j K_j^T/sqrt(d_k)}`, taken literally: the denominator
# pairs query j with key j only, one number for the whole matrix, and V never appears.

# %%
T, D = 4, 3
Q, K, V = (rng.standard_normal((T, D)) for _ in range(3))            # (T, D) each
S = Q @ K.T / np.sqrt(D)                                              # (T, T) scores
literal = np.exp(S) / np.sum(np.exp(np.sum(Q * K, axis=1) / np.sqrt(D)))   # (T, T) / scalar
print("literal formula: shape", literal.shape, "row sums", literal.sum(axis=1), "<- not 1, and no V")

weights = np.exp(S - S.max(axis=1, keepdims=True))                    # (T, T) softmax over the keys...
weights /= weights.sum(axis=1, keepdims=True)                         # ...of each query: row-wise
print("softmax over each row's keys: row sums", weights.sum(axis=1))
print("then weights @ V: shape", (weights @ V).shape, "= (T, D), one averaged value per query")

# %% [markdown]
# ## 2. Why divide by sqrt(D): the variance of a dot product grows with D
# With q, k entries independent, mean 0, variance 1: Var(q.k) = sum_d Var(q_d k_d) = D. The scale brings
# it back to 1, so the softmax's input has the same spread whatever the head size.

# %%
dims = [4, 16, 64, 256, 1024]
n_keys, trials = 16, 2000
print(f"{'D':>6} {'std(q.k)':>10} {'sqrt(D)':>8} {'std scaled':>11} {'max weight':>11} {'scaled':>8} "
      f"{'|J|':>7} {'scaled':>7}")
max_w_raw, max_w_scaled, jac_raw, jac_scaled = [], [], [], []
for d in dims:
    q = rng.standard_normal((trials, 1, d))                          # (N, 1, D)
    k = rng.standard_normal((trials, n_keys, d))                     # (N, n_keys, D)
    s = (q * k).sum(-1)                                              # (N, n_keys) raw scores
    for x_, max_w, jac in ((s, max_w_raw, jac_raw), (s / np.sqrt(d), max_w_scaled, jac_scaled)):
        e = np.exp(x_ - x_.max(-1, keepdims=True))
        p_ = e / e.sum(-1, keepdims=True)                            # (N, n_keys) softmax weights
        J_ = p_[:, :, None] * np.eye(n_keys) - p_[:, :, None] * p_[:, None, :]   # (N, n_keys, n_keys)
        max_w.append(float(p_.max(-1).mean()))                       # largest weight, averaged
        jac.append(float(np.linalg.norm(J_, axis=(1, 2)).mean()))    # how much gradient gets through
    print(f"{d:>6} {s.std():>10.2f} {np.sqrt(d):>8.2f} {(s / np.sqrt(d)).std():>11.3f} "
          f"{max_w_raw[-1]:>11.3f} {max_w_scaled[-1]:>8.3f} {jac_raw[-1]:>7.3f} {jac_scaled[-1]:>7.3f}")
print("without the scale the softmax saturates (one weight near 1): its gradient p*(dp - sum(dp*p)) -> 0")

fig, (ax, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
ax.semilogx(dims, max_w_raw, "o-", label="softmax(q.k)")
ax.semilogx(dims, max_w_scaled, "s-", label="softmax(q.k / sqrt(D))")
ax.axhline(1 / n_keys, color="gray", ls=":", label=f"uniform (1/{n_keys})")
ax.set_xlabel("head size D")
ax.set_ylabel(f"mean largest weight of {n_keys}")
ax.set_title("Without 1/sqrt(D) the softmax saturates")
ax.legend()
ax2.semilogx(dims, jac_raw, "o-", label="softmax(q.k)")
ax2.semilogx(dims, jac_scaled, "s-", label="softmax(q.k / sqrt(D))")
ax2.set_xlabel("head size D")
ax2.set_ylabel("mean ||diag(p) - p p^T||")
ax2.set_title("...and passes back less gradient")
ax2.set_ylim(bottom=0)
ax2.legend()
fig.tight_layout()
fig.savefig(FIG / "scale_saturation.png", dpi=120)
plt.close(fig)

# %% [markdown]
# ## 3. The causal mask
# Query i may look at keys 0..i. With a KV cache the Tq new queries are the last positions, so query i
# sees keys 0..(Tk - Tq + i): the mask is aligned bottom-right.

# %%
full, cached = causal_mask(8, 8), causal_mask(3, 8)                   # (8, 8), (3, 8); True = hidden
print("causal_mask(3, 8), True = may not look:\n", cached.astype(int))
fig, axes = plt.subplots(1, 2, figsize=(8, 3.4), gridspec_kw={"width_ratios": [8, 8]})
for ax, m, title in ((axes[0], full, "training: Tq = Tk = 8"), (axes[1], cached, "KV cache: Tq = 3, Tk = 8")):
    ax.imshow(~m, cmap="Blues", vmin=0, vmax=1.3)
    ax.set_title(title)
    ax.set_xlabel("key position j")
    ax.set_ylabel("query position i")
    ax.set_yticks(range(m.shape[0]), labels=range(m.shape[1] - m.shape[0], m.shape[1]))
    ax.set_xticks(range(m.shape[1]))
fig.suptitle("Causal mask: blue = may attend")
fig.tight_layout()
fig.savefig(FIG / "causal_mask.png", dpi=120)
plt.close(fig)

# %% [markdown]
# ## 4. Heads: split, attend, merge, with shapes
# c_attn maps C -> 3C; the three C-wide slices are q, k, v, in that order; each is cut into H heads of D.

# %%
B, T, C, H = 2, 8, 12, 3
x = rng.standard_normal((B, T, C))                                    # (B, T, C)
c_attn_w, c_attn_b = 0.3 * rng.standard_normal((C, 3 * C)), np.zeros(3 * C)
c_proj_w, c_proj_b = 0.3 * rng.standard_normal((C, C)), np.zeros(C)
qkv = x @ c_attn_w + c_attn_b                                         # (B, T, 3C)
q, k, v = np.split(qkv, 3, axis=-1)                                   # 3 x (B, T, C)
qh = split_heads(q, H)                                                # (B, H, T, D)
print("x", x.shape, "-> qkv", qkv.shape, "-> q", q.shape, "-> heads", qh.shape,
      "-> merged", merge_heads(qh).shape)
out, cache = attention_forward(x, c_attn_w, c_attn_b, c_proj_w, c_proj_b, n_head=H)
print("attention_forward:", x.shape, "->", out.shape)

# %% [markdown]
# ## 5. What heads can do: three built by hand, one random
# A trick to see the weights through the public function: with v = the identity, y = weights @ I = weights.
# Positions are one-hot vectors times a strength; head 0 matches a position with itself, head 1 with the
# previous position, head 2 has zero queries (all scores equal: a plain average of the past), head 3 random.

# %%
T, D, strength = 8, 8, 4.0
eye = np.eye(T) * strength                                            # (T, D) one-hot positions
prev = np.roll(eye, -1, axis=0)                                       # key j looks like position j+1
qs = np.stack([eye, eye, np.zeros((T, D)), rng.standard_normal((T, D))])        # (H, T, D)
ks = np.stack([eye, prev, np.zeros((T, D)), rng.standard_normal((T, D))])       # (H, T, D)
weights, _ = sdpa_forward(qs[None], ks[None], np.broadcast_to(np.eye(T), (1, 4, T, T)))   # (1, H, T, T)
print("head 1 (previous token), row 5:", weights[0, 1, 5])
print("every row sums to 1:", np.allclose(weights.sum(-1), 1), "| nothing above the diagonal:",
      bool(np.all(weights[0][:, causal_mask(T, T)] == 0)))
fig, axes = plt.subplots(1, 4, figsize=(12, 3.4), layout="constrained")
titles = ["head 0: itself", "head 1: previous token", "head 2: average of the past", "head 3: random"]
for h, ax in enumerate(axes):
    im = ax.imshow(weights[0, h], cmap="viridis", vmin=0, vmax=1)
    ax.set_title(titles[h], fontsize=10)
    ax.set_xlabel("key j")
axes[0].set_ylabel("query i")
fig.colorbar(im, ax=axes, shrink=0.8, label="softmax weight")
fig.savefig(FIG / "attention_weights.png", dpi=120)
plt.close(fig)

# %% [markdown]
# ## 6. The softmax backward: the Jacobian, and the cheap form
# p = softmax(s): dp_i/ds_j = p_i (delta_ij - p_j), i.e. J = diag(p) - p p^T (symmetric). So
# ds = J^T dp = p * dp - p (p . dp) = p * (dp - sum(dp * p)) — no T x T matrix per row needed.

# %%
s = rng.standard_normal(6)                                            # (Tk,) one row of scores
p = np.exp(s - s.max())
p /= p.sum()                                                          # (Tk,)
dp = rng.standard_normal(6)                                           # (Tk,) upstream gradient
J = np.diag(p) - np.outer(p, p)                                       # (Tk, Tk)
ds_jacobian = J.T @ dp
ds_cheap = p * (dp - np.sum(dp * p))
def softmax_row():
    e = np.exp(s - s.max())
    return e / e.sum()
ds_numeric = numeric_grad(softmax_row, s, dp)
print(f"Jacobian vs cheap form: {rel_error(ds_jacobian, ds_cheap):.1e}  cheap vs finite differences: "
      f"{rel_error(ds_cheap, ds_numeric):.1e}")
print("sum(ds) =", f"{ds_cheap.sum():.1e}", "(adding a constant to every score changes nothing)")

# %% [markdown]
# ## 7. Finite differences for the whole layer (float64)

# %%
x = rng.standard_normal((2, 5, 12))                                   # B=2, T=5, C=12, H=3, D=4
params = [0.3 * rng.standard_normal((12, 36)), 0.1 * rng.standard_normal(36),
          0.3 * rng.standard_normal((12, 12)), 0.1 * rng.standard_normal(12)]
t0 = time.perf_counter()
errors = check_layer(attention_forward, attention_backward, [x, *params], kwargs={"n_head": 3})
names = ["dx", "dc_attn_weight", "dc_attn_bias", "dc_proj_weight", "dc_proj_bias"]
print("relative errors:", {n: f"{e:.1e}" for n, e in zip(names, errors.values(), strict=True)},
      f"({time.perf_counter() - t0:.2f} s)")
qkv3 = [rng.standard_normal((2, 3, 5, 4)) for _ in range(3)]
print("sdpa alone:", {n: f"{e:.1e}" for n, e in zip("qkv", check_layer(sdpa_forward, sdpa_backward,
                                                                        qkv3).values(), strict=True)})

# %% [markdown]
# ## 8. Huge scores: why the row max is subtracted first

# %%
row = np.array([1e4, -1e4, 1e4])
with np.errstate(over="ignore", invalid="ignore"):
    naive = np.exp(row) / np.exp(row).sum()
print("naive softmax of [1e4, -1e4, 1e4]:", naive)
stable = np.exp(row - row.max())
print("after subtracting the max:        ", stable / stable.sum())
q = np.full((1, 1, 3, 1), 100.0)
k = np.array([100.0, -100.0, 100.0]).reshape(1, 1, 3, 1)             # q.k = +-1e4
y, c = sdpa_forward(q, k, np.arange(3.0).reshape(1, 1, 3, 1))
grads = sdpa_backward(np.ones_like(y), c)
print("sdpa on +-1e4 scores: y =", y.ravel(), "all finite:",
      all(np.isfinite(a).all() for a in (y, *grads)))

# %% [markdown]
# ## 9. The KV cache: new queries against old keys
# Generating one token at a time, only the newest query is computed; it must equal the last row of the
# full computation. (torch's is_causal=True aligns the mask top-left instead: see the README.)

# %%
q, k, v = (rng.standard_normal((1, 2, 6, 4)) for _ in range(3))
full_y, _ = sdpa_forward(q, k, v)
last_y, _ = sdpa_forward(q[:, :, -1:], k, v)                          # Tq = 1, Tk = 6
print("last query alone == last row of the full attention:", np.allclose(last_y, full_y[:, :, -1:]))

# %% [markdown]
# ## 10. How long does it take? nanoGPT's CPU recipe shapes, float32

# %%
B, T, C, H = 12, 64, 128, 4
x = rng.standard_normal((B, T, C)).astype(np.float32)
params = [(0.02 * rng.standard_normal(s)).astype(np.float32) for s in ((C, 3 * C), (3 * C,), (C, C), (C,))]
reps = 3 if quick() else 10
attention_forward(x, *params, n_head=H)                               # warm-up
t0 = time.perf_counter()
for _ in range(reps):
    out, c = attention_forward(x, *params, n_head=H)
t1 = time.perf_counter()
for _ in range(reps):
    attention_backward(np.ones_like(out), c)
t2 = time.perf_counter()
print(f"B={B} T={T} C={C} H={H}: forward {1e3 * (t1 - t0) / reps:.2f} ms, "
      f"backward {1e3 * (t2 - t1) / reps:.2f} ms (mean of {reps})")
print("(on a busy machine, OPENBLAS_NUM_THREADS=1 python lesson.py gives steadier numbers: see the README)")
print("figures saved to", FIG)
