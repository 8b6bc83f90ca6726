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

Data parallel (lesson 13). Started by `mpiexec -n N`, train() finds an MPI world (minigpt/parallel/comm.py)
and every rank runs this same loop: the same global batch of N x batch_size rows from the shared stream,
its own slice (batches.shard), gradients summed across ranks inside train_step (one all-reduce of a flat
buffer, before clipping), the same AdamW step everywhere. Rank 0 alone prints and writes files; evaluation
losses are summed from the ranks' slices; the weights' checksums are compared at every evaluation. Each
rank's dropout masks come from (seed, 1, it, rank), so nothing per rank needs saving. Decisions are
collective: a NaN anywhere is a NaN in every rank's sum, Ctrl-C is agreed on each step (comm.any), and an
unexpected error on one rank aborts them all (MPI_Abort) instead of leaving the others waiting. A resume
needs the same N (state.json records world_size). With one process none of this runs.

Step engine. On two or more cores, with engines on and no dropout, one process splits each step's batch
over worker processes (minigpt/parallel/team.py, `team_for`): each runs model.gpt_loss_and_grads on its rows
with one BLAS thread, and the parts' gradients, weighted by their counted targets, add up to the batch's
(the same numbers to rounding); the workers also clip and step their shard of AdamW, and evaluate
(Run.engine). Deciding, logging and checkpoints stay here.

ZeRO-1 (--zero 1, lesson 13): the optimizer is a minigpt/parallel/zero.py ZeroAdamW, and train_step hands it
the rank's unsummed gradients: reduce-scatter, the global norm from the shards, AdamW on this rank's 1/N of
the parameters, all-gather; the same run as without it, to rounding. Saving all-gathers the moments, so
the checkpoint is the same files; the zero setting must stay the same on resume. With one process --zero 1
is accepted and ignored (nothing to shard; the log says so).

