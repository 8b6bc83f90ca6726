"""Lesson 14 walk-through: LoRA, fine-tuning a frozen GPT through low-rank adapters.

Run it with `minigpt lesson run 14` (or `python lesson.py` in this folder): about a minute on a laptop CPU,
a few seconds with MINIGPT_QUICK=1 (fewer steps, weaker numbers). It prints evidence at every step and saves
figures/lora_vs_full.png.

The experiment is lesson 11's toy: a tiny GPT pre-trained on a made-up language of letters, then taught
"write this word backwards" (prompt "abc=", response "cba\\n"), once by full fine-tuning and then through
LoRA adapters of a few ranks, everything else equal.

Not here: the reference comparison against PEFT (check.py: `minigpt lesson check 14`, and tests/test_lora.py
for the whole model).
"""

# %% [markdown]
# # LoRA: learn a small change to a big frozen matrix
# Full fine-tuning updates every weight and keeps AdamW's two moments for each. LoRA freezes the model and
# learns, next to each chosen weight W (in, out), a product A B of two thin matrices, A (in, r) and
# B (r, out), with r much smaller than in and out: out = x W + b + (alpha / r) x A B.

# %%
import math
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minigpt import hf, optim
from minigpt.course.gradcheck import check_layer
from minigpt.files.paths import figures_dir, quick
from minigpt.finetune import tasks
from minigpt.finetune.lora import LoRAConfig, LoRAGPT, adapter_shapes, lora_gpt_loss_and_grads
from minigpt.layers.lora import lora_backward, lora_forward, lora_init, lora_merge, lora_unmerge
from minigpt.model import GPT, GPTConfig, count_params
from minigpt.sampling import generate
from minigpt.tokenizer import CharTokenizer

QUICK = quick()
FIG = figures_dir(__file__)
rng = np.random.default_rng(0)
t_start = time.time()

# %% [markdown]
# ## 1. One adapted layer: B = 0 means "the base model, exactly"
# PEFT's initialisation: A uniform in ±1/sqrt(in) (torch's nn.Linear default), B zero. The update A B is then
# zero, so the adapted layer computes the frozen one bit for bit; but B's gradient, s (xA)ᵀ dout, is not zero,
# so training moves B first, and A follows once B is non-zero.

# %%
x = rng.standard_normal((2, 5, 12))                                   # (B, T, Cin)
W, b = rng.standard_normal((12, 7)), rng.standard_normal(7)           # (Cin, Cout), (Cout,)
A, B = lora_init(12, 7, r=3, rng=rng, dtype=np.float64)               # (Cin, r), (r, Cout)
out, cache = lora_forward(x, W, b, A, B, scale=2.0)                   # (B, T, Cout)
dx, dA, dB = lora_backward(np.ones_like(out), cache)
print(f"A in [{A.min():+.3f}, {A.max():+.3f}] (bound 1/sqrt(12) = {1 / math.sqrt(12):.3f}), B all zero")
print(f"adapted == frozen at init: {np.array_equal(out, x @ W + b)};  |dA| max {np.abs(dA).max():.1f}, "
      f"|dB| max {np.abs(dB).max():.2f}  (B = 0 blocks A's gradient, not B's)")

B = rng.standard_normal((3, 7))                                        # a trained-looking B
errors = check_layer(lambda x, A, B: lora_forward(x, W, b, A, B, 2.0), lora_backward, [x, A, B])
names = ("dx", "dA", "dB")
print("finite differences (float64, h = 1e-5): " +
      ", ".join(f"{n} {e:.1e}" for n, e in zip(names, errors.values(), strict=True)))
merged = lora_merge(W, A, B, 2.0)                                      # (Cin, Cout)
out, _ = lora_forward(x, W, b, A, B, 2.0)
print(f"merged layer x (W + 2AB) + b vs adapted: max |diff| {np.abs(x @ merged + b - out).max():.1e}; "
      f"unmerge gives W back to {np.abs(lora_unmerge(merged, A, B, 2.0) - W).max():.1e}")

# %% [markdown]
# ## 2. The arithmetic for GPT-2 small
# Each adapted (in, out) layer trains r (in + out) numbers instead of in x out. Memory of full fine-tuning
# with AdamW in float32: weights, gradients and two moments, 16 bytes a parameter. With LoRA the frozen
# weights stay (4 bytes each), and the gradients and moments exist for the adapters only. (Activations for
# the backward are needed either way and are not counted here.)

# %%
gpt2 = GPTConfig(50257, 1024, 12, 12, 768)
N = count_params(gpt2)
MB = 1e6
print(f"GPT-2 small: {N:,} parameters; full fine-tuning, float32 AdamW: 16 B x N = {16 * N / MB:,.0f} MB")
rows = []
for r, targets in ((8, ("c_attn",)), (8, ("c_attn", "c_proj", "c_fc")), (64, ("c_attn",))):
    n = sum(a * b for a, b in adapter_shapes(gpt2, LoRAConfig(r=r, targets=targets)).values())
    mem = 4 * N + 16 * n
    rows.append((r, targets, n, mem))
    print(f"LoRA r {r:>2} on {'+'.join(targets):<18} {n:>10,} trainable ({100 * n / N:.2f} %); "
          f"memory 4 B x N + 16 B x {n:,} = {mem / MB:,.0f} MB; an adapter checkpoint {4 * n / MB:.1f} MB")

