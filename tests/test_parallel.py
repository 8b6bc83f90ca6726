"""Data parallelism (lesson 13): the ring all-reduce, batch slices, and real 2-rank runs under mpiexec.

In one process (always run): the simulated ring equals a plain sum for random N and sizes (incl. sizes not
divisible by N, and smaller than N) and leaves every rank bit-identical; slices and their weights; the flat
buffer; a plain process never imports mpi4py, and mpiexec without mpi4py is refused; lesson 13's grader
fails a mutant per classic bug (weights 1/N, ranks summing in their own order, chunks the wrong way round,
a ring that overwrites its inputs). ZeRO-1: the shard step on chunks of the flat buffer equals optim.AdamW's
step bit for bit (weight decay per element across tensor boundaries); --zero 1 with one process is the
plain run, bit for bit, and says so; zero is checked and kept on resume.

Under mpiexec (skipped cleanly when mpiexec or mpi4py is missing; .ci/run installs both): the ring over real
MPI equals MPI's Allreduce and np.sum; `mpiexec -n 2 minigpt train` with batch B equals one process with
batch 2B (float64: relative 1e-12 on every loss and parameter), also across a resume with the engines off
(the ring path); a different world size is refused on resume; a parameter mismatch, a NaN loss on one rank
and a crash on one rank each stop every rank (no hang); the ZeRO-1 collectives (MPI's and the ring's) equal
a sum; `--zero 1` on 2 ranks equals the unsharded 2-rank run (float64, relative 1e-12 on losses and
parameters), across a resume that re-shards the saved moments with the engines off (the ring path), and
its checkpoint has the unsharded run's files and shapes.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minigpt import optim
from minigpt.course.grader import grade
from minigpt.datasets import recipes
from minigpt.files import checkpoint
from minigpt.finetune import run as finetune
from minigpt.parallel import comm as comm_mod
from minigpt.parallel.allreduce import chunk_bounds, pack, ring_schedule, simulate_ring_allreduce, unpack
from minigpt.parallel.comm import ParallelError, launched_size, world
from minigpt.parallel.zero import adamw_shard_step, decay_mask
from minigpt.training import loop
from minigpt.training.batches import shard
from minigpt.training.config import TrainConfig, config_from_preset, resume_config

REPO = Path(__file__).resolve().parent.parent
MPIEXEC = shutil.which("mpiexec")
HAVE_MPI = MPIEXEC is not None and importlib.util.find_spec("mpi4py") is not None
needs_mpi = pytest.mark.skipif(not HAVE_MPI,
                               reason="mpiexec / mpi4py not installed (pip install -e '.[distributed]')")
RTOL = 1e-12                    # float64: one process vs 2 ranks differ only in summation order


# ---- one process -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n, size", [(0, 3), (1, 4), (2, 5), (7, 3), (12, 4), (13, 4), (100, 7)])
def test_chunk_bounds_cover_and_balance(n, size):
    bounds = chunk_bounds(n, size)
    assert len(bounds) == size and bounds[0][0] == 0 and bounds[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:], strict=False))   # contiguous, no gap
    lengths = [b - a for a, b in bounds]
    assert max(lengths) - min(lengths) <= 1


def test_ring_schedule_sends_what_the_left_neighbour_receives():
    for size in (2, 3, 5):
        for step in range(2 * (size - 1)):
            for r in range(size):
                _, sent, _ = ring_schedule(r, size)[step]
                _, _, received = ring_schedule((r + 1) % size, size)[step]
                assert sent == received                  # rank r's message is the one r+1 expects


@pytest.mark.parametrize("seed", range(12))
def test_simulated_ring_equals_sum(seed):
    rng = np.random.default_rng(seed)
    size = int(rng.integers(1, 8))
    n = int(rng.integers(0, 50)) if seed % 2 else int(rng.integers(0, size + 2))   # incl. n < size
    bufs = [rng.standard_normal(n) for _ in range(size)]
    out = simulate_ring_allreduce(bufs)
    want = np.sum(bufs, axis=0) if n else np.zeros(0)
    assert len(out) == size
    for got in out:
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
        assert np.array_equal(got, out[0])              # every rank bit-identical
    assert all(not np.shares_memory(o, b) for o, b in zip(out, bufs, strict=True))   # inputs untouched


def test_simulated_ring_is_not_a_broadcast_of_one_rank():
    out = simulate_ring_allreduce([np.full(5, 1.0), np.full(5, 10.0), np.full(5, 100.0)])
    assert np.array_equal(out[2], np.full(5, 111.0))


def test_pack_unpack_round_trip():
    rng = np.random.default_rng(0)
    grads = {"a": rng.standard_normal((3, 4)), "b": rng.standard_normal(5), "c": rng.standard_normal((2, 1))}
    flat = pack(grads, extras=[7.5, -1.0])
    assert flat.shape == (12 + 5 + 2 + 2,)
    back, extras = unpack(flat, grads)
    for k, g in grads.items():
        assert np.array_equal(back[k], g) and np.shares_memory(back[k], flat)
    assert extras.tolist() == [7.5, -1.0]


def test_shard_slices_and_weights():
    x = np.arange(24).reshape(6, 4)
    y = x + 1
    parts = [shard(x, y, r, 3) for r in range(3)]
    assert np.array_equal(np.concatenate([p[0] for p in parts]), x)
    assert np.array_equal(np.concatenate([p[1] for p in parts]), y)
    assert [p[2] for p in parts] == [1 / 3] * 3
    y_masked = y.copy()
    y_masked[0, :3] = -100                              # fine-tuning: rank 0's slice counts fewer targets
    weights = [shard(x, y_masked, r, 3)[2] for r in range(3)]
    assert weights == [5 / 21, 8 / 21, 8 / 21] and abs(sum(weights) - 1) < 1e-15
    with pytest.raises(ValueError, match="evenly"):
        shard(x, y, 0, 4)


def test_launched_size_from_the_environment():
    assert launched_size({}) == 1
    assert launched_size({"PMI_SIZE": "4"}) == 4
    assert launched_size({"OMPI_COMM_WORLD_SIZE": "3"}) == 3
    assert launched_size({"PMI_SIZE": ""}) == 1


def test_plain_process_does_not_import_mpi4py():
    env = {k: v for k, v in os.environ.items() if k not in comm_mod.SIZE_VARIABLES}
    code = ("import sys; import minigpt.cli, minigpt.training.loop; from minigpt.parallel.comm import world; "
            "c = world(); assert (c.rank, c.size) == (0, 1); print('mpi4py' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "False"


def test_mpiexec_without_mpi4py_is_refused(monkeypatch):
    monkeypatch.setenv("PMI_SIZE", "2")
    monkeypatch.setitem(sys.modules, "mpi4py", None)      # `from mpi4py import MPI` now raises ImportError
    with pytest.raises(ParallelError, match=r"distributed"):
        world()


@pytest.mark.parametrize("size", [1, 2, 3, 7])
def test_adamw_on_shards_equals_adamw_bit_for_bit(size):
    """ZeRO-1's update, run on N chunks of the flat buffer (chunks cut across tensors, decayed or not), is
    optim.AdamW's step: the same bits."""
    rng = np.random.default_rng(size)
    shapes = {"w": (5, 3), "b": (7,), "g": (4,), "e": (2, 6), "ln": (1,)}
    params = {k: rng.standard_normal(s) for k, s in shapes.items()}
    mask = decay_mask(params)
    assert mask.tolist() == [True] * 15 + [False] * 11 + [True] * 12 + [False]
    plain = optim.AdamW({k: p.copy() for k, p in params.items()}, lr=0.05, betas=(0.9, 0.99),
                        weight_decay=0.3)
    flat, m, v = pack(params), np.zeros(mask.size), np.zeros(mask.size)
    for t in range(1, 5):
        grads = {k: rng.standard_normal(s) for k, s in shapes.items()}
        plain.lr = 0.05 / t
        plain.step(grads)
        g = pack(grads)
        for lo, hi in chunk_bounds(flat.size, size):
            adamw_shard_step(flat[lo:hi], g[lo:hi], m[lo:hi], v[lo:hi], mask[lo:hi], t, 0.05 / t, (0.9, 0.99),
                             1e-8, 0.3)
        assert np.array_equal(flat, pack(plain.params))
        assert np.array_equal(m, pack(plain.state["exp_avg"]))
        assert np.array_equal(v, pack(plain.state["exp_avg_sq"]))
    no_decay = flat.copy()
    adamw_shard_step(no_decay, np.zeros_like(flat), np.zeros_like(flat), np.zeros_like(flat), mask, 1, 0.1,
                     (0.9, 0.99), 1e-8, 0.5)
    assert np.array_equal(no_decay[~mask], flat[~mask])           # biases and gains never decay
    np.testing.assert_allclose(no_decay[mask], flat[mask] * 0.95, rtol=1e-15)


