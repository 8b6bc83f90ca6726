"""The training loop: the six lines of minigpt/optim.py's docstring, plus evaluation and checkpoints.

    summary = train(cfg, "runs/baby")                 # data/<cfg.dataset>, prepared by `minigpt prepare`
    summary = train(cfg, "runs/baby", resume=True)    # continue from runs/baby/last, bit for bit

One iteration, `it` = the number of steps already taken:

    evaluate        if it % eval_interval == 0 or it == max_iters: train and val loss on eval_iters fresh
                    batches; save best/ when val improved; redraw loss.png
    checkpoint      if it % checkpoint_interval == 0 or it == max_iters: save last/
    lr              lr = cosine_lr(it, ...): warm-up, then cosine down to min_lr
    batch           grad_accum batches x, y (B, T) from data.train
    loss and grads  model.loss_and_grads(x, y) per batch, averaged           \
    clip            clip_grad_norm(grads, grad_clip)                          > train_step
    step            opt.step(grads): AdamW                                   /

Exactness. Three random streams, each its own np.random.Generator: the training batches (seed, 0), the
dropout masks (seed, 1), and one fresh generator per evaluation, seeded by (seed, 2, it, split), so
evaluating never disturbs training. A checkpoint stores the first two streams' states with the weights and
AdamW's moments; parameters are always held in one canonical order (minigpt/model.py's param_shapes), so
the gradient norm sums in the same order after a resume. A run stopped at any point (Ctrl-C, kill -9) and
resumed from its last checkpoint ends with bit-identical weights to a run that never stopped, in float32
and float64.

Safety. A non-finite loss or gradient norm stops the run before the step is applied; a step that leaves
any weight non-finite (a huge learning rate can do that with a finite loss) stops it before anything is
saved. Either way last/ keeps the last good checkpoint, and the message names the iteration. Ctrl-C
finishes the current step, saves last/ and returns (a second Ctrl-C stops at once).

What this file deliberately does not do: prepare datasets (the command line and minigpt/datasets/ do), read
or write files itself (minigpt/files/checkpoint.py, logbook.py), mixed precision, or GPUs.
"""

from __future__ import annotations

import math
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from minigpt import optim
from minigpt.datasets.prepared import load_tokenizer
from minigpt.files import checkpoint
from minigpt.files.models import load_model
from minigpt.files.paths import data_dir
from minigpt.model import GPT, GPTConfig
from minigpt.sampling import generate
from minigpt.training.batches import Data, load_token_data
from minigpt.training.config import MODEL_KEYS, TrainConfig
from minigpt.training.logbook import Logbook

PLOT_EVERY_S = 10.0  # redraw loss.png at an evaluation only if the last drawing is older than this


class TrainingDiverged(RuntimeError):
    """The loss, the gradient norm or the weights became NaN or inf; last/ still holds the last good
    checkpoint."""


def lr_at(it: int, cfg: TrainConfig) -> float:
    if not cfg.lr_decay_iters:
        return cfg.lr
    return optim.cosine_lr(it, cfg.lr, cfg.warmup_iters, cfg.lr_decay_iters, cfg.min_lr)


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


@dataclass
class Run:
    """Everything a checkpoint holds, and what the loop changes as it goes."""

    cfg: TrainConfig
    out: Path
    data: Data
    model: GPT
    opt: optim.AdamW
    data_rng: np.random.Generator      # which windows each step trains on
    drop_rng: np.random.Generator      # dropout masks
    it: int = 0                        # steps taken
    best_val: float = math.inf
    stale: int = 0                     # evaluations since the best val loss
    evaluated: bool = False            # the evaluation at `it` is done (a checkpoint saved right after it)
    start: int = 0                     # where this process began (a resume does not re-save what it loaded)

    def save(self, name: str, eval_done: bool) -> Path:
        state = {"iter": self.it, "eval_done": eval_done,
                 "best_val": self.best_val if math.isfinite(self.best_val) else None,
                 "model_config": asdict(self.model.config), "train_config": asdict(self.cfg),
                 "rng": {"data": self.data_rng.bit_generator.state,
                         "dropout": self.drop_rng.bit_generator.state},
                 "dataset": self.data.name, "dataset_sha256": self.data.sha256, "stale_evals": self.stale}
        checkpoint.save(self.out / name, self.model, self.opt.state_dict(), state, self.data.tokenizer_file)
        return self.out / name

    def due(self, interval: int) -> bool:
        return self.it % interval == 0 or self.it == self.cfg.max_iters


