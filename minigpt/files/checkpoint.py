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

A LoRA run (minigpt/finetune/lora.py) saves only its adapters in model.safetensors, and in state.json a "lora"
table: r, alpha, dropout, targets, and the frozen base's identity (the folder it came from, its dtype, a
sha256 of its weights). `lora_info(folder)` reads that table; `load(folder, base=...)` then needs the base
model and refuses one whose weights are not the ones the adapters were trained on.

What this file deliberately does not do: keep a history of checkpoints, compress, or save the data
position (batches are random draws, so the RNG state *is* the data position).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from minigpt.datasets.prepared import Tokenizer, load_tokenizer
from minigpt.files import safetensors
from minigpt.files.atomic import write_bytes_atomic
from minigpt.files.boundary import (
    MODEL_LIMITS,
    FileFormatError,
    check_format,
    first_nonfinite,
    get_field,
    get_optional,
    read_json_object,
)
from minigpt.finetune.lora import TARGET_NAMES, LoRAConfig, LoRAGPT, adapter_shapes, base_fingerprint
from minigpt.model import GPT, GPTConfig, count_params, param_shapes

FORMAT = "minigpt-checkpoint"
VERSION = 1
FILES = ("model.safetensors", "optimizer.safetensors", "state.json", "tokenizer.json")


class CheckpointError(ValueError):
    """A checkpoint folder that is missing, incomplete or damaged; the message names the file."""


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model, the optimizer's state_dict, state.json's content, the tokenizer."""

    folder: Path
    model: GPT | LoRAGPT               # a LoRAGPT (base + adapters) when state.json has a "lora" table
    optimizer: dict[str, Any]
    state: dict[str, Any]
    tokenizer: Tokenizer


def save(folder: str | Path, model: GPT | LoRAGPT, optimizer_state: dict[str, Any], state: dict[str, Any],
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


STATE_MAX_BYTES = 16 << 20      # state.json is a few KB (the configs, two RNG states)
MAX_ITERS = 10**12
_U128 = 2**128


def lora_info(folder: str | Path) -> dict[str, Any] | None:
    """The "lora" table of a checkpoint's state.json, checked field by field; None for a full model."""
    path = resolve(folder) / "state.json"
    try:
        state, _ = read_state(path)
        return lora_table(state, str(path))
    except FileFormatError as exc:
        raise CheckpointError(str(exc)) from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {path}: {exc}") from None


def lora_table(state: dict[str, Any], where: str) -> dict[str, Any] | None:
    """state["lora"] checked (r, alpha, dropout, targets, base, dtype, base_sha256), or None."""
    table = get_optional(state, "lora", dict, where)
    if table is None:
        return None
    at = f"{where}: lora"
    info = {"r": get_field(table, "r", int, at, lo=1, hi=1 << 20),
            "alpha": get_field(table, "alpha", float, at, lo=0.0),
            "dropout": get_field(table, "dropout", float, at, lo=0.0, hi=0.99),
            "targets": get_field(table, "targets", list, at),
            "base": get_field(table, "base", str, at),
            "dtype": get_field(table, "dtype", str, at),
            "base_sha256": get_field(table, "base_sha256", str, at)}
    if not info["targets"] or not all(isinstance(t, str) and t in TARGET_NAMES for t in info["targets"]):
        raise FileFormatError(f"{at}: field 'targets' must list names among {', '.join(TARGET_NAMES)}")
    if info["dtype"] not in ("float32", "float64") or info["alpha"] <= 0:
        raise FileFormatError(f"{at}: dtype must be float32 or float64 and alpha positive")
    return info


def _lora_config(info: dict[str, Any]) -> LoRAConfig:
    return LoRAConfig(r=info["r"], alpha=info["alpha"], dropout=info["dropout"],
                      targets=tuple(info["targets"]))


