"""Lesson 09 walk-through: from a folder of text to a trained model, and a run that survives being stopped.

Run it: `minigpt lesson run 09` (about a minute; MINIGPT_QUICK=1 shrinks it to seconds).
Everything it writes (datasets, runs) goes to a temporary folder; only the figures stay.
"""

# %% [markdown]
# # 1. The data pipeline: clean, split, encode, memory-map
# `minigpt prepare pystdlib` reads the running Python's standard library: no network needed.

# %%
import json
import math
import os
import tempfile
from pathlib import Path

# Small matrices gain little from a second BLAS thread, and on a busy machine OpenBLAS's threads spin-wait
# for each other (we measured 5x slower wall time): one thread, unless you say otherwise. Must be set
# before NumPy is imported.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np

from minigpt import optim
from minigpt.datasets import recipes, sources
from minigpt.datasets.prepared import load_meta, load_tokenizer, load_tokens
from minigpt.files import checkpoint
from minigpt.files.paths import figures_dir, quick
from minigpt.training import config as train_config
from minigpt.training import loop
from minigpt.training.batches import get_batch

QUICK = quick()
FIG = figures_dir(__file__)
WORK = Path(tempfile.mkdtemp(prefix="minigpt_lesson09_"))
os.environ["MINIGPT_DATA"] = str(WORK / "data")          # keep the clone's data/ untouched
if QUICK:
    sources.PYSTDLIB_BYTES = 200_000

folder = recipes.prepare("pystdlib")
meta = load_meta(folder)
tok = load_tokenizer(folder / "tokenizer.json")
train_ids, val_ids = load_tokens(folder, "train"), load_tokens(folder, "val")
print(f"\n{type(train_ids).__name__} of {train_ids.dtype}: {len(train_ids):,} train and {len(val_ids):,} val "
      f"tokens; on disk {(folder / 'train.bin').stat().st_size:,} bytes = 2 bytes per token")
print("meta.json cleaning record:", json.dumps(meta["cleaning"]))
print("the first 120 characters:\n" + tok.decode(train_ids[:120].tolist()))

# %% [markdown]
# A batch is B random windows of T tokens; the target is the same window shifted by one.

# %%
rng = np.random.default_rng(0)
x, y = get_batch(train_ids, batch_size=4, block_size=24, rng=rng)   # (B, T), (B, T)
print("x shape", x.shape, x.dtype)
for b in range(2):
    print(f"x[{b}] = {tok.decode(x[b].tolist())!r}\ny[{b}] = {tok.decode(y[b].tolist())!r}")
print("uniform guessing costs ln V =", round(math.log(meta["vocab_size"]), 4), "nats per token")

# %% [markdown]
# # 2. The loop: a short run, train and val estimated every few hundred steps

# %%
ITERS = 24 if QUICK else 600
cfg = train_config.TrainConfig(dataset="pystdlib", n_layer=2, n_head=4, n_embd=64, block_size=64,
                               batch_size=12,
                        max_iters=ITERS, lr=2e-3, min_lr=2e-4, warmup_iters=ITERS // 20,
                        lr_decay_iters=ITERS, eval_interval=ITERS // 6, eval_iters=2 if QUICK else 20,
                        checkpoint_interval=ITERS, log_interval=5, sample_tokens=0)
lines: list[str] = []
summary = loop.train(cfg, WORK / "runs" / "short", progress=False, log=lines.append)
print("\n".join(line for line in lines if line.startswith("iter") or line.startswith("done")))
records = [json.loads(r) for r in (WORK / "runs" / "short" / "log.jsonl").read_text().splitlines()]

# %%
import matplotlib.pyplot as plt  # noqa: E402

steps = [r for r in records if r["kind"] == "train"]
evals = [r for r in records if r["kind"] == "eval"]
fig, ax = plt.subplots(figsize=(7, 4))
ax.plot([r["iter"] for r in steps], [r["loss"] for r in steps], color="0.75", lw=0.8, label="batch loss")
ax.plot([r["iter"] for r in evals], [r["train_loss"] for r in evals], "o-", label="train (20 batches)")
ax.plot([r["iter"] for r in evals], [r["val_loss"] for r in evals], "s-", label="val (20 batches)")
ax.axhline(math.log(meta["vocab_size"]), color="k", ls=":", lw=0.8, label="ln V (uniform guess)")
ax.set(xlabel="iteration", ylabel="cross-entropy (nats/char)",
       title=f"pystdlib, 2 layers x 64 channels, {ITERS} steps of 12 x 64 characters")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()
fig.savefig(FIG / "loss_curve.png", dpi=100)
print("saved", FIG / "loss_curve.png")

# %% [markdown]
# # 3. Over-fitting: a small corpus, a model big enough to memorise it, with and without dropout

