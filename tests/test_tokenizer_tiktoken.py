"""Parity with tiktoken's Encoding: the split patterns of gpt2 / cl100k_base / o200k_base (compared with
tiktoken's own pattern strings and its Rust regex engine), tokenizers trained here under each pattern loaded
into tiktoken.Encoding (identical ids, offsets, single tokens), special tokens at any id, raw bytes.
tiktoken is the reference (the `reference` extra); without it these tests skip."""

import base64
import importlib.util
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt.files.paths import shared_data
from minigpt.tokenizer import BPETokenizer, bpe

tiktoken = pytest.importorskip("tiktoken")
openai_public = pytest.importorskip("tiktoken_ext.openai_public")

MULTILINGUAL = (
    "Hello world! It's 2024; we'll see 1234567 apples. I'M HERE, DON'T you'd've?\n\n"
    "camelCaseWords and HTTPServer, XMLHttpRequest; naïve café résumé e\u0301\n"
    "Привет мир, γειά σου κόσμε, مرحبا بالعالم, שלום, नमस्ते दुनिया, こんにちは世界, 안녕하세요\n"
    "床前明月光，疑是地上霜。举头望明月，低头思故乡。 😀👩‍👩‍👧 🇫🇷 \t\ttabs  \r\n\r\n  trailing   \n"
    "path/to/file.py:12 x+=1 // comment \u00a0nbsp\u202fnarrow 3.14159 ١٢٣٤ ⅷ ½ 𝟙𝟚\n"
    "  indented\n    code()\n\n\n   \n"
)


