"""Write lessons/11_finetuning/reference/ with PyTorch and transformers, never with minigpt.

Fine-tuning counts the loss only on the response. The masks here are built the way Hugging Face
fine-tuning scripts build them, independently of minigpt's rule: `labels` is a copy of the input ids with
the prompt's positions set to -100; GPT2LMHeadModel(input_ids, labels=labels) shifts them by one inside.
The (x, y) a learner's build_example must return are then x = ids[:-1] and y = labels[1:], padded to
block_size with pad id 0 / -100, written out here explicitly for every case.

    reference/tiny_gpt2/     a tiny float64 GPT-2 written by save_pretrained (V = 29, n_positions = 9,
                             C = 12, H = 3, L = 2), weights redrawn so no parameter is trivially 0 or 1
    reference/masks.npz      per case: prompt_ids, response_ids, block_size, x, y (explicit masks);
                             the batch of three cases (trimmed to its longest row): x, y, and torch's
                             F.cross_entropy(ignore_index=-100) loss and the gradient of every parameter;
                             the same batch with nothing masked (loss_unmasked), to show they differ
    reference/meta.json      versions, seed, shapes, and the rules used

Run: python lessons/11_finetuning/make_reference.py   (needs torch==2.13.0 and transformers; no download)
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import transformers
from transformers import GPT2Config, GPT2LMHeadModel

SEED = 11
V, P, C, H, L = 29, 9, 12, 3, 2
PAD, IGNORE = 0, -100
OUT = Path(__file__).resolve().parent / "reference"

# (name, prompt length, response length, block_size, what it shows)
CASES = [
    ("short", 3, 4, P, "3 prompt + 4 response tokens: 6 positions, the first 2 masked, 3 of padding"),
    ("long_prompt", 5, 2, P, "a long prompt, a 2-token response: only 2 targets count"),
    ("one_each", 1, 1, P, "one prompt token, one response token: a single target"),
    ("exact_fit", 4, 6, P, "prompt + response = block_size + 1: no padding, no cropping"),
    ("cropped", 6, 5, P, "11 tokens in a 9-token context: the first prompt token is dropped"),
    ("prompt_gone", 2, 12, P, "the response alone overflows: the prompt and 2 response tokens are dropped"),
    ("small_block", 3, 3, 4, "block_size 4: 6 tokens, the first prompt token dropped"),
]
BATCH = ("short", "long_prompt", "one_each")


def tiny_model() -> GPT2LMHeadModel:
    config = GPT2Config(vocab_size=V, n_positions=P, n_embd=C, n_layer=L, n_head=H,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)
    model = GPT2LMHeadModel(config).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif ".ln_" in name or ".ln_f." in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    return model.eval()


def hf_row(prompt: np.ndarray, response: np.ndarray, block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Hugging Face's recipe: labels = ids with the prompt at -100; keep the last block_size + 1; shift."""
    ids = torch.tensor(np.concatenate([prompt, response]))
    labels = ids.clone()
    labels[: len(prompt)] = IGNORE                     # the prompt is never a target
    ids, labels = ids[-(block_size + 1):], labels[-(block_size + 1):]   # truncation from the left
    x = torch.full((block_size,), PAD, dtype=torch.long)
    y = torch.full((block_size,), IGNORE, dtype=torch.long)
    x[: len(ids) - 1] = ids[:-1]
    y[: len(ids) - 1] = labels[1:]
    return x.numpy(), y.numpy()


