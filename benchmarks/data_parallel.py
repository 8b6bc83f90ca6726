"""Data-parallel training on this machine: tokens/s of 1 process vs 2 MPI ranks, and the all-reduce's share.

The same global batch (baby shape: 4 layers, 128 channels, block 64; 2 x 12 windows, float32) is trained
three ways, each in its own processes, and the whole step (forward, backward, gradient all-reduce, clip,
AdamW) is timed by its median:

    1 process, 2 BLAS threads      the plain way to use 2 cores
    1 process, 1 BLAS thread       the baseline for the scaling ratio
    mpiexec -n 2, 1 thread each    data parallel: each rank 12 windows, gradients summed by one all-reduce
    the same with ZeRO-1           reduce-scatter, AdamW on half the parameters, all-gather
                                   (minigpt/parallel/zero.py); its AdamW moments per rank are printed too

and, inside the 2-rank run, one all-reduce of the gradients' flat buffer (0.8 M floats, 3.2 MB) timed alone
with MPI's Allreduce (the engine) and with minigpt's ring (the definition). Printed: ms/step, tokens/s, the
scaling ratios, the all-reduce's share of a step, and the ring/engine ratio.

    python benchmarks/data_parallel.py [--steps 20] [--batch 12] [--json]

Needs mpiexec and mpi4py (pip install -e ".[distributed]"); without them only the 1-process rows print.
Needs an otherwise idle machine: on 2 shared cores, other work distorts every number.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from _common import keep_memory, median_ms, set_blas_threads

HERE = Path(__file__).resolve()
SHAPE = {"vocab_size": 65, "block_size": 64, "n_layer": 4, "n_head": 4, "n_embd": 128}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=20, help="timed steps per configuration (after 3 warm-up)")
    p.add_argument("--batch", type=int, default=12, help="windows per rank; the global batch is 2x this")
    p.add_argument("--json", action="store_true", help="print the results as one JSON object")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--global-batch", type=int, default=24, help=argparse.SUPPRESS)
    p.add_argument("--zero", action="store_true", help=argparse.SUPPRESS)
    return p.parse_args()


ARGS = parse()
set_blas_threads(ARGS.threads)   # read by BLAS when numpy loads: set before importing it (a worker's count)
keep_memory()                    # the allocator setting the `minigpt` command applies

import numpy as np  # noqa: E402

from minigpt import optim  # noqa: E402
from minigpt.model import GPT, GPTConfig  # noqa: E402
from minigpt.parallel.allreduce import allreduce_sum, pack, ring_allreduce  # noqa: E402
from minigpt.parallel.comm import world  # noqa: E402
from minigpt.parallel.zero import ZeroAdamW  # noqa: E402
from minigpt.training.batches import shard  # noqa: E402
from minigpt.training.loop import train_step  # noqa: E402


def worker(args: argparse.Namespace) -> None:
    """One configuration, in this process (or this rank): prints one JSON line from rank 0."""
    comm = world()
    model = GPT(GPTConfig(**SHAPE, dropout=0.0), seed=0, dtype=np.float32)
    kw = {"lr": 1e-4, "betas": (0.9, 0.99), "weight_decay": 0.1}
    opt = ZeroAdamW(model.params, comm, **kw) if args.zero else optim.AdamW(model.params, **kw)
    rng = np.random.default_rng(0)                       # the same on every rank: the same global batches
    T, V = SHAPE["block_size"], SHAPE["vocab_size"]

    def step() -> None:
        x = rng.integers(0, V, (args.global_batch, T))     # (N*B, T)
        y = rng.integers(0, V, (args.global_batch, T))     # (N*B, T)
        xs, ys, w = shard(x, y, comm.rank, comm.size)
        train_step(model, opt, [(xs, ys)], 1.0, None, comm, [w])

    step_ms = median_ms(step, args.steps, warmup=3)
    result = {"ranks": comm.size, "threads": args.threads, "global_batch": args.global_batch,
              "step_ms": step_ms, "tokens_per_s": args.global_batch * T / step_ms * 1e3}
    if args.zero:
        result["moment_bytes"], result["moment_bytes_unsharded"] = opt.moment_bytes()
    if comm.size > 1 and not args.zero:
        _, grads = model.loss_and_grads(rng.integers(0, V, (1, T)), rng.integers(0, V, (1, T)))
        flat = pack(grads)                                                     # (n,) like a step's buffer
        result["allreduce_floats"] = int(flat.size)
        result["allreduce_ms"] = median_ms(lambda: allreduce_sum(comm, flat.copy()), args.steps, warmup=3)
        result["ring_ms"] = median_ms(lambda: ring_allreduce(comm, flat.copy()), args.steps, warmup=3)
        result["copy_ms"] = median_ms(lambda: flat.copy(), args.steps, warmup=3)
    if comm.rank == 0:
        print(json.dumps(result), flush=True)


def run(cmd: list[str]) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                             "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = str(HERE.parent.parent)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    args = ARGS
    if args.worker:
        worker(args)
        return
    me = [sys.executable, str(HERE), "--worker", "--steps", str(args.steps), "--global-batch",
          str(2 * args.batch)]
    rows = {"1 process, 2 threads": run([*me, "--threads", "2"]),
            "1 process, 1 thread": run([*me, "--threads", "1"])}
    mpiexec = shutil.which("mpiexec")
    if mpiexec:
        rows["2 ranks, 1 thread each"] = run([mpiexec, "-n", "2", *me, "--threads", "1"])
        rows["2 ranks, ZeRO-1"] = run([mpiexec, "-n", "2", *me, "--threads", "1", "--zero"])
    if args.json:
        print(json.dumps(rows))
        return
    print(f"global batch {2 * args.batch} x {SHAPE['block_size']} tokens, baby shape, float32, median of "
          f"{args.steps} steps (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    for name, r in rows.items():
        print(f"  {name:<24} {r['step_ms']:8.1f} ms/step  {r['tokens_per_s']:9,.0f} tokens/s")
    one, two = rows["1 process, 1 thread"], rows["1 process, 2 threads"]
    print(f"  2 threads vs 1 thread: {two['tokens_per_s'] / one['tokens_per_s']:.2f}x")
    if mpiexec:
        mpi = rows["2 ranks, 1 thread each"]
        print(f"  2 ranks vs 1 process, 1 thread: {mpi['tokens_per_s'] / one['tokens_per_s']:.2f}x; "
              f"vs 1 process, 2 threads: {mpi['tokens_per_s'] / two['tokens_per_s']:.2f}x")
        print(f"  all-reduce of {mpi['allreduce_floats']:,} floats: {mpi['allreduce_ms']:.2f} ms with MPI's "
              f"Allreduce ({100 * mpi['allreduce_ms'] / mpi['step_ms']:.1f}% of a step), "
              f"{mpi['ring_ms']:.2f} ms with the ring (ring / engine "
              f"{mpi['ring_ms'] / mpi['allreduce_ms']:.2f}x)")
        z = rows["2 ranks, ZeRO-1"]
        print(f"  ZeRO-1: AdamW moments {z['moment_bytes'] / 2**20:.2f} MiB per rank vs "
              f"{z['moment_bytes_unsharded'] / 2**20:.2f} MiB unsharded; step "
              f"{z['step_ms'] / mpi['step_ms']:.2f}x the plain 2-rank step")
    else:
        print("  (no mpiexec: pip install -e '.[distributed]' for the 2-rank row)")


if __name__ == "__main__":
    main()
