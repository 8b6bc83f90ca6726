"""Write lessons/07_gpt/reference/ with Hugging Face transformers' GPT2LMHeadModel, never with minigpt.

A tiny GPT-2 in float64, every size distinct so a wrong transpose cannot pass:
V = 37 tokens, n_positions (block_size) = 9, C = 12 channels, H = 3 heads (D = 4), L = 2 layers;
batches of B = 2 sequences of T = 7 tokens. Dropout 0 (torch's masks cannot match ours).

    reference/tiny_gpt2/       the model, written by save_pretrained: config.json + model.safetensors (F64)
    reference/gpt.npz          idx, targets; logits, loss and the gradient of every parameter (float64, and
                               float32 from the same weights rounded); the loss with ignored targets;
                               5 steps of plain SGD; the greedy continuation by generate()
    reference/meta.json        versions, seed, shapes, and GPT-2's parameter counts from transformers

GPT-2's default initialisation (N(0, 0.02), biases 0, gains 1) would leave biases and gains at trivial
values a bug could hide behind, so every parameter is redrawn: weights N(0, 0.3^2), biases N(0, 0.1^2),
LayerNorm gains 1 + N(0, 0.1^2).

Gradients are stored under minigpt's names, i.e. transformers' names without "transformer.":
"grad.h.0.attn.c_attn.weight" is d loss / d transformer.h.0.attn.c_attn.weight. The output head is tied,
so transformers' wte gradient already sums both uses.

Run: python lessons/07_gpt/make_reference.py   (needs torch==2.13.0 and transformers; no download)
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

SEED = 7
V, P, C, H, L = 37, 9, 12, 3, 2
B, T = 2, 7
SGD_LR, SGD_STEPS = 0.05, 5
PROMPT_LEN, NEW_TOKENS = 3, 6                 # 3 + 6 = 9 = n_positions: the whole context
OUT = Path(__file__).resolve().parent / "reference"


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


def loss_and_grads(model: GPT2LMHeadModel, idx: np.ndarray, targets: np.ndarray):
    """Mean cross-entropy of logits vs targets (no shift: targets are given per position), and grads."""
    model.zero_grad()
    logits = model(torch.tensor(idx)).logits                                       # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, V), torch.tensor(targets).reshape(-1), ignore_index=-100)
    loss.backward()
    grads = {name.removeprefix("transformer."): p.grad.numpy().copy() for name, p in model.named_parameters()}
    return logits.detach().numpy(), loss.item(), grads


def main() -> None:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    OUT.mkdir(exist_ok=True)
    model = tiny_model()
    folder = OUT / "tiny_gpt2"
    shutil.rmtree(folder, ignore_errors=True)
    model.save_pretrained(folder)          # config.json, model.safetensors, generation_config.json

    arrays: dict[str, np.ndarray] = {}
    idx = rng.integers(0, V, size=(B, T))
    targets = rng.integers(0, V, size=(B, T))
    arrays.update(idx=idx, targets=targets)

    # float64: logits, loss, every gradient
    logits, loss, grads = loss_and_grads(model, idx, targets)
    arrays.update(logits=logits, loss=np.float64(loss))
    arrays.update({f"grad.{k}": g for k, g in grads.items()})

    # positions whose target is -100 do not count
    ignored = targets.copy()
    ignored[0, :3] = -100
    ignored[1, 5] = -100
    _, loss_ignore, grads_ignore = loss_and_grads(model, idx, ignored)
    arrays.update(targets_ignore=ignored, loss_ignore=np.float64(loss_ignore),
                  grad_ignore_wte=grads_ignore["wte.weight"])

    # float32: the same weights rounded to float32, torch computing in float32
    model32 = tiny_model().float()
    model32.load_state_dict({k: v.float() for k, v in model.state_dict().items()})
    logits32, loss32, grads32 = loss_and_grads(model32, idx, targets)
    arrays.update(logits_f32=logits32, loss_f32=np.float32(loss32))
    arrays.update({f"grad_f32.{k}": g for k, g in grads32.items()})

    # greedy continuation of a 3-token prompt to the full context
    prompt = idx[:1, :PROMPT_LEN]
    out = model.generate(torch.tensor(prompt), do_sample=False, max_new_tokens=NEW_TOKENS,
                         pad_token_id=0, attention_mask=torch.ones_like(torch.tensor(prompt)))
    arrays.update(greedy_prompt=prompt, greedy_ids=out[0, PROMPT_LEN:].numpy())

    # 5 steps of plain SGD (p -= lr * grad) on the same batch, float64: the loss before each step
    train = tiny_model()
    train.load_state_dict(model.state_dict())
    losses = []
    for _ in range(SGD_STEPS):
        _, step_loss, _ = loss_and_grads(train, idx, targets)
        losses.append(step_loss)
        with torch.no_grad():
            for p in train.parameters():
                p -= SGD_LR * p.grad
    arrays.update(sgd_losses=np.array(losses))

    np.savez_compressed(OUT / "gpt.npz", **arrays)

    # GPT-2's parameter counts, counted by torch (tied parameters are listed once)
    counts = {}
    for name, (n_layer, n_head, n_embd) in {"gpt2": (12, 12, 768), "gpt2-medium": (24, 16, 1024)}.items():
        with torch.device("meta"):                     # shapes only, no memory
            big = GPT2LMHeadModel(GPT2Config(n_layer=n_layer, n_head=n_head, n_embd=n_embd))
        counts[name] = {"n_layer": n_layer, "n_head": n_head, "n_embd": n_embd, "vocab_size": 50257,
                        "n_positions": 1024, "params": sum(p.numel() for p in big.parameters())}

    meta = {
        "generator": "lessons/07_gpt/make_reference.py",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "numpy": np.__version__,
        "python": platform.python_version(),
        "seed": SEED,
        "rng": "torch.manual_seed(seed) for the weights (tiny_model, in named_parameters order); "
               "numpy.random.default_rng(seed) for idx then targets",
        "config": {"vocab_size": V, "n_positions": P, "n_embd": C, "n_head": H, "n_layer": L,
                   "dropout": 0.0, "activation_function": "gelu_new"},
        "batch": {"B": B, "T": T},
        "weights": "weights N(0, 0.3^2), biases N(0, 0.1^2), LayerNorm gains 1 + N(0, 0.1^2); float64",
        "loss": "F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-100), mean; "
                "targets are per position (no shift)",
        "gradients": "grad.<name> = d loss / d transformer.<name> (float64); grad_f32.<name> in float32",
        "float32": "the float64 weights cast to float32, torch computing in float32",
        "greedy": f"model.generate(prompt, do_sample=False, max_new_tokens={NEW_TOKENS}); greedy_ids are "
                  "the new tokens only",
        "sgd": f"{SGD_STEPS} steps of p -= {SGD_LR} * grad on (idx, targets); sgd_losses[i] is the loss "
               "before step i",
        "param_counts": counts,
        "dtypes": {k: str(a.dtype) for k, a in sorted(arrays.items())},
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {len(arrays)} arrays and tiny_gpt2/ to {OUT} ({size / 1024:.0f} KB); "
          f"loss {loss:.6f}, sgd {np.round(losses, 4)}, greedy {arrays['greedy_ids']}, counts "
          f"{ {k: v['params'] for k, v in counts.items()} }")


if __name__ == "__main__":
    main()
