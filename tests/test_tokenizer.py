"""Tokenizers: round trips on arbitrary Unicode, training rules, GPT-2 exactness, files, streaming decode."""

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt.cli import main
from minigpt.files.paths import shared_data
from minigpt.tokenizer import BPETokenizer, CharTokenizer, bpe, bpe_cache

SAMPLE = ("First Citizen:\nBefore we proceed any further, hear me speak.\r\n\nAll:\nSpeak, speak.\n"
          "It's 2024 and we'll test   whitespace\t\ttabs, digits 1234567 and café naïve.\n"
          "床前明月光，疑是地上霜。举头望明月，低头思故乡。 Emoji 😀🎉 and a combining é.\n") * 3
CJK_EMOJI = "床前明月光，疑是地上霜。😀👩‍👩‍👧 🎉 naïve e\u0301 \u00a0NBSP\r\n"


@pytest.fixture(scope="module")
def trained():
    return BPETokenizer.train(SAMPLE, vocab_size=320, pattern="gpt2", special_tokens=("<|endoftext|>",))


@pytest.fixture(scope="module")
def gpt2():
    path = shared_data("gpt2.tiktoken")
    if path is None:
        pytest.skip("shared gpt2.tiktoken not available (../shared/data)")
    return BPETokenizer.from_tiktoken(path)


# ---- the lesson functions ------------------------------------------------------------------------
def test_get_stats_and_merge():
    assert bpe.get_stats([1, 2, 1, 2, 2]) == {(1, 2): 2, (2, 1): 1, (2, 2): 1}
    assert bpe.get_stats([7, 7, 7]) == {(7, 7): 2}                    # overlapping pairs count
    assert bpe.merge([7, 7, 7], (7, 7), 300) == [300, 7]               # but merge left to right
    assert bpe.merge([1, 2, 3, 1, 2], (1, 2), 256) == [256, 3, 256]


def test_tie_break_is_smallest_pair():
    assert bpe.train("abcd", 257) == {(97, 98): 256}                  # all pairs count 1: (a, b) wins
    assert bpe.train("cdcdab", 257) == {(99, 100): 256}                # count 2 beats count 1


def test_training_reaches_vocab_size_and_is_deterministic(trained):
    assert trained.vocab_size == 320
    assert len(trained.merges) == 320 - 256 - 1
    assert trained.special_tokens == {"<|endoftext|>": 319}
    again = BPETokenizer.train(SAMPLE, vocab_size=320, pattern="gpt2", special_tokens=("<|endoftext|>",))
    assert again.merges == trained.merges
    assert trained.train_tokens == sorted(trained.train_tokens, reverse=True)
    # encoding replays training: the training text's final length is its encoded length
    assert trained.train_tokens[-1] == len(trained.encode(SAMPLE))


def test_training_runs_out_of_pairs():
    with pytest.raises(ValueError, match="no pairs left"):
        BPETokenizer.train("ab ab", vocab_size=300)
    with pytest.raises(ValueError, match="too small"):
        BPETokenizer.train("abc", vocab_size=256)
    with pytest.raises(ValueError, match="pattern"):
        BPETokenizer.train("abc", vocab_size=260, pattern="gtp2")


def test_special_tokens_are_never_merged_in_training():
    text = "<|endoftext|>" * 50 + "hello world " * 5
    tok = BPETokenizer.train(text, vocab_size=263, special_tokens=("<|endoftext|>",))
    assert b"<|" not in {tok.decode_bytes([i]) for i in tok.merges.values()}


# ---- round trips ---------------------------------------------------------------------------------
@given(st.text(max_size=200))
@settings(max_examples=150, deadline=None)
def test_char_round_trip(s):
    tok = CharTokenizer.from_text(s + "a")
    assert tok.decode(tok.encode(s)) == s


@given(st.text(max_size=200))
@settings(max_examples=150, deadline=None)
def test_trained_bpe_round_trip(trained, s):
    assert trained.decode(trained.encode_ordinary(s)) == s
    assert trained.decode(trained.encode(s, disallowed_special=())) == s
    assert trained.decode(trained.encode(s, allowed_special="all")) == s