def _fixture_generator():
    """tests/fixtures/make_tiktoken_fixtures.py, whose pattern_of reads a constructor's pat_str."""
    spec = importlib.util.spec_from_file_location(
        "make_tiktoken_fixtures", Path(__file__).resolve().parent / "fixtures" / "make_tiktoken_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_pattern_of = _fixture_generator().pattern_of


TIKTOKEN_PATTERNS = {"gpt2": openai_public.r50k_pat_str, "gpt4": _pattern_of(openai_public.cl100k_base),
                     "o200k": _pattern_of(openai_public.o200k_base)}


def test_patterns_are_tiktokens_verbatim():
    assert bpe.GPT4_PATTERN == TIKTOKEN_PATTERNS["gpt4"]
    assert bpe.O200K_PATTERN == TIKTOKEN_PATTERNS["o200k"]
    assert bpe.GPT2_PATTERN_TIKTOKEN == TIKTOKEN_PATTERNS["gpt2"]


TEXT = st.lists(st.sampled_from(list(" \t\n\r\u00a0'sdmtlvreAZaz09éÉ我ß.,/!?-😀\u0301Ⅷ١") + ["'S", "'LL"])
                | st.characters(codec="utf-8"), max_size=80).map("".join)


@pytest.fixture(scope="module", params=["gpt2", "gpt4", "o200k"])
def pair(request):
    """(ours, tiktoken's Encoding built from our ranks and tiktoken's own pattern string for that name)."""
    text = MULTILINGUAL * 3
    corpus = shared_data("tinyshakespeare.txt")
    if corpus is not None:
        text += corpus.read_text(encoding="utf-8")[:50_000]
    specials = ("<|endoftext|>", "<|fim_prefix|>")
    vocab = 700 if corpus is not None else 500    # the multilingual text alone has ~360 merges to make
    ours = BPETokenizer.train(text, vocab_size=vocab, pattern=request.param, special_tokens=specials)
    ranks = {ours.decode_single_token_bytes(i): i for i in range(256 + len(ours.merges))}
    enc = tiktoken.Encoding(f"minigpt_{request.param}", pat_str=TIKTOKEN_PATTERNS[request.param],
                            mergeable_ranks=ranks, special_tokens=ours.special_tokens)
    return ours, enc


@given(TEXT)
@settings(max_examples=150, deadline=None)
def test_trained_tokenizers_equal_tiktoken(pair, s):
    ours, enc = pair
    assert ours.encode_ordinary(s) == enc.encode_ordinary(s)
    assert ours.encode(s, allowed_special="all") == enc.encode(s, allowed_special="all")


def test_trained_tokenizers_equal_tiktoken_on_corpora(pair):
    ours, enc = pair
    for name in ("tinyshakespeare.txt", "tang_poems.txt"):
        path = shared_data(name)
        text = path.read_text(encoding="utf-8")[:200_000] if path else MULTILINGUAL * 20
        assert ours.encode_ordinary(text) == enc.encode_ordinary(text)
    for s in ["", " ", "\n" * 5, " " * 50 + "x", "a" * 5000, "x" * 100_000, "😀" * 300, "'s'S'll" * 9,
              "1234567890" * 7, "\r\n\r\n\t ", MULTILINGUAL]:
        assert ours.encode_ordinary(s) == enc.encode_ordinary(s)


def test_the_rest_of_the_surface_equals_tiktoken(pair):
    ours, enc = pair
    ids = enc.encode(MULTILINGUAL)
    assert ours.n_vocab == enc.n_vocab and ours.max_token_value == enc.max_token_value
    assert ours.eot_token == enc.eot_token and ours.special_tokens_set == enc.special_tokens_set
    assert ours.decode_with_offsets(ids) == enc.decode_with_offsets(ids)
    assert ours.decode_tokens_bytes(ids) == enc.decode_tokens_bytes(ids)
    assert ours.decode_bytes(ids) == enc.decode_bytes(ids) and ours.decode(ids[:7]) == enc.decode(ids[:7])
    for i in (0, 97, 300, ours.eot_token):
        assert ours.decode_single_token_bytes(i) == enc.decode_single_token_bytes(i)
        token = enc.decode_single_token_bytes(i)
        assert ours.encode_single_token(token) == enc.encode_single_token(token) == i
    assert ours.encode_single_token("<|fim_prefix|>") == enc.encode_single_token("<|fim_prefix|>")
    for bad in ("not a single token at all", b"\xff\xfe\xfd"):
        with pytest.raises(KeyError):
            enc.encode_single_token(bad)
        with pytest.raises(KeyError):
            ours.encode_single_token(bad)
    with pytest.raises(KeyError):
        ours.decode_single_token_bytes(10**6)
    texts = ["a<|endoftext|>b", "plain", ""]
    assert ours.encode_batch(texts, allowed_special="all") == enc.encode_batch(texts, allowed_special="all")
    assert ours.encode_ordinary_batch(texts) == enc.encode_ordinary_batch(texts)


@pytest.mark.parametrize("kwargs", [
    {}, {"allowed_special": "all"}, {"allowed_special": {"<|endoftext|>"}},
    {"allowed_special": {"<|fim_prefix|>"}}, {"allowed_special": {"<|nope|>"}},
    {"allowed_special": {"<|nope|>", "<|endoftext|>"}}, {"disallowed_special": ()},
    {"disallowed_special": {"<|fim_prefix|>"}}, {"allowed_special": "all", "disallowed_special": ()},
    {"allowed_special": {"<|endoftext|>"}, "disallowed_special": {"<|endoftext|>"}},
    {"disallowed_special": {"b"}}, {"allowed_special": set(), "disallowed_special": ()},
])
@pytest.mark.parametrize("text", ["a<|endoftext|>b", "<|fim_prefix|>x<|endoftext|>", "<|endoftext", "ab"])
def test_special_token_rules_equal_tiktoken(pair, kwargs, text):
    ours, enc = pair
    try:
        want = enc.encode(text, **kwargs)
    except ValueError:
        with pytest.raises(ValueError):
            ours.encode(text, **kwargs)
        return
    assert ours.encode(text, **kwargs) == want


def test_special_ids_anywhere(pair):
    """Special ids need not follow the merges (cl100k_base leaves 100256 unused); gaps are refused ids."""
    ours, _ = pair
    first = 256 + len(ours.merges)
    specials = {"<|endoftext|>": first + 5, "<|a|>": first + 1000}
    tok = BPETokenizer(ours.merges, specials, ours.pattern, ours.byte_ids)
    ranks = {tok.decode_single_token_bytes(i): i for i in range(first)}
    enc = tiktoken.Encoding("gappy", pat_str=TIKTOKEN_PATTERNS[ours.pattern], mergeable_ranks=ranks,
                            special_tokens=specials)
    text = "x<|a|>y <|endoftext|>"
    assert tok.encode(text, allowed_special="all") == enc.encode(text, allowed_special="all")
    assert tok.n_vocab == enc.n_vocab == first + 1001 and tok.eot_token == first + 5
    assert tok.decode([first + 1000]) == "<|a|>"
    with pytest.raises(ValueError, match="not in this tokenizer's vocabulary"):
        tok.decode([first + 6])                                     # a gap
    with pytest.raises(ValueError, match="special token ids must be"):
        BPETokenizer(ours.merges, {"<|x|>": first - 1}, ours.pattern, ours.byte_ids)   # a merge's id


@given(st.binary(max_size=60))
@settings(max_examples=200, deadline=None)
def test_encode_bytes_round_trips_and_equals_tiktoken_on_utf8(pair, data):
    ours, enc = pair
    ids = ours.encode_bytes(data)
    assert ours.decode_bytes(ids) == data
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return
    assert ids == enc.encode_ordinary(text) == enc._encode_bytes(data)


@pytest.mark.parametrize("name, pattern", [("gpt2", bpe.GPT2_PATTERN), ("gpt4", bpe.GPT4_PATTERN),
                                           ("o200k", bpe.O200K_PATTERN)])
@pytest.mark.parametrize("text", [MULTILINGUAL, MULTILINGUAL.upper(), MULTILINGUAL[::-1]])
def test_splits_equal_tiktokens_rust_split(name, pattern, text):
    """Our `regex` split equals tiktoken's (Rust fancy-regex) split: give tiktoken a vocabulary whose tokens
    are the bytes and our chunks; its ids are one per chunk of ours only if it cuts the text where we do."""
    chunks = bpe.split(text, pattern)
    assert "".join(chunks) == text
    ranks = {bytes([b]): b for b in range(256)}
    for chunk in chunks:
        ranks.setdefault(chunk.encode(), len(ranks))
    enc = tiktoken.Encoding("split", pat_str=TIKTOKEN_PATTERNS[name], mergeable_ranks=ranks,
                            special_tokens={})
    assert enc.encode_ordinary(text) == [ranks[chunk.encode()] for chunk in chunks]


def test_gpt2_from_file_equals_tiktoken_on_the_special_text():
    path = shared_data("gpt2.tiktoken")
    if path is None:
        pytest.skip("shared gpt2.tiktoken not available")
    from tiktoken.load import load_tiktoken_bpe
    enc = tiktoken.Encoding("gpt2_local", pat_str=TIKTOKEN_PATTERNS["gpt2"],
                            mergeable_ranks=load_tiktoken_bpe(str(path)),
                            special_tokens={"<|endoftext|>": 50256})
    gpt2 = BPETokenizer.from_tiktoken(path)
    assert gpt2.encode_ordinary("<|endoftext|>") == enc.encode_ordinary("<|endoftext|>") == [
        27, 91, 437, 1659, 5239, 91, 29]
    assert [gpt2.decode([i]) for i in gpt2.encode_ordinary("<|endoftext|>")] == list("<|") + [
        "end", "of", "text"] + list("|>")
    ids = enc.encode(MULTILINGUAL)
    assert gpt2.decode_with_offsets(ids) == enc.decode_with_offsets(ids)


def test_from_tiktoken_with_gpt4_and_o200k_patterns(pair, tmp_path):
    """A rank file written from a tokenizer trained under each pattern, read back by from_tiktoken (the
    pattern given by name or alias) and by tiktoken's own loader: identical ids."""
    ours, _ = pair
    from tiktoken.load import load_tiktoken_bpe
    path = tmp_path / f"{ours.pattern}.tiktoken"
    n = 256 + len(ours.merges)
    path.write_text("".join(f"{base64.b64encode(ours.decode_single_token_bytes(i)).decode()} {i}\n"
                            for i in range(n)))
    alias = {"gpt2": "r50k", "gpt4": "cl100k", "o200k": "o200k_base"}[ours.pattern]
    loaded = BPETokenizer.from_tiktoken(path, pattern=alias)
    assert loaded.pattern == ours.pattern and loaded.special_tokens == {"<|endoftext|>": n}
    enc = tiktoken.Encoding("file", pat_str=TIKTOKEN_PATTERNS[ours.pattern],
                            mergeable_ranks=load_tiktoken_bpe(str(path)), special_tokens={"<|endoftext|>": n})
    text = MULTILINGUAL * 2 + "<|endoftext|>"
    assert loaded.encode(text, allowed_special="all") == enc.encode(text, allowed_special="all")
    assert loaded.encode_ordinary(text) == ours.encode_ordinary(text)
