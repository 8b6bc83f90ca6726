"""LoRA: the layer pair and the adapted model, against PEFT's references, finite differences, and the
arithmetic the chapter quotes (lessons/14_lora)."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import pytest

from minigpt import hf, optim
from minigpt.course.gradcheck import check_layer, rel_error, sampled_grad_errors
from minigpt.finetune.lora import (
    LoRAConfig,
    LoRAGPT,
    adapter_shapes,
    lora_gpt_loss_and_grads,
)
from minigpt.layers.lora import lora_backward, lora_forward, lora_init, lora_merge, lora_unmerge
from minigpt.model import GPT, GPTConfig

REF = Path(__file__).resolve().parents[1] / "lessons" / "14_lora" / "reference"
TOL = {"rtol": 1e-10, "atol": 1e-12}
CASES = {"model_all": ("c_attn", "c_proj", "c_fc"), "model_c_attn": ("c_attn",)}


def load(name: str) -> dict[str, np.ndarray]:
    with np.load(REF / name, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


@pytest.fixture(scope="module")
def base() -> GPT:
    return hf.load_gpt2(REF / "tiny_gpt2", dtype=np.float64)


def adapted(base: GPT, case: str) -> tuple[LoRAGPT, dict[str, np.ndarray]]:
    z = load(f"{case}.npz")
    lora = LoRAConfig(r=int(z["r"]), alpha=float(z["alpha"]), targets=CASES[case])
    adapters = {k: z[k] for k in z if k.startswith("h.")}
    return LoRAGPT(base, lora, params=adapters), z


# ---- the layer --------------------------------------------------------------------------------------
def test_layer_equals_peft():
    z = load("layer.npz")
    out, cache = lora_forward(z["x"], z["weight"], z["bias"], z["lora_A"], z["lora_B"], float(z["scale"]))
    np.testing.assert_allclose(out, z["out"], **TOL)
    dx, dA, dB = lora_backward(z["dout"], cache)
    np.testing.assert_allclose(dx, z["dx"], **TOL)
    np.testing.assert_allclose(dA, z["dlora_A"], **TOL)
    np.testing.assert_allclose(dB, z["dlora_B"], **TOL)
    np.testing.assert_allclose(lora_merge(z["weight"], z["lora_A"], z["lora_B"], 2.0), z["merged"], **TOL)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_layer_finite_differences(dropout):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 5, 12))                                   # (B, T, Cin)
    w, b = rng.standard_normal((12, 7)), rng.standard_normal(7)
    A, B = rng.standard_normal((12, 3)), rng.standard_normal((3, 7))

    def forward(x, A, B):     # the same dropout mask on every call: a fresh generator with one seed
        return lora_forward(x, w, b, A, B, 2.0, dropout, np.random.default_rng(5), True)

    errors = check_layer(forward, lora_backward, [x, A, B])
    assert max(errors.values()) < 1e-8, errors


def test_dropout_acts_on_the_adapter_only():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((4, 6)), rng.standard_normal((6, 5))
    A, B = rng.standard_normal((6, 2)), np.zeros((2, 5))
    out, _ = lora_forward(x, w, None, A, B, 1.0, 0.5, np.random.default_rng(0), True)
    np.testing.assert_array_equal(out, x @ w)          # B = 0: the frozen path never sees dropout
    out_eval, _ = lora_forward(x, w, None, A, rng.standard_normal((2, 5)), 1.0, 0.5, None, False)
    assert np.all(np.isfinite(out_eval))               # eval mode needs no generator


def test_merge_unmerge_and_the_merged_layer():
    rng = np.random.default_rng(2)
    x, w, b = rng.standard_normal((3, 4, 8)), rng.standard_normal((8, 10)), rng.standard_normal(10)
    A, B = rng.standard_normal((8, 4)), rng.standard_normal((4, 10))
    merged = lora_merge(w, A, B, 0.5)
    out, _ = lora_forward(x, w, b, A, B, 0.5)
    np.testing.assert_allclose(x @ merged + b, out, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(lora_unmerge(merged, A, B, 0.5), w, rtol=1e-12, atol=1e-12)
    assert not np.shares_memory(merged, w)


def test_init_is_peft_default():
    ref = load("peft_init.npz")                        # torch's draws: compare the law, not the numbers
    A, B = lora_init(12, 36, 4, np.random.default_rng(0), np.float64)
    assert A.shape == ref["lora_A"].shape and B.shape == ref["lora_B"].shape
    np.testing.assert_array_equal(B, 0.0)
    np.testing.assert_array_equal(ref["lora_B"], 0.0)
    bound = 1 / np.sqrt(12)
    assert np.abs(A).max() <= bound and np.abs(ref["lora_A"]).max() <= bound
    big, _ = lora_init(768, 2304, 64, np.random.default_rng(0))        # U(-b, b): variance b^2 / 3
    assert big.dtype == np.float32
    assert abs(big.var() / (1 / 768 / 3) - 1) < 0.02 and abs(big.mean()) < 1e-3


def test_layer_errors():
    x, w = np.zeros((2, 6)), np.zeros((6, 5))
    with pytest.raises(ValueError, match="A must be"):
        lora_forward(x, w, None, np.zeros((2, 6)), np.zeros((2, 5)), 1.0)       # PEFT's (r, in) layout
    with pytest.raises(ValueError, match="rank"):
        lora_init(6, 5, 0, np.random.default_rng(0))


def test_float32_stays_float32():
    rng = np.random.default_rng(3)
    f = np.float32
    x, w = rng.standard_normal((2, 3, 6)).astype(f), rng.standard_normal((6, 5)).astype(f)
    A, B = rng.standard_normal((6, 2)).astype(f), rng.standard_normal((2, 5)).astype(f)
    out, cache = lora_forward(x, w, None, A, B, np.float64(2.0))
    assert out.dtype == f and all(g.dtype == f for g in lora_backward(np.ones_like(out), cache))


# ---- the model --------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", list(CASES))
def test_model_equals_peft(base, case):
    model, z = adapted(base, case)
    loss, grads, dx = lora_gpt_loss_and_grads(base.params, model.params, z["idx"], z["targets"],
                                              model.config, model.lora)
    assert abs(loss - float(z["loss"])) <= 1e-10 * abs(float(z["loss"]))
    assert set(grads) == {k for k in z if k.startswith("h.")}
    for name, g in grads.items():
        np.testing.assert_allclose(g, z["grad." + name], err_msg=name, **TOL)
    np.testing.assert_allclose(dx, z["dx"], **TOL)
    np.testing.assert_allclose(model.merged().forward(z["idx"]), z["merged_logits"], **TOL)
    np.testing.assert_allclose(model.forward(z["idx"]), z["merged_logits"], **TOL)


def test_fresh_adapters_compute_the_base_model(base):
    model = LoRAGPT(base, LoRAConfig(r=4, targets=("c_attn", "c_proj", "c_fc")), seed=0)
    z = load("model_all.npz")
    np.testing.assert_array_equal(model.forward(z["idx"]), base.forward(z["idx"]))
    loss, grads = model.loss_and_grads(z["idx"], z["targets"])
    assert loss == base.loss(z["idx"], z["targets"])
    assert all(np.all(g == 0) for k, g in grads.items() if k.endswith("lora_A"))     # B = 0 blocks dA
    assert all(np.any(g != 0) for k, g in grads.items() if k.endswith("lora_B"))     # A != 0: B learns


def test_model_finite_differences_with_dropout():
    cfg = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=3, n_embd=12, dropout=0.1)
    model = LoRAGPT(GPT(cfg, seed=1, dtype=np.float64),
                    LoRAConfig(r=3, alpha=6, dropout=0.2, targets=("c_attn", "c_proj", "c_fc")), seed=2)
    rng = np.random.default_rng(0)
    for v in model.params.values():
        v += 0.2 * rng.standard_normal(v.shape)
    idx, tg = rng.integers(0, 11, (2, 7)), rng.integers(0, 11, (2, 7))

    def loss():
        return model.loss_and_grads(idx, tg, rng=np.random.default_rng(9))[0]

    _, grads = model.loss_and_grads(idx, tg, rng=np.random.default_rng(9))
    errors = sampled_grad_errors(loss, model.params, grads, 6, np.random.default_rng(4))
    assert max(e for e, _ in errors.values()) < 1e-6, errors


def test_training_moves_the_adapters_only(base):
    model, z = adapted(base, "model_c_attn")
    frozen = {k: v.copy() for k, v in base.params.items()}
    before = {k: v.copy() for k, v in model.params.items()}
    opt = optim.AdamW(model.params, lr=1e-2)
    losses = []
    for _ in range(5):
        loss, grads = model.loss_and_grads(z["idx"], z["targets"])
        opt.step(grads)
        losses.append(loss)
    assert losses[-1] < losses[0]
    assert all(np.array_equal(base.params[k], frozen[k]) for k in frozen)
    assert all(not np.array_equal(model.params[k], before[k]) for k in before)


def test_parameter_arithmetic_of_gpt2_small():
    cfg = GPTConfig(50257, 1024, 12, 12, 768)
    shapes = adapter_shapes(cfg, LoRAConfig(r=8, targets=("c_attn",)))
    trainable = sum(int(np.prod(s)) for s in shapes.values())
    assert trainable == 294_912 == 12 * 8 * (768 + 3 * 768)
    assert round(100 * trainable / 124_439_808, 2) == 0.24
    every = adapter_shapes(cfg, LoRAConfig(r=8, targets=("c_attn", "c_proj", "c_fc")))
    assert sum(int(np.prod(s)) for s in every.values()) == 12 * 8 * (4 + 2 + 5 + 5) * 768 == 1_179_648
    assert len(every) == 12 * 4 * 2                    # c_proj names both attention's and the MLP's


def test_targets_and_errors(base):
    assert LoRAConfig(targets=("c_proj",)).adapted() == ("attn.c_proj", "mlp.c_proj")
    assert LoRAConfig(targets=("mlp.c_proj", "c_attn")).adapted() == ("attn.c_attn", "mlp.c_proj")
    for bad in ({"r": 0}, {"alpha": 0.0}, {"dropout": 1.0}, {"targets": ("c_q",)}, {"targets": "c_attn"}):
        with pytest.raises(ValueError):
            LoRAConfig(**bad)
    with pytest.raises(ValueError, match="missing"):
        LoRAGPT(base, LoRAConfig(r=2, targets=("c_fc",)), params={})
    model = LoRAGPT(base, LoRAConfig(r=2, dropout=0.1))
    z = load("model_all.npz")
    with pytest.raises(ValueError, match="rng"):
        model.loss_and_grads(z["idx"], z["targets"])


def test_float32_model_and_num_params(base):
    b32 = GPT(base.config, dtype=np.float32, params={k: v.astype(np.float32) for k, v in base.params.items()})
    model = LoRAGPT(b32, LoRAConfig(r=5, targets=("c_attn", "c_fc")))
    assert model.num_params() == 2 * 5 * ((12 + 36) + (12 + 48))
    z = load("model_all.npz")
    loss, grads = model.loss_and_grads(z["idx"], z["targets"])
    assert all(g.dtype == np.float32 for g in grads.values()) and list(grads) == list(model.params)


def test_merged_model_exports_and_loads(base, tmp_path):
    model, z = adapted(base, "model_all")
    hf.save_gpt2(model.merged(), tmp_path / "merged")
    again = hf.load_gpt2(tmp_path / "merged", dtype=np.float64)
    np.testing.assert_allclose(again.forward(z["idx"]), z["merged_logits"], **TOL)
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    hf_model = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "merged", dtype=torch.float64).eval()
    with torch.no_grad():
        logits = hf_model(torch.tensor(z["idx"])).logits.numpy()
    assert rel_error(logits, z["merged_logits"]) < 1e-12


# ---- fine-tuning with LoRA through the training loop and the command line ------------------------------
CHARS = "\n，。一二三四五六七八九十山水月花風雲"
SMALL = {"max_iters": 6, "eval_interval": 2, "eval_iters": 2, "checkpoint_interval": 2, "batch_size": 4,
         "lr": 1e-2, "warmup_iters": 1, "lr_decay_iters": 6}


def quiet(_msg):
    pass


@pytest.fixture
def run_base(tmp_path):
    """A tiny pre-trained checkpoint (char tokenizer over CHARS) and a couplet-like task."""
    from dataclasses import asdict

    from minigpt.files import checkpoint
    from minigpt.finetune import tasks
    from minigpt.tokenizer import CharTokenizer
    from minigpt.training.config import TrainConfig

    tok = CharTokenizer(CHARS)
    tok.save(tmp_path / "tok.json")
    cfg = TrainConfig(n_layer=2, n_head=2, n_embd=8, block_size=16, batch_size=4, dataset="poems")
    model = GPT(GPTConfig(tok.vocab_size, 16, 2, 2, 8), seed=0, dtype=np.float32)
    state = {"iter": 0, "model_config": asdict(model.config), "train_config": asdict(cfg),
             "rng": {"data": np.random.default_rng(0).bit_generator.state,
                     "dropout": np.random.default_rng(1).bit_generator.state}}
    checkpoint.save(tmp_path / "pre" / "best", model, optim.AdamW(model.params, lr=1e-3).state_dict(), state,
                    tmp_path / "tok.json")
    lines = [(a + b + "，", b + a + "。") for a in "一二三四五" for b in "山水月花風"]
    tasks.write_jsonl(tmp_path / "train.jsonl", lines[:20])
    tasks.write_jsonl(tmp_path / "val.jsonl", lines[20:])
    return tmp_path


def test_lora_finetune_checkpoints_adapters_only_and_resumes_exactly(run_base):
    import json

    from minigpt.files import checkpoint, safetensors
    from minigpt.files.models import load_model
    from minigpt.finetune import run as finetune

    lora = LoRAConfig(r=2, alpha=4, dropout=0.1, targets=("c_attn", "c_fc"))
    kw = dict(init=run_base / "pre", val=run_base / "val.jsonl", progress=False, log=quiet, lora=lora)
    summary = finetune.finetune(run_base / "train.jsonl", run_base / "straight", overrides=SMALL, **kw)
    assert summary["iter"] == 6
    last = run_base / "straight" / "last"
    saved = safetensors.load(last / "model.safetensors")
    layers = ("attn.c_attn", "mlp.c_fc")
    assert sorted(saved) == sorted(f"h.{i}.{n}.lora_{m}" for i in range(2) for n in layers for m in "AB")
    moments = safetensors.load(last / "optimizer.safetensors")
    assert len(moments) == 2 * len(saved) and all(".lora_" in k for k in moments)
    state = json.loads((last / "state.json").read_text())
    assert state["lora"]["r"] == 2 and state["lora"]["base"] == str((run_base / "pre" / "best").resolve())
    base = load_model(run_base / "pre").model
    assert all(np.array_equal(base.params[k], v) for k, v in checkpoint.load(
        last, base=base).model.base.params.items())                        # the base never moved
    vals = [json.loads(x)["val_loss"] for x in (run_base / "straight" / "log.jsonl").read_text().splitlines()
            if json.loads(x)["kind"] == "eval"]
    assert vals[-1] < vals[0]

    finetune.finetune(run_base / "train.jsonl", run_base / "split", overrides=dict(SMALL, max_iters=3), **kw)
    finetune.finetune(run_base / "train.jsonl", run_base / "split", overrides={"max_iters": 6}, resume=True,
                      val=run_base / "val.jsonl", progress=False, log=quiet)
    a = safetensors.load(last / "model.safetensors")
    b = safetensors.load(run_base / "split" / "last" / "model.safetensors")
    assert all(np.array_equal(a[k], b[k]) for k in a)                      # bit-identical after a resume

    # eval and sample load a LoRA run like any other: the merged model
    loaded = load_model(run_base / "straight")
    adapted = checkpoint.load(run_base / "straight" / "best", base=base).model
    idx = np.arange(1, 9)[None, :]
    np.testing.assert_allclose(loaded.model.forward(idx), adapted.forward(idx), rtol=1e-5, atol=1e-6)

    with pytest.raises(ValueError, match="LoRA settings"):               # other LoRA settings on resume
        finetune.finetune(run_base / "train.jsonl", run_base / "split", overrides={"max_iters": 8},
                          resume=True, val=run_base / "val.jsonl", progress=False, log=quiet,
                          lora=LoRAConfig(r=4))
    with pytest.raises(checkpoint.CheckpointError, match="adapters only"):
        checkpoint.load(last)
    damage = (("r", 0, "'r'"), ("targets", ["c_q"], "'targets'"), ("base_sha256", 7, "str"))
    for field, bad, message in damage:
        state = json.loads((last / "state.json").read_text())
        state["lora"][field] = bad                                          # a damaged lora table
        (run_base / "bad" / "last").mkdir(parents=True, exist_ok=True)
        for name in ("model.safetensors", "optimizer.safetensors", "tokenizer.json"):
            (run_base / "bad" / "last" / name).write_bytes((last / name).read_bytes())
        (run_base / "bad" / "last" / "state.json").write_text(json.dumps(state))
        with pytest.raises(checkpoint.CheckpointError, match=message):
            load_model(run_base / "bad")
    # the base changed after training: the adapters are refused for it
    pre = checkpoint.load(run_base / "pre" / "best")
    pre.model.params["h.0.attn.c_attn.weight"][0, 0] += 1.0
    checkpoint.save(run_base / "pre" / "best", pre.model, pre.optimizer, pre.state, run_base / "tok.json")
    with pytest.raises(checkpoint.CheckpointError, match="sha256 differs"):
        finetune.finetune(run_base / "train.jsonl", run_base / "split", overrides={"max_iters": 8},
                          resume=True, val=run_base / "val.jsonl", progress=False, log=quiet)


def test_cli_finetune_lora_and_merge(run_base, capsys):
    from minigpt.cli import main
    from minigpt.files.models import load_model

    def args(out):
        return ["finetune", "--init-from", str(run_base / "pre"), "--task", str(run_base / "train.jsonl"),
                "--out", str(run_base / out), "--no-progress", "--max_iters", "4", "--eval_interval", "2",
                "--eval_iters", "1"]

    out = run_base / "cli"
    assert main([*args("cli"), "--lora", "2", "--lora-alpha", "4", "--lora_targets", "c_attn,c_proj",
                 "--merge"]) == 0
    text = capsys.readouterr().out
    assert "LoRA r 2 (alpha 4) on c_attn,c_proj" in text and "frozen" in text
    merged = hf.load_gpt2(out / "merged", dtype=np.float32)
    idx = np.arange(1, 9)[None, :]
    np.testing.assert_allclose(merged.forward(idx), load_model(out).model.forward(idx), rtol=1e-6, atol=1e-6)
    assert (out / "merged" / "tokenizer.json").is_file()
    assert main([*args("x"), "--lora-alpha", "4"]) == 2
    assert "without --lora RANK" in capsys.readouterr().err
    assert main([*args("y"), "--merge"]) == 2
    assert "use it with --lora" in capsys.readouterr().err
    assert main([*args("z"), "--lora", "2", "--lora-targets", "c_q"]) == 2
    assert "unknown LoRA targets" in capsys.readouterr().err


# ---- lesson 14's check fails the classic bugs ------------------------------------------------------------
def _mutant(**changes):
    """minigpt's layer module with some functions replaced: what a learner's buggy file looks like."""
    from types import ModuleType

    from minigpt.layers import lora as layer

    names = ("lora_forward", "lora_backward", "lora_merge", "lora_unmerge", "lora_init")
    module = ModuleType("lora_mutant")
    module.__dict__.update({n: getattr(layer, n) for n in names} | changes)
    return module


def _forward_without_scale(x, weight, bias, lora_A, lora_B, scale, dropout=0.0, rng=None, training=True):
    return lora_forward(x, weight, bias, lora_A, lora_B, 1.0, dropout, rng, training)


def _backward_without_frozen_path(dout, cache):
    dx, dA, dB = lora_backward(dout, cache)
    weight = cache[2]
    return dx - (dout.reshape(-1, weight.shape[1]) @ weight.T).reshape(dx.shape), dA, dB


def _forward_dropout_everywhere(x, weight, bias, lora_A, lora_B, scale, dropout=0.0, rng=None, training=True):
    if training and dropout > 0:
        x = x * (rng.random(x.shape) >= dropout) / (1 - dropout)
    return lora_forward(x, weight, bias, lora_A, lora_B, scale)


def _init_b_random(c_in, c_out, r, rng, dtype=np.float32):
    A, _ = lora_init(c_in, c_out, r, rng, dtype)
    return A, (0.01 * rng.standard_normal((r, c_out))).astype(dtype)


def _merge_in_place(weight, lora_A, lora_B, scale):
    weight += scale * (lora_A @ lora_B)
    return weight


@pytest.mark.parametrize("mutant,failing", [
    ({"lora_forward": _forward_without_scale}, "scale multiplies the update"),
    ({"lora_backward": _backward_without_frozen_path}, "lora_backward float64 vs PEFT: dx"),
    ({"lora_forward": _forward_dropout_everywhere}, "dropout is the adapter's only"),
    ({"lora_init": _init_b_random}, "lora_B is zero"),
    ({"lora_merge": _merge_in_place}, "base weight is unchanged"),
], ids=["no scale", "dx without the frozen path", "dropout on both paths", "B random", "merge in place"])
def test_lesson_check_fails_classic_bugs(mutant, failing):
    import io

    from minigpt.course.grader import grade

    g = grade(14, impl=_mutant(**mutant), out=io.StringIO(), verbose=False)
    failed = [r.name for r in g.results if r.status == "FAIL"]
    assert any(failing in name for name in failed), failed
    clean = grade(14, impl=_mutant(), out=io.StringIO(), verbose=False)
    assert clean.failed == 0 and clean.passed > 20


MPIEXEC = shutil.which("mpiexec")


@pytest.mark.skipif(MPIEXEC is None or importlib.util.find_spec("mpi4py") is None,
                    reason="mpiexec / mpi4py not installed (pip install -e '.[distributed]')")
def test_lora_finetune_on_two_ranks_equals_one_process(run_base):
    """Data parallel (lesson 13) with LoRA: the all-reduce sums the adapters' gradients only; 2 ranks x
    batch 2 end with the adapters of one process with batch 4."""
    import os
    import subprocess
    import sys

    from minigpt.files import safetensors
    from minigpt.finetune import run as finetune

    settings = {"max_iters": 4, "eval_interval": 2, "eval_iters": 1, "lr": 1e-2, "dropout": 0.0,
                "warmup_iters": 1}
    lora = LoRAConfig(r=2, alpha=4, targets=("c_attn", "c_fc"))
    finetune.finetune(run_base / "train.jsonl", run_base / "one", init=run_base / "pre", lora=lora,
                      val=run_base / "val.jsonl", overrides={**settings, "batch_size": 4}, progress=False,
                      log=quiet)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1",
               PYTHONPATH=str(Path(__file__).resolve().parents[1]))
    proc = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "minigpt", "finetune", "--init-from",
                           str(run_base / "pre"), "--task", str(run_base / "train.jsonl"), "--val",
                           str(run_base / "val.jsonl"), "--out", str(run_base / "two"), "--no-progress",
                           "--batch_size", "2", "--lora", "2", "--lora-alpha", "4", "--lora-targets",
                           "c_attn,c_fc", *[f"--{k}={v}" for k, v in settings.items()]],
                          env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "LoRA r 2" in proc.stdout and "2 ranks x batch 2" in proc.stdout
    a = safetensors.load(run_base / "one" / "last" / "model.safetensors")
    b = safetensors.load(run_base / "two" / "last" / "model.safetensors")
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-4, atol=1e-6, err_msg=name)
