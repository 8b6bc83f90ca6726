"""BPE engines == their definitions: training (heap vs the textbook loop), chunk encoding (priority queue and
NumPy steps vs "merge the lowest-ranked pair, repeat"), the tokenizer with engines on and off; and the
engines' bounds: 1,000,000-character chunks and chained .tiktoken files in bounded time, ids as tiktoken's."""

import base64
import random
import string
import time
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt import engines
from minigpt.files.paths import shared_data
from minigpt.tokenizer import BPETokenizer, bpe, bpe_engine
from minigpt.tokenizer.files import read_tiktoken, recover_merges

# few distinct letters and short words: many pairs reach the same count, so the tie-break decides
TIE_TEXT = st.text(alphabet=st.sampled_from(list("abcab ") + ["é", "\n", "1"]), min_size=1, max_size=120)


@pytest.fixture(scope="module")
def gpt2():
    path = shared_data("gpt2.tiktoken")
    if path is None:
        pytest.skip("shared gpt2.tiktoken not available (../shared/data)")
    return BPETokenizer.from_tiktoken(path)


# ---- training -----------------------------------------------------------------------------------------
def _both(chunks, num_merges):
    """(definition, engine) results, or the ValueError each raised."""
    out = []
    for run in (lambda: bpe.train_chunks(chunks, num_merges),
                lambda: bpe_engine.learn_merges(Counter(chunks), num_merges)):
        try:
            out.append(run())
        except ValueError as exc:
            out.append(("error", str(exc)))
    return out


@given(TIE_TEXT, st.integers(1, 40), st.sampled_from([None, "gpt2", "gpt4", "o200k"]))
@settings(max_examples=200, deadline=None)
def test_learn_merges_equals_the_textbook_loop(text, num_merges, pattern):
    regex_pattern = bpe.PATTERNS[pattern] if pattern else None
    chunks = [c.encode() for c in bpe.split(text, regex_pattern)]
    definition, engine = _both(chunks, num_merges)
    assert definition == engine                   # same merges (tie-break included), same token counts


def test_ties_go_to_the_smallest_pair():
    # every pair counts 1 / 2 at the first steps: the smallest (a, b) wins, later ties too
    assert bpe.train("abcd", 257) == {(97, 98): 256}
    assert bpe.train("dcba", 258) == {(98, 97): 256, (99, 256): 257}
    assert bpe.best_pair({(3, 1): 2, (1, 9): 2, (1, 4): 2, (0, 0): 1}) == (1, 4)
    for chunks in ([b"dcba", b"badc"], [b"zyzy", b"yzyz", b"ab"]):
        definition, engine = _both(chunks, 5)
        assert definition == engine


def test_tokenizer_trains_and_encodes_the_same_with_engines_off():
    text = ("To be, or not to be, that is the question: 1234567 我说你倒是快点啊 😀\n" * 4
            + "aaaa bbbb abab baba " * 6)
    on = BPETokenizer.train(text, vocab_size=300, pattern="gpt4")
    with engines.disabled():
        off = BPETokenizer.train(text, vocab_size=300, pattern="gpt4")
        off_ids = off.encode_ordinary(text + "zzz aaaaaaa")
    assert on.merges == off.merges and on.train_tokens == off.train_tokens
    assert on.encode_ordinary(text + "zzz aaaaaaa") == off_ids
    assert on.train_tokens[-1] == len(on.encode_ordinary(text))  # encoding replays training


# ---- chunk encoding -------------------------------------------------------------------------------------
@st.composite
def merge_tables(draw):
    """A random valid merges table over a small alphabet: merge k joins two ids defined before it."""
    alphabet = draw(st.lists(st.integers(0, 255), min_size=1, max_size=5, unique=True))
    ids = list(alphabet)
    merges = {}
    for new in range(256, 256 + draw(st.integers(0, 40))):
        pair = (draw(st.sampled_from(ids)), draw(st.sampled_from(ids)))
        if pair not in merges:
            merges[pair] = new
            ids.append(new)
    merges = {pair: 256 + k for k, pair in enumerate(sorted(merges, key=merges.get))}   # ids 256.. in order
    merges = {p: i for p, i in merges.items() if max(p) < i}                           # ... still valid
    return alphabet, merges


@given(merge_tables(), st.data())
@settings(max_examples=300, deadline=None)
def test_encode_chunk_fast_equals_the_definition(table, data):
    alphabet, merges = table
    ids = data.draw(st.lists(st.sampled_from(alphabet), max_size=300))
    want = bpe.encode_chunk(ids, merges)
    assert bpe_engine.encode_chunk_fast(ids, merges) == want                          # scan or heap
    pairs = bpe_engine.PairTable(merges)
    assert bpe_engine.encode_chunk_fast(ids, merges, pairs, bulk_min=2) == want       # NumPy steps first


