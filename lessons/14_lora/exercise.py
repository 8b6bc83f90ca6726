"""Lesson 14, your turn: a LoRA layer on GPT-2's Conv1D, forward and backward, merge and unmerge, PEFT's init.

Fill in the bodies step by step, then grade them:

    minigpt lesson check 14 --impl lessons/14_lora/exercise.py

Step 1 lora_forward · step 2 lora_backward · step 3 lora_merge, lora_unmerge · step 4 lora_init.
The checks compare your results with PEFT's (float64, rtol 1e-10), compare your backward with finite
differences, and check the initialisation's law. The formulas are in the chapter's math section (README.md);
progressive hints: `minigpt lesson hint 14`.

Shape legend: N rows (every leading axis of x flattened), Cin, Cout the layer's widths, r the rank.
Cache whatever your backward needs; the grader never looks inside it.

Not here: which layers get adapters, or freezing the model (minigpt/finetune/lora.py).
"""

from __future__ import annotations

import numpy as np


def lora_forward(x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None, lora_A: np.ndarray,
                 lora_B: np.ndarray, scale: float, dropout: float = 0.0,
                 rng: np.random.Generator | None = None, training: bool = True):
    """x (..., Cin) -> out (..., Cout), cache: the frozen Conv1D layer plus the scaled low-rank update.

    weight (Cin, Cout) and bias (Cout,) or None are the frozen layer (GPT-2's (in, out) layout).
    lora_A (Cin, r), lora_B (r, Cout) are the adapter, in the same layout (PEFT stores their transposes).
    scale is alpha / r. dropout (probability in [0, 1)) acts on the adapter's input only, and only when
    training; the masks come from rng (minigpt.layers.dropout's inverted dropout is fine to reuse).
    Must hold: with lora_B all zero the result equals x @ weight + bias exactly; float32 in -> float32 out
    (even when scale arrives as a NumPy float64); A or B of the wrong shape raises ValueError.
    """
    raise NotImplementedError("step 1 not started: lora_forward")


def lora_backward(dout: np.ndarray, cache):
    """dout (..., Cout) -> dx (..., Cin), dlora_A (Cin, r), dlora_B (r, Cout).

    No gradient for weight or bias: they are frozen. dx must include both paths from x to out.
    """
    raise NotImplementedError("step 2 not started: lora_backward")


def lora_merge(weight: np.ndarray, lora_A: np.ndarray, lora_B: np.ndarray, scale: float) -> np.ndarray:
    """(Cin, Cout): the one weight whose plain layer x @ merged + bias equals the adapted layer (eval mode).

    Return a new array; weight must not change.
    """
    raise NotImplementedError("step 3 not started: lora_merge")


def lora_unmerge(merged: np.ndarray, lora_A: np.ndarray, lora_B: np.ndarray, scale: float) -> np.ndarray:
    """(Cin, Cout): the inverse of lora_merge (the base weight again, up to rounding). A new array."""
    raise NotImplementedError("step 3 not started: lora_unmerge")


def lora_init(c_in: int, c_out: int, r: int, rng: np.random.Generator, dtype=np.float32):
    """lora_A (Cin, r), lora_B (r, Cout) initialised as PEFT does by default, in dtype.

    PEFT: kaiming_uniform_(a=sqrt(5)) on its (r, Cin) lora_A weight, zeros for lora_B. Work out the range
    of that uniform law (torch's documentation of kaiming_uniform_ gives the bound). r < 1 raises ValueError.
    """
    raise NotImplementedError("step 4 not started: lora_init")