# %%
small = WORK / "small.txt"   # 19,800 characters to train on, then 2,200 from the val files: the last 10 %
small.write_text(tok.decode(train_ids[:19_800].tolist() + val_ids[:2_200].tolist()), encoding="utf-8")
recipes.prepare("textfile", from_file=small, log=lambda m: None)
OVER = 12 if QUICK else 600
curves = {}
for dropout in (0.0, 0.2):
    c = train_config.TrainConfig(dataset="small", n_layer=2, n_head=4, n_embd=96, block_size=64,
                                 batch_size=16,
                          max_iters=OVER, lr=3e-3, min_lr=3e-4, warmup_iters=OVER // 20, lr_decay_iters=OVER,
                          dropout=dropout, weight_decay=0.1, eval_interval=OVER // 6,
                          eval_iters=2 if QUICK else 10, checkpoint_interval=OVER, sample_tokens=0)
    loop.train(c, WORK / "runs" / f"over_{dropout}", progress=False, log=lambda m: None)
    recs = [json.loads(r) for r in (WORK / "runs" / f"over_{dropout}" / "log.jsonl").read_text().splitlines()]
    curves[dropout] = [r for r in recs if r["kind"] == "eval"]
    best = min(curves[dropout], key=lambda r: r["val_loss"])
    last = curves[dropout][-1]
    print(f"dropout {dropout}: final train {last['train_loss']:.3f} val {last['val_loss']:.3f}; "
          f"best val {best['val_loss']:.3f} at iter {best['iter']}")

fig, ax = plt.subplots(figsize=(7, 4))
for (dropout, ev), color in zip(curves.items(), ("C0", "C3"), strict=True):
    ax.plot([r["iter"] for r in ev], [r["train_loss"] for r in ev], "o-", color=color,
            label=f"train, dropout {dropout}")
    ax.plot([r["iter"] for r in ev], [r["val_loss"] for r in ev], "s--", color=color,
            label=f"val, dropout {dropout}")
ax.set(xlabel="iteration", ylabel="cross-entropy (nats/char)",
       title="20k training characters: the train-val gap is memorisation")
ax.legend()
ax.grid(alpha=0.3)
fig.tight_layout()
fig.savefig(FIG / "overfitting.png", dpi=100)
print("saved", FIG / "overfitting.png")

# %% [markdown]
# # 4. Checkpoints and exact resume
# 40 steps straight, versus 20 steps + a checkpoint + 20 more from it. Then the same resume with the
# training RNG *not* restored (a fresh generator): different batches, different weights.

# %%
smoke = train_config.config_from_preset("smoke", {"max_iters": 40, "lr_decay_iters": 40, "sample_tokens": 0})
quiet = lambda m: None  # noqa: E731
loop.train(smoke, WORK / "runs" / "straight", progress=False, log=quiet)
half = train_config.config_from_preset("smoke", {"max_iters": 20, "lr_decay_iters": 40, "sample_tokens": 0})
loop.train(half, WORK / "runs" / "resumed", progress=False, log=quiet)
print("checkpoint files:", sorted(p.name for p in (WORK / "runs" / "resumed" / "last").iterdir()))
state = json.loads((WORK / "runs" / "resumed" / "last" / "state.json").read_text())
print("saved training RNG state:", json.dumps(state["rng"]["data"])[:110], "...")
loop.train(smoke, WORK / "runs" / "resumed", resume=True, progress=False, log=quiet)
a = checkpoint.load(WORK / "runs" / "straight" / "last").model.params
b = checkpoint.load(WORK / "runs" / "resumed" / "last").model.params
print("straight vs resumed: max |diff| over all weights =",
      max(float(np.max(np.abs(a[k] - b[k]))) for k in a), "(bit-identical)")

# the same resume by hand, but with a new random generator instead of the saved one
loop.train(half, WORK / "runs" / "no_rng", progress=False, log=quiet)
half_ck = checkpoint.load(WORK / "runs" / "no_rng" / "last")
model = half_ck.model
opt = optim.AdamW(model.params, lr=smoke.lr, betas=(smoke.beta1, smoke.beta2),
                  weight_decay=smoke.weight_decay)
opt.load_state_dict(half_ck.optimizer)
data_rng = np.random.default_rng([smoke.seed, 0])       # NOT restored: starts the batch stream over
drop_rng = np.random.default_rng([smoke.seed, 1])
drop_rng.bit_generator.state = half_ck.state["rng"]["dropout"]
pystdlib_train = load_tokens(folder, "train")
for it in range(20, 40):
    opt.lr = loop.lr_at(it, smoke)
    batch = get_batch(pystdlib_train, smoke.batch_size, smoke.block_size, data_rng)
    loop.train_step(model, opt, [batch], smoke.grad_clip, drop_rng)
print("without the RNG state: max |diff| =",
      f"{max(float(np.max(np.abs(a[k] - model.params[k]))) for k in a):.3g}",
      "- the run repeats batches 0..19 instead of drawing 20..39")

# %% [markdown]
# # 5. The learning-rate schedule of the runs above

# %%
base = train_config.config_from_preset("baby")
lrs = [loop.lr_at(i, base) for i in range(base.max_iters)]
print(f"baby recipe: lr {lrs[0]:.2e} at step 0, {max(lrs):.2e} after warm-up ({base.warmup_iters} steps), "
      f"{lrs[1000]:.2e} halfway, {lrs[-1]:.2e} at the end")

# %% [markdown]
# # 6. What to expect
# nanoGPT's baby recipe on tiny Shakespeare: val loss about 1.88 after 2000 iterations (see README for
# minigpt's measured numbers and the command). Here the short run above reached:

# %%
print(f"short run: val {summary['val_loss']:.3f} nats/char after {summary['iter']} iterations "
      f"({summary['seconds']:.0f} s); uniform guessing is {math.log(meta['vocab_size']):.3f}")
