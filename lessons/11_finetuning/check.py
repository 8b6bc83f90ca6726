"""Lesson 11's checks: the fine-tuning rows (prompt masked, padded, cropped) and the masked loss.

What is graded (the implementation under test, `impl`, is minigpt.finetune.tasks or your file):

    impl.build_example(prompt_ids, response_ids, block_size)   -> x (P,), y (P,) int, P = block_size
    impl.make_batch(pairs, block_size)                         -> x (B, T), y (B, T), T = the longest row

against masks built the Hugging Face way in make_reference.py (labels = ids with the prompt at -100,
truncated from the left, shifted by one), written out case by case: exact equality. Then the loss the
model computes on your batch is compared with torch's F.cross_entropy(ignore_index=-100) on
transformers' GPT2LMHeadModel, with the gradient of every parameter, float64 (rtol 1e-9, atol 1e-12:
both sides agree to ~1e-15, see lesson 07). The model is minigpt's (lesson 07 grades it), loaded from
reference/tiny_gpt2 with minigpt.hf.load_gpt2; here only your batch is under test.

Also: the masked loss differs from the loss with nothing masked (the reference's loss_unmasked), and
an empty response or an empty prompt is refused with a ValueError.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from minigpt.course.grader import Step, load_reference

IMPL = "minigpt.finetune.tasks"

RTOL64, ATOL64 = 1e-9, 1e-12
TINY = Path(__file__).resolve().parent / "reference" / "tiny_gpt2"


def _pairs(ref: dict, names) -> list[tuple[list[int], list[int]]]:
    return [(ref[f"{n}.prompt_ids"].tolist(), ref[f"{n}.response_ids"].tolist()) for n in names]


PITFALLS = {"cropped": "crop", "prompt_gone": "crop", "small_block": "crop",
            "short": ("mask_position", "pad")}


def _build_example(impl, g) -> None:
    ref = load_reference(__file__, "masks.npz")
    meta = load_reference(__file__, "meta.json")
    for name, case in meta["cases"].items():
        with g.case(f"build_example, {name}: {case['what']}",
                    pitfall=PITFALLS.get(name, ("mask_position", "mask_inputs"))):
            prompt, response = _pairs(ref, [name])[0]
            x, y = impl.build_example(prompt, response, int(ref[f"{name}.block_size"]))
            g.equal("x (inputs)", np.asarray(x).tolist(), ref[f"{name}.x"].tolist())
            g.equal("y (targets, -100 = not counted)", np.asarray(y).tolist(), ref[f"{name}.y"].tolist())
    with g.case("nothing to learn from is a clear error"):
        with g.raises("an empty response raises ValueError", ValueError):
            impl.build_example([3, 4], [], 9)
        with g.raises("an empty prompt raises ValueError", ValueError):
            impl.build_example([], [3, 4], 9)


def _make_batch(impl, g) -> None:
    from minigpt import hf

    ref = load_reference(__file__, "masks.npz")
    meta = load_reference(__file__, "meta.json")
    batch = meta["batch"]["cases"]
    with g.case(f"make_batch of {', '.join(batch)}: padding columns dropped", pitfall="columns"):
        x, y = impl.make_batch(_pairs(ref, batch), meta["config"]["n_positions"])
        g.equal("x", np.asarray(x), ref["batch.x"])
        g.equal("y", np.asarray(y), ref["batch.y"])
    with g.case("the masked loss and every gradient on your batch == torch, float64"):
        model = hf.load_gpt2(TINY, dtype=np.float64)
        x, y = impl.make_batch(_pairs(ref, batch), meta["config"]["n_positions"])
        loss, grads = model.loss_and_grads(np.asarray(x), np.asarray(y), ignore_index=-100)
        g.close("loss", loss, ref["batch.loss"], rtol=RTOL64, atol=ATOL64)
        for name in model.params:
            g.close(f"d {name}", grads[name], ref[f"batch.grad.{name}"], rtol=RTOL64, atol=ATOL64)
        unmasked = float(ref["batch.loss_unmasked"])
        g.true(f"masking changes the loss ({loss:.4f} masked vs {unmasked:.4f} with the prompt counted)",
               abs(loss - unmasked) > 1e-3)


STEPS = [
    Step(1, "one row: shift, mask the prompt's targets, pad, crop", ("build_example",), _build_example),
    Step(2, "a batch, without the all-padding columns", ("make_batch",), _make_batch),
]