def train(cfg: TrainConfig, out_dir: str | Path, data: Data | None = None, *, resume: bool = False,
          init_from: str | Path | None = None, progress: bool = True, sample: bool = True,
          log=print) -> dict[str, Any]:
    """Run (or continue) a training run in out_dir; returns a summary dict (iters, losses, time, ...).

    data: the batch sources (default: the prepared dataset data/<cfg.dataset>); fine-tuning passes task
    batches (minigpt/finetune/run.py).
    """
    out = Path(out_dir)
    if data is None:
        data = load_token_data(data_dir() / cfg.dataset, cfg.batch_size, cfg.block_size)
    run = start_run(cfg, out, data, resume, init_from, log)
    book = Logbook(out / "log.jsonl", run.it, run.evaluated)
    bar = tqdm(total=cfg.max_iters, initial=run.it, disable=not progress, dynamic_ncols=True, unit="it")
    say = bar.write if progress else log
    t_start, last_plot, interrupted, stopped_early = time.time(), 0.0, False, False
    last = {"train_loss": None, "val_loss": None}
    try:
        with StopOnCtrlC() as stop:
            while True:
                if run.due(cfg.eval_interval) and not run.evaluated:          # evaluate
                    last = evaluate(run, book, say, t_start)
                    if run.it >= cfg.max_iters or time.time() - last_plot > PLOT_EVERY_S:
                        book.plot(out / "loss.png", _title(cfg, data))     # ~0.3 s: at most every 10 s
                        last_plot = time.time()
                run.evaluated = False
                if cfg.patience and run.stale >= cfg.patience:                 # early stopping
                    run.save("last", eval_done=True)
                    log(f"early stop at iter {run.it}: no better val loss in {run.stale} evaluations "
                        f"(patience {cfg.patience}); best/ holds the best weights (val {run.best_val:.4f})")
                    stopped_early = True
                    break
                if run.due(cfg.checkpoint_interval) and (run.it != run.start or run.it == cfg.max_iters):
                    run.save("last", eval_done=True)                           # checkpoint
                if run.it >= cfg.max_iters:
                    break
                if stop.requested:
                    run.save("last", eval_done=False)
                    book.plot(out / "loss.png", _title(cfg, data))
                    log(f"\ninterrupted: saved {out / 'last'} at iter {run.it}; continue with --resume")
                    interrupted = True
                    break
                t0 = time.perf_counter()
                run.opt.lr = lr_at(run.it, cfg)                                # learning rate
                batches = [data.train.get_batch(run.data_rng) for _ in range(cfg.grad_accum)]   # batch
                loss, norm = train_step(run.model, run.opt, batches, cfg.grad_clip, run.drop_rng)
                check_finite(run, loss, norm)                                  # before anything is saved
                dt = time.perf_counter() - t0
                if run.it % cfg.log_interval == 0:
                    book.emit({"kind": "train", "iter": run.it, "loss": loss, "lr": run.opt.lr,
                               "grad_norm": norm, "ms": round(dt * 1000, 2)})
                    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{run.opt.lr:.2e}",
                                    tok_s=f"{cfg.batch_size * cfg.block_size * cfg.grad_accum / dt:,.0f}")
                bar.update(1)
                run.it += 1
    finally:
        bar.close()
        book.close()
    elapsed = time.time() - t_start
    best = run.best_val if math.isfinite(run.best_val) else None
    summary = {"iter": run.it, **last, "best_val": best, "seconds": round(elapsed, 1),
               "interrupted": interrupted, "stopped_early": stopped_early, "out": str(out)}
    if not interrupted:
        val = "not re-evaluated" if last["val_loss"] is None else f"{last['val_loss']:.4f}"
        log(f"done: {run.it} iterations in {elapsed:.0f} s; val loss {val} (best {run.best_val:.4f}); "
            f"checkpoints in {out}/last and {out}/best")
        if sample and cfg.sample_tokens > 0:
            print_sample(run.model, load_tokenizer(data.tokenizer_file), cfg, log)
    return summary


