"""The GPT model: whole-model gradients by finite differences, weight tying, dropout, the KV cache, errors.

The agreement with transformers (logits, loss, every gradient) is lessons/07_gpt's check, run by
tests/test_lessons.py; here are the properties that need no reference.
"""

import numpy as np
import pytest

from minigpt.course.gradcheck import rel_error, sampled_grad_errors
from minigpt.model import GPT, GPTConfig, count_params, param_shapes

# every size distinct: V 11, block 9, C 12, H 3 (D 4), L 2; batches B 2, T 5
TINY = GPTConfig(vocab_size=11, block_size=9, n_layer=2, n_head=3, n_embd=12)


def randomised(config: GPTConfig, seed: int = 0) -> GPT:
    """A float64 model whose every parameter is random (GPT-2's init leaves biases 0 and gains 1)."""
    model = GPT(config, seed=seed, dtype=np.float64)
    rng = np.random.default_rng(seed + 100)
    for p in model.params.values():
        p[...] = 0.3 * rng.standard_normal(p.shape) + (1.0 if p.ndim == 1 else 0.0)
    return model


def batch(config: GPTConfig, B: int = 2, T: int = 5, seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.integers(0, config.vocab_size, (B, T)), rng.integers(0, config.vocab_size, (B, T))


def fd_errors(model: GPT, idx, targets, samples: int = 3, h: float = 1e-5, rng_seed=None):
    """Per parameter: (relative error, max |diff|) of sampled analytic vs central-difference gradients."""
    def loss():
        rng = None if rng_seed is None else np.random.default_rng(rng_seed)
        return model.loss_and_grads(idx, targets, rng=rng)[0]

    rng = None if rng_seed is None else np.random.default_rng(rng_seed)
    _, grads = model.loss_and_grads(idx, targets, rng=rng)
    return sampled_grad_errors(loss, model.params, grads, samples, np.random.default_rng(2), h)


def assert_fd_ok(errors):
    # the key third of c_attn.bias has an exactly-zero gradient (softmax ignores a per-row shift):
    # there both sides are rounding noise, so an absolute bound applies
    bad = {k: e for k, e in errors.items() if not (e[0] < 1e-6 or e[1] < 1e-8)}
    assert not bad, bad


@pytest.mark.parametrize("bias", [True, False])
def test_loss_and_grads_match_finite_differences(bias):
    model = randomised(GPTConfig(11, 9, 2, 3, 12, bias=bias))
    idx, targets = batch(model.config)
    errors = fd_errors(model, idx, targets)
    assert set(errors) == set(param_shapes(model.config))
    assert_fd_ok(errors)


def test_gradients_with_dropout_and_a_fixed_mask():
    config = GPTConfig(11, 9, 2, 3, 12, dropout=0.25)
    model = randomised(config)
    idx, targets = batch(config)
    assert_fd_ok(fd_errors(model, idx, targets, samples=2, rng_seed=5))


def test_grads_have_params_keys_shapes_and_dtype():
    for dtype in (np.float32, np.float64):
        model = GPT(TINY, dtype=dtype)
        _, grads = model.loss_and_grads(*batch(TINY))
        assert list(grads) == list(model.params)
        for name, g in grads.items():
            assert g.shape == model.params[name].shape and g.dtype == dtype, name


def test_tied_wte_gradient_is_the_sum_of_both_uses():
    model = randomised(TINY)
    idx, targets = batch(TINY)
    _, grads = model.loss_and_grads(idx, targets)
    wte = model.params["wte.weight"]
    # every entry of wte, by finite differences: the lookup rows and the head together
    numeric = np.zeros_like(wte)
    for i in np.ndindex(wte.shape):
        old = wte[i]
        wte[i] = old + 1e-5
        plus = model.loss(idx, targets)
        wte[i] = old - 1e-5
        minus = model.loss(idx, targets)
        wte[i] = old
        numeric[i] = (plus - minus) / 2e-5
    assert rel_error(grads["wte.weight"], numeric) < 1e-7
    # a token that never appears as input still gets gradient, from the head alone
    unused = sorted(set(range(TINY.vocab_size)) - set(idx.ravel().tolist()))
    assert unused and np.abs(grads["wte.weight"][unused]).max() > 1e-4


def test_dropout_reproducible_with_a_seeded_rng_and_identity_at_zero():
    config = GPTConfig(11, 9, 2, 3, 12, dropout=0.3)
    model = randomised(config)
    idx, targets = batch(config)
    a, ga = model.loss_and_grads(idx, targets, rng=np.random.default_rng(9))
    b, gb = model.loss_and_grads(idx, targets, rng=np.random.default_rng(9))
    c, _ = model.loss_and_grads(idx, targets, rng=np.random.default_rng(10))
    assert a == b and all(np.array_equal(ga[k], gb[k]) for k in ga)
    assert a != c
    eval_loss = model.loss(idx, targets)                      # eval mode: no dropout
    assert a != eval_loss
    no_drop = GPT(TINY, dtype=np.float64, params=model.params)
    assert no_drop.loss_and_grads(idx, targets)[0] == pytest.approx(eval_loss, rel=1e-13)
    assert no_drop.loss_and_grads(idx, targets, rng=np.random.default_rng(9))[0] == \
        no_drop.loss_and_grads(idx, targets)[0]
    np.testing.assert_array_equal(model.forward(idx), no_drop.forward(idx))   # forward ignores dropout
    with pytest.raises(ValueError, match="rng"):
        model.loss_and_grads(idx, targets)


def test_loss_equals_the_training_loss_without_dropout():
    model = randomised(TINY)
    idx, targets = batch(TINY)
    assert model.loss(idx, targets) == pytest.approx(model.loss_and_grads(idx, targets)[0], rel=1e-14)


def test_kv_cache_sequential_feeding_equals_the_full_forward():
    model = randomised(TINY)
    idx, _ = batch(TINY, B=2, T=9)
    full = model.forward(idx)                                              # (2, 9, V)
    cache = model.new_kv_cache()
    pieces = [model.forward(idx[:, :3], kv_cache=cache)]                  # a prompt of 3
    for t in range(3, 9):
        pieces.append(model.forward(idx[:, t:t + 1], kv_cache=cache))     # then one at a time
    np.testing.assert_allclose(np.concatenate(pieces, axis=1), full, rtol=1e-12, atol=1e-13)
    assert len(cache) == 9 and cache.k(0).shape == (2, 3, 9, 4)
    # crop back to 4 positions and continue with chunks of 2 and 3
    cache.crop(4)
    for a, b in ((4, 6), (6, 9)):
        np.testing.assert_allclose(model.forward(idx[:, a:b], kv_cache=cache), full[:, a:b],
                                   rtol=1e-12, atol=1e-13)
    # reset, then a different batch size
    cache.reset()
    one = model.forward(idx[1:, :5], kv_cache=cache)
    np.testing.assert_allclose(one, full[1:, :5], rtol=1e-12, atol=1e-13)


def test_kv_cache_errors_leave_the_cache_usable():
    model = randomised(TINY)
    idx, _ = batch(TINY, B=1, T=9)
    cache = model.new_kv_cache()
    model.forward(idx[:, :7], kv_cache=cache)
    with pytest.raises(ValueError, match="block_size"):
        model.forward(idx[:, :3], kv_cache=cache)                         # 7 + 3 > 9
    assert len(cache) == 7                                                 # unchanged by the failure
    np.testing.assert_allclose(model.forward(idx[:, 7:9], kv_cache=cache), model.forward(idx)[:, 7:9],
                               rtol=1e-12, atol=1e-13)
    with pytest.raises(ValueError, match="crop"):
        cache.crop(10)
    with pytest.raises(ValueError, match="batch"):
        cache.crop(2)
        model.forward(np.zeros((3, 1), dtype=np.int64), kv_cache=cache)   # batch 3 into a batch-1 cache


def test_sequences_longer_than_block_size_are_a_clear_error():
    model = GPT(TINY)
    too_long = np.zeros((1, TINY.block_size + 1), dtype=np.int64)
    with pytest.raises(ValueError, match="block_size 9"):
        model.forward(too_long)
    with pytest.raises(ValueError, match="block_size 9"):
        model.loss_and_grads(too_long, too_long)
    with pytest.raises(ValueError, match=r"\(B, T\)"):
        model.forward(np.zeros(4, dtype=np.int64))                        # 1-D: say to add a batch axis
    with pytest.raises(IndexError, match="vocabulary"):
        model.forward(np.array([[0, 11]]))


@pytest.mark.parametrize("kwargs, match", [
    ({"n_embd": 10}, "divisible"), ({"n_layer": 0}, "n_layer"), ({"vocab_size": 2.5}, "vocab_size"),
    ({"dropout": 1.0}, "dropout"), ({"layer_norm_epsilon": 0.0}, "epsilon"), ({"block_size": True}, "block"),
])
def test_config_validation(kwargs, match):
    base = {"vocab_size": 11, "block_size": 9, "n_layer": 2, "n_head": 3, "n_embd": 12}
    with pytest.raises(ValueError, match=match):
        GPTConfig(**(base | kwargs))


def test_parameter_count_and_flops():
    gpt2 = GPTConfig(50257, 1024, 12, 12, 768)
    assert count_params(gpt2) == 124_439_808
    assert count_params(gpt2, non_embedding=True) == 124_439_808 - 1024 * 768
    for config in (TINY, GPTConfig(11, 9, 2, 3, 12, bias=False)):
        model = GPT(config)
        assert model.num_params() == sum(p.size for p in model.params.values())
    recipe = GPT(GPTConfig(65, 64, 4, 4, 128))     # nanoGPT's CPU recipe: N = 801,664 without wpe
    assert recipe.num_params(non_embedding=True) == 801_664
    assert recipe.flops_per_token() == 6 * 801_664 + 12 * 4 * 128 * 64
    assert recipe.flops_per_token(seq_len=32) == 6 * 801_664 + 12 * 4 * 128 * 32


def test_gpt2_initialisation():
    config = GPTConfig(50, 16, 4, 4, 64)
    p = GPT(config, seed=3).params
    assert np.std(p["h.0.mlp.c_fc.weight"]) == pytest.approx(0.02, rel=0.05)
    assert np.std(p["h.2.attn.c_proj.weight"]) == pytest.approx(0.02 / np.sqrt(8), rel=0.05)
    assert np.std(p["h.3.mlp.c_proj.weight"]) == pytest.approx(0.02 / np.sqrt(8), rel=0.05)
    assert np.std(p["wte.weight"]) == pytest.approx(0.02, rel=0.05)
    assert not np.any(p["h.1.attn.c_attn.bias"]) and np.all(p["ln_f.weight"] == 1)
    np.testing.assert_array_equal(GPT(config, seed=3).params["wte.weight"], p["wte.weight"])
    assert not np.array_equal(GPT(config, seed=4).params["wte.weight"], p["wte.weight"])


def test_float32_agrees_with_float64():
    m64, m32 = GPT(TINY, seed=5, dtype=np.float64), GPT(TINY, seed=5, dtype=np.float32)
    idx, targets = batch(TINY)
    np.testing.assert_allclose(m32.forward(idx), m64.forward(idx), rtol=1e-4, atol=1e-6)
    l32, g32 = m32.loss_and_grads(idx, targets)
    l64, g64 = m64.loss_and_grads(idx, targets)
    assert l32 == pytest.approx(l64, rel=1e-6)
    for name in g64:
        assert rel_error(g32[name], g64[name]) < 1e-4, name


def test_params_that_do_not_match_the_config_are_refused():
    params = GPT(TINY).params
    with pytest.raises(ValueError, match="missing"):
        GPT(TINY, params={k: v for k, v in params.items() if k != "ln_f.bias"})
    with pytest.raises(ValueError, match="shape"):
        GPT(TINY, params=params | {"wpe.weight": np.zeros((8, 12), np.float32)})
    with pytest.raises(ValueError, match="float64"):
        GPT(TINY, dtype=np.float64, params=params)
