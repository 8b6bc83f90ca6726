"""The trainer: exact resume (split runs, Ctrl-C, kill -9), atomic checkpoints, divergence, presets, CLI."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from minigpt.datasets import recipes
from minigpt.files import checkpoint
from minigpt.training import config as train_config
from minigpt.training import loop
from minigpt.training.config import TrainConfig, config_from_preset
from minigpt.training.loop import TrainingDiverged

REPO = Path(__file__).resolve().parent.parent
TEXT = (REPO / "minigpt" / "model.py").read_text(encoding="utf-8")  # ~15 KB of Python


def quiet(_msg):
    pass


MAX = 60  # the reference run's length: long enough that a kill after the first checkpoint lands before it


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A prepared tiny dataset 'tiny' in a temporary data/ folder; returns the runs' parent folder."""
    tmp = tmp_path_factory.mktemp("train")
    src = tmp / "tiny.txt"
    src.write_text(TEXT, encoding="utf-8")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINIGPT_DATA", str(tmp / "data"))
        recipes.prepare("textfile", from_file=src, log=quiet)
        yield tmp


def smoke(**overrides) -> TrainConfig:
    return config_from_preset("smoke", {"dataset": "tiny", **overrides})


def run(cfg, out, **kw):
    return loop.train(cfg, out, progress=False, log=quiet, sample=False, **kw)


def params_of(folder: Path) -> dict[str, np.ndarray]:
    return checkpoint.load(folder).model.params


def assert_same_run(a: Path, b: Path) -> None:
    ca, cb = checkpoint.load(a), checkpoint.load(b)
    assert ca.state["iter"] == cb.state["iter"]
    for name, p in ca.model.params.items():
        assert np.array_equal(p, cb.model.params[name]), name               # bit-identical
    for key, m in ca.optimizer.items():
        assert np.array_equal(m, cb.optimizer[key]), key
    assert ca.state["rng"] == cb.state["rng"]


@pytest.fixture(scope="module")
def straight(env):
    """The uninterrupted reference: smoke to MAX iterations, dropout on, 2 micro-batches per step."""
    out = env / "straight"
    summary = run(smoke(max_iters=MAX, grad_accum=2), out)
    assert summary["iter"] == MAX and not summary["interrupted"]
    return out


def test_resume_after_max_iters_split(env, straight):
    out = env / "split"
    run(smoke(max_iters=12, grad_accum=2), out)          # stops at 12 (not a checkpoint multiple)
    assert checkpoint.load(out / "last").state["iter"] == 12
    run(smoke(max_iters=MAX, grad_accum=2), out, resume=True)
    assert_same_run(out / "last", straight / "last")
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    steps = [r["iter"] for r in log if r["kind"] == "train"]
    assert steps == list(range(MAX))                       # each step logged once, across the resume
    assert (out / "loss.png").stat().st_size > 1000


def _spawn(out: Path, env_dir: Path, max_iters: int, dtype: str = "float32",
           resume: bool = False) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "minigpt", "train", "--preset", "smoke", "--dataset", "tiny", "--grad_accum",
           "2", "--max_iters", str(max_iters), "--out", str(out), "--no-progress", "--no-sample",
           "--dtype", dtype] + (["--resume"] if resume else [])
    env = dict(os.environ, MINIGPT_DATA=str(env_dir / "data"), MPLBACKEND="Agg")
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_checkpoint(proc: subprocess.Popen, out: Path, timeout: float = 60.0) -> None:
    state = out / "last" / "state.json"
    t0 = time.time()
    while not state.is_file():
        assert proc.poll() is None, proc.communicate()
        assert time.time() - t0 < timeout, "no checkpoint appeared"
        time.sleep(0.01)


def test_resume_after_kill_9(env, straight):
    out = env / "killed"
    proc = _spawn(out, env, max_iters=100_000)           # would run for minutes
    _wait_for_checkpoint(proc, out)
    time.sleep(0.05)                                     # somewhere mid-run, maybe mid-checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    stopped = checkpoint.load(out / "last").state["iter"]
    assert 5 <= stopped < MAX, stopped
    run(smoke(max_iters=MAX, grad_accum=2), out, resume=True)
    assert_same_run(out / "last", straight / "last")


