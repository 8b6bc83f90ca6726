"""Write lesson 02's references with PyTorch autograd: token + position embeddings, and inverted dropout.

What it writes (reference/):
    embedding.npz   forward output and the gradients of wte and wpe for a random upstream gradient,
                    float64 and float32, with repeated token ids on purpose (the scatter-add case);
                    plus T=1, a non-zero start position (KV cache) and a batch of one id repeated everywhere
    dropout.npz     what torch's F.dropout does to a tensor of ones: the value survivors are scaled to
                    (1/(1-p), "inverted" dropout) and the fraction kept, for a few p
    meta.json       torch / numpy versions, seeds, shapes

It never imports minigpt: the references must come from an independent implementation.
Run: python lessons/02_embeddings/make_reference.py   (needs torch==2.13.0, the `reference` extra)
"""

from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

SEED = 1234
B, T, C, V, P = 2, 5, 12, 11, 8          # batch, time, channels, vocab, block_size (learned positions)
OUT = Path(__file__).resolve().parent / "reference"


def embed(idx: np.ndarray, wte: np.ndarray, wpe: np.ndarray, start: int, dout: np.ndarray) -> dict:
    """torch: out = F.embedding(idx, wte) + wpe[start:start+T]; backward of sum(out * dout)."""
    wte_t = torch.tensor(wte, requires_grad=True)
    wpe_t = torch.tensor(wpe, requires_grad=True)
    idx_t = torch.tensor(idx, dtype=torch.long)
    out = F.embedding(idx_t, wte_t) + wpe_t[start:start + idx.shape[1]]   # (B, T, C)
    out.backward(torch.tensor(dout))
    return {"out": out.detach().numpy(), "dwte": wte_t.grad.numpy(), "dwpe": wpe_t.grad.numpy()}


def case(rng: np.random.Generator, name: str, idx: np.ndarray, start: int, dtype) -> dict:
    wte = (0.02 * rng.standard_normal((V, C))).astype(dtype)             # (V, C) GPT-2's init scale
    wpe = (0.01 * rng.standard_normal((P, C))).astype(dtype)             # (P, C)
    dout = rng.standard_normal((*idx.shape, C)).astype(dtype)            # (B, T, C)
    res = embed(idx, wte, wpe, start, dout)
    arrays = {"idx": idx.astype(np.int64), "wte": wte, "wpe": wpe, "dout": dout,
              "start": np.array(start, dtype=np.int64), **res}
    return {f"{name}/{k}": v for k, v in arrays.items()}


def main() -> None:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    idx = rng.permutation(V)[:B * T].reshape(B, T)                        # (B, T) distinct ids, then
    idx[0, 3] = idx[0, 0]                                                 # repeats within a row,
    idx[1, 1] = idx[0, 0]                                                 # across rows,
    idx[1, 4] = idx[0, 2]                                                 # and a second repeated id;
    # 7 distinct ids of 11: four rows of wte are unused and must get exactly zero gradient
    arrays: dict[str, np.ndarray] = {}
    arrays |= case(rng, "f64", idx, 0, np.float64)
    arrays |= case(rng, "f32", idx, 0, np.float32)
    arrays |= case(rng, "t1", idx[:, :1].copy(), 0, np.float64)           # T = 1
    arrays |= case(rng, "start", idx[:, :3].copy(), 4, np.float64)        # positions 4..6 (KV cache)
    arrays |= case(rng, "same", np.full((B, T), 7), 0, np.float64)        # one id, ten times
    np.savez(OUT / "embedding.npz", **arrays)

    ps = np.array([0.1, 0.25, 0.5])
    n = 200_000
    scale, kept = [], []
    for p in ps:
        y = F.dropout(torch.ones(n, dtype=torch.float64), p=float(p), training=True)
        survivors = y[y != 0]
        scale.append(float(survivors[0]))
        kept.append(float(survivors.numel() / n))
        assert torch.all(survivors == survivors[0])                       # one value: 1/(1-p)
    np.savez(OUT / "dropout.npz", p=ps, survivor_value=np.array(scale), kept_fraction=np.array(kept),
             n=np.array(n))

    meta = {
        "generator": "lessons/02_embeddings/make_reference.py",
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "seed": SEED, "shapes": {"B": B, "T": T, "C": C, "V": V, "block_size": P},
        "cases": {
            "f64": "float64, start 0, repeated ids", "f32": "float32, same ids",
            "t1": "T = 1", "start": "T = 3 at positions 4..6", "same": "every id is 7",
        },
        "ops": "F.embedding(idx, wte) + wpe[start:start+T], out.backward(dout); F.dropout on ones",
        "dropout_n": n,
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {sorted(p.name for p in OUT.iterdir())}")


if __name__ == "__main__":
    main()