@given(st.text(max_size=200))
@settings(max_examples=100, deadline=None)
def test_cached_piecewise_encode_equals_plain_bpe(trained, s):
    """The class cuts chunks where no token can span and caches pieces; the result must not change."""
    assert trained.encode_ordinary(s) == bpe.encode(s, trained.merges, bpe.GPT2_PATTERN)


# text made of the characters the GPT-2 pattern treats differently: spaces, tabs, newlines, NBSP,
# apostrophes, letters (Latin and CJK), digits, punctuation, emoji
SPLIT_CHARS = st.sampled_from(list("  \t\n\r\u00a0\u3000'sdmtlvreAZé我1٣.,!?-😀"))
SPLIT_TEXT = st.text(alphabet=SPLIT_CHARS | st.characters(codec="utf-8"), max_size=80)   # no lone surrogates


@given(SPLIT_TEXT)
@settings(max_examples=400, deadline=None)
def test_gpt2_pattern_splits_like_tiktokens(s):
    """bpe.GPT2_PATTERN (openai/gpt-2's form, faster in Python) and tiktoken's possessive form agree."""
    assert bpe.split(s, bpe.GPT2_PATTERN) == bpe.split(s, bpe.GPT2_PATTERN_TIKTOKEN)


@pytest.mark.parametrize("name", ["tinyshakespeare.txt", "tang_poems.txt"])
def test_gpt2_pattern_splits_the_corpora_like_tiktokens(shared, name):
    text = shared(name).read_text(encoding="utf-8")
    assert bpe.split(text, bpe.GPT2_PATTERN) == bpe.split(text, bpe.GPT2_PATTERN_TIKTOKEN)


@given(st.lists(SPLIT_TEXT, max_size=6))
@settings(max_examples=60, deadline=None)
def test_gpt2_batched_encode_equals_chunk_by_chunk(gpt2, texts):
    """encode_ordinary cuts all new chunks at once (NumPy) and regroups the pieces; compare with plain BPE
    of each chunk, while the chunk and piece caches fill up (the texts share chunks)."""
    for s in texts:
        want = [i for chunk in bpe.split(s, bpe.GPT2_PATTERN)
                for i in bpe.encode_chunk(list(chunk.encode("utf-8").translate(
                    bytes(gpt2.byte_ids))), gpt2.merges)]
        assert gpt2.encode_ordinary(s) == want


def test_chunk_encoder_without_merges_and_over_the_cache_limit(trained, monkeypatch):
    no_merges = BPETokenizer.train(SAMPLE, vocab_size=257, special_tokens=("<|endoftext|>",))
    assert no_merges.encode("hé 我") == list("hé 我".encode()) and no_merges.encode("") == []
    want = [trained.encode(s) for s in (SAMPLE, CJK_EMOJI, SAMPLE[::-1])]
    monkeypatch.setattr(bpe_cache, "CACHE_LIMIT", 5)              # caches emptied again and again
    trained._encoder.clear()
    assert [trained.encode(s) for s in (SAMPLE, CJK_EMOJI, SAMPLE[::-1])] == want
    assert len(trained._encoder.chunks) < 200 and len(trained._encoder.pieces) < 200


@given(st.text(max_size=200))
@settings(max_examples=150, deadline=None)
def test_gpt2_round_trip(gpt2, s):
    assert gpt2.decode(gpt2.encode_ordinary(s)) == s


@pytest.fixture(scope="module")
def unsplit():
    return BPETokenizer.train(SAMPLE[:300], vocab_size=280, pattern=None, special_tokens=())


@given(st.text(max_size=60))
@settings(max_examples=60, deadline=None)
def test_no_pattern_round_trip(unsplit, s):
    assert unsplit.vocab_size == 280 and unsplit.decode(unsplit.encode_ordinary(s)) == s


