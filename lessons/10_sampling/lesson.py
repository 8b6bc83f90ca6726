"""Lesson 10 walk-through: from logits to text — greedy, temperature, top-k, top-p, a KV cache, streaming.

Run it: `minigpt lesson run 10` (or `python lesson.py` in this folder). It trains a small character model
for a few seconds (on tiny Shakespeare when ../shared/data has it, else on a built-in text), then samples
from it every way this chapter describes, and saves two figures to figures/: a distribution before and
after each filter, and tokens/s with and without the KV cache as the sequence grows. MINIGPT_QUICK=1
shortens the training and the timings (under 20 s in all).

Not here: the comparison with transformers (check.py: `minigpt lesson check 10`).
"""

# %% [markdown]
# # From logits to text
# The model gives one score per vocabulary entry for the next token. Sampling turns those V numbers into
# one id, appends it, and asks again. Everything in this chapter is about that one step and its loop.

# %%
import json
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

from minigpt import hf, optim
from minigpt.decode import decode_step
from minigpt.files.paths import figures_dir, quick, shared_data
from minigpt.model import GPT, GPTConfig
from minigpt.sampling import generate, next_token_probs, stream
from minigpt.tokenizer import BPETokenizer, CharTokenizer

FIG = figures_dir(__file__)
HERE = Path(__file__).resolve().parent
QUICK = quick()
np.set_printoptions(precision=4, suppress=True, linewidth=110)

# %% [markdown]
# ## 0. A small model to sample from
# Two layers, 64 channels, a context of 64 characters, a few hundred AdamW steps: it learns spelling and
# the shape of a play, not meaning. That is enough to see every decoding rule at work.

# %%
path = shared_data("tinyshakespeare.txt")
if path is not None:
    text = path.read_text(encoding="utf-8")[:300_000]
else:
    if "MINIGPT_FIGURES" not in os.environ:         # never overwrite the committed figures with these
        FIG = Path(tempfile.mkdtemp(prefix="minigpt-lesson10-"))
    print("!" * 100 + "\nWARNING: tinyshakespeare.txt not found in ../shared/data beside the clone (or "
          "$MINIGPT_SHARED_DATA).\nTraining on a few lines repeated 200 times instead: the numbers below are "
          f"not the chapter's. Figures go to {FIG}.\n" + "!" * 100)
    text = ("ROMEO:\nBut, soft! what light through yonder window breaks?\n\nJULIET:\nAy me!\n\n"
            "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.\n\n"
            "First Citizen:\nYou are all resolved rather to die than to famish?\n\n") * 200
tok = CharTokenizer.from_text(text)
data = np.array(tok.encode(text), dtype=np.int64)
cfg = GPTConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=4, n_embd=64)
model = GPT(cfg, seed=0)
opt = optim.AdamW(model.params, lr=3e-3, weight_decay=0.0)
rng = np.random.default_rng(0)
steps = 60 if QUICK else 400
t0 = time.perf_counter()
for _ in range(steps):
    starts = rng.integers(0, len(data) - cfg.block_size - 1, size=16)
    x = np.stack([data[s:s + cfg.block_size] for s in starts])           # (B, T)
    y = np.stack([data[s + 1:s + cfg.block_size + 1] for s in starts])   # (B, T)
    loss, grads = model.loss_and_grads(x, y)
    optim.clip_grad_norm(grads, 1.0)
    opt.step(grads)
print(f"trained {steps} steps in {time.perf_counter() - t0:.1f} s: loss {loss:.3f} "
      f"(uniform guessing would be ln {tok.vocab_size} = {np.log(tok.vocab_size):.2f})")

prompt = tok.encode("ROMEO:\n")
logits = model.forward(np.array([prompt]))[0, -1]                         # (V,) scores for the next char
p = next_token_probs(logits, temperature=1.0)
top = np.argsort(-p)[:5]
print("after 'ROMEO:\\n' the model expects:", ", ".join(f"{tok.decode([i])!r} {p[i]:.2f}" for i in top))

# %% [markdown]
# ## 1. Greedy decoding, and why it loops
# Always taking the most likely token is deterministic, and a model's most likely continuation of its own
# most likely continuation soon repeats: once a phrase has been produced, the context that made it likely
# is back, so it comes again. Below: find the loop in the greedy text.

# %%
greedy_ids = generate(model, prompt, 200, temperature=0)
greedy_text = tok.decode(greedy_ids)
print("greedy:", repr(greedy_text[:160]))


def shortest_period(s: str) -> int | None:
    """The shortest p such that the last 60 characters repeat with period p, if any."""
    tail = s[-60:]
    return next((q for q in range(1, 30) if all(tail[i] == tail[i + q] for i in range(len(tail) - q))), None)