def evaluate(run: Run, book: Logbook, say, t_start: float) -> dict[str, float]:
    """Train and val loss on fresh batches; save best/ when val improved."""
    cfg, it = run.cfg, run.it
    train_loss = run.data.train.estimate_loss(run.model, cfg.eval_iters, _eval_rng(cfg, it, 0))
    val_loss = run.data.val.estimate_loss(run.model, cfg.eval_iters, _eval_rng(cfg, it, 1))
    book.emit({"kind": "eval", "iter": it, "train_loss": train_loss, "val_loss": val_loss,
               "time_s": round(time.time() - t_start, 3)})
    msg = f"iter {it}: train loss {train_loss:.4f}, val loss {val_loss:.4f}"
    if val_loss < run.best_val:
        run.best_val, run.stale = val_loss, 0
        run.save("best", eval_done=True)
        msg += " (best so far: saved best/)"
    else:
        run.stale += 1
    say(msg)
    return {"train_loss": train_loss, "val_loss": val_loss}


def check_finite(run: Run, loss: float, norm: float) -> None:
    """Stop, naming the iteration, if the step was refused (loss or norm not finite) or if it left a weight
    that is not finite; nothing after the last good checkpoint is saved."""
    if math.isfinite(loss) and math.isfinite(norm):
        bad = next((k for k, p in run.model.params.items() if not np.isfinite(p).all()), None)
        if bad is None:
            return
        what = (f"the step (loss {loss:.4f}, gradient norm {norm:.4g}, lr {run.opt.lr:.3g}) left non-finite "
                f"values in {bad}")
    else:
        what = f"loss {loss}, gradient norm {norm}; the step was not applied"
    saved = run.out / "last"
    where = (f"the last good checkpoint is {saved}" if (saved / "state.json").is_file()
             else "no checkpoint was saved yet")
    raise TrainingDiverged(f"training diverged at iter {run.it}: {what}. Nothing was saved; {where}. Try a "
                           f"lower --lr (now {run.cfg.lr}), more --warmup_iters, or --grad_clip 1.0, then "
                           "start again (or --resume)")


def start_run(cfg: TrainConfig, out: Path, data: Data, resume: bool, init_from: str | Path | None,
              log) -> Run:
    """A fresh run (weights initialised or --init-from), or the run in out/last restored exactly."""
    checkpoint.remove_stale_temporaries(out)             # what a kill during a save left behind
    tokenizer = load_tokenizer(data.tokenizer_file)
    if cfg.sample_tokens > 0:
        _check_prompt(tokenizer, cfg.sample_prompt)
    dtype = np.dtype(cfg.dtype)
    mconf = GPTConfig(vocab_size=data.vocab_size, block_size=cfg.block_size, n_layer=cfg.n_layer,
                      n_head=cfg.n_head, n_embd=cfg.n_embd, dropout=cfg.dropout, bias=cfg.bias)
    data_rng = np.random.default_rng([cfg.seed, 0])
    drop_rng = np.random.default_rng([cfg.seed, 1])
    if not resume:
        if (out / "last" / "state.json").exists() or (out / ".last.old").exists():
            raise ValueError(f"{out} already holds a run: continue it with --resume, or pick another --out "
                             f"(or delete {out})")
        model = GPT(mconf, seed=cfg.seed, dtype=dtype) if init_from is None else \
            _init_from(init_from, mconf, dtype)
        opt = optim.AdamW(model.params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8,
                          weight_decay=cfg.weight_decay)
        run = Run(cfg, out, data, model, opt, data_rng, drop_rng)
    else:
        try:
            ckpt = checkpoint.load(out / "last")
        except checkpoint.CheckpointError as exc:
            raise checkpoint.CheckpointError(f"cannot resume: {exc}. Start without --resume to begin a new "
                                             "run") from None
        saved = ckpt.state["train_config"]
        changed = [k for k in MODEL_KEYS if saved.get(k) != getattr(cfg, k)]
        if changed or ckpt.model.config != mconf:
            raise ValueError(f"--resume: the checkpoint in {out}/last has a different model "
                             f"({ {k: saved.get(k) for k in changed} or asdict(ckpt.model.config)}); "
                             "resume with its settings, or start a new run")
        if ckpt.state.get("dataset_sha256") != data.sha256:
            raise ValueError(f"{out}/last was trained on other data than {data.name} (source sha256 "
                             "differs); resume with the same dataset")
        opt = optim.AdamW(ckpt.model.params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=1e-8,
                          weight_decay=cfg.weight_decay)
        opt.load_state_dict(ckpt.optimizer)
        data_rng.bit_generator.state = ckpt.state["rng"]["data"]
        drop_rng.bit_generator.state = ckpt.state["rng"]["dropout"]
        best = ckpt.state.get("best_val")
        run = Run(cfg, out, data, ckpt.model, opt, data_rng, drop_rng, it=ckpt.state["iter"],
                  best_val=math.inf if best is None else float(best),
                  stale=int(ckpt.state.get("stale_evals", 0)), evaluated=bool(ckpt.state.get("eval_done")))
    run.start = run.it
    out.mkdir(parents=True, exist_ok=True)
    log(f"{data.name}: {len(data.train):,} train / {len(data.val):,} val {data.unit}, vocab "
        f"{data.vocab_size}; model {run.model.num_params():,} parameters; "
        f"{'resuming at' if resume else 'starting at'} iter {run.it} of {cfg.max_iters}; writing to {out}")
    return run