What this file deliberately does not do: prepare datasets (the command line and minigpt/datasets/ do), read
or write files itself (minigpt/files/checkpoint.py, logbook.py), mixed precision, or GPUs.
"""

from __future__ import annotations

import hashlib
import math
import signal
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from minigpt import engines, optim
from minigpt.datasets.prepared import load_tokenizer
from minigpt.files import checkpoint
from minigpt.files.boundary import get_field
from minigpt.files.models import load_model
from minigpt.files.paths import data_dir
from minigpt.finetune.lora import LoRAConfig, LoRAGPT, lora_state
from minigpt.layers.parallel import n_threads
from minigpt.model import GPT, GPTConfig
from minigpt.parallel.allreduce import allreduce_sum, pack, unpack
from minigpt.parallel.comm import Comm, ParallelError, Single, world
from minigpt.parallel.team import Team, TeamError
from minigpt.parallel.zero import ZeroAdamW
from minigpt.sampling import generate
from minigpt.training.batches import (
    Data,
    TokenBatches,
    estimate_loss_shard,
    for_ranks,
    load_token_data,
    shard,
)
from minigpt.training.config import MODEL_KEYS, TrainConfig
from minigpt.training.logbook import Logbook

PLOT_EVERY_S = 10.0  # redraw loss.png at an evaluation only if the last drawing is older than this
TEAM_MIN_FLOPS = 2e11  # training work left below which starting the step's worker processes does not pay
TEAM_MAX_WORKERS = 8   # each worker is a Python process of its own (~100 MB): no more than this many


class TrainingDiverged(RuntimeError):
    """The loss, the gradient norm or the weights became NaN or inf; last/ still holds the last good
    checkpoint."""


def lr_at(it: int, cfg: TrainConfig) -> float:
    if not cfg.lr_decay_iters:
        return cfg.lr
    return optim.cosine_lr(it, cfg.lr, cfg.warmup_iters, cfg.lr_decay_iters, cfg.min_lr)


def train_step(model: GPT | LoRAGPT | TeamModel, opt: optim.Optimizer,
               batches: list[tuple[np.ndarray, np.ndarray]], grad_clip: float = 1.0,
               dropout_rng: np.random.Generator | None = None, comm: Comm | None = None,
               weights: list[float] | None = None) -> tuple[float, float]:
    """One optimizer step on the mean loss of the micro-batches; returns (mean loss, norm before clipping).

    Gradient accumulation: each micro-batch's gradients are scaled by 1/n and summed, which is the gradient
    of the mean of the n losses - what one batch n times bigger gives, in 1/n of the memory.
    grad_clip 0 means no clipping. The weights are not touched when the loss or the norm is not finite.

    Data parallel (comm of size N > 1, lesson 13): the micro-batches are this rank's slices, `weights` their
    shares of the global batches (batches.shard); gradients and loss, scaled by weight/n, are summed over
    the ranks by one all-reduce of a single flat buffer, between accumulation and clipping. Every rank then
    clips and steps with the same numbers, and a NaN on one rank is a NaN on all: they stop together.
    With a ZeroAdamW (ZeRO-1), the reduction, clipping and step are its reduce_and_step instead.
    """
    if not batches:
        raise ValueError("train_step needs at least one (x, y) batch")
    parallel = comm is not None and comm.size > 1
    if parallel and (weights is None or len(weights) != len(batches)):
        raise ValueError("train_step on several ranks needs one weight per micro-batch (batches.shard)")
    if isinstance(model, TeamModel) and model.team.optimizer is opt and len(batches) == 1 and not parallel:
        x, y = batches[0]                          # the step engine: gradients, clipping and AdamW on workers
        if x.shape[0] <= model.team.max_rows:
            return model.team.step(opt, x, y, grad_clip)
    total, loss_sum = None, 0.0
    scale = 1.0 / len(batches)
    for i, (x, y) in enumerate(batches):
        loss, grads = model.loss_and_grads(x, y, rng=dropout_rng)
        s = scale * weights[i] if parallel else scale
        loss_sum += float(loss) * (weights[i] if parallel else 1.0)
        if total is None:
            total = grads                                     # the first micro-batch's arrays hold the sum
            if s != 1.0:
                for g in total.values():
                    g *= s
        else:
            optim.accumulate(total, grads, s)
    loss = loss_sum * scale
    if parallel and isinstance(opt, ZeroAdamW):              # ZeRO-1: reduce-scatter, shard step, all-gather
        return opt.reduce_and_step(total, loss, grad_clip)
    if parallel:                                              # sum over the ranks: one flat buffer
        flat = allreduce_sum(comm, pack(total, extras=[loss]))                 # (n + 1,)
        total, extras = unpack(flat, total)
        loss = float(extras[0])
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
    model: GPT | LoRAGPT               # LoRA: the frozen base with adapters; params are the adapters
    opt: optim.AdamW | ZeroAdamW
    data_rng: np.random.Generator      # which windows each step trains on
    drop_rng: np.random.Generator      # dropout masks
    it: int = 0                        # steps taken
    best_val: float = math.inf
    stale: int = 0                     # evaluations since the best val loss
    evaluated: bool = False            # the evaluation at `it` is done (a checkpoint saved right after it)
    start: int = 0                     # where this process began (a resume does not re-save what it loaded)
    comm: Comm = field(default_factory=Single)   # rank 0 of 1, or of an MPI world
    lora: dict[str, Any] | None = None  # LoRA settings and the base's identity, saved in state.json
    engine: TeamModel | None = None     # the step engine (team_for) when it runs: steps and evaluations

    def save(self, name: str, eval_done: bool) -> Path:
        """Write out/<name> (rank 0 only: the other ranks hold the same weights). Under ZeRO-1 every rank
        calls this: the moments are all-gathered first."""
        opt_state = self.opt.state_dict() if isinstance(self.opt, ZeroAdamW) else None   # collective
        if self.comm.rank != 0:
            return self.out / name
        state = {"iter": self.it, "eval_done": eval_done,
                 "best_val": self.best_val if math.isfinite(self.best_val) else None,
                 "model_config": asdict(self.model.config), "train_config": asdict(self.cfg),
                 "rng": {"data": self.data_rng.bit_generator.state,
                         "dropout": self.drop_rng.bit_generator.state},
                 "dataset": self.data.name, "dataset_sha256": self.data.sha256, "stale_evals": self.stale,
                 "world_size": self.comm.size}
        if self.lora is not None:
            state["lora"] = self.lora
        checkpoint.save(self.out / name, self.model, opt_state or self.opt.state_dict(), state,
                        self.data.tokenizer_file)
        return self.out / name

    def due(self, interval: int) -> bool:
        return self.it % interval == 0 or self.it == self.cfg.max_iters


def train(cfg: TrainConfig, out_dir: str | Path, data: Data | None = None, *, resume: bool = False,
          init_from: str | Path | None = None, progress: bool = True, sample: bool = True,
          log=print, comm: Comm | None = None, lora: LoRAConfig | None = None) -> dict[str, Any]:
    """Run (or continue) a training run in out_dir; returns a summary dict (iters, losses, time, ...).

    data: the batch sources (default: the prepared dataset data/<cfg.dataset>); fine-tuning passes task
    batches (minigpt/finetune/run.py). lora: train LoRA adapters on the frozen init_from model instead of
    every weight (minigpt/finetune/lora.py); a resumed LoRA run takes its settings from its checkpoint.
    comm: the ranks to train with (default: parallel.comm.world(), an MPI world under mpiexec, else one
    process). With N ranks, cfg.batch_size is per rank: every step trains on N x batch_size rows; rank 0
    alone prints and writes files.
    """
    out = Path(out_dir)
    comm = world() if comm is None else comm
    if data is None:
        data = load_token_data(data_dir() / cfg.dataset, cfg.batch_size, cfg.block_size)
    data = for_ranks(data, comm.size)                       # every rank draws the same global batches
    if comm.rank != 0:
        log, progress = _silent, False
    try:
        return _train(cfg, out, data, resume, init_from, progress, sample, log, comm, lora)
    except (TrainingDiverged, ParallelError):
        raise                                               # decided by every rank together
    except BaseException as exc:
        if comm.size > 1:                                   # the others would wait for us forever
            print(f"minigpt: rank {comm.rank} of {comm.size}: {type(exc).__name__}: {exc}; stopping every "
                  "rank", file=sys.stderr, flush=True)
            time.sleep(0.5)                                 # let mpiexec forward the line before it kills
            comm.abort(1)
        raise


def _train(cfg: TrainConfig, out: Path, data: Data, resume: bool, init_from: str | Path | None,
           progress: bool, sample: bool, log, comm: Comm, lora: LoRAConfig | None = None) -> dict[str, Any]:
    run = start_run(cfg, out, data, resume, init_from, log, comm, lora)
    comm.barrier()                                          # every rank has read before rank 0 writes
    book = Logbook(out / "log.jsonl", run.it, run.evaluated, write=comm.rank == 0)
    bar = tqdm(total=cfg.max_iters, initial=run.it, disable=not progress, dynamic_ncols=True, unit="it")
    say = bar.write if progress else log
    t_start, last_plot, interrupted, stopped_early = time.time(), 0.0, False, False
    last = {"train_loss": None, "val_loss": None}
    team = team_for(cfg, run, comm, log)
    run.engine = None if team is None else TeamModel(run.model, team)
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
                if comm.any(stop.requested):                                   # all ranks agree
                    run.save("last", eval_done=False)
                    book.plot(out / "loss.png", _title(cfg, data))
                    log(f"\ninterrupted: saved {out / 'last'} at iter {run.it}; continue with --resume")
                    interrupted = True
                    break
                t0 = time.perf_counter()
                run.opt.lr = lr_at(run.it, cfg)                                # learning rate
                batches = [data.train.get_batch(run.data_rng) for _ in range(cfg.grad_accum)]   # batch
                if comm.size == 1:
                    loss, norm = train_step(run.engine or run.model, run.opt, batches, cfg.grad_clip,
                                            run.drop_rng)
                else:                                                          # this rank's slices
                    parts = [shard(x, y, comm.rank, comm.size) for x, y in batches]
                    loss, norm = train_step(run.model, run.opt, [(x, y) for x, y, _ in parts], cfg.grad_clip,
                                            _rank_dropout(cfg, run.it, comm), comm, [w for *_, w in parts])
                check_finite(run, loss, norm)                                  # before anything is saved
                dt = time.perf_counter() - t0
                if run.it % cfg.log_interval == 0:
                    book.emit({"kind": "train", "iter": run.it, "loss": loss, "lr": run.opt.lr,
                               "grad_norm": norm, "ms": round(dt * 1000, 2)})
                    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{run.opt.lr:.2e}",
                                    tok_s=f"{len(batches[0][0]) * cfg.block_size * cfg.grad_accum / dt:,.0f}")
                bar.update(1)
                run.it += 1
    finally:
        bar.close()
        book.close()
        if team is not None:
            team.close()
    elapsed = time.time() - t_start
    best = run.best_val if math.isfinite(run.best_val) else None
    summary = {"iter": run.it, **last, "best_val": best, "seconds": round(elapsed, 1),
               "interrupted": interrupted, "stopped_early": stopped_early, "out": str(out)}
    if not interrupted:
        val = "not re-evaluated" if last["val_loss"] is None else f"{last['val_loss']:.4f}"
        log(f"done: {run.it} iterations in {elapsed:.0f} s; val loss {val} (best {run.best_val:.4f}); "
            f"checkpoints in {out}/last and {out}/best")
        if sample and cfg.sample_tokens > 0 and comm.rank == 0:
            model = run.model.merged() if isinstance(run.model, LoRAGPT) else run.model
            print_sample(model, load_tokenizer(data.tokenizer_file), cfg, log)
    return summary


def team_for(cfg: TrainConfig, run: Run, comm: Comm, log=print) -> Team | None:
    """The step engine for this run (minigpt/parallel/team.py), or None to step in this process.

    A team when engines are on, two or more cores (or BLAS threads set), one process (MPI already splits
    the batch), no dropout, a plain GPT (not LoRA), a batch of 4 rows or more (one worker per core, up to
    TEAM_MAX_WORKERS, each at least 2 rows) and at least TEAM_MIN_FLOPS of training left (starting the
    workers takes ~0.2-0.5 s). A team that cannot start is reported and the run goes on without it.
    Without gradient accumulation the team adopts AdamW too: the model's parameters and the moments move
    into its shared file, and train_step hands it the whole step.
    """
    threads = n_threads()
    if (not engines.enabled() or threads < 2 or comm.size > 1 or cfg.dropout > 0 or cfg.batch_size < 4
            or type(run.model) is not GPT):
        return None
    rows = cfg.batch_size
    work = run.model.flops_per_token() * rows * cfg.block_size * cfg.grad_accum * (cfg.max_iters - run.it)
    if work < TEAM_MIN_FLOPS:
        return None
    workers = min(threads, rows // 2, TEAM_MAX_WORKERS)      # at least 2 rows each
    if workers < 2:
        return None
    try:
        team = Team(run.model.config, run.model.dtype, workers, rows)
    except (TeamError, OSError) as error:
        log(f"engines: the step's worker processes did not start ({error}); stepping in this process")
        return None
    if type(run.opt) in (optim.Adam, optim.AdamW) and cfg.grad_accum == 1:
        try:
            team.adopt(run.model.params, run.opt)           # clipping and AdamW on the workers too
        except BaseException:
            team.close()
            raise
    log(f"engines: each step's batch is split over {team.n_workers} worker processes "
        "(minigpt/parallel/team.py; MINIGPT_ENGINES=0 steps in this process)")
    return team


class TeamModel:
    """A GPT whose loss_and_grads runs on a Team: what train_step calls. Batches the team was not made
    for (more rows than it holds) go to the model itself."""

    def __init__(self, model: GPT, team: Team):
        self.model, self.team = model, team

    def loss_and_grads(self, idx: np.ndarray, targets: np.ndarray, rng: np.random.Generator | None = None,
                       ignore_index: int = -100) -> tuple[float, dict[str, np.ndarray]]:
        if idx.ndim != 2 or idx.shape[0] > self.team.max_rows:
            return self.model.loss_and_grads(idx, targets, rng, ignore_index)
        return self.team.loss_and_grads(self.model.params, idx, targets, ignore_index)

    def loss(self, idx: np.ndarray, targets: np.ndarray, ignore_index: int = -100) -> float:
        """GPT.loss (eval mode) on the team: what the loop's evaluations call."""
        return self.team.loss(self.model.params, idx, targets, ignore_index)


