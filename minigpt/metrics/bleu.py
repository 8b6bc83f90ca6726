"""BLEU (Papineni et al., 2002) exactly as sacrebleu 2.x computes it, with its options.

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

sacrebleu's options, with its names (compute_bleu is its BLEU.compute_bleu, from the summed statistics):
    smooth_method    "exp" (default), "none" (a zero precision makes the score 0), "floor" (a zero count
                     becomes smooth_value, default 0.1), "add-k" (smooth_value, default 1, is added to the
                     count and the total of every order above 1) -- Chen & Cherry (2014), methods 1-3
    max_ngram_order  n-grams up to this order (default 4)
    effective_order  average only over the orders the hypotheses have (sentence BLEU turns it on)
    tokenize         "13a", "zh", "intl", "char", "none" (bleu_tokenizers.py);  lowercase  lowercase first

References, two equivalent shapes (both: one entry per hypothesis, several references allowed):
    references=[r0, r1, ...]                    segment-major: r_i is a string, or a list of strings for
                                                several references of hypothesis i (lengths may differ)
    ref_streams=[stream_a, stream_b, ...]       sacrebleu's shape: each stream holds one reference per
                                                hypothesis; None marks a missing one. This is exactly
                                                sacrebleu.corpus_bleu(hypotheses, ref_streams).
so bleu(h, r) == sacrebleu.corpus_bleu(h, [r]).score for one reference each.

Deliberately not here: chrF and TER, significance tests and bootstrap intervals, the MeCab and
SentencePiece tokenizers, the `version:` part of the signature (we are not sacrebleu), and sacrebleu's
silent truncation when the lists differ in length (we raise instead).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from minigpt.metrics.bleu_tokenizers import get_tokenizer

MAX_ORDER = 4  # n-grams of 1, 2, 3 and 4 words: sacrebleu's default max_ngram_order
LOG_ZERO = -9999999999.0  # sacrebleu's stand-in for log(0): any zero precision sends the score to 0
SMOOTH_DEFAULTS: dict[str, float | None] = {"none": None, "floor": 0.1, "add-k": 1, "exp": None}

Tokens = Sequence[str]


@dataclass(frozen=True)
class BleuDetails:
    """A BLEU score with the statistics it was computed from (sacrebleu's BLEUScore fields)."""

    score: float              # 0..100
    precisions: list[float]   # p_1..p_N on 0..100 (smoothed where there were no matches)
    bp: float                 # brevity penalty, 0..1
    sys_len: int              # hypothesis tokens in the corpus
    ref_len: int              # the sum of each segment's closest reference length
    counts: list[float]       # clipped matching n-grams, n = 1..N (+ k for n > 1 under add-k, as sacrebleu)
    totals: list[float]       # hypothesis n-grams, n = 1..N (likewise)
    signature: str = ""       # sacrebleu's signature without its version: nrefs:1|case:mixed|eff:no|...

    def format(self, width: int = 2) -> str:
        """sacrebleu's printed line: 'BLEU|<signature> = 48.89 85.7/66.7/40.0/25.0 (BP = 1.000 ...)'."""
        ratio = self.sys_len / self.ref_len if self.ref_len else 0
        prec = "/".join(f"{p:.1f}" for p in self.precisions)
        name = f"BLEU|{self.signature}" if self.signature else "BLEU"
        return (f"{name} = {self.score:.{width}f} {prec} (BP = {self.bp:.3f} ratio = {ratio:.3f} "
                f"hyp_len = {self.sys_len:d} ref_len = {self.ref_len:d})")

    def __str__(self) -> str:
        return self.format()


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


def compute_bleu(correct: Sequence[float], total: Sequence[float], sys_len: int, ref_len: int,
                 smooth_method: str = "none", smooth_value: float | None = None,
                 effective_order: bool = False, max_ngram_order: int = MAX_ORDER) -> BleuDetails:
    """BLEU from the corpus statistics: sacrebleu's BLEU.compute_bleu, with its default smooth_method="none".

    correct[n-1] / total[n-1] are the clipped matches / hypothesis n-grams of order n summed over the
    corpus; sys_len and ref_len the summed lengths. The lists are not modified (sacrebleu's are, under
    add-k); the returned counts and totals include the added k, as sacrebleu's do.
    """
    if smooth_method not in SMOOTH_DEFAULTS:
        raise ValueError(f"unknown smooth_method {smooth_method!r}; choose one of {list(SMOOTH_DEFAULTS)}")
    if max_ngram_order < 1 or len(correct) != max_ngram_order or len(total) != max_ngram_order:
        raise ValueError(f"need max_ngram_order >= 1 and {max_ngram_order} counts and totals, got "
                         f"{len(correct)} and {len(total)}")
    if smooth_value is None:
        smooth_value = SMOOTH_DEFAULTS[smooth_method]
    counts, totals = list(correct), list(total)
    bp = brevity_penalty(sys_len, ref_len)
    precisions = [0.0] * max_ngram_order
    if not any(counts):  # nothing matches at all: 0, whatever the smoothing (sacrebleu #141)
        return BleuDetails(0.0, precisions, bp, sys_len, ref_len, counts, totals)
    halvings = 1.0  # "exp": doubles for each order with no match, precisions 1/2, 1/4, 1/8 of a match
    order = max_ngram_order  # how many precisions enter the geometric mean
    for n in range(1, max_ngram_order + 1):
        if smooth_method == "add-k" and n > 1:  # Lin & Och (2004): one pseudo-match for every order > 1
            counts[n - 1] += smooth_value
            totals[n - 1] += smooth_value
        if totals[n - 1] == 0:  # the hypotheses have no n-grams this long (all shorter than n words)
            break
        if effective_order:  # sentence BLEU: average only over the orders that exist
            order = n
        if counts[n - 1] == 0:
            if smooth_method == "exp":
                halvings *= 2
                precisions[n - 1] = 100.0 / (halvings * totals[n - 1])
            elif smooth_method == "floor":
                precisions[n - 1] = 100.0 * smooth_value / totals[n - 1]
        else:
            precisions[n - 1] = 100.0 * counts[n - 1] / totals[n - 1]
    log_mean = sum(math.log(p) if p != 0 else LOG_ZERO for p in precisions[:order]) / order
    return BleuDetails(bp * math.exp(log_mean), precisions, bp, sys_len, ref_len, counts, totals)


def corpus_statistics(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]],
                      max_ngram_order: int = MAX_ORDER) -> tuple[list[int], list[int], int, int]:
    """(correct, total, sys_len, ref_len) summed over the corpus: what compute_bleu needs."""
    if len(hypotheses) == 0:
        raise ValueError("BLEU of an empty corpus is undefined: pass at least one hypothesis")
    if len(hypotheses) != len(references):
        raise ValueError(f"{len(hypotheses)} hypotheses but {len(references)} reference entries: "
                         "give one entry (a list of references) per hypothesis")
    if max_ngram_order < 1:
        raise ValueError(f"max_ngram_order must be at least 1, got {max_ngram_order}")
    counts, totals = [0] * max_ngram_order, [0] * max_ngram_order
    sys_len = ref_len = 0
    for i, (hyp, refs) in enumerate(zip(hypotheses, references, strict=True)):
        if len(refs) == 0:
            raise ValueError(f"hypothesis {i} has no reference; every segment needs at least one")
        for n in range(1, max_ngram_order + 1):
            matches, total = modified_precision(hyp, refs, n)
            counts[n - 1] += matches
            totals[n - 1] += total
        sys_len += len(hyp)
        ref_len += closest_ref_len(len(hyp), [len(r) for r in refs])
    return counts, totals, sys_len, ref_len


