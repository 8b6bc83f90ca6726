"""Lesson 12 walk-through: scoring a language model (perplexity) and its outputs (BLEU, ROUGE).

Run it: `minigpt lesson run 12` (or `python lesson.py` here). Prints evidence, saves figures to figures/.
MINIGPT_QUICK=1 scores a shorter text and fewer random corruptions. Uses ../shared/data/tinyshakespeare.txt
when it is there, else a few built-in lines. It trains a small character GPT for about a minute (1200 steps;
100 with MINIGPT_QUICK=1) so the perplexity chart can show a trained GPT next to the n-gram models.
Not here: fine-tuning (lesson 11) or the `minigpt eval` command (the chapter's *The code*).
"""

# %% [markdown]
# # Evaluation: perplexity, BLEU and ROUGE
# Perplexity asks how surprised a model is by real text; BLEU and ROUGE ask how much a generated text
# overlaps a reference written by a person. We build each by hand on one small example, check it against
# minigpt.metrics (which lesson 12's check.py holds to sacrebleu and rouge-score at 1e-9), then watch
# where they mislead.

# %%
import math
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minigpt import metrics, optim
from minigpt.files.paths import figures_dir, quick, shared_data
from minigpt.model import GPT, GPTConfig

FIG = figures_dir(__file__)
QUICK = quick()

hyp = "The cat sat on the mat."
ref = "The cat is on the mat."
h, r = metrics.tokenize_13a(hyp), metrics.tokenize_13a(ref)
print(f"13a tokens  hyp {h}\n            ref {r}")

# %% [markdown]
# ## BLEU by hand: clipped n-gram precision, geometric mean, brevity penalty

# %%
precisions = []
for n in range(1, 5):
    matches, total = metrics.modified_precision(h, [r], n)
    grams = [" ".join(g) for g in metrics.ngram_counts(h, n)]
    print(f"p{n} = {matches}/{total}   hypothesis {n}-grams: {grams}")
    precisions.append(matches / total)
geo = math.exp(sum(math.log(p) for p in precisions) / 4)
bp = metrics.brevity_penalty(len(h), len(r))
print(f"geometric mean {geo:.4f}, BP {bp:.3f} -> BLEU {100 * bp * geo:.4f}")
print(f"metrics.bleu                       {metrics.bleu([hyp], [ref]):.4f}   (sacrebleu prints 48.89)")

short = "The cat"
d = metrics.bleu_details([short], [ref])
print(f"'{short}': precisions {[round(p, 1) for p in d.precisions]}, corpus BLEU {d.score:.2f} "
      f"(no 3-grams at all), sentence BLEU {metrics.sentence_bleu(short, ref):.2f} "
      f"(effective order; BP {d.bp:.3f} = exp(1 - 7/2))")

clip = metrics.modified_precision(["the"] * 7, [["the", "cat", "is", "on", "the", "mat"]], 1)
print(f"'the the the the the the the' vs 'the cat is on the mat': p1 = {clip[0]}/{clip[1]} after clipping "
      "(7/7 without)")

fig, ax = plt.subplots(figsize=(8, 4))
labels = ["p1", "p2", "p3", "p4", "geometric\nmean", "brevity\npenalty", "BLEU"]
values = [100 * p for p in precisions] + [100 * geo, 100 * bp, 100 * bp * geo]
colors = ["#4c72b0"] * 4 + ["#55a868", "#c44e52", "#222222"]
bars = ax.bar(labels, values, color=colors)
ax.bar_label(bars, fmt="%.1f")
ax.set(ylim=(0, 110), ylabel="percent",
       title=f"BLEU of '{hyp}'\nagainst '{ref}' (13a tokens, 7 each)")
