"""BLEU (Papineni et al., 2002) exactly as sacrebleu 2.x computes it with its defaults.

The score is built from four pieces, each a function here (lesson 12 builds them one by one):

    ngram_counts        how often each n-gram occurs in a token list
    modified_precision  hypothesis n-grams that occur in a reference, each clipped to the largest count in
                        any one reference ("the the the the" against "the cat" earns 1 match, not 4)
    brevity_penalty     exp(1 - r/c) when the hypotheses are shorter than the references, else 1
    corpus_bleu         sum matches, totals and lengths over the whole corpus *first*, then
                        BLEU = BP * exp(mean_n log p_n), n = 1..4, on a 0-100 scale

sacrebleu's defaults, reproduced: 13a tokenizer, case-sensitive, n-grams up to 4, "exp" smoothing (the
k-th order with zero matches gets precision 100 / (2^k * total) instead of 0, as in mteval-v13a), a score of
0 when nothing at all matches, the closest reference length (ties: the shorter) per segment.

References, two equivalent shapes (both: one entry per hypothesis, several references allowed):
    references=[r0, r1, ...]                    segment-major: r_i is a string, or a list of strings for
                                                several references of hypothesis i (lengths may differ)
    ref_streams=[stream_a, stream_b, ...]       sacrebleu's shape: each stream holds one reference per
                                                hypothesis; None marks a missing one. This is exactly
                                                sacrebleu.corpus_bleu(hypotheses, ref_streams).
so bleu(h, r) == sacrebleu.corpus_bleu(h, [r]).score for one reference each.

Deliberately not here: the other smoothing methods (none / floor / add-k), chrF and TER, significance
tests, and sacrebleu's silent truncation when the lists differ in length (we raise instead).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from minigpt.metrics.bleu_tokenizers import get_tokenizer

MAX_ORDER = 4  # n-grams of 1, 2, 3 and 4 words
LOG_ZERO = -9999999999.0  # sacrebleu's stand-in for log(0): any zero precision sends the score to 0

Tokens = Sequence[str]


@dataclass(frozen=True)
class BleuDetails:
    """A BLEU score with the statistics it was computed from (sacrebleu's BLEUScore fields)."""

    score: float              # 0..100
    precisions: list[float]   # p_1..p_4 on 0..100 (smoothed where there were no matches)
    bp: float                 # brevity penalty, 0..1
    sys_len: int              # hypothesis tokens in the corpus
    ref_len: int              # the sum of each segment's closest reference length
    counts: list[int]         # clipped matching n-grams, n = 1..4
    totals: list[int]         # hypothesis n-grams, n = 1..4


# ---- the building blocks, on tokens --------------------------------------------------------------------
def ngram_counts(tokens: Tokens, n: int) -> Counter[tuple[str, ...]]:
    """Every run of n consecutive tokens, counted: (['a','b','a','b'], 2) -> {('a','b'): 2, ('b','a'): 1}."""
    return Counter(tuple(tokens[i:i + n]) for i in range(len(tokens) - n + 1))


def modified_precision(hypothesis: Tokens, references: Sequence[Tokens], n: int) -> tuple[int, int]:
    """(clipped matches, hypothesis n-grams) for one segment: the numerator and denominator of p_n.

    A hypothesis n-gram counts at most as often as it occurs in the reference that has it most often.
    Returned as two integers, not a ratio, because corpus BLEU adds them up over all segments first.
    """
    max_ref: Counter[tuple[str, ...]] = Counter()
    for reference in references:
        for gram, count in ngram_counts(reference, n).items():
            max_ref[gram] = max(max_ref[gram], count)
    hyp = ngram_counts(hypothesis, n)
    matches = sum(min(count, max_ref[gram]) for gram, count in hyp.items())
    return matches, sum(hyp.values())


def closest_ref_len(hyp_len: int, ref_lens: Sequence[int]) -> int:
    """The reference length nearest the hypothesis length; on a tie the shorter one (sacrebleu's rule)."""
    return min(ref_lens, key=lambda r: (abs(r - hyp_len), r))


def brevity_penalty(sys_len: int, ref_len: int) -> float:
    """1 if the hypotheses are at least as long as the references, else exp(1 - ref_len / sys_len).

    Precision alone rewards saying little: a one-word hypothesis that is right has p_1 = 100%. The penalty
    is corpus-level (lengths summed over segments), and 0 for an empty output.
    """
    if sys_len >= ref_len:
        return 1.0
    if sys_len == 0:
        return 0.0
    return math.exp(1 - ref_len / sys_len)


def _score(counts: list[int], totals: list[int], sys_len: int, ref_len: int,
           effective_order: bool) -> BleuDetails:
    """BLEU from the corpus statistics, with sacrebleu's 'exp' smoothing."""
    bp = brevity_penalty(sys_len, ref_len)
    precisions = [0.0] * MAX_ORDER
    if not any(counts):  # nothing matches at all: 0, whatever the smoothing
        return BleuDetails(0.0, precisions, bp, sys_len, ref_len, counts, totals)
    halvings = 1.0  # doubles for each order with no match: precisions 1/2, 1/4, 1/8 of a match
    order = MAX_ORDER  # how many precisions enter the geometric mean
    for n in range(1, MAX_ORDER + 1):
        if totals[n - 1] == 0:  # the hypotheses have no n-grams this long (all shorter than n words)
            break
        if effective_order:  # sentence BLEU: average only over the orders that exist
            order = n
        if counts[n - 1] == 0:
            halvings *= 2
            precisions[n - 1] = 100.0 / (halvings * totals[n - 1])
        else:
            precisions[n - 1] = 100.0 * counts[n - 1] / totals[n - 1]
    log_mean = sum(math.log(p) if p > 0 else LOG_ZERO for p in precisions[:order]) / order
    return BleuDetails(bp * math.exp(log_mean), precisions, bp, sys_len, ref_len, counts, totals)


def corpus_bleu_details(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]],
                        effective_order: bool = False) -> BleuDetails:
    """BLEU of tokenized hypotheses; references[i] is the list of tokenized references of hypothesis i."""
    if len(hypotheses) == 0:
        raise ValueError("BLEU of an empty corpus is undefined: pass at least one hypothesis")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference entries: "
                         "give one entry (a list of references) per hypothesis")
    counts, totals = [0] * MAX_ORDER, [0] * MAX_ORDER
    sys_len = ref_len = 0
    for i, (hyp, refs) in enumerate(zip(hypotheses, references, strict=True)):
        if len(refs) == 0:
            raise ValueError(f"hypothesis {i} has no reference; every segment needs at least one")
        for n in range(1, MAX_ORDER + 1):
            matches, total = modified_precision(hyp, refs, n)
            counts[n - 1] += matches
            totals[n - 1] += total
        sys_len += len(hyp)
        ref_len += closest_ref_len(len(hyp), [len(r) for r in refs])
    return _score(counts, totals, sys_len, ref_len, effective_order)