def corpus_bleu_details(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]],
                        effective_order: bool = False, *, smooth_method: str = "exp",
                        smooth_value: float | None = None, max_ngram_order: int = MAX_ORDER) -> BleuDetails:
    """BLEU of tokenized hypotheses; references[i] is the list of tokenized references of hypothesis i."""
    counts, totals, sys_len, ref_len = corpus_statistics(hypotheses, references, max_ngram_order)
    return compute_bleu(counts, totals, sys_len, ref_len, smooth_method, smooth_value, effective_order,
                        max_ngram_order)


def corpus_bleu(hypotheses: Sequence[Tokens], references: Sequence[Sequence[Tokens]],
                effective_order: bool = False, *, smooth_method: str = "exp",
                smooth_value: float | None = None, max_ngram_order: int = MAX_ORDER) -> float:
    """BLEU (0..100) of tokenized hypotheses; references[i] lists the tokenized references of hypothesis i."""
    return corpus_bleu_details(hypotheses, references, effective_order, smooth_method=smooth_method,
                               smooth_value=smooth_value, max_ngram_order=max_ngram_order).score


def signature(n_refs: int | str, tokenize: str = "13a", lowercase: bool = False,
              effective_order: bool = False, smooth_method: str = "exp",
              smooth_value: float | None = None) -> str:
    """sacrebleu's signature minus `|version:...`: 'nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp'.

    n_refs is the number of references per segment, or "var" when it varies.
    """
    smooth = smooth_method
    if SMOOTH_DEFAULTS.get(smooth_method) is not None:  # floor and add-k print their value
        value = SMOOTH_DEFAULTS[smooth_method] if smooth_value is None else smooth_value
        smooth += f"[{value:.2f}]"
    return (f"nrefs:{n_refs}|case:{'lc' if lowercase else 'mixed'}|eff:{'yes' if effective_order else 'no'}"
            f"|tok:{tokenize}|smooth:{smooth}")


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
                 lowercase: bool = False, smooth_method: str = "exp", smooth_value: float | None = None,
                 max_ngram_order: int = MAX_ORDER, effective_order: bool = False) -> BleuDetails:
    """Corpus BLEU of detokenized text with its statistics; see the module docstring for the shapes.

    == sacrebleu.metrics.BLEU(tokenize=..., lowercase=..., smooth_method=..., smooth_value=...,
    max_ngram_order=..., effective_order=...).corpus_score(hypotheses, ref_streams), field by field.
    """
    if isinstance(hypotheses, str):
        raise TypeError("hypotheses is a list of strings (one per segment); for one sentence use "
                        "sentence_bleu(hypothesis, references)")
    if smooth_method not in SMOOTH_DEFAULTS:
        raise ValueError(f"unknown smooth_method {smooth_method!r}; choose one of {list(SMOOTH_DEFAULTS)}")
    segments = _segment_references(len(hypotheses), references, ref_streams)
    tok = get_tokenizer(tokenize)

    def prep(text: str) -> list[str]:  # sacrebleu: lowercase (if asked), strip the right end, tokenize
        return tok((text.lower() if lowercase else text).rstrip())

    hyp_tokens = [prep(h) for h in hypotheses]
    ref_tokens = [[prep(r) for r in refs] for refs in segments]
    details = corpus_bleu_details(hyp_tokens, ref_tokens, effective_order, smooth_method=smooth_method,
                                  smooth_value=smooth_value, max_ngram_order=max_ngram_order)
    n_refs = {len(refs) for refs in segments}
    sig = signature(n_refs.pop() if len(n_refs) == 1 else "var", tokenize, lowercase, effective_order,
                    smooth_method, smooth_value)
    return replace(details, signature=sig)


