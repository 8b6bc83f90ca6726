"""Lesson 06's checks: softmax cross-entropy over the vocabulary with ignore_index, forward and backward.

Graded against torch.nn.functional.cross_entropy (float64, rtol 1e-10 / atol 1e-12; float32 logits: loss at
rtol 1e-5, dlogits float32 at rtol 1e-4 / atol 1e-6), against central finite differences (relative error
< 1e-7), and on the edge cases: logits of +-1e4 (no overflow, no NaN), T=1, flat (N, V) logits, every
position ignored (0.0 and a zero gradient, where torch returns NaN: a documented difference, graded
against the analytic 0), equal logits (ln V, the loss of an untrained model), and bad target ids.

Tolerances. float64: the losses are O(1) to O(1e4) and the gradients are probabilities / n, so NumPy and
torch agree to ~1e-15 relative; atol 1e-12 only matters where a gradient entry is ~0 (a probability of
e^-20), where a relative test would ask for more digits than float64 has. float32: eps 1.2e-7; gradient
entries are at most 1/n ~ 0.14, so atol 1e-6 is about 10 float32 steps at that size.

Not here: the model's logits (lesson 07) and perplexity (lesson 11).
"""

from __future__ import annotations

import math

import numpy as np

from minigpt.course.gradcheck import check_layer
from minigpt.course.grader import Step, load_reference

IMPL = "minigpt.layers.loss"

F64 = {"rtol": 1e-10, "atol": 1e-12}
FD_LIMIT = 1e-7
CASES = {
    "masked": "some positions ignored (-100), random dloss",
    "all_counted": "every position counted",
    "ignore_minus_one": "ignore_index=-1, target 0 still counted",
    "flat": "flat (N, V) logits",
    "t1": "T=1",
    "large_logits": "logits of +-1e4 (no overflow, no NaN)",
    "uniform": "equal logits: loss ln(V)",
}


PITFALLS = {"masked": "mean_over_n", "large_logits": "naive", "ignore_minus_one": "ignored"}


def _forward(impl, g) -> None:
    for name, label in CASES.items():
        ref = load_reference(__file__, f"{name}.npz")
        with g.case(f"cross_entropy_forward {label}, float64", pitfall=PITFALLS.get(name)):
            loss, _ = impl.cross_entropy_forward(ref["logits"], ref["targets"],
                                                 ignore_index=int(ref["ignore_index"]))
            g.true("loss is a Python float", isinstance(loss, float), f"got {type(loss).__name__}")
            g.close("loss", loss, ref["loss"], **F64)
    ref = load_reference(__file__, "masked_float32.npz")
    with g.case("cross_entropy_forward float32 logits"):
        loss, _ = impl.cross_entropy_forward(ref["logits"], ref["targets"],
                                             ignore_index=int(ref["ignore_index"]))
        g.close("loss", loss, ref["loss"], rtol=1e-5, atol=1e-6)
    ref = load_reference(__file__, "masked.npz")
    logits, targets = ref["logits"], ref["targets"]
    with g.case("every position ignored", pitfall="empty"):
        loss, _ = impl.cross_entropy_forward(logits, np.full_like(targets, -100), ignore_index=-100)
        g.true("loss is 0.0, not NaN", bool(np.isfinite(loss)) and loss == 0.0,
               f"got {loss!r}; torch returns nan here (0/0), minigpt defines 0.0 (nothing to learn from)")
    with g.case("untrained model: equal logits give ln(V)"):
        for v in (65, 50257):                                        # tiny Shakespeare chars, GPT-2 BPE
            loss, _ = impl.cross_entropy_forward(np.zeros((1, 3, v)), np.array([[0, v // 2, v - 1]]))
            g.close(f"V={v}: loss = ln({v}) = {math.log(v):.4f}", loss, math.log(v), rtol=1e-12, atol=0.0)
    v = logits.shape[-1]
    with g.case("bad targets are refused", pitfall="negative"):
        for bad, why in ((v, "== V"), (-5, "negative, not ignore_index")):
            wrong = targets.copy()
            wrong[1, 1] = bad
            with g.raises(f"a target id {bad} ({why}) raises", (IndexError, ValueError)):
                impl.cross_entropy_forward(logits, wrong, ignore_index=-100)
        with g.raises("targets of the wrong length raise", (IndexError, ValueError)):
            impl.cross_entropy_forward(logits, targets[:, :3], ignore_index=-100)


def _backward(impl, g) -> None:
    for name, label in CASES.items():
        ref = load_reference(__file__, f"{name}.npz")
        with g.case(f"cross_entropy_backward {label}, float64",
                    pitfall=(PITFALLS.get(name, "naive"), "dloss")):
            _, dlogits = _run(impl, ref)
            g.close("dlogits", dlogits, ref["dlogits"], dtype=np.float64, **F64)
    ref = load_reference(__file__, "masked_float32.npz")
    with g.case("float32 logits in -> float32 gradient out"):
        _, dlogits = _run(impl, ref)
        g.close("dlogits", dlogits, ref["dlogits"], dtype=np.float32, rtol=1e-4, atol=1e-6)
    ref = load_reference(__file__, "masked.npz")
    logits, targets = ref["logits"], ref["targets"]
    with g.case("every position ignored: a zero gradient", pitfall="empty"):
        _, cache = impl.cross_entropy_forward(logits, np.full_like(targets, -100), ignore_index=-100)
        g.close("dlogits are all 0", impl.cross_entropy_backward(1.0, cache), np.zeros_like(logits),
                rtol=0.0, atol=0.0)
    with g.case("the gradient's structure", pitfall="ignored"):
        _, dlogits = _run(impl, ref)
        rows = np.asarray(dlogits).reshape(-1, logits.shape[-1])    # (N, V)
        counted = targets.reshape(-1) != -100                        # (N,)
        g.close("counted rows sum to 0 (softmax minus one-hot)", rows[counted].sum(axis=-1),
                np.zeros(int(counted.sum())), rtol=0.0, atol=1e-14)
        g.close("ignored rows are exactly 0", rows[~counted], np.zeros_like(rows[~counted]),
                rtol=0.0, atol=0.0)
    for name in ("masked", "ignore_minus_one", "t1"):
        ref = load_reference(__file__, f"{name}.npz")
        with g.case(f"finite differences, {CASES[name]}", pitfall="mean_over_n"):
            errors = check_layer(impl.cross_entropy_forward, impl.cross_entropy_backward,
                                 [ref["logits"].copy(), ref["targets"]],
                                 kwargs={"ignore_index": int(ref["ignore_index"])})
            g.below("dlogits relative error", errors["arg0"], FD_LIMIT)


def _run(impl, ref):
    ignore_index = int(ref["ignore_index"])
    loss, cache = impl.cross_entropy_forward(ref["logits"], ref["targets"], ignore_index=ignore_index)
    dlogits = impl.cross_entropy_backward(float(ref["dloss"]), cache)
    return loss, dlogits


STEPS = [
    Step(1, "the loss: log-sum-exp minus the target's logit", ("cross_entropy_forward",), _forward),
    Step(2, "its gradient with respect to the logits", ("cross_entropy_backward",), _backward),
]
