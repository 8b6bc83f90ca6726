"""Lesson 01 walk-through: text -> UTF-8 bytes -> BPE merges -> token ids, and GPT-2's exact tokenizer.

Run it: `minigpt lesson run 01` (or `python lesson.py` here). Prints evidence and saves
figures/compression.png. Uses ../shared/data (tiny Shakespeare, the Tang poems, gpt2.tiktoken) when present;
without it, the GPT-2 cells are skipped and a small built-in text stands in for the corpora.
MINIGPT_QUICK=1 trains on 100,000 characters to 512 tokens instead of the whole corpora to 1024.
Not here: the model (lesson 02 on), sampling with the streaming decoder (lesson 10).
"""

# %% [markdown]
# # Tokenizers: from text to token ids and back
# A model sees integers, not text. A tokenizer turns text into a list of ids and back, losslessly.

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt

from minigpt.files.paths import figures_dir, quick, shared_data
from minigpt.tokenizer import BPETokenizer, CharTokenizer, bpe
from minigpt.tokenizer.files import bytes_to_unicode

FIG = figures_dir(__file__)
QUICK = quick()
VOCAB = 512 if QUICK else 1024
LIMIT = 100_000 if QUICK else None          # characters of each corpus to train on

# %% [markdown]
# ## 1. Bytes and UTF-8
# UTF-8 spends 1 byte on ASCII, 2 on most accented and Cyrillic letters, 3 on Chinese, 4 on emoji.
# A byte-level tokenizer starts from these 256 byte values, so any text at all can be encoded.

# %%
for ch in ["a", "é", "я", "我", "😀"]:
    raw = ch.encode("utf-8")
    print(f"{ch!r:6} U+{ord(ch):05X}  {len(raw)} byte(s): {list(raw)}")

# %% [markdown]
# ## 2. The BPE merge loop, by hand
# Count adjacent pairs, give the most frequent pair a new id, replace it everywhere, repeat.

# %%
ids = list(b"aaabdaaabac")                     # Wikipedia's BPE example, as bytes
merges: dict[tuple[int, int], int] = {}
print("start     ", ids)
for idx in range(256, 259):
    stats = bpe.get_stats(ids)
    pair = min(stats, key=lambda p: (-stats[p], p))      # highest count; ties -> smallest pair
    ids = bpe.merge(ids, pair, idx)
    merges[pair] = idx
    print(f"merge {pair} (count {stats[pair]}) -> {idx}:", ids)
print("decode:", bpe.decode(ids, merges))

# %% [markdown]
# ## 3. Train on real text
# minigpt's trainer counts each distinct regex chunk once (with its frequency) and, after a merge,
# updates only the pair counts next to the merge sites, instead of recounting the whole text.

# %%
def corpus(name: str) -> str:
    path = shared_data(name)
    if path is None:
        print(f"({name} not found in ../shared/data: using a small built-in text)")
        return ("To be, or not to be, that is the question:\n" * 200 + "床前明月光，疑是地上霜。\n" * 200)
    return path.read_text(encoding="utf-8")


texts = {"tiny Shakespeare": corpus("tinyshakespeare.txt"), "Tang poems": corpus("tang_poems.txt")}
if shared_data("tinyshakespeare.txt") is None or shared_data("tang_poems.txt") is None:
    VOCAB = 300                                     # the built-in text runs out of pairs to merge sooner
    if "MINIGPT_FIGURES" not in os.environ:         # never overwrite the committed figure with this one
        FIG = Path(tempfile.mkdtemp(prefix="minigpt-lesson01-"))
    print("!" * 100 + "\nWARNING: a corpus is missing from ../shared/data beside the clone (or "
          "$MINIGPT_SHARED_DATA): the numbers below\ncome from a built-in text, not the ones in the chapter. "
          f"The figure goes to {FIG}.\n" + "!" * 100)
trained = {}
for name, text in texts.items():
    t0 = time.perf_counter()
    trained[name] = BPETokenizer.train(text[:LIMIT], vocab_size=VOCAB, pattern="gpt2")
    print(f"{name}: {len(text[:LIMIT]):,} characters -> vocab {VOCAB} in {time.perf_counter() - t0:.1f} s")

shakes = trained["tiny Shakespeare"]
first = [shakes.decode([i]) for i in range(256, 276)]
print("first 20 merges (Shakespeare):", first)
longest = sorted(range(256, shakes.vocab_size - 1), key=lambda i: -len(shakes.decode_bytes([i])))[:10]
print("longest tokens:", [shakes.decode([i]) for i in longest])
tang = trained["Tang poems"]
print("first 10 merges (Tang):", [tang.decode_bytes([i]) for i in range(256, 266)])

# %% [markdown]
# ## 4. Why split with a regex first
# Without it, frequent neighbours merge across word boundaries ("e, " or "d.\n"), and the same word gets
# different tokens next to different punctuation. GPT-2's regex cuts text into words, numbers,
# punctuation runs and spaces first; merges never cross those cuts.

