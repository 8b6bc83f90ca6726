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
  muon_params.npz  Muon's own start: three 2-D matrices (square, wide, tall), gradients and lrs as above
  muon.npz, muon_varied.npz   torch.optim.Muon's params after every step and its final momentum_buffer
  newton_schulz.npz           G.<name> and O.<name> = torch's _zeropower_via_newtonschulz(G), 5 steps
  meta.json        versions, seed, shapes, and every case's hyperparameters (check.py reads them from here)

Weight decay follows nanoGPT: two param groups, tensors with ndim >= 2 decayed, the rest with
weight_decay=0.0 (torch itself would decay every tensor it is given). Everything is float64, foreach=False
(torch's per-tensor loop, its default on CPU).

Muon: torch's Newton-Schulz casts its input to bfloat16 (a GPU speed choice, ~3 significant digits). For a
float64 reference, full_precision_newton_schulz() makes that one cast a float64 copy while torch's own code
runs; everything else is torch.optim.Muon as shipped. The script also runs the shipped bfloat16 version
and stores in meta.json how far it lands from the float64 one (so the patch is seen to change only rounding).

What it does not do: use minigpt, or store anything but numbers (no pickle).
"""

from __future__ import annotations

import json
import math
import platform
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

try:
    import torch
    from torch.optim._muon import _zeropower_via_newtonschulz  # torch's own iteration (a private name)
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
MUON_STEPS = 10
MUON_SHAPES = {  # minigpt's Conv1D layout (in, out) with C = 6: a square, a wide and a tall hidden matrix
    "h.0.attn.c_proj.weight": (6, 6),
    "h.0.attn.c_attn.weight": (6, 18),
    "h.0.mlp.c_proj.weight": (24, 6),
}
MUON_CASES = {  # torch.optim.Muon's keyword arguments (it decays every matrix it is given)
    "muon": {},  # torch's defaults: weight_decay 0.1, momentum 0.95, nesterov, adjust_lr_fn None
    "muon_varied": {"weight_decay": 0.05, "momentum": 0.9, "nesterov": False,
                    "adjust_lr_fn": "match_rms_adamw"},
}
NS = (3.4445, -4.775, 2.0315)  # torch's (and Keller Jordan's) default quintic coefficients
NS_EXTRA = {  # more Newton-Schulz inputs: below eps (the clamp acts), and zero (no NaN)
    "tiny": (5, 8, 1e-9),
    "zero": (4, 3, 0.0),
}


@contextmanager
def full_precision_newton_schulz() -> Iterator[None]:
    """Inside: Tensor.bfloat16() returns a copy in the tensor's own dtype, so torch's Muon runs in float64."""
    original = torch.Tensor.bfloat16
    torch.Tensor.bfloat16 = lambda self, memory_format=torch.preserve_format: self.clone(
        memory_format=memory_format)
    try:
        yield
    finally:
        torch.Tensor.bfloat16 = original


def trajectory(opt: torch.optim.Optimizer, params: dict, grads: dict, lrs: list[float],
               steps: int) -> dict[str, np.ndarray]:
    """Step opt `steps` times, lr lrs[t] and gradient grads[n][t] at step t: {"param.<n>": (steps, ...)},
    every parameter after every step."""
    history = {n: [] for n in params}
    for t in range(steps):
        for group in opt.param_groups:
            group["lr"] = lrs[t]
        for n, p in params.items():
            p.grad = grads[n][t].clone()
        opt.step()
        for n, p in params.items():
            history[n].append(p.detach().clone().numpy())
    return {f"param.{n}": np.stack(h) for n, h in history.items()}


def run_muon(start: dict, grads: dict, lrs: list[float], kwargs: dict) -> tuple[dict, dict]:
    """torch.optim.Muon for MUON_STEPS steps: the params after every step, and the final state."""
    params = {n: p.clone().requires_grad_(True) for n, p in start.items()}
    opt = torch.optim.Muon(list(params.values()), lr=lrs[0], **kwargs)
    arrays = trajectory(opt, params, grads, lrs, MUON_STEPS)
    state = {f"momentum_buffer.{n}": opt.state[p]["momentum_buffer"].numpy() for n, p in params.items()}
    return arrays, state


def muon_references(gen: torch.Generator) -> dict:
    """Write muon_params.npz, muon*.npz and newton_schulz.npz; return what meta.json says about them."""

    start = {n: torch.randn(s, generator=gen, dtype=torch.float64) * 0.2 for n, s in MUON_SHAPES.items()}
    grads = {n: torch.randn((MUON_STEPS, *s), generator=gen, dtype=torch.float64) * (0.5 + i)
             for i, (n, s) in enumerate(MUON_SHAPES.items())}
    lrs = [2e-2 * (0.5 + 0.5 * math.cos(math.pi * t / MUON_STEPS)) + 1e-3 * (t % 3)
           for t in range(MUON_STEPS)]
    np.savez(OUT / "muon_params.npz", lr=np.array(lrs),
             **{f"param.{n}": p.numpy() for n, p in start.items()},
             **{f"grad.{n}": g.numpy() for n, g in grads.items()})
    bf16_gap = {}
    for case, kwargs in MUON_CASES.items():
        with full_precision_newton_schulz():
            arrays, state = run_muon(start, grads, lrs, kwargs)
        np.savez(OUT / f"{case}.npz", **arrays, **state)
        shipped, _ = run_muon(start, grads, lrs, kwargs)  # torch as shipped: Newton-Schulz in bfloat16
        moved = np.concatenate([(arrays[k][-1] - start[k[6:]].numpy()).ravel() for k in arrays])
        gap = np.concatenate([(shipped[k][-1] - arrays[k][-1]).ravel() for k in arrays])
        bf16_gap[case] = float(np.linalg.norm(gap) / np.linalg.norm(moved))

    ns = {}
    inputs = {n: grads[n][0] for n in MUON_SHAPES}
    for name, (m, n, scale) in NS_EXTRA.items():
        inputs[name] = torch.randn((m, n), generator=gen, dtype=torch.float64) * scale
    for name, G in inputs.items():
        with full_precision_newton_schulz():
            O = _zeropower_via_newtonschulz(G, NS, 5, 1e-7)
        ns[f"G.{name}"] = G.numpy()
        ns[f"O.{name}"] = O.numpy()
    np.savez(OUT / "newton_schulz.npz", **ns)
    return {
        "steps": MUON_STEPS, "shapes": {n: list(s) for n, s in MUON_SHAPES.items()},
        "cases": MUON_CASES,
        "newton_schulz": {"inputs": list(inputs), "coefficients": list(NS), "steps": 5, "eps": 1e-7},
        "precision": "torch's bfloat16 cast in _zeropower_via_newtonschulz replaced by a float64 copy",
        "bf16_vs_float64": {c: f"{v:.2e}" for c, v in bf16_gap.items()},
        "bf16_vs_float64_means": "||shipped bfloat16 run - float64 run|| / ||float64 run's total move||, "
                                 "after the last step",
    }


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
        arrays = trajectory(opt, params, grads, lrs, STEPS)
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

    muon = muon_references(gen)

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
        "muon": muon,
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total / 1024:.0f} KiB, to {OUT}")


if __name__ == "__main__":
    main()
