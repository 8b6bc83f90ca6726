"""Lesson 11 walk-through: fine-tuning a pre-trained GPT on a task, with the loss on the response only.

Run it with `minigpt lesson run 11` (or `python lesson.py` in this folder): about a minute on a laptop CPU,
under 20 s with MINIGPT_QUICK=1 (fewer steps, weaker numbers). It prints evidence at every step and saves
figures/finetune_curves.png (its right panel: base vs fine-tuned scores), masked_vs_unmasked.png (three
seeds, two versions of the task), forgetting_masked_vs_counted.png, learning_rates.png and overfitting.png.

The experiment is a toy you can run anywhere in a minute, with the same shape as the real one (Tang
couplets, in the chapter): a tiny GPT is pre-trained on plain text of a made-up language, then fine-tuned
on a task it never saw — "write this word backwards" — with prompt "abc=" and response "cba\\n".
The loop is written out here so every step is visible; `minigpt finetune` runs the same step inside the
trainer (checkpoints, resume, early stopping).

Not here: the reference comparison against PyTorch (check.py: `minigpt lesson check 11`).
"""

# %% [markdown]
# # Fine-tuning: same model, same loss, different rows
# Pre-training teaches a model the text of a corpus: every position predicts the next token. Fine-tuning
# continues training the same weights on examples of one task, written as a prompt and its response,
# and counts the loss only where the model must produce the response.

# %%
import math
import time

import matplotlib.pyplot as plt
import numpy as np

from minigpt import metrics, optim
from minigpt.files.paths import figures_dir, quick
from minigpt.finetune import tasks
from minigpt.model import GPT, GPTConfig
from minigpt.sampling import generate
from minigpt.tokenizer import CharTokenizer

QUICK = quick()
FIG = figures_dir(__file__)
rng = np.random.default_rng(0)
t_start = time.time()

# %% [markdown]
# ## 1. A made-up language and a task it never contains
# Words are 3-5 letters from a 12-letter alphabet; each letter prefers three successors (a Markov chain),
# so the text has statistics a model can learn. The pre-training corpus is lines of such words. The
# task, reversing a word, appears nowhere in it, and neither does "=". The task's words are split into
# train / val / test by word, so a test word was never a fine-tuning example.

# %%
LETTERS = "abcdefghijkl"
SUCC = {c: rng.choice(list(LETTERS), 3, replace=False) for c in LETTERS}


def word() -> str:
    w = str(rng.choice(list(LETTERS)))
    for _ in range(int(rng.integers(2, 5))):
        w += str(rng.choice(SUCC[w[-1]]) if rng.random() < 0.8 else rng.choice(list(LETTERS)))
    return w


corpus = "".join(" ".join(word() for _ in range(int(rng.integers(3, 6)))) + "\n" for _ in range(5000))
cut = int(len(corpus) * 0.9)
tok = CharTokenizer(sorted(set(corpus) | {"="}))
pre_train = np.array(tok.encode(corpus[:cut]))                       # (N,)
pre_val = np.array(tok.encode(corpus[cut:]))                          # (M,)
vocab = sorted({word() for _ in range(4000)})
order = rng.permutation(len(vocab))
split = {"train": [vocab[i] for i in order[:int(0.8 * len(vocab))]],
         "val": [vocab[i] for i in order[int(0.8 * len(vocab)):int(0.9 * len(vocab))]],
         "test": [vocab[i] for i in order[int(0.9 * len(vocab)):]]}
examples = {k: [tasks.Example(w + "=", w[::-1]) for w in ws] for k, ws in split.items()}
print(f"corpus: {len(corpus):,} characters, vocabulary {tok.vocab_size} ({''.join(tok.chars)!r})")
print("a corpus line:", corpus.splitlines()[0])
print(f"task words: {', '.join(f'{k} {len(v)}' for k, v in split.items())}; e.g. "
      f"{examples['train'][0].prompt!r} -> {examples['train'][0].response!r}")

# %% [markdown]
# ## 2. The rows: prompt + response + end token, the prompt's targets masked
# `tasks.build_example` concatenates, shifts by one, and sets every target that is a prompt token to -100
# (the loss's ignore_index). The end token "\n" is part of the response: the model must learn to stop.

# %%
pairs = {k: tasks.encode_examples(tok, v) for k, v in examples.items()}
p, r = pairs["train"][0]
x, y = tasks.build_example(p, r, block_size=12)
show = lambda ids: " ".join(f"{tok.decode([i])!r:>5}" if i >= 0 else "  -100" for i in ids)  # noqa: E731
print("x (inputs) :", show(x))
print("y (targets):", show(y))
print(f"{len(p)} prompt tokens, {len(r)} response tokens -> {int((y != -100).sum())} targets counted: "
      f"the first target, {tok.decode([y[len(p) - 1]])!r}, is predicted from the last prompt token")
