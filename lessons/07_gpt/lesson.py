"""Lesson 07 walk-through: the whole GPT-2, its parameters, its backward pass, and real checkpoints.

Run it: `minigpt lesson run 07` (or `python lesson.py` in this folder). It prints evidence and saves three
figures to figures/: where the parameters are, the loss and gradient norms of a short training run, and
the attention maps of the trained model. MINIGPT_QUICK=1 shortens the training run (under 20 s in all).

Not here: the comparison with transformers (check.py: `minigpt lesson check 07`) and downloads.
"""

# %% [markdown]
# # GPT-2 from the layer pairs
# Embeddings, L pre-LN blocks, a final LayerNorm and a head tied to the token embedding: that is all of
# GPT-2. minigpt/model.py composes the pairs from lessons 02-06 and writes the backward out by hand.

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minigpt import hf, optim
from minigpt.course.gradcheck import rel_error, sampled_grad_errors
from minigpt.course.grader import load_reference
from minigpt.files.paths import figures_dir, quick, shared_data
from minigpt.model import GPT, GPTConfig, block_forward, count_params, flops_per_token, param_shapes

FIG = figures_dir(__file__)
HERE = Path(__file__).resolve().parent
np.set_printoptions(precision=4, suppress=True, linewidth=110)

# %% [markdown]
# ## 1. Where the parameters are
# Per block: c_attn 3C^2 + 3C, attn.c_proj C^2 + C, c_fc 4C^2 + 4C, mlp.c_proj 4C^2 + C, two LayerNorms
# 4C: 12C^2 + 13C. Plus wte V C, wpe P C, ln_f 2C. The head is wte again, so it adds nothing.

# %%
BABY = GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128)   # nanoGPT's CPU recipe
GPT2 = GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)


def budget(config: GPTConfig) -> dict[str, int]:
    """Parameters per component, from the shapes alone (nothing is allocated)."""
    groups = {"wte (token embedding = head)": 0, "wpe (positions)": 0, "attention (c_attn, c_proj)": 0,
              "MLP (c_fc, c_proj)": 0, "LayerNorms": 0}
    for name, shape in param_shapes(config).items():
        n = int(np.prod(shape))
        key = ("wte (token embedding = head)" if name.startswith("wte") else
               "wpe (positions)" if name.startswith("wpe") else
               "attention (c_attn, c_proj)" if ".attn." in name else
               "MLP (c_fc, c_proj)" if ".mlp." in name else "LayerNorms")
        groups[key] += n
    return groups


for label, config in (("baby (L4 H4 C128, V65)", BABY), ("GPT-2 small (L12 H12 C768)", GPT2)):
    b = budget(config)
    total = sum(b.values())
    print(f"{label}: {total:,} parameters (count_params: {count_params(config):,})")
    for key, n in b.items():
        print(f"    {key:<30} {n:>12,}  {100 * n / total:5.1f}%")

V, P, C, L = 50257, 1024, 768, 12
print(f"\nGPT-2 small by hand: V*C {V * C:,} + P*C {P * C:,} + L*(12C^2+13C) {L * (12 * C * C + 13 * C):,} "
      f"+ 2C {2 * C:,} = {V * C + P * C + L * (12 * C * C + 13 * C) + 2 * C:,}")
print(f"an untied head would add another V*C = {V * C:,} (31% more)")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
colors = ["#4C72B0", "#8172B2", "#DD8452", "#55A868", "#C44E52"]
for ax, (label, config) in zip(axes, (("baby: 0.8M", BABY), ("GPT-2 small: 124.4M", GPT2)), strict=True):
    b = budget(config)
    total = sum(b.values())
    ax.barh(list(b)[::-1], [100 * n / total for n in b.values()][::-1], color=colors[::-1])
    for i, n in enumerate(list(b.values())[::-1]):
        ax.text(100 * n / total + 1, i, f"{n / 1e6:.2f}M", va="center", fontsize=8)
    ax.set_xlim(0, 80)
    ax.set_xlabel("% of parameters")
    ax.set_title(label)
axes[1].set_yticklabels([])
fig.suptitle("Where the parameters are (head tied to wte)")
fig.tight_layout()
fig.savefig(FIG / "param_budget.png", dpi=120)
plt.close(fig)

# %% [markdown]
# ## 2. A checkpoint transformers saved, read with NumPy alone
# reference/tiny_gpt2/ was written by `GPT2LMHeadModel.save_pretrained` (make_reference.py). hf.load_gpt2
# reads config.json and model.safetensors; the logits match what transformers computed.

