"""Lesson 08's checks: SGD, momentum, Adam, AdamW, cosine_lr, clip_grad_norm, Muon against torch's references.

Every optimizer case starts from the same float64 params (GPT-2 names, 2-D weights and 1-D biases and
gains), takes 25 steps with stored gradients and a changing lr, and is compared after every step with
torch.optim's trajectory (weight decay only on ndim >= 2, via two param groups in make_reference.py).

Tolerance: rtol 1e-12, atol 1e-14 in float64. A correct implementation differs from torch only by
rounding (a few units in the last place; torch uses lerp and fused multiply-adds), so 1e-12 leaves room
for a different but honest order of operations and none for a missing term.

Muon (steps 8 and 9): torch's Newton-Schulz on five matrices (square, wide, tall, one below eps, zero) and
torch.optim.Muon's 10-step trajectories on a square, a wide and a tall matrix, all in float64 (the
generator makes torch's bfloat16 cast a float64 copy). Tolerance: rtol 1e-10, atol 1e-12 - five rounds of
matrix products amplify rounding (minigpt lands ~1e-13 from torch), and Keller Jordan's "+ eps" in place of
torch's clamp already moves the result by ~1e-8.

What it does not check: speed, float32 against torch (only that float32 stays float32 and agrees with
float64 to float32 precision).
"""

from __future__ import annotations

import io
from types import ModuleType

import numpy as np

from minigpt.course.grader import Grader, Step, load_reference

IMPL = "minigpt.optim"
RTOL, ATOL = 1e-12, 1e-14
MUON_RTOL, MUON_ATOL = 1e-10, 1e-12


def _start(ref: dict, names: list[str], dtype=np.float64) -> dict[str, np.ndarray]:
    return {n: ref[f"param.{n}"].astype(dtype) for n in names}


def _make(impl: ModuleType, spec: dict, params: dict[str, np.ndarray], lr: float):
    kwargs = dict(spec)
    cls = getattr(impl, kwargs.pop("optimizer"))
    if "betas" in kwargs:
        kwargs["betas"] = tuple(kwargs["betas"])
    return cls(params, lr=lr, **kwargs)


def _steps(opt, params: dict, ref: dict, names: list[str], steps: range) -> list[dict[str, np.ndarray]]:
    """Take the given steps with the stored gradients and lrs; return a copy of the params after each."""
    history = []
    for t in steps:
        opt.lr = float(ref["lr"][t])
        opt.step({n: ref[f"grad.{n}"][t].astype(params[n].dtype) for n in names})
        history.append({n: params[n].copy() for n in names})
    return history


def _flat(arrays: list[np.ndarray]) -> np.ndarray:
    return np.concatenate([np.ravel(a) for a in arrays])


PITFALLS = {"sgd": "inplace", "sgd_l2": "decay_vectors", "momentum": "momentum", "nesterov": "momentum",
            "adam": ("bias_correction", "eps"), "adam_l2": ("bias_correction", "eps", "decay_vectors"),
            "adamw": ("decay_order", "l2", "decay_vectors"), "adamw_varied": ("decay_order", "l2", "eps")}


def _trajectory(impl: ModuleType, g: Grader, cases: tuple[str, ...]) -> None:
    meta = load_reference(__file__, "meta.json")
    start = load_reference(__file__, "params.npz")
    names = list(meta["shapes"])
    steps = meta["steps"]
    weights = [n for n in names if len(meta["shapes"][n]) >= 2]  # decayed
    vectors = [n for n in names if len(meta["shapes"][n]) < 2]  # biases, gains: never decayed
    for case in cases:
        spec = meta["cases"][case]
        want = load_reference(__file__, f"{case}.npz")
        desc = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "optimizer")
        with g.case(f"{spec['optimizer']} [{case}: {desc}]", pitfall=PITFALLS[case]):
            params = _start(start, names)
            opt = _make(impl, spec, params, lr=float(start["lr"][0]))
            history = _steps(opt, params, start, names, range(steps))
            for label, group in (("weights (ndim >= 2, decayed)", weights),
                                 ("biases and gains (ndim 1, not decayed)", vectors)):
                got = np.stack([_flat([h[n] for n in group]) for h in history])  # (S, N)
                ref = np.stack([_flat([want[f"param.{n}"][t] for n in group]) for t in range(steps)])
                before = np.broadcast_to(_flat([start[f"param.{n}"] for n in group]), ref.shape)
                g.close(f"{label} after each of {steps} steps", got, ref, rtol=RTOL, atol=ATOL,
                        initial=before)
            for kind in sorted({k.split(".", 1)[0] for k in want if not k.startswith("param.")}):
                state = opt.state[kind]
                g.close(f"state {kind} after {steps} steps", _flat([state[n] for n in names]),
                        _flat([want[f"{kind}.{n}"] for n in names]), rtol=RTOL, atol=ATOL)


