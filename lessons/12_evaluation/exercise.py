"""Your turn: BLEU and ROUGE from their pieces, on token lists, and a sliding-window perplexity.

    step 1  ngram_counts                        step 5  lcs_length
    step 2  modified_precision                  step 6  rouge_n, rouge_l
    step 3  closest_ref_len, brevity_penalty    step 7  perplexity
    step 4  corpus_bleu                         (step 8: minigpt's text-level API, optional)

Graded against sacrebleu's, rouge-score's and torch's numbers:

    minigpt lesson check 12 --impl lessons/12_evaluation/exercise.py [--step K]
    minigpt lesson hint 12 K          # the first hint nudges, the last nearly gives it away

Everything here works on tokens (lists of strings) that the checker has already produced with sacrebleu's
and rouge-score's own tokenizers, so your scores must match theirs to 1e-9. Standard library and NumPy only.
Not here: tokenizing text (minigpt/metrics/bleu_tokenizers.py and minigpt/metrics/rouge.py do that),
smoothing methods other than sacrebleu's default "exp", ROUGE-Lsum, stemming.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

Tokens = Sequence[str]


# ---- BLEU ---------------------------------------------------------------------------------------------
def ngram_counts(tokens: Tokens, n: int) -> Counter:
    """How often each run of n consecutive tokens occurs, keyed by tuples.   (step 1)

    (['a', 'b', 'a', 'b'], 2) -> Counter({('a', 'b'): 2, ('b', 'a'): 1}); fewer than n tokens -> empty.
    """
    raise NotImplementedError("step 1 not started: ngram_counts")


def modified_precision(hypothesis: Tokens, references: Sequence[Tokens], n: int) -> tuple[int, int]:
    """(clipped matches, number of hypothesis n-grams) for one segment, as sacrebleu counts them.   (step 2)

    A hypothesis that repeats an n-gram more often than any single reference has it gets no credit for
    the extra copies (Papineni et al.'s "modified" precision). Return two integers; corpus BLEU adds them
    over all segments before dividing.
    """
    raise NotImplementedError("step 2 not started: modified_precision")


def closest_ref_len(hyp_len: int, ref_lens: Sequence[int]) -> int:
    """The reference length closest to hyp_len, with sacrebleu's tie rule (graded with the references in
    both orders).   (step 3)
    """
    raise NotImplementedError("step 3 not started: closest_ref_len")


def brevity_penalty(sys_len: int, ref_len: int) -> float:
    """sacrebleu's brevity penalty for a corpus of sys_len hypothesis tokens and ref_len reference tokens:
    1.0 when the corpus is not shorter than its references, 0.0 when sys_len == 0.   (step 3)
    """
    raise NotImplementedError("step 3 not started: brevity_penalty")


def corpus_bleu(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]],
                effective_order: bool = False) -> float:
    """BLEU on a 0..100 scale, exactly sacrebleu's corpus_bleu on these tokens (its default "exp"
    smoothing).   (step 4)

    hypotheses[i] is a token list; references[i] is the list of token lists that are the references of
    hypothesis i (one or more). Corpus statistics are summed over the segments before the score is formed;
    a corpus with no match at all scores 0.0; effective_order=True averages only over the n-gram orders
    the hypotheses have (sacrebleu's sentence BLEU). Raise ValueError for an empty corpus or when the two
    lengths differ.
    """
    raise NotImplementedError("step 4 not started: corpus_bleu")


# ---- ROUGE --------------------------------------------------------------------------------------------
def lcs_length(a: Tokens, b: Tokens) -> int:
    """Length of the longest common subsequence of a and b (in order, gaps allowed), in O(len(a) len(b)).
    (step 5)
    """
    raise NotImplementedError("step 5 not started: lcs_length")


def rouge_n(hypothesis: Tokens, reference: Tokens, n: int) -> tuple[float, float, float]:
    """(precision, recall, F) of the n-grams the two lists share, as rouge-score computes ROUGE-N.   (step 6)

    Empty sides give 0.0, never a division by zero.
    """
    raise NotImplementedError("step 6 not started: rouge_n")


def rouge_l(hypothesis: Tokens, reference: Tokens) -> tuple[float, float, float]:
    """(precision, recall, F) of ROUGE-L (from the LCS), as rouge-score computes it; (0, 0, 0) if either
    list is empty.   (step 6)
    """
    raise NotImplementedError("step 6 not started: rouge_l")


# ---- perplexity ---------------------------------------------------------------------------------------
def perplexity(model: Any, ids: Sequence[int], stride: int | None = None) -> float:
    """exp(mean cross-entropy) of model over the 1-D token sequence ids, scored in sliding windows.
    (step 7)

    model.forward(idx (B, T) int array) -> logits (B, T, V); model.config.block_size is the window.
    stride None means block_size. Window k starts at k*stride; every token but the first is scored exactly
    once, by the first window that predicts it. Graded against torch with strides 1, 3 and block_size on a
    model whose prediction depends on the position inside the window, so a wrong window schedule shows.
    """
    raise NotImplementedError("step 7 not started: perplexity")
