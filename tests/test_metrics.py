"""minigpt.metrics: BLEU, ROUGE and perplexity on cases worked by hand, edge cases, and properties.

The agreement with sacrebleu and rouge-score themselves is checked by lesson 12's check.py and by
test_metrics_sacrebleu.py / test_metrics_rouge_score.py against references those libraries wrote (tests never
import them); here every expected number is derived by hand.
"""

import math
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minigpt import metrics as M

# ---- BLEU: the pieces ---------------------------------------------------------------------------------


def test_ngram_counts_and_clipping():
    assert M.ngram_counts(["a", "b", "a", "b"], 2) == {("a", "b"): 2, ("b", "a"): 1}
    assert M.ngram_counts(["a"], 2) == {}
    # Papineni's example: "the" seven times against references with at most two "the" -> 2 of 7
    hyp = ["the"] * 7
    refs = [["the", "cat", "is", "on", "the", "mat"], ["there", "is", "a", "cat", "on", "the", "mat"]]
    assert M.modified_precision(hyp, refs, 1) == (2, 7)
    assert M.modified_precision(hyp, refs, 2) == (0, 6)


def test_closest_reference_length_prefers_the_shorter_on_a_tie():
    assert M.closest_ref_len(5, [4, 6]) == 4
    assert M.closest_ref_len(5, [6, 4]) == 4
    assert M.closest_ref_len(5, [9, 6, 2]) == 6


def test_brevity_penalty():
    assert M.brevity_penalty(5, 5) == 1.0
    assert M.brevity_penalty(7, 5) == 1.0
    assert M.brevity_penalty(3, 5) == pytest.approx(math.exp(1 - 5 / 3), rel=1e-15)
    assert M.brevity_penalty(0, 5) == 0.0
    assert M.brevity_penalty(0, 0) == 1.0


def test_bleu_worked_example():
    # hyp  The cat sat on the mat .   ref  The cat is on the mat .   (13a splits the period off)
    # p1 = 6/7, p2 = 4/6, p3 = 2/5, p4 = 1/4, equal lengths -> BP = 1
    d = M.bleu_details(["The cat sat on the mat."], ["The cat is on the mat."])
    assert d.counts == [6, 4, 2, 1] and d.totals == [7, 6, 5, 4]
    assert (d.sys_len, d.ref_len, d.bp) == (7, 7, 1.0)
    want = 100 * (6 / 7 * 4 / 6 * 2 / 5 * 1 / 4) ** 0.25
    assert d.score == pytest.approx(want, rel=1e-12)
    assert round(d.score, 2) == 48.89


def test_exp_smoothing_halves_for_each_order_without_a_match():
    # hyp a b c d e vs ref a b x d e: p1 = 4/5, p2 = 2/4, no 3-gram or 4-gram matches:
    # p3 = 1 / (2 * 3), p4 = 1 / (4 * 2)
    d = M.bleu_details(["a b c d e"], ["a b x d e"])
    assert d.counts == [4, 2, 0, 0]
    assert d.precisions == pytest.approx([80.0, 50.0, 100 / 6, 100 / 8], rel=1e-15)
    want = 100 * (0.8 * 0.5 / 6 / 8) ** 0.25
    assert d.score == pytest.approx(want, rel=1e-12)


def test_short_hypotheses_score_zero_at_corpus_level_but_not_as_sentences():
    # two words have no 3-grams: corpus BLEU (max order 4) gives 0, sentence BLEU (effective order) 100
    assert M.bleu(["the cat"], ["the cat"]) == 0.0
    assert M.sentence_bleu("the cat", "the cat") == pytest.approx(100.0, rel=1e-12)  # exp(log 100)
    assert M.sentence_bleu("the cat", ["a dog", "the cat"]) == pytest.approx(100.0, rel=1e-12)


def test_brevity_penalty_enters_the_score():
    d = M.bleu_details(["a b c d"], ["a b c d e f"])
    assert d.precisions == [100.0] * 4
    assert d.score == pytest.approx(100 * math.exp(1 - 6 / 4), rel=1e-12)


def test_statistics_are_summed_over_the_corpus_before_scoring():
    hyps, refs = ["a b c d", "e f g h i"], ["a b c d", "e f x h i"]
    d = M.bleu_details(hyps, refs)
    assert d.counts == [4 + 4, 3 + 2, 2 + 0, 1 + 0] and d.totals == [9, 7, 5, 3]
    corpus = 100 * (8 / 9 * 5 / 7 * 2 / 5 * 1 / 3) ** 0.25
    assert d.score == pytest.approx(corpus, rel=1e-12)
    mean_of_sentences = (M.bleu(hyps[:1], refs[:1]) + M.bleu(hyps[1:], refs[1:])) / 2
    assert abs(d.score - mean_of_sentences) > 1  # not the same thing


