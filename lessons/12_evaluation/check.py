"""Lesson 12's checks: BLEU, ROUGE and perplexity against sacrebleu, rouge-score and torch (reference/).

The implementation under test provides the building blocks, on token lists:
    ngram_counts, modified_precision, closest_ref_len, brevity_penalty, corpus_bleu   (BLEU)
    lcs_length, rouge_n, rouge_l                                                       (ROUGE)
    perplexity(model, ids, stride)                                                     (sliding windows)
The learner's exercise.py has exactly these. minigpt.metrics has them too, plus the text-level API
(bleu, sentence_bleu, bleu_details, rouge, the 13a / zh tokenizers): those checks run when the
implementation defines them and are skipped otherwise.

The tokens fed to the building blocks are the ones sacrebleu's and rouge-score's own tokenizers produced,
so a learner's BLEU is compared with sacrebleu's score on exactly the same words.

Tolerance: 1e-9 (relative and absolute) on every score. Both sides do the same few float operations on
small integers, in an order that may differ, so they agree to ~1e-14; 1e-9 is the bar the issue sets.
Counts, lengths and tokens must be exactly equal.
"""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np

from minigpt.course.grader import Step, load_reference

IMPL = "minigpt.metrics"

TOL = {"rtol": 1e-9, "atol": 1e-9}
BLOCKS = ("ngram_counts", "modified_precision", "closest_ref_len", "brevity_penalty", "corpus_bleu")


# ---- BLEU on tokens ---------------------------------------------------------------------------------
def _ngrams(impl, g) -> None:
    for item in load_reference(__file__, "ngrams.json"):
        tokens = item["tokens"]
        with g.case(f"ngram_counts of {tokens}", pitfall="ngrams"):
            for n in range(1, 5):
                want = {tuple(gram): c for gram, c in item["counts"] if len(gram) == n}
                got = dict(impl.ngram_counts(tokens, n))
                g.equal(f"n = {n}", sorted(got.items()), sorted(want.items()))


def _statistics(impl, case: dict, flip: bool = False):
    """Corpus statistics from the learner's pieces; flip: each segment's references in reverse order."""
    counts, totals, ref_len = [0] * 4, [0] * 4, 0
    for hyp, seg_refs in zip(case["hyp_tokens"], case["ref_tokens"], strict=True):
        seg_refs = list(reversed(seg_refs)) if flip else seg_refs
        for n in range(1, 5):
            matches, total = impl.modified_precision(hyp, seg_refs, n)
            counts[n - 1] += matches
            totals[n - 1] += total
        ref_len += impl.closest_ref_len(len(hyp), [len(r) for r in seg_refs])
    return counts, totals, ref_len


def _clipping(impl, g) -> None:
    ref = load_reference(__file__, "bleu.json")
    for case in ref["corpus"]:
        with g.case(f"modified_precision, {case['name']}", pitfall="clip_sum"):
            counts, totals, _ = _statistics(impl, case)
            g.equal("clipped matches summed over segments, n = 1..4", counts, case["counts"])
            g.equal("hypothesis n-grams, n = 1..4", totals, case["totals"])


def _lengths(impl, g) -> None:
    ref = load_reference(__file__, "bleu.json")
    for case in ref["corpus"]:
        if not any(len(r) > 1 for r in case["ref_tokens"]):
            continue                                   # one reference per segment: nothing to choose
        for flip in (False, True):
            order = "references reversed" if flip else "references as listed"
            with g.case(f"closest_ref_len, {case['name']} ({order})", pitfall="tie"):
                _, _, ref_len = _statistics(impl, case, flip)
                g.equal("reference length (closest per segment)", ref_len, case["ref_len"])
    with g.case("closest_ref_len: a tie goes to the shorter reference, whatever the order", pitfall="tie"):
        for hyp_len, lens, want in ((5, [4, 6], 4), (5, [6, 4], 4), (5, [3, 7, 6], 6), (5, [7, 3], 3),
                                    (10, [12, 8, 9], 9)):
            g.equal(f"closest_ref_len({hyp_len}, {lens})", impl.closest_ref_len(hyp_len, lens), want)
    for case in ref["corpus"]:
        with g.case(f"brevity_penalty, {case['name']}", pitfall="bp"):
            bp = impl.brevity_penalty(case["sys_len"], case["ref_len"])
            g.close("brevity_penalty", bp, case["bp"], **TOL)


