"""minigpt.metrics BLEU against sacrebleu 2.6: its own test cases through thin adapters, and its outputs.

Part 1 ports the cases of sacrebleu's test/test_bleu.py and test/test_sentence_bleu.py (github.com/mjpost/
sacrebleu, 57 parametrized tests): same inputs, same expected numbers, same tolerances. The adapters below
translate each sacrebleu call into minigpt's; nothing else is changed.

Part 2 compares every field with what sacrebleu itself returned on seeded random corpora for every
tokenizer x smoothing pair (lessons/12_evaluation/reference/bleu_options.json and tokenize_options.json,
written by make_reference.py): scores and precisions to 1e-9, counts, totals, lengths and tokens exactly.
sacrebleu is never imported here.
"""

import json
from pathlib import Path

import pytest

from minigpt import metrics as M
from minigpt.metrics.bleu_tokenizers import TOKENIZERS

REFERENCE = Path(__file__).resolve().parents[1] / "lessons" / "12_evaluation" / "reference"


# ---- thin adapters: sacrebleu's call -> minigpt's ----------------------------------------------------
def corpus_bleu(hypotheses, references, smooth_method="exp", smooth_value=None, lowercase=False,
                tokenize="13a", use_effective_order=False):
    """sacrebleu.corpus_bleu: references are reference streams."""
    return M.bleu_details(list(hypotheses), ref_streams=references, tokenize=tokenize, lowercase=lowercase,
                          smooth_method=smooth_method, smooth_value=smooth_value,
                          effective_order=use_effective_order)


def raw_corpus_bleu(hypotheses, references, smooth_value=M.SMOOTH_DEFAULTS["floor"]):
    """sacrebleu.raw_corpus_bleu: no tokenization, floor smoothing, effective order."""
    return corpus_bleu(hypotheses, references, smooth_method="floor", smooth_value=smooth_value,
                       tokenize="none", use_effective_order=True)


def sentence_bleu(hypothesis, references, smooth_method="exp", smooth_value=None, lowercase=False,
                  tokenize="13a", use_effective_order=True):
    """sacrebleu.sentence_bleu (compat) and BLEU(...).sentence_score (api) alike."""
    return M.bleu_details([hypothesis], [list(references)], tokenize=tokenize, lowercase=lowercase,
                          smooth_method=smooth_method, smooth_value=smooth_value,
                          effective_order=use_effective_order)


# ---- Part 1: sacrebleu's test/test_bleu.py -------------------------------------------------------------
EPSILON = 1e-8

_refs = [
    ["The dog bit the man.", "It was not unexpected.", "The man bit him first."],
    ["The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."],
]
_hyps = ["The dog bit the man.", "It wasn't surprising.", "The man had just bitten him."]


@pytest.mark.parametrize("hypotheses, references, expected_bleu", [
    (["this is a test", "another test"], [["ref1", "ref2"]], 0.0),
    (["this is a test"], [["this is a test"]], 1.0),
    (["this is a fest"], [["this is a test"]], 0.223606797749979),
])
def test_raw_bleu(hypotheses, references, expected_bleu):
    assert abs(raw_corpus_bleu(hypotheses, references, .01).score / 100 - expected_bleu) < EPSILON


@pytest.mark.parametrize("hypotheses, references, kwargs, expected_bleu", [
    (_hyps, _refs, {}, 48.530827),
    (("", "", ""), _refs, {}, 0.0),
    (_hyps, _refs, {"tokenize": "none"}, 49.1919566),
    (_hyps, _refs, {"tokenize": "13a"}, 48.530827),
    (_hyps, _refs, {"tokenize": "intl"}, 43.91623493),
    (_hyps, _refs, {"smooth_method": "none"}, 48.530827),
])
def test_corpus_bleu(hypotheses, references, kwargs, expected_bleu):
    assert abs(corpus_bleu(hypotheses, references, **kwargs).score - expected_bleu) < EPSILON


@pytest.mark.parametrize("hypotheses, references, expected_bleu", [
    (["test"], [["a test"]], 0.3678794411714425),
    (["a test"], [["a test"]], 1.0),
    (["a little test"], [["a test"]], 0.03218297948685433),
])
def test_effective_order(hypotheses, references, expected_bleu):
    assert abs(raw_corpus_bleu(hypotheses, references, .01).score / 100 - expected_bleu) < EPSILON


def test_statistics():
    result = raw_corpus_bleu(["am I am a character sequence"], [["I am a symbol string sequence a a"]], .01)
    assert (result.counts, result.totals) == ([4, 2, 1, 0], [6, 5, 4, 3])


def test_scoring():
    score = M.compute_bleu([9, 7, 5, 3], [10, 8, 6, 4], 11, 11).score / 100
    assert abs(score - 0.8375922397) < EPSILON


def test_offset():
    hyp, ref = ["am I am a character sequence"], [["I am a symbol string sequence a a"]]
    assert abs(0 - raw_corpus_bleu(hyp, ref, 0.0).score / 100) < EPSILON
    assert abs(0.1555722182 - raw_corpus_bleu(hyp, ref, None).score / 100) < EPSILON  # default 0.1
    assert abs(0.1555722182 - raw_corpus_bleu(hyp, ref).score / 100) < EPSILON