period = shortest_period(greedy_text)
print(f"the last 60 greedy characters repeat with period {period}: {greedy_text[-period:]!r}" if period
      else "no exact loop in the last 60 characters this time (a longer run would find one)")
sampled = tok.decode(generate(model, prompt, 200, temperature=1.0, seed=0))
print("sampled at T=1:", repr(sampled[:160]))

# %% [markdown]
# ## 2. Temperature, top-k, top-p: one distribution, three knobs
# Temperature divides the logits: T < 1 sharpens the distribution (T -> 0 is greedy), T > 1 flattens it.
# Top-k keeps the k largest logits (and anything tied with the k-th). Top-p keeps the smallest set of most
# likely tokens whose mass reaches p, the token that crosses p included. transformers applies them in
# that order, and so do we.

# %%
def entropy(q: np.ndarray) -> float:
    q = q[q > 0]
    return float(-(q * np.log(q)).sum())


for t in (0.25, 0.5, 0.8, 1.0, 1.5, 3.0):
    q = next_token_probs(logits, temperature=t)
    print(f"T={t:<4}  top token {q.max():.3f}  entropy {entropy(q):.2f} nats  "
          f"tokens needed for 90% of the mass: {int(np.searchsorted(np.cumsum(np.sort(q)[::-1]), 0.9)) + 1}")

steps_shown = [("logits -> softmax (T = 1)", {}), ("temperature 0.7", {"temperature": 0.7}),
               ("+ top-k 10", {"temperature": 0.7, "top_k": 10}),
               ("+ top-p 0.9", {"temperature": 0.7, "top_k": 10, "top_p": 0.9})]
order = np.argsort(-next_token_probs(logits))[:20]                        # the 20 most likely, one order
fig, axes = plt.subplots(1, 4, figsize=(14, 3.2), sharey=True)
for ax, (title, kw) in zip(axes, steps_shown, strict=True):
    q = next_token_probs(logits, **kw)
    ax.bar(range(len(order)), q[order], color=["C0" if q[i] > 0 else "lightgrey" for i in order])
    ax.set_xticks(range(len(order)), [repr(tok.decode([i]))[1:-1] or "?" for i in order], fontsize=7)
    ax.set_title(f"{title}\n{int((q > 0).sum())} tokens kept, entropy {entropy(q):.2f}", fontsize=9)
axes[0].set_ylabel("probability of the next character")
fig.suptitle("After 'ROMEO:\\n': the same logits through temperature, then top-k, then top-p")
fig.tight_layout()
fig.savefig(FIG / "filters.png", dpi=110)
plt.close(fig)

for kw in ({"temperature": 0.7}, {"temperature": 0.7, "top_k": 10}, {"temperature": 1.0, "top_p": 0.9}):
    print(kw, "->", repr(tok.decode(generate(model, prompt, 80, seed=1, **kw))[:80]))

# %% [markdown]
# ## 3. The KV cache: exact, and what it saves
# A causal model's keys and values at position j depend only on tokens 0..j, so they are the same at
# every later step: keep them (minigpt/kv_cache.py) and each new token costs one position, not the whole
# window. The ids are identical to recomputing everything; check it, including past the context, where
# the window slides and the cache has to be refilled.

# %%
P = cfg.block_size
n_new = 2 * P
with_cache = generate(model, prompt, n_new, temperature=0.8, top_k=20, seed=3)
without = generate(model, prompt, n_new, temperature=0.8, top_k=20, seed=3, use_cache=False)
print(f"{n_new} sampled tokens (past the {P}-token context): cached == recomputed: {with_cache == without}")
cache = model.new_kv_cache()
ids = np.array([prompt + with_cache[:40]])
model.forward(ids[:, :8], kv_cache=cache)
step_logits = np.stack([decode_step(model, int(ids[0, t]), cache) for t in range(8, 40)])   # (32, V)
full_logits = model.forward(ids[:, :40])[0, 8:]                                              # (32, V)
gap = np.abs(step_logits - full_logits).max()
print(f"logits one position at a time vs the full forward: max |diff| {gap:.2e} (float32 rounding)")

# %% [markdown]
# Cost of one new token with t tokens in the window (N = 12 L C^2 block weights; the forward computes the
# full T x T score matrix and the head for every position, as model.forward does):
#
#     without the cache   2 N t + 4 L C t^2 + 2 V C t       FLOPs: the whole window again
#     with the cache      2 N   + 4 L C t   + 2 V C         FLOPs: one query against t cached keys
#
# The ratio grows like t. Measured below on this model and a wider one.

# %%
def flops(c: GPTConfig, t: int, cached: bool) -> float:
    N = 12 * c.n_layer * c.n_embd ** 2
    if cached:
        return 2 * N + 4 * c.n_layer * c.n_embd * t + 2 * c.vocab_size * c.n_embd
    return 2 * N * t + 4 * c.n_layer * c.n_embd * t * t + 2 * c.vocab_size * c.n_embd * t