xb, yb = tasks.make_batch(pairs["train"][:4], block_size=12)
print(f"a batch of 4: x {xb.shape}, padding columns dropped (the longest row is {xb.shape[1]} positions)")

# %% [markdown]
# ## 3. Pre-training: next-token prediction on the plain text
# A 2-layer GPT with 48 channels, trained on random 24-token windows, every position counted.

# %%
BLOCK, PRE_STEPS = 24, (80 if QUICK else 300)
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
print(f"pre-trained {PRE_STEPS} steps: last batch loss {loss:.3f} (uniform guessing: ln {tok.vocab_size} = "
      f"{math.log(tok.vocab_size):.3f}); corpus val perplexity {metrics.perplexity(base, pre_val):.2f}")


# %% [markdown]
# ## 4. How to score the task
# Greedy answers stopped at "\n", then exact match, ROUGE-L on characters, and character BLEU (we put a
# space between characters so sacrebleu's 13a tokenizer sees one token per character, as its "zh"
# tokenizer does for Chinese); and the response perplexity: exp of the masked loss over the test rows.

# %%
def scores(model: GPT, name: str, n: int) -> dict:
    test = examples["test"][:n]
    hyps = [tok.decode(generate(model, tok.encode(e.prompt), 8, temperature=0, stop="\n", tokenizer=tok))
            .split("\n")[0] for e in test]
    refs = [e.response for e in test]
    spaced = lambda s: " ".join(s)  # noqa: E731
    loss = tasks.TaskBatches(pairs["test"], BLOCK, 32).mean_loss(model, len(pairs["test"]))
    both = list(zip(hyps, refs, strict=True))
    out = {"name": name, "hyps": hyps, "exact": float(np.mean([h == r for h, r in both])),
           "bleu": metrics.bleu([spaced(h) for h in hyps], [spaced(r) for r in refs]),
           "rougeL": float(np.mean([metrics.rouge(h, r, tokenizer="char")["rougeL"][2]
                                    for h, r in both])),
           "ppl": math.exp(loss), "corpus_ppl": metrics.perplexity(model, pre_val)}
    print(f"{name:<22} exact {out['exact']:6.1%}   char BLEU {out['bleu']:5.1f}   "
          f"ROUGE-L {out['rougeL']:.3f}   response perplexity {out['ppl']:8.2f}   "
          f"corpus perplexity {out['corpus_ppl']:.2f}")
    return out


N_TEST = 60 if QUICK else 200
base_scores = scores(base, "base (pre-trained)", N_TEST)


# %% [markdown]
# ## 5. Fine-tuning: the same step, with task rows
# Start from the pre-trained weights, a fresh AdamW, a smaller learning rate, and batches from
# `tasks.TaskBatches`. Every few steps: the masked loss on fixed train and val rows, and the perplexity of
# the pre-training val text, to watch what the model forgets.

# %%
def finetune(lr: float, steps: int, train_pairs, masked: bool = True, every: int = 25, label: str = "",
             seed: int = 1):
    model = GPT(base.config, params={k: v.copy() for k, v in base_params.items()})
    opt = optim.AdamW(model.params, lr=lr, weight_decay=0.0)
    rows = tasks.TaskBatches(train_pairs, BLOCK, 32)                    # for the loss estimates
    val_rows = tasks.TaskBatches(pairs["val"], BLOCK, 32)
    hist = {"step": [], "train": [], "val": [], "corpus": []}
    frng = np.random.default_rng(seed)                                 # the order of the batches
    for step in range(steps + 1):
        if step % every == 0:
            hist["step"].append(step)
            hist["train"].append(rows.mean_loss(model, 256))
            hist["val"].append(val_rows.mean_loss(model, 256))
            hist["corpus"].append(math.log(metrics.perplexity(model, pre_val[:2000])))
        if step == steps:
            break
        batch = [train_pairs[i] for i in frng.integers(0, len(train_pairs), 32)]
        xb, yb = tasks.make_batch(batch, BLOCK)                                # (B, T), (B, T)
        if not masked:                                                          # count the prompt too:
            yb = np.full_like(yb, -100)                                         # every real next token
            for i, (p, r) in enumerate(batch):
                seq = (p + r)[-(BLOCK + 1):]
                yb[i, :len(seq) - 1] = seq[1:]
        loss, grads = model.loss_and_grads(xb, yb)
        optim.clip_grad_norm(grads, 1.0)
        opt.step(grads)
    print(f"{label or f'lr {lr:g}'}: {steps} steps, task val loss {hist['val'][0]:.3f} -> "
          f"{hist['val'][-1]:.3f} (best {min(hist['val']):.3f}), corpus val loss {hist['corpus'][0]:.3f} -> "
          f"{hist['corpus'][-1]:.3f}")
    return model, hist


