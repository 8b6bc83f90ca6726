"""Sampling: the distribution by its definition (hand cases and properties), the KV-cached decode loop
against recomputing the window (several shapes, past the context), stops, streaming UTF-8, prompts, CLI."""

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt.cli import main
from minigpt.decode import decode_step, prefill
from minigpt.files import checkpoint
from minigpt.model import GPT, GPTConfig
from minigpt.sampling import generate, next_token_probs, sample_from, stream
from minigpt.tokenizer import BPETokenizer, CharTokenizer

LESSON = Path(__file__).resolve().parent.parent / "lessons" / "10_sampling" / "reference"
SHAPES = [  # (V, block_size, n_layer, n_head, n_embd): all sizes distinct within a shape
    (11, 8, 1, 1, 4),
    (37, 13, 2, 3, 12),
    (65, 24, 3, 4, 16),
]


def softmax(z):
    e = np.exp(np.asarray(z, dtype=np.float64) - np.max(z))
    return e / e.sum()


def recompute(model, prompt, n, temperature=0.0, top_k=None, top_p=None, seed=None):
    """The definition: the whole window (last block_size tokens) through the model at every step."""
    ids, P, rng = list(prompt), model.config.block_size, np.random.default_rng(seed)
    for _ in range(n):
        logits = model.forward(np.array([ids[-P:]]))[0, -1]
        if temperature == 0:
            ids.append(int(np.argmax(logits)))
        else:
            ids.append(sample_from(next_token_probs(logits, temperature, top_k, top_p), rng))
    return ids[len(prompt):]


class Scripted:
    """A stand-in model that emits a fixed script of ids, greedily (one-hot logits); no KV cache."""

    def __init__(self, script, vocab_size, block_size=64):
        self.config = GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=1, n_head=1, n_embd=4)
        self.script, self.calls = list(script), 0

    def forward(self, idx, kv_cache=None):
        logits = np.zeros((1, idx.shape[1], self.config.vocab_size))
        logits[0, -1, self.script[min(self.calls, len(self.script) - 1)]] = 10.0
        self.calls += 1
        return logits


# ---- the distribution -------------------------------------------------------------------------------------
def test_temperature_scales_logits():
    z = np.array([0.3, -1.2, 2.0, 0.0, 0.7])
    for t in (0.05, 0.5, 1.0, 3.0, 100.0):
        np.testing.assert_allclose(next_token_probs(z, temperature=t), softmax(z / t), rtol=1e-12,
                                   atol=1e-300)


def test_tiny_temperatures_do_not_overflow():
    z = np.array([1.0, 3.0, 3.0, -np.inf, 0.0])
    np.testing.assert_allclose(next_token_probs(z, temperature=1e-300), [0, 0.5, 0.5, 0, 0])
    np.testing.assert_allclose(next_token_probs(z * 1e300, temperature=1e-5), [0, 0.5, 0.5, 0, 0])


def test_greedy_is_one_hot_on_the_first_maximum():
    p = next_token_probs(np.array([1.0, 3.0, 3.0, 0.0]), temperature=0, top_k=1, top_p=0.1)
    assert p.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_top_k_keeps_ties_at_the_kth_value():
    z = np.array([1.0, 2.0, 2.0, 3.0])
    np.testing.assert_allclose(next_token_probs(z, top_k=2), [0, *softmax([2.0, 2.0, 3.0])], rtol=1e-12)
    np.testing.assert_allclose(next_token_probs(np.array([3.0, 3.0, 1.0]), top_k=1), [0.5, 0.5, 0.0])
    np.testing.assert_allclose(next_token_probs(z, top_k=4), softmax(z), rtol=1e-12)
    np.testing.assert_allclose(next_token_probs(z, top_k=99), softmax(z), rtol=1e-12)