def print_sample(model: GPT, tokenizer, cfg: TrainConfig, log=print) -> str:
    """Print cfg.sample_tokens generated tokens after cfg.sample_prompt."""
    prompt = tokenizer.encode_ordinary(cfg.sample_prompt) or [0]
    new = generate(model, prompt, max_new_tokens=cfg.sample_tokens, temperature=cfg.temperature,
                   top_k=cfg.top_k or None, seed=cfg.seed)
    text = tokenizer.decode(list(prompt) + [int(i) for i in new])
    log(f"---- sample (temperature {cfg.temperature}, seed {cfg.seed}) ----\n{text}\n----")
    return text


def _check_prompt(tokenizer, prompt: str) -> None:
    """The sample prompt must be encodable before training starts, not only after it ends."""
    try:
        tokenizer.encode_ordinary(prompt)
    except ValueError as exc:
        raise ValueError(f"--sample_prompt {prompt!r} cannot be encoded by this dataset's tokenizer "
                         f"({exc}); choose a prompt made of the corpus's characters") from None


def _init_from(path: str | Path, mconf: GPTConfig, dtype) -> GPT:
    """Weights from a run, checkpoint or Hugging Face GPT-2 folder; the shapes must match the config."""
    params = {k: v.astype(dtype) for k, v in load_model(path, dtype=dtype).model.params.items()}
    try:
        return GPT(mconf, dtype=dtype, params=params)
    except ValueError as exc:
        raise ValueError(f"--init-from {path}: its weights do not fit this run's model ({exc}); set "
                         f"n_layer/n_head/n_embd/block_size to the checkpoint's and use its tokenizer"
                         ) from None


def _eval_rng(cfg: TrainConfig, it: int, split: int) -> np.random.Generator:
    """A fresh generator per evaluation and split: evaluating never moves the training streams."""
    return np.random.default_rng([cfg.seed, 2, it, split])


def _title(cfg: TrainConfig, data: Data) -> str:
    return f"{data.name}: {cfg.n_layer} layers, {cfg.n_embd} channels, block {cfg.block_size}"


class StopOnCtrlC:
    """Turns the first Ctrl-C into a request to stop after the current step; a second one interrupts."""

    def __init__(self) -> None:
        self.requested = False
        self._previous = None

    def _handler(self, signum, frame) -> None:
        self.requested = True
        signal.signal(signal.SIGINT, self._previous or signal.default_int_handler)  # second Ctrl-C: now

    def __enter__(self) -> StopOnCtrlC:
        try:
            self._previous = signal.signal(signal.SIGINT, self._handler)
        except ValueError:  # not the main thread: Ctrl-C behaves as usual
            self._previous = None
        return self

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)
