"""One way to load a model from any folder a user passes: used by sample, eval, finetune and --init-from.

    loaded = load_model("runs/baby")             # a run folder: its best/, else its last/
    loaded = load_model("runs/baby/last")        # a checkpoint folder (state.json, model.safetensors, ...)
    loaded = load_model("~/.cache/minigpt/models/gpt2")   # a Hugging Face GPT-2 folder
    loaded.model, loaded.tokenizer, loaded.eos_id

A LoRA fine-tuning run's checkpoint holds adapters only: its base model is loaded from the folder its
state.json names (and checked against the recorded fingerprint), and `model` is the merged GPT, so sample,
eval and --init-from use it like any other model.

What it returns says where the model came from (kind, folder), the run's settings for a checkpoint, and the
end-of-text id the sampler should stop at (a checkpoint's <|endoftext|> token if its tokenizer has one; a
Hugging Face folder's generation_config.json / config.json eos_token_id).

What this file deliberately does not do: download (minigpt/files/download.py), or load optimizer state
(resuming is the trainer's, through checkpoint.load).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from minigpt import hf
from minigpt.datasets.prepared import Tokenizer
from minigpt.files import checkpoint
from minigpt.model import GPT

EOT = "<|endoftext|>"


@dataclass
class LoadedModel:
    name: str                          # for tables and messages: "baby/best", "gpt2"
    folder: Path                       # the checkpoint folder or the Hugging Face folder
    kind: str                          # "checkpoint" or "hf"
    model: GPT
    tokenizer: Tokenizer
    tokenizer_file: Path | None        # a checkpoint's tokenizer.json (None for a Hugging Face folder)
    train_config: dict[str, Any] = field(default_factory=dict)   # the run's settings ({} for Hugging Face)
    eos_id: int | list[int] | None = None


def is_hf_folder(path: Path) -> bool:
    return (path / "config.json").is_file() and ((path / "model.safetensors").is_file()
                                                 or (path / "model.safetensors.index.json").is_file())


def resolve_checkpoint(path: str | Path) -> Path:
    """A checkpoint folder: `path` itself, or a run folder's best/ (else its last/)."""
    path = Path(path)
    if (path / "state.json").is_file() or (path.parent / f".{path.name}.old").is_dir():
        return checkpoint.resolve(path)
    for name in ("best", "last"):
        if (path / name / "state.json").is_file() or (path / f".{name}.old").is_dir():
            return checkpoint.resolve(path / name)
    raise checkpoint.CheckpointError(f"no checkpoint or model at {path}: give a run folder (with best/ or "
                                     "last/), a checkpoint folder (with state.json), or a Hugging Face GPT-2 "
                                     "folder (config.json + model.safetensors); `minigpt train` makes one")


def load_model(path: str | Path, dtype: Any = None) -> LoadedModel:
    """A run, checkpoint or Hugging Face GPT-2 folder -> its model and tokenizer (see the docstring).
    dtype: cast the weights (default: a checkpoint's own dtype; float32 for Hugging Face)."""
    path = Path(path).expanduser()
    if is_hf_folder(path):
        model = hf.load_gpt2(path, dtype=np.float32 if dtype is None else dtype)
        return LoadedModel(path.name, path, "hf", model, hf.load_gpt2_tokenizer(path), None,
                           eos_id=hf.read_eos_token_id(path, model.config.vocab_size))
    folder = resolve_checkpoint(path)
    lora = checkpoint.lora_info(folder)
    if lora is None:
        ckpt = checkpoint.load(folder)
        model = ckpt.model
    else:                                      # adapters only: load the base they were trained on, merge
        base = load_model(lora["base"], dtype=lora["dtype"]).model
        ckpt = checkpoint.load(folder, base=base)
        model = ckpt.model.merged()
    if dtype is not None and np.dtype(dtype) != model.dtype:
        model = GPT(model.config, dtype=dtype, params={k: v.astype(dtype) for k, v in model.params.items()})
    specials = getattr(ckpt.tokenizer, "special_tokens", {}) or {}
    name = f"{folder.parent.name}/{folder.name}" if folder.parent != folder else folder.name
    return LoadedModel(name, ckpt.folder, "checkpoint", model, ckpt.tokenizer, ckpt.folder / "tokenizer.json",
                       dict(ckpt.state.get("train_config", {})), specials.get(EOT))
