"""Fine-tuning: continue training a pre-trained GPT on prompt/response pairs, the loss on responses only.

    summary = finetune("data/tang_couplets/train.jsonl", "runs/couplets", init="runs/tang",
                       val="data/tang_couplets/val.jsonl")
    minigpt finetune --init runs/tang --task data/tang_couplets/train.jsonl --val ... --out runs/couplets

It is the training loop of minigpt/training/loop.py, run with three differences:
- the batches are task rows (tasks.py): prompt + response + end token, the prompt's targets set to -100,
  so the gradient only teaches the model to produce the response (see lessons/11_finetuning);
- the weights, the architecture and the tokenizer come from the base model: one of our checkpoints (a run
  folder: its best/, else its last/; or a checkpoint folder), or a Hugging Face GPT-2 folder (--hf) with its
  vocab.json and merges.txt. A task line the tokenizer cannot encode is refused with file:line (tasks.py);
- other defaults (FINETUNE_DEFAULTS): a 10x smaller learning rate than nanoGPT's pre-training 1e-3, a short
  warm-up, frequent evaluation, and early stopping after `patience` evaluations without a better val loss.
  A small task set is over-fitted in a few hundred steps; best/ keeps the weights from before that.

Checkpoints, log.jsonl, loss.png, Ctrl-C and --resume behave exactly as in training (train.py): a resumed
fine-tuning run ends bit-identical to one that never stopped. The task files' sha256 is the dataset identity
a resume checks. Without --val, a seeded 10% of the task file (at least one example) is held out for it.

LoRA (lora=LoRAConfig(...), `--lora RANK`): the base model stays frozen and only low-rank adapters train
(minigpt/finetune/lora.py, lessons/14_lora); AdamW holds moments for the adapters alone, and the checkpoints
hold the adapters plus the base's identity (checkpoint.py), so a resume reloads the base from where it came
from and refuses one whose weights changed. merge=True (`--merge`) then writes out/merged/, a plain GPT-2
folder with the adapters folded into the weights (best/'s adapters, else last/'s), which transformers loads.

What this file deliberately does not do: other parameter-efficient methods, freezing chosen layers,
several tasks at once, or packing several examples into one row.
"""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from minigpt import hf
from minigpt.files import checkpoint
from minigpt.files.models import LoadedModel, is_hf_folder, load_model
from minigpt.finetune.lora import LoRAConfig
from minigpt.finetune.tasks import END, Example, TaskBatches, encode_examples, read_jsonl
from minigpt.parallel.comm import world
from minigpt.training.batches import Data
from minigpt.training.config import TrainConfig, resume_config
from minigpt.training.loop import train

# Fine-tuning's defaults; anything else is the base run's setting (or TrainConfig's).
FINETUNE_DEFAULTS: dict[str, Any] = {
    "lr": 1e-4,               # 10x below pre-training: adjust the model, don't overwrite what it knows
    "min_lr": 1e-5,
    "warmup_iters": 20,
    "lr_decay_iters": 1000,   # = max_iters: one cosine over the run
    "max_iters": 1000,
    "eval_interval": 50,
    "eval_iters": 25,         # x batch_size: a fixed set of val examples, the same at every evaluation
    "checkpoint_interval": 50,
    "log_interval": 10,
    "patience": 4,            # stop after 4 evaluations (200 steps) without a better val loss
    "sample_tokens": 0,       # the end-of-run sample of pre-training means little here: `minigpt eval`
}
MODEL_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "bias")
VAL_FRACTION = 0.1


def finetune_config(base: LoadedModel, overrides: dict[str, Any] | None = None,
                    dataset: str = "task") -> TrainConfig:
    """The base run's settings, its model's shape, FINETUNE_DEFAULTS, then the caller's overrides."""
    known = {f.name for f in fields(TrainConfig)}
    values = {k: v for k, v in base.train_config.items() if k in known}
    cfg = base.model.config
    values.update({k: getattr(cfg, k) for k in MODEL_KEYS})
    values["dtype"] = str(next(iter(base.model.params.values())).dtype)
    values.update(FINETUNE_DEFAULTS)
    values["dataset"] = dataset
    overrides = dict(overrides or {})
    if "max_iters" in overrides and "lr_decay_iters" not in overrides:
        overrides["lr_decay_iters"] = overrides["max_iters"]      # keep one cosine over the whole run
    clash = sorted(k for k in MODEL_KEYS if k in overrides and overrides[k] != values[k])
    if clash:
        raise ValueError(f"{clash} must match the base model's ({ {k: values[k] for k in clash} }): "
                         "fine-tuning keeps the architecture")
    values.update(overrides)
    if values["lr_decay_iters"] and values["lr_decay_iters"] <= values["warmup_iters"]:
        values["lr_decay_iters"] = 0                              # too short for a schedule: constant lr
    return TrainConfig(**values)


def task_data(tokenizer: Any, tokenizer_file: Path, vocab_size: int, task: str | Path,
              val: str | Path | None, cfg: TrainConfig, end: str = END) -> Data:
    """Read, check and encode the task files; hold out VAL_FRACTION of the task when there is no val file."""
    examples = read_jsonl(task)
    digest = hashlib.sha256(Path(task).read_bytes())
    if val is not None:
        val_examples = read_jsonl(val)
        digest.update(Path(val).read_bytes())
    else:
        examples, val_examples = split_examples(examples, VAL_FRACTION, cfg.seed)
    train_pairs = encode_examples(tokenizer, examples, end)
    val_pairs = encode_examples(tokenizer, val_examples, end)
    return Data(str(task), TaskBatches(train_pairs, cfg.block_size, cfg.batch_size),
                TaskBatches(val_pairs, cfg.block_size, cfg.batch_size), Path(tokenizer_file), vocab_size,
                digest.hexdigest(), unit="examples")