FT_STEPS = 75 if QUICK else 400
tuned, hist = finetune(1e-3, FT_STEPS, pairs["train"], label="fine-tune, lr 1e-3, masked")
tuned_scores = scores(tuned, "fine-tuned", N_TEST)

print("\nbase vs fine-tuned, side by side (test words: never in the fine-tuning set)")
print(f"{'prompt':<9}{'reference':<11}{'base':<11}{'fine-tuned':<11}")
for e, hb, ht in list(zip(examples["test"], base_scores["hyps"], tuned_scores["hyps"], strict=False))[:8]:
    print(f"{e.prompt:<9}{e.response:<11}{hb!r:<11}{ht!r:<11}")


def score_bars(ax, title: str) -> None:
    """Exact match, char BLEU/100 and ROUGE-L of the base and the fine-tuned model, side by side."""
    for i, s in enumerate([base_scores, tuned_scores]):
        vals = [s["exact"], s["bleu"] / 100, s["rougeL"]]
        bars = ax.bar(np.arange(3) + (i - 0.5) * 0.38, vals, 0.38, label=s["name"])
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
    ax.set_xticks(range(3), ["exact", "char BLEU/100", "ROUGE-L"])
    ax.set_title(title)
    ax.legend(fontsize=8)


fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
ax[0].plot(hist["step"], hist["train"], "o-", label="task train (masked loss)")
ax[0].plot(hist["step"], hist["val"], "s-", label="task val (masked loss)")
ax[0].plot(hist["step"], hist["corpus"], "^-", label="pre-training val text (forgetting)")
ax[0].set_xlabel("fine-tuning step")
ax[0].set_ylabel("loss (nats/token)")
ax[0].set_title("fine-tuning, lr 1e-3")
ax[0].legend(fontsize=8)
ax[0].grid(alpha=0.3)
score_bars(ax[1], f"held-out test words ({N_TEST})")
fig.tight_layout()
fig.savefig(FIG / "finetune_curves.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## 6. Masked or not: what the prompt's targets do, over three seeds
# Masking makes the loss *the task*: -log p(response | prompt), nothing else. Count the prompt too and
# the training loss adds a language-model loss on the prompts. Whether that helps depends on the prompts,
# so we try two versions of the task, each fine-tuned with three seeds (the order of the batches), masked
# and counted, the same steps and rows, scored the same way (exact match on the held-out test words):
# - plain prompts, `jgia=`: words of the pre-training language, so predicting them replays pre-training;
# - long noisy prompts, `kdbjalgfie jgia=`: ten random letters of context first (think of an ID, a
#   retrieved snippet, an instruction template) — most of the prompt is unpredictable noise.

# %%
SEEDS = (1, 2) if QUICK else (1, 2, 3)
prng = np.random.default_rng(11)
noisy_examples = {k: [tasks.Example("".join(prng.choice(list(LETTERS), 10)) + " " + e.prompt, e.response)
                      for e in v] for k, v in examples.items()}
noisy_pairs = {k: tasks.encode_examples(tok, v) for k, v in noisy_examples.items()}
task_versions = {"plain prompts": (examples, pairs), "long noisy prompts": (noisy_examples, noisy_pairs)}
print(f"a noisy prompt: {noisy_examples['train'][0].prompt!r} -> {noisy_examples['train'][0].response!r}")
exact = {}                                            # (version, masked) -> exact match per seed
hist_u = None
for version, (ex_v, pairs_v) in task_versions.items():
    examples, pairs = ex_v, pairs_v                   # scores() reads these
    for masked in (True, False):
        for seed in SEEDS:
            if version == "plain prompts" and masked and seed == 1:
                model = tuned                         # section 5's run: the same seed and settings
            else:
                how = "masked" if masked else "prompt counted"
                model, h = finetune(1e-3, FT_STEPS, pairs["train"], masked=masked, seed=seed,
                                    label=f"{version}, {how}, seed {seed}")
                if version == "plain prompts" and not masked and seed == 1:
                    hist_u = h
            s = scores(model, f"  -> seed {seed}", N_TEST)
            exact.setdefault((version, masked), []).append(s["exact"])
examples, pairs = task_versions["plain prompts"]
print(f"\n{'exact match on test words':<28}{'prompt masked':>22}{'prompt counted':>22}")
for version in task_versions:
    row = [f"{np.mean(exact[version, m]):6.1%} ({min(exact[version, m]):.0%}-{max(exact[version, m]):.0%})"
           for m in (True, False)]
    print(f"{version:<28}{row[0]:>22}{row[1]:>22}")

fig, ax = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
for a, version in zip(ax, task_versions, strict=True):
    for i, masked in enumerate((True, False)):
        vals = exact[version, masked]
        a.bar(i, np.mean(vals), 0.6, color=f"C{i}", alpha=0.6,
              label=f"{'prompt masked' if masked else 'prompt counted'} (mean)")
        a.plot([i] * len(vals), vals, "ko", ms=4, label="one seed" if i == 0 else None)
    if version == "plain prompts":                    # where every run started from
        a.axhline(base_scores["exact"], color="C3", ls="--", label=f"base, before fine-tuning "
                                                                   f"({base_scores['exact']:.0%})")
    a.set_xticks([0, 1], ["prompt masked", "prompt counted"])
    a.set_title(f"{version}: {len(SEEDS)} seeds, {FT_STEPS} steps")
    a.grid(alpha=0.3, axis="y")
ax[0].set_ylabel(f"exact match on {N_TEST} held-out test words")
handles, labels = ax[0].get_legend_handles_labels()
ax[1].legend(handles, labels, fontsize=8, loc="upper right")      # the right panel's top is empty
fig.tight_layout()
fig.savefig(FIG / "masked_vs_unmasked.png", dpi=110)
plt.close(fig)

# %% [markdown]
# With plain prompts, counting them is replaying pre-training text: it keeps the language and helps
# here. With long noisy prompts, the counted loss is mostly unpredictable letters: their gradient drowns
# the response's, and the masked runs learn the task far better at the same budget. The forgetting of
# the pre-training text, for the plain task (seed 1):

# %%
def plot_task_and_corpus(curves: dict[str, dict], task_title: str, filename: str) -> None:
    """Left: the task's val loss; right: the pre-training text's val loss (forgetting); a line per run."""
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.6))
    for name, h in curves.items():
        ax[0].plot(h["step"], h["val"], "o-", label=name)
        ax[1].plot(h["step"], h["corpus"], "o-", label=name)
    ax[0].set_title(task_title)
    ax[1].set_title("pre-training val text loss (forgetting)")
    for a in ax:
        a.set_xlabel("fine-tuning step")
        a.grid(alpha=0.3)
        a.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(FIG / filename, dpi=110)
    plt.close(fig)


