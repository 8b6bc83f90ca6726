"""Lesson 10's checks: the next-token distribution and the decode loop, against Hugging Face transformers.

What is graded (the implementation under test, `impl`, is minigpt.sampling or your file):

    impl.next_token_probs(logits_1d, temperature=1.0, top_k=None, top_p=None)   -> probabilities (V,)
    impl.generate(model, prompt_ids, max_new_tokens, temperature, top_k, top_p, seed, stop) -> new ids
    impl.stream(model, prompt_ids, tokenizer, max_new_tokens, temperature, ...)  -> text pieces

The model is minigpt's (reference/tiny_gpt2/ read with minigpt.hf.load_gpt2, float32), so only the
sampling code is yours; it calls model.forward(idx, kv_cache=...) and model.new_kv_cache().

Tolerances:
    probabilities        rtol 1e-9, atol 1e-12 (float64 on both sides; measured ~1e-16), and the set of
                         tokens kept (p > 0) exactly: a filter that keeps one token too many or too few
                         changes p by more than rounding can hide.
    greedy ids           exact. transformers' top-1 / top-2 logit gap never falls below 0.01 on these
                         prompts (greedy.json: min_top2_gap), far above float32 rounding (~1e-6).
    past the context     exact: your cached generate must give the ids of recomputing the last block_size
                         tokens every step (done here with model.forward, no cache).
    the cache is used    within the context, each position goes through the model once: the cache ends
                         holding prompt + new - 1 positions (a recompute-everything loop fails this).
    streaming            the text equals the decoded ids, and no piece holds half a character: also on a
                         scripted continuation whose 2- and 3-byte characters are split across tokens.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np

from minigpt import engines
from minigpt.course.grader import Step, load_reference

IMPL = "minigpt.sampling"
TINY = Path(__file__).resolve().parent / "reference" / "tiny_gpt2"
RTOL, ATOL = 1e-9, 1e-12


def _recompute_greedy(model, ids: list[int], n: int) -> list[int]:
    """Greedy ids the slow, obviously right way: the whole window (the last block_size tokens) each step."""
    ids, P = list(ids), model.config.block_size
    for _ in range(n):
        ids.append(int(np.argmax(model.forward(np.array([ids[-P:]]))[0, -1])))
    return ids[-n:]


class _Watched:
    """The model, with a record of the KV caches it hands out and the positions fed through forward."""

    def __init__(self, model):
        self.model, self.config, self.params = model, model.config, model.params
        self.caches: list = []
        self.fed_with_cache = 0

    def forward(self, idx, kv_cache=None):
        if kv_cache is not None:
            self.fed_with_cache += idx.shape[1]
        return self.model.forward(idx, kv_cache=kv_cache)

    def new_kv_cache(self):
        self.caches.append(self.model.new_kv_cache())
        return self.caches[-1]


def _probs_cases(impl, g, which) -> None:
    z = load_reference(__file__, "warpers.npz")
    for case in load_reference(__file__, "warpers.json"):
        kind = ("top_p" if case["top_p"] is not None else "top_k" if case["top_k"] is not None
                else "temperature")
        if kind != which:
            continue
        i = case["index"]
        pitfall = {"temperature": "temperature", "top_k": "topk_ties", "top_p": ("crossing", "order")}[kind]
        with g.case(f"next_token_probs: {case['name']}", pitfall=pitfall):
            p = impl.next_token_probs(z[f"logits_{i}"], temperature=case["temperature"], top_k=case["top_k"],
                                      top_p=case["top_p"])
            want = z[f"probs_{i}"]
            g.equal("tokens kept (p > 0)", np.flatnonzero(np.asarray(p) > 0), np.flatnonzero(want > 0))
            g.close("probabilities", p, want, rtol=RTOL, atol=ATOL)


def _temperature(impl, g) -> None:
    z = load_reference(__file__, "warpers.npz")
    _probs_cases(impl, g, "temperature")
    with g.case("next_token_probs: temperature 0 is greedy, first maximum on ties", pitfall="greedy"):
        p = np.asarray(impl.next_token_probs(z["greedy_logits"], temperature=0.0))
        g.equal("argmax", int(np.argmax(p)), int(z["greedy_argmax"]))
        g.true("one-hot", bool(p.max() == 1.0 and p.sum() == 1.0), f"max {p.max()}, sum {p.sum()}")
    logits = z["logits_0"]
    for name, kwargs in [("negative temperature", {"temperature": -0.5}), ("top_k 0", {"top_k": 0}),
                         ("top_p 0", {"top_p": 0.0}), ("top_p 1.5", {"top_p": 1.5})]:
        with g.case(f"next_token_probs refuses {name}"), g.raises("ValueError", ValueError):
            impl.next_token_probs(logits, **kwargs)


def _top_k(impl, g) -> None:
    _probs_cases(impl, g, "top_k")


def _top_p(impl, g) -> None:
    _probs_cases(impl, g, "top_p")


def _generate(impl, g) -> None:
    from minigpt import hf

    greedy = load_reference(__file__, "greedy.json")
    model = hf.load_gpt2(TINY)
    tok = hf.load_gpt2_tokenizer(TINY)
    n = greedy["max_new_tokens"]
    for run_ in greedy["runs"]:
        with g.case(f"generate, greedy from {run_['prompt']!r}"):
            g.equal("prompt ids (minigpt's tokenizer)", tok.encode(run_["prompt"]), run_["prompt_ids"])
            got = impl.generate(model, run_["prompt_ids"], max_new_tokens=n, temperature=0.0)
            g.equal("new ids vs transformers' generate", [int(i) for i in got], run_["new_ids"])

    prompt = greedy["runs"][0]["prompt_ids"]
    P = model.config.block_size
    with g.case(f"generate past the context ({len(prompt)} + {P} > block_size {P})", pitfall="slide"):
        got = impl.generate(model, prompt, max_new_tokens=P, temperature=0.0)
        g.equal("new ids vs recomputing the window each step", [int(i) for i in got],
                _recompute_greedy(model, prompt, P))

    with g.case("generate uses the KV cache: each position goes through the model once",
                pitfall="cache_feed"):
        watched, n_new = _Watched(model), 20
        got = impl.generate(watched, prompt, max_new_tokens=n_new, temperature=0.0)
        want = len(prompt) + n_new - 1                 # the last sampled token is never fed
        g.true("made a cache with model.new_kv_cache()", len(watched.caches) > 0,
               f"{len(watched.caches)} caches")
        held = len(watched.caches[-1]) if watched.caches else 0
        g.equal("positions in the cache at the end", held, want)
        g.true("positions fed with the cache <= prompt + new - 1", watched.fed_with_cache <= want,
               f"{watched.fed_with_cache} positions fed for {want}: feed only the new token each step")
        g.equal("the same ids", [int(i) for i in got], greedy["runs"][0]["new_ids"][:n_new])

    with g.case("generate, seeded sampling", pitfall="float32_choice"):
        kwargs = {"max_new_tokens": 20, "temperature": 1.0, "top_k": 50, "top_p": 0.95}
        a = impl.generate(model, prompt, seed=1, **kwargs)
        b = impl.generate(model, prompt, seed=1, **kwargs)
        c = impl.generate(model, prompt, seed=2, **kwargs)
        g.true("same seed, same ids", list(a) == list(b), f"{list(a)[:8]} vs {list(b)[:8]}")
        g.true("another seed, other ids", list(a) != list(c), f"{list(a)[:8]} vs {list(c)[:8]}")
        V = model.config.vocab_size
        g.true("20 new ids in the vocabulary", len(a) == 20 and all(0 <= i < V for i in a))

    with g.case("generate stops on a token id"):
        want = greedy["runs"][0]["new_ids"]
        stop_at = want[5]
        got = impl.generate(model, prompt, max_new_tokens=n, temperature=0.0, stop=[stop_at])
        first = want.index(stop_at)
        g.equal("ids up to and including the first stop id", [int(i) for i in got], want[:first + 1])


class _Scripted:
    """A stand-in model whose greedy continuation is a fixed list of ids (the tokens of a text whose
    characters are split across tokens), and the cache it hands out: a counter of fed positions."""

    def __init__(self, prompt_len: int, script: list[int], vocab_size: int, block_size: int):
        self.prompt_len, self.script = prompt_len, list(script)
        self.config = SimpleNamespace(vocab_size=vocab_size, block_size=block_size, n_layer=0)
        self.params: dict = {}

    def new_kv_cache(self):
        return _Counter()

    def forward(self, idx, kv_cache=None):
        idx = np.asarray(idx)
        start = len(kv_cache) if kv_cache is not None else 0
        if kv_cache is not None:
            kv_cache.n += idx.shape[1]
        logits = np.zeros((*idx.shape, self.config.vocab_size))            # (B, T, V)
        for t in range(idx.shape[1]):
            j = start + t + 1 - self.prompt_len                  # the new token that position t predicts
            if 0 <= j < len(self.script):
                logits[:, t, self.script[j]] = 1.0
        return logits


class _Counter:
    def __init__(self):
        self.n = 0

    def __len__(self) -> int:
        return self.n

    def reset(self) -> None:
        self.n = 0


def _stream(impl, g) -> None:
    from minigpt import hf

    greedy = load_reference(__file__, "greedy.json")
    model = hf.load_gpt2(TINY)
    tok = hf.load_gpt2_tokenizer(TINY)
    for run_ in greedy["runs"]:
        with g.case(f"stream, greedy from {run_['prompt']!r}", pitfall="stream"):
            pieces = list(impl.stream(model, run_["prompt_ids"], tok, max_new_tokens=greedy["max_new_tokens"],
                                      temperature=0.0))
            g.equal("text vs transformers' decode", "".join(pieces), run_["text"])
            g.true("no piece holds a broken character (U+FFFD)", all("\ufffd" not in p for p in pieces)
                   or "\ufffd" in run_["text"])
    text = "é, 日本, ok"                                                    # 2- and 3-byte characters
    script = tok.encode(text)
    with g.case(f"stream, a continuation whose characters are split across tokens: {text!r} is "
                f"{len(script)} tokens", pitfall="stream"), engines.disabled():
        prompt = tok.encode("A")
        fake = _Scripted(len(prompt), script, model.config.vocab_size, model.config.block_size)
        pieces = list(impl.stream(fake, prompt, tok, max_new_tokens=len(script), temperature=0.0))
        g.equal("the pieces joined", "".join(pieces), text)
        g.true("no piece holds a broken character (U+FFFD)", all("\ufffd" not in p for p in pieces),
               f"pieces: {pieces}")


STEPS = [
    Step(1, "temperature, and greedy at temperature 0", ("next_token_probs",), _temperature),
    Step(2, "top-k, ties kept", ("next_token_probs",), _top_k),
    Step(3, "top-p, the crossing token kept", ("next_token_probs",), _top_p),
    Step(4, "the decode loop with a KV cache", ("generate",), _generate),
    Step(5, "streaming text", ("stream",), _stream),
]
