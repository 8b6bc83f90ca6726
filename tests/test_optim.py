"""minigpt.optim against hand-computed values and properties (torch's trajectories: lesson 08's check)."""

import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt import optim


def make_params(dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "wte.weight": rng.standard_normal((5, 3)).astype(dtype),
        "h.0.ln_1.weight": rng.standard_normal(3).astype(dtype),
        "h.0.mlp.c_fc.bias": rng.standard_normal(4).astype(dtype),
        "h.0.mlp.c_fc.weight": rng.standard_normal((3, 4)).astype(dtype),
    }


def make_grads(params, seed=1):
    rng = np.random.default_rng(seed)
    return {n: rng.standard_normal(p.shape).astype(p.dtype) for n, p in params.items()}


def copy(d):
    return {n: a.copy() for n, a in d.items()}


# ---- SGD and momentum: the rules by hand ---------------------------------------------------------------
def test_sgd_step_is_minus_lr_times_grad_and_lr_is_read_each_step():
    p = {"b": np.array([1.0, -2.0])}
    opt = optim.SGD(p, lr=0.1)
    opt.step({"b": np.array([2.0, 4.0])})
    np.testing.assert_allclose(p["b"], [0.8, -2.4], rtol=1e-15)
    opt.lr = 0.01
    opt.step({"b": np.array([2.0, 4.0])})
    np.testing.assert_allclose(p["b"], [0.78, -2.44], rtol=1e-15)


def test_momentum_accumulates_velocity_torch_style():
    p = {"b": np.array([1.0])}
    opt = optim.SGD(p, lr=0.1, momentum=0.9)
    for _ in range(2):
        opt.step({"b": np.array([1.0])})
    # buf_1 = g = 1, buf_2 = 0.9 * 1 + 1 = 1.9 (torch: first buf is g itself, no dampening)
    np.testing.assert_allclose(p["b"], [1.0 - 0.1 * 1.0 - 0.1 * 1.9], rtol=1e-15)
    np.testing.assert_allclose(opt.state["momentum_buffer"]["b"], [1.9], rtol=1e-15)


def test_nesterov_looks_ahead():
    p = {"b": np.array([1.0])}
    opt = optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True)
    opt.step({"b": np.array([1.0])})  # buf = 1, step uses g + 0.9 * buf = 1.9
    np.testing.assert_allclose(p["b"], [1.0 - 0.19], rtol=1e-15)


def test_sgd_weight_decay_is_l2_on_matrices_only():
    p = {"w": np.full((2, 2), 2.0), "b": np.full(2, 2.0)}
    opt = optim.SGD(p, lr=0.1, weight_decay=0.5)
    zero = {n: np.zeros_like(a) for n, a in p.items()}
    opt.step(zero)
    np.testing.assert_allclose(p["w"], 2.0 - 0.1 * 0.5 * 2.0, rtol=1e-15)
    assert np.array_equal(p["b"], np.full(2, 2.0))


# ---- Adam and AdamW -----------------------------------------------------------------------------------
def test_first_adamw_step_moves_every_element_by_lr_times_sign_of_grad():
    params = make_params()
    before = copy(params)
    grads = make_grads(params)
    opt = optim.AdamW(params, lr=1e-3, weight_decay=0.0)
    opt.step(grads)
    for n in params:  # bias correction: m_hat = g, v_hat = g^2, so the step is lr * g / (|g| + eps)
        moved = before[n] - params[n]
        np.testing.assert_allclose(moved, 1e-3 * grads[n] / (np.abs(grads[n]) + 1e-8), rtol=1e-12)
        np.testing.assert_allclose(moved, 1e-3 * np.sign(grads[n]), rtol=1e-4)


