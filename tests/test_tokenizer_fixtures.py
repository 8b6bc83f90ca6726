"""GPT-2-, GPT-4- (cl100k_base) and o200k-pattern tokenizers equal tiktoken, without tiktoken installed.

tests/fixtures/make_tiktoken_fixtures.py (the `reference` extra) wrote, for each split pattern, a small
`.tiktoken` rank file and the ids tiktoken.Encoding gives with it on fixed and adversarial texts. Here
`BPETokenizer.from_tiktoken(path, pattern=...)` loads the same file and must give the same ids: ordinary
text, special tokens allowed, tiktoken's refusal of special-token text by default, and the character
offsets of decode_with_offsets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from minigpt.tokenizer import BPETokenizer

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "tiktoken"
RECORD = json.loads((FIXTURES / "ids.json").read_text(encoding="utf-8"))
TEXTS = RECORD["texts"]


@pytest.fixture(scope="module", params=sorted(RECORD["patterns"]))
def case(request):
    want = RECORD["patterns"][request.param]
    tok = BPETokenizer.from_tiktoken(FIXTURES / want["file"], special_tokens=RECORD["special_tokens"],
                                     pattern=request.param)
    return tok, want


def test_ordinary_ids_equal_tiktoken(case):
    tok, want = case
    bad = [i for i, t in enumerate(TEXTS) if tok.encode_ordinary(t) != want["ordinary"][i]]
    assert not bad, f"{len(bad)} texts differ, first {TEXTS[bad[0]]!r}"


def test_allowed_special_ids_equal_tiktoken(case):
    tok, want = case
    bad = [i for i, t in enumerate(TEXTS) if tok.encode(t, allowed_special="all") != want["allowed"][i]]
    assert not bad, f"{len(bad)} texts differ, first {TEXTS[bad[0]]!r}"


def test_special_token_text_raises_where_tiktoken_raises(case):
    tok, want = case
    for text, raises in zip(TEXTS, want["raises"], strict=True):
        if raises:
            with pytest.raises(ValueError):
                tok.encode(text)
        else:
            tok.encode(text)
    assert any(want["raises"]) and not all(want["raises"])          # the fixture covers both outcomes


def test_offsets_equal_tiktoken(case):
    tok, want = case
    for i, text in enumerate(TEXTS):
        _, offsets = tok.decode_with_offsets(want["ordinary"][i])
        assert offsets == want["offsets"][i], text


def test_round_trip(case):
    tok, want = case
    for i, text in enumerate(TEXTS):
        assert tok.decode(want["ordinary"][i]) == text.encode("utf-8", "replace").decode("utf-8")
