"""The training loop: random windows in, AdamW steps, periodic evaluation, checkpoints, exact resume.

    cfg = config_from_preset("baby", {"max_iters": 500})     # presets: minigpt/training/presets/*.toml
    summary = train(cfg, "runs/baby")                        # resume=True continues runs/baby/last

One iteration, `it` = the number of steps already taken:

    if it % eval_interval == 0 or it == max_iters:  estimate train and val loss on eval_iters fresh batches;
                                                    save best/ when val improved; redraw loss.png
    if it % checkpoint_interval == 0 or it == max_iters: save last/
    if patience and the last `patience` evaluations did not beat the best val loss: save last/, stop
    lr = cosine_lr(it, ...)                         warm-up, then cosine down to min_lr
    grad_accum times: x, y = get_batch(train); loss, grads = model.loss_and_grads(x, y, dropout_rng)
    clip_grad_norm(grads, grad_clip); opt.step(grads)

Exactness. Three random streams, each its own np.random.Generator: the training batches (seed, 0), the
dropout masks (seed, 1), and one fresh generator per evaluation, seeded by (seed, 2, it, split), so
evaluating never disturbs training. A checkpoint stores the first two streams' states with the weights and
AdamW's moments, so a run stopped at any point (Ctrl-C, kill -9) and resumed from its last checkpoint ends
with bit-identical weights to a run that never stopped.

Fine-tuning (minigpt/finetune/run.py) runs this same loop with `task=`: batches come from task.train /
task.val (objects with get_batch(rng): prompt/response rows with the prompt masked, minigpt/finetune/tasks.py)
instead of random windows of data/<dataset>/*.bin, and `patience` stops it early.

Ctrl-C finishes the current step, saves last/ and returns (a second Ctrl-C stops at once). A non-finite loss
or gradient norm raises TrainingDiverged before the step is applied, so no bad weights are ever saved.

What this file deliberately does not do: multiple processes or GPUs, mixed precision, a config framework
(presets are flat TOML files; every key is a TrainConfig field).
"""

from __future__ import annotations

import json
import math
import signal
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from minigpt import optim
from minigpt.datasets.prepared import DataError, get_batch, load_meta, load_tokenizer, load_tokens
from minigpt.files import checkpoint
from minigpt.files.paths import data_dir
from minigpt.model import GPT, GPTConfig

PRESETS_DIR = Path(__file__).resolve().parent / "presets"
PLOT_EVERY_S = 10.0  # redraw loss.png at an evaluation only if the last drawing is older than this
# Keys that may change on --resume without breaking exactness (they don't touch weights or random draws).
RESUME_SAFE = {"max_iters", "eval_interval", "eval_iters", "log_interval", "checkpoint_interval",
               "sample_tokens", "sample_prompt", "temperature", "top_k", "patience"}


@dataclass
class TrainConfig:
    """Every knob of a run. Defaults are nanoGPT's CPU recipe; presets and --key value override them."""

    dataset: str = "pystdlib"          # a folder under data/ (prepared automatically for known recipes)
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
            if kind is float and isinstance(value, int) and not isinstance(value, bool):
                value = float(value)
                setattr(self, f.name, value)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise ValueError(f"{f.name} must be a {f.type}, got {value!r}")
        positive = ("batch_size", "grad_accum", "eval_interval", "eval_iters", "log_interval",
                    "checkpoint_interval", "block_size")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_iters < 0:
            raise ValueError(f"max_iters must be >= 0, got {self.max_iters}")
        if self.lr_decay_iters and self.lr_decay_iters <= self.warmup_iters:
            raise ValueError(f"lr_decay_iters ({self.lr_decay_iters}) must exceed warmup_iters "
                             f"({self.warmup_iters}), or be 0 for a constant lr")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be float32 or float64, got {self.dtype!r}")


class TrainingDiverged(RuntimeError):
    """The loss or the gradient norm became NaN or inf; nothing was saved after the last good checkpoint."""


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
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path}: not valid TOML ({exc})") from None
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
            else:
                out[key] = text.encode("utf-8").decode("unicode_escape") if key == "sample_prompt" else text
        except ValueError:
            raise ValueError(f"--{key} needs a {kind}, got {text!r}") from None
    return out