def test_adam_second_step_matches_the_formula_by_hand():
    lr, b1, b2, eps = 0.01, 0.8, 0.9, 1e-3
    p = {"b": np.array([0.5])}
    opt = optim.Adam(p, lr=lr, betas=(b1, b2), eps=eps)
    g1, g2 = 0.3, -0.7
    opt.step({"b": np.array([g1])})
    opt.step({"b": np.array([g2])})
    x = 0.5
    m = v = 0.0
    for t, g in ((1, g1), (2, g2)):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        x -= lr * (m / (1 - b1**t)) / (math.sqrt(v / (1 - b2**t)) + eps)
    np.testing.assert_allclose(p["b"], [x], rtol=1e-14)
    assert opt.t == 2


def test_adamw_decays_only_tensors_with_ndim_at_least_2():
    params = make_params()
    before = copy(params)
    zero = {n: np.zeros_like(a) for n, a in params.items()}
    opt = optim.AdamW(params, lr=0.01, weight_decay=0.1)
    opt.step(zero)  # zero gradient: Adam's part is 0 / (0 + eps) = 0, only the decay acts
    for n, p in params.items():
        if p.ndim >= 2:
            np.testing.assert_allclose(p, before[n] * (1 - 0.01 * 0.1), rtol=1e-15)
        else:
            assert np.array_equal(p, before[n]), n


def test_adam_l2_goes_through_the_moments_unlike_adamw():
    w = {"w": np.array([[2.0, -0.001]])}
    opt = optim.Adam(w, lr=0.01, weight_decay=0.1)
    opt.step({"w": np.zeros((1, 2))})
    # L2's gradient wd * p is normalised like any gradient: both weights move by ~lr, whatever their size
    np.testing.assert_allclose(w["w"], [[2.0 - 0.01, -0.001 + 0.01]], atol=2e-6)


def test_adamw_defaults_are_nanogpts_recipe():
    opt = optim.AdamW(make_params())
    assert (opt.lr, opt.betas, opt.eps, opt.weight_decay) == (1e-3, (0.9, 0.99), 1e-8, 0.1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.1),
    lambda p: optim.Adam(p, weight_decay=0.1), lambda p: optim.AdamW(p)])
def test_step_updates_the_callers_arrays_in_place_and_keeps_dtype(make, dtype):
    params = make_params(dtype)
    ids = {n: id(a) for n, a in params.items()}
    before = copy(params)
    grads = make_grads(params)
    grads_before = copy(grads)
    opt = make(params)
    for _ in range(3):
        opt.step(grads)
    for n, a in params.items():
        assert id(a) == ids[n] and a.dtype == dtype
        assert not np.array_equal(a, before[n])
        assert np.array_equal(grads[n], grads_before[n]), "step() must not change the caller's grads"
    for bufs in opt.state.values():
        assert all(b.dtype == dtype for b in bufs.values())


def test_float32_run_tracks_float64_run():
    p32, p64 = make_params(np.float32), make_params(np.float64)
    o32, o64 = optim.AdamW(p32, lr=1e-2), optim.AdamW(p64, lr=1e-2)
    for s in range(5):
        g = make_grads(p64, seed=s)
        o64.step(g)
        o32.step({n: a.astype(np.float32) for n, a in g.items()})
    for n in p64:
        np.testing.assert_allclose(p32[n], p64[n], rtol=1e-5, atol=1e-6)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6).filter(lambda x: abs(x) > 1e-3), min_size=1, max_size=8),
       st.floats(1e-5, 1.0))
def test_first_adam_step_never_exceeds_lr(values, lr):
    p = {"b": np.zeros(len(values))}
    optim.Adam(p, lr=lr).step({"b": np.array(values)})
    assert np.all(np.abs(p["b"]) <= lr * (1 + 1e-12))


