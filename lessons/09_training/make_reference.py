"""Write lesson 09's references with PyTorch and transformers: a few seeded training steps of a tiny GPT-2.

The same run minigpt's training loop must reproduce, written independently:

    reference/init_gpt2/      the starting weights (float64), written by transformers' save_pretrained
    reference/training.npz    corpus, val_corpus   the token ids the batches are cut from
                              x, y (N, A, B, T)    N steps of A micro-batches: windows drawn by the rule
                                                   start = rng.integers(0, n - T, size=B), seeded
                              lr (N,)              nanoGPT's cosine schedule with warm-up, computed here
                              loss (N,)            the mean micro-batch loss of each step (before the step)
                              grad_norm (N,)       torch.nn.utils.clip_grad_norm_'s return (before clipping)
                              eval_x, eval_y (E, B, T), eval_loss_init, eval_loss_final: eval-mode mean loss
                              final.<name>         every parameter after the N steps
    reference/meta.json       versions, seeds, shapes, settings

The loop: per step, set lr; zero grads; for each micro-batch, loss / A backward (accumulates the mean's
gradient); clip the global norm to 1.0; torch.optim.AdamW with two param groups (weight decay only on
tensors with ndim >= 2, nanoGPT's rule), betas (0.9, 0.99), eps 1e-8, weight_decay 0.1. No dropout (torch's
masks cannot match ours), float64 throughout.

Run: python lessons/09_training/make_reference.py (needs torch==2.13.0 and transformers).
"""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

SEED = 9
V, P, C, H, L = 23, 10, 12, 3, 2          # vocab, positions, channels, heads (D = 4), layers
B, T, A = 3, 8, 2                         # batch, time, micro-batches per step
N, E = 20, 4                              # training steps, eval batches
LR, MIN_LR, WARMUP, DECAY = 3e-2, 3e-3, 4, 20
BETAS, EPS, WD, CLIP = (0.9, 0.99), 1e-8, 0.1, 1.0
OUT = Path(__file__).resolve().parent / "reference"


def cosine_lr(step: int) -> float:
    """Linear warm-up from lr/(WARMUP+1), then cosine down to MIN_LR at DECAY (nanoGPT's get_lr)."""
    if step < WARMUP:
        return LR * (step + 1) / (WARMUP + 1)
    if step > DECAY:
        return MIN_LR
    r = (step - WARMUP) / (DECAY - WARMUP)
    return MIN_LR + 0.5 * (1.0 + math.cos(math.pi * r)) * (LR - MIN_LR)


def corpus(rng: np.random.Generator, n: int) -> np.ndarray:
    """A learnable sequence: a walk that mostly steps +1 or +3 mod V, sometimes jumps at random."""
    ids = np.empty(n, dtype=np.int64)
    ids[0] = 0
    for i in range(1, n):
        r = rng.random()
        ids[i] = (ids[i - 1] + (1 if r < 0.6 else 3 if r < 0.9 else rng.integers(0, V))) % V
    return ids


