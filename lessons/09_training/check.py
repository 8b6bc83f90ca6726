"""Lesson 09's checks: the training loop's pieces against a PyTorch + transformers run of the same steps.

What is graded (the implementation under test, `impl`, is minigpt.training.batches + loop, or your file):

    impl.get_batch(ids, batch_size, block_size, rng)          -> x, y (B, T) int64: random windows
    impl.estimate_loss(model, ids, cfg, rng)                  -> mean eval loss over cfg.eval_iters batches
    impl.train_step(model, opt, batches, grad_clip, dropout_rng=None) -> (mean loss, norm before clipping)

reference/ holds a tiny GPT-2 (2 layers, 12 channels, vocabulary 23) in float64, written by transformers,
and 20 steps of 2 micro-batches each that make_reference.py trained with torch.optim.AdamW (decay on
ndim >= 2 only), clip_grad_norm_ and nanoGPT's cosine schedule. Here the same steps run with minigpt's
model and AdamW (minigpt.optim, graded in lesson 08) and your loop pieces.

Tolerances (float64):
    batches                exact: the same rule (start = rng.integers(0, n - T, size=B)) on the same seed
    losses, gradient norms rtol 1e-12: only rounding differs (measured: 4e-16 and 3e-15 at most)
    eval loss              rtol 1e-12
    weights after 20 steps rtol 1e-7, atol 1e-9, and max |diff| <= 1e-8 over every tensor: Adam divides by
                           sqrt(v) + eps, which magnifies rounding differences where v is tiny (measured:
                           4e-12 at most, 1e-15 on most tensors)
    resume                 exact: 10 steps, then a fresh model and optimizer loaded from copies of the
                           weights and optimizer state, then 10 more, must give the straight run's losses
                           bit for bit - the property a checkpoint relies on

The laptop band (step 4, a separate check of a real run: it grades `minigpt train`'s output, never the
file under test, and says so). If a `minigpt train --preset baby` run exists (runs/baby, or the folder in
$MINIGPT_BABY_RUN), its val loss at every evaluation (iterations 0, 250, ..., 2000) must lie within the
band of reference/laptop.json, which make_laptop_reference.py wrote by training nanoGPT's recipe in PyTorch on
several seeds: mean +- max(3 x the seeds' standard deviation, 0.08). Why 0.08: one run's val loss is a
20-batch estimate, which moves by +-0.015 (std) when only the batches are redrawn, and the seed adds about
+-0.01; over PyTorch's 9 seeds and minigpt's 4 a single run's std is 0.015-0.021 at every evaluation but
iteration 500 (0.03: runs leave the bigram plateau at different moments), so 0.08 is 4 standard deviations
(2.7 at iteration 500). It catches gross errors (a loss that does not fall, or falls too far: a peek at
future tokens), not differences of a few hundredths; for those, compare whole-val losses over seeds as the
README does. A run with other settings than the recipe, or no run at all, is skipped (with the command to
make one); a run cut short is compared as far as it got.

What it does not check: checkpoint files, Ctrl-C or kill -9 (tests/test_train.py does, on minigpt), dropout
(torch's masks cannot match ours), speed.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from minigpt.course.grader import Step, load_reference

IMPL = ("minigpt.training.batches", "minigpt.training.loop")
REF = Path(__file__).resolve().parent / "reference"
RTOL_LOSS, RTOL_W, ATOL_W = 1e-12, 1e-7, 1e-9
BAND_SIGMAS, BAND_FLOOR = 3.0, 0.08   # laptop band: mean +- max(3 std over seeds, 0.08) nats
BABY_RUN_ENV = "MINIGPT_BABY_RUN"     # a run folder to compare instead of runs/baby


def _setup(ref: dict, meta: dict):
    from minigpt import hf, optim

    model = hf.load_gpt2(REF / "init_gpt2", dtype=np.float64)
    o = meta["optimizer"]
    opt = optim.AdamW(model.params, lr=meta["schedule"]["lr"], betas=tuple(o["betas"]), eps=o["eps"],
                      weight_decay=o["weight_decay"])
    return model, opt


def _lr(meta: dict, t: int) -> float:
    from minigpt import optim

    s = meta["schedule"]
    return optim.cosine_lr(t, s["lr"], s["warmup_iters"], s["lr_decay_iters"], s["min_lr"])


def _run(impl, model, opt, ref: dict, meta: dict, steps: range) -> tuple[list[float], list[float]]:
    losses, norms = [], []
    for t in steps:
        opt.lr = _lr(meta, t)
        batches = [(ref["x"][t, a], ref["y"][t, a]) for a in range(ref["x"].shape[1])]
        loss, norm = impl.train_step(model, opt, batches, meta["grad_clip"])
        losses.append(float(loss))
        norms.append(float(norm))
    return losses, norms


def _data():
    ref = load_reference(__file__, "training.npz")
    meta = load_reference(__file__, "meta.json")
    return ref, meta


def _get_batch(impl, g) -> None:
    ref, meta = _data()
    N, A, B, T = ref["x"].shape
    with g.case("get_batch", pitfall="off_by_one"):
        rng = np.random.default_rng(meta["seeds"]["batches"])
        got = [impl.get_batch(ref["corpus"], B, T, rng) for _ in range(N * A)]
        x = np.stack([b[0] for b in got]).reshape(N, A, B, T)
        y = np.stack([b[1] for b in got]).reshape(N, A, B, T)
        g.equal("x: 40 seeded draws of (B, T) windows", x, ref["x"])
        g.equal("y: the same windows shifted by one token", y, ref["y"])
        g.true("x and y are int64", got[0][0].dtype == np.int64 and got[0][1].dtype == np.int64,
               f"got {got[0][0].dtype}, {got[0][1].dtype}")
    with g.case("get_batch refuses a corpus shorter than block_size + 1"):
        with g.raises("clear error", ValueError):
            impl.get_batch(ref["corpus"][:T], B, T, np.random.default_rng(0))


def _estimate_loss(impl, g) -> None:
    from minigpt.training.config import TrainConfig

    ref, meta = _data()
    _, _, B, T = ref["x"].shape
    cfg = TrainConfig(batch_size=B, block_size=T, eval_iters=ref["eval_x"].shape[0])
    with g.case("estimate_loss at initialisation", pitfall="eval"):
        model, _ = _setup(ref, meta)
        got = impl.estimate_loss(model, ref["val_corpus"], cfg, np.random.default_rng(meta["seeds"]["eval"]))
        g.close("mean eval loss", got, ref["eval_loss_init"], rtol=RTOL_LOSS)


def _train_step(impl, g) -> None:
    from minigpt.training.config import TrainConfig

    ref, meta = _data()
    N, A, B, T = ref["x"].shape
    cfg = TrainConfig(batch_size=B, block_size=T, eval_iters=ref["eval_x"].shape[0])
    with g.case(f"train_step: {N} steps of {A} micro-batches vs torch", pitfall="accumulate"):
        model, opt = _setup(ref, meta)
        losses, norms = _run(impl, model, opt, ref, meta, range(N))
        g.close("losses", np.array(losses), ref["loss"], rtol=RTOL_LOSS)
        g.close("gradient norms before clipping", np.array(norms), ref["grad_norm"], rtol=RTOL_LOSS)
        for name in ("wte.weight", "h.0.attn.c_attn.weight", "h.1.mlp.c_proj.bias", "ln_f.weight"):
            g.close(f"{name} after {N} steps", model.params[name], ref[f"final.{name}"], rtol=RTOL_W,
                    atol=ATOL_W)
        worst = max(float(np.max(np.abs(p - ref[f"final.{n}"]))) for n, p in model.params.items())
        g.true("every weight after the steps", worst <= 1e-8, f"max |diff| over all tensors {worst:.3g}")
        got = impl.estimate_loss(model, ref["val_corpus"], cfg, np.random.default_rng(meta["seeds"]["eval"]))
        g.close("eval loss after training", got, ref["eval_loss_final"], rtol=RTOL_LOSS)

    with g.case("resume: 10 steps, reload from copies, 10 more == 20 straight"):
        model, opt = _setup(ref, meta)
        first, _ = _run(impl, model, opt, ref, meta, range(N // 2))
        saved_params = {k: v.copy() for k, v in model.params.items()}
        saved_opt = opt.state_dict()
        model, opt = _setup(ref, meta)
        for k, v in saved_params.items():
            model.params[k][...] = v
        opt.load_state_dict(saved_opt)
        second, _ = _run(impl, model, opt, ref, meta, range(N // 2, N))
        straight_model, straight_opt = _setup(ref, meta)
        straight, _ = _run(impl, straight_model, straight_opt, ref, meta, range(N))
        g.equal("losses, bit for bit", first + second, straight)

    with g.case("train_step leaves the weights alone when the loss is not finite", pitfall="nan_step"):
        model, opt = _setup(ref, meta)
        model.params["ln_f.bias"][0] = np.nan
        before = {k: v.copy() for k, v in model.params.items()}
        loss, _ = impl.train_step(model, opt, [(ref["x"][0, 0], ref["y"][0, 0])], meta["grad_clip"])
        same = all(np.array_equal(before[k], v, equal_nan=True) for k, v in model.params.items())
        g.true("loss is NaN and no weight changed", bool(np.isnan(loss)) and same, f"loss {loss}")


def _laptop_band(impl, g) -> None:
    g.note("this step grades a real run made by `minigpt train` (minigpt's loop), not the file under test")
    check_laptop_band(g)


STEPS = [
    Step(1, "random windows and their targets", ("get_batch",), _get_batch),
    Step(2, "the eval loss estimate", ("estimate_loss",), _estimate_loss),
    Step(3, "one optimizer step over micro-batches, 20 times vs torch", ("train_step",), _train_step),
    Step(4, "a real run: the laptop band (minigpt train --preset baby, not your file)", (), _laptop_band),
]


def _baby_run() -> Path:
    from minigpt.files.paths import REPO_ROOT

    return Path(os.environ.get(BABY_RUN_ENV) or REPO_ROOT / "runs" / "baby")


def check_laptop_band(g) -> None:
    """A learner's baby run (log.jsonl) against the PyTorch nanoGPT band in reference/laptop.json."""
    with g.case("the laptop band (reference/laptop.json)"):
        ref = load_reference(__file__, "laptop.json")
        _compare_baby_run(g, ref, _baby_run())


