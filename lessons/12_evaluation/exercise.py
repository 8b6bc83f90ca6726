"""Your turn: BLEU and ROUGE from their pieces, on token lists, and a sliding-window perplexity.

Fill in the bodies, then grade your file against sacrebleu's, rouge-score's and torch's numbers:

    minigpt lesson check 12 --impl lessons/12_evaluation/exercise.py

Everything here works on tokens (lists of strings) that the checker has already produced with sacrebleu's
and rouge-score's own tokenizers, so your scores must match theirs to 1e-9. Standard library and NumPy only.
Not here: tokenizing text (minigpt/metrics/bleu_tokenizers.py and minigpt/metrics/rouge.py do that),
smoothing methods
other than sacrebleu's default "exp", ROUGE-Lsum, stemming.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

Tokens = Sequence[str]


# ---- BLEU ---------------------------------------------------------------------------------------------
def ngram_counts(tokens: Tokens, n: int) -> Counter:
    """How often each run of n consecutive tokens occurs, keyed by tuples.

    (['a', 'b', 'a', 'b'], 2) -> Counter({('a', 'b'): 2, ('b', 'a'): 1}); fewer than n tokens -> empty.
    """
    raise NotImplementedError("ngram_counts: count tuple(tokens[i:i + n]) for every start i")


def modified_precision(hypothesis: Tokens, references: Sequence[Tokens], n: int) -> tuple[int, int]:
    """(clipped matches, number of hypothesis n-grams) for one segment.

    Each hypothesis n-gram counts as many times as it occurs in the hypothesis, but at most as many times
    as it occurs in the single reference that has it most often ("clipping": the max over references,
    not the sum). Return the two integers; corpus BLEU adds them over all segments before dividing.
    """
    raise NotImplementedError("modified_precision: min(hypothesis count, max reference count) per n-gram")


def closest_ref_len(hyp_len: int, ref_lens: Sequence[int]) -> int:
    """The reference length closest to hyp_len; on a tie, the shorter reference (sacrebleu's rule)."""
    raise NotImplementedError("closest_ref_len: smallest |r - hyp_len|, ties -> smaller r")


def brevity_penalty(sys_len: int, ref_len: int) -> float:
    """1.0 if sys_len >= ref_len, 0.0 if sys_len == 0, else exp(1 - ref_len / sys_len)."""
    raise NotImplementedError("brevity_penalty: exp(1 - r / c) for a corpus shorter than its references")


def corpus_bleu(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]],
                effective_order: bool = False) -> float:
    """BLEU on a 0..100 scale, exactly sacrebleu's corpus_bleu on these tokens.

    hypotheses[i] is a token list; references[i] is the list of token lists that are the references of
    hypothesis i (one or more). Raise ValueError for an empty corpus or when the two lengths differ.

    1. Over all segments, sum the clipped matches and the totals for n = 1..4, the hypothesis lengths
       (sys_len) and each segment's closest reference length (ref_len).
    2. If no n-gram matches at all, return 0.0.
    3. For n = 1..4: stop if there are no n-grams of this order (totals[n] == 0); with effective_order,
       the geometric mean runs only over the orders seen so far. Precision p_n = 100 * matches / total;
       if matches == 0, "exp" smoothing: double a factor k (starting at 1 -> 2, 4, ...) and use
       p_n = 100 / (k * total).
    4. BLEU = BP * exp(sum of log p_n / order), where log(0) counts as -9999999999 (a missing order
       makes the score 0 unless effective_order is on).
    """
    raise NotImplementedError("corpus_bleu: sum the statistics over the corpus, then BP * geometric mean")


# ---- ROUGE --------------------------------------------------------------------------------------------
def lcs_length(a: Tokens, b: Tokens) -> int:
    """Length of the longest common subsequence of a and b (in order, gaps allowed): dynamic programming."""
    raise NotImplementedError("lcs_length: table[i][j] = LCS of a[:i] and b[:j]")


def rouge_n(hypothesis: Tokens, reference: Tokens, n: int) -> tuple[float, float, float]:
    """(precision, recall, F) of shared n-grams, each counted min(count in hypothesis, count in reference).

    precision = overlap / max(hypothesis n-grams, 1), recall = overlap / max(reference n-grams, 1),
    F = 2PR / (P + R), and 0.0 when P + R == 0.
    """
    raise NotImplementedError("rouge_n: overlap of the two n-gram Counters")


def rouge_l(hypothesis: Tokens, reference: Tokens) -> tuple[float, float, float]:
    """(precision, recall, F): LCS / len(hypothesis), LCS / len(reference); (0, 0, 0) if either is empty."""
    raise NotImplementedError("rouge_l: the LCS over the two lengths")


# ---- perplexity ---------------------------------------------------------------------------------------
def perplexity(model: Any, ids: Sequence[int], stride: int | None = None) -> float:
    """exp(mean cross-entropy) of model over the 1-D token sequence ids, scored in sliding windows.

    model.forward(idx (B, T) int array) -> logits (B, T, V); model.config.block_size is the window.
    stride None means block_size. Window k feeds ids[k*stride : k*stride + block_size] (never past
    ids[-2]) and predicts the token after each position; only targets no earlier window predicted count,
    so every token but the first is scored exactly once. Stop after the window that predicts ids[-1].
    Cross-entropy at one position: logsumexp(logits) - logits[target] (subtract the max first).
    """
    raise NotImplementedError("perplexity: slide the window, keep only the new targets, exp of the mean")
