"""The step engine (minigpt/parallel/team.py): worker processes that share a step equal the definition.

Tolerances: float64 1e-12 relative (the parts' sums over the batch are grouped differently from the whole
batch's), float32 2e-5 relative to the largest entry of each gradient.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from minigpt import engines, optim
from minigpt.files import checkpoint
from minigpt.model import GPT, GPTConfig, gpt_loss_and_grads
from minigpt.parallel.team import Team, TeamError
from minigpt.training import loop
from minigpt.training.config import config_from_preset
from minigpt.training.loop import train_step
from tests.test_train import assert_same_run, env, quiet, smoke  # noqa: F401 - the prepared dataset fixture

CFG = GPTConfig(vocab_size=23, block_size=16, n_layer=2, n_head=2, n_embd=16)


@pytest.fixture(scope="module")
def team64():
    with Team(CFG, np.float64, n_workers=2, max_rows=6) as team:
        yield team


def batch(rows: int, seed: int = 0, T: int = 16):
    rng = np.random.default_rng(seed)
    return rng.integers(0, CFG.vocab_size, (rows, T)), rng.integers(0, CFG.vocab_size, (rows, T))


def assert_close(got, want, rtol):
    (loss, grads), (loss_ref, grads_ref) = got, want
    assert loss == pytest.approx(loss_ref, rel=rtol, abs=rtol)
    assert list(grads) == list(grads_ref)
    for name, g in grads.items():
        scale = max(float(np.max(np.abs(grads_ref[name]))), 1e-30)
        assert g.dtype == grads_ref[name].dtype and g.shape == grads_ref[name].shape, name
        assert float(np.max(np.abs(g - grads_ref[name]))) <= rtol * scale, name


@pytest.mark.parametrize("rows", [1, 2, 5, 6])
def test_equals_the_definition_in_float64(team64, rows):
    params = GPT(CFG, seed=rows, dtype=np.float64).params
    idx, targets = batch(rows, seed=rows, T=13)                 # shorter than the block, uneven split
    targets[0, :9] = -100                                       # masked prompts weigh the parts unevenly
    assert_close(team64.loss_and_grads(params, idx, targets), gpt_loss_and_grads(params, idx, targets, CFG),
                 1e-12)


@pytest.mark.parametrize("rows", [1, 5, 13])
def test_eval_loss_equals_the_models_in_float64(team64, rows):
    """team.loss = GPT.loss (eval mode), also for more rows than the team holds (13 > 6: in chunks)."""
    model = GPT(CFG, seed=rows, dtype=np.float64)
    idx, targets = batch(rows, seed=rows + 1)
    targets[0, :11] = -100
    assert team64.loss(model.params, idx, targets) == pytest.approx(model.loss(idx, targets), rel=1e-12)
    targets[:] = -100
    assert team64.loss(model.params, idx, targets) == model.loss(idx, targets) == 0.0


def test_a_part_with_no_counted_target_and_a_batch_with_none(team64):
    params = GPT(CFG, seed=1, dtype=np.float64).params
    idx, targets = batch(4)
    targets[:2] = -100                                          # the first worker's part counts nothing
    assert_close(team64.loss_and_grads(params, idx, targets), gpt_loss_and_grads(params, idx, targets, CFG),
                 1e-12)
    targets[:] = -100                                           # nothing counted: loss 0, zero gradients
    loss, grads = team64.loss_and_grads(params, idx, targets)
    assert loss == 0.0 and all(not g.any() for g in grads.values())


def test_float32_and_no_biases():
    cfg = GPTConfig(vocab_size=23, block_size=16, n_layer=2, n_head=2, n_embd=16, bias=False)
    params = GPT(cfg, seed=3, dtype=np.float32).params
    idx, targets = batch(5)
    with Team(cfg, np.float32, n_workers=2, max_rows=5) as team:
        got = team.loss_and_grads(params, idx, targets)
        assert not any(name.endswith(".bias") for name in got[1])
        assert_close(got, gpt_loss_and_grads(params, idx, targets, cfg), 2e-5)


def test_bad_input_is_the_definitions_error_and_the_team_goes_on(team64):
    params = GPT(CFG, seed=0, dtype=np.float64).params
    idx, targets = batch(4)
    targets[3, 5] = CFG.vocab_size                              # found by the second worker
    with pytest.raises(IndexError) as ours:
        team64.loss_and_grads(params, idx, targets)
    with pytest.raises(IndexError) as theirs:
        gpt_loss_and_grads(params, idx, targets, CFG)
    assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="exceed block_size"):
        team64.loss_and_grads(params, *batch(2, T=17))
    with pytest.raises(ValueError, match="at most 6 rows"):
        team64.loss_and_grads(params, *batch(7))
    idx, targets = batch(4)                                     # the pipes are still in step
    assert_close(team64.loss_and_grads(params, idx, targets), gpt_loss_and_grads(params, idx, targets, CFG),
                 1e-12)


@pytest.mark.parametrize("when", ["dying", "gone"])
def test_a_dead_worker_is_a_clear_error_and_leaves_no_file(when):
    params = GPT(CFG, seed=0, dtype=np.float32).params
    team = Team(CFG, np.float32, n_workers=2, max_rows=4)
    assert not glob.glob("/dev/shm/minigpt-team-*")             # unlinked once every worker mapped it
    os.kill(team.workers[1].proc.pid, signal.SIGKILL)
    if when == "gone":
        team.workers[1].proc.wait()                             # dead before the command: a broken pipe
    with pytest.raises(TeamError, match="stopped"):
        team.loss_and_grads(params, *batch(4))
    assert team.workers == []                                   # closed: nothing waits on a broken pipe
    with pytest.raises(TeamError, match="closed"):
        team.loss_and_grads(params, *batch(4))


def test_train_with_a_team_equals_train_without_and_resumes_bit_exact(env, monkeypatch):  # noqa: F811
    """A forced team (any work, two workers) in float64: the same losses as the in-process definition to
    1e-12, and a run stopped and resumed with the team ends bit-identical to one that never stopped."""
    monkeypatch.setattr(loop, "TEAM_MIN_FLOPS", 0)
    monkeypatch.setattr(loop, "n_threads", lambda: 2)
    cfg = dict(max_iters=12, dtype="float64", dropout=0.0, log_interval=1, checkpoint_interval=4)
    said, evaluated = [], []
    team_loss = Team.loss
    monkeypatch.setattr(Team, "loss", lambda self, *a, **k: evaluated.append(1) or team_loss(self, *a, **k))
    loop.train(smoke(**cfg), env / "team_whole", progress=False, sample=False, log=said.append)
    assert any("2 worker processes" in line for line in said) and evaluated
    with engines.disabled():
        loop.train(smoke(**cfg), env / "team_off", progress=False, sample=False, log=quiet)
    loop.train(smoke(**{**cfg, "max_iters": 5}), env / "team_parts", progress=False, sample=False, log=quiet)
    loop.train(smoke(**cfg), env / "team_parts", resume=True, progress=False, sample=False, log=quiet)
    assert_same_run(env / "team_parts" / "last", env / "team_whole" / "last")

    def losses(name):
        return [r["loss"] for r in map(json.loads, (env / name / "log.jsonl").read_text().splitlines())
                if r["kind"] == "train"]
    assert losses("team_whole") == pytest.approx(losses("team_off"), rel=1e-12)
    assert losses("team_whole") != losses("team_off")           # the team ran: the rounding differs

    def evals(name):
        return [(r["train_loss"], r["val_loss"]) for r in
                map(json.loads, (env / name / "log.jsonl").read_text().splitlines()) if r["kind"] == "eval"]
    assert len(evals("team_whole")) > 1
    for ours, theirs in zip(evals("team_whole"), evals("team_off"), strict=True):   # evaluated on the team
        assert ours == pytest.approx(theirs, rel=1e-12)


def test_when_a_run_uses_no_team(env, monkeypatch):  # noqa: F811
    monkeypatch.setattr(loop, "n_threads", lambda: 2)
    cfg = smoke(dropout=0.0)
    run = loop.Run(cfg=cfg, out=env, data=None, model=GPT(GPTConfig(65, 64, 2, 4, 128)), opt=None,
                   data_rng=None, drop_rng=None)
    assert loop.team_for(cfg, run, loop.Single()) is None       # too little work to pay for the workers
    monkeypatch.setattr(loop, "TEAM_MIN_FLOPS", 0)
    for changed in (dict(dropout=0.1), dict(batch_size=3)):
        assert loop.team_for(smoke(**changed), run, loop.Single()) is None, changed
    with engines.disabled():
        assert loop.team_for(cfg, run, loop.Single()) is None
    monkeypatch.setattr(loop, "n_threads", lambda: 1)
    assert loop.team_for(cfg, run, loop.Single()) is None
    monkeypatch.setattr(loop, "n_threads", lambda: 2)
    team = loop.team_for(config_from_preset("speedrun"), run, loop.Single(), quiet)
    assert team is not None and team.n_workers == 2
    team.close()
    monkeypatch.setattr(loop, "n_threads", lambda: 64)        # a big machine: 12 rows, 6 workers of 2 rows
    team = loop.team_for(config_from_preset("speedrun"), run, loop.Single(), quiet)
    assert team is not None and team.n_workers == 6
    team.close()


def test_no_room_for_the_shared_file_is_an_error_and_train_goes_on_without(env, monkeypatch):  # noqa: F811
    """A full (or a container's 64 MB) /dev/shm must not end in SIGBUS: the room is checked first."""
    class Full:
        f_bavail, f_frsize = 10, 4096
    monkeypatch.setattr(os, "statvfs", lambda _folder: Full())
    with pytest.raises(TeamError, match="no room"):
        Team(CFG, np.float32, n_workers=2, max_rows=4)
    monkeypatch.setattr(loop, "TEAM_MIN_FLOPS", 0)
    monkeypatch.setattr(loop, "n_threads", lambda: 2)
    said = []
    summary = loop.train(smoke(max_iters=3, dropout=0.0), env / "team_no_room", progress=False, sample=False,
                         log=said.append)
    assert summary["iter"] == 3 and any("did not start" in line and "no room" in line for line in said)


def _children(pid: int) -> list[int]:
    """Processes whose parent is pid (Linux /proc)."""
    kids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            fields = open(stat).read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            kids.append(int(stat.split("/")[2]))
    return kids


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads /proc for the worker processes")
def test_ctrl_c_and_kill_9_with_a_team_keep_the_checkpoint_and_leave_no_worker(env):  # noqa: F811
    """The command line on a model big enough for the team: Ctrl-C finishes the step, saves and closes the
    workers; kill -9 of the parent leaves workers that exit on their own (their stdin closes), and the
    last checkpoint resumes."""
    if loop.n_threads() < 2:
        pytest.skip("one core: train() uses no team")
    out = env / "team_cli"
    cmd = [sys.executable, "-m", "minigpt", "train", "--preset", "smoke", "--dataset", "tiny",
           "--dropout", "0", "--n_embd", "128", "--n_head", "4", "--block_size", "64",
           "--max_iters", "100000", "--out", str(out), "--no-progress", "--no-sample"]
    env_vars = dict(os.environ, MINIGPT_DATA=str(env / "data"), MPLBACKEND="Agg")

    def start(resume: bool):
        proc = subprocess.Popen(cmd + (["--resume"] if resume else []), env=env_vars, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines = []
        while not any("worker processes" in line for line in lines):
            line = proc.stdout.readline()
            assert line, "".join(lines)                       # ended without starting a team
            lines.append(line)
        deadline = time.time() + 60
        while not (out / "last" / "state.json").is_file() or len(_children(proc.pid)) < 2:
            assert time.time() < deadline and proc.poll() is None, "".join(lines)
            time.sleep(0.02)
        return proc, _children(proc.pid)

    proc, workers = start(resume=False)
    proc.send_signal(signal.SIGINT)
    text, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "interrupted: saved" in text, text      # 128 + SIGINT, as shells do
    assert not any(os.path.exists(f"/proc/{pid}") for pid in workers)      # stopped and reaped by close()
    stopped = json.loads((out / "last" / "state.json").read_text())["iter"]

    proc, workers = start(resume=True)                        # a worker dies: one line, last/ intact
    os.kill(workers[0], signal.SIGKILL)
    text, _ = proc.communicate(timeout=60)
    assert proc.returncode == 1 and "minigpt: error: team worker" in text and "Traceback" not in text, text
    assert "--resume continues" in text

    proc, workers = start(resume=True)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 10
    while any(os.path.exists(f"/proc/{pid}") for pid in workers):
        assert time.time() < deadline, "a team worker outlived its parent"
        time.sleep(0.05)
    assert json.loads((out / "last" / "state.json").read_text())["iter"] >= stopped
    assert not glob.glob("/dev/shm/minigpt-team-*")


@pytest.mark.parametrize("kind, grad_clip", [("AdamW", 1.0), ("AdamW", 1e-3), ("AdamW", 0.0), ("Adam", 0.5)])
def test_the_whole_step_on_the_workers_is_bit_identical_to_the_parent_stepping(kind, grad_clip):
    """adopt + step (reduce, norms, clip and Adam._update on the workers' shards) against the same team's
    gradients clipped and stepped by the parent: every weight and moment bit for bit, five steps; and the
    parent's way against the definition in float64 (1e-12)."""
    make = {"Adam": optim.Adam, "AdamW": optim.AdamW}[kind]
    ours, theirs, plain = (GPT(CFG, seed=7, dtype=np.float64) for _ in range(3))
    opts = [make(m.params, lr=3e-3, weight_decay=0.1) for m in (ours, theirs, plain)]
    with Team(CFG, np.float64, n_workers=2, max_rows=5) as team, \
            Team(CFG, np.float64, n_workers=2, max_rows=5) as other:
        team.adopt(ours.params, opts[0])
        assert all(np.shares_memory(ours.params[n], team.params[n]) for n in ours.params)
        with pytest.raises(ValueError, match="adopted"):
            team.loss_and_grads(theirs.params, *batch(5))    # would overwrite ours
        for it in range(5):
            idx, targets = batch(5, seed=it)
            targets[1, :4] = -100
            loss, norm = team.step(opts[0], idx, targets, grad_clip)
            loss2, grads = other.loss_and_grads(theirs.params, idx, targets)
            norm2 = (optim.clip_grad_norm(grads, grad_clip) if grad_clip > 0 else
                     float(np.sqrt(sum(float(np.vdot(g, g)) for g in grads.values()))))
            opts[1].step(grads)
            assert (loss, norm) == (loss2, norm2)
            loss3, norm3 = train_step(plain, opts[2], [(idx, targets)], grad_clip)
            assert loss == pytest.approx(loss3, rel=1e-12) and norm == pytest.approx(norm3, rel=1e-12)
    for name, p in ours.params.items():
        assert np.array_equal(p, theirs.params[name]), name
        np.testing.assert_allclose(p, plain.params[name], rtol=1e-12, atol=1e-14)
        for k in opts[0].state:
            assert np.array_equal(opts[0].state[k][name], opts[1].state[k][name]), (k, name)
    assert opts[0].t == opts[1].t == 5


def test_a_non_finite_step_changes_nothing_and_other_optimizers_are_refused():
    model = GPT(CFG, seed=1, dtype=np.float64)
    opt = optim.AdamW(model.params, lr=1e-3)
    with Team(CFG, np.float64, n_workers=2, max_rows=4) as team:
        with pytest.raises(TypeError, match="Adam and AdamW only"):
            team.adopt(model.params, optim.SGD(model.params, lr=0.1))
        team.adopt(model.params, opt)
        model.params["wte.weight"][0, 0] = np.inf            # the forward now gives a non-finite loss
        before = {n: p.copy() for n, p in model.params.items()}
        loss, norm = team.step(opt, *batch(4), grad_clip=1.0)
        assert not (np.isfinite(loss) and np.isfinite(norm))
        assert opt.t == 0
        assert all(np.array_equal(p, before[n], equal_nan=True) for n, p in model.params.items())
        with pytest.raises(ValueError, match="adopted"):
            team.step(optim.AdamW(model.params), *batch(4), grad_clip=1.0)


def test_gradient_accumulation_with_a_team_equals_it_without(env, monkeypatch):  # noqa: F811
    """grad_accum 2: the team computes each micro-batch's gradients (and adopts no optimizer); the parent
    adds them up, clips and steps: the same weights as in one process after 6 steps, to 1e-10 in float64
    (the rounding differences of each step's gradients, carried through AdamW's division by sqrt(v))."""
    monkeypatch.setattr(loop, "TEAM_MIN_FLOPS", 0)
    monkeypatch.setattr(loop, "n_threads", lambda: 2)
    cfg = smoke(max_iters=6, dtype="float64", dropout=0.0, grad_accum=2, log_interval=1)
    adopted = []
    monkeypatch.setattr(Team, "adopt", lambda *a: adopted.append(1))
    loop.train(cfg, env / "accum_team", progress=False, sample=False, log=quiet)
    with engines.disabled():
        loop.train(cfg, env / "accum_off", progress=False, sample=False, log=quiet)
    assert not adopted
    a, b = (checkpoint.load(env / name / "last").model.params for name in ("accum_team", "accum_off"))
    for name in a:
        np.testing.assert_allclose(a[name], b[name], rtol=1e-10, atol=1e-13, err_msg=name)