def _compare_baby_run(g, ref: dict, run: Path) -> None:
    how = ("minigpt prepare shakespeare_char && minigpt train --preset baby --out runs/baby "
           f"(or set {BABY_RUN_ENV} to a run folder)")
    log = run / "log.jsonl"
    if not log.is_file():
        g.skip("a baby run's val loss", f"no run at {run}: {how}")
        return
    states = [d / "state.json" for d in (run / "last", run / "best") if (d / "state.json").is_file()]
    if states:
        cfg = json.loads(states[0].read_text(encoding="utf-8")).get("train_config", {})
        differ = {k: (cfg.get(k), v) for k, v in ref["recipe"].items() if cfg.get(k) != v}
        if differ:
            g.skip("a baby run's val loss", f"{run} is not the baby recipe (setting: run's, recipe's): "
                   f"{differ}; {how}")
            return
    evals = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue                                   # a line cut short by kill -9
        if rec.get("kind") == "eval":
            evals[rec["iter"]] = rec["val_loss"]
    val = ref["summary"]["val_loss"]
    compared = 0
    for i, it in enumerate(ref["iters"]):
        if it not in evals:
            continue
        compared += 1
        band = max(BAND_SIGMAS * val["std"][i], BAND_FLOOR)
        lo, hi = val["mean"][i] - band, val["mean"][i] + band
        g.true(f"{run}: val loss at iter {it} in [{lo:.3f}, {hi:.3f}] (PyTorch nanoGPT, "
               f"{len(ref['seeds'])} seeds)", lo <= evals[it] <= hi, f"got {evals[it]:.4f}")
    g.true("at least one evaluation at the reference's iterations", compared > 0,
           f"{log} has evaluations at {sorted(evals)}, the reference at {ref['iters']}")
