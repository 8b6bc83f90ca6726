"""The step engine: one training step shared by worker processes on this machine, the batch split by rows.

    team = Team(config, np.float32, n_workers=2, max_rows=12)
    loss, grads = team.loss_and_grads(params, idx, targets)   # = model.gpt_loss_and_grads(...) to rounding
    team.adopt(model.params, opt)                             # then the whole step on the workers:
    loss, norm = team.step(opt, idx, targets, grad_clip=1.0)  # = train_step(model, opt, [(idx, targets)])
    team.close()

It is lesson 13's data parallelism inside one step of one process, with its definition beside it: the
definition is `gpt_loss_and_grads` on the whole batch; the engine cuts the batch's rows into one part per
worker, each worker runs that same definition on its part, and the parent adds the parts' gradients, each
weighted by its share of the counted targets:

    loss = sum_i (n_i / n) loss_i        grads = sum_i (n_i / n) grads_i      n_i: targets counted in part i

which is the mean over the whole batch again: equal to the definition up to float rounding (the sums over
the batch are grouped differently), and deterministic (the same split and order every step).

Why processes and not the engines' threads (minigpt/layers/parallel.py): a NumPy ufunc gives the GIL back
while it runs, but takes it again after every pass, and on this project's 2-core VM every hand-over costs
microseconds. Two threads running GELU's chain of passes over 64-384 rows each ran 0.7-1.6x as fast as one
thread; a process has a GIL of its own. BLAS splits a matmul over threads well, but at the baby shape half
of a step is element-wise passes, so each worker runs everything with one BLAS thread, on its own core.

How a step goes. Everything moves through one shared file (in /dev/shm where there is one), mapped by the
parent and every worker: the parameters (the workers only read them), and per worker its ids, targets and
gradients. A worker is `python -m minigpt.parallel.team SPEC`, started with OPENBLAS_NUM_THREADS=1 in a
session of its own (Ctrl-C is the parent's to handle); it reads 64-byte commands from its stdin and answers
24 bytes on its stdout (a number, or the length of an error message that follows). No pickle: raw bytes,
and JSON for the spec on its command line. A worker exits when its stdin closes, so it never outlives the
parent; the file is unlinked as soon as every worker has mapped it (POSIX): nothing is left after a crash.

The optimizer step too (`adopt`, then `step`). Clipping and AdamW on 0.8M parameters take ~4.5 ms of a
~40 ms baby step, and while the parent runs them the workers would wait. After `team.adopt(params, opt)`
the parameters and AdamW's two moments live in the shared file (the model's and the optimizer's dicts
point at views of it), each worker owns a shard of the parameter names (largest first, to the least
loaded), and `team.step(opt, x, y, grad_clip)` runs in three rounds: gradients of each part (as above);
each worker adds up the parts' gradients of its shard and measures their norms; the parent sums the norms
in clip_grad_norm's order, and each worker clips its shard and applies optim.Adam._update, the
definition's own per-parameter update, to it. The numbers are bit-identical to the parent doing
clip_grad_norm and opt.step on the summed gradients (tests/test_team.py).

train() uses a team (minigpt/training/loop.py: `team_for`) when engines are on, there are two or more
cores (or BLAS threads set), one process (no MPI), no dropout, a plain GPT, a batch of 4 rows or more, and
enough work to pay for starting the workers (~0.2 s). MINIGPT_ENGINES=0 turns it off with every other
engine.

What this file deliberately does not do: dropout (the workers' masks would not be the definition's draws),
LoRA models, gradient accumulation in the optimizer round (train_step then adds the micro-batches and
steps in the parent), sampling, optimizers other than Adam/AdamW, or anything across machines (MPI:
comm.py). Evaluation it does: `team.loss` is GPT.loss in eval mode, the rows split the same way.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from minigpt import optim
from minigpt.allocator import keep_freed_memory
from minigpt.layers.loss import cross_entropy_forward
from minigpt.layers.parallel import split
from minigpt.model import GPTConfig, check_idx, gpt_forward, gpt_loss_and_grads, param_shapes

COMMAND = struct.Struct("<qqqqdddd")   # what, then three integers and four floats (below)
REPLY = struct.Struct("<8sdq")         # b"done" or b"fail" (padded), a number, error message bytes
EXIT, GRADS, REDUCE, UPDATE, OPTIMIZER, LOSS = range(6)
#   GRADS      rows, T, ignore_index; weight n_i / n        -> the part's mean loss; its weighted gradients
#   LOSS       rows, T, ignore_index                        -> the part's mean loss in eval mode (no grads)
#   REDUCE     parts, use_norm                              -> sums the parts' gradients of its shard into
#                                                              worker 0's region; their norms into "norms"
#   UPDATE     clip (0/1); coef, lr, step_size, bc2_sqrt    -> its shard: g *= coef if clip; Adam._update
#   OPTIMIZER  length of the JSON that follows               -> the optimizer's kind and hyperparameters
ALIGN = 64                             # every region of the shared file starts on a cache line


# Ctrl-C is the parent's to handle (a first one finishes the step and saves): the workers never see it.
_OWN_SESSION = ({"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP} if os.name == "nt"
                else {"start_new_session": True})


class TeamError(RuntimeError):
    """A worker failed to start or died: the team is closed; MINIGPT_ENGINES=0 runs without it."""


def _layout(config: GPTConfig, dtype: np.dtype, n_workers: int, max_rows: int) -> tuple[dict, int]:
    """Byte offsets in the shared file: "params" (name -> offset), per worker "ids", "targets", "grads"."""
    offset = 0

    def take(nbytes: int) -> int:
        nonlocal offset
        start = offset
        offset += -(-nbytes // ALIGN) * ALIGN
        return start

    shapes = param_shapes(config)

    def per_param() -> dict[str, int]:
        return {name: take(int(np.prod(shape)) * dtype.itemsize) for name, shape in shapes.items()}

    layout = {"params": per_param(), "exp_avg": per_param(), "exp_avg_sq": per_param(),
              "norms": take(len(shapes) * 8)}                         # float64, one per parameter
    ids_bytes = max_rows * config.block_size * 8                      # int64
    layout["workers"] = [{"ids": take(ids_bytes), "targets": take(ids_bytes), "grads": per_param()}
                         for _ in range(n_workers)]
    return layout, max(offset, ALIGN)


def shards(config: GPTConfig, n_workers: int) -> list[list[str]]:
    """The parameter names each worker reduces and updates: largest first, each to the least loaded."""
    load, out = [0] * n_workers, [[] for _ in range(n_workers)]
    for name, shape in sorted(param_shapes(config).items(), key=lambda kv: -int(np.prod(kv[1]))):
        i = load.index(min(load))
        out[i].append(name)
        load[i] += int(np.prod(shape))
    return out


def _views(buf: np.ndarray, offsets: dict[str, int], config: GPTConfig, dtype: np.dtype) -> dict:
    """name -> an array of the parameter's shape inside buf, at its offset."""
    shapes = param_shapes(config)
    return {name: np.ndarray(shapes[name], dtype, buffer=buf, offset=offsets[name]) for name in shapes}