fig.tight_layout()
fig.savefig(FIG / "bleu_worked_example.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## ROUGE by hand: n-gram overlap, and the longest common subsequence

# %%
hw, rw = metrics.rouge_tokenize(hyp), metrics.rouge_tokenize(ref)
print(f"rouge-score tokens: hyp {hw}, ref {rw} (lowercased, punctuation dropped)")
table = np.zeros((len(rw) + 1, len(hw) + 1), dtype=int)     # (len(ref)+1, len(hyp)+1)
for i, a in enumerate(rw, start=1):
    for j, b in enumerate(hw, start=1):
        table[i, j] = table[i - 1, j - 1] + 1 if a == b else max(table[i - 1, j], table[i, j - 1])
print("LCS table (rows: reference, columns: hypothesis):")
print("        " + " ".join(f"{w:>4}" for w in hw))
for i, a in enumerate(rw, start=1):
    print(f"{a:>7} " + " ".join(f"{v:>4}" for v in table[i, 1:]))
lcs = metrics.lcs_length(hw, rw)
print(f"LCS = {lcs} -> ROUGE-L P = R = F = {lcs}/6 = {lcs / 6:.4f}")
for kind, (p, rr, f) in metrics.rouge(hyp, ref).items():
    print(f"{kind:<7} P {p:.4f}  R {rr:.4f}  F {f:.4f}")

# %% [markdown]
# ## How the scores move as a good output is damaged word by word

# %%
reference = ("the old fisherman rowed out before dawn and waited for hours in the cold grey fog until "
             "a great fish finally took the bait")
words = reference.split()
vocab = ["river", "bright", "slowly", "house", "green", "walked", "under", "stone", "quiet", "seven"]
seeds = 5 if QUICK else 30
ks = list(range(len(words) + 1))
curves = {"BLEU (sentence)": [], "ROUGE-1 F": [], "ROUGE-2 F": [], "ROUGE-L F": []}
for k in ks:
    rows = []
    for seed in range(seeds):
        rng = np.random.default_rng(seed)
        out = list(words)
        for pos in rng.choice(len(words), size=k, replace=False):
            out[pos] = vocab[rng.integers(len(vocab))]
        text = " ".join(out)
        sc = metrics.rouge(text, reference)
        rows.append([metrics.sentence_bleu(text, reference),
                     100 * sc["rouge1"][2], 100 * sc["rouge2"][2], 100 * sc["rougeL"][2]])
    for name, value in zip(curves, np.mean(rows, axis=0), strict=True):
        curves[name].append(value)
for k in (0, 2, 5, 10):
    print(f"{k:>2} of {len(words)} words replaced: " +
          "  ".join(f"{name} {vals[k]:5.1f}" for name, vals in curves.items()))

shuffled = " ".join(np.random.default_rng(0).permutation(words))
sc = metrics.rouge(shuffled, reference)
shuffle_note = (f"all {len(words)} words shuffled:\nBLEU {metrics.sentence_bleu(shuffled, reference):.1f}, "
                f"ROUGE-1 {100 * sc['rouge1'][2]:.0f}, ROUGE-2 {100 * sc['rouge2'][2]:.1f}, "
                f"ROUGE-L {100 * sc['rougeL'][2]:.1f}")
print(shuffle_note.replace("\n", " "))
para = "before sunrise the aged angler rowed out and sat for hours in chilly mist till a big fish bit"
sc = metrics.rouge(para, reference)
print(f"a fair paraphrase: BLEU {metrics.sentence_bleu(para, reference):.1f}, "
      f"ROUGE-1 F {100 * sc['rouge1'][2]:.1f}, ROUGE-L F {100 * sc['rougeL'][2]:.1f}")

fig, ax = plt.subplots(figsize=(8, 4.5))
for name, vals in curves.items():
    if name == "ROUGE-1 F":  # replacing words keeps the order, so ROUGE-L = ROUGE-1 here: draw it wide
        ax.plot(ks, vals, lw=6, alpha=0.35, label="ROUGE-1 F (= ROUGE-L: order kept)")
    else:
        ax.plot(ks, vals, marker="o", ms=3, label=name)
ax.text(0.03, 0.05, shuffle_note, transform=ax.transAxes, fontsize=9,
        bbox={"boxstyle": "round", "fc": "white", "ec": "grey"})
ax.set(xlabel=f"words replaced at random (of {len(words)})", ylabel="score (0-100)", ylim=(0, 102),
       title=f"Damaging a {len(words)}-word sentence: BLEU falls fastest (mean of {seeds} random draws)")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()
fig.savefig(FIG / "corruption.png", dpi=110)
plt.close(fig)

# %% [markdown]
# ## The Chinese pitfall: rouge-score keeps only [a-z0-9]

# %%
poem_hyp, poem_ref = "綺殿千尋起，離宮百雉餘。", "綺殿千尋起，離宮百尺餘。"
print(f"hyp {poem_hyp}   ref {poem_ref}   (one character differs: 雉 / 尺)")
print(f"rouge-score tokens of the reference: {metrics.rouge_tokenize(poem_ref)} -> every score is 0")
print(f"ROUGE (default)  {metrics.rouge(poem_hyp, poem_ref)['rougeL']}")
char_l = metrics.rouge(poem_hyp, poem_ref, tokenizer="char")["rougeL"]
print(f"ROUGE (char)     {tuple(round(x, 4) for x in char_l)}   (11 of 12 characters in order)")
print(f"BLEU 13a {metrics.bleu([poem_hyp], [poem_ref]):.2f}  (tokens {metrics.tokenize_13a(poem_ref)})")
print(f"BLEU zh  {metrics.bleu([poem_hyp], [poem_ref], tokenize='zh'):.2f}  "
      f"(tokens {metrics.tokenize_zh(poem_ref)})")

# %% [markdown]
# ## Perplexity: how surprised is a model by text it has not seen?
# Character n-gram models, fitted by counting on 90 % of the text and scored on the other 10 %, are real
# language models with known quality: more context should mean lower perplexity.

# %%
path = shared_data("tinyshakespeare.txt")
if path is not None:
    text = path.read_text(encoding="utf-8")
else:
    if "MINIGPT_FIGURES" not in os.environ:         # never overwrite the committed figure with this one
        FIG = Path(tempfile.mkdtemp(prefix="minigpt-lesson12-"))
    print("!" * 100 + "\nWARNING: tinyshakespeare.txt not found in ../shared/data beside the clone (or "
          "$MINIGPT_SHARED_DATA).\nScoring a few built-in lines instead: the perplexities below are not the "
          f"chapter's. The perplexity figure goes to {FIG}.\n" + "!" * 100)
    text = ("To be, or not to be, that is the question:\nWhether 'tis nobler in the mind to suffer\n"
            "The slings and arrows of outrageous fortune,\nOr to take arms against a sea of troubles\n") * 40
chars = sorted(set(text))
V = len(chars)
stoi = {c: i for i, c in enumerate(chars)}
ids = np.array([stoi[c] for c in text], dtype=np.int64)           # (N,)
split = int(0.9 * len(ids))
train, val = ids[:split], ids[split:]
val = val[:5000] if QUICK else val[:20000]                          # the GPTs' forward sets the budget
print(f"{len(ids):,} characters, V = {V}; fit on {len(train):,}, score the first {len(val):,} held-out")


class NGramModel:
    """A character n-gram model with add-alpha smoothing, dressed as a GPT: config.block_size + forward.

    order 0 uniform, 1 unigram, 2 bigram (the current character), 3 trigram (the last two); at the first
    position of a window a trigram has one character of context and falls back to its bigram table.
    """

    def __init__(self, order: int, train: np.ndarray, V: int, block_size: int, alpha: float = 0.1):
        self.order, self.config = order, GPTConfig(vocab_size=V, block_size=block_size, n_layer=1,
                                                   n_head=1, n_embd=1)
        c1 = np.bincount(train, minlength=V) + alpha                      # (V,)
        c2 = np.zeros((V, V)) + alpha                                      # (V, V) [prev, next]
        np.add.at(c2, (train[:-1], train[1:]), 1)
        c3 = np.zeros((V, V, V)) + alpha                                   # (V, V, V) [prev2, prev, next]
        np.add.at(c3, (train[:-2], train[1:-1], train[2:]), 1)
        self.logp1 = np.log(c1 / c1.sum())                                 # (V,)
        self.logp2 = np.log(c2 / c2.sum(-1, keepdims=True))                # (V, V)
        self.logp3 = np.log(c3 / c3.sum(-1, keepdims=True))                # (V, V, V)

    def forward(self, idx: np.ndarray) -> np.ndarray:
        B, T = idx.shape
        if self.order == 0:
            return np.zeros((B, T, self.config.vocab_size))                # (B, T, V)
        if self.order == 1:
            return np.broadcast_to(self.logp1, (B, T, self.config.vocab_size))
        out = self.logp2[idx]                                              # (B, T, V)
        if self.order == 3 and T > 1:
            out = out.copy()
            out[:, 1:] = self.logp3[idx[:, :-1], idx[:, 1:]]               # (B, T-1, V)
        return out


BLOCK, STRIDE = 32, 16           # windows of 32 every 16: every scored token after the first window has
results = {}                     # at least 16 characters of context, for every model alike
for order, name in enumerate(["uniform", "unigram", "bigram", "trigram"]):
    model = NGramModel(order, train, V, BLOCK)
    results[name] = metrics.perplexity(model, val, stride=STRIDE, batch_size=256)
config = GPTConfig(vocab_size=V, block_size=BLOCK, n_layer=2, n_head=4, n_embd=64)
gpt = GPT(config, seed=0)
results["GPT, untrained"] = metrics.perplexity(gpt, val, stride=STRIDE, batch_size=16)

# %% [markdown]
# ## A trained GPT next to the n-grams
# The same GPT, trained on the same 90 % as the n-gram counts: AdamW, warm-up then cosine decay (lesson 08),
# random windows of 32 characters, 16 per batch. About a minute on a laptop CPU. Unlike a trigram, it can
# use all 32 characters of its window, and it learns which of them matter.

# %%
STEPS, LR = (100 if QUICK else 1200), 5e-3
trained = GPT(config, seed=0)
opt = optim.AdamW(trained.params, lr=LR, betas=(0.9, 0.99), weight_decay=0.1)
batch_rng = np.random.default_rng(0)
t0 = time.perf_counter()
for step in range(STEPS):
    starts = batch_rng.integers(0, len(train) - BLOCK - 1, 16)                  # (B,)
    x = train[starts[:, None] + np.arange(BLOCK)]                               # (B, T)
    y = train[starts[:, None] + np.arange(BLOCK) + 1]                           # (B, T) the next characters
    loss, grads = trained.loss_and_grads(x, y)
    optim.clip_grad_norm(grads, 1.0)
    opt.lr = optim.cosine_lr(step, max_lr=LR, warmup_iters=STEPS // 20, decay_iters=STEPS, min_lr=LR / 10)
    opt.step(grads)
print(f"trained {STEPS} steps in {time.perf_counter() - t0:.0f} s; last batch loss {loss:.3f}")
results[f"GPT, {STEPS} steps"] = metrics.perplexity(trained, val, stride=STRIDE, batch_size=16)
for name, ppl in results.items():
    print(f"{name:<15} perplexity {ppl:7.2f}   = exp({math.log(ppl):.3f} nats per character)")

trigram = NGramModel(3, train, V, block_size=4)
strides = [4, 2, 1]
by_stride = [metrics.perplexity(trigram, val, stride=s, batch_size=256) for s in strides]
for s, ppl in zip(strides, by_stride, strict=True):
    print(f"trigram, block_size 4, stride {s}: {ppl:.4f}   (after the first window every target has "
          f">= {4 - s + 1} characters of context)")
print("A trigram uses at most 2 characters, so once the stride leaves every token 2 of context (stride <= 3),"
      "\na smaller stride only costs time: the right stride depends on how much context the model can use.")

fig, axes = plt.subplots(1, 2, figsize=(12, 4.4), gridspec_kw={"width_ratios": [3, 2]})
colors = ["#4c72b0"] * 4 + ["#bbbbbb", "#c44e52"]            # n-grams, untrained GPT, trained GPT
bars = axes[0].bar(list(results), list(results.values()), color=colors[:len(results)])
axes[0].bar_label(bars, fmt="%.2f")
axes[0].axhline(V, color="grey", ls="--", lw=1, label=f"V = {V}: a uniform guess")
axes[0].set(ylabel="perplexity on held-out text", ylim=(0, V * 1.15),
            title=f"More context, less surprise ({len(val):,} held-out characters)")
axes[0].legend(fontsize=8, loc="upper center")
axes[0].tick_params(axis="x", labelrotation=20, labelsize=8)
bars = axes[1].bar([f"stride {s}" for s in strides], by_stride, color="#55a868")
axes[1].bar_label(bars, fmt="%.3f")
axes[1].set(ylim=(min(by_stride) * 0.98, max(by_stride) * 1.01),
            title="Trigram, block_size 4: a smaller stride\ngives the first tokens of a window context")
fig.tight_layout()
fig.savefig(FIG / "perplexity.png", dpi=110)
plt.close(fig)
print(f"figures in {FIG}")
