"""From logits to text: the next-token distribution (greedy, temperature, top-k, top-p) and the decode loop.

    p = next_token_probs(logits_1d, temperature=0.8, top_k=200, top_p=0.95)   # (V,) sums to 1
    ids = generate(model, prompt_ids, max_new_tokens=200, temperature=0.8, seed=0)   # the new ids
    for piece in stream(model, prompt_ids, tokenizer, seed=0): print(piece, end="")   # text as it comes

The filters run in transformers' order and with its semantics (TemperatureLogitsWarper, then
TopKLogitsWarper, then TopPLogitsWarper):
- temperature T: logits / T. T = 0 means greedy: a one-hot on the argmax, the lowest id on ties (what
  np.argmax and torch.argmax return), and top-k / top-p are then irrelevant. T < 0 is an error.
- top-k: keep every token whose logit is >= the k-th largest, so ties at the k-th value are all kept
  (k >= V keeps everything). k < 1 is an error; None switches it off (transformers' top_k=0).
- top-p: keep the smallest highest-probability set whose mass reaches top_p, the token that crosses the
  threshold included: token i survives if the mass of the tokens ranked above it is < top_p. Equal
  probabilities are ranked lower id first (a stable sort; torch's sort is not stable, so transformers
  may keep a different one of two tied tokens at the boundary). top_p must be in (0, 1]; 1 is off.

The decode loop uses the model's KV cache (minigpt/kv_cache.py): one prefill over the prompt, then one
position per step, which gives exactly the ids of recomputing the whole window every step, because the
keys and values of past positions never change in a causal model. Costs per new token, with N the
non-embedding parameters, L layers, C channels, t the tokens in the window:

    without the cache   2 N t + 2 L C t^2 (+ the head 2 V C)     the whole window, again
    with the cache      2 N   + 4 L C t   (+ the head 2 V C)     one position; attention reads t keys

When the window is full (block_size tokens), GPT-2's learned absolute positions mean the window cannot
slide inside the cache: every token's position changes. So from then on each step resets the cache and
prefills the last block_size tokens again (the same work as no cache, a full window per token), which
keeps the ids exactly those of nanoGPT's `idx[:, -block_size:]` recompute.

Sampling draws one uniform number per step from a seeded np.random.Generator and inverts the cumulative
distribution in float64, so a run is reproducible for a given seed; greedy steps draw nothing.

What this file deliberately does not do: batches (one sequence; loop for several samples), beam search,
repetition penalties, or min-p / typical sampling.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from minigpt import engines
from minigpt.decode import decode_step, layer_params, prefill
from minigpt.layers.softmax import softmax

EOT = "<|endoftext|>"


# ---- one distribution ----------------------------------------------------------------------------------
def next_token_probs(logits: np.ndarray, temperature: float = 1.0, top_k: int | None = None,
                     top_p: float | None = None) -> np.ndarray:
    """logits (V,) -> probabilities (V,) float64 after temperature, then top-k, then top-p."""
    _check_options(temperature, top_k, top_p)
    z = np.array(logits, dtype=np.float64)                       # (V,) a private float64 copy
    if z.ndim != 1 or z.size == 0:
        raise ValueError(f"logits must be a non-empty 1-D array (V,), got shape {z.shape}; "
                         "for a model's output take logits[0, -1]")
    if np.isnan(z).any() or not np.isfinite(z.max()):
        raise ValueError("logits contain NaN, +inf, or are all -inf: there is no distribution to sample")
    V = z.size
    if temperature == 0:                                         # greedy: all mass on the first argmax
        p = np.zeros(V)
        p[int(np.argmax(z))] = 1.0
        return p
    with np.errstate(over="ignore"):
        scaled = z / temperature                                 # (V,) T < 1 sharpens, T > 1 flattens
    z = scaled if np.isfinite(scaled.max()) else (z - z.max()) / temperature   # a tiny T overflowed: shift
    if top_k is not None and top_k < V:
        kth = np.partition(z, V - top_k)[V - top_k]              # the k-th largest logit
        z[z < kth] = -np.inf                                     # ties with the k-th value survive
    p = softmax(z, out=z)                                        # (V,) stable softmax (layers/softmax.py)
    if top_p is not None and top_p < 1.0:
        order = np.argsort(-p, kind="stable")                    # (V,) most probable first, ties by id
        mass_above = np.cumsum(p[order]) - p[order]              # (V,) mass ranked strictly above each
        mass_above[0] = 0.0                                      # exactly 0 for the top token
        p[order[mass_above >= top_p]] = 0.0                      # the crossing token has mass_above < p
        p /= p.sum()
    return p


def _check_options(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Clear errors for values that have no meaning (transformers raises on these too)."""
    number = (int, float, np.number)
    if not isinstance(temperature, number) or not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (not _is_int(top_k) or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1 (or None for no top-k), got {top_k!r}")
    if top_p is not None and (not isinstance(top_p, number) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1] (1 or None for no top-p), got {top_p!r}")


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def sample_from(p: np.ndarray, rng: np.random.Generator) -> int:
    """One id drawn from probabilities p (V,): invert the cumulative sum at a uniform draw u in [0, 1)."""
    cdf = np.cumsum(p, dtype=np.float64)                         # (V,) non-decreasing, ends at ~1
    u = rng.random() * cdf[-1]                                   # scale by the total: no rounding gap
    idx = int(np.searchsorted(cdf, u, side="right"))             # first id whose cdf exceeds u: p > 0
    return min(idx, p.size - 1)


# ---- the decode loop -----------------------------------------------------------------------------------
def generate(model: Any, prompt_ids: Iterable[int], max_new_tokens: int = 200, temperature: float = 0.8,
             top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
             stop: int | str | Iterable[int | str] | None = None, *, tokenizer: Any = None,
             use_cache: bool = True) -> list[int]:
    """The new ids after prompt_ids (a list of ints). temperature 0 = greedy.

    stop: token ids and/or strings; generation ends after the token that produces one, and that token is
    included (transformers appends the EOS it sampled, too): cut the text at the stop string if you do
    not want it. Strings need tokenizer=. An empty prompt starts from the tokenizer's <|endoftext|>.
    use_cache=False recomputes the whole window every step (same ids, much slower: for tests, lessons).
    """
    return list(_generate_ids(model, prompt_ids, max_new_tokens, temperature, top_k, top_p, seed, stop,
                              tokenizer, use_cache))


def stream(model: Any, prompt_ids: Iterable[int], tokenizer: Any, max_new_tokens: int = 200,
           temperature: float = 0.8, top_k: int | None = None, top_p: float | None = None,
           seed: int | None = None, stop: int | str | Iterable[int | str] | None = None,
           use_cache: bool = True) -> Iterator[str]:
    """The same tokens as generate(...), yielded as text pieces as soon as their UTF-8 is complete.

    A character split across tokens (a Chinese character is 3 bytes, often 2 tokens) is held back until
    its last byte arrives, so no piece ever contains a broken character. Unlike generate, the stop
    text itself is not shown: text that could be the start of a stop string waits until it is not.
    """
    stop_ids, stop_strings = _parse_stop(stop, tokenizer)
    decoder = _stream_decoder(tokenizer)
    text_out = ""                                                # everything yielded so far
    pending = ""                                                 # decoded, held back for stop strings
    for idx in _generate_ids(model, prompt_ids, max_new_tokens, temperature, top_k, top_p, seed, stop,
                             tokenizer, use_cache):
        if idx in stop_ids:
            break
        pending += decoder.push(idx)
        cut = _find_stop(text_out + pending, stop_strings, len(text_out))
        if cut is not None:                                      # a stop string is complete: show what
            pending = (text_out + pending)[len(text_out):cut]    # comes before it, then end
            break
        ready = len(pending) - _stop_prefix_len(text_out + pending, stop_strings)
        if ready > 0:
            text_out += pending[:ready]
            yield pending[:ready]
            pending = pending[ready:]
    else:
        pending += decoder.flush()                               # an incomplete tail becomes U+FFFD
    if pending:
        yield pending


def _generate_ids(model: Any, prompt_ids: Iterable[int], max_new_tokens: int, temperature: float,
                  top_k: int | None, top_p: float | None, seed: int | None, stop: Any, tokenizer: Any,
                  use_cache: bool) -> Iterator[int]:
    """Yield new ids one at a time; the shared engine of generate and stream."""
    _check_options(temperature, top_k, top_p)
    if not _is_int(max_new_tokens) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    stop_ids, stop_strings = _parse_stop(stop, tokenizer)
    ids = _prepare_prompt(prompt_ids, model.config, tokenizer)
    P = model.config.block_size
    rng = np.random.default_rng(seed)
    cache = model.new_kv_cache() if use_cache else None
    layers = layer_params(model) if use_cache else None
    decoder = _stream_decoder(tokenizer) if stop_strings else None
    text = ""                                                    # the new text, for stop strings
    fed = 0                                                      # ids[:fed] are in the cache
    for _ in range(max_new_tokens):
        if cache is None:                                        # recompute the window, nanoGPT's way
            logits = model.forward(np.array([ids[-P:]]))[0, -1]                       # (V,)
        else:
            if len(ids) > P:                                     # the window moved: positions changed,
                cache.reset()                                    # so prefill the last P tokens again
                fed = len(ids) - P
            if not engines.enabled():                            # the definition: the model's forward
                logits = model.forward(np.array([ids[fed:]]), kv_cache=cache)[0, -1]      # (V,)
            elif fed == len(ids) - 1 and len(cache) > 0:         # the usual step: one new position
                logits = decode_step(model, ids[-1], cache, layers)                         # (V,)
            else:                                                # prefill: the prompt or a new window
                logits = prefill(model, np.array([ids[fed:]]), cache, layers)         # (V,)
            fed = len(ids)
        if temperature == 0:
            idx = int(np.argmax(logits))                         # greedy: first maximum, no draw
        else:
            idx = sample_from(next_token_probs(logits, temperature, top_k, top_p), rng)
        ids.append(idx)
        yield idx
        if idx in stop_ids:
            return
        if decoder is not None:
            text += decoder.push(idx)
            if _find_stop(text, stop_strings, 0) is not None:
                return


def _prepare_prompt(prompt_ids: Iterable[int], config: Any, tokenizer: Any) -> list[int]:
    """The prompt as a list of ints: cropped to the context (with a warning), or <|endoftext|> if empty."""
    ids = [int(i) for i in np.asarray(list(prompt_ids), dtype=np.int64).ravel()]
    V, P = config.vocab_size, config.block_size
    if not ids:
        eot = getattr(tokenizer, "special_tokens", {}).get(EOT) if tokenizer is not None else None
        if eot is None:
            raise ValueError("the prompt is empty and there is no <|endoftext|> token to start from: give a "
                             "prompt, or pass tokenizer= with an <|endoftext|> special token")
        ids = [eot]
    bad = [i for i in ids if not 0 <= i < V]
    if bad:
        raise ValueError(f"prompt id {bad[0]} is outside the model's vocabulary (0..{V - 1}): was the prompt "
                         "encoded with this model's tokenizer?")
    if len(ids) > P:
        warnings.warn(f"the prompt has {len(ids)} tokens but the context holds {P}: keeping the last {P}",
                      stacklevel=3)
        ids = ids[-P:]
    return ids


# ---- stop conditions and streaming text ------------------------------------------------------------------
def _parse_stop(stop: Any, tokenizer: Any) -> tuple[set[int], list[str]]:
    """stop (an id, a string, or a mix of them) -> (ids, strings)."""
    if stop is None:
        return set(), []
    items = [stop] if isinstance(stop, int | str | np.integer) else list(stop)
    ids = {int(s) for s in items if isinstance(s, int | np.integer) and not isinstance(s, bool)}
    strings = [s for s in items if isinstance(s, str)]
    if len(ids) + len(strings) != len(items):
        raise ValueError(f"stop must hold token ids (int) and/or strings, got {stop!r}")
    if any(s == "" for s in strings):
        raise ValueError("a stop string cannot be empty")
    if strings and tokenizer is None:
        raise ValueError("stop strings need the tokenizer to see the text: pass tokenizer=...")
    return ids, strings


def _find_stop(text: str, stops: list[str], start: int) -> int | None:
    """Where the first stop string ending after `start` begins in text, or None."""
    found = [i for s in stops if (i := text.find(s, max(0, start - len(s) + 1))) >= 0]
    return min(found) if found else None


def _stop_prefix_len(text: str, stops: list[str]) -> int:
    """The length of the longest end of text that is the beginning of a stop string (hold it back)."""
    best = 0
    for s in stops:
        for n in range(min(len(s) - 1, len(text)), best, -1):
            if text.endswith(s[:n]):
                best = n
                break
    return best


class _CharStream:
    """The stream decoder of a tokenizer without one (a character tokenizer: every id is whole)."""

    def __init__(self, tokenizer: Any):
        self.tokenizer = tokenizer

    def push(self, idx: int) -> str:
        return self.tokenizer.decode([idx])

    def flush(self) -> str:
        return ""


def _stream_decoder(tokenizer: Any) -> Any:
    if tokenizer is None:
        raise ValueError("streaming text needs the tokenizer: pass tokenizer=...")
    make = getattr(tokenizer, "stream_decoder", None)
    return make() if make is not None else _CharStream(tokenizer)