def load(folder: str | Path, base: GPT | None = None) -> Checkpoint:
    """Read and check a checkpoint folder; every problem is a CheckpointError naming the file.

    Order matters: state.json is checked field by field (types, ranges, the RNG states' structure) and the
    model's parameter count is compared with model.safetensors' header before any tensor is read, so a
    damaged or hostile `n_layer: 100000000` is a one-line error, not a MemoryError.

    A LoRA checkpoint (a "lora" table in state.json) needs its frozen base model: `lora_info(folder)["base"]`
    says where it was loaded from, and its weights must have the fingerprint the checkpoint recorded.
    """
    folder = resolve(folder)
    for name in FILES:
        if not (folder / name).is_file():
            raise CheckpointError(f"{folder / name} is missing: the checkpoint is incomplete")
    try:
        state, config = read_state(folder / "state.json")
        lora = lora_table(state, str(folder / "state.json"))
        model_file, opt_file = folder / "model.safetensors", folder / "optimizer.safetensors"
        dtype = _check_sizes(config, model_file, opt_file, None if lora is None else _lora_config(lora))
    except (FileFormatError, safetensors.SafetensorsError) as exc:
        raise CheckpointError(str(exc)) from None
    except OSError as exc:
        raise CheckpointError(f"cannot read {folder}: {exc}") from None
    params = _load_tensors(model_file)
    try:
        model = GPT(config, dtype=dtype, params=params) if lora is None else \
            _with_adapters(folder, lora, config, base, params)
    except ValueError as exc:
        raise CheckpointError(f"{model_file}: {exc}") from None
    opt: dict[str, Any] = dict(_load_tensors(opt_file))
    opt["step"], opt["lr"] = state["optimizer"]["step"], state["optimizer"]["lr"]
    try:
        tokenizer = load_tokenizer(folder / "tokenizer.json")
    except (ValueError, OSError) as exc:
        raise CheckpointError(str(exc)) from None
    if tokenizer.vocab_size != config.vocab_size:
        raise CheckpointError(f"{folder / 'tokenizer.json'} has {tokenizer.vocab_size} tokens but the model "
                              f"has vocab_size {config.vocab_size}: the files come from different runs")
    return Checkpoint(folder, model, opt, state, tokenizer)


def read_state(path: str | Path) -> tuple[dict[str, Any], GPTConfig]:
    """state.json -> (its content, the model's GPTConfig), every field minigpt uses checked.

    Fields and their rules: format/version exact; iter an integer in [0, 1e12]; eval_done true/false;
    best_val a finite number or null; stale_evals a count; dataset and dataset_sha256 strings or null;
    model_config exactly GPTConfig's fields, sizes within boundary.MODEL_LIMITS; train_config an object
    (TrainConfig checks its own fields); rng.data and rng.dropout numpy PCG64 states (128-bit state and odd
    increment, has_uint32 0/1, a 32-bit uinteger); optimizer.step a count and optimizer.lr finite >= 0.
    Raises FileFormatError naming the file and the field.
    """
    path = Path(path)
    where = str(path)
    state = read_json_object(path, "checkpoint state.json", STATE_MAX_BYTES, max_int_digits=40)  # 2**128
    check_format(state, FORMAT, VERSION, where)
    get_field(state, "iter", int, where, lo=0, hi=MAX_ITERS)
    get_field(state, "eval_done", bool, where, default=False)
    get_optional(state, "best_val", float, where)
    get_field(state, "stale_evals", int, where, lo=0, hi=MAX_ITERS, default=0)
    get_optional(state, "dataset", str, where)
    get_optional(state, "dataset_sha256", str, where)
    get_field(state, "train_config", dict, where)
    config = model_config(get_field(state, "model_config", dict, where), f"{where}: model_config")
    rng = get_field(state, "rng", dict, where)
    for key in ("data", "dropout"):
        check_pcg64_state(get_field(rng, key, dict, f"{where}: rng"), f"{where}: rng.{key}")
    opt = get_field(state, "optimizer", dict, where)
    opt["step"] = get_field(opt, "step", int, f"{where}: optimizer", lo=0, hi=MAX_ITERS)
    opt["lr"] = get_field(opt, "lr", float, f"{where}: optimizer", lo=0.0)
    return state, config


_CONFIG_FIELDS = {"vocab_size", "block_size", "n_layer", "n_head", "n_embd", "dropout", "bias",
                  "layer_norm_epsilon"}


def model_config(fields: dict[str, Any], where: str) -> GPTConfig:
    """GPTConfig from a JSON object holding its fields (no others), sizes bounded by MODEL_LIMITS."""
    unknown = sorted(set(fields) - _CONFIG_FIELDS)
    if unknown:
        raise FileFormatError(f"{where}: unknown field {unknown[0]!r:.60} (a checkpoint from a newer "
                              "minigpt?)")
    sizes = {k: get_field(fields, k, int, where, lo=lo, hi=hi) for k, (lo, hi) in MODEL_LIMITS.items()}
    try:
        return GPTConfig(**sizes, dropout=get_field(fields, "dropout", float, where, lo=0.0, hi=0.99,
                                                    default=0.0),
                         bias=get_field(fields, "bias", bool, where, default=True),
                         layer_norm_epsilon=get_field(fields, "layer_norm_epsilon", float, where,
                                                      lo=1e-30, hi=1.0, default=1e-5))
    except ValueError as exc:                      # n_embd not divisible by n_head
        raise FileFormatError(f"{where}: {exc}") from None