def test_empty_hypothesis_and_no_overlap_score_zero():
    d = M.bleu_details([""], ["a b c"])
    assert (d.score, d.bp, d.sys_len, d.ref_len) == (0.0, 0.0, 0, 3)
    assert M.bleu(["x y z w"], ["a b c d"]) == 0.0
    assert M.bleu([""], [""]) == 0.0
    assert M.sentence_bleu("", "a b") == 0.0


def test_longer_hypothesis_has_no_penalty_but_lower_precision():
    d = M.bleu_details(["a b c d e f g h"], ["a b c d"])
    assert d.bp == 1.0 and d.precisions[0] == 50.0


def test_several_references_in_both_shapes():
    hyps = ["the cat is on the mat", "there is a dog here"]
    refs_a = ["the cat sat on the mat", "a dog is here"]
    refs_b = ["there is a cat on the mat", "there is a dog here"]
    by_segment = M.bleu(hyps, [[a, b] for a, b in zip(refs_a, refs_b, strict=True)])
    by_stream = M.bleu(hyps, ref_streams=[refs_a, refs_b])
    assert by_segment == by_stream
    assert by_segment > M.bleu(hyps, refs_a)  # a second reference can only add matches here
    # max over references, not sum: a 1-gram counts at most as often as in the best single reference
    assert M.modified_precision(["a", "a", "a"], [["a", "b"], ["a", "c"]], 1) == (1, 3)
    # None = no reference for this segment in that stream (sacrebleu's variable number of references)
    assert M.bleu(hyps, ref_streams=[refs_a, [refs_b[0], None]]) == M.bleu(hyps, [[refs_a[0], refs_b[0]],
                                                                                   refs_a[1]])


def test_bad_bleu_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="empty corpus"):
        M.bleu([], [])
    with pytest.raises(ValueError, match="2 hypotheses but 1"):
        M.bleu(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="ref_streams"):
        M.bleu(["a", "b"], [["a", "b"]] * 3)
    with pytest.raises(ValueError, match="stream 1 has 1 lines"):
        M.bleu(["a", "b"], ref_streams=[["a", "b"], ["a"]])
    with pytest.raises(ValueError, match="no reference"):
        M.bleu(["a"], [[]])
    with pytest.raises(ValueError, match="exactly one"):
        M.bleu(["a"], ["a"], ref_streams=[["a"]])
    with pytest.raises(TypeError, match="list of strings"):
        M.bleu("a b c", ["a b c"])
    with pytest.raises(ValueError, match="unknown BLEU tokenizer"):
        M.bleu(["a"], ["a"], tokenize="ja-mecab")


def test_lowercase_option():
    assert M.bleu(["The Cat Sat On Mats"], ["the cat sat on mats"]) < 100
    lowered = M.bleu(["The Cat Sat On Mats"], ["the cat sat on mats"], lowercase=True)
    assert lowered == pytest.approx(100.0, rel=1e-12)


# ---- BLEU: tokenizers --------------------------------------------------------------------------------


def test_13a_tokenizer():
    assert M.tokenize_13a('Hello, world! It\'s 3.14-5 "x".') == \
        ["Hello", ",", "world", "!", "It's", "3.14", "-", "5", '"', "x", '"', "."]
    assert M.tokenize_13a("1,000 people; well-known &amp; e-mail.") == \
        ["1,000", "people", ";", "well-known", "&", "e-mail", "."]
    assert M.tokenize_13a(".5 and 5.") == [".", "5", "and", "5", "."]
    assert M.tokenize_13a("co-\noperate <skipped>") == ["cooperate"]
    assert M.tokenize_13a("") == []


def test_zh_tokenizer():
    assert M.tokenize_zh("我爱北京天安门。") == ["我", "爱", "北", "京", "天", "安", "门", "。"]
    assert M.tokenize_zh("GPT-2模型，很好!") == ["GPT-2", "模", "型", "，", "很", "好", "!"]
    assert M.tokenize_zh(".5") == [".5"]  # no padding, unlike 13a
    # sacrebleu's table makes U+2001..U+2A6D "Chinese" (typo'd Extension B range): curly quotes split off
    assert M.tokenize_zh("“hi”") == ["“", "hi", "”"]
    assert M.is_chinese_char("\u2001") and not M.is_chinese_char("\u2000")
    assert not M.is_chinese_char("\U00020000")  # Extension B itself is not covered
    assert M.bleu(["我爱北京天安门"], ["我爱北京天安门"], tokenize="zh") == pytest.approx(100.0, rel=1e-12)
    assert M.bleu(["我爱北京天安门"], ["我爱北京天安门"]) == 0.0  # 13a: one 'word', no 2-grams