def test_zero_is_checked_and_kept_on_resume():
    with pytest.raises(ValueError, match=r"zero must be in \[0, 1\]"):
        TrainConfig(zero=2)
    saved = dict(TrainConfig(zero=1).__dict__)
    with pytest.raises(ValueError, match="'zero'"):
        resume_config(saved, {"zero": 0})
    assert resume_config(saved, {"max_iters": 3}).zero == 1


def test_zero_with_one_process_is_the_plain_run(tiny):
    """The documented choice: --zero 1 without mpiexec has nothing to shard; it says so and runs AdamW."""
    tmp, env = tiny
    said, runs = [], {}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINIGPT_DATA", env["MINIGPT_DATA"])
        for zero in (0, 1):
            cfg = config_from_preset("smoke", {"dataset": "tiny", "dtype": "float64", "max_iters": 3,
                                               "eval_interval": 3, "zero": zero})
            loop.train(cfg, tmp / f"single_zero{zero}", progress=False, sample=False, log=said.append)
            runs[zero] = checkpoint.load(tmp / f"single_zero{zero}" / "last")
        cfg.max_iters, cfg.zero = 6, 0                           # the API path refuses a changed zero too
        with pytest.raises(ValueError, match="--zero 1"):
            loop.train(cfg, tmp / "single_zero1", resume=True, progress=False, sample=False, log=said.append)
    assert any("--zero 1 with one process: nothing to shard" in m for m in said)
    assert losses(tmp / "single_zero0") == losses(tmp / "single_zero1")
    for name, p in runs[0].model.params.items():
        assert np.array_equal(runs[1].model.params[name], p), name


