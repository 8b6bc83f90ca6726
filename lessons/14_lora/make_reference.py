"""Write lessons/14_lora/reference/ with PyTorch, transformers and PEFT, never with minigpt.

PEFT (Hugging Face's parameter-efficient fine-tuning library) wraps each targeted GPT-2 Conv1D in a LoRA
layer: base(x) + lora_B(lora_A(dropout(x))) * lora_alpha / r, with lora_A and lora_B nn.Linear modules
(weights (r, in) and (out, r)) and fan_in_fan_out=True for Conv1D's (in, out) weight. Here A and B are set
to seeded non-zero values (PEFT's own init makes B zero, which would make every dA zero and test nothing),
autograd gives the loss's gradients, and merge_and_unload() gives the merged model.

    reference/layer.npz     one Conv1D (12 -> 7) with an adapter of rank 3, alpha 6 (scale 2), float64:
                            x (2, 5, 12), weight, bias, lora_A (12, 3), lora_B (3, 7), out, dout, dx,
                            dlora_A, dlora_B, merged (W + 2 A B from PEFT's merge); A and B in minigpt's
                            (in, r), (r, out) layout: PEFT's lora_A.weight.T and lora_B.weight.T
    reference/tiny_gpt2/    the base model, written by save_pretrained (float64; V 23, n_positions 10,
                            C 12, H 3, L 2), weights redrawn so no parameter is trivially 0 or 1
    reference/model_all.npz adapters on c_attn, c_proj (attention's and the MLP's) and c_fc, r 5, alpha 10:
                            idx, targets (2, 7) with three targets at -100, every lora_A/lora_B (minigpt's
                            names and layout), loss, their gradients (grad.<name>), dx = the gradient of
                            inputs_embeds, and merged_logits from merge_and_unload()
    reference/model_c_attn.npz  the same with adapters on c_attn only, r 2, alpha 4
    reference/peft_init.npz PEFT's default init of one adapter (r 4 on a 12 -> 36 layer): lora_A, lora_B
    reference/meta.json     versions, seeds, shapes, the conventions

Run: python lessons/14_lora/make_reference.py   (needs torch==2.13.0, transformers and peft; no download)
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

import numpy as np
import peft
import torch
import torch.nn.functional as F
import transformers
from peft import LoraConfig, get_peft_model
from transformers import GPT2Config, GPT2LMHeadModel
from transformers.pytorch_utils import Conv1D

SEED = 14
V, P, C, H, L = 23, 10, 12, 3, 2
B, T = 2, 7
OUT = Path(__file__).resolve().parent / "reference"
CASES = {   # name: (r, alpha, target_modules)
    "model_all": (5, 10.0, ["c_attn", "c_proj", "c_fc"]),
    "model_c_attn": (2, 4.0, ["c_attn"]),
}


def ours(peft_name: str) -> str:
    """'base_model.model.transformer.h.0.attn.c_attn.lora_A.default.weight' -> 'h.0.attn.c_attn.lora_A'."""
    name = peft_name.removeprefix("base_model.model.").removeprefix("transformer.")
    return name.replace(".default.weight", "")


def set_adapters(model: torch.nn.Module, gen: torch.Generator) -> dict[str, np.ndarray]:
    """Seeded non-zero A and B (A ~ U(-1/sqrt(in), 1/sqrt(in)) as PEFT's init, B ~ 0.3 N(0, 1));
    returns them in minigpt's layout: A (in, r), B (r, out)."""
    out = {}
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_A" in name:
                bound = 1.0 / np.sqrt(p.shape[1])
                p.copy_((torch.rand(p.shape, generator=gen, dtype=p.dtype) * 2 - 1) * bound)
            elif "lora_B" in name:
                p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
            else:
                continue
            out[ours(name)] = p.detach().numpy().T.copy()      # PEFT's (r, in) / (out, r) -> ours
    return out


def layer_reference(gen: torch.Generator) -> dict[str, np.ndarray]:
    """One Conv1D with a LoRA adapter, through PEFT on a one-layer module."""
    class One(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = Conv1D(7, 12)                         # nf = out 7, nx = in 12: weight (12, 7)

        def forward(self, x):
            return self.c_attn(x)

    base = One().double()
    with torch.no_grad():
        base.c_attn.weight.copy_(0.3 * torch.randn(12, 7, generator=gen, dtype=torch.float64))
        base.c_attn.bias.copy_(0.1 * torch.randn(7, generator=gen, dtype=torch.float64))
    weight, bias = base.c_attn.weight.detach().numpy().copy(), base.c_attn.bias.detach().numpy().copy()
    model = get_peft_model(base, LoraConfig(r=3, lora_alpha=6, target_modules=["c_attn"], fan_in_fan_out=True,
                                            lora_dropout=0.0))
    ad = set_adapters(model, gen)
    x = torch.randn(2, 5, 12, generator=gen, dtype=torch.float64, requires_grad=True)
    out = model(x)
    dout = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    out.backward(dout)
    grads = {ours(n): p.grad.numpy().T.copy() for n, p in model.named_parameters() if p.requires_grad}
    assert set(grads) == {"c_attn.lora_A", "c_attn.lora_B"}, grads.keys()   # the base is frozen
    merged = model.merge_and_unload()
    return {"x": x.detach().numpy(), "weight": weight, "bias": bias, "lora_A": ad["c_attn.lora_A"],
            "lora_B": ad["c_attn.lora_B"], "scale": np.float64(2.0), "out": out.detach().numpy(),
            "dout": dout.numpy(), "dx": x.grad.numpy(), "dlora_A": grads["c_attn.lora_A"],
            "dlora_B": grads["c_attn.lora_B"], "merged": merged.c_attn.weight.detach().numpy().copy()}


def tiny_model(gen: torch.Generator) -> GPT2LMHeadModel:
    config = GPT2Config(vocab_size=V, n_positions=P, n_embd=C, n_layer=L, n_head=H, resid_pdrop=0.0,
                        embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=None, eos_token_id=None)
    model = GPT2LMHeadModel(config).double()
    with torch.no_grad():
        for name, p in model.named_parameters():
            z = torch.randn(p.shape, generator=gen, dtype=torch.float64)
            if name.endswith(".bias"):
                p.copy_(0.1 * z)
            elif ".ln_" in name or ".ln_f." in name:
                p.copy_(1.0 + 0.1 * z)
            else:
                p.copy_(0.3 * z)
    return model.eval()


def model_reference(base: GPT2LMHeadModel, r: int, alpha: float, targets: list[str], idx: torch.Tensor,
                    targets_ids: torch.Tensor, gen: torch.Generator) -> dict[str, np.ndarray]:
    config = LoraConfig(r=r, lora_alpha=alpha, target_modules=targets, fan_in_fan_out=True, lora_dropout=0.0,
                        bias="none")
    model = get_peft_model(base, config)
    ad = set_adapters(model, gen)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert all("lora_" in n for n in trainable), trainable
    wte = model.base_model.model.transformer.wte.weight
    embeds = wte[idx].detach().clone().requires_grad_(True)                         # (B, T, C)
    logits = model(inputs_embeds=embeds).logits                                     # (B, T, V)
    loss = F.cross_entropy(logits.reshape(-1, V), targets_ids.reshape(-1), ignore_index=-100)
    loss.backward()
    arrays = {"idx": idx.numpy(), "targets": targets_ids.numpy(), "r": np.int64(r),
              "alpha": np.float64(alpha), "loss": np.float64(loss.item()), "dx": embeds.grad.numpy().copy()}
    arrays |= ad
    arrays |= {"grad." + ours(n): p.grad.numpy().T.copy() for n, p in model.named_parameters()
               if p.requires_grad}
    with torch.no_grad():
        merged = model.merge_and_unload()                   # restores the plain GPT2LMHeadModel, merged
        arrays["merged_logits"] = merged(idx).logits.numpy().copy()
    return arrays


def peft_init(gen_seed: int) -> dict[str, np.ndarray]:
    """PEFT's default initialisation of one adapter (r 4 on a 12 -> 36 Conv1D): A's range, B zero."""
    torch.manual_seed(gen_seed)

    class One(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.c_attn = Conv1D(36, 12)

        def forward(self, x):
            return self.c_attn(x)

    model = get_peft_model(One().double(), LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn"],
                                                      fan_in_fan_out=True))
    p = dict(model.named_parameters())
    return {"lora_A": p["base_model.model.c_attn.lora_A.default.weight"].detach().numpy().T.copy(),
            "lora_B": p["base_model.model.c_attn.lora_B.default.weight"].detach().numpy().T.copy()}


def main() -> None:
    gen = torch.Generator().manual_seed(SEED)
    OUT.mkdir(exist_ok=True)
    np.savez_compressed(OUT / "layer.npz", **layer_reference(gen))
    np.savez_compressed(OUT / "peft_init.npz", **peft_init(SEED))

    base = tiny_model(gen)
    folder = OUT / "tiny_gpt2"
    shutil.rmtree(folder, ignore_errors=True)
    base.save_pretrained(folder)
    idx = torch.randint(0, V, (B, T), generator=gen)                                # (B, T)
    targets = torch.randint(0, V, (B, T), generator=gen)                            # (B, T)
    targets[0, :2] = -100                  # a masked prompt, as fine-tuning's batches have
    targets[1, 0] = -100
    summary = {}
    for name, (r, alpha, mods) in CASES.items():
        fresh = GPT2LMHeadModel.from_pretrained(folder, dtype=torch.float64).eval()
        arrays = model_reference(fresh, r, alpha, mods, idx, targets, gen)
        np.savez_compressed(OUT / f"{name}.npz", **arrays)
        summary[name] = {"r": r, "lora_alpha": alpha, "target_modules": mods, "loss": float(arrays["loss"]),
                         "adapters": sorted(k for k in arrays if k.startswith("h."))}

    meta = {
        "generator": "lessons/14_lora/make_reference.py",
        "torch": torch.__version__, "transformers": transformers.__version__, "peft": peft.__version__,
        "numpy": np.__version__, "python": platform.python_version(), "seed": SEED,
        "rng": "one torch.Generator seeded with SEED, drawn in this order: the layer case (weight, bias, A, "
               "B, x, dout), the model's weights, idx, targets, then each case's A and B",
        "config": {"vocab_size": V, "n_positions": P, "n_embd": C, "n_head": H, "n_layer": L, "dropout": 0.0},
        "batch": {"B": B, "T": T, "masked_targets": "targets[0, :2] and targets[1, 0] are -100"},
        "layout": "A (in, r) = PEFT's lora_A.weight.T, B (r, out) = PEFT's lora_B.weight.T; "
                  "scale = alpha / r",
        "loss": "F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-100), mean, with "
                "logits = peft_model(inputs_embeds=wte[idx]).logits; dx is inputs_embeds' gradient",
        "merged_logits": "peft_model.merge_and_unload()(idx).logits",
        "cases": summary,
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"wrote {OUT} ({size / 1024:.0f} KB): " +
          ", ".join(f"{k} loss {v['loss']:.6f}" for k, v in summary.items()))


if __name__ == "__main__":
    main()