def _shared_dir(size: int) -> str:
    """/dev/shm (memory, never disk) where it exists and has room, else the temporary folder if it has.

    The room is checked first: a mapped file that outgrows its filesystem (a container's /dev/shm is often
    64 MB) kills the process with SIGBUS on the first write past the end, instead of raising an error."""
    for folder in ("/dev/shm", tempfile.gettempdir()):
        try:
            fs = os.statvfs(folder)
        except (OSError, AttributeError):                     # no such folder; no statvfs (Windows)
            if folder != "/dev/shm" and os.path.isdir(folder):
                return folder
            continue
        if os.access(folder, os.W_OK) and fs.f_bavail * fs.f_frsize >= 1.25 * size:
            return folder
    raise TeamError(f"no room for the team's {size / 2**20:,.0f} MiB shared file in /dev/shm or "
                    f"{tempfile.gettempdir()}")


class _Worker:
    """The parent's handle on one worker: its process, pipes and views of its regions."""

    def __init__(self, proc: subprocess.Popen, ids: np.ndarray, targets: np.ndarray, grads: dict):
        self.proc, self.ids, self.targets, self.grads = proc, ids, targets, grads

    def read(self, nbytes: int) -> bytes:
        data = self.proc.stdout.read(nbytes)
        if len(data) != nbytes:
            raise self.stopped()
        return data

    def send(self, command: bytes) -> None:
        try:
            self.proc.stdin.write(command)
            self.proc.stdin.flush()
        except OSError as error:                              # BrokenPipeError: it is gone already
            raise self.stopped() from error

    def stopped(self) -> TeamError:
        return TeamError(f"team worker (pid {self.proc.pid}) stopped (exit code {self.proc.poll()}); "
                         "run with MINIGPT_ENGINES=0 to train without it")