def test_kill_9_at_random_moments_in_float64(env):
    """kill -9 at a few seeded random moments (mid-step, mid-checkpoint, mid-log), each time resumed, and
    the run ends bit-identical to an uninterrupted float64 run."""
    whole = env / "straight64"
    run(smoke(max_iters=MAX, grad_accum=2, dtype="float64"), whole)
    out = env / "killed64"
    delays = np.random.default_rng(7).uniform(0.0, 0.4, size=2)
    stops = []
    for k, delay in enumerate(delays):
        proc = _spawn(out, env, max_iters=MAX, dtype="float64", resume=k > 0)
        if k == 0:
            _wait_for_checkpoint(proc, out)
        time.sleep(float(delay))
        proc.send_signal(signal.SIGKILL)
        assert proc.wait() == -signal.SIGKILL, proc.communicate()   # killed, not finished or refused
        stops.append(checkpoint.load(out / "last").state["iter"])
    assert stops[-1] < MAX, stops
    run(smoke(max_iters=MAX, grad_accum=2, dtype="float64"), out, resume=True)
    assert_same_run(out / "last", whole / "last")


def test_ctrl_c_saves_and_resumes(env, straight):
    out = env / "ctrl_c"
    proc = _spawn(out, env, max_iters=100_000)
    _wait_for_checkpoint(proc, out)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted: saved" in stdout and "--resume" in stdout
    state = checkpoint.load(out / "last").state
    assert state["iter"] < MAX
    run(smoke(max_iters=MAX, grad_accum=2), out, resume=True)
    assert_same_run(out / "last", straight / "last")


