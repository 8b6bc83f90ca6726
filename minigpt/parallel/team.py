"""The step engine: one training step shared by worker processes on this machine, the batch split by rows.

    team = Team(config, np.float32, n_workers=2, max_rows=12)
    loss, grads = team.loss_and_grads(params, idx, targets)   # = model.gpt_loss_and_grads(...) to rounding
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
parent and every worker: the parameters (written by the parent before each step; the workers only read
them), and per worker its ids, targets and gradients. A worker is `python -m minigpt.parallel.team SPEC`,
started with OPENBLAS_NUM_THREADS=1 in a session of its own (Ctrl-C is the parent's to handle); per step it
reads a 32-byte command from its stdin (rows, T, ignore_index, its weight n_i / n) and answers 24 bytes on
stdout (its mean loss, or the length of an error message that follows). No pickle: raw bytes and one JSON
spec on the command line. A worker exits when its stdin closes, so it never outlives the parent; the file
is unlinked as soon as every worker has mapped it (POSIX), so nothing is left behind after a crash.

train() uses a team (minigpt/training/loop.py: `team_for`) when engines are on, there are two or more
cores (or BLAS threads set), one process (no MPI), no dropout, a plain GPT, and enough work to pay for
starting the workers (~0.5 s). MINIGPT_ENGINES=0 turns it off with every other engine.

What this file deliberately does not do: dropout (the workers' masks would not be the definition's draws),
LoRA models, evaluation, the optimizer step (the parent clips and steps as before), or anything across
machines (that is MPI: comm.py).
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from minigpt.allocator import keep_freed_memory
from minigpt.layers.parallel import split
from minigpt.model import GPTConfig, check_idx, gpt_loss_and_grads, param_shapes

COMMAND = struct.Struct("<qqqd")   # rows, T, ignore_index, weight n_i / n      (rows 0: exit)
REPLY = struct.Struct("<8sdq")     # b"done" or b"fail" (padded), the part's mean loss, error message bytes
ALIGN = 64                         # every region starts on a cache line
STARTUP_S = 60.0                   # a worker that has not said "ready" by then is reported as failed


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
    params = {name: take(int(np.prod(shape)) * dtype.itemsize) for name, shape in shapes.items()}
    ids_bytes = max_rows * config.block_size * 8                      # int64
    workers = [{"ids": take(ids_bytes), "targets": take(ids_bytes),
                "grads": {name: take(int(np.prod(shape)) * dtype.itemsize) for name, shape in shapes.items()}}
               for _ in range(n_workers)]
    return {"params": params, "workers": workers}, max(offset, ALIGN)


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
    """n_workers processes that each compute the loss and gradients of their rows of a batch."""

    def __init__(self, config: GPTConfig, dtype=np.float32, n_workers: int = 2, max_rows: int = 1):
        self.config, self.dtype = config, np.dtype(dtype)
        self.n_workers, self.max_rows = int(n_workers), int(max_rows)
        if self.n_workers < 1 or self.max_rows < 1:
            raise ValueError(f"a team needs n_workers >= 1 and max_rows >= 1, got {n_workers}, {max_rows}")
        layout, size = _layout(config, self.dtype, self.n_workers, self.max_rows)
        fd, path = tempfile.mkstemp(prefix="minigpt-team-", dir=_shared_dir(size))
        self._path: str | None = path
        self.workers: list[_Worker] = []
        try:
            os.ftruncate(fd, size)
            os.close(fd)
            self._buf = np.memmap(path, dtype=np.uint8, mode="r+", shape=(size,))
            self.params = _views(self._buf, layout["params"], config, self.dtype)
            spec = {"path": path, "config": asdict(config), "dtype": self.dtype.name,
                    "n_workers": self.n_workers, "max_rows": self.max_rows}
            for i, regions in enumerate(layout["workers"]):
                n = self.max_rows * config.block_size
                ids = np.ndarray((n,), np.int64, buffer=self._buf, offset=regions["ids"])
                targets = np.ndarray((n,), np.int64, buffer=self._buf, offset=regions["targets"])
                command = [sys.executable, "-m", "minigpt.parallel.team", json.dumps(spec | {"worker": i})]
                proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        env=_worker_env(), start_new_session=True)
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

    def loss_and_grads(self, params: dict[str, np.ndarray], idx: np.ndarray, targets: np.ndarray,
                       ignore_index: int = -100) -> tuple[float, dict[str, np.ndarray]]:
        """gpt_loss_and_grads(params, idx, targets, config) with the rows split over the workers."""
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
                np.copyto(view, params[name])
        parts = split(B, self.n_workers)
        counted = [int(np.count_nonzero(targets[a:b] != ignore_index)) for a, b in parts]
        total = sum(counted)
        weights = [c / total if total else 0.0 for c in counted]
        busy = self.workers[:len(parts)]
        try:
            for w, (a, b), weight in zip(busy, parts, weights, strict=True):
                w.ids[:(b - a) * T] = idx[a:b].reshape(-1)
                w.targets[:(b - a) * T] = targets[a:b].reshape(-1)
                w.send(COMMAND.pack(b - a, T, ignore_index, weight))
            replies = [REPLY.unpack(w.read(REPLY.size)) for w in busy]
            errors = [(w, w.read(n).decode("utf-8", "replace")) for w, (status, _, n)
                      in zip(busy, replies, strict=True) if status.rstrip(b"\0") != b"done"]
        except BaseException:
            self.close()                                      # the pipes may be mid-message: start over
            raise
        if errors:
            kind, _, message = errors[0][1].partition(": ")
            raise {"ValueError": ValueError, "IndexError": IndexError}.get(kind, TeamError)(message)
        loss = sum(weight * part_loss for weight, (_, part_loss, _) in zip(weights, replies, strict=True))
        grads = {}
        for name in self.params:                             # the parts' weighted gradients, summed
            grads[name] = busy[0].grads[name].copy()
            for w in busy[1:]:
                grads[name] += w.grads[name]
        return float(loss), grads

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
            Path(self._path).unlink(missing_ok=True)
            self._path = None

    def __enter__(self) -> Team:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        if getattr(self, "workers", None):
            self.close()


def _worker_env() -> dict[str, str]:
    """The parent's environment, one BLAS thread, and minigpt importable the way the parent imported it."""
    root = str(Path(__file__).resolve().parents[2])
    path = os.environ.get("PYTHONPATH", "")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1",
               PYTHONPATH=root + (os.pathsep + path if path else ""))
    return env