class Team:
    """n_workers processes that each compute the loss and gradients of their rows of a batch, and, once
    the team has adopted an Adam/AdamW, clip and update their shard of the parameters."""

    def __init__(self, config: GPTConfig, dtype=np.float32, n_workers: int = 2, max_rows: int = 1):
        self.config, self.dtype = config, np.dtype(dtype)
        self.n_workers, self.max_rows = int(n_workers), int(max_rows)
        if self.n_workers < 1 or self.max_rows < 1:
            raise ValueError(f"a team needs n_workers >= 1 and max_rows >= 1, got {n_workers}, {max_rows}")
        layout, size = _layout(config, self.dtype, self.n_workers, self.max_rows)
        self.workers: list[_Worker] = []
        self._path: str | None = None
        self.optimizer = None                                 # the adopted optimizer, if any
        fd, path = tempfile.mkstemp(prefix="minigpt-team-", dir=_shared_dir(size))
        self._path = path
        try:
            try:
                os.ftruncate(fd, size)
            finally:
                os.close(fd)
            self._buf = np.memmap(path, dtype=np.uint8, mode="r+", shape=(size,))
            self.params = _views(self._buf, layout["params"], config, self.dtype)
            self.moments = {kind: _views(self._buf, layout[kind], config, self.dtype)
                            for kind in ("exp_avg", "exp_avg_sq")}
            self.norms = np.ndarray((len(self.params),), np.float64, buffer=self._buf, offset=layout["norms"])
            spec = {"path": path, "config": asdict(config), "dtype": self.dtype.name,
                    "n_workers": self.n_workers, "max_rows": self.max_rows}
            for i, regions in enumerate(layout["workers"]):
                n = self.max_rows * config.block_size
                ids = np.ndarray((n,), np.int64, buffer=self._buf, offset=regions["ids"])
                targets = np.ndarray((n,), np.int64, buffer=self._buf, offset=regions["targets"])
                command = [sys.executable, "-m", "minigpt.parallel.team", json.dumps(spec | {"worker": i})]
                proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        env=_worker_env(), cwd=_ROOT, **_OWN_SESSION)
                self.workers.append(_Worker(proc, ids, targets, _views(self._buf, regions["grads"], config,
                                                                        self.dtype)))
            for w in self.workers:
                status, _, _ = REPLY.unpack(w.read(REPLY.size))
                if status.rstrip(b"\0") != b"ready":
                    raise TeamError(f"team worker (pid {w.proc.pid}) did not start: {status!r}")
            if os.name == "posix":
                os.unlink(path)                               # every process has it mapped: nothing to leak
                self._path = None
        except BaseException:
            self.close()
            raise

    # ---- the gradients: every worker its rows ----------------------------------------------------------
    def loss_and_grads(self, params: dict[str, np.ndarray], idx: np.ndarray, targets: np.ndarray,
                       ignore_index: int = -100) -> tuple[float, dict[str, np.ndarray]]:
        """gpt_loss_and_grads(params, idx, targets, config) with the rows split over the workers."""
        loss, busy = self._grads(params, idx, targets, ignore_index)
        grads = {}
        for name in self.params:                             # the parts' weighted gradients, summed
            grads[name] = busy[0].grads[name].copy()
            for w in busy[1:]:
                grads[name] += w.grads[name]
        return loss, grads

    def loss(self, params: dict[str, np.ndarray], idx: np.ndarray, targets: np.ndarray,
             ignore_index: int = -100) -> float:
        """GPT.loss in eval mode (mean cross-entropy over the counted targets, no gradients), the rows split
        over the workers, max_rows at a time: an evaluation batch may be larger than a training one."""
        total, counted = 0.0, 0
        for start in range(0, len(idx), self.max_rows):
            x, y = idx[start:start + self.max_rows], np.asarray(targets)[start:start + self.max_rows]
            parts, weights, busy = self._stage(params, x, y, ignore_index)
            T = x.shape[1]
            losses = self._round(busy, [COMMAND.pack(LOSS, b - a, T, ignore_index, 0.0, 0.0, 0.0, 0.0)
                                        for a, b in parts])
            n = int(np.count_nonzero(y != ignore_index))
            total += n * sum(w * loss for w, loss in zip(weights, losses, strict=True))   # the chunk's sum
            counted += n
        return total / counted if counted else 0.0

    def _grads(self, params, idx, targets, ignore_index) -> tuple[float, list[_Worker]]:
        """The GRADS round: each busy worker's weighted gradients in its region; the batch's mean loss."""
        parts, weights, busy = self._stage(params, idx, targets, ignore_index)
        T = idx.shape[1]
        losses = self._round(busy, [COMMAND.pack(GRADS, b - a, T, ignore_index, weight, 0.0, 0.0, 0.0)
                                    for (a, b), weight in zip(parts, weights, strict=True)])
        return float(sum(weight * loss for weight, loss in zip(weights, losses, strict=True))), busy

    def _stage(self, params, idx, targets, ignore_index):
        """Check the batch, bring the parameters in, cut the rows into parts and write each busy worker's
        ids and targets: (parts, their weights n_i / n, the busy workers)."""
        if not self.workers:
            raise TeamError("the team is closed")
        check_idx(idx, self.config)
        targets = np.asarray(targets)
        B, T = idx.shape
        if B > self.max_rows or targets.shape != idx.shape:
            raise ValueError(f"the team was made for at most {self.max_rows} rows and idx, targets of one "
                             f"shape; got idx {idx.shape}, targets {targets.shape}")
        for name, view in self.params.items():               # the workers read the parameters from here
            if not np.shares_memory(params[name], view):
                if self.optimizer is not None:
                    raise ValueError(f"this team holds an adopted model's parameters; {name} is another "
                                     "array (copying it in would overwrite that model)")
                np.copyto(view, params[name])
        parts = split(B, self.n_workers)
        counted = [int(np.count_nonzero(targets[a:b] != ignore_index)) for a, b in parts]
        total = sum(counted)
        weights = [c / total if total else 0.0 for c in counted]
        busy = self.workers[:len(parts)]
        for w, (a, b) in zip(busy, parts, strict=True):
            w.ids[:(b - a) * T] = idx[a:b].reshape(-1)
            w.targets[:(b - a) * T] = targets[a:b].reshape(-1)
        return parts, weights, busy

    def _round(self, workers: list[_Worker], commands: list[bytes]) -> list[float]:
        """Send each worker its command, wait for every answer; a failure is raised as the worker's error
        (ValueError and IndexError keep their type), a broken exchange closes the team."""
        try:
            for w, command in zip(workers, commands, strict=True):
                w.send(command)
            replies = [REPLY.unpack(w.read(REPLY.size)) for w in workers]
            errors = [w.read(n).decode("utf-8", "replace") for w, (status, _, n)
                      in zip(workers, replies, strict=True) if status.rstrip(b"\0") != b"done"]
        except BaseException:
            self.close()                                      # the pipes may be mid-message: start over
            raise
        if errors:
            kind, _, message = errors[0].partition(": ")
            raise {"ValueError": ValueError, "IndexError": IndexError}.get(kind, TeamError)(message)
        return [value for _, value, _ in replies]

    def _everyone(self, command: bytes) -> None:
        self._round(self.workers, [command] * len(self.workers))

    # ---- the optimizer step: every worker its shard of the parameters ------------------------------
    def adopt(self, params: dict[str, np.ndarray], opt: optim.Adam) -> None:
        """Move the parameters and the optimizer's moments into the shared file: params[name],
        opt.params[name] and opt.state[kind][name] become views of it (same values), and the workers
        learn the optimizer's settings. After this, step() runs clipping and the update on the workers."""
        if type(opt) not in (optim.Adam, optim.AdamW):
            raise TypeError(f"a team steps Adam and AdamW only, not {type(opt).__name__}")
        for name, view in self.params.items():
            np.copyto(view, params[name])
            params[name] = opt.params[name] = view
            for kind, views in self.moments.items():
                np.copyto(views[name], opt.state[kind][name])
                opt.state[kind][name] = views[name]
        settings = json.dumps({"kind": type(opt).__name__, "betas": opt.betas, "eps": opt.eps,
                               "weight_decay": opt.weight_decay}).encode()
        self._everyone(COMMAND.pack(OPTIMIZER, len(settings), 0, 0, 0.0, 0.0, 0.0, 0.0) + settings)
        self.optimizer = opt

    def step(self, opt: optim.Adam, idx: np.ndarray, targets: np.ndarray, grad_clip: float,
             ignore_index: int = -100) -> tuple[float, float]:
        """One training step of the adopted optimizer on this batch: (loss, gradient norm before clipping),
        as train_step returns them. grad_clip 0: no clipping. Nothing changes when loss or norm is not
        finite."""
        if opt is not self.optimizer:
            raise ValueError("team.step needs the optimizer the team adopted (team.adopt(params, opt))")
        loss, busy = self._grads(self.params, idx, targets, ignore_index)
        self._everyone(COMMAND.pack(REDUCE, len(busy), int(grad_clip > 0), 0, 0.0, 0.0, 0.0, 0.0))
        squares = 0.0                                         # in clip_grad_norm's order, and its way
        for value in self.norms:
            squares += float(value) ** 2 if grad_clip > 0 else float(value)
        norm = math.sqrt(squares)
        if not (math.isfinite(loss) and math.isfinite(norm)):
            return loss, norm                                 # train_step's rule: no step
        coef = grad_clip / (norm + 1e-6) if grad_clip > 0 else 1.0
        opt.t += 1
        step_size = opt.lr / (1.0 - opt.betas[0] ** opt.t)    # exactly Adam.step's two numbers
        bc2_sqrt = math.sqrt(1.0 - opt.betas[1] ** opt.t)
        self._everyone(COMMAND.pack(UPDATE, int(coef < 1.0), 0, 0, coef, opt.lr, step_size, bc2_sqrt))
        return loss, norm

    def close(self) -> None:
        """Stop the workers and remove the shared file. Safe to call twice."""
        for w in self.workers:
            try:
                w.proc.stdin.close()                          # EOF: the worker's loop ends
            except OSError:
                pass
        for w in self.workers:
            try:
                w.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()
            w.proc.stdout.close()
        self.workers = []
        if self._path is not None:
            try:
                Path(self._path).unlink(missing_ok=True)
            except OSError:                                   # Windows: still mapped by adopted arrays
                pass
            self._path = None

    def __enter__(self) -> Team:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "workers", None):
            self.close()


