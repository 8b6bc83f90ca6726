"""Write lesson 06's references with PyTorch autograd: softmax cross-entropy with ignore_index.

Run from anywhere: `python lessons/06_loss/make_reference.py` (needs torch==2.13.0, CPU is enough).
Logits and targets are drawn with NumPy from a fixed seed; every loss and gradient is computed by
torch.nn.functional.cross_entropy (mean over counted positions, ignore_index) and .backward() with a random
upstream gradient dloss, never by minigpt. Versions, seed and shapes go to reference/meta.json.

One case has no torch reference on purpose: when every target is ignored torch returns NaN (0/0), while
minigpt defines the loss as 0.0 with a zero gradient; check.py tests that case against the analytic 0 and
meta.json records what torch returned.

Not here: anything minigpt computes, and the grading itself (check.py).
"""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import numpy as np

try:
    import torch
    import torch.nn.functional as F
except ImportError as exc:  # pragma: no cover - only the reference writer needs torch
    raise SystemExit("make_reference.py needs PyTorch: pip install -e '.[reference]'") from exc

SEED = 0
B, T, V = 2, 5, 11          # batch, time, vocabulary: all distinct so a wrong axis cannot pass
OUT = Path(__file__).resolve().parent / "reference"


def torch_case(logits: np.ndarray, targets: np.ndarray, ignore_index: int, dloss: float,
               dtype: torch.dtype = torch.float64) -> dict[str, np.ndarray]:
    """loss = F.cross_entropy over the flattened (N, V) logits; dlogits = d(dloss * loss)/dlogits."""
    z = torch.tensor(logits, dtype=dtype, requires_grad=True)
    loss = F.cross_entropy(z.reshape(-1, logits.shape[-1]), torch.tensor(targets).reshape(-1),
                           ignore_index=ignore_index, reduction="mean")
    (loss * dloss).backward()
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    return {"logits": logits.astype(np_dtype), "targets": targets, "ignore_index": np.array(ignore_index),
            "dloss": np.array(dloss), "loss": np.array(loss.item()), "dlogits": z.grad.numpy().copy()}


def main() -> None:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    OUT.mkdir(exist_ok=True)
    cases: dict[str, dict[str, np.ndarray]] = {}

    # some positions ignored (a masked prompt), random upstream gradient
    logits = rng.standard_normal((B, T, V)) * 2.0                     # (B, T, V)
    targets = rng.integers(0, V, size=(B, T))                         # (B, T)
    targets[0, :2] = -100                                             # the "prompt" of row 0
    targets[1, 3] = -100
    cases["masked"] = torch_case(logits, targets, -100, float(rng.uniform(0.5, 2.0)))

    # every position counted
    cases["all_counted"] = torch_case(logits, rng.integers(0, V, size=(B, T)), -100, 1.0)

    # another ignore_index (-1), and a target id of 0 that must still count
    t = rng.integers(0, V, size=(B, T))
    t[:, 0], t[0, 4], t[1, 2] = 0, -1, -1
    cases["ignore_minus_one"] = torch_case(logits, t, -1, 1.0)

    # flat (N, V) logits, N = 7
    cases["flat"] = torch_case(rng.standard_normal((7, V)), rng.integers(0, V, size=7), -100, 1.0)

    # T = 1
    cases["t1"] = torch_case(rng.standard_normal((B, 1, V)), rng.integers(0, V, size=(B, 1)), -100, 1.0)

    # logits of +-1e4: a naive exp overflows; the loss is ~2e4 where the target sits at -1e4
    big = np.where(rng.random((B, T, V)) < 0.5, -1e4, 1e4) + rng.standard_normal((B, T, V))
    tb = rng.integers(0, V, size=(B, T))
    big[0, 0, tb[0, 0]] = -1e4                                        # the right token is hopeless
    big[0, 1, :] = 1e4                                                # a tie at the top
    cases["large_logits"] = torch_case(big, tb, -100, 1.0)

    # an untrained model: equal logits give loss ln(V)
    cases["uniform"] = torch_case(np.zeros((B, T, V)), rng.integers(0, V, size=(B, T)), -100, 1.0)

    # float32 logits in, float32 gradient out (torch computes in float32)
    cases["masked_float32"] = torch_case(cases["masked"]["logits"], cases["masked"]["targets"], -100,
                                         float(cases["masked"]["dloss"]), torch.float32)

    for name, arrays in cases.items():
        np.savez_compressed(OUT / f"{name}.npz", **arrays)

    # documented difference: torch's mean over zero counted positions is 0/0 = NaN
    z = torch.zeros((B * T, V), dtype=torch.float64, requires_grad=True)
    nan_loss = F.cross_entropy(z, torch.full((B * T,), -100), ignore_index=-100)
    nan_loss.backward()
    meta = {
        "generator": "lessons/06_loss/make_reference.py",
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "seed": SEED, "input_rng": "numpy.random.default_rng(seed), drawn in the order of main()",
        "op": "F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=..., "
              "reduction='mean'); (loss * dloss).backward()",
        "shapes": {name: {k: list(v.shape) for k, v in arrays.items()} for name, arrays in cases.items()},
        "losses": {name: float(arrays["loss"]) for name, arrays in cases.items()},
        "ln_V": math.log(V),
        "all_ignored": {"torch_loss": str(nan_loss.item()),
                        "torch_grad_all_zero": bool((z.grad == 0).all().item()),
                        "minigpt_contract": "loss 0.0 and a zero gradient (check.py tests the analytic 0)"},
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(cases)} npz files + meta.json to {OUT} ({total / 1024:.1f} KiB)")
    print("losses:", {k: round(v, 6) for k, v in meta["losses"].items()}, f"ln(V) = {math.log(V):.6f}")
    print("all positions ignored, torch:", meta["all_ignored"])


if __name__ == "__main__":
    main()