# %% [markdown]
# ## 3. The toy task: pre-train on a made-up language, then teach it to reverse words
# As in lesson 11: words of 3-5 letters from a 12-letter Markov chain; pre-training on lines of words; the
# task "abc=" -> "cba\n" never appears in the corpus. Test words are never fine-tuning examples.

# %%
LETTERS = "abcdefghijkl"
SUCC = {c: rng.choice(list(LETTERS), 3, replace=False) for c in LETTERS}


def word() -> str:
    w = str(rng.choice(list(LETTERS)))
    for _ in range(int(rng.integers(2, 5))):
        w += str(rng.choice(SUCC[w[-1]]) if rng.random() < 0.8 else rng.choice(list(LETTERS)))
    return w


corpus = "".join(" ".join(word() for _ in range(int(rng.integers(3, 6)))) + "\n" for _ in range(5000))
tok = CharTokenizer(sorted(set(corpus) | {"="}))
pre_train = np.array(tok.encode(corpus))                               # (N,)
vocab = sorted({word() for _ in range(4000)})
order = rng.permutation(len(vocab))
cut = int(0.85 * len(vocab))
split = {"train": [vocab[i] for i in order[:cut]], "test": [vocab[i] for i in order[cut:]]}
pairs = {k: tasks.encode_examples(tok, [tasks.Example(w + "=", w[::-1]) for w in ws])
         for k, ws in split.items()}
print(f"corpus {len(corpus):,} characters; task words: train {len(split['train'])}, "
      f"test {len(split['test'])}")

BLOCK, PRE_STEPS = 24, (30 if QUICK else 300)
base = GPT(GPTConfig(tok.vocab_size, BLOCK, n_layer=2, n_head=2, n_embd=48), seed=0)
opt = optim.AdamW(base.params, lr=3e-3, weight_decay=0.1)
for _ in range(PRE_STEPS):
    starts = rng.integers(0, len(pre_train) - BLOCK - 1, 16)                       # (B,)
    xw = pre_train[starts[:, None] + np.arange(BLOCK)]                             # (B, T)
    yw = pre_train[starts[:, None] + np.arange(BLOCK) + 1]                         # (B, T)
    loss, grads = base.loss_and_grads(xw, yw)
    optim.clip_grad_norm(grads, 1.0)
    opt.step(grads)
base_params = {k: v.copy() for k, v in base.params.items()}
print(f"pre-trained {PRE_STEPS} steps, last batch loss {loss:.3f}; {base.num_params():,} parameters")

# %% [markdown]
# ## 4. Full fine-tuning vs LoRA, everything else equal
# The same batches (one seed), the same number of steps, gradient clipping at 1.0, no weight decay. Only
# what is trained differs, and the learning rate: LoRA's few parameters take a larger one (1e-2 against
# 1e-3; Hu et al. tune it the same way). `LoRAGPT` has the methods the loop calls (params, loss_and_grads),
# so the loop is the same for both.

# %%
FT_STEPS, EVERY = (20, 10) if QUICK else (400, 25)
test_rows = tasks.TaskBatches(pairs["test"], BLOCK, 32)


def exact_match(model: GPT, n: int) -> float:
    words = split["test"][:n]
    hyps = [tok.decode(generate(model, tok.encode(w + "="), 8, temperature=0, stop="\n", tokenizer=tok))
            .split("\n")[0] for w in words]
    return float(np.mean([h == w[::-1] for h, w in zip(hyps, words, strict=True)]))


def finetune(label: str, lr: float, lora: LoRAConfig | None) -> dict:
    full = GPT(base.config, params={k: v.copy() for k, v in base_params.items()})
    model = full if lora is None else LoRAGPT(full, lora, seed=0)
    opt = optim.AdamW(model.params, lr=lr, weight_decay=0.0)
    n_state = sum(a.size for bufs in opt.state.values() for a in bufs.values())   # AdamW's m and v
    frng = np.random.default_rng(1)
    hist = {"step": [], "test": []}
    t0, spent = time.perf_counter(), 0.0
    for step in range(FT_STEPS + 1):
        if step % EVERY == 0:
            spent += time.perf_counter() - t0
            hist["step"].append(step)
            hist["test"].append(test_rows.mean_loss(model, 64 if QUICK else 256))
            t0 = time.perf_counter()
        if step == FT_STEPS:
            break
        batch = [pairs["train"][i] for i in frng.integers(0, len(pairs["train"]), 32)]
        xb, yb = tasks.make_batch(batch, BLOCK)                                 # (B, T), (B, T)
        loss, grads = model.loss_and_grads(xb, yb)
        optim.clip_grad_norm(grads, 1.0)
        opt.step(grads)
    spent += time.perf_counter() - t0
    final = full if lora is None else model.merged()
    if lora is not None:                                                       # the base never moved
        assert all(np.array_equal(full.params[k], base_params[k]) for k in base_params)
    res = {"label": label, "hist": hist, "trainable": sum(v.size for v in model.params.values()),
           "state": n_state, "ms": 1000 * spent / FT_STEPS, "exact": exact_match(final, 10 if QUICK else 150)}
    print(f"{label:<26} trainable {res['trainable']:>7,}  test loss {hist['test'][0]:.3f} -> "
          f"{hist['test'][-1]:.3f}  exact match {res['exact']:6.1%}  {res['ms']:5.1f} ms/step")
    return res