_ROOT = str(Path(__file__).resolve().parents[2])   # the folder holding this minigpt package


def _worker_env() -> dict[str, str]:
    """The parent's environment, one BLAS thread, and this very minigpt first on the path. (The worker also
    starts in _ROOT: `python -m` puts the current folder first, which could hold another minigpt.)"""
    path = os.environ.get("PYTHONPATH", "")
    return dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
                PYTHONPATH=_ROOT + (os.pathsep + path if path else ""))


# ---- the worker's side ------------------------------------------------------------------------------------
def _serve(spec: dict) -> None:
    """Map the shared file, say ready, then answer commands until stdin closes."""
    config, dtype = GPTConfig(**spec["config"]), np.dtype(spec["dtype"])
    layout, size = _layout(config, dtype, spec["n_workers"], spec["max_rows"])
    me = spec["worker"]
    buf = np.memmap(spec["path"], dtype=np.uint8, mode="r+", shape=(size,))
    params = _views(buf, layout["params"], config, dtype)
    moments = {kind: _views(buf, layout[kind], config, dtype) for kind in ("exp_avg", "exp_avg_sq")}
    norms = np.ndarray((len(params),), np.float64, buffer=buf, offset=layout["norms"])
    grads = [_views(buf, regions["grads"], config, dtype) for regions in layout["workers"]]   # everyone's
    n = spec["max_rows"] * config.block_size
    ids = np.ndarray((n,), np.int64, buffer=buf, offset=layout["workers"][me]["ids"])
    targets = np.ndarray((n,), np.int64, buffer=buf, offset=layout["workers"][me]["targets"])
    mine = shards(config, spec["n_workers"])[me]              # the names this worker reduces and updates
    index = {name: i for i, name in enumerate(params)}
    opt: optim.Adam | None = None
    commands, replies = sys.stdin.buffer, os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    sys.stdout = sys.stderr                                   # stdout is the reply pipe: nothing else on it
    replies.write(REPLY.pack(b"ready", 0.0, 0))
    while len(command := commands.read(COMMAND.size)) == COMMAND.size:
        what, i1, i2, i3, f1, f2, f3, f4 = COMMAND.unpack(command)
        if what == EXIT:
            break
        try:
            value = 0.0
            if what == GRADS:                                 # rows i1, T i2, ignore_index i3, weight f1
                loss, part = gpt_loss_and_grads(params, ids[:i1 * i2].reshape(i1, i2),
                                                targets[:i1 * i2].reshape(i1, i2), config, None, i3)
                for name, g in part.items():
                    np.multiply(g, f1, out=grads[me][name])   # this part's share of the batch's mean
                value = loss
            elif what == LOSS:                                # rows i1, T i2, ignore_index i3
                logits = gpt_forward(params, ids[:i1 * i2].reshape(i1, i2), config)             # (b, T, V)
                value, _ = cross_entropy_forward(logits, targets[:i1 * i2].reshape(i1, i2), i3)
            elif what == REDUCE:                              # parts i1; i2: norms as clip_grad_norm, or vdot
                for name in mine:
                    total = grads[0][name]
                    for other in grads[1:i1]:
                        total += other[name]                  # the same order as Team.loss_and_grads
                    norms[index[name]] = (np.linalg.norm(total.ravel()) if i2 else np.vdot(total, total))
            elif what == UPDATE:                              # clip i1; coef f1, lr f2, step_size f3, bc2 f4
                opt.lr = f2
                for name in mine:
                    g = grads[0][name]
                    if i1:
                        g *= f1                               # clip_grad_norm's scaling
                    opt._update(name, g, opt._tmp(params[name]), f3, f4)   # the definition's update
            elif what == OPTIMIZER:                           # i1 bytes of JSON follow
                settings = json.loads(commands.read(i1))
                kind = {"Adam": optim.Adam, "AdamW": optim.AdamW}[settings["kind"]]
                opt = kind(params, betas=tuple(settings["betas"]), eps=settings["eps"],
                           weight_decay=settings["weight_decay"])
                opt.state = {k: dict(v) for k, v in moments.items()}
            replies.write(REPLY.pack(b"done", value, 0))
        except Exception as error:                            # noqa: BLE001 - reported to the parent
            message = f"{type(error).__name__}: {error}".encode()
            replies.write(REPLY.pack(b"fail", 0.0, len(message)) + message)


if __name__ == "__main__":
    keep_freed_memory()
    _serve(json.loads(sys.argv[1]))