# ---- ROUGE ----------------------------------------------------------------------------------------------


def test_rouge_tokenizer():
    assert M.rouge_tokenize("The cat's 3 HATS—new!") == ["the", "cat", "s", "3", "hats", "new"]
    assert M.rouge_tokenize("café") == ["caf"]
    assert M.rouge_tokenize("我爱北京") == []
    assert M.rouge_tokenize("我 爱 B", "char") == ["我", "爱", "B"]
    with pytest.raises(ValueError, match="unknown ROUGE tokenizer"):
        M.rouge_tokenize("a", "word")


def test_lcs_length():
    assert M.lcs_length(list("ABCBDAB"), list("BDCABA")) == 4  # CLRS's example: BCBA
    assert M.lcs_length([], ["a"]) == 0
    assert M.lcs_length(["a", "b"], ["b", "a"]) == 1


def test_rouge_worked_example():
    # hyp: the cat sat on the mat (6)   ref: the cat is on the mat (6)
    r = M.rouge("the cat sat on the mat", "the cat is on the mat")
    assert r["rouge1"] == pytest.approx((5 / 6, 5 / 6, 5 / 6), rel=1e-15)  # the x2, cat, on, mat
    assert r["rouge2"] == pytest.approx((3 / 5, 3 / 5, 3 / 5), rel=1e-15)  # the cat, on the, the mat
    assert r["rougeL"] == pytest.approx((5 / 6, 5 / 6, 5 / 6), rel=1e-15)  # the cat on the mat


def test_rouge_precision_and_recall_follow_the_argument_order():
    # hyp shorter than ref: every hyp word is right (P = 1) but it covers half the reference (R = 1/2)
    r = M.rouge("the cat", "the cat is here")
    assert r["rouge1"] == pytest.approx((1.0, 0.5, 2 / 3), rel=1e-15)
    assert r["rougeL"] == pytest.approx((1.0, 0.5, 2 / 3), rel=1e-15)
    assert M.rouge("the cat is here", "the cat")["rouge1"] == pytest.approx((0.5, 1.0, 2 / 3), rel=1e-15)


def test_rouge_lcs_rewards_order_and_ngrams_count_repeats_once():
    r = M.rouge("mat the on sat cat the", "the cat sat on the mat")
    # same words, no shared bigram; the longest in-order subsequence is "the ... sat ... the": 3 of 6
    assert r["rouge1"][2] == 1.0 and r["rouge2"][2] == 0.0 and r["rougeL"][2] == pytest.approx(3 / 6)
    assert M.rouge("the the the the", "the cat")["rouge1"] == pytest.approx((1 / 4, 1 / 2, 1 / 3))


def test_rouge_edge_cases():
    zero = (0.0, 0.0, 0.0)
    assert M.rouge("", "the cat") == {"rouge1": zero, "rouge2": zero, "rougeL": zero}
    assert M.rouge("dogs bark", "the cat")["rouge1"] == zero
    assert M.rouge("one", "one")["rouge2"] == zero  # no bigrams on either side
    assert M.rouge("我爱北京", "我爱北京")["rougeL"] == zero  # the default tokenizer drops Chinese
    assert M.rouge("我爱北京", "我爱天津", tokenizer="char")["rouge1"] == pytest.approx((0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="invalid ROUGE type"):
        M.rouge("a", "a", types=("rouge10",))
    with pytest.raises(ValueError, match="at least one reference"):
        M.rouge("a", [])


def test_rouge_several_references_keeps_the_best_f_per_type():
    r = M.rouge("the cat sat", ["a dog sat", "the cat slept", "the cat sat down"])
    assert r["rouge1"] == M.rouge("the cat sat", "the cat sat down")["rouge1"]
    assert r["rouge2"] == M.rouge("the cat sat", "the cat sat down")["rouge2"]


# ---- properties --------------------------------------------------------------------------------------

word = st.sampled_from(["the", "cat", "sat", "on", "mat", "a", ".", ",", "3", "dog", "It's"])
sentence = st.lists(word, max_size=12).map(" ".join)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(sentence, sentence), min_size=1, max_size=4))
def test_bleu_is_between_0_and_100(pairs):
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    d = M.bleu_details(hyps, refs)
    assert 0.0 <= d.score <= 100.0 + 1e-9
    assert 0.0 <= d.bp <= 1.0
    assert 0.0 <= M.sentence_bleu(hyps[0], refs[0]) <= 100.0 + 1e-9


