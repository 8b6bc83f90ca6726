"""ROUGE-N, ROUGE-L and ROUGE-Lsum (Lin, 2004) exactly as Google's rouge-score package computes them.

    rouge_n     n-gram overlap: matches = sum over n-grams of min(count in hypothesis, count in reference);
                precision = matches / hypothesis n-grams, recall = matches / reference n-grams
    rouge_l     the longest common subsequence (LCS): the most tokens both texts share *in the same order*,
                gaps allowed; precision = LCS / len(hypothesis), recall = LCS / len(reference)
    rouge_lsum  summary-level LCS over sentences (one per line): for each reference sentence, the union of
                its LCS with every hypothesis sentence, each token counted at most as often as it occurs
                on both sides (ROUGE-1.5.5's rule); precision and recall over all tokens
    F = 2PR / (P + R), the harmonic mean (0 when both are 0).

Types, as rouge-score names them: "rouge1" .. "rouge9", "rougeL", "rougeLsum".

Argument order: minigpt always takes (hypothesis, reference). rouge-score's `score(target, prediction)`
takes the reference first; swapping them swaps precision and recall.

Tokenizers:
    "default"  rouge-score's: lowercase, every run of characters outside [a-z0-9] becomes a space, split;
               with use_stemmer=True every token longer than 3 characters is Porter-stemmed (porter.py).
               Anything non-ASCII vanishes, so Chinese text has no tokens and always scores 0.
    "char"     every non-whitespace character is a token (case kept): the usual choice for Chinese, and
               what rouge-score computes with `RougeScorer(..., tokenizer=<a char tokenizer>)`.
    a callable text -> list of tokens, like rouge-score's `tokenizer=` object. use_stemmer only affects
               "default", as in rouge-score (where it is an argument of its DefaultTokenizer).

Deliberately not here: `split_summaries=True` (rouge-score asks nltk's Punkt model to find sentences; put
one sentence per line yourself) and the ROUGE-1.5.5 perl options rouge-score does not have either
(ROUGE-W, ROUGE-S, stopwords). Confidence intervals over a corpus are in bootstrap.py.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence

from minigpt.metrics.bleu import ngram_counts
from minigpt.metrics.porter import porter_stem

Score = tuple[float, float, float]  # (precision, recall, fmeasure)
ROUGE_TYPES = ("rouge1", "rouge2", "rougeL")  # the default set
Tokenizer = str | Callable[[str], list[str]]

_NOT_ALNUM = re.compile(r"[^a-z0-9]+")
_ROUGE_N = re.compile(r"rouge([1-9])")


def rouge_tokenize(text: str, tokenizer: Tokenizer = "default", use_stemmer: bool = False) -> list[str]:
    """Text -> tokens, with rouge-score's default rule (optionally stemmed) or one token per character."""
    if callable(tokenizer):
        return list(tokenizer(text))
    if tokenizer == "default":
        tokens = _NOT_ALNUM.sub(" ", text.lower()).split()
        if use_stemmer:  # rouge-score stems only words longer than 3 characters: "cats" -> "cat", "was" kept
            tokens = [porter_stem(t) if len(t) > 3 else t for t in tokens]
        return tokens
    if tokenizer == "char":
        return [c for c in text if not c.isspace()]
    raise ValueError(f"unknown ROUGE tokenizer {tokenizer!r}: use 'default' (rouge-score's), 'char' or a "
                     "function from text to a list of tokens")


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


def lcs_table(reference: Sequence[str], hypothesis: Sequence[str]) -> list[list[int]]:
    """The full table T (len(reference)+1, len(hypothesis)+1) of LCS lengths of every pair of prefixes."""
    table = [[0] * (len(hypothesis) + 1) for _ in range(len(reference) + 1)]
    for i in range(1, len(reference) + 1):
        for j in range(1, len(hypothesis) + 1):
            if reference[i - 1] == hypothesis[j - 1]:
                table[i][j] = table[i - 1][j - 1] + 1
            else:
                table[i][j] = max(table[i - 1][j], table[i][j - 1])
    return table


def lcs_indices(reference: Sequence[str], hypothesis: Sequence[str]) -> list[int]:
    """Positions in `reference` of one longest common subsequence, read back from the table.

    Which one, when there are several, matters for ROUGE-Lsum; rouge-score walks back from the corner and,
    on a mismatch, moves left only when the left cell is strictly larger (otherwise up). So do we.
    """
    table = lcs_table(reference, hypothesis)
    i, j, found = len(reference), len(hypothesis), []
    while i > 0 and j > 0:
        if reference[i - 1] == hypothesis[j - 1]:
            found.append(i - 1)
            i, j = i - 1, j - 1
        elif table[i][j - 1] > table[i - 1][j]:
            j -= 1
        else:
            i -= 1
    return found[::-1]


