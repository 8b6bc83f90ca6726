"""Write lesson 08's references with torch.optim and torch.nn.utils.clip_grad_norm_ (never with minigpt).

    pip install -e ".[reference]"          # torch==2.13.0 (CPU)
    python lessons/08_optimizer/make_reference.py

What it writes to reference/:
  params.npz       the starting params (GPT-2 names, distinct shapes, 1-D biases and gains included), the
                   gradients fed at every step (grad.<name>: (S, *shape)) and the lr of every step (lr: (S,))
  <case>.npz       for every optimizer case: the params after every step (param.<name>: (S, *shape)) and the
                   final state buffers (exp_avg.<name>, exp_avg_sq.<name> or momentum_buffer.<name>)
  clip.npz         gradient sets before and after torch's clip_grad_norm_, with the returned norms
  cosine.npz       nanoGPT's cosine schedule written out below in plain Python, at many steps
  meta.json        versions, seed, shapes, and every case's hyperparameters (check.py reads them from here)

Weight decay follows nanoGPT: two param groups, tensors with ndim >= 2 decayed, the rest with
weight_decay=0.0 (torch itself would decay every tensor it is given). Everything is float64, foreach=False
(torch's per-tensor loop, its default on CPU).

What it does not do: use minigpt, or store anything but numbers (no pickle).
"""

from __future__ import annotations

import json
import math
import platform
from pathlib import Path

import numpy as np

try:
    import torch
except ImportError as exc:  # the references ship with the repository; this is only for regenerating them
    raise SystemExit("make_reference.py needs PyTorch: pip install -e '.[reference]'") from exc