def _sgd(impl, g) -> None:
    _trajectory(impl, g, ("sgd", "sgd_l2"))


def _momentum(impl, g) -> None:
    _trajectory(impl, g, ("momentum", "nesterov"))


def _adam(impl, g) -> None:
    _trajectory(impl, g, ("adam", "adam_l2"))


def _adamw(impl, g) -> None:
    _trajectory(impl, g, ("adamw", "adamw_varied"))
    meta = load_reference(__file__, "meta.json")
    start = load_reference(__file__, "params.npz")
    names = list(meta["shapes"])
    with g.case("AdamW on float32 params"):
        spec = meta["cases"]["adamw"]
        want = load_reference(__file__, "adamw.npz")
        params = _start(start, names, np.float32)
        opt = _make(impl, spec, params, lr=float(start["lr"][0]))
        history = _steps(opt, params, start, names, range(5))
        dtypes = sorted({str(params[n].dtype) for n in names})
        g.true("every param is still float32 after 5 steps", dtypes == ["float32"], f"dtypes: {dtypes}")
        g.close("params after 5 steps (float32 precision)", _flat([history[-1][n] for n in names]),
                _flat([want[f"param.{n}"][4] for n in names]).astype(np.float32), rtol=1e-5, atol=1e-6,
                dtype=np.float32)


def _resume(impl, g) -> None:
    meta = load_reference(__file__, "meta.json")
    start = load_reference(__file__, "params.npz")
    names = list(meta["shapes"])
    steps = meta["steps"]
    with g.case("AdamW state_dict round trip through np.savez: 10 steps, save, new optimizer, 15 more",
                pitfall="resume"):
        spec = meta["cases"]["adamw"]
        want = load_reference(__file__, "adamw.npz")
        params = _start(start, names)
        opt = _make(impl, spec, params, lr=float(start["lr"][0]))
        _steps(opt, params, start, names, range(10))
        buf = io.BytesIO()
        np.savez(buf, **opt.state_dict())
        buf.seek(0)
        with np.load(buf, allow_pickle=False) as z:
            saved = {k: z[k] for k in z.files}
        g.equal("step count saved", int(saved["step"]), 10)
        resumed_params = {n: params[n].copy() for n in names}
        resumed = _make(impl, spec, resumed_params, lr=0.0)
        resumed.load_state_dict(saved)
        history = _steps(resumed, resumed_params, start, names, range(10, steps))
        g.close("params after the resumed run's last step", _flat([history[-1][n] for n in names]),
                _flat([want[f"param.{n}"][-1] for n in names]), rtol=RTOL, atol=ATOL)


def _cosine(impl, g) -> None:
    meta = load_reference(__file__, "meta.json")
    with g.case("cosine_lr (nanoGPT's schedule, warm-up (it + 1) / (warmup + 1))", pitfall="schedule"):
        ref = load_reference(__file__, "cosine.npz")
        got = np.array([impl.cosine_lr(int(s), **meta["cosine"]) for s in ref["step"]])
        g.close(f"lr at steps {ref['step'].tolist()}", got, ref["lr"], rtol=RTOL)


def _clip(impl, g) -> None:
    meta = load_reference(__file__, "meta.json")
    names = list(meta["shapes"])
    clip = load_reference(__file__, "clip.npz")
    for c in meta["clip"]:
        name, max_norm = c["name"], c["max_norm"]
        with g.case(f"clip_grad_norm [{name}: max_norm={max_norm}]", pitfall="clip"):
            grads = {n: clip[f"{name}.before.{n}"].copy() for n in names}
            before = _flat([grads[n] for n in names])
            total = impl.clip_grad_norm(grads, max_norm)
            g.close("returned norm (before clipping)", np.float64(total), clip[f"{name}.norm"], rtol=RTOL)
            g.close("grads after clipping", _flat([grads[n] for n in names]),
                    _flat([clip[f"{name}.after.{n}"] for n in names]), rtol=RTOL, atol=ATOL, initial=before)
    with g.case("clip_grad_norm with a NaN in one gradient"):
        grads = {n: clip[f"small.before.{n}"].copy() for n in names}
        grads[names[-1]][0] = np.nan
        total = impl.clip_grad_norm(grads, 1.0)
        g.true("the returned norm is not finite (so the trainer can stop)", not np.isfinite(total),
               f"returned {total}")