@pytest.mark.parametrize("top_p, kept", [(0.4, [0]), (0.5, [0]), (0.6, [0, 1]), (0.7, [0, 1]),
                                         (0.81, [0, 1, 2]), (1.0, [0, 1, 2])])
def test_top_p_keeps_the_token_that_crosses_the_threshold(top_p, kept):
    z = np.log([0.5, 0.3, 0.2])
    p = next_token_probs(z, top_p=top_p)
    assert np.flatnonzero(p).tolist() == kept
    want = np.zeros(3)
    want[kept] = np.array([0.5, 0.3, 0.2])[kept] / np.sum(np.array([0.5, 0.3, 0.2])[kept])
    np.testing.assert_allclose(p, want, rtol=1e-12)


def test_top_k_runs_before_top_p():
    z = np.log([0.4, 0.3, 0.2, 0.1])
    # top-k 2 renormalises to [4/7, 3/7]; then top-p 0.5 keeps only the first (4/7 >= 0.5).
    assert np.flatnonzero(next_token_probs(z, top_k=2, top_p=0.5)).tolist() == [0]
    # the other order would keep two: 0.4 < 0.5 in the unfiltered distribution
    assert np.flatnonzero(next_token_probs(z, top_p=0.5)).tolist() == [0, 1]


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(-8, 8), min_size=2, max_size=30), st.floats(0.05, 5.0),
       st.one_of(st.none(), st.integers(1, 40)), st.one_of(st.none(), st.floats(0.01, 1.0)))
def test_distribution_properties(z, temperature, top_k, top_p):
    z = np.array(z)
    p = next_token_probs(z, temperature, top_k, top_p)
    assert p.shape == z.shape and p.dtype == np.float64
    assert math.isclose(p.sum(), 1.0, rel_tol=1e-12) and np.all(p >= 0)
    kept = p > 0
    q = softmax(z / temperature)                                          # before the filters
    assert q[kept].min() >= q[~kept].max() if (~kept).any() else True   # the most likely survive
    if top_k is not None:
        assert kept.sum() >= min(top_k, z.size) or top_p is not None
    if top_p is None and top_k is not None:
        kth = np.sort(z)[::-1][min(top_k, z.size) - 1]
        assert kept.tolist() == (z >= kth).tolist()


@pytest.mark.parametrize("kwargs", [{"temperature": -0.1}, {"temperature": float("nan")},
                                    {"temperature": float("inf")}, {"top_k": 0}, {"top_k": -3},
                                    {"top_k": 2.5}, {"top_k": True}, {"top_p": 0.0}, {"top_p": 1.5},
                                    {"top_p": -0.2}])
def test_invalid_options_are_clear_errors(kwargs):
    with pytest.raises(ValueError, match="temperature|top_k|top_p"):
        next_token_probs(np.zeros(5), **kwargs)
    model = GPT(GPTConfig(11, 8, 1, 1, 4), seed=0)
    with pytest.raises(ValueError, match="temperature|top_k|top_p"):
        generate(model, [1, 2], 3, **{"temperature": 1.0, **kwargs})


def test_bad_logits_and_lengths():
    with pytest.raises(ValueError, match="NaN"):
        next_token_probs(np.array([0.0, np.nan]))
    with pytest.raises(ValueError, match="1-D"):
        next_token_probs(np.zeros((2, 3)))
    model = GPT(GPTConfig(11, 8, 1, 1, 4), seed=0)
    with pytest.raises(ValueError, match="max_new_tokens"):
        generate(model, [1], -1)
    with pytest.raises(ValueError, match="vocabulary"):
        generate(model, [1, 11], 2)
    assert generate(model, [1], 0) == []


def test_sample_from_follows_the_distribution_and_never_picks_zero():
    p = np.array([0.5, 0.0, 0.3, 0.2, 0.0])
    rng = np.random.default_rng(0)
    counts = np.bincount([sample_from(p, rng) for _ in range(20000)], minlength=5)
    assert counts[1] == counts[4] == 0
    np.testing.assert_allclose(counts / counts.sum(), p, atol=0.015)


