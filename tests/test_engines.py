"""Every layer engine equals its plain definition (run under engines.disabled()), and the engines' thread
pool is lazy: no thread on import, none with engines off or for small arrays.

Tolerances: float64 within a few ulps of the values' scale (~1e-15 relative, the engines regroup the same
operations); float32 within ~1e-6 relative (stated per test). The arrays are above PARALLEL_MIN so the
engines (not the definitions) run with engines on.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from minigpt import engines, optim
from minigpt.layers import parallel
from minigpt.layers.attention import sdpa_backward, sdpa_backward_engine, sdpa_forward, sdpa_forward_engine
from minigpt.layers.embedding import embedding_backward, embedding_backward_engine, embedding_forward
from minigpt.layers.layernorm import (
    layernorm_backward,
    layernorm_backward_engine,
    layernorm_forward,
    layernorm_forward_engine,
    layernorm_vector_engine,
)
from minigpt.layers.loss import cross_entropy_backward, cross_entropy_forward
from minigpt.layers.mlp import (
    GELU_CUBIC,
    GELU_SCALE,
    gelu_backward,
    gelu_backward_engine,
    gelu_forward,
    gelu_forward_engine,
)
from minigpt.layers.softmax import (
    log_softmax,
    log_softmax_rows_engine,
    softmax,
    softmax_backward,
    softmax_rows_engine,
)
from minigpt.model import GPT, GPTConfig

TOL = {np.float64: 1e-14, np.float32: 2e-6}     # max |engine - definition| / max |definition|


def close(engine, definition, dtype):
    engine, definition = np.asarray(engine), np.asarray(definition)
    assert engine.dtype == definition.dtype == np.dtype(dtype)
    assert engine.shape == definition.shape
    scale = max(float(np.abs(definition).max()), 1e-300)
    assert float(np.abs(engine.astype(np.float64) - definition).max()) / scale <= TOL[dtype]


@pytest.fixture(params=[1, 2, 3], ids=["1thread", "2threads", "3threads"])
def threads(request, monkeypatch):
    """Run with 1, 2 and 3 engine threads (3 blocks on 2 cores still has to give the same numbers)."""
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", str(request.param))
    return request.param


# ---- softmax ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_softmax_engine_equals_definition_bit_for_bit(dtype, threads):
    x = (np.random.default_rng(0).standard_normal((40, 3, 300)) * 5).astype(dtype)
    x[:, :, 7] = -np.inf                                       # masked entries get exactly 0
    with engines.disabled():
        p0, l0 = softmax(x), log_softmax(x)
    p1, l1 = softmax(x), log_softmax(x)
    np.testing.assert_array_equal(p1, softmax_rows_engine(x))
    np.testing.assert_array_equal(p1, p0)                      # the same passes per row: the same bits
    np.testing.assert_array_equal(l1, l0)
    np.testing.assert_array_equal(log_softmax_rows_engine(x), l0)
    assert (p1[:, :, 7] == 0).all()
    np.testing.assert_allclose(p1.sum(-1), 1.0, rtol=1e-6 if dtype == np.float32 else 1e-14)


def test_softmax_in_place_and_on_a_non_contiguous_input():
    x = np.random.default_rng(1).standard_normal((300, 200))
    with engines.disabled():
        want = softmax(x.T)
    np.testing.assert_allclose(softmax(x.T), want, rtol=1e-14)  # a transposed view: read through a copy
    y = x.copy()
    out = softmax(y, out=y)
    assert out is y
    with engines.disabled():
        np.testing.assert_array_equal(y, softmax(x))


def test_log_softmax_stays_finite_where_p_underflows():
    x = np.tile(np.array([1e4, -1e4, 0.0, 9999.0]), (20_000, 1))   # 80,000 elements: the engine runs
    out = log_softmax(x)
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out[0], [-np.log1p(np.exp(-1.0)), -2e4 - np.log1p(np.exp(-1.0)),
                                        -1e4 - np.log1p(np.exp(-1.0)), -1.0 - np.log1p(np.exp(-1.0))],
                               rtol=1e-15)


def test_softmax_backward_against_finite_differences():
    rng = np.random.default_rng(2)
    s, dp = rng.standard_normal((3, 7)), rng.standard_normal((3, 7))
    ds = softmax_backward(dp, softmax(s))
    h, numeric = 1e-6, np.zeros_like(s)
    for i in np.ndindex(s.shape):
        e = np.zeros_like(s)
        e[i] = h
        numeric[i] = ((softmax(s + e) - softmax(s - e)) * dp).sum() / (2 * h)
    np.testing.assert_allclose(ds, numeric, rtol=1e-7, atol=1e-9)


def test_loss_uses_the_shared_log_softmax():
    rng = np.random.default_rng(3)
    logits, targets = rng.standard_normal((4, 50, 400)), rng.integers(0, 400, (4, 50))
    loss, cache = cross_entropy_forward(logits, targets)
    logp = log_softmax(logits)
    assert loss == pytest.approx(-np.take_along_axis(logp, targets[..., None], -1).mean(), rel=1e-14)
    dz = cross_entropy_backward(1.0, cache)
    np.testing.assert_allclose(dz.sum(-1), 0.0, atol=1e-15)   # softmax minus one-hot: rows sum to 0


# ---- GELU ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gelu_engine_equals_definition(dtype, threads):
    rng = np.random.default_rng(4)
    x = (rng.standard_normal((6, 70, 200)) * 3).astype(dtype)
    dout = rng.standard_normal(x.shape).astype(dtype)
    with engines.disabled():
        out0, cache0 = gelu_forward(x)
        dx0 = gelu_backward(dout, cache0)
    out1, cache1 = gelu_forward_engine(x)
    close(out1, out0, dtype)
    close(cache1[1], cache0[1], dtype)                        # tanh(u), what the backward reads
    close(gelu_backward_engine(dout, cache1), dx0, dtype)
    close(gelu_backward_engine(dout, cache0), dx0, dtype)     # either cache works with either backward
    out2, cache2 = gelu_forward(x)                             # engines on: the engine takes over
    np.testing.assert_array_equal(out2, out1)
    np.testing.assert_array_equal(gelu_backward(dout, cache2), gelu_backward_engine(dout, cache1))


def test_gelu_definition_is_the_formula():
    x = np.linspace(-8.0, 8.0, 40_001)                         # above PARALLEL_MIN: check both forms
    formula = 0.5 * x * (1.0 + np.tanh(GELU_SCALE * (x + GELU_CUBIC * x**3)))
    with engines.disabled():
        np.testing.assert_allclose(gelu_forward(x)[0], formula, rtol=1e-15, atol=1e-15)
    np.testing.assert_allclose(gelu_forward(x)[0], formula, rtol=1e-14, atol=1e-15)


# ---- layer-norm ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("with_bias", [True, False])
def test_layernorm_engine_equals_definition(dtype, with_bias, threads):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((7, 50, 96)) * 4 + 3).astype(dtype)
    w = rng.standard_normal(96).astype(dtype)
    b = rng.standard_normal(96).astype(dtype) if with_bias else None
    dout = rng.standard_normal(x.shape).astype(dtype)
    with engines.disabled():
        out0, cache0 = layernorm_forward(x, w, b)
        grads0 = layernorm_backward(dout, cache0)
    out1, cache1 = layernorm_forward_engine(x, w, b)
    close(out1, out0, dtype)
    close(cache1[0], cache0[0], dtype)                        # xhat
    close(cache1[1], cache0[1], dtype)                        # rstd, (B, T, 1) in both
    grads1 = layernorm_backward_engine(dout, cache1)
    for g1, g0 in zip(grads1[:2], grads0[:2], strict=True):
        close(g1, g0, dtype)
    assert (grads1[2] is None) == (grads0[2] is None) == (not with_bias)
    if with_bias:
        close(grads1[2], grads0[2], dtype)
    np.testing.assert_array_equal(layernorm_forward(x, w, b)[0], out1)   # engines on: the engine runs


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_layernorm_vector_engine_equals_definition(dtype):
    rng = np.random.default_rng(6)
    x, w, b = (rng.standard_normal(128) * 3 + 1).astype(dtype), rng.standard_normal(128).astype(dtype), \
        rng.standard_normal(128).astype(dtype)
    close(layernorm_vector_engine(x, w, b, 1e-5), layernorm_forward(x, w, b)[0], dtype)
    close(layernorm_vector_engine(x, w, None, 1e-5), layernorm_forward(x, w, None)[0], dtype)


# ---- attention ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("tq,tk", [(64, 64), (20, 90), (256, 256)])   # Tk > Tq: a KV cache's offset mask;
# 256 x 256 x 16 per head is above BLAS_THREADED: blocks on the calling thread only
def test_sdpa_engine_equals_definition(dtype, tq, tk, threads):
    rng = np.random.default_rng(7)
    q = rng.standard_normal((6, 4, tq, 16)).astype(dtype)
    k, v = (rng.standard_normal((6, 4, tk, 16)).astype(dtype) for _ in range(2))
    dy = rng.standard_normal(q.shape).astype(dtype)
    with engines.disabled():
        y0, cache0 = sdpa_forward(q, k, v)
        grads0 = sdpa_backward(dy, cache0)
    y1, cache1 = sdpa_forward_engine(q, k, v)
    close(y1, y0, dtype)
    close(cache1[3], cache0[3], dtype)                        # the attention weights (B, H, Tq, Tk)
    for g1, g0 in zip(sdpa_backward_engine(dy, cache1), grads0, strict=True):
        close(g1, g0, dtype)
    for g1, g0 in zip(sdpa_backward(dy, cache1), grads0, strict=True):   # engines on: dispatch
        close(g1, g0, dtype)


def test_sdpa_with_dropout_keeps_the_definition_and_its_random_draws():
    rng = np.random.default_rng(8)
    q, k, v = (rng.standard_normal((4, 4, 64, 16)) for _ in range(3))
    with engines.disabled():
        y0, _ = sdpa_forward(q, k, v, 0.1, np.random.default_rng(0))
    y1, _ = sdpa_forward(q, k, v, 0.1, np.random.default_rng(0))
    np.testing.assert_array_equal(y1, y0)


# ---- the whole model ----------------------------------------------------------------------------------
@pytest.mark.parametrize("dtype,rtol", [(np.float64, 1e-12), (np.float32, 2e-4)])
def test_training_step_with_engines_equals_definitions(dtype, rtol):
    cfg = GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=64)
    model = GPT(cfg, seed=0, dtype=dtype)
    rng = np.random.default_rng(9)
    idx, targets = rng.integers(0, 65, (12, 64)), rng.integers(0, 65, (12, 64))
    with engines.disabled():
        loss0, grads0 = model.loss_and_grads(idx, targets)
    loss1, grads1 = model.loss_and_grads(idx, targets)
    assert loss1 == pytest.approx(loss0, rel=rtol)
    for name, g0 in grads0.items():
        assert grads1[name].dtype == np.dtype(dtype), name    # float32 end to end
        scale = float(np.abs(g0).max())
        assert float(np.abs(grads1[name] - g0).max()) <= rtol * scale, name


# ---- the pool -----------------------------------------------------------------------------------------
def test_run_blocks_covers_every_row_once_and_raises_errors(threads):
    seen = np.zeros(1000, int)

    def work(start, stop):
        seen[start:stop] += 1

    parallel.run_blocks(work, 1000, 100, block_size=7_000)
    assert (seen == 1).all()

    def fail(start, stop):
        if start > 0:
            raise ValueError("block failed")

    if threads > 1:
        with pytest.raises(ValueError, match="block failed"):
            parallel.run_blocks(fail, 1000, 100)


def test_split_is_contiguous_and_balanced():
    assert parallel.split(10, 3) == [(0, 3), (3, 6), (6, 10)]
    assert parallel.split(2, 5) == [(0, 1), (1, 2)]


def run_python(code: str, **env) -> str:
    import os

    full_env = {**os.environ, "OPENBLAS_NUM_THREADS": "2", **env}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env, check=True,
                          capture_output=True, text=True).stdout


def test_the_pool_is_lazy():
    out = run_python("""
        import threading
        import numpy as np
        import minigpt, minigpt.model
        from minigpt.layers import parallel
        from minigpt.layers.mlp import gelu_forward
        print(parallel._pool is None, threading.active_count())
        gelu_forward(np.ones(1000))                   # small: no thread
        print(parallel._pool is None)
        gelu_forward(np.ones((100, 1000)))            # large: the pool appears
        print(parallel._pool is not None)
    """)
    assert out.split() == ["True", "1", "True", "True"]


def test_no_pool_with_engines_off():
    out = run_python("""
        import numpy as np
        from minigpt.layers import parallel
        from minigpt.model import GPT, GPTConfig
        model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_embd=128))
        model.loss_and_grads(np.zeros((12, 64), int), np.zeros((12, 64), int))
        print(parallel._pool is None)
    """, MINIGPT_ENGINES="0")
    assert out.split() == ["True"]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_embedding_backward_engine_equals_definition(dtype):
    rng = np.random.default_rng(10)
    wte, wpe = rng.standard_normal((65, 32)).astype(dtype), rng.standard_normal((80, 32)).astype(dtype)
    idx = rng.integers(0, 20, (12, 64))                        # ids repeat many times; 45 ids never appear
    dout = rng.standard_normal((12, 64, 32)).astype(dtype)
    _, cache = embedding_forward(idx, wte, wpe, start=5)
    with engines.disabled():
        grads0 = embedding_backward(dout, cache)
    for g1, g0 in zip(embedding_backward_engine(dout, cache), grads0, strict=True):
        close(g1, g0, dtype)
    assert (embedding_backward(dout, cache)[0][20:] == 0).all()


# ---- AdamW --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls", [optim.AdamW, optim.Adam])
def test_adam_on_threads_equals_the_loop_bit_for_bit(cls, monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
    rng = np.random.default_rng(11)
    shapes = [(300, 200), (200,), (64, 64), (5,), (128, 512)]
    params = [{f"p{i}": rng.standard_normal(s).astype(np.float32) for i, s in enumerate(shapes)}]
    params.append({k: v.copy() for k, v in params[0].items()})
    opts = [cls(p, lr=1e-2, weight_decay=0.1) for p in params]
    for _ in range(3):
        grads = {k: rng.standard_normal(v.shape).astype(np.float32) for k, v in params[0].items()}
        with engines.disabled():
            opts[0].step(grads)
        opts[1].step(grads)
        assert opts[1]._by_size is not None                    # the engine ran
    for name in params[0]:
        np.testing.assert_array_equal(params[1][name], params[0][name])
        np.testing.assert_array_equal(opts[1].state["exp_avg_sq"][name], opts[0].state["exp_avg_sq"][name])