def test_char_tokenizer_errors_name_the_character(tmp_path):
    tok = CharTokenizer.from_text("hello")
    assert tok.vocab_size == 4 and tok.encode("hole") == [1, 3, 2, 0]
    with pytest.raises(ValueError, match=r"'é' \(U\+00E9\) at position 2"):
        tok.encode("heé")
    with pytest.raises(ValueError, match="token id 9 at position 1"):
        tok.decode([0, 9])
    tok.save(tmp_path / "c.json")
    assert CharTokenizer.load(tmp_path / "c.json").chars == tok.chars
    (tmp_path / "bad.json").write_text('{"format": "minigpt-char", "version": 1, "chars": ["ab"]}')
    with pytest.raises(ValueError, match="bad.json"):
        CharTokenizer.load(tmp_path / "bad.json")


# ---- GPT-2 exactness (ids verified with tiktoken in ../shared/NOTES.md) --------------------------
def test_gpt2_known_ids(gpt2):
    assert gpt2.vocab_size == 50257
    assert gpt2.encode("hello world") == [31373, 995]
    assert gpt2.encode("a   b") == [64, 220, 220, 275]
    assert gpt2.encode("Hello  world  ") == [15496, 220, 995, 220, 220]
    assert gpt2.encode("This is good.\n\n") == [1212, 318, 922, 13, 628]
    assert gpt2.encode("東京") == [30266, 109, 12859, 105]
    assert gpt2.encode("我说你倒是快点啊") == [22755, 239, 46237, 112, 19526, 254, 161, 222, 240, 42468,
                                          33232, 104, 163, 224, 117, 161, 243, 232]
    # byte tokens follow GPT-2's byte order, not byte values
    assert [gpt2.encode(c)[0] for c in "!Aa\n "] == [0, 32, 64, 198, 220]


def test_every_gpt2_token_encodes_to_itself(gpt2):
    """from_tiktoken looks a piece that is a whole token up directly instead of BPE'ing it; that is only
    right because each GPT-2 token's own bytes BPE back to that one token (recover_merges implies it)."""
    table = bytes(gpt2.byte_ids)
    wrong = [i for i in range(50256)
             if bpe.encode_chunk(list(gpt2.decode_bytes([i]).translate(table)), gpt2.merges) != [i]]
    assert wrong == []


def test_lone_surrogates_become_replacement_characters(gpt2, trained):
    # tiktoken gives [64, 4210, 65] for both, and joins a split surrogate pair into its emoji
    assert gpt2.encode("a\ud800b") == gpt2.encode("a\ufffdb") == [64, 4210, 65]
    assert gpt2.encode("x\ud83d\ude00") == gpt2.encode("x😀")
    assert trained.decode(trained.encode("\udfff!")) == "\ufffd!"
    assert BPETokenizer.train(SAMPLE + "\ud800", vocab_size=300).vocab_size == 300


def test_gpt2_special_tokens(gpt2):
    """tiktoken's rules (its own test_simple_encoding / test_special_token cases, ids from tiktoken)."""
    text = "a<|endoftext|>b"
    as_text = [27, 91, 437, 1659, 5239, 91, 29]                        # <, |, end, of, text, |, >
    assert [gpt2.decode([i]) for i in as_text] == ["<", "|", "end", "of", "text", "|", ">"]
    assert gpt2.encode("<|endoftext|>", disallowed_special=()) == as_text
    assert gpt2.encode_ordinary("<|endoftext|>") == as_text
    with pytest.raises(ValueError, match="allowed_special"):           # the default: refuse, as tiktoken
        gpt2.encode("<|endoftext|>")
    with pytest.raises(ValueError, match="<\\|endoftext\\|>"):
        gpt2.encode(text, allowed_special=set())
    assert gpt2.encode("<|endoftext|>", allowed_special="all") == [50256]
    assert gpt2.encode(text, allowed_special={"<|endoftext|>"}) == [64, 50256, 65]
    assert gpt2.encode(text, allowed_special={"<|endoftext|>", "<|im_start|>"}) == [64, 50256, 65]  # ignored
    with pytest.raises(ValueError):                                    # unknown allowed name: still refused
        gpt2.encode(text, allowed_special={"<|im_start|>"})
    with pytest.raises(ValueError):                                    # any text can be disallowed
        gpt2.encode("hello world", disallowed_special={"world"})
    assert gpt2.decode([50256]) == "<|endoftext|>"
    assert gpt2.eot_token == 50256 and gpt2.n_vocab == 50257 and gpt2.max_token_value == 50256
    for bad in ("yes", "none", 5):
        with pytest.raises(ValueError, match="allowed_special"):
            gpt2.encode(text, allowed_special=bad)