OUT = Path(__file__).resolve().parent / "reference"
SEED = 8
STEPS = 25
SHAPES = {  # distinct sizes, so a mixed-up name or transpose cannot pass
    "wte.weight": (11, 4),
    "wpe.weight": (6, 4),
    "h.0.ln_1.weight": (4,),
    "h.0.ln_1.bias": (4,),
    "h.0.mlp.c_fc.weight": (4, 7),
    "h.0.mlp.c_fc.bias": (7,),
}
CASES = {  # name -> (torch class, keyword arguments; weight_decay applies to the ndim >= 2 group only)
    "sgd": ("SGD", {"momentum": 0.0, "weight_decay": 0.0}),
    "sgd_l2": ("SGD", {"momentum": 0.0, "weight_decay": 0.05}),
    "momentum": ("SGD", {"momentum": 0.9, "weight_decay": 0.01}),
    "nesterov": ("SGD", {"momentum": 0.8, "nesterov": True, "weight_decay": 0.0}),
    "adam": ("Adam", {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.0}),
    "adam_l2": ("Adam", {"betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.05}),
    "adamw": ("AdamW", {"betas": (0.9, 0.99), "eps": 1e-8, "weight_decay": 0.1}),  # nanoGPT's baby recipe
    "adamw_varied": ("AdamW", {"betas": (0.8, 0.95), "eps": 1e-6, "weight_decay": 0.3}),
}
CLIP = [  # (name, max_norm, gradient scale): clipped hard (x0.03), slightly (x0.7), left alone
    ("big", 1.0, 3.0),
    ("slight", 8.0, 1.0),
    ("small", 100.0, 0.5),
]
COSINE = {"max_lr": 1e-3, "warmup_iters": 10, "decay_iters": 100, "min_lr": 1e-4}


def nanogpt_lr(it: int, learning_rate: float, warmup_iters: int, lr_decay_iters: int, min_lr: float) -> float:
    """nanoGPT's get_lr as its train.py describes it (since commit dc81cb3), restated independently."""
    if it < warmup_iters:  # linear warm-up, (it + 1) so that step 0 already learns
        return learning_rate * (it + 1) / (warmup_iters + 1)
    if it > lr_decay_iters:  # after the decay: the floor
        return min_lr
    decay_ratio = (it - warmup_iters) / (lr_decay_iters - warmup_iters)
    coeff = 0.5 * (1.0 + math.cos(math.pi * decay_ratio))
    return min_lr + coeff * (learning_rate - min_lr)


def main() -> None:
    torch.manual_seed(SEED)
    gen = torch.Generator().manual_seed(SEED)
    start = {n: torch.randn(s, generator=gen, dtype=torch.float64) for n, s in SHAPES.items()}
    # gradients of varied size per tensor (so Adam's per-element scaling matters) and per step
    grads = {n: torch.randn((STEPS, *s), generator=gen, dtype=torch.float64) * (0.1 + i)
             for i, (n, s) in enumerate(SHAPES.items())}
    lrs = [1e-2 * (0.5 + 0.5 * math.cos(math.pi * t / STEPS)) + 1e-3 * (t % 3) for t in range(STEPS)]
    OUT.mkdir(exist_ok=True)
    np.savez(OUT / "params.npz", lr=np.array(lrs),
             **{f"param.{n}": p.numpy() for n, p in start.items()},
             **{f"grad.{n}": g.numpy() for n, g in grads.items()})

    for case, (cls_name, kwargs) in CASES.items():
        params = {n: p.clone().requires_grad_(True) for n, p in start.items()}
        kw = dict(kwargs)
        wd = kw.pop("weight_decay")
        groups = [{"params": [p for p in params.values() if p.ndim >= 2], "weight_decay": wd},
                  {"params": [p for p in params.values() if p.ndim < 2], "weight_decay": 0.0}]
        opt = getattr(torch.optim, cls_name)(groups, lr=lrs[0], foreach=False, **kw)
        history = {n: [] for n in params}
        for t in range(STEPS):
            for group in opt.param_groups:
                group["lr"] = lrs[t]
            for n, p in params.items():
                p.grad = grads[n][t].clone()
            opt.step()
            for n, p in params.items():
                history[n].append(p.detach().clone().numpy())
        arrays = {f"param.{n}": np.stack(h) for n, h in history.items()}
        for n, p in params.items():
            for kind, value in opt.state[p].items():
                if kind != "step" and value is not None:
                    arrays[f"{kind}.{n}"] = value.numpy()
        np.savez(OUT / f"{case}.npz", **arrays)

    clip_arrays = {}
    for name, max_norm, scale in CLIP:
        g_before = {n: torch.randn(s, generator=gen, dtype=torch.float64) * scale for n, s in SHAPES.items()}
        tensors = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES.values()]
        for t, g in zip(tensors, g_before.values(), strict=True):
            t.grad = g.clone()
        total = torch.nn.utils.clip_grad_norm_(tensors, max_norm, foreach=False)
        clip_arrays[f"{name}.norm"] = np.array(float(total))
        for (n, g), t in zip(g_before.items(), tensors, strict=True):
            clip_arrays[f"{name}.before.{n}"] = g.numpy()
            clip_arrays[f"{name}.after.{n}"] = t.grad.numpy()
    np.savez(OUT / "clip.npz", **clip_arrays)

    steps = np.array([0, 1, 5, 9, 10, 11, 25, 50, 55, 75, 99, 100, 101, 150, 1000])
    values = np.array([nanogpt_lr(int(s), COSINE["max_lr"], COSINE["warmup_iters"], COSINE["decay_iters"],
                                  COSINE["min_lr"]) for s in steps])
    np.savez(OUT / "cosine.npz", step=steps, lr=values)

    meta = {
        "generator": "lessons/08_optimizer/make_reference.py",
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "seed": SEED, "steps": STEPS, "dtype": "float64", "shapes": {n: list(s) for n, s in SHAPES.items()},
        "weight_decay_rule": "two param groups: ndim >= 2 gets the case's weight_decay, ndim < 2 gets 0.0",
        "cases": {c: {"optimizer": cls, **{k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}}
                  for c, (cls, kw) in CASES.items()},
        "clip": [{"name": n, "max_norm": m, "scale": s} for n, m, s in CLIP],
        "cosine": COSINE,
        "cosine_formula": "nanoGPT train.py get_lr since commit dc81cb3: warm-up lr*(it+1)/(warmup+1)",
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total / 1024:.0f} KiB, to {OUT}")


if __name__ == "__main__":
    main()