@pytest.mark.parametrize("common, total, sys_len, ref_len, offset, expected", [
    ([0, 0, 0, 0], [4, 4, 2, 1], 0, 1, 0.0, 0.0),
    ([0, 0, 0, 0], [10, 11, 12, 0], 14, 10, 0.0, 0.0),
    ([0, 0, 0, 0], [0, 0, 0, 0], 0, 0, 0.0, 0.0),
    ([6, 5, 4, 0], [6, 5, 4, 3], 6, 6, 0.0, 0.0),
    ([0, 0, 0, 0], [0, 0, 0, 0], 0, 0, 0.1, 0.0),
    ([0, 0, 0, 0], [0, 0, 0, 0], 1, 5, 0.01, 0.0),
])
def test_degenerate_statistics(common, total, sys_len, ref_len, offset, expected):
    score = M.compute_bleu(common, total, sys_len, ref_len, smooth_method="floor", smooth_value=offset)
    assert score.score / 100 == expected


@pytest.mark.parametrize("order, expected_bleu", [(1, "77.65"), (2, "60.50"), (3, "53.93"), (4, "48.53"),
                                                  (5, "46.14"), (6, "43.28")])
def test_max_ngram_order(order, expected_bleu):
    bleu = M.bleu_details(_hyps, ref_streams=_refs, max_ngram_order=order)  # BLEU(max_ngram_order=order)
    assert f"{bleu.score:.2f}" == expected_bleu


# ---- Part 1: sacrebleu's test/test_sentence_bleu.py ---------------------------------------------------
REF = "producţia de zahăr brut se exprimă în zahăr alb;"
SYS = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;"
SENTENCE_CASES = [
    ("exp", None, False, "13a", 8.493),
    ("none", None, False, "13a", 0.0),
    ("floor", None, False, "13a", 4.51688),
    ("floor", 0.1, False, "13a", 4.51688),
    ("floor", 0.5, False, "13a", 10.10),
    ("add-k", None, False, "13a", 14.882),
    ("add-k", 1, False, "13a", 14.882),
    ("add-k", 2, False, "13a", 21.389),
    ("exp", None, False, "none", 7.347),
    ("exp", None, False, "intl", 8.493),
    ("exp", None, False, "char", 40.8759),
    ("exp", None, True, "char", 42.0267),
]
ZERO_CASES = [("exp", None), ("none", None), ("floor", None), ("floor", 0.1), ("add-k", None), ("add-k", 1)]


@pytest.mark.parametrize("smooth_method, smooth_value, lowercase, tok, expected_score", SENTENCE_CASES)
def test_compat_sentence_bleu(smooth_method, smooth_value, lowercase, tok, expected_score):
    score = sentence_bleu(SYS, [REF], smooth_method=smooth_method, smooth_value=smooth_value, tokenize=tok,
                          lowercase=lowercase, use_effective_order=True)
    assert abs(score.score - expected_score) < 1e-3


@pytest.mark.parametrize("smooth_method, smooth_value, lowercase, tok, expected_score", SENTENCE_CASES)
def test_api_sentence_bleu(smooth_method, smooth_value, lowercase, tok, expected_score):
    score = M.sentence_bleu(SYS, [REF], tokenize=tok, lowercase=lowercase, smooth_method=smooth_method,
                            smooth_value=smooth_value, effective_order=True)
    assert abs(score - expected_score) < 1e-3


@pytest.mark.parametrize("smooth_method, smooth_value", ZERO_CASES)
def test_api_sentence_bleu_zero(smooth_method, smooth_value):
    score = M.sentence_bleu("this is a cat", ["okay thanks"], smooth_method=smooth_method,
                            smooth_value=smooth_value, effective_order=True)
    assert abs(score - 0.0) < 1e-3


# ---- Part 2: every field equals sacrebleu's on generated corpora --------------------------------------
def _load(name: str) -> dict:
    return json.loads((REFERENCE / name).read_text(encoding="utf-8"))


BLEU_OPTIONS = _load("bleu_options.json")


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-9 * max(1.0, abs(b))


def test_reference_covers_every_tokenizer_and_smoothing():
    seen = {(c["options"]["tokenize"], c["options"]["smooth_method"]) for c in BLEU_OPTIONS["corpus"]}
    assert seen == {(t, s) for t in TOKENIZERS for s in M.SMOOTH_DEFAULTS}
    orders = {c["options"]["max_ngram_order"] for c in BLEU_OPTIONS["corpus"]}
    assert orders >= {1, 2, 3, 4, 5, 6}
    assert {c["options"]["effective_order"] for c in BLEU_OPTIONS["corpus"]} == {False, True}
    assert {c["options"]["lowercase"] for c in BLEU_OPTIONS["corpus"]} == {False, True}
    assert any(None in s for c in BLEU_OPTIONS["corpus"] for s in c["ref_streams"])