def test_decode_bad_ids(gpt2):
    assert gpt2.decode([31373, 995]) == "hello world"
    assert gpt2.decode([22755]) == "\ufffd"                            # half a character -> replacement
    assert gpt2.decode_bytes([22755, 239]) == "我".encode()
    for bad, where in [([1, 50257], "50257 at position 1"), ([-1], "-1 at position 0"),
                       ([0, 1.5], "1.5 at position 1")]:
        with pytest.raises(ValueError, match=where):
            gpt2.decode(bad)


def _to_unicode_table():
    """GPT-2's byte -> character table, written independently here (tiktoken's load.py rule)."""
    order = [b for b in range(256) if chr(b).isprintable() and chr(b) != " "]
    order += [b for b in range(256) if b not in order]
    table, n = {}, 0
    for b in order:
        if chr(b).isprintable() and chr(b) != " ":
            table[b] = chr(b)
        else:
            table[b] = chr(256 + n)
            n += 1
    return order, table


def test_from_gpt2_files_matches_from_tiktoken(gpt2, tmp_path):
    order, table = _to_unicode_table()
    assert gpt2.byte_ids == [order.index(b) for b in range(256)]
    text = {i: "".join(table[b] for b in gpt2.decode_bytes([i])) for i in range(50256)}
    encoder = {text[i]: i for i in range(50256)} | {"<|endoftext|>": 50256}
    merges = sorted(gpt2.merges.items(), key=lambda item: item[1])
    (tmp_path / "encoder.json").write_text(json.dumps(encoder), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{text[a]} {text[b]}" for (a, b), _ in merges] + [""]
    (tmp_path / "vocab.bpe").write_text("\n".join(lines), encoding="utf-8")
    other = BPETokenizer.from_gpt2_files(tmp_path / "encoder.json", tmp_path / "vocab.bpe")
    assert other.merges == gpt2.merges and other.byte_ids == gpt2.byte_ids
    assert other.special_tokens == {"<|endoftext|>": 50256}
    assert other.encode(SAMPLE + CJK_EMOJI) == gpt2.encode(SAMPLE + CJK_EMOJI)
    # a broken merges file names the file and the line
    (tmp_path / "vocab.bpe").write_text("#version: 0.2\nĠ t\nh e x\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"vocab.bpe, line 3"):
        BPETokenizer.from_gpt2_files(tmp_path / "encoder.json", tmp_path / "vocab.bpe")
    (tmp_path / "vocab.bpe").write_text("#version: 0.2\nĠ zzzq\n", encoding="utf-8")
    with pytest.raises(ValueError, match="not in encoder.json"):
        BPETokenizer.from_gpt2_files(tmp_path / "encoder.json", tmp_path / "vocab.bpe")
    (tmp_path / "vocab.bpe").write_bytes(b"#version: 0.2\n\xff \xfe\n")
    with pytest.raises(ValueError, match="vocab.bpe: not UTF-8"):
        BPETokenizer.from_gpt2_files(tmp_path / "encoder.json", tmp_path / "vocab.bpe")
    (tmp_path / "encoder.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="encoder.json: not valid JSON"):
        BPETokenizer.from_gpt2_files(tmp_path / "encoder.json", tmp_path / "vocab.bpe")
    (tmp_path / "encoder.json").write_bytes(b"\xff")
    with pytest.raises(ValueError, match="encoder.json: not UTF-8"):
        BPETokenizer.from_gpt2_files(tmp_path / "encoder.json", tmp_path / "vocab.bpe")


# ---- files ---------------------------------------------------------------------------------------
def test_save_load_round_trip(trained, tmp_path):
    trained.save(tmp_path / "tok.json")
    data = json.loads((tmp_path / "tok.json").read_text(encoding="utf-8"))
    assert data["version"] == 1 and data["pattern"] == "gpt2" and data["merges"][0][2] == 256
    back = BPETokenizer.load(tmp_path / "tok.json")
    assert back.merges == trained.merges and back.special_tokens == trained.special_tokens
    assert back.encode(SAMPLE, allowed_special="all") == trained.encode(SAMPLE, allowed_special="all")


def test_gpt2_save_load_round_trip(gpt2, tmp_path):
    gpt2.save(tmp_path / "gpt2.json")
    back = BPETokenizer.load(tmp_path / "gpt2.json")
    assert back.byte_ids == gpt2.byte_ids and back.merges == gpt2.merges and back.vocab_size == 50257


def _corrupt(tmp_path, trained, edit):
    trained.save(tmp_path / "tok.json")
    data = json.loads((tmp_path / "tok.json").read_text(encoding="utf-8"))
    edit(data)
    (tmp_path / "tok.json").write_text(json.dumps(data), encoding="utf-8")
    return tmp_path / "tok.json"


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.pop("merges"), "field 'merges' is missing"),
    (lambda d: d.update(version=99), "format version 99"),
    (lambda d: d.update(format="other"), "not a minigpt-bpe"),
    (lambda d: d["merges"].__setitem__(0, [1000, 2, 256]), "names id 1000"),
    (lambda d: d["merges"].__setitem__(0, [1, 2]), "merge #0 must be"),
    (lambda d: d.update(merges=5), "field 'merges' must be a list"),
    (lambda d: d["merges"].__setitem__(1, [1, 2, 999]), "merge ids must be 256, 257"),
    (lambda d: d.update(special_tokens={"<|x|>": 5}), "special token ids must be integers from 319"),
    (lambda d: d.update(special_tokens={"<|x|>": 400, "<|y|>": 400}), "share an id"),
    (lambda d: d.update(special_tokens={"<|x|>": 2**40}), "special_tokens"),
    (lambda d: d.update(special_tokens=[]), "field 'special_tokens' must be an object"),
    (lambda d: d["merges"].__setitem__(1, d["merges"][0]), "merged twice"),
    (lambda d: d["merges"].__setitem__(0, [1, 2, 10**20]), "merge #0 must be"),
    (lambda d: d["byte_ids"].__setitem__(0, 1), "byte_ids must list"),
    (lambda d: d.update(pattern="nope"), "pattern must be one of"),
    (lambda d: d.update(pattern=["gpt2"]), "field 'pattern' must be a pattern name"),
    (lambda d: d.update(vocab_size="320"), "field 'vocab_size' must be an integer"),
    (lambda d: d.update(vocab_size=321), "says vocab_size 321 but holds 320"),
])
def test_malformed_tokenizer_files(tmp_path, trained, edit, message):
    path = _corrupt(tmp_path, trained, edit)
    with pytest.raises(ValueError, match=message) as info:
        BPETokenizer.load(path)
    assert "tok.json" in str(info.value)