def test_bad_grads_and_bad_hyperparameters_are_clear_errors():
    params = make_params()
    opt = optim.AdamW(params)
    grads = make_grads(params)
    del grads["wte.weight"]
    with pytest.raises(KeyError, match="missing"):
        opt.step(grads)
    grads = make_grads(params)
    grads["wte.weight"] = grads["wte.weight"].T
    with pytest.raises(ValueError, match="shape"):
        opt.step(grads)
    with pytest.raises(ValueError, match="betas"):
        optim.Adam(params, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(params, nesterov=True)
    with pytest.raises(TypeError, match="float"):
        optim.SGD({"ids": np.arange(3)})


# ---- checkpoints ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [
    lambda p: optim.SGD(p, lr=0.1, momentum=0.9), lambda p: optim.SGD(p, lr=0.1),
    lambda p: optim.Adam(p, lr=0.01), lambda p: optim.AdamW(p, lr=0.01)])
def test_state_dict_round_trip_through_npz_continues_bit_for_bit(make, dtype):
    straight = make_params(dtype)
    opt = make(straight)
    for s in range(6):
        opt.lr *= 0.9
        opt.step(make_grads(straight, seed=s))
        if s == 2:  # save halfway
            buf = io.BytesIO()
            np.savez(buf, **opt.state_dict())
            saved_params = copy(straight)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        state = {k: z[k] for k in z.files}
    assert int(state["step"]) == 3
    resumed = saved_params
    opt2 = make(resumed)
    opt2.load_state_dict(state)
    for s in range(3, 6):
        opt2.lr *= 0.9
        opt2.step(make_grads(resumed, seed=s))
    for n in straight:
        assert np.array_equal(resumed[n], straight[n]), n
    assert opt2.t == opt.t == 6


def test_state_dict_is_a_copy():
    params = make_params()
    opt = optim.AdamW(params)
    state = opt.state_dict()
    opt.step(make_grads(params))
    assert not np.any(state["exp_avg.wte.weight"])


def test_load_state_dict_refuses_mismatched_or_broken_state_and_changes_nothing():
    params = make_params()
    opt = optim.AdamW(params)
    opt.step(make_grads(params))
    good = opt.state_dict()
    with pytest.raises(KeyError, match="missing"):
        optim.SGD(make_params(), momentum=0.9).load_state_dict(good)
    other = optim.AdamW(make_params())
    bad = dict(good, **{"exp_avg.wte.weight": np.zeros((3, 5))})
    with pytest.raises(ValueError, match=r"exp_avg\.wte\.weight has shape"):
        other.load_state_dict(bad)
    bad = dict(good, **{"exp_avg_sq.h.0.ln_1.weight": np.full(3, np.nan)})
    with pytest.raises(ValueError, match="NaN"):
        other.load_state_dict(bad)
    assert other.t == 0 and not np.any(other.state["exp_avg"]["wte.weight"])


# ---- the schedule -------------------------------------------------------------------------------------
def test_cosine_lr_at_key_points():
    kw = {"max_lr": 1e-3, "warmup_iters": 100, "decay_iters": 2000, "min_lr": 1e-4}
    assert optim.cosine_lr(0, **kw) == pytest.approx(1e-3 / 101, rel=1e-15)  # never zero at step 0
    assert optim.cosine_lr(99, **kw) == pytest.approx(1e-3 * 100 / 101, rel=1e-15)
    assert optim.cosine_lr(100, **kw) == pytest.approx(1e-3, rel=1e-15)  # peak at the end of warm-up
    assert optim.cosine_lr(1050, **kw) == pytest.approx(5.5e-4, rel=1e-12)  # halfway: the mean
    assert optim.cosine_lr(2000, **kw) == pytest.approx(1e-4, rel=1e-12)
    assert optim.cosine_lr(2001, **kw) == 1e-4
    assert optim.cosine_lr(10**6, **kw) == 1e-4
    lrs = [optim.cosine_lr(s, **kw) for s in range(2100)]
    assert all(a < b for a, b in zip(lrs[:100], lrs[1:101], strict=True))  # rising during warm-up
    assert all(a >= b for a, b in zip(lrs[100:], lrs[101:], strict=False))  # then never rising