def _corpus_bleu(impl, g) -> None:
    ref = load_reference(__file__, "bleu.json")
    for case in ref["corpus"]:
        with g.case(f"corpus_bleu, {case['name']}", pitfall=("sentence_mean", "short")):
            got = impl.corpus_bleu(case["hyp_tokens"], case["ref_tokens"])
            g.close("corpus_bleu", got, case["score"], **TOL)
    for case in ref["sentence"]:
        with g.case(f"corpus_bleu(effective_order=True) = sentence BLEU, {case['name']}", pitfall="short"):
            got = impl.corpus_bleu([case["hyp_tokens"]], [case["ref_tokens"]], effective_order=True)
            g.close("score", got, case["score"], **TOL)
    with g.case("corpus_bleu refuses what it cannot score", pitfall="brackets"):
        with g.raises("corpus_bleu of an empty corpus raises ValueError (sacrebleu: "
                      f"{ref['empty_corpus_in_sacrebleu']})", ValueError):
            impl.corpus_bleu([], [])
        with g.raises("corpus_bleu with 2 hypotheses and 1 reference entry raises ValueError", ValueError):
            impl.corpus_bleu([["a"], ["b"]], [[["a"]]])


# ---- BLEU on text (minigpt's API) --------------------------------------------------------------------
def _bleu_text(impl, g, ref: dict) -> None:
    if not all(hasattr(impl, f) for f in ("bleu", "bleu_details", "sentence_bleu")):
        g.skip("bleu / bleu_details / sentence_bleu on text", "this implementation works on tokens only "
               "(minigpt.metrics adds sacrebleu's tokenizers and the text API): define them to have them "
               "graded")
        return
    for case in ref["corpus"]:
        opts = {"tokenize": case["tokenize"], "lowercase": case["lowercase"]}
        hyps, streams = case["hypotheses"], case["ref_streams"]
        with g.case(f"bleu, {case['name']}"):
            d = impl.bleu_details(hyps, ref_streams=streams, **opts)
            g.close("score", d.score, case["score"], **TOL)
            g.close("precisions", d.precisions, case["precisions"], **TOL)
            g.close("bp", d.bp, case["bp"], **TOL)
            g.equal("sys_len, ref_len", (d.sys_len, d.ref_len), (case["sys_len"], case["ref_len"]))
            g.equal("counts, totals", (d.counts, d.totals), (case["counts"], case["totals"]))
            per_segment = [[r for r in refs if r is not None] for refs in zip(*streams, strict=True)]
            per_segment = [refs[0] if len(refs) == 1 else refs for refs in per_segment]
            g.close("bleu(hyps, references) with one entry per segment", impl.bleu(hyps, per_segment, **opts),
                    case["score"], **TOL)
    for case in ref["sentence"]:
        with g.case(f"sentence_bleu, {case['name']}"):
            got = impl.sentence_bleu(case["hypothesis"], case["references"])
            g.close("score", got, case["score"], **TOL)
    with g.raises("bleu of an empty corpus raises ValueError", ValueError):
        impl.bleu([], [])


def _tokenizers(impl, g) -> None:
    if not all(hasattr(impl, f) for f in ("tokenize_13a", "tokenize_zh", "is_chinese_char")):
        g.skip("13a / zh tokenizers", "this implementation defines no tokenize_13a / tokenize_zh: define "
               "them to have them graded")
        return
    ref = load_reference(__file__, "tokenize.json")
    with g.case("tokenize_13a"):
        for text, want in zip(ref["strings"], ref["13a"], strict=True):
            g.equal(repr(text)[:40], impl.tokenize_13a(text), want)
    with g.case("tokenize_zh"):
        for text, want in zip(ref["strings"], ref["zh"], strict=True):
            g.equal(repr(text)[:40], impl.tokenize_zh(text), want)
    with g.case("is_chinese_char on every code point up to U+2FFFF"):
        codes = np.arange(0x30000)
        want = np.zeros(len(codes), dtype=bool)
        for lo, hi in ref["zh_chinese_ranges"]:
            want[lo:hi + 1] = True
        got = np.array([impl.is_chinese_char(chr(c)) for c in codes])
        wrong = np.flatnonzero(got != want)
        g.true(f"agrees with sacrebleu's zh table ({int(want.sum())} code points are 'Chinese')",
               len(wrong) == 0, f"first disagreement at U+{wrong[0]:04X}" if len(wrong) else "")
        g.true("and nothing beyond (sacrebleu's table stops at U+FFEF)",
               not any(impl.is_chinese_char(chr(c)) for c in (0x20000, 0x2A6D6, 0x2F800, 0x10FFFF)))


# ---- ROUGE ------------------------------------------------------------------------------------------
def _lcs(impl, g) -> None:
    ref = load_reference(__file__, "rouge.json")
    for case in ref["single"]:
        with g.case(f"lcs_length, {case['name']}", pitfall="lcs"):
            g.equal("lcs_length", impl.lcs_length(case["hyp_tokens"], case["ref_tokens"]), case["lcs"])