def test_bulk_steps_handle_overlapping_runs():
    merges = {(7, 7): 256, (256, 7): 257, (256, 256): 258}
    for n in range(0, 40):
        ids = [7] * n + [3] + [7] * (n // 2)
        want = bpe.encode_chunk(ids, merges)
        assert bpe_engine.encode_chunk_fast(ids, merges, bpe_engine.PairTable(merges), bulk_min=2) == want


@given(st.text(alphabet=st.sampled_from(list("abcxyz é我😀'.,")), max_size=300))
@settings(max_examples=60, deadline=None)
def test_gpt2_engine_equals_definition_on_random_text(gpt2, s):
    table = bytes(gpt2.byte_ids)
    raw = list(s.encode().translate(table))
    assert bpe_engine.encode_chunk_fast(raw, gpt2.merges) == bpe.encode_chunk(raw, gpt2.merges)
    with engines.disabled():
        off = gpt2.encode_ordinary(s)
    assert gpt2.encode_ordinary(s) == off


# ---- bounded work -----------------------------------------------------------------------------------------
def _tiktoken_gpt2():
    tiktoken = pytest.importorskip("tiktoken")
    from tiktoken.load import load_tiktoken_bpe
    return tiktoken.Encoding("gpt2_local", pat_str=bpe.GPT2_PATTERN_TIKTOKEN,
                             mergeable_ranks=load_tiktoken_bpe(str(shared_data("gpt2.tiktoken"))),
                             special_tokens={"<|endoftext|>": 50256})


@pytest.mark.parametrize("name", ["x * 10**6", "a * 80,000", "random letters"])
def test_one_long_chunk_is_fast_and_exact(gpt2, name, monkeypatch):
    monkeypatch.setattr(engines, "_enabled", True)   # the engine's bound (the definition would take hours)
    text = {"x * 10**6": "x" * 10**6, "a * 80,000": "a" * 80_000,
            "random letters": "".join(random.Random(0).choices(string.ascii_letters, k=10**6))}[name]
    enc = _tiktoken_gpt2()
    gpt2._encoder.clear()
    t0 = time.process_time()
    ids = gpt2.encode_ordinary(text)
    seconds = time.process_time() - t0
    assert ids == enc.encode_ordinary(text)
    assert seconds < 10          # ~0.3-0.8 s measured (benchmarks/tokenizer.py); generous for a busy CI


def _write_tiktoken(path, tokens):
    lines = [base64.b64encode(t).decode() + f" {r}" for r, t in enumerate([bytes([b]) for b in range(256)]
                                                                           + tokens)]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("kind", ["repeat", "distinct pairs"])
def test_chained_tiktoken_files_load_in_bounded_time(tmp_path, kind):
    """A file of 1,500 tokens each one byte longer than the last: recover_merges BPEs every token."""
    if kind == "repeat":
        tokens = [b"a" * k for k in range(2, 1502)]
    else:                                            # a byte sequence in which no pair repeats
        rng, seq, used = random.Random(0), [0], set()
        while len(seq) < 1502:
            c = rng.choice([c for c in range(256) if (seq[-1], c) not in used])
            used.add((seq[-1], c))
            seq.append(c)
        tokens = [bytes(seq[:k]) for k in range(2, 1502)]
    _write_tiktoken(tmp_path / "chain.tiktoken", tokens)
    t0 = time.process_time()
    tok = BPETokenizer.from_tiktoken(tmp_path / "chain.tiktoken")
    assert time.process_time() - t0 < 10             # ~0.5 s measured; it took minutes before
    assert tok.decode_bytes(tok.encode_bytes(tokens[-1])) == tokens[-1]
    last = list(tokens[-1].translate(bytes(tok.byte_ids)))
    assert bpe_engine.encode_chunk_fast(last, tok.merges) == [tok.vocab_size - 2]   # BPEs to itself


def test_recover_merges_with_numpy_steps_equals_plain(gpt2):
    """recover_merges switches to NumPy steps for tokens >= 256 bytes; force it for every token."""
    path = shared_data("gpt2.tiktoken")
    ranks = {t: r for t, r in read_tiktoken(path).items() if r < 3000}
    _, want = recover_merges(ranks)
    from minigpt.tokenizer import files
    old = files.RECOVER_BULK_MIN
    try:
        files.RECOVER_BULK_MIN = 2
        _, got = recover_merges(ranks)
    finally:
        files.RECOVER_BULK_MIN = old
    assert got == want