@settings(max_examples=50, deadline=None)
@given(st.lists(st.lists(word, min_size=4, max_size=12).map(" ".join), min_size=1, max_size=4))
def test_identical_text_scores_100(texts):
    assert M.bleu(texts, texts) == pytest.approx(100.0, rel=1e-12)
    assert M.sentence_bleu(texts[0], texts[0]) == pytest.approx(100.0, rel=1e-12)
    n_words = len(M.rouge_tokenize(texts[0]))  # ROUGE drops punctuation: "the . . ." is one word
    for kind, score in M.rouge(texts[0], texts[0]).items():
        has_ngrams = n_words >= (2 if kind == "rouge2" else 1)
        assert score == pytest.approx((1.0, 1.0, 1.0) if has_ngrams else (0.0, 0.0, 0.0))


@settings(max_examples=60, deadline=None)
@given(sentence, sentence)
def test_rouge_is_in_0_1_and_swapping_swaps_precision_and_recall(hyp, ref):
    a, b = M.rouge(hyp, ref), M.rouge(ref, hyp)
    for kind in M.rouge(hyp, ref):
        p, r, f = a[kind]
        assert 0.0 <= p <= 1.0 and 0.0 <= r <= 1.0 and 0.0 <= f <= 1.0
        assert min(p, r) - 1e-12 <= f <= max(p, r) + 1e-12
        assert b[kind] == pytest.approx((r, p, f), rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(sentence, sentence)
def test_rouge_lsum_of_one_line_is_rouge_l(hyp, ref):
    # one sentence each: the union of one LCS is that LCS, and its tokens never exceed either side's counts
    r = M.rouge(hyp, ref, types=("rougeL", "rougeLsum"), use_stemmer=True)
    assert r["rougeLsum"] == pytest.approx(r["rougeL"], rel=1e-12)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(sentence, sentence), min_size=1, max_size=4), st.integers(1, 6))
def test_smoothing_orders(pairs, order):
    hyps, refs = [h for h, _ in pairs], [r for _, r in pairs]
    score = {m: M.bleu(hyps, refs, smooth_method=m, max_ngram_order=order) for m in M.SMOOTH_DEFAULTS}
    # smoothing only ever raises a zero precision: none <= exp, floor; add-k with k = 0 is no smoothing
    assert score["none"] <= score["exp"] + 1e-9 and score["none"] <= score["floor"] + 1e-9
    assert M.bleu(hyps, refs, smooth_method="add-k", smooth_value=0, max_ngram_order=order) == score["none"]
    d = M.bleu_details(hyps, refs, max_ngram_order=order)
    assert len(d.counts) == len(d.totals) == len(d.precisions) == order


def _lcs_brute_force(a, b):
    """Longest common subsequence by trying every subsequence of a (a is tiny)."""
    from itertools import combinations

    for k in range(len(a), 0, -1):
        for keep in combinations(range(len(a)), k):
            sub, j = [a[i] for i in keep], 0
            for x in b:
                if j < k and x == sub[j]:
                    j += 1
            if j == k:
                return k
    return 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from("abc"), max_size=7), st.lists(st.sampled_from("abc"), max_size=9))
def test_lcs_matches_brute_force(a, b):
    assert M.lcs_length(a, b) == _lcs_brute_force(a, b) == M.lcs_length(b, a)


# ---- perplexity with fake models whose answers we know -----------------------------------------------


class BigramModel:
    """logits for the next token depend only on the current one: logits[b, t] = log_probs[idx[b, t]]."""

    def __init__(self, probs: np.ndarray, block_size: int):
        self.log_probs = np.log(probs)                 # (V, V)
        self.config = SimpleNamespace(block_size=block_size, vocab_size=len(probs))
        self.calls: list[tuple[int, ...]] = []

    def forward(self, idx: np.ndarray) -> np.ndarray:
        assert idx.shape[1] <= self.config.block_size
        self.calls.append(idx.shape)
        return self.log_probs[idx]                     # (B, T, V)


class ContextCountModel:
    """Sees only how many tokens of context it has: P(token 0 | c tokens) = c / (c + V - 1)."""

    def __init__(self, vocab_size: int, block_size: int):
        self.V = vocab_size
        self.config = SimpleNamespace(block_size=block_size)

    def forward(self, idx: np.ndarray) -> np.ndarray:
        B, T = idx.shape
        logits = np.zeros((B, T, self.V))              # (B, T, V)
        logits[:, :, 0] = np.log(np.arange(1, T + 1))  # position t has t + 1 tokens of context
        return logits