# %%
ref = load_reference(HERE / "check.py", "gpt.npz")
tiny = hf.load_gpt2(HERE / "reference" / "tiny_gpt2", dtype=np.float64)
print(tiny.config)
logits = tiny.forward(ref["idx"])                                      # (2, 7, 37)
print("max |minigpt - transformers| logits:", np.abs(logits - ref["logits"]).max())
loss, grads = tiny.loss_and_grads(ref["idx"], ref["targets"])
worst = max(rel_error(grads[k], ref[f"grad.{k}"]) for k in grads)
print(f"loss {loss:.12f} vs {float(ref['loss']):.12f}; worst gradient rel. error over {len(grads)} tensors "
      f"{worst:.1e}")

# %% [markdown]
# ## 3. The backward pass against finite differences
# Every parameter, three sampled entries, central differences of the loss in float64.

# %%
# sampled_grad_errors nudges each picked entry by +-h in place, re-runs the loss, and restores it
errors = sampled_grad_errors(lambda: tiny.loss(ref["idx"], ref["targets"]), tiny.params, grads,
                             samples=3, rng=np.random.default_rng(0), h=1e-5)
for name in ("wte.weight", "wpe.weight", "h.0.attn.c_attn.weight", "h.1.mlp.c_proj.weight", "ln_f.bias"):
    print(f"    {name:<26} relative error {errors[name][0]:.1e}")
print("c_attn.bias can show ~1: its key third has an exactly-zero gradient (softmax ignores a per-row shift),"
      f" here {errors['h.0.attn.c_attn.bias'][0]:.1e}")

# %% [markdown]
# ## 4. Greedy generation, with and without the KV cache
# The same continuation transformers' generate() produced; the cache feeds one token per step.

# %%
prompt = ref["greedy_prompt"]                                          # (1, 3)
ids = prompt.copy()
for _ in range(len(ref["greedy_ids"])):
    ids = np.concatenate([ids, tiny.forward(ids)[:, -1:].argmax(-1)], axis=1)   # recompute everything
cache = tiny.new_kv_cache()
step_logits = tiny.forward(prompt, kv_cache=cache)                     # (1, 3, V): fills the cache
cached = []
for _ in range(len(ref["greedy_ids"])):
    cached.append(int(step_logits[0, -1].argmax()))
    if len(cache) < tiny.config.block_size:
        step_logits = tiny.forward(np.array([[cached[-1]]]), kv_cache=cache)   # (1, 1, V)
print("full recompute:", ids[0, 3:].tolist(), " KV cache:", cached,
      " transformers:", ref["greedy_ids"].tolist())

# %% [markdown]
# ## 5. Training a baby GPT: the loss starts at ln V, gradients by layer
# Character-level text, AdamW, 2 layers. At initialisation the logits are ~0, so every character has
# probability ~1/V and the loss is ln V.

# %%
path = shared_data("tinyshakespeare.txt")
text = path.read_text(encoding="utf-8")[:200_000] if path else (
    "First Citizen: Before we proceed any further, hear me speak. All: Speak, speak. " * 400)
if path is None:
    if "MINIGPT_FIGURES" not in os.environ:               # never overwrite the committed figures with these
        FIG = Path(tempfile.mkdtemp(prefix="minigpt-lesson07-"))
    print("!" * 100 + "\nWARNING: tinyshakespeare.txt not found in ../shared/data beside the clone (or "
          "$MINIGPT_SHARED_DATA).\nTraining on one line repeated 400 times instead: the model memorises it "
          "and the loss falls far below\nthe 4.13 -> 2.4 the chapter shows. The figures of this section and "
          f"the next go to {FIG}.\n" + "!" * 100)
chars = sorted(set(text))
stoi = {c: i for i, c in enumerate(chars)}
data = np.array([stoi[c] for c in text], dtype=np.int64)
config = GPTConfig(vocab_size=len(chars), block_size=32, n_layer=2, n_head=4, n_embd=64)
model = GPT(config, seed=0)
opt = optim.AdamW(model.params, lr=3e-3, betas=(0.9, 0.99), weight_decay=0.1)
steps = 40 if quick() else 300
B = 12
data_rng = np.random.default_rng(1)
losses, norms = [], {"wte.weight": [], "h.0 (block 0)": [], "h.1 (block 1)": []}
t0 = time.perf_counter()
for step in range(steps):
    starts = data_rng.integers(0, len(data) - config.block_size - 1, B)
    x = np.stack([data[s:s + config.block_size] for s in starts])          # (B, T)
    y = np.stack([data[s + 1:s + 1 + config.block_size] for s in starts])  # (B, T) next characters
    loss, grads = model.loss_and_grads(x, y)
    losses.append(loss)
    norms["wte.weight"].append(float(np.linalg.norm(grads["wte.weight"])))
    for i in range(2):
        block = [g for k, g in grads.items() if k.startswith(f"h.{i}.")]
        norms[f"h.{i} (block {i})"].append(float(np.sqrt(sum(np.sum(np.square(g, dtype=np.float64))
                                                             for g in block))))
    optim.clip_grad_norm(grads, max_norm=1.0)
    opt.step(grads)
    if step % (steps // 5) == 0 or step == steps - 1:
        print(f"step {step:4d}  loss {loss:.4f}")
elapsed = time.perf_counter() - t0
print(f"loss at step 0: {losses[0]:.4f}  vs ln V = ln {config.vocab_size} = {np.log(config.vocab_size):.4f}")
tokens = steps * B * config.block_size
gflop = flops_per_token(config) * tokens / 1e9
print(f"{steps} steps in {elapsed:.1f} s: {tokens / elapsed:,.0f} tokens/s, ~{gflop / elapsed:.1f} GFLOP/s "
      f"(6N + 12LCT = {model.flops_per_token():,} FLOPs per token)")

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6))
ax1.plot(losses, lw=1)
ax1.axhline(np.log(config.vocab_size), color="gray", ls=":", label=f"ln V = {np.log(config.vocab_size):.2f}")
ax1.set_xlabel("step")
ax1.set_ylabel("training loss")
ax1.legend()
for label, values in norms.items():
    ax2.semilogy(values, lw=1, label=label)
