"""Evaluation metrics, one import: perplexity for language models, BLEU and ROUGE for generated text.

    from minigpt import metrics
    metrics.perplexity(model, ids)               # exp(mean cross-entropy), sliding windows (perplexity.py)
    metrics.bleu(hypotheses, references)         # == sacrebleu.corpus_bleu(hypotheses, [references]).score
    metrics.bleu(hypotheses, refs, tokenize="zh")        # Chinese: one token per character
    metrics.bleu(hypotheses, ref_streams=[refs_a, refs_b])  # several references, sacrebleu's shape
    metrics.bleu_details(...)                    # score, precisions, bp, sys_len, ref_len, counts, totals
    metrics.sentence_bleu(hypothesis, references)  # == sacrebleu.sentence_bleu (effective order)
    metrics.rouge(hypothesis, reference)         # {"rouge1"|"rouge2"|"rougeL": (precision, recall, fmeasure)}
    metrics.rouge(hypothesis, reference, tokenizer="char")  # Chinese (rouge-score's tokenizer drops it)

The building blocks the lesson grades (on token lists) are re-exported too: ngram_counts,
modified_precision, closest_ref_len, brevity_penalty, corpus_bleu, lcs_length, rouge_n, rouge_l.
This file only gathers names; the code and its explanations live in bleu.py, bleu_tokenizers.py, rouge.py
and perplexity.py. No third-party metric library is imported anywhere in minigpt.
"""

from minigpt.metrics.bleu import (
    BleuDetails,
    bleu,
    bleu_details,
    brevity_penalty,
    closest_ref_len,
    corpus_bleu,
    corpus_bleu_details,
    modified_precision,
    ngram_counts,
    sentence_bleu,
)
from minigpt.metrics.bleu_tokenizers import is_chinese_char, tokenize_13a, tokenize_none, tokenize_zh
from minigpt.metrics.perplexity import mean_nll, perplexity, sliding_windows
from minigpt.metrics.rouge import fmeasure, lcs_length, rouge, rouge_l, rouge_n, rouge_tokenize

__all__ = [
    "BleuDetails", "bleu", "bleu_details", "brevity_penalty", "closest_ref_len", "corpus_bleu",
    "corpus_bleu_details", "fmeasure", "is_chinese_char", "lcs_length", "mean_nll", "modified_precision",
    "ngram_counts", "perplexity", "rouge", "rouge_l", "rouge_n", "rouge_tokenize", "sentence_bleu",
    "sliding_windows", "tokenize_13a", "tokenize_none", "tokenize_zh",
]