def _ns_pitfall(got: np.ndarray, want: np.ndarray, G: np.ndarray, eps: float) -> str:
    """Which Newton-Schulz bug a wrong output looks like (a key of hints.toml's pitfalls)."""
    got = np.asarray(got, dtype=np.float64)
    if got.shape != want.shape:
        return "ns_shape"
    with np.errstate(all="ignore"):
        ratio = np.linalg.norm(got) / max(np.linalg.norm(want), 1e-300)
        off = np.abs(got - want).max() / max(np.abs(want).max(), 1e-300)
    if not np.isfinite(ratio) or not 0.5 < ratio < 2.0:
        return "ns_normalise"                  # sizes far off: the input was not scaled into the basin
    if off < 1e-5 or np.linalg.norm(G) < eps:
        return "ns_eps"                        # right but for a hair, or wrong only below eps: eps added
    return "ns_iteration"


def _newton_schulz(impl, g) -> None:
    ref = load_reference(__file__, "newton_schulz.npz")
    for name in [k[2:] for k in ref if k.startswith("G.")]:
        G, want = ref[f"G.{name}"], ref[f"O.{name}"]
        m, n = G.shape
        kind = "square" if m == n else "wide" if m < n else "tall"
        scale = f"||G||_F = {np.linalg.norm(G):.2g}"
        with g.case(f"newton_schulz(G) [{name}: ({m}, {n}) {kind}, {scale}]"):
            mine = G.copy()
            got = impl.newton_schulz(mine)
            g.close("O, after 5 steps of the quintic", got, want, rtol=MUON_RTOL, atol=MUON_ATOL,
                    pitfall=_ns_pitfall(got, want, G, eps=1e-7))
            same = np.array_equal(mine, G)
            g.true("G is left unchanged", same, "" if same else "newton_schulz changed its argument",
                   pitfall="ns_inplace")
    with g.case("newton_schulz refuses a 1-D array"), g.raises("ValueError for shape (4,)", ValueError):
        impl.newton_schulz(np.ones(4))


def _muon(impl, g) -> None:
    meta = load_reference(__file__, "meta.json")["muon"]
    start = load_reference(__file__, "muon_params.npz")
    names = list(meta["shapes"])
    steps = meta["steps"]
    for case, kwargs in meta["cases"].items():
        want = load_reference(__file__, f"{case}.npz")
        desc = ", ".join(f"{k}={v}" for k, v in kwargs.items()) or "torch's defaults"
        with g.case(f"Muon [{case}: {desc}]", pitfall="muon_update"):
            params = _start(start, names)
            opt = impl.Muon(params, lr=float(start["lr"][0]), **kwargs)
            history = _steps(opt, params, start, names, range(steps))
            for name in names:
                m, n = meta["shapes"][name]
                kind = "square" if m == n else "wide" if m < n else "tall"
                got = np.stack([h[name] for h in history])                    # (S, m, n)
                before = np.broadcast_to(start[f"param.{name}"], got.shape)
                g.close(f"{name} ({m}, {n}) {kind}, after each of {steps} steps", got, want[f"param.{name}"],
                        rtol=MUON_RTOL, atol=MUON_ATOL, initial=before,
                        pitfall=None if kind == "square" else "adjust_lr")
            g.close(f"state momentum_buffer after {steps} steps",
                    _flat([opt.state["momentum_buffer"][n] for n in names]),
                    _flat([want[f"momentum_buffer.{n}"] for n in names]), rtol=MUON_RTOL, atol=MUON_ATOL,
                    pitfall="muon_momentum")


STEPS = [
    Step(1, "plain SGD (and its L2 penalty)", ("SGD.step",), _sgd),
    Step(2, "momentum and Nesterov", ("SGD.step",), _momentum),
    Step(3, "Adam", ("Adam.step",), _adam),
    Step(4, "AdamW: decoupled weight decay", ("AdamW.step",), _adamw),
    Step(5, "save and resume", ("Optimizer.state_dict", "Optimizer.load_state_dict"), _resume),
    Step(6, "the cosine schedule with warm-up", ("cosine_lr",), _cosine),
    Step(7, "clipping by the global norm", ("clip_grad_norm",), _clip),
    Step(8, "Muon: Newton-Schulz orthogonalisation", ("newton_schulz",), _newton_schulz),
    Step(9, "Muon: the update", ("Muon.step",), _muon),
]