# ---- the worker's side ------------------------------------------------------------------------------------
def _serve(spec: dict) -> None:
    """Map the shared file, say ready, then answer step commands until stdin closes."""
    config, dtype = GPTConfig(**spec["config"]), np.dtype(spec["dtype"])
    layout, size = _layout(config, dtype, spec["n_workers"], spec["max_rows"])
    regions = layout["workers"][spec["worker"]]
    buf = np.memmap(spec["path"], dtype=np.uint8, mode="r+", shape=(size,))
    params = _views(buf, layout["params"], config, dtype)
    grads = _views(buf, regions["grads"], config, dtype)
    n = spec["max_rows"] * config.block_size
    ids = np.ndarray((n,), np.int64, buffer=buf, offset=regions["ids"])
    targets = np.ndarray((n,), np.int64, buffer=buf, offset=regions["targets"])
    commands, replies = sys.stdin.buffer, os.fdopen(os.dup(sys.stdout.fileno()), "wb", buffering=0)
    sys.stdout = sys.stderr                                   # stdout is the reply pipe: nothing else on it
    replies.write(REPLY.pack(b"ready", 0.0, 0))
    while len(command := commands.read(COMMAND.size)) == COMMAND.size:
        rows, T, ignore_index, weight = COMMAND.unpack(command)
        if rows == 0:
            break
        try:
            loss, part = gpt_loss_and_grads(params, ids[:rows * T].reshape(rows, T),
                                            targets[:rows * T].reshape(rows, T), config, None, ignore_index)
            for name, g in part.items():
                np.multiply(g, weight, out=grads[name])       # this part's share of the batch's mean
            replies.write(REPLY.pack(b"done", loss, 0))
        except Exception as error:                            # noqa: BLE001 - reported to the parent
            message = f"{type(error).__name__}: {error}".encode()
            replies.write(REPLY.pack(b"fail", 0.0, len(message)) + message)


if __name__ == "__main__":
    keep_freed_memory()
    _serve(json.loads(sys.argv[1]))
