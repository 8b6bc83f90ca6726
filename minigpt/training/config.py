"""The settings of a training run: TrainConfig, the TOML presets, command-line overrides, resume rules.

    cfg = config_from_preset("baby", {"max_iters": 500})     # presets: minigpt/training/presets/*.toml
    cfg = TrainConfig(n_layer=2, lr=3e-4)                    # or directly; every field is checked

Every value is checked when the config is made, before any work: its type, that it is finite, and that it
is in range (a NaN learning rate or a negative clip would otherwise train silently into NaN weights, or
turn clipping off). A resumed run takes its settings from the checkpoint; only the settings in
RESUME_SAFE may change on resume (how long, how often to evaluate and log, the sample) — a changed
architecture, dtype or dataset is refused, since the checkpoint's weights and batches would not match, and
so is a changed `zero` (the optimizer's sharding is part of the run's recipe; the checkpoint format is the
same either way, and a resume under --zero 1 re-shards the saved moments).

What this file deliberately does not do: a config framework (presets are flat TOML files; every key is a
TrainConfig field), or anything at run time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from minigpt.files.boundary import read_toml

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
RESUME_SAFE = {"max_iters", "eval_interval", "eval_iters", "log_interval", "checkpoint_interval",
               "sample_tokens", "sample_prompt", "temperature", "top_k", "patience"}
MODEL_KEYS = ("n_layer", "n_head", "n_embd", "block_size", "bias", "dtype")
BIG = 10**9                           # no count in a laptop run comes near this: a typo, not a setting


@dataclass
class TrainConfig:
    """Every knob of a run. Defaults are nanoGPT's CPU recipe; presets and --key value override them."""

    dataset: str = "pystdlib"          # a folder under data/ (`minigpt prepare NAME`)
    seed: int = 1337
    # the model
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 128
    block_size: int = 64               # T: the context
    dropout: float = 0.0
    bias: bool = True
    dtype: str = "float32"             # float64 for checks against references
    # the optimisation
    batch_size: int = 12               # B: windows per micro-batch
    grad_accum: int = 1                # micro-batches per step (gradients averaged)
    max_iters: int = 2000
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_iters: int = 100
    lr_decay_iters: int = 2000         # cosine reaches min_lr here; 0 = constant lr
    beta1: float = 0.9
    beta2: float = 0.99
    weight_decay: float = 0.1
    grad_clip: float = 1.0             # 0 = no clipping
    zero: int = 0                      # 1 = ZeRO-1 under mpiexec: each rank keeps AdamW's moments of 1/N of
                                       # the parameters (minigpt/parallel/zero.py); same result as 0
    optimizer: str = "adamw"           # "muon": Muon on the blocks' 2-D weights, AdamW on the rest
                                       # (optim.MuonAdamW, lesson 08); lr drives both, Muon's peak is muon_lr
    muon_lr: float = 0.05              # Muon's peak learning rate (optimizer "muon" only)
    # evaluation, logging, checkpoints
    eval_interval: int = 250
    eval_iters: int = 20
    log_interval: int = 10
    checkpoint_interval: int = 250
    patience: int = 0                  # early stopping: stop after this many evaluations without a new best
                                       # val loss (0 = never); fine-tuning uses it
    # the sample printed at the end
    sample_tokens: int = 300
    sample_prompt: str = "\n"
    temperature: float = 0.8
    top_k: int = 0                     # 0 = no top-k

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            kind = {"int": int, "float": float, "bool": bool, "str": str}[f.type]
            if kind is float and isinstance(value, int) and not isinstance(value, bool) and abs(value) < BIG:
                value = float(value)
                setattr(self, f.name, value)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ValueError(f"{f.name} must be a {f.type}, got {value!r}")
            if kind is float and not math.isfinite(value):
                raise ValueError(f"{f.name} must be a finite number, got {value}")
        # (name, lowest, highest): integers and floats alike; the message says which bound was broken
        ranges = [("seed", 0, 2**63 - 1), ("n_layer", 1, 1000), ("n_head", 1, 1000), ("n_embd", 1, 100_000),
                  ("block_size", 1, 1_000_000), ("batch_size", 1, BIG), ("grad_accum", 1, 100_000),
                  ("max_iters", 0, BIG), ("warmup_iters", 0, BIG), ("lr_decay_iters", 0, BIG),
                  ("eval_interval", 1, BIG), ("eval_iters", 1, BIG), ("log_interval", 1, BIG),
                  ("checkpoint_interval", 1, BIG), ("patience", 0, BIG), ("sample_tokens", 0, BIG),
                  ("top_k", 0, BIG), ("dropout", 0.0, 0.999), ("lr", 0.0, 10.0), ("min_lr", 0.0, 10.0),
                  ("beta1", 0.0, 0.999999), ("beta2", 0.0, 0.999999), ("weight_decay", 0.0, 10.0),
                  ("grad_clip", 0.0, 1e6), ("temperature", 0.0, 1e3), ("zero", 0, 1), ("muon_lr", 0.0, 10.0)]
        for name, lo, hi in ranges:
            value = getattr(self, name)
            if not lo <= value <= hi:
                raise ValueError(f"{name} must be in [{lo}, {hi}], got {value}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.lr_decay_iters and self.lr_decay_iters <= self.warmup_iters:
            raise ValueError(f"lr_decay_iters ({self.lr_decay_iters}) must exceed warmup_iters "
                             f"({self.warmup_iters}), or be 0 for a constant lr")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")
        if self.optimizer not in ("adamw", "muon"):
            raise ValueError(f"optimizer must be adamw or muon, got {self.optimizer!r}")
        if self.optimizer == "muon" and (self.zero or self.lr == 0.0):
            raise ValueError("optimizer muon needs lr > 0 (it scales Muon's lr) and zero 0 (ZeRO-1 shards "
                             "AdamW's moments only)")
        if not self.dataset:
            raise ValueError("dataset must name a prepared dataset (data/NAME)")


# ---- presets and overrides ---------------------------------------------------------------------------------
def list_presets() -> list[str]:
    return sorted(p.stem for p in PRESETS_DIR.glob("*.toml"))


def load_preset(name: str) -> dict[str, Any]:
    """A preset's values: minigpt/training/presets/<name>.toml, or a path to any .toml file of TrainConfig
    keys."""
    path = Path(name) if name.endswith(".toml") else PRESETS_DIR / f"{name}.toml"
    if not path.is_file():
        raise ValueError(f"no preset {name!r}; the presets are: {', '.join(list_presets())} "
                         "(or give a path to a .toml file)")
    values = read_toml(path, what="preset")
    _check_keys(values, str(path))
    return values


def parse_overrides(pairs: dict[str, str]) -> dict[str, Any]:
    """Command-line strings -> typed values, by each TrainConfig field's type."""
    types = {f.name: f.type for f in fields(TrainConfig)}
    _check_keys(pairs, "the command line")
    out: dict[str, Any] = {}
    for key, text in pairs.items():
        kind = types[key]
        try:
            if kind == "bool":
                if text.lower() not in ("true", "false", "1", "0", "yes", "no"):
                    raise ValueError
                out[key] = text.lower() in ("true", "1", "yes")
            elif kind == "int":
                out[key] = int(text)
            elif kind == "float":
                out[key] = float(text)
            elif key == "sample_prompt":      # \n and \t as escapes; other text (é, 中) stays as typed
                out[key] = text.replace("\\n", "\n").replace("\\t", "\t")
            else:
                out[key] = text
        except ValueError:
            raise ValueError(f"--{key} needs a {kind}, got {text!r}") from None
    return out


def config_from_preset(preset: str = "default", overrides: dict[str, Any] | None = None) -> TrainConfig:
    _check_keys(overrides or {}, "the overrides")
    return TrainConfig(**(load_preset(preset) | (overrides or {})))


def resume_config(saved: dict[str, Any], overrides: dict[str, Any] | None = None,
                  where: str = "the checkpoint") -> TrainConfig:
    """The config to continue a run with: the checkpoint's own settings, and the overrides the user gave,
    which may only touch RESUME_SAFE settings (a changed model, dtype or dataset would not match the
    checkpoint's weights and batches)."""
    if not isinstance(saved, dict):
        raise ValueError(f"{where}: train_config must be an object")
    _check_keys(saved, f"{where} (written by a newer minigpt?)")
    overrides = dict(overrides or {})
    changed = sorted(k for k, v in overrides.items() if k not in RESUME_SAFE and saved.get(k) != v)
    if changed:
        raise ValueError(f"--resume keeps the run's settings; {changed} cannot change on resume (they were "
                         f"{ {k: saved.get(k) for k in changed} }). Start a new run with --out, or "
                         f"--init-from the checkpoint")
    return TrainConfig(**(saved | overrides))


def _check_keys(values: dict[str, Any], where: str) -> None:
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {unknown}; the settings are: "
                         f"{', '.join(sorted(known))}")
