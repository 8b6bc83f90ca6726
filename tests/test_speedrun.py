"""The speedrun preset: it parses, trains nanoGPT's data with its own recipe, and its model learns.

The full claim (whole-val loss <= 1.88 in half of the baby recipe's wall time) is a benchmark,
benchmarks/speedrun.py, not a test: it takes minutes. Here: the preset is a valid TrainConfig that differs
from baby only where a speedrun may (never the data), and a few of its steps on tiny Shakespeare run and
lower the loss.
"""

import math

import numpy as np

from minigpt.datasets import recipes
from minigpt.files import checkpoint
from minigpt.metrics.perplexity import mean_nll
from minigpt.training import loop
from minigpt.training.batches import load_token_data
from minigpt.training.config import config_from_preset, list_presets


def quiet(_msg):
    pass


def test_the_preset_parses_and_keeps_the_data():
    assert "speedrun" in list_presets()
    fast, baby = config_from_preset("speedrun"), config_from_preset("baby")
    assert fast.dataset == baby.dataset == "shakespeare_char"     # same data, same split
    assert fast.dtype == "float32" and fast.dropout == 0.0
    # less training than nanoGPT's recipe, in tokens seen
    tokens = fast.max_iters * fast.batch_size * fast.block_size * fast.grad_accum
    assert tokens < baby.max_iters * baby.batch_size * baby.block_size
    # the run is not spent evaluating: at most the first and the last evaluation
    assert fast.eval_interval >= fast.max_iters and fast.checkpoint_interval >= fast.max_iters
    assert fast.lr_decay_iters == fast.max_iters and fast.min_lr < fast.lr


def test_a_few_steps_of_the_speedrun_learn(shared, tmp_path, monkeypatch):
    text = shared("tinyshakespeare.txt")
    monkeypatch.setenv("MINIGPT_DATA", str(tmp_path / "data"))
    folder = recipes.prepare("shakespeare_char", from_file=text, progress=False, log=quiet)
    steps = 30
    cfg = config_from_preset("speedrun", {"max_iters": steps, "lr_decay_iters": steps, "warmup_iters": 5,
                                          "sample_tokens": 0, "seed": 0})
    data = load_token_data(folder, cfg.batch_size, cfg.block_size)
    summary = loop.train(cfg, tmp_path / "run", data, progress=False, sample=False, log=quiet)
    assert summary["iter"] == steps and not summary["interrupted"]
    model = checkpoint.load(tmp_path / "run" / "last").model
    val = np.asarray(data.val.ids)[:20_000]
    nll, count = mean_nll(model, val, batch_size=32)
    assert count == len(val) - 1
    # from uniform guessing (ln 65 = 4.17) to well below it in 30 steps; a run that does not learn stays ~4.2
    assert nll < math.log(65) - 0.9, nll