ax2.set_xlabel("step")
ax2.set_ylabel("gradient norm (before clipping)")
ax2.legend()
fig.suptitle("A 2-layer character GPT on tiny Shakespeare, AdamW lr 3e-3")
fig.tight_layout()
fig.savefig(FIG / "loss_gradnorm.png", dpi=120)
plt.close(fig)

# %% [markdown]
# ## 6. What the trained heads look at
# The attention weights of every head in every layer for one sequence (rows: queries, columns: keys).

# %%
x_text = text[1000:1000 + 24]
idx = np.array([[stoi[c] for c in x_text]])                             # (1, 24)
h = model.params["wte.weight"][idx] + model.params["wpe.weight"][:24]   # (1, 24, C) the embeddings
maps = []
for i in range(config.n_layer):
    p = {k.removeprefix(f"h.{i}."): v for k, v in model.params.items() if k.startswith(f"h.{i}.")}
    h, cache = block_forward(h, p, config, training=True)              # dropout 0: caches, same values
    maps.append(cache[1][1][3][0])                                     # the sdpa cache's weights (H, T, T)
shown = [{" ": "␣", "\n": "⏎"}.get(c, c) for c in x_text]               # visible spaces and newlines
fig, axes = plt.subplots(config.n_layer, config.n_head, figsize=(3.3 * config.n_head, 3.5 * config.n_layer),
                         layout="constrained")
for i in range(config.n_layer):
    for j in range(config.n_head):
        ax = axes[i, j]
        im = ax.imshow(maps[i][j], cmap="viridis", vmin=0, vmax=1)
        ax.set_xticks(range(24), shown, fontsize=6)
        ax.set_yticks(range(24), shown, fontsize=6)
        ax.set_title(f"layer {i} head {j}", fontsize=9)
        if i == config.n_layer - 1:
            ax.set_xlabel("key (the character looked at)", fontsize=8)
        if j == 0:
            ax.set_ylabel("query (the character looking)", fontsize=8)
fig.colorbar(im, ax=axes, shrink=0.6, label="attention weight")
fig.suptitle(f"Attention weights of the trained 2-layer model on {x_text!r}")
fig.savefig(FIG / "attention_maps.png", dpi=120)
plt.close(fig)
print("row sums of a map (each query's weights sum to 1):", maps[0][0].sum(-1)[:5])

# %% [markdown]
# ## 7. Real GPT-2 (the article's example), when you have the files
# With internet: `minigpt download gpt2 --dest gpt2` fetches config.json, model.safetensors, vocab.json
# and merges.txt. Set MINIGPT_GPT2 to that folder's full path and this cell continues "In the beginning..."
# greedily.

# %%
folder = os.environ.get("MINIGPT_GPT2")
if folder and (Path(folder) / "model.safetensors").is_file():
    gpt2 = hf.load_gpt2(folder)
    tok = hf.load_gpt2_tokenizer(folder)
    ids = np.array([tok.encode("In the beginning...")])
    cache = gpt2.new_kv_cache()
    step_logits = gpt2.forward(ids, kv_cache=cache)
    new = []
    while ids.shape[1] + len(new) < 50:                                # generate(max_length=50): 50 in all
        new.append(int(step_logits[0, -1].argmax()))
        step_logits = gpt2.forward(np.array([[new[-1]]]), kv_cache=cache)
    print(tok.decode(ids[0].tolist() + new))
else:
    print("no GPT-2 folder (set MINIGPT_GPT2=<folder with config.json + model.safetensors>); "
          f"GPT-2 small: {count_params(GPT2):,} parameters, {flops_per_token(GPT2):,} training FLOPs per "
          f"token at T=1024 (the baby: {flops_per_token(BABY):,} at T=64)")