# ---- under mpiexec -----------------------------------------------------------------------------------------
RING_SCRIPT = """
import numpy as np
from minigpt import engines
from minigpt.parallel.allreduce import allreduce_sum, ring_allreduce
from minigpt.parallel.comm import world
comm = world()
assert comm.size == 3, comm.size
for n in (0, 1, 2, 3, 10, 1001):
    mine = np.random.default_rng([n, comm.rank]).standard_normal(n)
    want = sum(np.random.default_rng([n, r]).standard_normal(n) for r in range(comm.size))
    ring = ring_allreduce(comm, mine.copy())
    engine = allreduce_sum(comm, mine.copy())
    with engines.disabled():
        plain = allreduce_sum(comm, mine.copy())
    assert np.array_equal(ring, plain)
    np.testing.assert_allclose(ring, want, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(engine, want, rtol=1e-12, atol=1e-12)
    lo, hi = comm.allreduce_(ring.copy(), "min"), comm.allreduce_(ring.copy(), "max")
    assert np.array_equal(lo, hi)                            # bit-identical on every rank
print("ring ok", comm.rank)
"""

FAULT_SCRIPT = """
import sys
import numpy as np
from minigpt.parallel.comm import ParallelError, world
from minigpt.training import loop
from minigpt.training.config import config_from_preset
mode, out = sys.argv[1], sys.argv[2]
comm = world()
real_step = loop.train_step
def faulty_step(model, opt, batches, *args, **kw):
    if comm.rank == 1 and opt.t == 2:
        if mode == "nan":                                                   # rank 1's loss alone is NaN
            real = model.loss_and_grads
            model.loss_and_grads = lambda *a, **k: (float("nan"), real(*a, **k)[1])
        elif mode == "crash":
            raise RuntimeError("rank 1 fails on purpose")
    result = real_step(model, opt, batches, *args, **kw)
    if mode == "drift" and comm.rank == 1 and opt.t == 2:
        model.params["wte.weight"][0, 0] += 1e-9                            # rank 1's weights drift
    return result
loop.train_step = faulty_step
cfg = config_from_preset("smoke", {"dataset": "tiny", "dtype": "float64", "max_iters": 6, "eval_interval": 3})
try:
    loop.train(cfg, out, progress=False, sample=False, log=lambda m: None)
except (loop.TrainingDiverged, ParallelError) as exc:
    print(f"rank {comm.rank} stopped: {type(exc).__name__}: {exc}", flush=True)
    sys.exit(3)
print(f"rank {comm.rank} finished", flush=True)
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A prepared dataset 'tiny' (minigpt/model.py's text) and the environment for subprocesses."""
    tmp = tmp_path_factory.mktemp("parallel")
    src = tmp / "tiny.txt"
    src.write_text((REPO / "minigpt" / "model.py").read_text(encoding="utf-8"), encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINIGPT_DATA", str(tmp / "data"))
        recipes.prepare("textfile", from_file=src, log=lambda m: None)
        env = dict(os.environ, MINIGPT_DATA=str(tmp / "data"), MPLBACKEND="Agg", OMP_NUM_THREADS="1",
                   PYTHONPATH=str(REPO))
        yield tmp, env


def mpiexec(n: int, args: list[str], env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([MPIEXEC, "-n", str(n), sys.executable, *args], env=env, capture_output=True,
                          text=True, timeout=timeout)


TRAIN = ["-m", "minigpt", "train", "--preset", "smoke", "--dataset", "tiny", "--dtype", "float64",
         "--dropout", "0", "--eval_interval", "3", "--checkpoint_interval", "3", "--no-progress",
         "--no-sample"]


def losses(out: Path) -> list[float]:
    records = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return [r["loss"] if r["kind"] == "train" else r["val_loss"] for r in records]


@needs_mpi
def test_ring_over_mpi_equals_allreduce_and_sum(tiny, tmp_path):
    _, env = tiny
    script = tmp_path / "ring.py"
    script.write_text(RING_SCRIPT)
    proc = mpiexec(3, [str(script)], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("ring ok") == 3


@needs_mpi
def test_two_ranks_equal_one_process_with_twice_the_batch(tiny):
    tmp, env = tiny
    one, two = tmp / "one", tmp / "two"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINIGPT_DATA", env["MINIGPT_DATA"])
        cfg = config_from_preset("smoke", {"dataset": "tiny", "dtype": "float64", "dropout": 0.0,
                                           "batch_size": 8, "max_iters": 6, "eval_interval": 3,
                                           "checkpoint_interval": 3})
        loop.train(cfg, one, progress=False, sample=False, log=lambda m: None)
    # 2 ranks x batch 4: the first 3 steps, then a resume to 6 with the engines off (the ring all-reduce)
    first = mpiexec(2, [*TRAIN, "--batch_size", "4", "--max_iters", "3", "--out", str(two)], env)
    assert first.returncode == 0, first.stdout + first.stderr
    assert first.stdout.count("done:") == 1                       # rank 0 alone prints
    second = mpiexec(2, [*TRAIN, "--max_iters", "6", "--out", str(two), "--resume"],
                     dict(env, MINIGPT_ENGINES="0"))
    assert second.returncode == 0, second.stdout + second.stderr
    assert "2 ranks x batch 4" in second.stdout
    np.testing.assert_allclose(losses(two), losses(one), rtol=RTOL)
    assert len(losses(two)) == 6 + 3                              # 6 steps, evaluations at 0, 3, 6
    a, b = checkpoint.load(one / "last"), checkpoint.load(two / "last")
    assert b.state["world_size"] == 2 and b.state["iter"] == 6
    for name, p in a.model.params.items():
        np.testing.assert_allclose(b.model.params[name], p, rtol=RTOL, atol=1e-14, err_msg=name)
    for name, m in a.optimizer.items():
        np.testing.assert_allclose(b.optimizer[name], m, rtol=1e-10, atol=1e-14, err_msg=name)
    # a different world size is refused, in words that say what to do
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINIGPT_DATA", env["MINIGPT_DATA"])
        cfg = config_from_preset("smoke", {"dataset": "tiny", "dtype": "float64", "dropout": 0.0,
                                           "batch_size": 4, "max_iters": 9, "eval_interval": 3,
                                           "checkpoint_interval": 3})
        with pytest.raises(ParallelError, match=r"trained on 2 rank\(s\).*mpiexec -n 2"):
            loop.train(cfg, two, resume=True, progress=False, sample=False, log=lambda m: None)


ZERO_COLLECTIVES_SCRIPT = """
import contextlib
import numpy as np
from minigpt import engines
from minigpt.parallel.allreduce import chunk_bounds
from minigpt.parallel.comm import world
from minigpt.parallel.zero import allgather, reduce_scatter
comm = world()
for n in (0, 1, 2, 3, 10, 1001):
    mine = np.random.default_rng([n, comm.rank]).standard_normal(n)
    want = sum(np.random.default_rng([n, r]).standard_normal(n) for r in range(comm.size))
    lo, hi = chunk_bounds(n, comm.size)[comm.rank]
    for scope in (contextlib.nullcontext, engines.disabled):          # MPI's collectives, then the ring's
        with scope():
            np.testing.assert_allclose(reduce_scatter(comm, mine.copy()), want[lo:hi], rtol=1e-12, atol=1e-12)
            buf = np.full(n, np.nan)
            buf[lo:hi] = want[lo:hi]
            np.testing.assert_allclose(allgather(comm, buf), want, rtol=1e-12, atol=1e-12)
print("zero collectives ok", comm.rank)
"""


@needs_mpi
def test_zero_collectives_over_mpi_equal_a_sum(tiny, tmp_path):
    _, env = tiny
    script = tmp_path / "zero_collectives.py"
    script.write_text(ZERO_COLLECTIVES_SCRIPT)
    proc = mpiexec(3, [str(script)], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("zero collectives ok") == 3


@needs_mpi
def test_zero_1_on_two_ranks_equals_the_unsharded_run(tiny):
    tmp, env = tiny
    plain, zero = tmp / "plain2", tmp / "zero2"
    args = [*TRAIN, "--batch_size", "4", "--weight_decay", "0.3", "--grad_clip", "0.05"]   # clipping active
    first = mpiexec(2, [*args, "--max_iters", "6", "--out", str(plain)], env)
    assert first.returncode == 0, first.stdout + first.stderr
    # ZeRO-1: the first 3 steps with MPI's collectives, then a resume (re-sharding the saved moments) to 6
    # with the engines off (the ring's two phases)
    second = mpiexec(2, [*args, "--zero", "1", "--max_iters", "3", "--out", str(zero)], env)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "ZeRO-1: AdamW moments" in second.stdout and "unsharded (2 ranks)" in second.stdout
    third = mpiexec(2, [*TRAIN, "--max_iters", "6", "--out", str(zero), "--resume"],
                    dict(env, MINIGPT_ENGINES="0"))
    assert third.returncode == 0, third.stdout + third.stderr
    np.testing.assert_allclose(losses(zero), losses(plain), rtol=RTOL)
    assert len(losses(zero)) == 6 + 3
    records = [json.loads(line) for line in (zero / "log.jsonl").read_text().splitlines()]
    assert any(r.get("grad_norm", 0) > 0.05 for r in records)     # the clip was used, with the shards' norm
    a, b = checkpoint.load(plain / "last"), checkpoint.load(zero / "last")
    assert b.state["train_config"]["zero"] == 1 and b.state["iter"] == 6
    for name, p in a.model.params.items():
        np.testing.assert_allclose(b.model.params[name], p, rtol=RTOL, atol=1e-14, err_msg=name)
    assert a.optimizer.keys() == b.optimizer.keys()                # the same checkpoint format
    for name, m in a.optimizer.items():
        np.testing.assert_allclose(b.optimizer[name], m, rtol=1e-10, atol=1e-14, err_msg=name)


@needs_mpi
def test_two_ranks_finetune_equals_one_process_despite_uneven_masks(tiny):
    """Fine-tuning masks the prompts, so the ranks' slices count different numbers of targets: the weights
    of batches.shard keep the sum exact."""
    tmp, env = tiny
    lines = [ln for ln in (tmp / "tiny.txt").read_text().splitlines() if 12 < len(ln) < 40][:30]
    task = tmp / "task.jsonl"
    task.write_text("".join(json.dumps({"prompt": ln[:3 + i % 5], "response": ln[3 + i % 5:]}) + "\n"
                            for i, ln in enumerate(lines)))
    quiet = {"progress": False, "log": lambda m: None}
    settings = {"max_iters": 4, "eval_interval": 2, "log_interval": 1, "dropout": 0.0, "lr": 1e-2}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINIGPT_DATA", env["MINIGPT_DATA"])
        base = config_from_preset("smoke", {"dataset": "tiny", "dtype": "float64", "max_iters": 1})
        loop.train(base, tmp / "ft_base", sample=False, **quiet)
        finetune.finetune(task, tmp / "ft_one", init=tmp / "ft_base", overrides={**settings, "batch_size": 6},
                          **quiet)
    proc = mpiexec(2, ["-m", "minigpt", "finetune", "--init-from", str(tmp / "ft_base"), "--task", str(task),
                       "--out", str(tmp / "ft_two"), "--batch_size", "3", "--no-progress",
                       *[f"--{k}={v}" for k, v in settings.items()]], env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    np.testing.assert_allclose(losses(tmp / "ft_two"), losses(tmp / "ft_one"), rtol=RTOL)
    a, b = checkpoint.load(tmp / "ft_one" / "last"), checkpoint.load(tmp / "ft_two" / "last")
    for name, p in a.model.params.items():
        np.testing.assert_allclose(b.model.params[name], p, rtol=RTOL, atol=1e-14, err_msg=name)


@needs_mpi
@pytest.mark.parametrize("mode, says", [("drift", "parameters differ"),
                                        ("nan", "training diverged at iter 2"),
                                        ("crash", "stopping every rank")])
def test_a_fault_on_one_rank_stops_every_rank(tiny, tmp_path, mode, says):
    _, env = tiny
    script = tmp_path / "fault.py"
    script.write_text(FAULT_SCRIPT)
    proc = mpiexec(2, [str(script), mode, str(tmp_path / "run")], env, timeout=90)   # a hang fails here
    text = proc.stdout + proc.stderr
    assert proc.returncode != 0, text
    assert says in text, text
    assert "finished" not in proc.stdout, text
    if mode != "crash":                                           # decided together: both ranks stop
        assert proc.stdout.count("stopped") == 2, text


# ---- lesson 13's grader catches the classic bugs -----------------------------------------------------------
MUTANTS = {
    "weights_one_over_n": ("def shard(x, y, rank, size, ignore_index=-100):\n"
                           "    xs, ys, _ = _shard(x, y, rank, size, ignore_index)\n"
                           "    return xs, ys, 1.0 / size\n", "every weight is 1/N"),
    "sum_in_rank_order": ("def simulate_ring_allreduce(buffers):\n"
                          "    n = len(buffers)\n"
                          "    return [np.array(sum(buffers[(r + k) % n] for k in range(n)), dtype=float)\n"
                          "            for r in range(n)]\n", "holds the same bits"),
    "longer_chunks_last": ("def chunk_bounds(n, size):\n"
                           "    flipped = [(n - b, n - a) for a, b in _bounds(n, size)]\n"
                           "    return flipped[::-1]\n",
                           "first n % N chunks are one longer"),
    "ring_in_place": ("def simulate_ring_allreduce(buffers):\n"
                      "    out = _ring(buffers)\n"
                      "    for b, o in zip(buffers, out):\n"
                      "        b[...] = o\n"
                      "    return list(buffers)\n", "input buffers are unchanged"),
}


@pytest.mark.parametrize("name", sorted(MUTANTS))
def test_lesson_13_grader_fails_each_mutant(name, tmp_path):
    body, says = MUTANTS[name]
    header = ("import numpy as np\n"
              "from minigpt.parallel.allreduce import *  # noqa: F403\n"
              "from minigpt.parallel.allreduce import chunk_bounds as _bounds\n"
              "from minigpt.parallel.allreduce import simulate_ring_allreduce as _ring\n"
              "from minigpt.training.batches import shard\n"
              "from minigpt.training.batches import shard as _shard\n")
    path = tmp_path / f"{name}.py"
    path.write_text(header + body)
    out = io.StringIO()
    g = grade("13", impl=path, out=out)
    assert g.failed > 0, out.getvalue()
    assert says in out.getvalue(), out.getvalue()