def config_from_preset(preset: str = "default", overrides: dict[str, Any] | None = None) -> TrainConfig:
    _check_keys(overrides or {}, "the overrides")
    return TrainConfig(**(load_preset(preset) | (overrides or {})))


def _check_keys(values: dict[str, Any], where: str) -> None:
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {unknown}; the settings are: "
                         f"{', '.join(sorted(known))}")


# ---- the loop ----------------------------------------------------------------------------------------------
def lr_at(it: int, cfg: TrainConfig) -> float:
    if not cfg.lr_decay_iters:
        return cfg.lr
    return optim.cosine_lr(it, cfg.lr, cfg.warmup_iters, cfg.lr_decay_iters, cfg.min_lr)


def estimate_loss(model: GPT, ids: np.ndarray, cfg: TrainConfig, rng: np.random.Generator) -> float:
    """Mean eval-mode loss over cfg.eval_iters random batches (no dropout, no gradients)."""
    if hasattr(ids, "mean_loss"):      # a task set (tasks.py): the same eval_iters * batch_size examples
        return ids.mean_loss(model, cfg.eval_iters * cfg.batch_size)
    losses = [model.loss(*draw_batch(ids, cfg, rng)) for _ in range(cfg.eval_iters)]
    return float(np.mean(losses))


def draw_batch(source: Any, cfg: TrainConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """x, y (B, T): random windows of a token array, or source.get_batch(rng) for a task set (tasks.py)."""
    if hasattr(source, "get_batch"):
        return source.get_batch(rng)
    return get_batch(source, cfg.batch_size, cfg.block_size, rng)


def dataset_folder(name: str, log=print) -> Path:
    """data/<name>, prepared first if it is a recipe and not there yet (pystdlib needs no network)."""
    folder = data_dir() / name
    if not (folder / "meta.json").is_file():
        from minigpt.datasets.recipes import RECIPES, prepare

        if name not in RECIPES or name == "textfile":
            raise DataError(f"dataset {name!r} is not prepared ({folder} has no meta.json): run "
                            f"`minigpt prepare NAME` first; the recipes are {', '.join(RECIPES)}")
        log(f"preparing dataset {name} (first use) ...")
        prepare(name, log=log)
    return folder


def train(cfg: TrainConfig, out_dir: str | Path, *, resume: bool = False, init_from: str | Path | None = None,
          progress: bool = True, sample: bool = True, log=print, task: Any = None) -> dict[str, Any]:
    """Run (or continue) a training run in out_dir; returns a summary dict (iters, losses, time, ...).

    task: fine-tuning data instead of cfg.dataset, an object with .train and .val (get_batch(rng) sources),
    .tokenizer_file, .vocab_size and .sha256 (the identity a resume checks); see minigpt/finetune/run.py.
    """
    out = Path(out_dir)
    ckpt = None
    if resume:
        try:
            ckpt = checkpoint.load(out / "last")
        except checkpoint.CheckpointError as exc:
            raise checkpoint.CheckpointError(f"cannot resume: {exc}. Start without --resume to begin a new "
                                             f"run") from None
        _check_resume(cfg, ckpt.state["train_config"], log)
    elif (out / "last" / checkpoint.FILES[0]).exists() or (out / ".last.old").exists():
        raise ValueError(f"{out} already holds a run: continue it with --resume, or pick another --out "
                         f"(or delete {out})")

    if task is not None:                                # fine-tuning: task rows, the prompt masked
        folder, meta = Path(cfg.dataset), {"vocab_size": task.vocab_size, "source_sha256": task.sha256}
        train_ids, val_ids, tokenizer_file = task.train, task.val, Path(task.tokenizer_file)
    else:
        folder = dataset_folder(cfg.dataset, log)
        meta = load_meta(folder)
        train_ids, val_ids = load_tokens(folder, "train"), load_tokens(folder, "val")
        for split, ids in (("train", train_ids), ("val", val_ids)):
            if len(ids) < cfg.block_size + 1:
                raise DataError(f"{folder}/{split}.bin has {len(ids)} tokens, fewer than block_size + 1 = "
                                f"{cfg.block_size + 1}: use a smaller --block_size or a bigger corpus")
        tokenizer_file = folder / meta.get("tokenizer", "tokenizer.json")
    tokenizer = load_tokenizer(tokenizer_file)

    dtype = np.dtype(cfg.dtype)
    mconf = GPTConfig(vocab_size=meta["vocab_size"], block_size=cfg.block_size, n_layer=cfg.n_layer,
                      n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias)
    data_rng = np.random.default_rng([cfg.seed, 0])     # which windows each step trains on
    drop_rng = np.random.default_rng([cfg.seed, 1])     # dropout masks
    best_val, start = math.inf, 0
    if ckpt is not None:
        model = ckpt.model
        if model.config.vocab_size != mconf.vocab_size or ckpt.state.get("dataset_sha256") != \
                meta.get("source_sha256"):
            raise ValueError(f"{out}/last was trained on other data than {folder} (vocab or source sha256 "
                             f"differ); resume with the same dataset")
        data_rng.bit_generator.state = ckpt.state["rng"]["data"]
        drop_rng.bit_generator.state = ckpt.state["rng"]["dropout"]
        best_val, start = float(ckpt.state.get("best_val", math.inf)), ckpt.state["iter"]
    else:
        model = GPT(mconf, seed=cfg.seed, dtype=dtype)
        if init_from is not None:
            model = _init_from(init_from, mconf, dtype)
    opt = optim.AdamW(model.params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8,
                      weight_decay=cfg.weight_decay)
    if ckpt is not None:
        opt.load_state_dict(ckpt.optimizer)

    out.mkdir(parents=True, exist_ok=True)
    eval_done = ckpt.state.get("eval_done", False) if ckpt else False   # the checkpoint's iter was evaluated
    records = _read_log(out / "log.jsonl", start, eval_done)
    _write_log(out / "log.jsonl", records)
    logf = open(out / "log.jsonl", "a", encoding="utf-8")

    def save(name: str, it: int, eval_done: bool) -> None:
        best = best_val if math.isfinite(best_val) else None
        state = {"iter": it, "eval_done": eval_done, "best_val": best,
                 "model_config": asdict(model.config), "train_config": asdict(cfg),
                 "rng": {"data": data_rng.bit_generator.state, "dropout": drop_rng.bit_generator.state},
                 "dataset": cfg.dataset, "dataset_sha256": meta.get("source_sha256"), "stale_evals": stale}
        checkpoint.save(out / name, model, opt.state_dict(), state, tokenizer_file)

    def emit(record: dict[str, Any]) -> None:
        records.append(record)
        logf.write(json.dumps(record) + "\n")
        logf.flush()

    log(f"{cfg.dataset}: {len(train_ids):,} train / {len(val_ids):,} val tokens, vocab {meta['vocab_size']}; "
        f"model {model.num_params():,} parameters; {'resuming at' if ckpt else 'starting at'} iter {start} "
        f"of {cfg.max_iters}; writing to {out}")
    stop = _StopFlag()
    from tqdm import tqdm

    bar = tqdm(total=cfg.max_iters, initial=start, disable=not progress, dynamic_ncols=True, unit="it")
    tokens_per_step = cfg.batch_size * cfg.block_size * cfg.grad_accum
    t_start, last_val, last_train, interrupted, stopped_early = time.time(), None, None, False, False
    last_plot = 0.0
    stale = int(ckpt.state.get("stale_evals", 0)) if ckpt else 0   # evaluations since the best val loss
    it = start
    try:
        with stop:
            while True:
                if (it % cfg.eval_interval == 0 or it == cfg.max_iters) and not eval_done:
                    last_train = estimate_loss(model, train_ids, cfg, _eval_rng(cfg, it, 0))
                    last_val = estimate_loss(model, val_ids, cfg, _eval_rng(cfg, it, 1))
                    emit({"kind": "eval", "iter": it, "train_loss": last_train, "val_loss": last_val,
                          "time_s": round(time.time() - t_start, 3)})
                    msg = f"iter {it}: train loss {last_train:.4f}, val loss {last_val:.4f}"
                    if last_val < best_val:
                        best_val, stale = last_val, 0
                        save("best", it, True)
                        msg += " (best so far: saved best/)"
                    else:
                        stale += 1
                    bar.write(msg) if progress else log(msg)
                    if it >= cfg.max_iters or time.time() - last_plot > PLOT_EVERY_S:
                        _plot(records, out / "loss.png", cfg)   # ~0.3 s: not more often than every 10 s
                        last_plot = time.time()
                eval_done = False
                if cfg.patience and stale >= cfg.patience:      # early stopping
                    save("last", it, True)
                    log(f"early stop at iter {it}: no better val loss in {stale} evaluations (patience "
                        f"{cfg.patience}); best/ holds the best weights (val {best_val:.4f})")
                    stopped_early = True
                    break
                if (it % cfg.checkpoint_interval == 0 and it != start) or it == cfg.max_iters:
                    save("last", it, True)
                if it >= cfg.max_iters:
                    break
                if stop.requested:
                    save("last", it, False)
                    _plot(records, out / "loss.png", cfg)
                    log(f"\ninterrupted: saved {out / 'last'} at iter {it}; continue with --resume")
                    interrupted = True
                    break
                t0 = time.perf_counter()
                opt.lr = lr_at(it, cfg)
                loss, norm = _step(model, opt, train_ids, cfg, data_rng, drop_rng)
                if not (math.isfinite(loss) and math.isfinite(norm)):
                    saved = checkpoint.resolve(out / "last") if (out / "last").exists() else None
                    where = f"the last good checkpoint is {saved}" if saved else "no checkpoint was saved yet"
                    raise TrainingDiverged(
                        f"training diverged at iter {it}: loss {loss}, gradient norm {norm}. The step was "
                        f"not applied and nothing was saved; {where}. Try a lower --lr (now {cfg.lr}), more "
                        f"--warmup_iters, or --grad_clip 1.0, then start again (or --resume)")
                dt = time.perf_counter() - t0
                if it % cfg.log_interval == 0:
                    emit({"kind": "train", "iter": it, "loss": loss, "lr": opt.lr, "grad_norm": norm,
                          "ms": round(dt * 1000, 2)})
                    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{opt.lr:.2e}",
                                    tok_s=f"{tokens_per_step / dt:,.0f}")
                bar.update(1)
                it += 1
    finally:
        bar.close()
        logf.close()
    elapsed = time.time() - t_start
    summary = {"iter": it, "train_loss": last_train, "val_loss": last_val,
               "best_val": best_val if math.isfinite(best_val) else None, "seconds": round(elapsed, 1),
               "interrupted": interrupted, "stopped_early": stopped_early, "out": str(out)}
    if not interrupted:
        val_text = "not re-evaluated" if last_val is None else f"{last_val:.4f}"   # a resume at the end
        log(f"done: {it} iterations in {elapsed:.0f} s; val loss {val_text} (best {best_val:.4f}); "
            f"checkpoints in {out}/last and {out}/best")
        if sample and cfg.sample_tokens > 0:
            print_sample(model, tokenizer, cfg, log)
    return summary


