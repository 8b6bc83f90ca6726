"""Training checkpoints: everything needed to continue a run bit for bit, written atomically.

A checkpoint is a folder (runs/<name>/last/ or best/) of four files:

    model.safetensors       the parameters, GPT-2's names, in their dtype
    optimizer.safetensors   AdamW's moments ("exp_avg.<param>", "exp_avg_sq.<param>")
    state.json              iteration, optimizer step and lr, the RNG states, best val loss, the model and
                            training configs, the dataset's identity
    tokenizer.json          the tokenizer, so the folder alone can generate text

Why the RNG states: a resumed run must draw the same batches and dropout masks it would have drawn had it
never stopped. np.random.Generator's `bit_generator.state` is a small dict of integers, so it goes in JSON.

Atomic: the files are written to a hidden temporary folder beside the target, fsynced, and only then swapped
in with two renames (old -> .<name>.old, temp -> <name>). A crash at any moment leaves either the old
checkpoint or the new one complete: if it strikes between the renames, `resolve` finds the .old folder.

What this file deliberately does not do: keep a history of checkpoints, compress, or save the data
position (batches are random draws, so the RNG state *is* the data position).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minigpt.datasets.prepared import Tokenizer, load_tokenizer
from minigpt.files import safetensors
from minigpt.files.atomic import write_bytes_atomic
from minigpt.model import GPT, GPTConfig

FORMAT = "minigpt-checkpoint"
VERSION = 1
FILES = ("model.safetensors", "optimizer.safetensors", "state.json", "tokenizer.json")


class CheckpointError(ValueError):
    """A checkpoint folder that is missing, incomplete or damaged; the message names the file."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model, the optimizer's state_dict, state.json's content, the tokenizer."""

    folder: Path
    model: GPT
    optimizer: dict[str, Any]
    state: dict[str, Any]
    tokenizer: Tokenizer


def save(folder: str | Path, model: GPT, optimizer_state: dict[str, Any], state: dict[str, Any],
         tokenizer_file: str | Path) -> None:
    """Write a checkpoint folder atomically (see the module docstring). Refuses non-finite weights or
    moments: a checkpoint must never replace a good one with one that cannot be resumed."""
    folder = Path(folder)
    for kind, tensors in (("parameter", model.params), ("optimizer moment", optimizer_state)):
        for name, arr in tensors.items():
            if isinstance(arr, np.ndarray) and not np.isfinite(arr).all():
                raise CheckpointError(f"not saving {folder}: {kind} {name} holds NaN or inf; the previous "
                                      "checkpoint there is kept")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    old = folder.parent / f".{folder.name}.old"
    try:
        safetensors.save(model.params, tmp / "model.safetensors")
        moments = {k: v for k, v in optimizer_state.items() if isinstance(v, np.ndarray) and v.ndim > 0}
        safetensors.save(moments, tmp / "optimizer.safetensors")
        full = {"format": FORMAT, "version": VERSION, **state,
                "optimizer": {"step": int(optimizer_state["step"]), "lr": float(optimizer_state["lr"])}}
        write_bytes_atomic(tmp / "state.json", json.dumps(full, indent=1).encode("utf-8"))
        write_bytes_atomic(tmp / "tokenizer.json", Path(tokenizer_file).read_bytes())
        if old.exists():
            shutil.rmtree(old)
        if folder.exists():
            os.replace(folder, old)       # from here until the next line, only .old is complete
        os.replace(tmp, folder)
        _fsync_dir(folder.parent)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def remove_stale_temporaries(run_folder: str | Path) -> list[Path]:
    """Delete the hidden .last.tmp-* / .best.tmp-* folders a kill during save() left in a run folder (each
    is a whole checkpoint's size). Call it when a run starts, before anything else writes there."""
    run_folder = Path(run_folder)
    stale = [p for p in run_folder.glob(".*.tmp-*") if p.is_dir()] if run_folder.is_dir() else []
    for path in stale:
        shutil.rmtree(path, ignore_errors=True)
    return stale


def resolve(folder: str | Path) -> Path:
    """The folder to load: `folder` itself, or its .old twin if a crash struck between the two renames."""
    folder = Path(folder)
    if (folder / "state.json").is_file():
        return folder
    old = folder.parent / f".{folder.name}.old"
    if not folder.exists() and (old / "state.json").is_file():
        return old
    raise CheckpointError(f"no checkpoint at {folder} (expected {', '.join(FILES)})")


def load(folder: str | Path) -> Checkpoint:
    """Read and check a checkpoint folder; every problem is a CheckpointError naming the file."""
    folder = resolve(folder)
    for name in FILES:
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder / name} is missing: the checkpoint is incomplete")
    path = folder / "state.json"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path} is not valid JSON ({exc})") from None
    need = {"format": str, "iter": int, "model_config": dict, "train_config": dict, "rng": dict,
            "optimizer": dict}
    for key, kind in need.items():
        if not isinstance(state, dict) or not isinstance(state.get(key), kind):
            raise CheckpointError(f"{path}: field {key!r} is missing or not a {kind.__name__}")
    if state["format"] != FORMAT or state.get("version") != VERSION:
        raise CheckpointError(f"{path}: format {state['format']!r} version {state.get('version')!r}; this "
                              f"minigpt reads {FORMAT!r} version {VERSION}")
    try:
        config = GPTConfig(**state["model_config"])
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad model_config ({exc})") from None
    params = _load_tensors(folder / "model.safetensors")
    dtype = next(iter(params.values())).dtype if params else np.dtype(np.float32)
    try:
        model = GPT(config, dtype=dtype, params=params)
    except ValueError as exc:
        raise CheckpointError(f"{folder / 'model.safetensors'}: {exc}") from None
    opt = dict(_load_tensors(folder / "optimizer.safetensors"))
    try:
        opt["step"] = int(state["optimizer"]["step"])
        opt["lr"] = float(state["optimizer"]["lr"])
    except (KeyError, TypeError, ValueError):
        raise CheckpointError(f"{path}: 'optimizer' must hold an integer 'step' and a number 'lr'") from None
    try:
        tokenizer = load_tokenizer(folder / "tokenizer.json")
    except ValueError as exc:
        raise CheckpointError(str(exc)) from None
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"{folder / 'tokenizer.json'} has {tokenizer.vocab_size} tokens but the model "
                              f"has vocab_size {config.vocab_size}: the files come from different runs")
    return Checkpoint(folder, model, opt, state, tokenizer)


def _load_tensors(path: Path) -> dict[str, np.ndarray]:
    try:
        tensors = safetensors.load(path)
    except (OSError, ValueError) as exc:              # both name the file already
        raise CheckpointError(str(exc)) from None
    for name, arr in tensors.items():
        if not np.all(np.isfinite(arr)):
            raise CheckpointError(f"{path}: tensor {name} contains NaN or inf; use an earlier checkpoint")
    return tensors


def _fsync_dir(path: Path) -> None:
    """Make the renames durable (POSIX); a no-op where directories cannot be opened (Windows)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
