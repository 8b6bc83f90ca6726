"""ROUGE-1, ROUGE-2 and ROUGE-L (Lin, 2004) exactly as Google's rouge-score package computes them.

    rouge_n  n-gram overlap: matches = sum over n-grams of min(count in hypothesis, count in reference);
             precision = matches / hypothesis n-grams, recall = matches / reference n-grams
    rouge_l  the longest common subsequence (LCS): the most tokens both texts share *in the same order*,
             gaps allowed; precision = LCS / len(hypothesis), recall = LCS / len(reference)
    F = 2PR / (P + R), the harmonic mean (0 when both are 0).

Argument order: minigpt always takes (hypothesis, reference). rouge-score's `score(target, prediction)`
takes the reference first; swapping them swaps precision and recall.

Tokenizers:
    "default"  rouge-score's: lowercase, every run of characters outside [a-z0-9] becomes a space, split.
               Anything non-ASCII vanishes, so Chinese text has no tokens and always scores 0.
    "char"     every non-whitespace character is a token (case kept): the usual choice for Chinese, and
               what rouge-score computes with `RougeScorer(..., tokenizer=<a char tokenizer>)`.

Deliberately not here: the Porter stemmer (use_stemmer=True raises), rougeLsum (summary-level LCS over
newline-split sentences), and bootstrap confidence intervals.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from minigpt.metrics.bleu import ngram_counts

Score = tuple[float, float, float]  # (precision, recall, fmeasure)
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")


def rouge_tokenize(text: str, tokenizer: str = "default") -> list[str]:
    """Text -> tokens, with rouge-score's default rule or one token per non-space character."""
    if tokenizer == "default":
        return _NOT_ALNUM.sub(" ", text.lower()).split()
    if tokenizer == "char":
        return [c for c in text if not c.isspace()]
    raise ValueError(f"unknown ROUGE tokenizer {tokenizer!r}: use 'default' (rouge-score's) or 'char'")


def fmeasure(precision: float, recall: float) -> float:
    """Harmonic mean of precision and recall; 0 when both are 0."""
    if precision + recall > 0:
        return 2 * precision * recall / (precision + recall)
    return 0.0


def rouge_n(hypothesis: Sequence[str], reference: Sequence[str], n: int) -> Score:
    """(precision, recall, F) of the n-grams two token lists share, each counted at most min(counts) times."""
    if n < 1:
        raise ValueError(f"ROUGE-N needs n >= 1, got {n}")
    hyp, ref = ngram_counts(hypothesis, n), ngram_counts(reference, n)
    overlap = sum(min(count, hyp[gram]) for gram, count in ref.items())
    precision = overlap / max(sum(hyp.values()), 1)  # max(.., 1): an empty side gives 0, not 0/0
    recall = overlap / max(sum(ref.values()), 1)
    return precision, recall, fmeasure(precision, recall)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence, by dynamic programming in O(len(a) * len(b)).

    row[j] holds the LCS of the prefix of `a` read so far and b[:j]. Moving to the next token x of `a`:
    if x == b[j-1] the LCS grows by one from the diagonal (both prefixes one shorter), otherwise it is the
    better of dropping x (row above, same j) or dropping b[j-1] (same row, j - 1). Two rows suffice.
    """
    prev = [0] * (len(b) + 1)
    for x in a:
        row = [0] * (len(b) + 1)
        for j, y in enumerate(b, start=1):
            row[j] = prev[j - 1] + 1 if x == y else max(prev[j], row[j - 1])
        prev = row
    return prev[-1]


def rouge_l(hypothesis: Sequence[str], reference: Sequence[str]) -> Score:
    """(precision, recall, F) from the LCS; (0, 0, 0) when either side is empty."""
    if not hypothesis or not reference:
        return 0.0, 0.0, 0.0
    lcs = lcs_length(reference, hypothesis)
    precision, recall = lcs / len(hypothesis), lcs / len(reference)
    return precision, recall, fmeasure(precision, recall)


def _rouge_one(hyp_tokens: list[str], ref_tokens: list[str]) -> dict[str, Score]:
    return {"rouge1": rouge_n(hyp_tokens, ref_tokens, 1),
            "rouge2": rouge_n(hyp_tokens, ref_tokens, 2),
            "rougeL": rouge_l(hyp_tokens, ref_tokens)}


def rouge(hypothesis: str, reference: str | Sequence[str], tokenizer: str = "default",
          use_stemmer: bool = False) -> dict[str, Score]:
    """{"rouge1" | "rouge2" | "rougeL": (precision, recall, fmeasure)} for one hypothesis.

    == rouge_score.rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"]).score(reference, hypothesis).
    With a list of references, each type takes the reference with the highest F (first on ties), like
    rouge-score's score_multi. tokenizer="char" for Chinese and other text without spaces (see above).
    """
    if use_stemmer:
        raise NotImplementedError("use_stemmer=True is not supported: minigpt has no Porter stemmer. "
                                  "Score without stemming, or use the rouge-score package for stemmed ROUGE.")
    if not isinstance(hypothesis, str):
        raise TypeError("rouge scores one hypothesis string; loop over a corpus and average the scores")
    hyp_tokens = rouge_tokenize(hypothesis, tokenizer)
    refs = [reference] if isinstance(reference, str) else list(reference)
    if not refs:
        raise ValueError("rouge needs at least one reference")
    per_ref = [_rouge_one(hyp_tokens, rouge_tokenize(r, tokenizer)) for r in refs]
    best: dict[str, Score] = {}
    for kind in ROUGE_TYPES:
        scores = [s[kind] for s in per_ref]
        best[kind] = max(scores, key=lambda s: s[2])  # max() keeps the first of equal F's, like argmax
    return best