def test_crash_while_writing_keeps_previous_checkpoint(env, monkeypatch):
    out = env / "crash"
    real_save = checkpoint.safetensors.save
    calls = {"n": 0}

    def failing_save(tensors, path, metadata=None):
        calls["n"] += 1
        if "last" in Path(path).parent.name and calls["n"] > 8:   # a later last/ checkpoint, mid-write
            Path(path).write_bytes(b"half a file")
            raise OSError("disk full (simulated)")
        return real_save(tensors, path, metadata)

    monkeypatch.setattr(checkpoint.safetensors, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        run(smoke(max_iters=30), out)
    ckpt = checkpoint.load(out / "last")                  # the previous one, complete
    assert ckpt.state["iter"] in (5, 10, 15, 20, 25)
    assert not list(out.glob(".last.tmp-*"))              # the temporary folder was cleaned up


def test_crash_between_the_two_renames(env, monkeypatch):
    out = env / "rename"
    run(smoke(max_iters=5), out)
    real_replace = os.replace

    def crash_on_second(src, dst):
        if Path(src).name.startswith(".last.tmp-"):
            raise OSError("power cut (simulated)")
        return real_replace(src, dst)

    monkeypatch.setattr(checkpoint.os, "replace", crash_on_second)
    with pytest.raises(OSError, match="power cut"):
        run(smoke(max_iters=10), out, resume=True)
    assert not (out / "last").exists() and (out / ".last.old").is_dir()
    monkeypatch.setattr(checkpoint.os, "replace", real_replace)
    assert checkpoint.load(out / "last").state["iter"] == 5    # found through .last.old
    run(smoke(max_iters=10), out, resume=True)
    assert checkpoint.load(out / "last").state["iter"] == 10


def test_non_finite_loss_stops_and_keeps_last_checkpoint(env, monkeypatch):
    out = env / "nan"
    real = loop.GPT.loss_and_grads
    calls = {"n": 0}

    def poisoned(self, idx, targets, rng=None, ignore_index=-100):
        calls["n"] += 1
        loss, grads = real(self, idx, targets, rng, ignore_index)
        return (float("nan") if calls["n"] == 8 else loss), grads

    monkeypatch.setattr(loop.GPT, "loss_and_grads", poisoned)
    before = None
    with pytest.raises(TrainingDiverged, match=r"diverged at iter 7.*last good checkpoint is .*last"):
        run(smoke(max_iters=30), out)
    ckpt = checkpoint.load(out / "last")
    assert ckpt.state["iter"] == 5
    before = ckpt.model.params
    assert all(np.all(np.isfinite(p)) for p in before.values())


def test_damaged_checkpoints_are_clear_errors(env):
    out = env / "damaged"
    run(smoke(max_iters=5), out)
    model = out / "last" / "model.safetensors"
    model.write_bytes(model.read_bytes()[:-10])
    with pytest.raises(checkpoint.CheckpointError, match="model.safetensors"):
        checkpoint.load(out / "last")
    with pytest.raises(checkpoint.CheckpointError, match="cannot resume"):
        run(smoke(max_iters=10), out, resume=True)
    state = json.loads((out / "best" / "state.json").read_text(encoding="utf-8"))
    (out / "best" / "state.json").write_text(json.dumps(state | {"version": 2}), encoding="utf-8")
    with pytest.raises(checkpoint.CheckpointError, match="state.json: .* version 2; this minigpt reads"):
        checkpoint.load(out / "best")
    (out / "best" / "state.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(checkpoint.CheckpointError, match="state.json"):
        checkpoint.load(out / "best")
    with pytest.raises(checkpoint.CheckpointError, match="no checkpoint"):
        checkpoint.load(env / "nowhere")
    with pytest.raises(ValueError, match="already holds a run"):   # never overwritten by a fresh start
        run(smoke(max_iters=5), out)


def test_presets_and_overrides():
    assert {"baby", "default", "smoke", "shakespeare_char", "tang_poems"} <= set(train_config.list_presets())
    baby = config_from_preset("baby")
    nanogpt = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, lr=1e-3, max_iters=2000,
                   lr_decay_iters=2000, min_lr=1e-4, warmup_iters=100, beta2=0.99, dropout=0.0,
                   weight_decay=0.1, grad_clip=1.0, eval_interval=250, eval_iters=20, bias=False,
                   dataset="shakespeare_char")
    assert {k: getattr(baby, k) for k in nanogpt} == nanogpt
    assert config_from_preset().dataset == "pystdlib"
    assert train_config.parse_overrides({"lr": "3e-4", "bias": "false", "max_iters": "7"}) == \
        {"lr": 3e-4, "bias": False, "max_iters": 7}
    with pytest.raises(ValueError, match="max_iters needs a int"):
        train_config.parse_overrides({"max_iters": "lots"})
    with pytest.raises(ValueError, match="unknown setting"):
        config_from_preset("smoke", {"learning_rate": 1.0})
    with pytest.raises(ValueError, match="no preset"):
        train_config.load_preset("gigantic")
    with pytest.raises(ValueError, match="lr_decay_iters"):
        TrainConfig(warmup_iters=100, lr_decay_iters=50)


def test_cli_train_and_init_from(env, capsys):
    from minigpt.cli import main

    out = env / "cli"
    argv = ["train", "--preset", "smoke", "--dataset", "tiny", "--max-iters", "6", "--out", str(out),
            "--no-progress"]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "done: 6 iterations" in text
    assert main(argv) == 2 and "--resume" in capsys.readouterr().err
    assert main(["train", "--resume", "--out", str(env / "none")]) == 2
    assert "cannot resume" in capsys.readouterr().err
    assert main(argv + ["--resume", "--max_iters", "8", "--no-sample"]) == 0
    assert checkpoint.load(out / "last").state["iter"] == 8
    capsys.readouterr()
    assert main(argv + ["--resume", "--max_iters", "8", "--no-sample"]) == 0   # a finished run: nothing to do
    assert "done: 8 iterations" in capsys.readouterr().out
    tuned = env / "tuned"
    run(smoke(max_iters=1, lr=1e-9, warmup_iters=0, lr_decay_iters=0, weight_decay=0.0, dropout=0.0), tuned,
        init_from=out)
    start = params_of(out / "best")
    for name, p in params_of(tuned / "last").items():
        assert np.allclose(p, start[name], atol=1e-6), name


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_resume_is_bit_exact_in_both_dtypes_and_so_is_the_log(env, dtype):
    """The checkpoint's params come back from safetensors in the file's (alphabetical) order; the model
    puts them back in the canonical order, so the gradient norm sums in the same order after a resume."""
    cfg = dict(max_iters=30, grad_accum=2, dtype=dtype, log_interval=1, checkpoint_interval=10)
    run(smoke(**cfg), env / f"whole_{dtype}")
    run(smoke(**{**cfg, "max_iters": 13}), env / f"parts_{dtype}")
    run(smoke(**cfg), env / f"parts_{dtype}", resume=True)
    assert_same_run(env / f"parts_{dtype}" / "last", env / f"whole_{dtype}" / "last")

    def log(name):
        return [r for r in map(json.loads, (env / name / "log.jsonl").read_text().splitlines())
                if r["kind"] == "train"]
    for a, b in zip(log(f"whole_{dtype}"), log(f"parts_{dtype}"), strict=True):
        assert (a["iter"], a["loss"], a["grad_norm"]) == (b["iter"], b["loss"], b["grad_norm"])


@pytest.mark.parametrize("lr", [1e39, float("nan"), float("inf"), -1e-3])
def test_non_finite_or_negative_hyperparameters_are_refused_at_the_start(lr):
    with pytest.raises(ValueError, match="lr"):
        smoke(lr=lr)


@pytest.mark.parametrize("key, value", [("grad_clip", float("nan")), ("grad_clip", -1.0),
                                        ("weight_decay", float("nan")), ("min_lr", float("nan")),
                                        ("beta2", 1.0), ("dropout", 1.0), ("n_layer", 100_000_000),
                                        ("temperature", float("inf")), ("seed", -1)])
def test_every_hyperparameter_is_checked(key, value):
    with pytest.raises(ValueError, match=key):
        smoke(**{key: value})


def test_a_step_that_breaks_the_weights_stops_before_any_save(env, monkeypatch):
    """A finite loss can still leave inf weights (a huge update): the run stops at that step, names it,
    and last/ keeps the good checkpoint, which resumes."""
    out = env / "bad_weights"
    run(smoke(max_iters=10, checkpoint_interval=5), out)
    good = params_of(out / "last")
    real_step = loop.optim.AdamW.step

    def exploding(self, grads):
        real_step(self, grads)
        if self.t == 13:
            next(iter(self.params.values()))[...] = np.inf
    monkeypatch.setattr(loop.optim.AdamW, "step", exploding)
    with pytest.raises(TrainingDiverged, match=r"diverged at iter 12: the step .* left non-finite values"):
        run(smoke(max_iters=20, checkpoint_interval=5), out, resume=True)
    monkeypatch.undo()
    after = params_of(out / "last")
    assert all(np.array_equal(good[k], after[k]) for k in good) and np.isfinite(after["wte.weight"]).all()
    assert run(smoke(max_iters=20, checkpoint_interval=5), out, resume=True)["iter"] == 20


def test_a_checkpoint_is_never_written_from_non_finite_weights(env, tmp_path):
    model = checkpoint.load(env / "straight" / "last").model
    model.params["wte.weight"][0, 0] = np.nan
    with pytest.raises(checkpoint.CheckpointError, match="wte.weight holds NaN"):
        checkpoint.save(tmp_path / "c", model, {"step": 1, "lr": 0.1}, {},
                        env / "data" / "tiny" / "tokenizer.json")
    assert not (tmp_path / "c").exists()


def test_stale_temporary_folders_are_removed_at_start(env):
    out = env / "stale"
    run(smoke(max_iters=5), out)
    (out / ".last.tmp-abc123").mkdir()
    (out / ".last.tmp-abc123" / "model.safetensors").write_bytes(b"x" * 100)
    run(smoke(max_iters=10), out, resume=True)
    assert not list(out.glob(".*.tmp-*"))


def test_resume_refuses_a_changed_model_or_dtype(env):
    out = env / "changed"
    run(smoke(max_iters=5), out)
    saved = checkpoint.load(out / "last").state["train_config"]
    for change in ({"n_layer": 3}, {"dtype": "float64"}, {"dataset": "other"}):
        with pytest.raises(ValueError, match="cannot change on resume"):
            train_config.resume_config(saved, change)
    assert train_config.resume_config(saved, {"max_iters": 9}).max_iters == 9
    with pytest.raises(ValueError, match="different model"):
        run(smoke(max_iters=9, n_layer=3), out, resume=True)
    with pytest.raises(ValueError, match="newer minigpt"):
        train_config.resume_config(saved | {"flash_attention": True})


def test_sample_prompt_outside_the_vocabulary_is_refused_before_training(env):
    with pytest.raises(ValueError, match="sample_prompt"):
        run(smoke(max_iters=5, sample_tokens=5, sample_prompt="é"), env / "prompt")
    assert not (env / "prompt" / "last").exists()
    assert train_config.parse_overrides({"sample_prompt": "é\\n"})["sample_prompt"] == "é\n"


def test_command_line_errors_are_one_line(env, tmp_path, capsys):
    """Bad input, unreadable files and unwritable folders: one line on stderr, exit 2, no traceback."""
    from minigpt.cli import main

    out = env / "cli_errors"
    base = ["train", "--preset", "smoke", "--dataset", "tiny", "--max_iters", "2", "--no-progress",
            "--no-sample"]
    assert main(base + ["--out", str(out)]) == 0
    capsys.readouterr()
    cases = [
        base + ["--out", str(tmp_path / "a"), "--lr", "nan"],                    # not finite
        base + ["--out", str(tmp_path / "b"), "--grad_clip", "-1"],              # clipping silently off
        base + ["--out", str(tmp_path / "c"), "--dataset", "never_prepared"],    # no such dataset
        base + ["--out", str(out), "--resume", "--n_layer", "3"],                # architecture on resume
        base + ["--out", str(out), "--resume", "--dtype", "float64"],            # dtype on resume
        ["sample", "--checkpoint", str(out), "--prompt-file", str(tmp_path)],   # a folder as the prompt
        ["sample", "--checkpoint", str(tmp_path / "nowhere")],                   # no model there
        ["eval", "--checkpoint", str(out), "--data", "tiny", "--max-tokens", "-1", "--task",
         str(tmp_path / "missing.jsonl")],
    ]
    bad_prompt = tmp_path / "latin1.txt"
    bad_prompt.write_bytes(b"caf\xe9")
    cases.append(["sample", "--checkpoint", str(out), "--prompt-file", str(bad_prompt)])
    for argv in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("minigpt: error: ") and err.count("\n") == 1, (argv, err)
        assert "Traceback" not in err
    assert main(cases[-1]) == 2 and "latin1.txt" in capsys.readouterr().err
    with pytest.raises(SystemExit):                                              # argparse: test is no split
        main(["eval", "--checkpoint", str(out), "--data", "tiny", "--split", "test"])


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write to read-only folders")
def test_read_only_output_folder_is_one_line(env, tmp_path, capsys):
    from minigpt.cli import main

    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    assert main(["train", "--preset", "smoke", "--dataset", "tiny", "--max_iters", "2", "--out",
                 str(ro / "x"), "--no-progress", "--no-sample"]) == 2
    assert capsys.readouterr().err.startswith("minigpt: error: ")


def test_both_option_spellings_everywhere():
    from minigpt.cli import build_parser

    parser = build_parser()
    a = parser.parse_args(["sample", "--checkpoint", "x", "--max_new_tokens", "5", "--top_k", "3"])
    b = parser.parse_args(["sample", "--checkpoint", "x", "--max-new-tokens", "5", "--top-k", "3"])
    assert (a.max_new_tokens, a.top_k) == (b.max_new_tokens, b.top_k) == (5, 3)
    c = parser.parse_args(["eval", "--checkpoint", "x", "--max_examples", "4", "--max-tokens", "9"])
    assert (c.max_examples, c.max_tokens) == (4, 9)
    d = parser.parse_args(["finetune", "--init_from", "x", "--task", "t", "--max-iters", "3"])
    assert d.init_from == "x" and d.set_max_iters == "3"


def test_optimizer_muon_trains_and_resumes_bit_exact(env):
    """--optimizer muon: Muon on the blocks' matrices beside AdamW; its momentum buffers go into the
    checkpoint, a split run equals a whole one bit for bit, and an AdamW run cannot resume as Muon."""
    cfg = dict(max_iters=12, dtype="float64", optimizer="muon", muon_lr=0.02, checkpoint_interval=4)
    run(smoke(**cfg), env / "muon_whole")
    run(smoke(**{**cfg, "max_iters": 5}), env / "muon_parts")
    run(smoke(**cfg), env / "muon_parts", resume=True)
    assert_same_run(env / "muon_parts" / "last", env / "muon_whole" / "last")
    saved = checkpoint.load(env / "muon_whole" / "last")
    assert any(k.startswith("momentum_buffer.h.0.") for k in saved.optimizer)
    assert saved.state["train_config"]["optimizer"] == "muon"
    run(smoke(max_iters=4), env / "adamw_run")
    saved_cfg = checkpoint.load(env / "adamw_run" / "last").state["train_config"]
    with pytest.raises(ValueError, match="cannot change on resume"):
        train_config.resume_config(saved_cfg, {"optimizer": "muon"})


@pytest.mark.parametrize("changes, message", [({"optimizer": "sgd"}, "adamw or muon"),
                                              ({"optimizer": "muon", "zero": 1}, "zero 0"),
                                              ({"optimizer": "muon", "muon_lr": -1.0}, "muon_lr")])
def test_the_optimizer_setting_is_checked(changes, message):
    with pytest.raises(ValueError, match=message):
        TrainConfig(**changes)