def _eval_rng(cfg: TrainConfig, it: int, split: int) -> np.random.Generator:
    """A fresh generator per evaluation and split: evaluating never moves the training streams."""
    return np.random.default_rng([cfg.seed, 2, it, split])


def _step(model: GPT, opt: optim.AdamW, ids: np.ndarray, cfg: TrainConfig, data_rng: np.random.Generator,
          drop_rng: np.random.Generator) -> tuple[float, float]:
    """Draw cfg.grad_accum micro-batches and take one train_step on them."""
    batches = [draw_batch(ids, cfg, data_rng) for _ in range(cfg.grad_accum)]         # [(x, y) (B, T)]
    return train_step(model, opt, batches, cfg.grad_clip, drop_rng)


def train_step(model: GPT, opt: optim.Optimizer, batches: list[tuple[np.ndarray, np.ndarray]],
               grad_clip: float = 1.0, dropout_rng: np.random.Generator | None = None) -> tuple[float, float]:
    """One optimizer step on the mean loss of the micro-batches; returns (mean loss, norm before clipping).

    Gradient accumulation: each micro-batch's gradients are scaled by 1/n and summed, which is the gradient
    of the mean of the n losses - what one batch n times bigger gives, in 1/n of the memory.
    grad_clip 0 means no clipping. The weights are not touched when the loss or the norm is not finite.
    """
    if not batches:
        raise ValueError("train_step needs at least one (x, y) batch")
    total, loss_sum = None, 0.0
    scale = 1.0 / len(batches)
    for x, y in batches:
        loss, grads = model.loss_and_grads(x, y, rng=dropout_rng)
        loss_sum += float(loss)
        if total is None:
            total = grads                                     # the first micro-batch's arrays hold the sum
            if scale != 1.0:
                for g in total.values():
                    g *= scale
        else:
            optim.accumulate(total, grads, scale)
    loss = loss_sum * scale
    if grad_clip > 0:
        norm = optim.clip_grad_norm(total, grad_clip)
    else:
        norm = math.sqrt(sum(float(np.vdot(g, g)) for g in total.values()))
    if math.isfinite(loss) and math.isfinite(norm):
        opt.step(total)
    return loss, norm