def test_cosine_lr_rejects_a_schedule_that_divides_by_zero():
    with pytest.raises(ValueError, match="warmup_iters < decay_iters"):
        optim.cosine_lr(5, max_lr=1e-3, warmup_iters=10, decay_iters=10, min_lr=1e-4)
    with pytest.raises(ValueError, match="step"):
        optim.cosine_lr(-1, max_lr=1e-3, warmup_iters=10, decay_iters=100, min_lr=1e-4)


# ---- clipping and accumulation ---------------------------------------------------------------------------
def test_clip_grad_norm_returns_the_norm_before_and_scales_to_max_norm():
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[0.0], [4.0]])}  # global norm 5
    total = optim.clip_grad_norm(grads, max_norm=1.0)
    assert total == 5.0
    after = math.sqrt(sum(float(np.sum(g * g)) for g in grads.values()))
    assert after == pytest.approx(1.0 * 5.0 / (5.0 + 1e-6), rel=1e-14)
    np.testing.assert_allclose(grads["a"], [3.0 / (5.0 + 1e-6), 0.0], rtol=1e-15)
    grads = {"a": np.array([3.0, 0.0]), "b": np.array([[0.0], [4.0]])}
    assert optim.clip_grad_norm(grads, max_norm=4.0) == 5.0  # a gentle clip: factor 0.8
    np.testing.assert_allclose(grads["b"], [[0.0], [4.0 * 4.0 / (5.0 + 1e-6)]], rtol=1e-15)


def test_clip_grad_norm_leaves_small_gradients_alone():
    grads = make_grads(make_params())
    before = copy(grads)
    total = optim.clip_grad_norm(grads, max_norm=1e3)
    assert total == pytest.approx(math.sqrt(sum(float(np.sum(g**2)) for g in before.values())), rel=1e-14)
    assert all(np.array_equal(grads[n], before[n]) for n in grads)


def test_clip_grad_norm_float32_stays_float32():
    grads = make_grads(make_params(np.float32))
    optim.clip_grad_norm(grads, max_norm=0.1)
    assert all(g.dtype == np.float32 for g in grads.values())


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_clip_grad_norm_reports_a_non_finite_norm_and_leaves_grads_alone(bad):
    grads = make_grads(make_params())
    grads["wte.weight"][1, 2] = bad
    before = copy(grads)
    total = optim.clip_grad_norm(grads, max_norm=1.0)
    assert not math.isfinite(total)
    for n in grads:
        np.testing.assert_array_equal(grads[n], before[n])
    with pytest.raises(ValueError, match="max_norm"):
        optim.clip_grad_norm(grads, 0.0)


def test_accumulate_averages_micro_batches():
    params = make_params()
    micro = [make_grads(params, seed=s) for s in range(3)]
    want = {n: sum(m[n] for m in micro) / 3 for n in params}
    total = {n: np.zeros_like(p) for n, p in params.items()}
    for m in micro:
        optim.accumulate(total, copy(m), scale=1 / 3)
    for n in params:
        np.testing.assert_allclose(total[n], want[n], rtol=1e-14)


# ---- Muon ---------------------------------------------------------------------------------------------
# torch.optim.Muon's trajectories (float64, its bfloat16 cast made a float64 copy by the generator) are in
# lessons/08_optimizer/reference; minigpt matches them to rtol 1e-10, atol 1e-12 (measured: ~1e-13 worst
# element-wise, on elements near 0; five Newton-Schulz rounds amplify rounding, so 1e-12 would be tight).
MUON_RTOL, MUON_ATOL = 1e-10, 1e-12
REF = Path(__file__).resolve().parents[1] / "lessons" / "08_optimizer" / "reference"