def main() -> None:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    OUT.mkdir(exist_ok=True)
    model = tiny_model()
    folder = OUT / "tiny_gpt2"
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)

    arrays: dict[str, np.ndarray] = {}
    rows = {}
    for name, n_prompt, n_response, block, _ in CASES:
        prompt = rng.integers(1, V, size=n_prompt)
        response = rng.integers(1, V, size=n_response)
        x, y = hf_row(prompt, response, block)
        rows[name] = (x, y, n_prompt + n_response - 1)
        arrays.update({f"{name}.prompt_ids": prompt, f"{name}.response_ids": response,
                       f"{name}.block_size": np.int64(block), f"{name}.x": x, f"{name}.y": y})

    # the batch: rows stacked, trailing columns that are padding in every row dropped
    T = max(min(rows[n][2], P) for n in BATCH)
    bx = np.stack([rows[n][0] for n in BATCH])[:, :T]                             # (B, T)
    by = np.stack([rows[n][1] for n in BATCH])[:, :T]                             # (B, T)
    model.zero_grad()
    logits = model(torch.tensor(bx)).logits                                       # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, V), torch.tensor(by).reshape(-1), ignore_index=IGNORE)
    loss.backward()
    grads = {n.removeprefix("transformer."): p.grad.numpy().copy() for n, p in model.named_parameters()}

    # the same loss from transformers' own labels= path (it shifts inside, in float32): must agree
    with torch.no_grad():
        labels = torch.full((len(BATCH), T + 1), IGNORE, dtype=torch.long)
        labels[:, 1:] = torch.tensor(by)
        ids = torch.cat([torch.tensor(bx), torch.full((len(BATCH), 1), PAD)], dim=1)
        hf_loss = model(ids, labels=labels).loss.item()
        unmasked_y = np.full_like(by, IGNORE)                                      # (B, T)
        for i, n in enumerate(BATCH):                    # every real next token counted, prompt included
            k = rows[n][2]                               # these rows are not cropped: k <= T
            seq = np.concatenate([arrays[f"{n}.prompt_ids"], arrays[f"{n}.response_ids"]])
            unmasked_y[i, :k] = seq[1:k + 1]
        loss_unmasked = F.cross_entropy(model(torch.tensor(bx)).logits.reshape(-1, V),
                                        torch.tensor(unmasked_y).reshape(-1), ignore_index=IGNORE).item()
    assert abs(hf_loss - loss.item()) < 1e-6, (hf_loss, loss.item())   # labels= upcasts to float32

    arrays.update({"batch.x": bx, "batch.y": by, "batch.loss": np.float64(loss.item()),
                   "batch.y_unmasked": unmasked_y, "batch.loss_unmasked": np.float64(loss_unmasked)})
    arrays.update({f"batch.grad.{k}": g for k, g in grads.items()})
    np.savez_compressed(OUT / "masks.npz", **arrays)

    meta = {
        "generator": "lessons/11_finetuning/make_reference.py",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "seed": SEED,
        "rng": "torch.manual_seed(seed) for the weights; numpy.random.default_rng(seed) for the ids, "
               "case by case: prompt then response, ids in 1..V-1 (0 is the pad id)",
        "config": {"vocab_size": V, "n_positions": P, "n_embd": C, "n_head": H, "n_layer": L, "dropout": 0.0},
        "cases": {name: {"prompt": a, "response": b, "block_size": c, "what": d}
                  for name, a, b, c, d in CASES},
        "batch": {"cases": list(BATCH), "T": int(T),
                  "rule": "stack the rows, keep the first T columns, T = the longest row's length "
                          "min(len(prompt) + len(response) - 1, block_size)"},
        "mask_rule": "labels = ids with the prompt's positions at -100; keep the last block_size + 1 tokens; "
                     "x = ids[:-1], y = labels[1:]; pad x with 0 and y with -100 to block_size",
        "loss": "F.cross_entropy(model(x).logits.reshape(-1, V), y.reshape(-1), ignore_index=-100), mean; "
                "equal to GPT2LMHeadModel(ids, labels=labels).loss (checked here to 1e-6: that path "
                "computes its loss in float32)",
        "loss_unmasked": "the same batch with every real next token (prompt included) as a target",
        "dtypes": {k: str(a.dtype) for k, a in sorted(arrays.items())},
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {len(arrays)} arrays and tiny_gpt2/ to {OUT} ({size / 1024:.0f} KB); masked loss "
          f"{loss.item():.6f} (labels= path {hf_loss:.6f}), unmasked {loss_unmasked:.6f}, T = {T}")


if __name__ == "__main__":
    main()
