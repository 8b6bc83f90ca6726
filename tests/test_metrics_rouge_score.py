"""minigpt.metrics ROUGE against rouge-score 0.1.2: its own test cases through thin adapters, and its outputs.

Part 1 ports rouge-score's rouge_scorer_test.py and scoring_test.py (38 tests) with their inputs, expected
numbers and tolerances. The adapters below translate rouge-score's calls into minigpt's; note the argument
order: rouge-score scores (target, prediction), minigpt (hypothesis, reference). Nine of those tests read
rouge-score's testdata files (random letter soup, not shipped with the package or with minigpt): point
MINIGPT_ROUGE_TESTDATA at a copy of google-research's rouge/testdata to run them; they skip otherwise.

Part 2 compares with what rouge-score itself returned (lessons/12_evaluation/reference/rouge_options.json
and porter.npz, written by make_reference.py): every ROUGE type, the stemmer, several references, a char
tokenizer on Chinese, and BootstrapAggregator after np.random.seed(seed). rouge-score is never imported.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest

from minigpt import metrics as M
from minigpt.metrics.porter import measure

REFERENCE = Path(__file__).resolve().parents[1] / "lessons" / "12_evaluation" / "reference"
TESTDATA = Path(os.environ.get("MINIGPT_ROUGE_TESTDATA", "/nonexistent"))


# ---- thin adapters: rouge-score's objects -> minigpt's ------------------------------------------------
class Score(tuple):
    """rouge-score's Score namedtuple: .precision, .recall, .fmeasure over minigpt's (P, R, F)."""

    precision = property(lambda self: self[0])
    recall = property(lambda self: self[1])
    fmeasure = property(lambda self: self[2])


class RougeScorer:
    """rouge_scorer.RougeScorer(rouge_types, use_stemmer, split_summaries, tokenizer) over metrics.rouge."""

    def __init__(self, rouge_types, use_stemmer=False, split_summaries=False, tokenizer=None):
        if split_summaries:
            pytest.skip("split_summaries=True needs nltk's Punkt sentence model; minigpt splits on newlines")
        self.types, self.use_stemmer, self.tokenizer = list(rouge_types), use_stemmer, tokenizer or "default"

    def score(self, target, prediction):
        out = M.rouge(prediction, target, types=self.types, use_stemmer=self.use_stemmer,
                      tokenizer=self.tokenizer)
        return {k: Score(v) for k, v in out.items()}

    def score_multi(self, targets, prediction):
        out = M.rouge(prediction, list(targets), types=self.types, use_stemmer=self.use_stemmer,
                      tokenizer=self.tokenizer)
        return {k: Score(v) for k, v in out.items()}


class BootstrapAggregator:
    """scoring.BootstrapAggregator: collect per-example scores, then bootstrap_rouge with a seed."""

    def __init__(self, confidence_interval=0.95, n_samples=1000):
        self.ci, self.n, self.scores = confidence_interval, n_samples, []

    def add_scores(self, scores):
        self.scores.append(scores)

    def aggregate(self, seed=123):  # rouge-score's scoring_test seeds numpy's global generator with 123
        out = M.bootstrap_rouge(self.scores, self.ci, self.n, seed=seed)
        return {k: type(v)(*(Score(b) for b in v)) for k, v in out.items()}


def _testdata(name: str) -> Path:
    path = TESTDATA / name
    if not path.exists():
        pytest.skip(f"rouge-score's testdata/{name} is not here (set MINIGPT_ROUGE_TESTDATA)")
    return path


def lines(name: str) -> list[str]:
    with open(_testdata(name)) as f:
        return f.readlines()


# ---- Part 1: rouge_scorer_test.py ----------------------------------------------------------------------
@pytest.mark.parametrize("rouge_type", ["rougen", "rouge0", "rouge10"])
def test_invalid_rouge_types(rouge_type):
    with pytest.raises(ValueError):
        RougeScorer([rouge_type]).score("testing one two", "testing")


@pytest.mark.parametrize("rouge_type", ["rouge1", "rouge9", "rougeL", "rougeLsum"])
def test_valid_rouge_types(rouge_type):
    result = RougeScorer([rouge_type]).score("testing one two", "testing")
    assert list(result) == [rouge_type]


def test_rouge1():
    result = RougeScorer(["rouge1"]).score("testing one two", "testing")
    assert result["rouge1"] == pytest.approx((1, 1 / 3, 1 / 2), abs=1e-7)


def test_rouge1_multi():
    result = RougeScorer(["rouge1"]).score_multi(["testing one two"], "testing")
    assert result["rouge1"] == pytest.approx((1, 1 / 3, 1 / 2), abs=1e-7)


def test_rouge_all_multi():
    result = RougeScorer(["rouge1", "rouge2", "rougeL"]).score_multi(["first text", "first something"],
                                                                      "text first")
    assert result["rouge1"].fmeasure == pytest.approx(1, abs=1e-7)
    assert result["rouge2"].fmeasure == pytest.approx(0, abs=1e-7)
    assert result["rougeL"].fmeasure == pytest.approx(0.5, abs=1e-7)


@pytest.mark.parametrize("rouge_type", ["rouge1", "rouge2", "rougeL", "rougeLsum"])
def test_rouge_empty(rouge_type):
    result = RougeScorer([rouge_type]).score("testing one two", "")
    assert result[rouge_type] == pytest.approx((0, 0, 0), abs=1e-7)


def test_rouge2():
    result = RougeScorer(["rouge2"]).score("testing one two", "testing one")
    assert result["rouge2"] == pytest.approx((1, 1 / 2, 2 / 3), abs=1e-7)


def test_rouge_l_consecutive():
    result = RougeScorer(["rougeL"]).score("testing one two", "testing one")
    assert result["rougeL"] == pytest.approx((1, 2 / 3, 4 / 5), abs=1e-7)


def test_rouge_l_non_consecutive():
    result = RougeScorer(["rougeL"]).score("testing one two", "testing two")
    assert result["rougeL"] == pytest.approx((1, 2 / 3, 4 / 5), abs=1e-7)


def test_multiple_rouge_types():
    result = RougeScorer(["rouge1", "rougeL"]).score("testing one two", "testing one")
    assert sorted(result) == ["rouge1", "rougeL"]
    assert result["rouge1"] == pytest.approx((1, 2 / 3, 4 / 5), abs=1e-7)
    assert result["rougeL"] == pytest.approx((1, 2 / 3, 4 / 5), abs=1e-7)


def _against_rouge155(kind, stem, first, second):
    targets, predictions = lines("target.txt"), lines("prediction.txt")
    scorer = RougeScorer([kind], use_stemmer=stem)
    for i, (recall, precision, f) in enumerate((first, second)):
        result = scorer.score(targets[i], predictions[i])[kind]
        assert (round(result.recall - recall, 5), round(result.precision - precision, 5),
                round(result.fmeasure - f, 5)) == (0, 0, 0)


def test_rouge1_against_rouge155():
    _against_rouge155("rouge1", False, (0.40741, 0.68750, 0.51163), (0.40476, 0.65385, 0.50000))


def test_rouge1_against_rouge155_with_stemming():
    _against_rouge155("rouge1", True, (0.40741, 0.68750, 0.51163), (0.42857, 0.69231, 0.52941))


def test_rouge2_against_rouge155():
    _against_rouge155("rouge2", False, (0.30769, 0.53333, 0.39024), (0.29268, 0.48000, 0.36364))


def test_rouge2_against_rouge155_with_stemming():
    _against_rouge155("rouge2", True, (0.30769, 0.53333, 0.39024), (0.29268, 0.48000, 0.36364))


def test_rouge_l_against_rouge155():
    _against_rouge155("rougeL", False, (0.40741, 0.68750, 0.51163), (0.40476, 0.65385, 0.50000))


def test_rouge_lsum_against_rouge155_with_stemming():
    target = _testdata("pyrouge_files/target_multi.0.txt").read_text()
    prediction = _testdata("pyrouge_files/prediction_multi.0.txt").read_text()
    result = RougeScorer(["rougeLsum"], use_stemmer=True).score(target, prediction)["rougeLsum"]
    assert (round(result.recall - 0.36538, 5), round(result.precision - 0.66667, 5),
            round(result.fmeasure - 0.47205, 5)) == (0, 0, 0)


def test_rouge_lsum_sentence_splitting():
    scorer = RougeScorer(["rougeLsum"], use_stemmer=True)
    target, prediction = "First sentence.\nSecond Sentence.", "Second sentence.\nFirst Sentence."
    assert round(scorer.score(target, prediction)["rougeLsum"].fmeasure - 1.0, 5) == 0
    # Without newlines, summaries are treated as single sentences.
    target, prediction = target.replace("\n", " "), prediction.replace("\n", " ")
    assert round(scorer.score(target, prediction)["rougeLsum"].fmeasure - 0.50, 5) == 0
    # rouge-score then splits with nltk (split_summaries=True): the adapter skips here, so this test
    # counts as not passed in the tally (see the module docstring).
    scorer = RougeScorer(["rougeLsum"], use_stemmer=True, split_summaries=True)
    assert round(scorer.score(target, prediction)["rougeLsum"].fmeasure - 1.0, 5) == 0


def test_lcs_table():
    ref, c1 = [1, 2, 3, 4, 5], [2, 5, 3, 4]
    t = M.lcs_table(ref, c1)
    assert t[len(ref)][len(c1)] == 3
    assert M.lcs_indices(ref, c1) == [1, 2, 3]                       # _backtrack_norec(t, ref, c1)
    assert [ref[i] for i in M.lcs_indices(ref, c1)] == [2, 3, 4]
    c2 = [8, 9]
    assert M.lcs_table(ref, c2)[len(ref)][len(c2)] == 0
    assert M.lcs_indices(ref, c2) == []


def test_union_lcs():
    # rouge-score first checks its helper _find_union (a sorted set union of index lists); minigpt has
    # it inline in union_lcs, so the adapter checks the same unions through union_lcs on the paper's example.
    ref = [1, 2, 3, 4, 5]
    c1 = [1, 2, 6, 7, 8]  # lcs = [1, 2]
    c2 = [1, 3, 8, 9, 5]  # lcs = [1, 3, 5]
    assert M.union_lcs(ref, [c1, c2]) == [1, 2, 3, 5]
    assert M.union_lcs(ref, [c2, c1]) == [1, 2, 3, 5]


def test_summary_level_lcs():
    refs = [[1, 2, 3, 4, 5]]
    cans = [[1, 2, 6, 7, 8], [1, 3, 8, 9, 5]]
    precision, recall, f = M.rouge_lsum(cans, refs)  # _summary_level_lcs(refs, cans): reference first
    assert (recall, precision) == (0.8, 0.4)
    assert round(f - 0.5333, 3) == 0
    assert M.rouge_lsum([[]], [["reference"]])[1] == 0.0


def test_rouge_lsum():
    scorer = RougeScorer(["rougeLsum"])
    result = scorer.score("w1 w2 w3 w4 w5", "w1 w2 w6 w7 w8\nw1 w3 w8 w9 w5")["rougeLsum"]
    assert result.recall == pytest.approx(0.8, abs=1e-7)
    assert result.precision == pytest.approx(0.4, abs=1e-7)
    assert round(result.fmeasure - 0.5333, 3) == 0
    for target, prediction in (("w1 w2 w3 w4 w5", ""), ("", "w1"), ("w1 w2 w3 w4 w5", "/")):
        assert scorer.score(target, prediction)["rougeLsum"] == pytest.approx((0, 0, 0), abs=1e-3)


def test_rouge_lsum_large():
    prediction = _testdata("prediction_large.txt").read_text()
    target = _testdata("target_large.txt").read_text()
    result = RougeScorer(["rougeLsum"]).score(target, prediction)
    assert round(result["rougeLsum"].fmeasure - 0.533, 3) == 0


def test_rouge_tokenizer_init():
    result = RougeScorer(["rouge1"], tokenizer="default").score("this is a test", "this is a test")
    assert result["rouge1"].fmeasure == 1.0


# ---- Part 1: scoring_test.py ---------------------------------------------------------------------------
DELTA = 0.002


def assert_similar(precision, recall, fmeasure, aggregate, delta=DELTA):
    for want, k in ((precision, 0), (recall, 1), (fmeasure, 2)):
        got = (aggregate.low[k], aggregate.mid[k], aggregate.high[k])
        assert got == pytest.approx(want, abs=delta)


def _three_examples(confidence):
    aggregator = BootstrapAggregator(confidence_interval=confidence)
    aggregator.add_scores({"rouge1": (1, 1 / 3, 1 / 2)})
    aggregator.add_scores({"rouge1": (0, 0, 0)})
    aggregator.add_scores({"rouge1": (1, 1, 1)})
    return aggregator.aggregate()


def test_consistent_percentiles():
    assert_similar((1 / 3, 2 / 3, 3 / 3), (1 / 9, 4 / 9, 7 / 9), (1 / 6, 3 / 6, 5 / 6),
                   _three_examples(0.9)["rouge1"], delta=1e-8)


def test_large_confidence():
    assert_similar((2 / 3, 2 / 3, 2 / 3), (4 / 9, 4 / 9, 4 / 9), (3 / 6, 3 / 6, 3 / 6),
                   _three_examples(0.0)["rouge1"], delta=1e-8)


def test_multiple_rouge_types_aggregate():
    targets, predictions = lines("target_large.txt"), lines("prediction_large.txt")
    scorer, aggregator = RougeScorer(["rouge1", "rougeL"]), BootstrapAggregator()
    for target, prediction in zip(targets[:5], predictions[:5], strict=True):
        aggregator.add_scores(scorer.score(target, prediction))
    assert sorted(aggregator.aggregate()) == ["rouge1", "rougeL"]


def _large_aggregate(types, stem):
    targets, predictions = lines("target_large.txt"), lines("prediction_large.txt")
    scorer, aggregator = RougeScorer(types, use_stemmer=stem), BootstrapAggregator()
    for target, prediction in zip(targets, predictions, strict=True):
        aggregator.add_scores(scorer.score(target, prediction))
    return aggregator.aggregate()


def test_confidence_intervals_against_rouge155():
    result = _large_aggregate(["rouge1"], False)
    assert_similar((0.48695, 0.49879, 0.51131), (0.31106, 0.31950, 0.32849), (0.37614, 0.38554, 0.39581),
                   result["rouge1"])


def test_confidence_intervals_against_rouge155_with_stemming():
    result = _large_aggregate(["rouge1", "rougeL"], True)
    assert_similar((0.51027, 0.52434, 0.53788), (0.32563, 0.33580, 0.34548), (0.39380, 0.40524, 0.41661),
                   result["rouge1"])
    assert_similar((0.50759, 0.52104, 0.53382), (0.32418, 0.33377, 0.34362), (0.39157, 0.40275, 0.41383),
                   result["rougeL"])


def test_confidence_intervals_against_rouge155_with_stemming_multi_line():
    scorer = RougeScorer(["rouge1", "rouge2", "rougeLsum"], use_stemmer=True)
    aggregator = BootstrapAggregator()
    for i in range(250):
        target = _testdata(f"pyrouge_files/target_multi.{i}.txt").read_text()
        prediction = _testdata(f"pyrouge_files/prediction_multi.{i}.txt").read_text()
        aggregator.add_scores(scorer.score(target, prediction))
    result = aggregator.aggregate()
    assert_similar((0.58963, 0.59877, 0.60822), (0.37327, 0.38091, 0.38914), (0.45607, 0.46411, 0.47244),
                   result["rouge1"])
    assert_similar((0.35429, 0.36516, 0.37665), (0.22341, 0.23109, 0.23916), (0.27312, 0.28209, 0.29133),
                   result["rouge2"])
    assert_similar((0.58604, 0.59491, 0.60444), (0.37084, 0.37846, 0.38671), (0.45305, 0.46113, 0.46946),
                   result["rougeLsum"])


# ---- Part 2: equal to rouge-score's own outputs -------------------------------------------------------
ROUGE_OPTIONS = json.loads((REFERENCE / "rouge_options.json").read_text(encoding="utf-8"))


def _tokenizer(name):
    return "char" if name == "char" else "default"


def test_reference_covers_every_option():
    cases = ROUGE_OPTIONS["cases"]
    assert {t for c in cases for t in c["types"]} >= {"rouge1", "rouge2", "rouge3", "rouge9", "rougeL",
                                                      "rougeLsum"}
    assert {c["use_stemmer"] for c in cases} == {False, True}
    assert {c["tokenizer"] for c in cases} == {"default", "char"}
    assert any(len(c["references"]) > 1 for c in cases)
    assert any("\n" in c["hypothesis"] for c in cases)


@pytest.mark.parametrize("i", range(len(ROUGE_OPTIONS["cases"])))
def test_rouge_equals_rouge_score(i):
    case = ROUGE_OPTIONS["cases"][i]
    refs = case["references"]
    got = M.rouge(case["hypothesis"], refs[0] if len(refs) == 1 else refs, types=case["types"],
                  use_stemmer=case["use_stemmer"], tokenizer=_tokenizer(case["tokenizer"]))
    assert list(got) == case["types"]
    for kind, want in case["scores"].items():
        assert got[kind] == pytest.approx(want, rel=1e-12, abs=1e-15), kind


@pytest.mark.parametrize("i", range(len(ROUGE_OPTIONS["bootstrap"])))
def test_bootstrap_equals_rouge_score(i):
    case = ROUGE_OPTIONS["bootstrap"][i]
    got = M.bootstrap_rouge(case["scores"], case["confidence_interval"], case["n_samples"], seed=case["seed"])
    assert list(got) == list(case["aggregate"])  # types resampled in rouge-score's order
    for kind, bounds in case["aggregate"].items():
        for bound, want in bounds.items():
            assert getattr(got[kind], bound) == pytest.approx(want, rel=1e-12, abs=1e-15), (kind, bound)


def test_bootstrap_seed_and_generator():
    pairs = [("a b c", "a b d"), ("x y", "x z"), ("the cat", "a cat"), ("q", "q")]
    scores = [M.rouge(h, r) for h, r in pairs]
    a, b = M.bootstrap_rouge(scores, seed=7), M.bootstrap_rouge(scores, seed=7)
    assert a == b
    other = M.bootstrap_rouge(scores, seed=np.random.default_rng(7))  # a Generator: another stream
    assert set(other) == set(a)
    assert all(lo <= hi for lo, hi in zip(other["rouge1"].low, other["rouge1"].high, strict=True))
    mean = np.mean([s["rougeL"] for s in scores], axis=0)
    assert all(lo <= m <= hi for lo, m, hi in zip(a["rougeL"].low, mean, a["rougeL"].high, strict=True))
    with pytest.raises(ValueError, match="confidence_interval"):
        M.bootstrap_rouge(scores, confidence_interval=1.5)
    with pytest.raises(ValueError, match="no scores"):
        M.bootstrap_rouge([])


def test_porter_stemmer_equals_rouge_scores_on_a_vocabulary():
    with np.load(REFERENCE / "porter.npz", allow_pickle=False) as ref:
        words, stems, n_shakespeare = ref["words"].tolist(), ref["stems"].tolist(), int(ref["n_shakespeare"])
    assert n_shakespeare > 10000 and len(words) > n_shakespeare + 3000
    got = [M.porter_stem(w) for w in words]
    bad = [(w, g, s) for w, g, s in zip(words, got, stems, strict=True) if g != s]
    assert not bad, f"{len(bad)} of {len(words)} words stem differently, e.g. {bad[:5]}"


def test_porter_stemmer_by_hand():
    cases = {"caresses": "caress", "ponies": "poni", "ties": "tie", "cats": "cat", "agreed": "agre",
             "hopping": "hop", "filing": "file", "happy": "happi", "relational": "relat", "goodness": "good",
             "adoption": "adopt", "controll": "control", "dying": "die", "running": "run",
             "generously": "gener"}
    assert {w: M.porter_stem(w) for w in cases} == cases
    assert measure("tree") == 0 and measure("trouble") == 1 and measure("troubles") == 2


def test_stemmer_applies_to_words_longer_than_3():
    assert M.rouge_tokenize("The cats were running, sadly.", use_stemmer=True) == \
        ["the", "cat", "were", "run", "sadli"]
    assert M.rouge_tokenize("was has", use_stemmer=True) == ["was", "has"]  # 3 letters: not stemmed
    r = M.rouge("the cats are running", "the cat is running", types=("rouge1",), use_stemmer=True)
    assert r["rouge1"] == pytest.approx((3 / 4, 3 / 4, 3 / 4))