def split_examples(examples: list[Example], fraction: float,
                   seed: int) -> tuple[list[Example], list[Example]]:
    """A seeded random `fraction` of the examples (at least one) for validation, the rest for training."""
    if len(examples) < 2:
        raise ValueError(f"{examples[0].where.rsplit(':', 1)[0] if examples else 'the task'} has "
                         f"{len(examples)} example(s): give a --val file, or at least 2 examples to split")
    order = np.random.default_rng([seed, 3]).permutation(len(examples))    # (N,)
    n_val = max(1, int(round(len(examples) * fraction)))
    held = set(order[:n_val].tolist())
    return ([e for i, e in enumerate(examples) if i not in held],
            [e for i, e in enumerate(examples) if i in held])


def finetune(task: str | Path, out: str | Path, *, init: str | Path | None = None,
             val: str | Path | None = None, overrides: dict[str, Any] | None = None, resume: bool = False,
             end: str = END, progress: bool = True, lora: LoRAConfig | None = None, merge: bool = False,
             log=print) -> dict[str, Any]:
    """Fine-tune on a task file; checkpoints in out/last and out/best. Returns train()'s summary.

    init: the base model, any folder minigpt/files/models.py's load_model takes (a run, a checkpoint or a
    Hugging Face GPT-2 folder). On resume the base is out/last itself (a LoRA run's: its base + adapters).
    lora: train LoRA adapters instead of every weight; merge: then write out/merged/ (see the docstring).
    """
    out = Path(out)
    comm = world()                                   # under mpiexec only rank 0 writes files
    if merge and lora is None and not (resume and checkpoint.lora_info(out / "last")):
        raise ValueError("--merge folds LoRA adapters into the base: use it with --lora RANK")
    if resume:
        identity = checkpoint.lora_info(out / "last")
        base = None if identity is None else load_model(identity["base"], dtype=identity["dtype"]).model
        ckpt = checkpoint.load(out / "last", base=base)
        cfg = resume_config(ckpt.state["train_config"], overrides, str(out / "last" / "state.json"))
        base_tok, tok_file = ckpt.tokenizer, ckpt.folder / "tokenizer.json"
        vocab = ckpt.model.config.vocab_size
        init_path = None
    else:
        if init is None:
            raise ValueError("give the model to fine-tune: --init-from RUN (a run, checkpoint or Hugging "
                             "Face GPT-2 folder)")
        base = load_model(init)
        cfg = finetune_config(base, overrides, dataset=str(task))
        base_tok, vocab, init_path = base.tokenizer, base.model.config.vocab_size, base.folder
        tok_file = base.tokenizer_file
        if tok_file is None:                         # a Hugging Face folder: write its tokenizer as ours
            tok_file = out / "tokenizer.json"
            if comm.rank == 0:
                out.mkdir(parents=True, exist_ok=True)
                base_tok.save(tok_file)
        log(f"fine-tuning {base.folder}: {base.model.num_params():,} parameters, lr {cfg.lr:g}, up to "
            f"{cfg.max_iters} steps, early stop after {cfg.patience} evaluations without a better val loss")
    own = out / "tokenizer.json"                     # the run's own copy: base folders may change later
    if comm.rank == 0 and Path(tok_file).resolve() != own.resolve():
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tok_file, own)
    comm.barrier()                                   # the other ranks read it only once it is complete
    data = task_data(base_tok, own, vocab, task, val, cfg, end)
    log(f"task {task}: {len(data.train):,} train / {len(data.val):,} val examples (loss on responses only)")
    summary = train(cfg, out, data, resume=resume, init_from=init_path, progress=progress, sample=False,
                    log=log, comm=comm, lora=lora)
    if merge and not summary["interrupted"] and comm.rank == 0:
        summary["merged"] = str(merge_adapters(out, log))
    return summary


def merge_adapters(out: str | Path, log=print) -> Path:
    """out/best's (else out/last's) adapters folded into their base -> out/merged/, a Hugging Face GPT-2
    folder (config.json, model.safetensors; the base's vocab.json and merges.txt when it has them, else our
    tokenizer.json)."""
    out = Path(out)
    source = out / "best" if (out / "best" / "state.json").is_file() else out / "last"
    identity = checkpoint.lora_info(source)
    if identity is None:
        raise ValueError(f"{source} is not a LoRA checkpoint: there is nothing to merge")
    loaded = load_model(source)                      # the base, checked, with the adapters merged in
    folder = out / "merged"
    hf.save_gpt2(loaded.model, folder)
    base = Path(identity["base"])
    if is_hf_folder(base) and (base / "vocab.json").is_file() and (base / "merges.txt").is_file():
        for name in ("vocab.json", "merges.txt"):
            shutil.copyfile(base / name, folder / name)
    else:
        shutil.copyfile(source / "tokenizer.json", folder / "tokenizer.json")
    log(f"merged {source}'s adapters into {identity['base']}: wrote {folder} ({loaded.model.num_params():,} "
        "parameters, a Hugging Face GPT-2 folder)")
    return folder