@pytest.mark.parametrize("case", BLEU_OPTIONS["corpus"],
                         ids=[f"{c['options']['tokenize']}-{c['options']['smooth_method']}-{i}"
                              for i, c in enumerate(BLEU_OPTIONS["corpus"])])
def test_corpus_bleu_equals_sacrebleu(case):
    d = M.bleu_details(case["hypotheses"], ref_streams=case["ref_streams"], **case["options"])
    assert (d.counts, d.totals, d.sys_len, d.ref_len) == \
        (case["counts"], case["totals"], case["sys_len"], case["ref_len"])
    assert _close(d.score, case["score"]) and _close(d.bp, case["bp"])
    assert all(_close(a, b) for a, b in zip(d.precisions, case["precisions"], strict=True))
    assert d.signature == case["signature"]
    assert d.format() == case["line"]


def test_sentence_bleu_equals_sacrebleu():
    for case in BLEU_OPTIONS["sentence"]:
        d = M.bleu_details([case["hypothesis"]], [case["references"]], **case["options"])
        assert _close(d.score, case["score"]), case
        assert M.sentence_bleu(case["hypothesis"], case["references"], **case["options"]) == d.score
        assert (d.counts, d.totals) == (case["counts"], case["totals"])


def test_compute_bleu_equals_sacrebleu():
    for case in BLEU_OPTIONS["compute_bleu"]:
        correct, total = list(case["correct"]), list(case["total"])
        d = M.compute_bleu(correct, total, case["sys_len"], case["ref_len"], case["smooth_method"],
                           case["smooth_value"], case["effective_order"], case["max_ngram_order"])
        assert (correct, total) == (case["correct"], case["total"])  # not modified, unlike sacrebleu's
        assert _close(d.score, case["score"]) and _close(d.bp, case["bp"]), case
        assert all(_close(a, b) for a, b in zip(d.precisions, case["precisions"], strict=True))
        assert (d.counts, d.totals) == (case["counts"], case["totals"])


def test_tokenizers_equal_sacrebleu_on_random_unicode():
    fuzz = _load("tokenize_options.json")
    assert set(TOKENIZERS) <= set(fuzz)
    for name, tokenize in TOKENIZERS.items():
        got = [tokenize(s) for s in fuzz["strings"]]
        bad = [(s, g, w) for s, g, w in zip(fuzz["strings"], got, fuzz[name], strict=True) if g != w]
        assert not bad, f"{name}: {len(bad)} strings differ, first {bad[0]}"


def test_intl_and_char_tokenizers_by_hand():
    assert M.tokenize_intl("Hello, “world”! 3.14 and 1,000 cost $5 in 2024.") == \
        ["Hello", ",", "“", "world", "”", "!", "3.14", "and", "1,000", "cost", "$", "5", "in", "2024."]
    assert M.tokenize_intl("a..b") == ["a", ".", ".", "b"]
    assert M.tokenize_char("我爱 北京!") == ["我", "爱", "北", "京", "!"]
    assert M.bleu(["我爱北京天安门"], ["我爱北京天安门"], tokenize="char") == pytest.approx(100.0, rel=1e-12)


def test_smoothing_by_hand():
    # p = 3/4, 1/3, 0/2, 0/1 (4 words); floor: 0.1/2, 0.1/1; add-k (k=1) from order 2: 2/4, 1/3, 1/2
    correct, total = [3, 1, 0, 0], [4, 3, 2, 1]
    floor = M.compute_bleu(correct, total, 4, 4, "floor")
    assert floor.precisions == pytest.approx([75.0, 100 / 3, 5.0, 10.0], rel=1e-15)
    add_k = M.compute_bleu(correct, total, 4, 4, "add-k")
    assert (add_k.counts, add_k.totals) == ([3, 2, 1, 1], [4, 4, 3, 2])
    assert add_k.score == pytest.approx(100 * (3 / 4 * 2 / 4 * 1 / 3 * 1 / 2) ** 0.25, rel=1e-12)
    assert M.compute_bleu(correct, total, 4, 4, "none").score == 0.0
    exp = M.compute_bleu(correct, total, 4, 4, "exp")
    assert exp.precisions[2:] == pytest.approx([100 / (2 * 2), 100 / (4 * 1)], rel=1e-15)
    with pytest.raises(ValueError, match="smooth_method"):
        M.compute_bleu(correct, total, 4, 4, "laplace")
    with pytest.raises(ValueError, match="max_ngram_order"):
        M.compute_bleu(correct, total, 4, 4, max_ngram_order=3)


def test_printed_line_and_signature():
    d = M.bleu_details(["The cat sat on the mat."], ["The cat is on the mat."])
    assert d.signature == "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp"
    assert str(d) == ("BLEU|nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp = 48.89 85.7/66.7/40.0/25.0 "
                      "(BP = 1.000 ratio = 1.000 hyp_len = 7 ref_len = 7)")
    assert M.signature("var", "intl", True, True, "floor") == \
        "nrefs:var|case:lc|eff:yes|tok:intl|smooth:floor[0.10]"