def bleu(hypotheses: Sequence[str], references: Sequence[str | Sequence[str | None]] | None = None,
         tokenize: str = "13a", *, ref_streams: Sequence[Sequence[str | None]] | None = None,
         lowercase: bool = False, smooth_method: str = "exp", smooth_value: float | None = None,
         max_ngram_order: int = MAX_ORDER, effective_order: bool = False) -> float:
    """Corpus BLEU, 0..100: == sacrebleu.corpus_bleu(hypotheses, [references], tokenize=tokenize).score.

    references[i] is the reference of hypotheses[i] (a string), or a list of them when there are several;
    or pass ref_streams=[refs_a, refs_b] in sacrebleu's own shape. tokenize: "13a" (default), "zh", "intl",
    "char", "none". The other keywords are sacrebleu's BLEU options (module docstring).
    """
    return bleu_details(hypotheses, references, tokenize, ref_streams=ref_streams, lowercase=lowercase,
                        smooth_method=smooth_method, smooth_value=smooth_value,
                        max_ngram_order=max_ngram_order, effective_order=effective_order).score


def sentence_bleu(hypothesis: str, references: str | Sequence[str], tokenize: str = "13a",
                  lowercase: bool = False, *, smooth_method: str = "exp", smooth_value: float | None = None,
                  max_ngram_order: int = MAX_ORDER, effective_order: bool = True) -> float:
    """BLEU of one sentence: == sacrebleu.sentence_bleu(hypothesis, references, ...).score.

    Sentence-level BLEU uses the *effective order* (sacrebleu's default for sentences): a 2-word sentence
    is averaged over p_1 and p_2 only, so a perfect short sentence scores 100 instead of 0. It is noisy and
    not comparable with corpus BLEU; average it over sentences only to rank outputs, never to report.
    """
    if not isinstance(hypothesis, str):
        raise TypeError("sentence_bleu scores one hypothesis string; for a corpus use bleu(hypotheses, ...)")
    refs = [references] if isinstance(references, str) else list(references)
    return bleu_details([hypothesis], [refs], tokenize, lowercase=lowercase, smooth_method=smooth_method,
                        smooth_value=smooth_value, max_ngram_order=max_ngram_order,
                        effective_order=effective_order).score