def print_sample(model: GPT, tokenizer, cfg: TrainConfig, log=print) -> str | None:
    """Print cfg.sample_tokens generated tokens after cfg.sample_prompt, if minigpt.sampling exists."""
    try:
        from minigpt.sampling import generate
    except ImportError:
        log("(no sample: minigpt/sampling.py is not there yet)")
        return None
    prompt = tokenizer.encode(cfg.sample_prompt) or [0]
    new = generate(model, prompt, max_new_tokens=cfg.sample_tokens, temperature=cfg.temperature,
                   top_k=cfg.top_k or None, seed=cfg.seed)
    text = tokenizer.decode(list(prompt) + [int(i) for i in new])
    log(f"---- sample (temperature {cfg.temperature}, seed {cfg.seed}) ----\n{text}\n----")
    return text


def _init_from(path: str | Path, mconf: GPTConfig, dtype) -> GPT:
    """Weights from a checkpoint folder (ours, or a Hugging Face GPT-2 folder); the shapes must match."""
    path = Path(path)
    if (path / "last").is_dir() and not (path / "state.json").exists():
        path = path / ("best" if (path / "best").is_dir() else "last")
    if (path / "state.json").is_file():
        params = checkpoint.load(path).model.params
    else:
        from minigpt import hf

        params = hf.load_gpt2(path, dtype=dtype).params
    params = {k: v.astype(dtype) for k, v in params.items()}
    try:
        return GPT(mconf, dtype=dtype, params=params)
    except ValueError as exc:
        raise ValueError(f"--init-from {path}: its weights do not fit this run's model ({exc}); set "
                         f"n_layer/n_head/n_embd/block_size to the checkpoint's and use its tokenizer"
                         ) from None