# ---- the decode loop --------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES, ids=[f"V{s[0]}-P{s[1]}-L{s[2]}-H{s[3]}-C{s[4]}" for s in SHAPES])
def test_cached_equals_recompute_past_the_context(shape):
    V, P, L, H, C = shape
    model = GPT(GPTConfig(V, P, L, H, C), seed=3, dtype=np.float64)
    for p in model.params.values():          # larger weights: well-separated logits, varied ids
        p *= 10.0 if p.ndim == 2 else 1.0
    prompt = [1, 5, 2]
    n = 2 * P + 3                            # fills the context, then slides past it
    want = recompute(model, prompt, n)
    assert generate(model, prompt, n, temperature=0) == want
    assert generate(model, prompt, n, temperature=0, use_cache=False) == want
    assert len(set(want)) > 2                # not a degenerate constant sequence
    kw = {"temperature": 0.9, "top_k": V // 2, "top_p": 0.9, "seed": 11}
    want = recompute(model, prompt, n, **kw)
    assert generate(model, prompt, n, **kw) == want
    assert generate(model, prompt, n, **kw, use_cache=False) == want


@pytest.mark.parametrize("bias", [True, False])
def test_prefill_and_decode_step_equal_the_cached_forward(bias):
    model = GPT(GPTConfig(29, 10, 2, 3, 12, bias=bias), seed=5, dtype=np.float64)
    if bias:
        for name, p in model.params.items():
            if name.endswith(".bias"):
                p[...] = np.random.default_rng(1).normal(0, 0.3, p.shape)
    ids = np.random.default_rng(2).integers(0, 29, size=(1, 10))
    full = model.forward(ids)[0]                                          # (T, V)
    fast, slow = model.new_kv_cache(), model.new_kv_cache()
    last = prefill(model, ids[:, :4], fast)                               # (V,) the last position only
    np.testing.assert_allclose(last, model.forward(ids[:, :4], kv_cache=slow)[0, -1], rtol=1e-12, atol=1e-12)
    assert len(fast) == len(slow) == 4
    for t in range(4, 10):
        a = decode_step(model, int(ids[0, t]), fast)
        b = model.forward(ids[:, t:t + 1], kv_cache=slow)[0, -1]
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a, full[t], rtol=1e-10, atol=1e-12)
        assert len(fast) == t + 1
    with pytest.raises(ValueError, match="full"):
        decode_step(model, 1, fast)


def test_float32_cached_matches_float32_recompute():
    model = GPT(GPTConfig(65, 32, 2, 4, 32), seed=1, dtype=np.float32)
    for p in model.params.values():
        p *= 10.0 if p.ndim == 2 else 1.0
    assert generate(model, [3, 1, 4], 70, temperature=0) == recompute(model, [3, 1, 4], 70)


def test_seeds_reproduce_and_differ():
    model = GPT(GPTConfig(37, 16, 1, 2, 8), seed=0)
    a = generate(model, [1], 20, temperature=1.0, seed=4)
    assert a == generate(model, [1], 20, temperature=1.0, seed=4)
    assert a != generate(model, [1], 20, temperature=1.0, seed=5)