# %%
sample = "Hello world! We'll see 1234 dogs,  cats...\n"
print("GPT-2 chunks:", bpe.split(sample, bpe.GPT2_PATTERN))
small = texts["tiny Shakespeare"][:20_000]
n_plain = min(400, VOCAB)
plain = BPETokenizer.train(small, vocab_size=n_plain, pattern=None, special_tokens=())
crossing = [plain.decode([i]) for i in range(256, n_plain)
            if len(bpe.split(plain.decode([i]), bpe.GPT2_PATTERN)) > 1]
print(f"trained with no regex: {len(crossing)} of {n_plain - 256} merges span a word boundary, "
      f"e.g. {crossing[:8]}")

# %% [markdown]
# ## 5. GPT-2 exactly, and its byte-order quirk
# GPT-2's files store tokens as text; to make every byte printable it maps the 68 unprintable bytes
# (including space) to other characters (space -> 'Ġ'), and its byte tokens are numbered in that order.

# %%
table = bytes_to_unicode()
print("space ->", table[32], " newline ->", table[10], " 'a' ->", table[97])
gpt2_path = shared_data("gpt2.tiktoken")
gpt2 = BPETokenizer.from_tiktoken(gpt2_path) if gpt2_path else None
if gpt2 is not None:
    print("vocab_size", gpt2.vocab_size, "  ids of '!', 'A', 'a', ' ', '\\n':",
          [gpt2.encode(c)[0] for c in "!Aa \n"])
    print("'hello world' ->", gpt2.encode("hello world"), "   '我' ->", gpt2.encode("我"))

# %% [markdown]
# ## 6. Special tokens
# `<|endoftext|>` (50256) separates documents. If user text could produce it just by containing those
# 13 characters, a user could end a document or forge a control token. So `encode` refuses such text (as
# tiktoken does) unless the caller says what it is: a control token (`allowed_special`) or plain text
# (`disallowed_special=()`, or `encode_ordinary`).

# %%
if gpt2 is not None:
    try:
        gpt2.encode("<|endoftext|>")
    except ValueError as exc:
        print("refused:", str(exc)[:70], "...")
    print("as text: ", gpt2.encode_ordinary("<|endoftext|>"),
          [gpt2.decode([i]) for i in gpt2.encode_ordinary("<|endoftext|>")])
    print("allowed: ", gpt2.encode("<|endoftext|>", allowed_special="all"))

# %% [markdown]
# ## 7. How many tokens does each corpus take?

# %%
for name, full in texts.items():
    text = full[:LIMIT]                                  # the whole corpus, except in quick mode
    n_bytes = len(text.encode("utf-8"))
    chars = CharTokenizer.from_text(text)
    tokenizers = {"char-level": chars, **({"GPT-2": gpt2} if gpt2 is not None else {}),
                  **{f"BPE trained on {other}": tok for other, tok in trained.items()}}
    print(f"\n{name}: {len(text):,} characters, {n_bytes:,} UTF-8 bytes")
    print(f"  {'tokenizer':<32} {'vocab':>7} {'tokens':>11} {'bytes/token':>12} {'tokens/char':>12}")
    for key, tok in tokenizers.items():
        n = len(tok.encode_ordinary(text))
        print(f"  {key:<32} {tok.vocab_size:>7,} {n:>11,} {n_bytes / n:>12.2f} {n / len(text):>12.2f}")

# %% [markdown]
# ## 8. Compression as the merges accumulate

# %%
fig, ax = plt.subplots(figsize=(7, 4.2))
for (name, text), color in zip(texts.items(), ["tab:blue", "tab:red"], strict=True):
    tok = trained[name]
    n_bytes = len(text[:LIMIT].encode("utf-8"))
    merges_done = range(1, len(tok.train_tokens) + 1)
    ax.plot(merges_done, [n_bytes / n for n in tok.train_tokens], color=color, label=f"BPE on {name}")
    if gpt2 is not None:
        ax.axhline(n_bytes / len(gpt2.encode_ordinary(text[:LIMIT])), color=color, ls="--", lw=1,
                   label=f"GPT-2 on {name}")
ax.set_xlabel("merges learned")
ax.set_ylabel("bytes per token (training text)")
ax.set_title("BPE compression grows with every merge")
ax.legend(loc="lower right")
fig.tight_layout()
fig.savefig(FIG / "compression.png", dpi=120)
print("saved", FIG / "compression.png")

# %% [markdown]
# ## 9. Streaming decode: never print half a character
# A sampler produces one id at a time; 我 is two GPT-2 tokens, and its first one alone is not valid UTF-8.

# %%
tok = gpt2 if gpt2 is not None else tang
ids = tok.encode("我说😀")
print("one token at a time with decode():", [tok.decode([i]) for i in ids])
stream = tok.stream_decoder()
print("with stream_decoder().push():      ", [stream.push(i) for i in ids], repr(stream.flush()))
