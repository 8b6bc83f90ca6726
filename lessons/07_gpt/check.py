"""Lesson 07's checks: the whole GPT-2, forward and backward, against Hugging Face transformers.

What is graded (the implementation under test, `impl`, is minigpt.model or your file):

    impl.gpt_forward(params, idx, config)                              -> logits (B, T, V), eval mode
    impl.gpt_loss_and_grads(params, idx, targets, config, rng=None, ignore_index=-100) -> (loss, grads)
    impl.count_params(config, non_embedding=False)                     -> int
    impl.KVCache (optional; minigpt's is graded, a file without it is skipped)

params is a dict of GPT-2 names ("wte.weight", "h.0.attn.c_attn.weight", ...) -> arrays, config a
minigpt.model.GPTConfig. The weights come from reference/tiny_gpt2/, a folder transformers'
save_pretrained wrote, read with minigpt.hf.load_gpt2 (so this check also exercises minigpt's
safetensors reader and the name mapping).

Tolerances:
    float64 vs transformers   rtol 1e-9, atol 1e-12. Both round at ~1e-16 per operation; through 2 blocks
                              the differences stay near 1e-15 (measured: 2e-15 at most). atol is for entries
                              that are zero (wpe rows past T get no gradient) or nearly so.
    float32 vs transformers   rtol 1e-4, atol 1e-5: float32 keeps ~7 digits; summation orders differ
                              (measured: 1e-6 at most on logits of size ~3).
    finite differences        per tensor, normwise relative error < 1e-6 on 4 sampled entries (central
                              differences of the loss in float64, h = 1e-5; a correct backward gives ~1e-9),
                              or max |diff| < 1e-8 where the true gradient is 0: the key part of c_attn.bias
                              adds q.b_k to every score of a row, which softmax ignores, so its gradient is
                              exactly 0 and both sides are rounding noise.
    SGD losses, greedy ids    rtol 1e-9; ids exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minigpt.course.gradcheck import rel_error, sampled_grad_errors
from minigpt.course.grader import Step, load_reference
from minigpt.model import GPTConfig

IMPL = "minigpt.model"

RTOL64, ATOL64 = 1e-9, 1e-12
RTOL32, ATOL32 = 1e-4, 1e-5
FD_MAX, FD_ABS, FD_H, FD_SAMPLES = 1e-6, 1e-8, 1e-5, 4
TINY = Path(__file__).resolve().parent / "reference" / "tiny_gpt2"


def _tiny(dtype=np.float64):
    from minigpt import hf

    model = hf.load_gpt2(TINY, dtype=dtype)
    return model.params, model.config


def _copy(params: dict) -> dict:
    return {k: v.copy() for k, v in params.items()}


def _count(impl, g) -> None:
    meta = load_reference(__file__, "meta.json")
    with g.case("parameter count of GPT-2 small and medium (counted by torch)", pitfall="count"):
        for name, c in meta["param_counts"].items():
            cfg = GPTConfig(c["vocab_size"], c["n_positions"], c["n_layer"], c["n_head"], c["n_embd"])
            g.equal(name, int(impl.count_params(cfg)), c["params"])
        c = meta["param_counts"]["gpt2"]
        cfg = GPTConfig(c["vocab_size"], c["n_positions"], c["n_layer"], c["n_head"], c["n_embd"])
        g.equal("gpt2, non_embedding=True (without wpe)", int(impl.count_params(cfg, non_embedding=True)),
                c["params"] - c["n_positions"] * c["n_embd"])


def _forward(impl, g) -> None:
    ref = load_reference(__file__, "gpt.npz")
    idx = ref["idx"]
    with g.case("forward float64, V=37 block=9 C=12 H=3 L=2, B=2 T=7", pitfall=("head", "erf")):
        params, config = _tiny()
        logits = impl.gpt_forward(params, idx, config)
        g.close("logits", logits, ref["logits"], rtol=RTOL64, atol=ATOL64, dtype=np.float64)
    with g.case("forward float32 in, float32 out"):
        params, config = _tiny(np.float32)
        logits = impl.gpt_forward(params, idx, config)
        g.close("logits", logits, ref["logits_f32"], rtol=RTOL32, atol=ATOL32, dtype=np.float32)
    with g.case("greedy continuation (argmax, full recompute) == transformers generate"):
        params, config = _tiny()
        ids = ref["greedy_prompt"].copy()                                   # (1, 3)
        for _ in range(len(ref["greedy_ids"])):
            logits = impl.gpt_forward(params, ids, config)                  # (1, T, V)
            ids = np.concatenate([ids, logits[:, -1:].argmax(-1)], axis=1)  # (1, T + 1)
        g.equal("new ids", ids[0, ref["greedy_prompt"].shape[1]:].tolist(), ref["greedy_ids"].tolist())
    with g.case("a sequence longer than block_size is a clear error"):
        params, config = _tiny()
        with g.raises("forward with block_size + 1 tokens raises ValueError", ValueError):
            impl.gpt_forward(params, np.zeros((1, config.block_size + 1), dtype=np.int64), config)
    if not hasattr(impl, "KVCache"):
        g.skip("KV cache", "your file has no KVCache (optional; minigpt/kv_cache.py has one): define a "
               "KVCache class to have it graded")
        return
    with g.case("greedy with a KV cache == transformers generate; crop, then the same logits",
                pitfall="positions"):
        params, config = _tiny()
        cache = impl.KVCache(config.n_layer, config.block_size)
        logits = impl.gpt_forward(params, ref["greedy_prompt"], config, kv_cache=cache)   # (1, 3, V)
        new = []
        for _ in range(len(ref["greedy_ids"])):
            new.append(int(logits[0, -1].argmax()))
            if len(new) < len(ref["greedy_ids"]):
                logits = impl.gpt_forward(params, np.array([[new[-1]]]), config, kv_cache=cache)
        g.equal("new ids", new, ref["greedy_ids"].tolist())
        full = impl.gpt_forward(params, idx, config)
        cache = impl.KVCache(config.n_layer, config.block_size)
        impl.gpt_forward(params, idx[:, :6], config, kv_cache=cache)
        cache.crop(4)
        tail = impl.gpt_forward(params, idx[:, 4:7], config, kv_cache=cache)           # (2, 3, V)
        g.close("logits of positions 4..6 after crop(4)", tail, full[:, 4:7], rtol=RTOL64, atol=ATOL64)


def _backward(impl, g) -> None:
    ref = load_reference(__file__, "gpt.npz")
    idx, targets = ref["idx"], ref["targets"]
    with g.case("loss and every gradient float64", pitfall=("tied", "residual")):
        params, config = _tiny()
        loss, grads = impl.gpt_loss_and_grads(params, idx, targets, config)
        g.close("loss", loss, ref["loss"], rtol=RTOL64, atol=ATOL64)
        missing = sorted(set(params) - set(grads))
        g.true("a gradient for every parameter", not missing, f"missing: {missing}" if missing else "")
        for name in params:
            if name in grads:
                g.close(f"d {name}", grads[name], ref[f"grad.{name}"], rtol=RTOL64, atol=ATOL64)

    with g.case("targets of -100 are ignored"):
        params, config = _tiny()
        loss, grads = impl.gpt_loss_and_grads(params, idx, ref["targets_ignore"], config)
        g.close("loss", loss, ref["loss_ignore"], rtol=RTOL64, atol=ATOL64)
        g.close("d wte.weight", grads["wte.weight"], ref["grad_ignore_wte"], rtol=RTOL64, atol=ATOL64)

    with g.case("float32 in, float32 out"):
        params, config = _tiny(np.float32)
        loss, grads = impl.gpt_loss_and_grads(params, idx, targets, config)
        g.close("loss", loss, ref["loss_f32"], rtol=RTOL32, atol=ATOL32)
        for name in params:
            g.close(f"d {name}", grads[name], ref[f"grad_f32.{name}"], rtol=RTOL32, atol=ATOL32,
                    dtype=np.float32)

    with g.case("5 steps of SGD (p -= 0.05 * grad), float64"):
        params, config = _tiny()
        losses = []
        for _ in range(len(ref["sgd_losses"])):
            loss, grads = impl.gpt_loss_and_grads(params, idx, targets, config)
            losses.append(loss)
            for name in params:
                params[name] -= 0.05 * grads[name]
        g.close("losses", np.array(losses), ref["sgd_losses"], rtol=RTOL64, atol=ATOL64)

    with g.case(f"finite differences, {FD_SAMPLES} sampled entries of every parameter, float64",
                pitfall="zero_grad"):
        params, config = _tiny()
        _, grads = impl.gpt_loss_and_grads(params, idx, targets, config)
        errors = sampled_grad_errors(lambda: impl.gpt_loss_and_grads(params, idx, targets, config)[0],
                                     params, grads, FD_SAMPLES, np.random.default_rng(0), FD_H)
        for name, (err, diff) in errors.items():
            ok = err < FD_MAX or diff < FD_ABS
            g.true(f"d {name}: relative error {err:.1e} {'<' if err < FD_MAX else '>'} {FD_MAX:g} "
                   f"(or max |diff| {diff:.1e} {'<' if diff < FD_ABS else '>'} {FD_ABS:g})", ok)

    with g.case("dropout 0.2: same seed, same loss; it changes the loss; a fixed mask passes gradcheck",
                pitfall="dropout"):
        params, config = _tiny()
        cfg = GPTConfig(**{**vars(config), "dropout": 0.2})
        a, ga = impl.gpt_loss_and_grads(params, idx, targets, cfg, rng=np.random.default_rng(3))
        b, gb = impl.gpt_loss_and_grads(params, idx, targets, cfg, rng=np.random.default_rng(3))
        same = a == b and all(np.array_equal(ga[k], gb[k]) for k in ga)
        g.true("same rng seed -> same loss and grads", same)
        g.true(f"dropout changes the loss ({a:.4f} vs {float(ref['loss']):.4f} without)",
               abs(a - float(ref["loss"])) > 1e-6)
        p = params["h.0.mlp.c_fc.weight"].reshape(-1)
        old, i = p[5], 5
        p[5] = old + FD_H
        plus, _ = impl.gpt_loss_and_grads(params, idx, targets, cfg, rng=np.random.default_rng(3))
        p[5] = old - FD_H
        minus, _ = impl.gpt_loss_and_grads(params, idx, targets, cfg, rng=np.random.default_rng(3))
        p[5] = old
        num = (plus - minus) / (2 * FD_H)
        err = rel_error(np.array([ga["h.0.mlp.c_fc.weight"].reshape(-1)[i]]), np.array([num]))
        g.below("d h.0.mlp.c_fc.weight[5] with the mask fixed: relative error", err, FD_MAX)

    with g.case("a sequence longer than block_size is a clear error"):
        params, config = _tiny()
        too_long = np.zeros((1, config.block_size + 1), dtype=np.int64)
        with g.raises("loss_and_grads with block_size + 1 tokens raises ValueError", ValueError):
            impl.gpt_loss_and_grads(params, too_long, too_long, config)


STEPS = [
    Step(1, "count the parameters from the config", ("count_params",), _count),
    Step(2, "the forward: embeddings, blocks, ln_f, the tied head", ("gpt_forward", "block_forward"),
         _forward),
    Step(3, "loss and every gradient, backward through the blocks",
         ("gpt_loss_and_grads", "block_backward"), _backward),
]