def check_pcg64_state(value: dict[str, Any], where: str) -> None:
    """A numpy PCG64 `bit_generator.state` dict, as np.random.default_rng() gives it, checked for structure
    and ranges (state < 2**128, an odd increment < 2**128, has_uint32 0 or 1, uinteger < 2**32)."""
    if get_field(value, "bit_generator", str, where) != "PCG64":
        raise FileFormatError(f"{where}: field 'bit_generator' must be 'PCG64' (numpy's default_rng), got "
                              f"{value['bit_generator']!r:.40}")
    inner = get_field(value, "state", dict, where)
    get_field(inner, "state", int, f"{where}.state", lo=0, hi=_U128 - 1)
    if get_field(inner, "inc", int, f"{where}.state", lo=0, hi=_U128 - 1) % 2 == 0:
        raise FileFormatError(f"{where}.state: field 'inc' must be odd (PCG64's increment always is)")
    get_field(value, "has_uint32", int, where, lo=0, hi=1)
    get_field(value, "uinteger", int, where, lo=0, hi=2**32 - 1)
    extra = sorted(set(value) - {"bit_generator", "state", "has_uint32", "uinteger"})
    if extra or set(inner) != {"state", "inc"}:
        raise FileFormatError(f"{where}: unexpected fields {(extra or sorted(inner))[:3]} in an RNG state")
    try:
        np.random.PCG64().state = value           # the final word: numpy itself accepts it
    except (ValueError, TypeError, OverflowError) as exc:
        raise FileFormatError(f"{where}: not a PCG64 state numpy accepts ({exc})") from None


def _check_sizes(config: GPTConfig, model_file: Path, opt_file: Path,
                 lora: LoRAConfig | None = None) -> np.dtype:
    """Headers only: the model file must hold count_params(config) values of one float dtype, its tensors
    named and shaped as the config's parameters, and every optimizer tensor "<kind>.<param>" shaped like
    its parameter. Returns the dtype. No tensor is read. With lora: the adapters' names and shapes."""
    header = safetensors.read_header(model_file)
    codes = {info.dtype for info in header.tensors.values()}
    if not header.tensors or len(codes) != 1 or not codes <= {"F32", "F64"}:
        raise FileFormatError(f"{model_file}: parameters must all be F32 or all F64, found "
                              f"{sorted(codes) or 'no tensors'}")
    dtype = np.dtype(np.float32) if codes == {"F32"} else np.dtype(np.float64)
    have = sum(math.prod(info.shape) for info in header.tensors.values())
    shapes = param_shapes(config) if lora is None else adapter_shapes(config, lora)
    want = count_params(config) if lora is None else sum(math.prod(s) for s in shapes.values())
    if have != want:
        raise FileFormatError(f"{model_file} holds {have:,} values but state.json's model_config describes "
                              f"{want:,} {'parameters' if lora is None else 'adapter values'}: the files "
                              "come from different runs")
    for name, info in header.tensors.items():
        if shapes.get(name) != info.shape:
            raise FileFormatError(f"{model_file}: tensor {name!r:.80} {info.shape} is not a parameter of "
                                  "state.json's model_config: the files come from different runs")
    for key, info in safetensors.read_header(opt_file).tensors.items():   # "<buffer kind>.<param name>"
        if shapes.get(key.partition(".")[2]) != info.shape:
            raise FileFormatError(f"{opt_file}: tensor {key!r:.80} {info.shape} is not the moment of a "
                                  "model parameter of that shape: the files come from different runs")
    return dtype


def _with_adapters(folder: Path, lora: dict[str, Any], config: GPTConfig, base: GPT | None,
                   adapters: dict[str, np.ndarray]) -> LoRAGPT:
    """The checkpoint's adapters on `base`, after checking that base is the model they were trained on."""
    if base is None:
        raise CheckpointError(f"{folder} holds LoRA adapters only: load it with its base model "
                              f"({lora['base']}); minigpt.files.models.load_model does that")
    if GPTConfig(**(asdict(base.config) | {"dropout": config.dropout})) != config:
        raise CheckpointError(f"{folder}: the base model's config {asdict(base.config)} is not the one the "
                              f"adapters were trained on ({asdict(config)})")
    if base_fingerprint(base.params) != lora["base_sha256"]:
        raise CheckpointError(f"{folder}: the base model ({lora['base']}) is not the one these adapters were "
                              "trained on (its weights' sha256 differs): restore that base, or train anew")
    frozen = GPT(config, dtype=base.dtype, params=base.params)          # the run's dropout, the same arrays
    return LoRAGPT(frozen, _lora_config(lora), params=adapters)


def _load_tensors(path: Path) -> dict[str, np.ndarray]:
    try:
        tensors = safetensors.load(path)
    except (OSError, ValueError) as exc:              # both name the file already
        raise CheckpointError(str(exc)) from None
    bad = first_nonfinite(tensors)
    if bad:
        raise CheckpointError(f"{path}: tensor {bad[0]} contains {bad[1]:,} NaN or inf values; use an "
                              "earlier checkpoint")
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