def evaluate(run: Run, book: Logbook, say, t_start: float) -> dict[str, float]:
    """Train and val loss on fresh batches; save best/ when val improved. Under MPI, first check that every
    rank holds the same parameters; each rank evaluates its slice of the global batches."""
    it = run.it
    check_same_params(run)
    train_loss, val_loss = (_eval_loss(run, source, split) for split, source in
                            enumerate((run.data.train, run.data.val)))
    if run.comm.size > 1 and isinstance(run.data.train, TokenBatches):
        train_loss, val_loss = (float(v) for v in allreduce_sum(run.comm, np.array([train_loss, val_loss])))
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


def _eval_loss(run: Run, source, split: int) -> float:
    """The mean eval loss (one process), or this rank's part of it (random windows under MPI); task
    sources evaluate a fixed subset, which every rank computes whole (the same number everywhere)."""
    rng = _eval_rng(run.cfg, run.it, split)
    if run.comm.size > 1 and isinstance(run.data.train, TokenBatches):
        return estimate_loss_shard(source, run.model, run.cfg.eval_iters, rng, run.comm.rank, run.comm.size)
    return source.estimate_loss(run.engine or run.model, run.cfg.eval_iters, rng)


def check_same_params(run: Run) -> None:
    """Under MPI: every rank must hold bit-identical parameters (they took the same steps). A checksum of
    them (sha256 over the canonical order) is compared across ranks; a mismatch stops every rank."""
    if run.comm.size == 1:
        return
    digest = hashlib.sha256()
    for p in run.model.params.values():
        digest.update(np.ascontiguousarray(p).tobytes())
    mine = np.frombuffer(digest.digest()[:8], dtype=np.int64).copy()          # (1,)
    low, high = run.comm.allreduce_(mine.copy(), "min"), run.comm.allreduce_(mine.copy(), "max")
    if low[0] != high[0]:
        raise ParallelError(f"iter {run.it}: the ranks' parameters differ (checksums {low[0]:#x} .. "
                            f"{high[0]:#x}): they no longer train the same model. Nothing was saved at this "
                            f"iteration; resume from {run.out / 'last'} (mixed library versions or "
                            "hardware between machines can cause this)")


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
              log, comm: Comm | None = None, lora: LoRAConfig | None = None) -> Run:
    """A fresh run (weights initialised or --init-from, with LoRA adapters if asked), or the run in
    out/last restored exactly."""
    comm = Single() if comm is None else comm
    if comm.rank == 0:
        checkpoint.remove_stale_temporaries(out)         # what a kill during a save left behind
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
        identity = None
        if lora is not None:                             # freeze the model; train adapters beside it
            if init_from is None:
                raise ValueError("LoRA adapts a trained model: give the base with --init-from")
            if cfg.optimizer != "adamw":
                raise ValueError("LoRA trains its adapters with AdamW; --optimizer muon is for a whole model")
            identity = lora_state(lora, model, str(Path(init_from).expanduser().resolve()))
            model = LoRAGPT(model, lora, seed=cfg.seed)
        opt = make_optimizer(cfg, model.params, comm)
        run = Run(cfg, out, data, model, opt, data_rng, drop_rng, comm=comm, lora=identity)
    else:
        try:
            identity = checkpoint.lora_info(out / "last")
            base = None if identity is None else _init_from(identity["base"], mconf, dtype)
            ckpt = checkpoint.load(out / "last", base=base)
        except checkpoint.CheckpointError as exc:
            raise checkpoint.CheckpointError(f"cannot resume: {exc}. Start without --resume to begin a new "
                                             "run") from None
        saved = ckpt.state["train_config"]
        changed = [k for k in MODEL_KEYS if saved.get(k) != getattr(cfg, k)]
        if changed or ckpt.model.config != mconf:
            raise ValueError(f"--resume: the checkpoint in {out}/last has a different model "
                             f"({ {k: saved.get(k) for k in changed} or asdict(ckpt.model.config)}); "
                             "resume with its settings, or start a new run")
        ranks = get_field(ckpt.state, "world_size", int, str(ckpt.folder / "state.json"), lo=1, hi=10**6,
                          default=1)
        if ranks != comm.size:
            raise ParallelError(f"{out}/last was trained on {ranks} rank(s) (global batch {ranks} x "
                                f"{cfg.batch_size}); this is {comm.size}. Resume with `mpiexec -n {ranks} "
                                "...` (or without mpiexec for 1), or start a new run with --init-from")
        keys = ("r", "alpha", "dropout", "targets")
        saved_lora = None if identity is None else {k: identity[k] for k in keys}
        if lora is not None and saved_lora != {"r": lora.r, "alpha": float(lora.alpha),
                                               "dropout": float(lora.dropout), "targets": list(lora.targets)}:
            raise ValueError(f"--resume: {out}/last was not trained with these LoRA settings (its own: "
                             f"{saved_lora}); resume without the LoRA options (the checkpoint's are used), "
                             "or start a new run")
        if ckpt.state.get("dataset_sha256") != data.sha256:
            raise ValueError(f"{out}/last was trained on other data than {data.name} (source sha256 "
                             "differs); resume with the same dataset")
        if saved.get("zero", 0) != cfg.zero:
            raise ValueError(f"--resume: {out}/last was trained with --zero {saved.get('zero', 0)}; resume "
                             "with the same setting (or start a new run with --init-from)")
        opt = make_optimizer(cfg, ckpt.model.params, comm)
        opt.load_state_dict(ckpt.optimizer)                  # under ZeRO-1: keeps this rank's shard
        data_rng.bit_generator.state = ckpt.state["rng"]["data"]
        drop_rng.bit_generator.state = ckpt.state["rng"]["dropout"]
        best = ckpt.state.get("best_val")
        run = Run(cfg, out, data, ckpt.model, opt, data_rng, drop_rng, it=ckpt.state["iter"],
                  best_val=math.inf if best is None else float(best),
                  stale=int(ckpt.state.get("stale_evals", 0)), evaluated=bool(ckpt.state.get("eval_done")),
                  comm=comm, lora=identity)
    run.start = run.it
    out.mkdir(parents=True, exist_ok=True)
    ranks = f"; {comm.size} ranks x batch {cfg.batch_size}" if comm.size > 1 else ""
    size = f"model {run.model.num_params():,} parameters"
    if isinstance(run.model, LoRAGPT):
        lc = run.model.lora
        size = (f"model {run.model.base.num_params():,} parameters, frozen; LoRA r {lc.r} "
                f"(alpha {lc.alpha:g}) on {','.join(lc.targets)}: {run.model.num_params():,} trainable")
    log(f"{data.name}: {len(data.train):,} train / {len(data.val):,} val {data.unit}, vocab "
        f"{data.vocab_size}; {size}{ranks}; "
        f"{'resuming at' if resume else 'starting at'} iter {run.it} of {cfg.max_iters}; writing to {out}")
    if isinstance(run.opt, ZeroAdamW):
        mine, whole = run.opt.moment_bytes()
        log(f"ZeRO-1: AdamW moments {mine / 2**20:,.2f} MiB per rank ({mine:,} bytes), vs "
            f"{whole / 2**20:,.2f} MiB unsharded ({comm.size} ranks)")
    elif cfg.zero:
        log("--zero 1 with one process: nothing to shard, the plain AdamW step runs (start under mpiexec "
            "-n N to shard the moments)")
    return run


def make_optimizer(cfg: TrainConfig, params: dict[str, np.ndarray],
                   comm: Comm) -> optim.AdamW | ZeroAdamW | optim.MuonAdamW:
    """AdamW with the run's settings; ZeRO-1's sharded form when cfg.zero and there are several ranks;
    Muon on the blocks' matrices beside AdamW when cfg.optimizer is "muon"."""
    kw = {"lr": cfg.lr, "betas": (cfg.beta1, cfg.beta2), "eps": 1e-8, "weight_decay": cfg.weight_decay}
    if cfg.optimizer == "muon":
        return optim.MuonAdamW(params, muon_lr=cfg.muon_lr, **kw)
    if cfg.zero and comm.size > 1:
        return ZeroAdamW(params, comm, **kw)
    return optim.AdamW(params, **kw)


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


def _rank_dropout(cfg: TrainConfig, it: int, comm: Comm) -> np.random.Generator:
    """Under MPI, each rank's dropout masks come from a generator seeded by (seed, 1, it, rank): different
    on every rank, and nothing to save for an exact resume (one process keeps its single stream)."""
    return np.random.default_rng([cfg.seed, 1, it, comm.rank])


def _silent(_msg: str) -> None:
    """The log of ranks other than 0."""


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