def test_uniform_model_has_perplexity_vocab_size():
    model = BigramModel(np.full((7, 7), 1 / 7), block_size=4)
    ids = np.random.default_rng(0).integers(0, 7, size=50)
    assert M.perplexity(model, ids) == pytest.approx(7.0, rel=1e-12)


def test_bigram_perplexity_by_hand():
    probs = np.array([[0.5, 0.25, 0.25], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6]])
    model = BigramModel(probs, block_size=3)
    ids = np.array([0, 1, 1, 2, 2, 0, 0])  # pairs: 0>1 .25, 1>1 .8, 1>2 .1, 2>2 .6, 2>0 .2, 0>0 .5
    want = math.exp(-(math.log(0.25) + math.log(0.8) + math.log(0.1) + math.log(0.6) + math.log(0.2)
                      + math.log(0.5)) / 6)
    for stride in (None, 1, 2, 3):
        for batch_size in (1, 2, 8):
            assert M.perplexity(model, ids, stride=stride, batch_size=batch_size) == \
                pytest.approx(want, rel=1e-12)
    nll, count = M.mean_nll(model, ids)
    assert count == 6 and math.exp(nll) == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("stride, contexts", [
    (3, [1, 2, 3, 1, 2]),  # disjoint windows: context restarts at token 3
    (2, [1, 2, 3, 2, 3]),
    (1, [1, 2, 3, 3, 3]),  # every token after the first window sees a full block
])
def test_windows_give_each_token_the_context_worked_out_by_hand(stride, contexts):
    # 6 ids, block 3: the context each of the 5 targets gets, counted on paper
    V = 4
    model = ContextCountModel(V, block_size=3)
    want = math.exp(-np.mean([math.log(c / (c + V - 1)) for c in contexts]))
    assert M.perplexity(model, np.zeros(6, dtype=np.int64), stride=stride) == pytest.approx(want, rel=1e-12)


def test_smaller_stride_means_more_context_and_lower_perplexity():
    model = ContextCountModel(5, block_size=8)
    ids = np.zeros(100, dtype=np.int64)
    assert M.perplexity(model, ids, stride=2) < M.perplexity(model, ids, stride=8)


@settings(max_examples=80, deadline=None)
@given(st.integers(2, 60), st.integers(1, 9), st.data())
def test_every_token_is_scored_exactly_once(n, block, data):
    stride = data.draw(st.integers(1, block))
    windows = M.sliding_windows(n, block, stride)
    scored = []
    for start, stop, skip in windows:
        assert 0 < stop - start <= block and 0 <= skip < stop - start
        targets = list(range(start + 1, stop + 1))[skip:]
        scored += targets
        if start > 0:  # context of the first scored target: at least block - stride + 1 tokens
            assert targets[0] - start >= min(block - stride + 1, targets[0])
    assert scored == list(range(1, n))


def test_full_windows_are_batched():
    model = BigramModel(np.full((3, 3), 1 / 3), block_size=4)
    M.perplexity(model, np.zeros(23, dtype=np.int64), batch_size=3)  # 22 targets: 5 full windows + 2
    assert model.calls == [(3, 4), (2, 4), (1, 2)]


def test_perplexity_bad_inputs():
    model = BigramModel(np.full((3, 3), 1 / 3), block_size=4)
    with pytest.raises(ValueError, match="at least 2 tokens"):
        M.perplexity(model, np.array([1]))
    with pytest.raises(ValueError, match="1-D"):
        M.perplexity(model, np.zeros((2, 5), dtype=np.int64))
    with pytest.raises(ValueError, match="1-D"):
        M.perplexity(model, np.zeros(5))
    with pytest.raises(ValueError, match="stride"):
        M.perplexity(model, np.zeros(5, dtype=np.int64), stride=5)


def test_perplexity_of_the_real_gpt_is_exp_of_its_loss():
    # N = 3 * block + 1 ids with stride = block: three disjoint full windows, so the mean over windows is
    # the mean loss of the batch (3, block) — an independent route through minigpt.model's own loss.
    model_mod = pytest.importorskip("minigpt.model")
    block = 8
    cfg = model_mod.GPTConfig(vocab_size=13, block_size=block, n_layer=1, n_head=2, n_embd=8)
    gpt = model_mod.GPT(cfg, seed=3, dtype=np.float64)
    ids = np.random.default_rng(1).integers(0, 13, size=3 * block + 1)
    x, y = ids[:-1].reshape(3, block), ids[1:].reshape(3, block)
    assert M.perplexity(gpt, ids, batch_size=2) == pytest.approx(math.exp(gpt.loss(x, y)), rel=1e-10)