def windows(ids: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    start = rng.integers(0, len(ids) - T, size=B)                     # (B,)
    x = np.stack([ids[s:s + T] for s in start])                        # (B, T)
    y = np.stack([ids[s + 1:s + T + 1] for s in start])                # (B, T)
    return x, y


def mean_loss(model: GPT2LMHeadModel, x: np.ndarray, y: np.ndarray) -> torch.Tensor:
    logits = model(torch.tensor(x)).logits                             # (B, T, V)
    return F.cross_entropy(logits.reshape(-1, V), torch.tensor(y).reshape(-1))


def main() -> None:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    config = GPT2Config(vocab_size=V, n_positions=P, n_embd=C, n_layer=L, n_head=H, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)
    model = GPT2LMHeadModel(config).double()                           # GPT-2's own init, N(0, 0.02)
    OUT.mkdir(exist_ok=True)
    shutil.rmtree(OUT / "init_gpt2", ignore_errors=True)
    model.save_pretrained(OUT / "init_gpt2")

    train_ids, val_ids = corpus(rng, 3000), corpus(rng, 400)
    batch_rng = np.random.default_rng(SEED + 1)
    xs = np.zeros((N, A, B, T), dtype=np.int64)
    ys = np.zeros((N, A, B, T), dtype=np.int64)
    for t in range(N):
        for a in range(A):
            xs[t, a], ys[t, a] = windows(train_ids, batch_rng)
    eval_rng = np.random.default_rng(SEED + 2)
    ex, ey = zip(*[windows(val_ids, eval_rng) for _ in range(E)], strict=True)
    eval_x, eval_y = np.stack(ex), np.stack(ey)                        # (E, B, T)

    def eval_loss() -> float:
        model.eval()
        with torch.no_grad():
            return float(np.mean([mean_loss(model, eval_x[e], eval_y[e]).item() for e in range(E)]))

    eval_init = eval_loss()
    params = dict(model.named_parameters())                            # lm_head is tied to wte: listed once
    groups = [{"params": [p for p in params.values() if p.ndim >= 2], "weight_decay": WD},
              {"params": [p for p in params.values() if p.ndim < 2], "weight_decay": 0.0}]
    opt = torch.optim.AdamW(groups, lr=LR, betas=BETAS, eps=EPS, foreach=False)
    lrs, losses, norms = [], [], []
    model.train()                                                      # dropout is 0: same as eval
    for t in range(N):
        lr = cosine_lr(t)
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        total = 0.0
        for a in range(A):
            loss = mean_loss(model, xs[t, a], ys[t, a])
            (loss / A).backward()
            total += loss.item()
        norm = torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        opt.step()
        lrs.append(lr)
        losses.append(total / A)
        norms.append(norm.item())
    eval_final = eval_loss()

    final = {f"final.{n.removeprefix('transformer.')}": p.detach().numpy().copy() for n, p in params.items()}
    np.savez(OUT / "training.npz", corpus=train_ids, val_corpus=val_ids, x=xs, y=ys, lr=np.array(lrs),
             loss=np.array(losses), grad_norm=np.array(norms), eval_x=eval_x, eval_y=eval_y,
             eval_loss_init=np.array(eval_init), eval_loss_final=np.array(eval_final), **final)
    meta = {
        "generator": "lessons/09_training/make_reference.py",
        "versions": {"torch": torch.__version__, "transformers": transformers.__version__,
                     "numpy": np.__version__},
        "seeds": {"torch.manual_seed (weights)": SEED, "corpus": SEED, "batches": SEED + 1, "eval": SEED + 2},
        "model": {"vocab_size": V, "n_positions": P, "n_embd": C, "n_head": H, "n_layer": L,
                  "dropout": 0.0, "activation_function": "gelu_new", "dtype": "float64"},
        "shapes": {"x": [N, A, B, T], "eval_x": [E, B, T], "corpus": len(train_ids),
                   "val_corpus": len(val_ids)},
        "batch_rule": "start = np.random.default_rng(seed).integers(0, n - T, size=B); "
                      "x = ids[start:start+T], "
                      "y = ids[start+1:start+T+1]; A micro-batches per step, drawn in order",
        "optimizer": {"class": "torch.optim.AdamW", "betas": BETAS, "eps": EPS, "weight_decay": WD,
                      "groups": "ndim >= 2 decayed, ndim < 2 not", "foreach": False},
        "schedule": {"lr": LR, "min_lr": MIN_LR, "warmup_iters": WARMUP, "lr_decay_iters": DECAY},
        "grad_clip": CLIP,
        "loss": "each step: mean over the A micro-batches of F.cross_entropy(logits, y) (mean over B*T)",
        "losses": losses,
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    print(f"losses: {np.round(losses, 4).tolist()}\neval: {eval_init:.4f} -> {eval_final:.4f}")


if __name__ == "__main__":
    main()