def corpus_bleu(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]],
                effective_order: bool = False) -> float:
    """BLEU (0..100) of tokenized hypotheses; references[i] lists the tokenized references of hypothesis i."""
    return corpus_bleu_details(hypotheses, references, effective_order).score


# ---- on text, like sacrebleu ---------------------------------------------------------------------------
def _segment_references(n_hyp: int, references: Sequence | None,
                        ref_streams: Sequence[Sequence[str | None]] | None) -> list[list[str]]:
    """Either reference shape -> one list of reference strings per hypothesis (None entries dropped)."""
    if (references is None) == (ref_streams is None):
        raise ValueError("give exactly one of references= (one entry per hypothesis) or ref_streams= "
                         "(sacrebleu's list of reference streams)")
    if ref_streams is not None:
        if isinstance(ref_streams, str) or any(isinstance(s, str) for s in ref_streams):
            raise TypeError("ref_streams is a list of streams, each a list of strings: [refs_a, refs_b]")
        if len(ref_streams) == 0:
            raise ValueError("ref_streams is empty: give at least one stream of references")
        for k, stream in enumerate(ref_streams):
            if len(stream) != n_hyp:
                raise ValueError(f"reference stream {k} has {len(stream)} lines for {n_hyp} hypotheses")
        return [[r for r in refs if r is not None] for refs in zip(*ref_streams, strict=True)]
    if isinstance(references, str):
        raise TypeError("references is a list with one entry per hypothesis, not a single string")
    if len(references) != n_hyp:
        raise ValueError(f"{n_hyp} hypotheses but {len(references)} reference entries; give one entry per "
                         "hypothesis (for sacrebleu-style streams [refs_a, refs_b], use ref_streams=)")
    return [[entry] if isinstance(entry, str) else [r for r in entry if r is not None]
            for entry in references]


def bleu_details(hypotheses: Sequence[str], references: Sequence[str | Sequence[str | None]] | None = None,
                 tokenize: str = "13a", *, ref_streams: Sequence[Sequence[str | None]] | None = None,
                 lowercase: bool = False, effective_order: bool = False) -> BleuDetails:
    """Corpus BLEU of detokenized text with its statistics; see the module docstring for the shapes."""
    if isinstance(hypotheses, str):
        raise TypeError("hypotheses is a list of strings (one per segment); for one sentence use "
                        "sentence_bleu(hypothesis, references)")
    segments = _segment_references(len(hypotheses), references, ref_streams)
    tok = get_tokenizer(tokenize)

    def prep(text: str) -> list[str]:  # sacrebleu: lowercase (if asked), strip the right end, tokenize
        return tok((text.lower() if lowercase else text).rstrip())

    hyp_tokens = [prep(h) for h in hypotheses]
    ref_tokens = [[prep(r) for r in refs] for refs in segments]
    return corpus_bleu_details(hyp_tokens, ref_tokens, effective_order)


def bleu(hypotheses: Sequence[str], references: Sequence[str | Sequence[str | None]] | None = None,
         tokenize: str = "13a", *, ref_streams: Sequence[Sequence[str | None]] | None = None,
         lowercase: bool = False) -> float:
    """Corpus BLEU, 0..100: == sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize).score.

    references[i] is the reference of hypotheses[i] (a string), or a list of them when there are several;
    or pass ref_streams=[refs_a, refs_b] in sacrebleu's own shape. tokenize: "13a" (default), "zh", "none".
    """
    return bleu_details(hypotheses, references, tokenize, ref_streams=ref_streams, lowercase=lowercase).score


def sentence_bleu(hypothesis: str, references: str | Sequence[str], tokenize: str = "13a",
                  lowercase: bool = False) -> float:
    """BLEU of one sentence: == sacrebleu.sentence_bleu(hypothesis, references).score.

    Sentence-level BLEU uses the *effective order* (sacrebleu's default for sentences): a 2-word sentence
    is averaged over p_1 and p_2 only, so a perfect short sentence scores 100 instead of 0. It is noisy and
    not comparable with corpus BLEU; average it over sentences only to rank outputs, never to report.
    """
    if not isinstance(hypothesis, str):
        raise TypeError("sentence_bleu scores one hypothesis string; for a corpus use bleu(hypotheses, ...)")
    refs = [references] if isinstance(references, str) else list(references)
    return bleu_details([hypothesis], [refs], tokenize, lowercase=lowercase, effective_order=True).score