def test_truncated_json_and_missing_file(tmp_path, trained):
    trained.save(tmp_path / "tok.json")
    text = (tmp_path / "tok.json").read_text(encoding="utf-8")
    (tmp_path / "tok.json").write_text(text[: len(text) // 2], encoding="utf-8")
    with pytest.raises(ValueError, match="tok.json: not valid JSON"):
        BPETokenizer.load(tmp_path / "tok.json")
    with pytest.raises(FileNotFoundError, match="nothere.json"):
        BPETokenizer.load(tmp_path / "nothere.json")
    (tmp_path / "tok.json").write_bytes(b"\xff\xfe{}")                     # not UTF-8 (a UTF-16 BOM)
    with pytest.raises(ValueError, match="tok.json: not UTF-8"):
        BPETokenizer.load(tmp_path / "tok.json")


def _tiktoken_lines():
    """A tiny valid .tiktoken: the 256 bytes (identity ranks) and two merges."""
    tokens = [bytes([b]) for b in range(256)] + [b"ab", b"abc"]
    return [base64.b64encode(t).decode() + f" {r}" for r, t in enumerate(tokens)]


def test_tiktoken_files(tmp_path):
    path = tmp_path / "tiny.tiktoken"
    path.write_text("\n".join(_tiktoken_lines()) + "\n")
    tok = BPETokenizer.from_tiktoken(path)
    assert tok.merges == {(97, 98): 256, (256, 99): 257} and tok.vocab_size == 259
    assert tok.encode("abcab") == [257, 256]
    for lines, message in [
        (_tiktoken_lines()[:-1] + ["YWJj"], "line 258: expected '<base64 token> <rank>'"),   # truncated
        (_tiktoken_lines()[:-1] + ["Y!!j 257"], "line 258: cannot parse"),
        (_tiktoken_lines()[:-1] + ["YWJj 300"], "ranks must be 0..257"),
        (["eHl6 0"] + _tiktoken_lines()[1:], "single byte"),
        (_tiktoken_lines()[:-2] + ["YWJj 256"], "not the merge of two earlier tokens"),
    ]:
        path.write_text("\n".join(lines) + "\n")
        with pytest.raises(ValueError, match=message) as info:
            BPETokenizer.from_tiktoken(path)
        assert "tiny.tiktoken" in str(info.value)


# ---- streaming -----------------------------------------------------------------------------------
def _stream(tok, ids):
    dec = tok.stream_decoder()
    pieces = [dec.push(i) for i in ids]
    return pieces, dec.flush()


def test_stream_decoder_emits_only_whole_characters(gpt2, trained):
    for tok in (gpt2, trained):
        ids = tok.encode(CJK_EMOJI)
        assert any(tok.decode([i]) == "\ufffd" for i in ids)          # some ids are parts of a character
        pieces, tail = _stream(tok, ids)
        assert "".join(pieces) == CJK_EMOJI and tail == ""
        assert all("\ufffd" not in p for p in pieces)


def test_stream_decoder_flushes_an_incomplete_character(gpt2):
    pieces, tail = _stream(gpt2, [22755])                              # the first bytes of 我
    assert pieces == [""] and tail == "\ufffd"


@given(st.text(max_size=80))
@settings(max_examples=100, deadline=None)
def test_stream_decoder_property(trained, s):
    pieces, tail = _stream(trained, trained.encode_ordinary(s))
    assert "".join(pieces) + tail == s
    assert all("\ufffd" not in p for p in pieces) or "\ufffd" in s


# ---- the command line: a prompt is text -----------------------------------------------------------------
def test_sample_refuses_special_token_text_in_a_prompt_unless_allowed(capsys):
    folder = Path(__file__).resolve().parent.parent / "lessons" / "10_sampling" / "reference" / "tiny_gpt2"
    args = ["sample", "--checkpoint", str(folder), "--prompt", "In<|endoftext|>", "--max-new-tokens", "2",
            "--temperature", "0", "--no-stream"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--allow-special" in err and len(err.strip().splitlines()) == 1
    assert main([*args, "--allow-special"]) == 0
    assert capsys.readouterr().out.startswith("In<|endoftext|>")


def test_bpetokenizer_equals_the_lesson_reference(gpt2):
    """lessons/01_tokenizer/reference/gpt2_texts.json (written with tiktoken): encode with each text's
    allowed/disallowed special tokens gives tiktoken's ids or raises where tiktoken raised."""
    ref = json.loads((Path(__file__).resolve().parent.parent / "lessons" / "01_tokenizer" / "reference"
                      / "gpt2_texts.json").read_text(encoding="utf-8"))
    assert any(case["raises"] for case in ref["texts"])
    for case in ref["texts"]:
        allowed, disallowed = case["allowed_special"], case["disallowed_special"]
        kwargs = {"allowed_special": allowed if allowed == "all" else set(allowed),
                  "disallowed_special": disallowed if disallowed == "all" else set(disallowed)}
        if case["raises"]:
            with pytest.raises(ValueError):
                gpt2.encode(case["text"], **kwargs)
        else:
            assert gpt2.encode(case["text"], **kwargs) == case["ids"], case["name"]
        assert gpt2.encode_ordinary(case["text"]) == case["ordinary_ids"], case["name"]
    for case in ref["partial"]:
        assert gpt2.decode(case["ids"]) == case["text"]