def test_long_prompt_is_cropped_with_a_warning():
    model = GPT(GPTConfig(37, 8, 1, 2, 8), seed=0, dtype=np.float64)
    prompt = list(range(20))
    with pytest.warns(UserWarning, match="keeping the last 8"):
        got = generate(model, prompt, 5, temperature=0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert got == generate(model, prompt[-8:], 5, temperature=0)


def test_empty_prompt_starts_from_endoftext_or_is_refused():
    tok = BPETokenizer({}, {"<|endoftext|>": 256})
    model = GPT(GPTConfig(257, 8, 1, 1, 4), seed=0, dtype=np.float64)
    assert generate(model, [], 6, temperature=0, tokenizer=tok) == generate(model, [256], 6, temperature=0)
    with pytest.raises(ValueError, match="empty"):
        generate(model, [], 6)
    with pytest.raises(ValueError, match="empty"):
        generate(GPT(GPTConfig(3, 8, 1, 1, 4)), [], 2, tokenizer=CharTokenizer("abc"))


# ---- stops and streaming ---------------------------------------------------------------------------------
def test_stop_ids_end_generation_and_are_included():
    tok = CharTokenizer("abc. xyz")
    script = tok.encode("ab c.xyz")
    got = generate(Scripted(script, tok.vocab_size), [0], 20, temperature=0, stop=tok.encode(".")[0],
                   use_cache=False)
    assert tok.decode(got) == "ab c."
    got = generate(Scripted(script, tok.vocab_size), [0], 20, temperature=0, stop=[99, tok.encode("x")[0]],
                   use_cache=False)
    assert tok.decode(got) == "ab c.x"


def test_stop_strings_across_tokens_and_hidden_from_the_stream():
    tok = BPETokenizer.train("hello world, hello there, hello world. " * 20, vocab_size=266,
                             special_tokens=("<|endoftext|>",))
    text = "hello there. hello world! more"
    script = tok.encode(text)
    got = generate(Scripted(script, tok.vocab_size), [0], 40, temperature=0, stop="lo wor", tokenizer=tok,
                   use_cache=False)
    assert "lo wor" in tok.decode(got) and "lo wor" not in tok.decode(got[:-1])   # ends where it completes
    pieces = list(stream(Scripted(script, tok.vocab_size), [0], tok, 40, temperature=0,
                         stop=["lo wor", "zzz"], use_cache=False))
    assert "".join(pieces) == "hello there. hel"
    assert all(pieces)
    with pytest.raises(ValueError, match="tokenizer"):
        generate(Scripted(script, tok.vocab_size), [0], 5, stop="x", use_cache=False)
    with pytest.raises(ValueError, match="empty"):
        generate(Scripted(script, tok.vocab_size), [0], 5, stop="", tokenizer=tok, use_cache=False)


def test_stream_never_emits_broken_utf8_chinese():
    tok = BPETokenizer({}, {"<|endoftext|>": 256})                  # bytes only: 3 tokens per Chinese char
    text = "你好，世界！sampling 采样 ok"
    script = tok.encode(text)
    assert len(script) > len(text)
    pieces = list(stream(Scripted(script, 257), [0], tok, len(script), temperature=0, use_cache=False))
    assert pieces == list(text)                                      # one whole character at a time
    # a trained byte-level BPE: tokens often hold parts of characters
    bpe = BPETokenizer.train("春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。" * 10, vocab_size=300)
    script = bpe.encode(text)
    pieces = list(stream(Scripted(script, bpe.vocab_size), [0], bpe, len(script), temperature=0,
                         use_cache=False))
    assert "".join(pieces) == text and "\ufffd" not in "".join(pieces) and all(pieces)
    # ending half-way through a character: nothing broken mid-stream, one U+FFFD at the very end
    cut = tok.encode("好")[:2]
    pieces = list(stream(Scripted([*tok.encode("a"), *cut], 257), [0], tok, 3, temperature=0,
                         use_cache=False))
    assert pieces == ["a", "\ufffd"]


def test_stream_text_equals_generate_text_on_a_random_model():
    tok = BPETokenizer.train("春眠不觉晓，处处闻啼鸟。夜来风雨声，花落知多少。" * 10, vocab_size=300,
                             special_tokens=("<|endoftext|>",))
    model = GPT(GPTConfig(tok.vocab_size, 16, 1, 2, 8), seed=0)
    ids = generate(model, tok.encode("春眠"), 40, temperature=1.0, seed=3)
    pieces = list(stream(model, tok.encode("春眠"), tok, 40, temperature=1.0, seed=3))
    assert "".join(pieces) == tok.decode(ids)


# ---- the command line -------------------------------------------------------------------------------------
def test_cli_hf_folder_greedy_equals_transformers(capsys):
    ref = json.loads((LESSON / "greedy.json").read_text(encoding="utf-8"))
    for run in ref["runs"]:
        code = main(["sample", "--checkpoint", str(LESSON / "tiny_gpt2"), "--prompt", run["prompt"],
                     "--temperature", "0", "--max-new-tokens", str(ref["max_new_tokens"])])
        assert code == 0
        assert capsys.readouterr().out == run["prompt"] + run["text"] + "\n"


def _save_checkpoint(folder: Path, model: GPT, tok) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tok_file = folder.parent / "tok.json"
    tok.save(tok_file)
    cfg = model.config
    rngs = {"data": np.random.default_rng(0).bit_generator.state,     # what train.py saves; checkpoint.load
            "dropout": np.random.default_rng(1).bit_generator.state}  # checks them
    state = {"iter": 7, "rng": rngs, "train_config": {},
             "model_config": {k: getattr(cfg, k) for k in ("vocab_size", "block_size", "n_layer", "n_head",
                                                            "n_embd", "dropout", "bias")}}
    checkpoint.save(folder, model, {"step": 7, "lr": 1e-3}, state, tok_file)


def test_cli_checkpoint_run_prompt_file_seeds_and_streaming(tmp_path, capsys):
    tok = CharTokenizer("abcdefgh \n")
    model = GPT(GPTConfig(tok.vocab_size, 16, 1, 2, 8), seed=2)
    _save_checkpoint(tmp_path / "run" / "last", model, tok)
    (tmp_path / "prompt.txt").write_text("abc", encoding="utf-8")
    args = ["sample", "--checkpoint", str(tmp_path / "run"), "--prompt-file", str(tmp_path / "prompt.txt"),
            "--max-new-tokens", "30", "--temperature", "1.0", "--top-k", "5", "--seed", "9"]
    assert main([*args, "--num-samples", "2"]) == 0
    out = capsys.readouterr().out
    first = "abc" + tok.decode(generate(model, tok.encode("abc"), 30, 1.0, top_k=5, seed=9))
    second = "abc" + tok.decode(generate(model, tok.encode("abc"), 30, 1.0, top_k=5, seed=10))
    assert out == first + "\n\n" + "-" * 40 + "\n" + second + "\n"
    assert main([*args, "--stream"]) == 0
    assert capsys.readouterr().out == first + "\n"
    assert main(["sample", "--checkpoint", str(tmp_path / "nothing"), "--prompt", "a"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


def test_cli_stop_string_and_empty_prompt_errors(tmp_path, capsys):
    ref = json.loads((LESSON / "greedy.json").read_text(encoding="utf-8"))["runs"][0]
    stop = ref["text"][10:14]
    assert main(["sample", "--checkpoint", str(LESSON / "tiny_gpt2"), "--prompt", ref["prompt"],
                 "--temperature", "0", "--max-new-tokens", "50", "--stop", stop]) == 0
    assert capsys.readouterr().out == ref["prompt"] + ref["text"][:ref["text"].index(stop)] + "\n"
    tok = CharTokenizer("ab")
    _save_checkpoint(tmp_path / "c", GPT(GPTConfig(2, 8, 1, 1, 4)), tok)
    assert main(["sample", "--checkpoint", str(tmp_path / "c")]) == 2
    assert "empty" in capsys.readouterr().err
    _save_checkpoint(tmp_path / "nl", GPT(GPTConfig(3, 8, 1, 1, 4)), CharTokenizer("\nab"))
    assert main(["sample", "--checkpoint", str(tmp_path / "nl"), "--max-new-tokens", "5", "--seed", "0"]) == 0
    assert "starting from a newline" in capsys.readouterr().err      # a char model starts from "\n"