def _rouge(impl, g) -> None:
    ref = load_reference(__file__, "rouge.json")
    for case in ref["single"]:
        hyp, tgt = case["hyp_tokens"], case["ref_tokens"]
        with g.case(f"ROUGE, {case['name']}", pitfall="order"):
            for kind, n in (("rouge1", 1), ("rouge2", 2)):
                g.close(f"rouge_n(n={n}) (P, R, F)", impl.rouge_n(hyp, tgt, n), case["scores"][kind], **TOL)
            g.close("rouge_l (P, R, F)", impl.rouge_l(hyp, tgt), case["scores"]["rougeL"], **TOL)


def _rouge_text(impl, g) -> None:
    ref = load_reference(__file__, "rouge.json")
    if not hasattr(impl, "rouge"):
        g.skip("rouge on text", "this implementation works on tokens only (minigpt.metrics.rouge adds "
               "rouge-score's tokenizer and a per-character one): define rouge() to have it graded")
        return
    for case in ref["single"] + ref["multi"]:
        with g.case(f"rouge, {case['name']} (tokenizer={case['tokenizer']})"):
            got = impl.rouge(case["hypothesis"], case["reference"], tokenizer=case["tokenizer"])
            for kind in ("rouge1", "rouge2", "rougeL"):
                g.close(f"{kind} (P, R, F)", got[kind], case["scores"][kind], **TOL)


# ---- perplexity -------------------------------------------------------------------------------------
class TableModel:
    """The fake model make_reference.py scored with torch: logits[b, t] = tok_table[idx[b, t]] + pos_table[t].

    Its prediction depends on the position inside the window, so a wrong window schedule changes the score.
    """

    def __init__(self, tok_table: np.ndarray, pos_table: np.ndarray, block_size: int):
        self.tok_table, self.pos_table = tok_table, pos_table     # (V, V), (block_size, V)
        self.config = SimpleNamespace(block_size=block_size, vocab_size=tok_table.shape[0])
        self.shapes: Counter[tuple[int, int]] = Counter()

    def forward(self, idx: np.ndarray) -> np.ndarray:
        idx = np.asarray(idx)
        if idx.ndim != 2 or idx.shape[1] > self.config.block_size:
            raise ValueError(f"forward expects idx (B, T) with T <= {self.config.block_size}, "
                             f"got {idx.shape}")
        self.shapes[idx.shape] += 1
        T = idx.shape[1]
        return self.tok_table[idx] + self.pos_table[:T]           # (B, T, V)


def _perplexity(impl, g) -> None:
    ref = load_reference(__file__, "perplexity.npz")
    block = int(ref["block_size"])
    for stride, want in zip(ref["strides"], ref["perplexity"], strict=True):
        with g.case(f"perplexity, block_size {block}, stride {int(stride)}, {len(ref['ids'])} tokens",
                    pitfall="windows"):
            model = TableModel(ref["tok_table"], ref["pos_table"], block)
            got = impl.perplexity(model, ref["ids"], stride=int(stride))
            g.close("perplexity", got, want, **TOL)
    with g.case("perplexity with the default stride (= block_size)"):
        model = TableModel(ref["tok_table"], ref["pos_table"], block)
        default = float(ref["perplexity"][list(ref["strides"]).index(block)])
        g.close("perplexity(model, ids)", impl.perplexity(model, ref["ids"]), default, **TOL)
    with g.case("uniform model: perplexity = vocabulary size"):
        V = ref["tok_table"].shape[0]
        flat = TableModel(np.zeros((V, V)), np.zeros((block, V)), block)
        g.close("perplexity", impl.perplexity(flat, ref["ids"], stride=3), float(V), **TOL)


def _text_api(impl, g) -> None:
    _bleu_text(impl, g, load_reference(__file__, "bleu.json"))
    _tokenizers(impl, g)
    _rouge_text(impl, g)


STEPS = [
    Step(1, "n-gram counts", ("ngram_counts",), _ngrams),
    Step(2, "clipped n-gram matches", ("modified_precision",), _clipping),
    Step(3, "the reference length and the brevity penalty", ("closest_ref_len", "brevity_penalty"), _lengths),
    Step(4, "corpus BLEU", ("corpus_bleu",), _corpus_bleu),
    Step(5, "the longest common subsequence", ("lcs_length",), _lcs),
    Step(6, "ROUGE-N and ROUGE-L", ("rouge_n", "rouge_l"), _rouge),
    Step(7, "perplexity in sliding windows", ("perplexity",), _perplexity),
    Step(8, "optional: minigpt.metrics' text-level API (bleu, rouge, tokenizers)",
         ("bleu", "sentence_bleu", "rouge", "tokenize_13a", "tokenize_zh"), _text_api),
]