print(f"corpus val loss after {FT_STEPS} steps (plain prompts, seed 1): masked {hist['corpus'][-1]:.2f}, "
      f"prompt counted {hist_u['corpus'][-1]:.2f}")
plot_task_and_corpus({"prompt masked": hist, "prompt counted": hist_u}, "task val loss, response tokens only",
                     "forgetting_masked_vs_counted.png")

# %% [markdown]
# ## 7. The learning rate: learn the task, keep the language
# Too small and the task is barely learned in the budget; too large and the model forgets the corpus it
# was pre-trained on (its perplexity there rises) — and may even lose the task's stability. Fine-tuning
# usually runs 3-30x below the pre-training rate.

# %%
LRS = (1e-4, 1e-3, 1e-2)
sweep = {1e-3: hist}
for lr in LRS:
    if lr not in sweep:
        sweep[lr] = finetune(lr, FT_STEPS, pairs["train"])[1]
plot_task_and_corpus({f"lr {lr:g}": sweep[lr] for lr in LRS}, "task val loss (masked)", "learning_rates.png")

# %% [markdown]
# ## 8. Over-fitting a small task set, and early stopping
# With only 24 examples, the train loss keeps falling while the val loss turns up: the model memorises
# those 24 words instead of learning to reverse. Early stopping keeps the weights from the best val loss
# (`minigpt finetune --patience N` does this with checkpoints).

# %%
small = pairs["train"][:24]
_, hist_s = finetune(3e-3, FT_STEPS, small, every=10, label="24 examples, lr 3e-3")
best = int(np.argmin(hist_s["val"]))
print(f"best val loss {hist_s['val'][best]:.3f} at step {hist_s['step'][best]}; at the end train "
      f"{hist_s['train'][-1]:.3f}, val {hist_s['val'][-1]:.3f}: early stopping would keep step "
      f"{hist_s['step'][best]}")
fig, ax = plt.subplots(figsize=(6, 3.6))
ax.plot(hist_s["step"], hist_s["train"], "o-", label="train (24 examples)")
ax.plot(hist_s["step"], hist_s["val"], "s-", label="val")
ax.axvline(hist_s["step"][best], color="0.5", ls="--", label="best val: keep these weights")
ax.set_xlabel("fine-tuning step")
ax.set_ylabel("masked loss")
ax.set_title("over-fitting a tiny task set")
ax.grid(alpha=0.3)
ax.legend(fontsize=8)
fig.tight_layout()
fig.savefig(FIG / "overfitting.png", dpi=110)
plt.close(fig)
print(f"figures in {FIG}; total {time.time() - t_start:.0f} s")
