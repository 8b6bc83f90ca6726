"""minigpt/decode.py, the engine beside the model's cached forward: generation gives the same ids with the
engines on and off (MINIGPT_ENGINES=0 / engines.disabled() runs model.forward(..., kv_cache=cache))."""

from __future__ import annotations

import numpy as np
import pytest

from minigpt import engines
from minigpt.model import GPT, GPTConfig
from minigpt.sampling import generate


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_generate_is_the_same_with_and_without_the_decode_engine(dtype, bias):
    model = GPT(GPTConfig(vocab_size=11, block_size=12, n_layer=2, n_head=3, n_embd=12, bias=bias), seed=3,
                dtype=dtype)
    prompt = [1, 5, 2, 7]
    for kwargs in ({"temperature": 0}, {"temperature": 0.9, "top_k": 5, "seed": 4}):
        fast = generate(model, prompt, max_new_tokens=20, **kwargs)      # past block_size: re-prefills too
        with engines.disabled():
            assert not engines.enabled()
            plain = generate(model, prompt, max_new_tokens=20, **kwargs)
        assert engines.enabled()
        assert fast == plain, kwargs


def test_the_switch_restores_its_previous_state():
    engines.set_enabled(False)
    try:
        with engines.disabled():
            assert not engines.enabled()
        assert not engines.enabled()
    finally:
        engines.set_enabled(True)
    assert engines.enabled()