def union_lcs(reference: Sequence[str], hypotheses: Sequence[Sequence[str]]) -> list[str]:
    """The reference tokens on an LCS with *any* hypothesis sentence, in reference order (Lin's LCS_u)."""
    union = sorted(set().union(*(lcs_indices(reference, h) for h in hypotheses)))
    return [reference[i] for i in union]


def rouge_lsum(hypothesis: Sequence[Sequence[str]], reference: Sequence[Sequence[str]]) -> Score:
    """Summary-level ROUGE-L of tokenized sentences: sum over reference sentences of |union LCS|.

    A token is a hit at most as many times as it occurs in the hypothesis and in the reference overall,
    so a hypothesis sentence that matches two reference sentences is not counted twice.
    """
    n_ref, n_hyp = sum(map(len, reference)), sum(map(len, hypothesis))
    if not reference or not hypothesis or n_ref == 0 or n_hyp == 0:
        return 0.0, 0.0, 0.0
    left_ref = Counter(t for sentence in reference for t in sentence)
    left_hyp = Counter(t for sentence in hypothesis for t in sentence)
    hits = 0
    for sentence in reference:
        for token in union_lcs(sentence, hypothesis):
            if left_hyp[token] > 0 and left_ref[token] > 0:
                hits += 1
                left_hyp[token] -= 1
                left_ref[token] -= 1
    precision, recall = hits / n_hyp, hits / n_ref
    return precision, recall, fmeasure(precision, recall)


def split_sentences(text: str) -> list[str]:
    """rouge-score's rougeLsum sentences: the lines of the text, empty ones dropped (not stripped)."""
    return [line for line in text.split("\n") if line]


def check_rouge_types(types: Sequence[str]) -> None:
    """Raise for a name rouge-score would refuse: it knows rouge1..rouge9, rougeL and rougeLsum."""
    if isinstance(types, str):
        raise TypeError(f"types is a list of names, e.g. ({types!r},)")
    for kind in types:
        if kind not in ("rougeL", "rougeLsum") and not _ROUGE_N.fullmatch(kind):
            raise ValueError(f"invalid ROUGE type {kind!r}: use 'rouge1' .. 'rouge9', 'rougeL' or "
                             "'rougeLsum'")


def _score_one(hypothesis: str, reference: str, types: Sequence[str], tokenizer: Tokenizer,
               use_stemmer: bool) -> dict[str, Score]:
    hyp = ref = None  # whole-text tokens, made only if a type needs them
    result: dict[str, Score] = {}
    for kind in types:
        if kind == "rougeLsum":
            hyp_sents = [rouge_tokenize(s, tokenizer, use_stemmer) for s in split_sentences(hypothesis)]
            ref_sents = [rouge_tokenize(s, tokenizer, use_stemmer) for s in split_sentences(reference)]
            result[kind] = rouge_lsum(hyp_sents, ref_sents)
            continue
        if hyp is None or ref is None:
            hyp = rouge_tokenize(hypothesis, tokenizer, use_stemmer)
            ref = rouge_tokenize(reference, tokenizer, use_stemmer)
        result[kind] = rouge_l(hyp, ref) if kind == "rougeL" else rouge_n(hyp, ref, int(kind[5:]))
    return result


def rouge(hypothesis: str, reference: str | Sequence[str], tokenizer: Tokenizer = "default",
          use_stemmer: bool = False, types: Sequence[str] = ROUGE_TYPES) -> dict[str, Score]:
    """{type: (precision, recall, fmeasure)} for one hypothesis; types default to rouge1, rouge2, rougeL.

    == rouge_score.rouge_scorer.RougeScorer(types, use_stemmer=use_stemmer).score(reference, hypothesis)
    (note the order). With a list of references, each type takes the reference with the highest F (first
    on ties), like rouge-score's score_multi. tokenizer="char" for Chinese and other text without spaces.
    rougeLsum treats each line as a sentence.
    """
    if not isinstance(hypothesis, str):
        raise TypeError("rouge scores one hypothesis string; loop over a corpus and average the scores")
    check_rouge_types(types)
    refs = [reference] if isinstance(reference, str) else list(reference)
    if not refs:
        raise ValueError("rouge needs at least one reference")
    per_ref = [_score_one(hypothesis, r, types, tokenizer, use_stemmer) for r in refs]
    # max() keeps the first of equal F's, like rouge-score's np.argmax
    return {kind: max((s[kind] for s in per_ref), key=lambda s: s[2]) for kind in types}