ALL = ("c_attn", "c_proj", "c_fc")
SETTINGS = [("full fine-tuning, lr 1e-3", 1e-3, None),
            ("LoRA r 8, all, lr 1e-2", 1e-2, LoRAConfig(r=8, alpha=16, targets=ALL)),
            ("LoRA r 2, all, lr 1e-2", 1e-2, LoRAConfig(r=2, alpha=4, targets=ALL)),
            ("LoRA r 8, c_attn, lr 1e-2", 1e-2, LoRAConfig(r=8, alpha=16, targets=("c_attn",)))]
runs = [finetune(*s) for s in (SETTINGS[:2] if QUICK else SETTINGS)]

# %% [markdown]
# ## 5. The figure: the loss curves, and what each run had to keep in memory

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(12, 4.2))
for res in runs:
    ax1.plot(res["hist"]["step"], res["hist"]["test"], marker="o", ms=3,
             label=f"{res['label']}: exact match {res['exact']:.0%}")
ax1.set_xlabel("fine-tuning step")
ax1.set_ylabel("masked loss on the test words")
ax1.set_title(f"Reversing words: full fine-tuning vs LoRA (base: {base.num_params():,} parameters)")
ax1.legend(fontsize=8)
ax1.grid(alpha=0.3)
labels = [res["label"].split(", lr")[0].replace("fine-tuning", "FT") for res in runs]
trainable = [res["trainable"] for res in runs]
state_bytes = [4 * (res["trainable"] + res["state"]) for res in runs]  # gradients + AdamW moments
xs = np.arange(len(runs))
bars1 = ax2.bar(xs - 0.2, trainable, 0.4, label="trainable parameters")
bars2 = ax2.bar(xs + 0.2, state_bytes, 0.4, label="bytes of gradients + AdamW moments (float32)")
ax2.bar_label(bars1, fmt="{:,.0f}", fontsize=7)
ax2.bar_label(bars2, fmt="{:,.0f}", fontsize=7)
ax2.set_yscale("log")
ax2.set_xticks(xs, labels, fontsize=8)
ax2.set_title("What training keeps besides the frozen weights")
ax2.legend(fontsize=8, loc="upper right")
fig.tight_layout()
fig.savefig(FIG / "lora_vs_full.png", dpi=110)
print(f"saved {FIG / 'lora_vs_full.png'}")

# %% [markdown]
# ## 6. The whole model against PEFT
# make_reference.py wrapped a float64 GPT-2 (saved by transformers) with PEFT adapters on c_attn, c_proj and
# c_fc, set A and B to seeded values, and stored the loss, every adapter's gradient, the gradient at the
# embeddings and the merged model's logits. minigpt loads the same folder and the same adapters.

# %%
REF = Path(__file__).resolve().parent / "reference"
tiny = hf.load_gpt2(REF / "tiny_gpt2", dtype=np.float64)
with np.load(REF / "model_all.npz", allow_pickle=False) as z:
    ref = {k: z[k] for k in z.files}
peft_model = LoRAGPT(tiny, LoRAConfig(r=int(ref["r"]), alpha=float(ref["alpha"]), targets=ALL),
                     params={k: v for k, v in ref.items() if k.startswith("h.")})
loss, grads, dx = lora_gpt_loss_and_grads(tiny.params, peft_model.params, ref["idx"], ref["targets"],
                                          tiny.config, peft_model.lora)


def worst(a: np.ndarray, b: np.ndarray) -> float:
    """The largest element-wise relative difference."""
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(b), 1e-300)))


worst_grad = max(worst(g, ref["grad." + k]) for k, g in grads.items())
worst_merged = worst(peft_model.merged().forward(ref["idx"]), ref["merged_logits"])
print(f"vs PEFT ({len(grads)} adapters, r {int(ref['r'])}): loss {worst(np.float64(loss), ref['loss']):.1e}, "
      f"dA/dB {worst_grad:.1e}, dx {worst(dx, ref['dx']):.1e}, merged logits {worst_merged:.1e} "
      "(largest element-wise relative differences)")
print(f"walk-through done in {time.time() - t_start:.0f} s")