def _check_resume(cfg: TrainConfig, saved: dict[str, Any], log) -> None:
    changed = {k for k, v in asdict(cfg).items() if k in saved and saved[k] != v}
    risky = sorted(changed - RESUME_SAFE)
    if risky:
        log(f"warning: resuming with changed {risky}: the run will no longer match an uninterrupted one")


def _read_log(path: Path, start: int, eval_done: bool) -> list[dict[str, Any]]:
    """log.jsonl's records up to the checkpoint (a killed run may have logged steps it then lost)."""
    if not path.is_file() or start == 0 and not eval_done:
        return []
    keep = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by kill -9
        at_start_eval = rec.get("iter") == start and rec.get("kind") == "eval" and eval_done
        if rec.get("iter", 0) < start or at_start_eval:
            keep.append(rec)
    return keep


def _write_log(path: Path, records: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


def _plot(records: list[dict[str, Any]], path: Path, cfg: TrainConfig) -> None:
    """loss.png: training loss per logged step, and the train/val estimates at each evaluation."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    steps = [r for r in records if r["kind"] == "train"]
    evals = [r for r in records if r["kind"] == "eval"]
    if steps:
        ax.plot([r["iter"] for r in steps], [r["loss"] for r in steps], color="0.75", lw=0.8,
                label="batch loss")
    ax.plot([r["iter"] for r in evals], [r["train_loss"] for r in evals], "o-", label="train (estimate)")
    ax.plot([r["iter"] for r in evals], [r["val_loss"] for r in evals], "s-", label="val (estimate)")
    ax.set_xlabel("iteration")
    ax.set_ylabel("cross-entropy loss (nats/token)")
    ax.set_title(f"{cfg.dataset}: {cfg.n_layer} layers, {cfg.n_embd} channels, block {cfg.block_size}")
    ax.grid(alpha=0.3)
    ax.legend()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=100)
    tmp.replace(path)


class _StopFlag:
    """Turns the first Ctrl-C into a request to stop after the current step; a second one interrupts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)  # second Ctrl-C: now

    def __enter__(self) -> _StopFlag:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread: Ctrl-C behaves as usual
            self._previous = None
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