def per_token_seconds(m: GPT, t: int, cached: bool, repeat: int) -> float:
    ids = np.random.default_rng(0).integers(0, m.config.vocab_size, (1, t))
    best = float("inf")
    cache = m.new_kv_cache()
    m.forward(ids[:, :t - 1], kv_cache=cache)
    for _ in range(repeat):
        t0 = time.perf_counter()
        if cached:
            cache.crop(t - 1)
            decode_step(m, int(ids[0, -1]), cache)                     # position t-1, t keys
        else:
            m.forward(ids)                                              # the whole window
        best = min(best, time.perf_counter() - t0)
    return best


shapes = {"L2 C64 (this model)": model}
if not QUICK:
    shapes["L6 C384, block 256"] = GPT(GPTConfig(65, 256, 6, 6, 384), seed=0)
fig, ax = plt.subplots(figsize=(7, 4))
for k, (label, m) in enumerate(shapes.items()):
    ts = [t for t in (4, 8, 16, 32, 64, 128, 256) if t <= m.config.block_size]
    rep = 3 if QUICK else 10
    fast = [1 / per_token_seconds(m, t, True, rep) for t in ts]
    slow = [1 / per_token_seconds(m, t, False, rep) for t in ts]
    ax.plot(ts, fast, "o-", color=f"C{k}", label=f"{label}, KV cache")
    ax.plot(ts, slow, "s--", color=f"C{k}", label=f"{label}, no cache")
    for t, f, s in zip(ts, fast, slow, strict=True):
        print(f"{label:<22} t={t:<4} cached {f:8.0f} tok/s  uncached {s:8.0f} tok/s  measured x{f / s:5.1f}  "
              f"FLOP ratio x{flops(m.config, t, False) / flops(m.config, t, True):5.1f}")
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xlabel("tokens in the window (t)")
ax.set_ylabel("tokens per second (one step)")
ax.set_title("One decode step with and without the KV cache")
ax.legend(fontsize=8, loc="lower left")
fig.tight_layout()
fig.savefig(FIG / "kv_cache_speed.png", dpi=110)
plt.close(fig)

# %% [markdown]
# At small t the cached step is bound by Python's per-operation overhead (tens of NumPy calls per layer),
# not by FLOPs, so the measured gain is smaller than the FLOP ratio there; it grows with t.

# %% [markdown]
# ## 4. Streaming bytes into text
# A byte-level BPE token is a run of bytes, not of characters: a Chinese character is 3 bytes in UTF-8 and
# GPT-2 often splits it over 2 tokens. Decoding token by token then prints broken characters; the stream
# decoder holds back an incomplete character until its last byte arrives.

# %%
gpt2_file = shared_data("gpt2.tiktoken")
zh = "你好，世界。采样"
bpe = (BPETokenizer.from_tiktoken(gpt2_file) if gpt2_file is not None
       else BPETokenizer.train("你好世界" * 50 + "hello world " * 50, vocab_size=270))
zh_ids = bpe.encode(zh)
print(f"{zh!r}: {len(zh)} characters, {len(zh.encode())} bytes, {len(zh_ids)} tokens "
      f"({'GPT-2' if gpt2_file else 'a small trained BPE'})")
print("token by token, decoded alone:", [bpe.decode([i]) for i in zh_ids])
decoder = bpe.stream_decoder()
pieces = [decoder.push(i) for i in zh_ids] + [decoder.flush()]
print("through the stream decoder:   ", pieces)
assert "".join(pieces) == zh

# %% [markdown]
# ## 5. The same rules as transformers
# reference/tiny_gpt2 is a random GPT-2 saved by transformers, with a GPT-2-format tokenizer (GPT-2's
# first 500 merges). Greedy from "In the beginning" for 50 tokens, streamed, equals transformers'
# generate(do_sample=False) — the same as `minigpt sample --hf lessons/10_sampling/reference/tiny_gpt2
# --prompt "In the beginning" --temperature 0 --max-new-tokens 50`.

# %%
ref = json.loads((HERE / "reference" / "greedy.json").read_text(encoding="utf-8"))["runs"][0]
tiny = hf.load_gpt2(HERE / "reference" / "tiny_gpt2")
tiny_tok = hf.load_gpt2_tokenizer(HERE / "reference" / "tiny_gpt2")
ids = tiny_tok.encode(ref["prompt"])
text = "".join(stream(tiny, ids, tiny_tok, max_new_tokens=50, temperature=0))
print("transformers:", repr(ref["text"][:70]))
print("minigpt:     ", repr(text[:70]))
same_ids = generate(tiny, ids, 50, temperature=0) == ref["new_ids"]
print("identical:", text == ref["text"], "| ids identical:", same_ids)