def load_npz(name):
    with np.load(REF / name, allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def muon_meta():
    return json.loads((REF / "meta.json").read_text(encoding="utf-8"))["muon"]


@pytest.mark.parametrize("case", ["muon", "muon_varied"])
def test_muon_equals_torchs_trajectory(case):
    meta = muon_meta()
    start, want = load_npz("muon_params.npz"), load_npz(f"{case}.npz")
    names = list(meta["shapes"])
    params = {n: start[f"param.{n}"].copy() for n in names}
    opt = optim.Muon(params, lr=float(start["lr"][0]), **meta["cases"][case])
    for t in range(meta["steps"]):
        opt.lr = float(start["lr"][t])
        opt.step({n: start[f"grad.{n}"][t] for n in names})
        for n in names:
            np.testing.assert_allclose(params[n], want[f"param.{n}"][t], rtol=MUON_RTOL, atol=MUON_ATOL,
                                       err_msg=f"{n} after step {t + 1}")
    for n in names:
        np.testing.assert_allclose(opt.state["momentum_buffer"][n], want[f"momentum_buffer.{n}"],
                                   rtol=MUON_RTOL, atol=MUON_ATOL)


def test_newton_schulz_equals_torchs_and_leaves_g_alone():
    ref = load_npz("newton_schulz.npz")
    for key in [k for k in ref if k.startswith("G.")]:
        G = ref[key].copy()
        out = optim.newton_schulz(G)
        assert out.shape == G.shape and np.array_equal(G, ref[key])
        np.testing.assert_allclose(out, ref[f"O.{key[2:]}"], rtol=MUON_RTOL, atol=MUON_ATOL, err_msg=key)


@pytest.mark.parametrize("shape", [(16, 16), (8, 40), (40, 8)])
def test_newton_schulz_output_has_singular_values_near_one(shape):
    """Not U V^T exactly: the quintic squeezes two decades of singular values into a band around 1 ...

    ... but only so many: after dividing by ||G||_F, five rounds raise a small s by at most about
    a^5 = 485, so a direction 1e-6 below the largest stays small (noise, in a gradient)."""
    rng = np.random.default_rng(3)
    U, _ = np.linalg.qr(rng.standard_normal((shape[0], shape[0])))     # (m, m) orthogonal
    V, _ = np.linalg.qr(rng.standard_normal((shape[1], shape[1])))     # (n, n) orthogonal
    k = min(shape)
    s = np.logspace(-1, 1, k)                                          # two decades, 0.1 .. 10
    G = U[:, :k] @ np.diag(s) @ V[:, :k].T                             # (m, n)
    after = np.linalg.svd(optim.newton_schulz(G), compute_uv=False)   # (k,) descending
    assert s.max() / s.min() == pytest.approx(1e2)
    assert 0.6 < after.min() and after.max() < 1.25, after             # spread 100 -> under 2
    s[0] = 1e-5                                                        # one direction far below the rest
    G = U[:, :k] @ np.diag(s) @ V[:, :k].T                             # (m, n)
    after = np.linalg.svd(optim.newton_schulz(G), compute_uv=False)
    assert after.min() < 1e-2, after


def test_newton_schulz_of_zero_is_zero_and_of_a_tall_matrix_is_the_transpose_of_its_wide_one():
    assert not np.any(optim.newton_schulz(np.zeros((3, 5))))
    G = np.random.default_rng(4).standard_normal((9, 4))
    np.testing.assert_allclose(optim.newton_schulz(G), optim.newton_schulz(G.T.copy()).T, rtol=1e-12,
                               atol=1e-14)


def test_muon_refuses_non_matrix_params_and_says_where_they_go():
    params = make_params()
    with pytest.raises(ValueError, match="2-D.*h.0.ln_1.weight.*AdamW"):
        optim.Muon(params)
    with pytest.raises(ValueError, match="2-D"):
        optim.newton_schulz(np.ones(3))
    with pytest.raises(ValueError, match="adjust_lr_fn"):
        optim.Muon({"w": np.ones((2, 3))}, adjust_lr_fn="spectral")


def test_muon_lr_ratio_reads_the_arrays_shape_like_torch():
    opt = optim.Muon({"wide": np.ones((6, 18)), "tall": np.ones((24, 6))})
    assert opt.lr_ratio((6, 18)) == 1.0 and opt.lr_ratio((24, 6)) == 2.0
    assert optim.Muon({"w": np.ones((4, 9))}, adjust_lr_fn="match_rms_adamw").lr_ratio((4, 9)) == \
        pytest.approx(0.2 * 3.0, rel=1e-15)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_muon_state_round_trip_through_npz_continues_bit_for_bit(dtype):
    rng = np.random.default_rng(5)
    shapes = {"h.0.attn.c_attn.weight": (4, 12), "h.0.mlp.c_proj.weight": (16, 4)}
    straight = {n: rng.standard_normal(s).astype(dtype) for n, s in shapes.items()}
    grads = [{n: rng.standard_normal(s).astype(dtype) for n, s in shapes.items()} for _ in range(6)]
    opt = optim.Muon(straight, lr=0.02)
    for s in range(6):
        opt.step(grads[s])
        if s == 2:
            buf = io.BytesIO()
            np.savez(buf, **opt.state_dict())
            saved = copy(straight)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as z:
        state = {k: z[k] for k in z.files}
    assert sorted(state) == ["lr", "momentum_buffer.h.0.attn.c_attn.weight",
                             "momentum_buffer.h.0.mlp.c_proj.weight", "step"]
    opt2 = optim.Muon(saved, lr=0.0)
    opt2.load_state_dict(state)
    for s in range(3, 6):
        opt2.step(grads[s])
    for n in straight:
        assert saved[n].dtype == dtype and np.array_equal(saved[n], straight[n]), n


# ---- MuonAdamW: the pairing the trainer uses with --optimizer muon -----------------------------------------
def test_muon_adamw_is_muon_on_the_blocks_matrices_and_adamw_on_the_rest():
    """Bit for bit the two optimizers stepped side by side, Muon's lr the schedule's times muon_lr / lr;
    its state round-trips and an AdamW-only state is refused."""
    from minigpt.model import GPT, GPTConfig

    cfg = GPTConfig(vocab_size=23, block_size=16, n_layer=2, n_head=2, n_embd=16)
    ours, theirs = (GPT(cfg, seed=3, dtype=np.float64).params for _ in range(2))
    pair = optim.MuonAdamW(ours, lr=6e-3, muon_lr=0.05, weight_decay=0.1)
    hidden = {n: p for n, p in theirs.items() if n.startswith("h.") and p.ndim == 2}
    muon = optim.Muon(hidden, lr=0.05, weight_decay=0.1)
    adamw = optim.AdamW({n: p for n, p in theirs.items() if n not in hidden}, lr=6e-3, weight_decay=0.1)
    assert set(pair.muon.params) == set(hidden) and "wte.weight" in pair.adamw.params
    rng = np.random.default_rng(0)
    for it in range(4):
        grads = {n: rng.standard_normal(p.shape) for n, p in ours.items()}
        lr = optim.cosine_lr(it, 6e-3, 1, 4, 1e-5)
        pair.lr, adamw.lr, muon.lr = lr, lr, lr * 0.05 / 6e-3
        pair.step(grads)
        muon.step({n: grads[n] for n in hidden})
        adamw.step({n: grads[n] for n in adamw.params})
    for name, p in ours.items():
        assert np.array_equal(p, theirs[name]), name
    again = optim.MuonAdamW(GPT(cfg, seed=3, dtype=np.float64).params, lr=6e-3, muon_lr=0.05)
    again.load_state_dict(pair.state_dict())
    assert again.t == 4 and again.lr == pair.lr and again.muon.lr == pair.muon.lr
    for key, value in pair.state_dict().items():
        assert np.array_equal(again.state_dict()[key], value), key
    with pytest.raises(KeyError, match="another optimizer"):
        again.load_state_dict(optim.AdamW(GPT(cfg).params).state_dict())
    with pytest.raises(ValueError, match="lr > 0"):
        optim.MuonAdamW(ours, lr=0.0)
