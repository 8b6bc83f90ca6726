"""Evaluation metrics, one import: perplexity for language models, BLEU and ROUGE for generated text.

    from minigpt import metrics
    metrics.perplexity(model, ids)               # exp(mean cross-entropy), sliding windows (perplexity.py)
    metrics.bleu(hypotheses, references)         # == sacrebleu.corpus_bleu(hypotheses, [references]).score
    metrics.bleu(hypotheses, refs, tokenize="zh")        # Chinese: one token per character
    metrics.bleu(hypotheses, ref_streams=[refs_a, refs_b])  # several references, sacrebleu's shape
    metrics.bleu(hyps, refs, smooth_method="floor", max_ngram_order=2)  # sacrebleu's options, its names
    metrics.bleu_details(...)                    # score, precisions, bp, sys_len, ref_len, counts, totals
    metrics.compute_bleu(correct, total, sys_len, ref_len)  # from summed statistics (BLEU.compute_bleu)
    metrics.sentence_bleu(hypothesis, references)  # == sacrebleu.sentence_bleu (effective order)
    metrics.rouge(hypothesis, reference)         # {"rouge1"|"rouge2"|"rougeL": (precision, recall, fmeasure)}
    metrics.rouge(hyp, ref, types=("rouge1", "rougeLsum"), use_stemmer=True)  # rouge-score's options
    metrics.rouge(hypothesis, reference, tokenizer="char")  # Chinese (rouge-score's tokenizer drops it)
    metrics.bootstrap_rouge([metrics.rouge(h, r) for h, r in pairs])  # BootstrapAggregator's intervals

The building blocks the lesson grades (on token lists) are re-exported too: ngram_counts,
modified_precision, closest_ref_len, brevity_penalty, corpus_bleu, lcs_length, rouge_n, rouge_l.
This file only gathers names; the code and its explanations live in bleu.py, bleu_tokenizers.py, rouge.py,
porter.py, bootstrap.py and perplexity.py. No third-party metric library is imported anywhere in minigpt.
"""

from minigpt.metrics.bleu import (
    SMOOTH_DEFAULTS,
    BleuDetails,
    bleu,
    bleu_details,
    brevity_penalty,
    closest_ref_len,
    compute_bleu,
    corpus_bleu,
    corpus_bleu_details,
    corpus_statistics,
    modified_precision,
    ngram_counts,
    sentence_bleu,
    signature,
)
from minigpt.metrics.bleu_tokenizers import (
    TOKENIZERS,
    is_chinese_char,
    tokenize_13a,
    tokenize_char,
    tokenize_intl,
    tokenize_none,
    tokenize_zh,
)
from minigpt.metrics.bootstrap import AggregateScore, bootstrap_rouge
from minigpt.metrics.perplexity import mean_nll, perplexity, sliding_windows
from minigpt.metrics.porter import porter_stem
from minigpt.metrics.rouge import (
    fmeasure,
    lcs_indices,
    lcs_length,
    lcs_table,
    rouge,
    rouge_l,
    rouge_lsum,
    rouge_n,
    rouge_tokenize,
    split_sentences,
    union_lcs,
)

__all__ = [
    "SMOOTH_DEFAULTS", "TOKENIZERS", "AggregateScore", "BleuDetails", "bleu", "bleu_details",
    "bootstrap_rouge", "brevity_penalty", "closest_ref_len", "compute_bleu", "corpus_bleu",
    "corpus_bleu_details", "corpus_statistics", "fmeasure", "is_chinese_char", "lcs_indices",
    "lcs_length", "lcs_table", "mean_nll", "modified_precision", "ngram_counts", "perplexity",
    "porter_stem", "rouge", "rouge_l", "rouge_lsum", "rouge_n", "rouge_tokenize", "sentence_bleu",
    "signature", "sliding_windows", "split_sentences", "tokenize_13a", "tokenize_char", "tokenize_intl",
    "tokenize_none", "tokenize_zh", "union_lcs",
]
