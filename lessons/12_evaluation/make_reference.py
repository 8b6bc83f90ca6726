"""Write lesson 12's references with the libraries people report numbers with: sacrebleu, rouge-score, torch.

What it writes (reference/):
    bleu.json        corpus BLEU cases (sacrebleu.corpus_bleu): English, punctuation, numbers, empty
                     hypotheses, repeated words, several and missing references, Chinese with tokenize="zh"
                     (and with "13a", the pitfall); each with sacrebleu's score, precisions, bp, lengths,
                     counts and totals, and the tokens sacrebleu's tokenizer made (for the learner's
                     functions, which work on tokens); plus sentence_bleu cases (effective order)
    tokenize.json    strings tokenized by sacrebleu's 13a and zh tokenizers, and the code-point ranges its
                     zh tokenizer treats as Chinese (found by asking it about every code point)
    ngrams.json      n-gram counts of a few token lists (sacrebleu's extract_all_word_ngrams)
    rouge.json       rouge-score RougeScorer(["rouge1", "rouge2", "rougeL"]) on pairs we wrote: default
                     tokenizer, and a character tokenizer passed as RougeScorer(tokenizer=...) for Chinese;
                     tokens and LCS length (rouge-score's own table) for the learner's rouge_n / rouge_l
    perplexity.npz   a fake model (logits = token table[idx] + position table[t]) and a sequence, with the
                     sliding-window perplexity torch's F.cross_entropy gives for several strides, computed
                     with the loop of Hugging Face's perplexity guide (written here, not taken from minigpt)
    meta.json        library versions, seeds, shapes
  and, for the options tests (tests/test_metrics_sacrebleu.py, tests/test_metrics_rouge_score.py):
    bleu_options.json      sacrebleu BLEU(...).corpus_score on seeded random corpora, 6 for every tokenizer
                           (13a zh intl char none) x smoothing (exp none floor add-k) pair, with random
                           smooth_value, max_ngram_order 1-6, effective_order, lowercase, missing references;
                           sentence_bleu with options; BLEU.compute_bleu on random statistics
    tokenize_options.json  every one of those tokenizers on random Unicode strings
    rouge_options.json     RougeScorer(types, use_stemmer) score / score_multi on Tiny Shakespeare lines (all
                           types, rougeLsum on multi-line text), a char tokenizer on Tang poems, and
                           BootstrapAggregator.aggregate() after np.random.seed(seed)
    porter.npz             rouge-score's stemmer (nltk's PorterStemmer()) on every word of Tiny Shakespeare
                           and on words built to hit every rule

It never imports minigpt: the references must come from independent implementations.
Run: python lessons/12_evaluation/make_reference.py   (needs the `reference` extra: sacrebleu, rouge-score
with its nltk, torch==2.13.0; and ../shared/data/tinyshakespeare.txt and tang_poems.txt)
"""

from __future__ import annotations

import json
import math
import platform
import random
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import sacrebleu
import torch
import torch.nn.functional as F
from rouge_score import rouge_scorer, scoring, tokenizers
from rouge_score import tokenize as rouge_tokenize
from sacrebleu.metrics.bleu import BLEU
from sacrebleu.metrics.helpers import extract_all_word_ngrams
from sacrebleu.tokenizers.tokenizer_zh import TokenizerZh

OUT = Path(__file__).resolve().parent / "reference"
SEED = 12

# ---- BLEU ------------------------------------------------------------------------------------------
# Each case: name, hypotheses, reference streams (sacrebleu's shape: one list per reference "set"), options.
BLEU_CASES = [
    ("worked example", ["The cat sat on the mat."], [["The cat is on the mat."]], {}),
    ("punctuation and numbers",
     ["It's 3.14, roughly - not 22/7!",
      "The meeting starts at 10:30 a.m. on 2024-05-01.",
      "Prices rose 5% to $1,250 (a record)."],
     [["It's about 3.14, not 22/7.",
       "The meeting begins at 10:30 a.m. on 2024-05-01.",
       "Prices rose by 5% to $1,250, a record."]], {}),
    ("mteval clean-up: entities, <skipped>, hyphen at a line break",
     ["&quot;Fine&quot; &amp; co-\noperative <skipped> results."],
     [['"Fine" & cooperative results.']], {}),
    ("an empty hypothesis in the corpus",
     ["", "the quick brown fox jumps over the lazy dog"],
     [["a fast brown fox", "the quick brown fox jumped over the lazy dog"]], {}),
    ("only empty hypotheses", ["", ""], [["a b c", "d e"]], {}),
    ("empty hypothesis and empty reference", [""], [[""]], {}),
    ("repeated words are clipped", ["the the the the the the the"], [["the cat is on the mat"]], {}),
    ("Papineni's example: clip to the max over references, not their sum",
     ["the the the the the the the", "on the mat on the mat on the mat"],
     [["the cat is on the mat", "a cat on the mat"], ["there is a cat on the mat", "on the mat"]], {}),
    ("no overlap at all", ["completely different words here today"], [["nothing in common with that"]], {}),
    ("hypothesis shorter than the reference (brevity penalty)",
     ["the cat sat on the mat"], [["the cat sat on the mat in the sun all day long"]], {}),
    ("hypothesis longer than the reference",
     ["the cat sat on the red mat in the hall near the door"], [["the cat sat on the mat"]], {}),
    ("short hypotheses: no 4-grams anywhere in the corpus", ["the cat", "a dog ran"],
     [["the cat", "a dog ran"]], {}),
    ("no 3-gram or 4-gram matches: exp smoothing", ["a b c d e f", "g h i"], [["a b x d e y", "g h z"]], {}),
    ("two references per segment",
     ["the cat is on the mat", "there is a dog here"],
     [["the cat sat on the mat", "a dog is here"], ["there is a cat on the mat", "there is a dog here"]], {}),
    ("three reference streams, one with a missing reference (None)",
     ["he read the book because he was interested in world history",
      "the weather is nice today"],
     [["he was interested in world history because he read the book", "the weather is good today"],
      ["he read the book as he is interested in world history", None],
      ["because he was interested in world history he read the book", "it is a nice day today"]], {}),
    ("closest reference length, ties go to the shorter", ["a b c d e"], [["a b c d"], ["a b c d e f"]], {}),
    ("case-sensitive by default", ["The Cat Sat On The Mat"], [["the cat sat on the mat"]], {}),
    ("lowercase=True", ["The Cat Sat On The Mat"], [["the cat sat on the mat"]], {"lowercase": True}),
    ("Chinese with tokenize='zh' (Tang couplets)",
     ["秦川雄帝宅，函谷壯皇居。", "綺殿千尋起，離宮百雉餘。", "雲日隱層闕，風煙出綺疏。"],
     [["秦川雄帝宅，函谷壯皇居。", "綺殿千尋起，離宮百尺餘。", "雲日隱層闕，風煙出綺疎。"]],
     {"tokenize": "zh"}),
    ("the same Chinese with the default 13a: a line is one 'word'",
     ["秦川雄帝宅，函谷壯皇居。", "綺殿千尋起，離宮百雉餘。", "雲日隱層闕，風煙出綺疏。"],
     [["秦川雄帝宅，函谷壯皇居。", "綺殿千尋起，離宮百尺餘。", "雲日隱層闕，風煙出綺疎。"]], {}),
    ("Chinese mixed with Latin, digits and curly quotes, tokenize='zh'",
     ["GPT-2模型在2019年发布，“很好”。", "我爱北京天安门"],
     [["GPT-2 模型于2019年发布，“非常好”。", "我爱北京天安门。"]], {"tokenize": "zh"}),
    ("tokenize='none': whitespace only", ["the cat , sat ."], [["the cat, sat."]], {"tokenize": "none"}),
]

SENTENCE_CASES = [
    ("two words, perfect (effective order)", "the cat", ["the cat"]),
    ("one sentence, two references", "the cat is on the mat", ["the cat sat on the mat", "there is a cat"]),
    ("empty hypothesis", "", ["the cat"]),
    ("three words, one wrong", "the cat sits", ["the cat sat"]),
    ("a zero precision in the middle", "a b c d", ["a b x d"]),
]


def bleu_case(name: str, hyps: list[str], streams: list[list[str | None]], opts: dict) -> dict:
    assert all(isinstance(s, list) and len(s) == len(hyps) for s in streams), f"{name}: streams' shape"
    tokenize = opts.get("tokenize", "13a")
    lowercase = opts.get("lowercase", False)
    score = sacrebleu.corpus_bleu(hyps, streams, tokenize=tokenize, lowercase=lowercase)
    tok = BLEU(tokenize=tokenize).tokenizer

    def prep(text: str) -> list[str]:  # what sacrebleu does to every segment: lowercase, rstrip, tokenize
        return tok((text.lower() if lowercase else text).rstrip()).split()

    segments = [[r for r in refs if r is not None] for refs in zip(*streams, strict=True)]
    return {
        "name": name, "hypotheses": hyps, "ref_streams": streams,
        "tokenize": tokenize, "lowercase": lowercase,
        "hyp_tokens": [prep(h) for h in hyps],
        "ref_tokens": [[prep(r) for r in refs] for refs in segments],
        "score": score.score, "precisions": list(score.precisions), "bp": score.bp,
        "sys_len": score.sys_len, "ref_len": score.ref_len,
        "counts": list(score.counts), "totals": list(score.totals),
    }


def sentence_case(name: str, hyp: str, refs: list[str]) -> dict:
    score = sacrebleu.sentence_bleu(hyp, refs)
    tok = BLEU(tokenize="13a").tokenizer
    return {"name": name, "hypothesis": hyp, "references": refs, "score": score.score,
            "hyp_tokens": tok(hyp.rstrip()).split(), "ref_tokens": [tok(r.rstrip()).split() for r in refs]}


# ---- tokenizers ------------------------------------------------------------------------------------
TOKENIZE_STRINGS = [
    "Hello, world! It's 3.14-5 \"x\".", "1,000 people; well-known e-mail.", ".5 and 5. and 5.5",
    "a.b,c 1.a a,1 (parenthesis) [brackets] {braces} <tags> #hash @at $5 50% ^_^ `tick` ~tilde |pipe",
    "co-\noperate <skipped> &quot;q&quot; &amp;&lt;&gt;", "  leading and trailing spaces  ", "tab\there",
    "", "我爱北京天安门。", "GPT-2模型，很好!", "“引号”和—破折号…", "Ｆｕｌｌｗｉｄｔｈ！１２３",
    "mixed中文and English.",
    "秦川雄帝宅，函谷壯皇居。", "€100 → 2×3 ≤ 7", "\U00020000 Extension B", "、。「」〈〉",
]


def chinese_ranges() -> list[list[int]]:
    """Ask sacrebleu's zh tokenizer about every code point; merge the answers into [lo, hi] ranges."""
    ranges: list[list[int]] = []
    for code in range(sys.maxunicode + 1):
        if TokenizerZh._is_chinese_char(chr(code)):
            if ranges and ranges[-1][1] == code - 1:
                ranges[-1][1] = code
            else:
                ranges.append([code, code])
    return ranges


# ---- ROUGE -----------------------------------------------------------------------------------------
class CharTokenizer(tokenizers.Tokenizer):
    """For rouge-score: every non-whitespace character is a token (rouge-score has no such option)."""

    def tokenize(self, text: str) -> list[str]:
        return [c for c in text if not c.isspace()]


ROUGE_CASES = [
    ("worked example", "the cat sat on the mat", "the cat is on the mat", "default"),
    ("case and punctuation", "The Cat's HAT, isn't it?!", "the cat's hat -- isn't it", "default"),
    ("numbers", "In 2024 there were 3,500 cases (up 12%).", "there were 3500 cases in 2024, up 12 %",
     "default"),
    ("accents are not letters to rouge-score", "café déjà vu", "cafe deja vu", "default"),
    ("empty hypothesis", "", "the cat sat", "default"),
    ("empty reference", "the cat sat", "", "default"),
    ("both empty", "", "", "default"),
    ("only punctuation", "?!...", "...", "default"),
    ("repeated words", "the the the the the", "the cat and the hat", "default"),
    ("hypothesis shorter", "the cat", "the cat sat on the mat by the door", "default"),
    ("hypothesis longer", "the cat sat on the mat by the door today", "the cat sat", "default"),
    ("word order scrambled", "mat the on sat cat the", "the cat sat on the mat", "default"),
    ("a longer summary",
     "police killed the gunman after a standoff that lasted several hours downtown",
     "the gunman was killed by police after a long standoff in the city centre", "default"),
    ("Chinese with the default tokenizer: no tokens, all zero",
     "秦川雄帝宅，函谷壯皇居。", "秦川雄帝宅，函谷壯皇居。", "default"),
    ("Chinese, one token per character", "綺殿千尋起，離宮百雉餘。", "綺殿千尋起，離宮百尺餘。", "char"),
    ("Chinese, characters in another order", "風煙出綺疎", "雲日隱層闕，風煙出綺疎", "char"),
    ("English with the char tokenizer", "The cat sat.", "the cat sat", "char"),
]
ROUGE_MULTI_CASES = [
    ("several references: best F per type", "the cat sat on the mat",
     ["a cat was sitting on a mat", "the cat sat on a mat", "on the mat the cat sat"], "default"),
    ("several references, Chinese by character", "離宮百雉餘", ["離宮百尺餘", "宮百雉"], "char"),
]


def rouge_case(name: str, hyp: str, ref: str | list[str], tokenizer: str) -> dict:
    tok = CharTokenizer() if tokenizer == "char" else tokenizers.DefaultTokenizer(use_stemmer=False)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], tokenizer=tok)
    if isinstance(ref, list):
        result = scorer.score_multi(ref, hyp)
    else:
        result = scorer.score(ref, hyp)  # rouge-score takes the reference (target) first
    case = {"name": name, "hypothesis": hyp, "reference": ref, "tokenizer": tokenizer,
            "scores": {k: [float(v.precision), float(v.recall), float(v.fmeasure)]
                       for k, v in result.items()}}
    if isinstance(ref, str):
        hyp_tokens, ref_tokens = tok.tokenize(hyp), tok.tokenize(ref)
        table = rouge_scorer._lcs_table(ref_tokens, hyp_tokens)
        case |= {"hyp_tokens": hyp_tokens, "ref_tokens": ref_tokens, "lcs": int(table[-1][-1])}
    return case


# ---- perplexity ------------------------------------------------------------------------------------
V, BLOCK, N = 11, 8, 61                  # vocabulary, block_size, sequence length (distinct on purpose)
STRIDES = [8, 5, 3, 1]


def hf_style_perplexity(tok_table: torch.Tensor, pos_table: torch.Tensor, ids: torch.Tensor,
                        stride: int) -> tuple[float, int]:
    """The guide's loop: windows of BLOCK inputs every `stride` tokens; labels of already-scored targets
    are set to -100 (ignored). Here a window holds BLOCK inputs *and* the token after the last one, so
    every input position predicts a target; the last window ends at the end of the sequence."""
    nll_sum, n_scored, prev_end = 0.0, 0, 0
    for begin in range(0, len(ids), stride):
        end = min(begin + BLOCK, len(ids) - 1)           # inputs ids[begin:end], targets ids[begin+1:end+1]
        x, y = ids[begin:end], ids[begin + 1:end + 1].clone()
        y[: max(prev_end - begin, 0)] = -100             # predicted by an earlier window already
        logits = tok_table[x] + pos_table[: len(x)]      # (T, V) the fake model
        nll = F.cross_entropy(logits, y, ignore_index=-100, reduction="sum")
        nll_sum += float(nll)
        n_scored += int((y != -100).sum())
        prev_end = end
        if end == len(ids) - 1:
            break
    return math.exp(nll_sum / n_scored), n_scored


def perplexity_reference() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(SEED)
    tok_table = 1.5 * rng.standard_normal((V, V))         # (V, V) logits of the next token given this one
    pos_table = 1.0 * rng.standard_normal((BLOCK, V))     # (BLOCK, V) plus a bias that depends on t
    ids = rng.integers(0, V, size=N)                      # (N,)
    ppl, scored = [], []
    for stride in STRIDES:
        p, n = hf_style_perplexity(torch.tensor(tok_table), torch.tensor(pos_table), torch.tensor(ids),
                                   stride)
        ppl.append(p)
        scored.append(n)
    return {"tok_table": tok_table, "pos_table": pos_table, "ids": ids.astype(np.int64),
            "block_size": np.array(BLOCK), "strides": np.array(STRIDES), "perplexity": np.array(ppl),
            "n_scored": np.array(scored)}



# ---- the libraries' options (tests/test_metrics_sacrebleu.py and tests/test_metrics_rouge_score.py) -----
# Random but seeded inputs, so every option meets punctuation, numbers, Unicode, CJK, empty lines, several
# and missing references. Each case lists its inputs, options and everything the library returned.
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data"
BLEU_TOKENIZERS = ["13a", "zh", "intl", "char", "none"]
SMOOTHINGS = ["exp", "none", "floor", "add-k"]
BLEU_WORDS = [
    "the", "cat", "The", "Cat", "sat", "on", "mat", "a", ".", ",", "3.14", "1,000", "it's", "don't", "e-mail",
    "(x)", "$5", "50%", "«quoted»", "“hi”", "中文", "我爱北京", "。", "，", "€100", "2024.", "x--y", "a.b",
    "Ünïcödé", "—", "…", "😀", "\u00a0", "&amp;", "<skipped>", "12-3", ".5", "5.", "¿qué?", "١٢٣", "½",
    "ＡＢ",
    "dog", "ran", "home", "quickly", "ran.", "Home,", "is", "not", "here!", "x", "y", "z", "秦川雄帝宅",
]


def fuzz_chars() -> list[str]:
    """Characters for tokenizer fuzzing: every Unicode category sacrebleu's regexes care about."""
    spans = [(0x20, 0x7E), (0xA0, 0xFF), (0x2000, 0x206F), (0x20A0, 0x20C0), (0x2190, 0x21FF),
             (0x2E80, 0x2E99), (0x3000, 0x303F), (0x4E00, 0x4E3F), (0xFE30, 0xFE4F), (0xFF00, 0xFF65),
             (0x0660, 0x0669), (0x1F600, 0x1F60F), (0x20000, 0x20007), (0x2F800, 0x2F803)]
    chars = [chr(c) for lo, hi in spans for c in range(lo, hi + 1)]
    return chars + list("0123456789 .,-'\n\t") * 20


def random_text(rng: random.Random, pool: list[str], max_words: int) -> str:
    return "".join(rng.choice(pool) + rng.choice([" ", " ", " ", "", "  ", "\t"])
                   for _ in range(rng.randint(0, max_words)))


def sacrebleu_line(metric: BLEU, score) -> tuple[str, str]:
    """sacrebleu's signature without |version:..., and its printed line with that signature."""
    sig = str(metric.get_signature()).rsplit("|version:", 1)[0]
    return sig, score.format(signature=sig)


def bleu_option_cases(rng: random.Random) -> list[dict]:
    """6 corpora for every tokenizer x smoothing pair, the other options drawn at random."""
    cases = []
    for tokenize in BLEU_TOKENIZERS:
        for smooth in SMOOTHINGS:
            for _ in range(6):
                n = rng.randint(1, 4)
                hyps = [random_text(rng, BLEU_WORDS, 14) for _ in range(n)]
                streams: list[list[str | None]] = [[random_text(rng, BLEU_WORDS, 14) for _ in range(n)]
                                                   for _ in range(rng.randint(1, 3))]
                if len(streams) > 1 and rng.random() < 0.3:
                    streams[-1][0] = None
                value = rng.choice([None, 0.0, 0.01, 0.5, 1, 2]) if smooth in ("floor", "add-k") else None
                opts = {"tokenize": tokenize, "smooth_method": smooth, "smooth_value": value,
                        "max_ngram_order": rng.choice([1, 2, 3, 4, 4, 5, 6]),
                        "effective_order": rng.random() < 0.4, "lowercase": rng.random() < 0.3}
                metric = BLEU(**opts)
                score = metric.corpus_score(hyps, streams)
                sig, line = sacrebleu_line(metric, score)
                cases.append({"hypotheses": hyps, "ref_streams": streams, "options": opts,
                              "score": score.score, "counts": list(score.counts),
                              "totals": list(score.totals), "precisions": list(score.precisions),
                              "bp": score.bp, "sys_len": score.sys_len, "ref_len": score.ref_len,
                              "signature": sig, "line": line})
    return cases


def sentence_option_cases(rng: random.Random) -> list[dict]:
    """sacrebleu.sentence_bleu (effective order on unless drawn off) with random options."""
    cases = []
    for i in range(40):
        hyp = random_text(rng, BLEU_WORDS, 10)
        refs = [random_text(rng, BLEU_WORDS, 10) for _ in range(rng.randint(1, 3))]
        smooth = SMOOTHINGS[i % 4]
        opts = {"tokenize": BLEU_TOKENIZERS[i % 5], "smooth_method": smooth,
                "smooth_value": rng.choice([None, 0.1, 1, 3]) if smooth in ("floor", "add-k") else None,
                "lowercase": rng.random() < 0.3}
        eff = rng.random() < 0.8
        score = sacrebleu.sentence_bleu(hyp, refs, use_effective_order=eff, **opts)
        cases.append({"hypothesis": hyp, "references": refs, "options": opts | {"effective_order": eff},
                      "score": score.score, "counts": list(score.counts), "totals": list(score.totals)})
    return cases


def compute_bleu_cases(rng: random.Random) -> list[dict]:
    """BLEU.compute_bleu on statistics drawn at random, zeros and empty corpora included."""
    cases = []
    for i in range(80):
        order = rng.choice([1, 2, 3, 4, 4, 5])
        total = [max(0, rng.randint(-3, 12) - n) for n in range(order)]
        correct = [rng.randint(0, t) if rng.random() < 0.8 else 0 for t in total]
        sys_len, ref_len = total[0], max(0, total[0] + rng.randint(-4, 6))
        smooth = SMOOTHINGS[i % 4]
        value = rng.choice([None, 0.0, 0.1, 0.5, 1, 2]) if smooth in ("floor", "add-k") else None
        eff = rng.random() < 0.5
        score = BLEU.compute_bleu(list(correct), list(total), sys_len, ref_len, smooth_method=smooth,
                                  smooth_value=value, effective_order=eff, max_ngram_order=order)
        cases.append({"correct": correct, "total": total, "sys_len": sys_len, "ref_len": ref_len,
                      "smooth_method": smooth, "smooth_value": value, "effective_order": eff,
                      "max_ngram_order": order, "score": score.score, "precisions": list(score.precisions),
                      "bp": score.bp, "counts": list(score.counts), "totals": list(score.totals)})
    return cases


def tokenizer_fuzz(rng: random.Random) -> dict:
    """Random strings through every tokenizer sacrebleu has without outside models (after rstrip)."""
    chars = fuzz_chars()
    strings = ["".join(rng.choice(chars) for _ in range(rng.randint(0, 20))).rstrip() for _ in range(250)]
    strings += [w + p + w for w in ("a", "1", "中") for p in ".,-'!?;:()«»“”。，、％＄€+=<>|~^`@#&*/\\_"]
    out: dict = {"strings": strings}
    for name in BLEU_TOKENIZERS:
        tok = BLEU(tokenize=name).tokenizer
        out[name] = [tok(s).split() for s in strings]
    return out


def shakespeare_words() -> list[str]:
    path = SHARED / "tinyshakespeare.txt"
    if not path.exists():
        raise SystemExit(f"{path} is missing: the ROUGE option references draw their text from it")
    return path.read_text(encoding="utf-8").split()


def random_doc(rng: random.Random, words: list[str], lines: int = 4, per_line: int = 25) -> str:
    """A few lines cut from a word list (some shuffled), joined by newlines, blank lines or spaces."""
    out = []
    for _ in range(rng.randint(0, lines)):
        i = rng.randrange(len(words) - per_line)
        line = words[i:i + rng.randint(0, per_line)]
        if rng.random() < 0.3:
            rng.shuffle(line)
        out.append(" ".join(line))
    return rng.choice(["\n", "\n\n", " ", "\n "]).join(out)


ROUGE_TYPE_POOL = ["rouge1", "rouge2", "rouge3", "rouge4", "rouge9", "rougeL", "rougeLsum"]


def rouge_option_cases(rng: random.Random, words: list[str], hanzi: list[str]) -> list[dict]:
    """RougeScorer(types, use_stemmer).score / score_multi on Shakespeare; a char tokenizer on Tang poems."""
    cases = []
    for i in range(180):
        types = rng.sample(ROUGE_TYPE_POOL, rng.randint(1, 4))
        char = i >= 150
        stem = not char and rng.random() < 0.6
        pool = hanzi if char else words
        hyp = random_doc(rng, pool)
        refs = [random_doc(rng, pool) for _ in range(rng.choice([1, 1, 2, 3]))]
        tok = CharTokenizer() if char else None
        scorer = rouge_scorer.RougeScorer(types, use_stemmer=stem, tokenizer=tok)
        result = scorer.score(refs[0], hyp) if len(refs) == 1 else scorer.score_multi(refs, hyp)
        cases.append({"hypothesis": hyp, "references": refs, "types": types, "use_stemmer": stem,
                      "tokenizer": "char" if char else "default",
                      "scores": {k: [float(x) for x in v] for k, v in result.items()}})
    return cases


def bootstrap_cases(rng: random.Random, words: list[str]) -> list[dict]:
    """BootstrapAggregator.aggregate() after np.random.seed(seed), on rouge-score's per-example scores."""
    cases = []
    for confidence, n_samples, n_examples in [(0.95, 1000, 40), (0.9, 1000, 3), (0.0, 100, 7), (1.0, 50, 12),
                                              (0.5, 10, 1), (0.95, 1, 5), (0.8, 200, 25)]:
        types = rng.sample(ROUGE_TYPE_POOL, rng.randint(1, 3))
        scorer = rouge_scorer.RougeScorer(types, use_stemmer=True)
        per_example = [scorer.score(random_doc(rng, words), random_doc(rng, words))
                       for _ in range(n_examples)]
        aggregator = scoring.BootstrapAggregator(confidence_interval=confidence, n_samples=n_samples)
        for s in per_example:
            aggregator.add_scores(s)
        seed = rng.randrange(2**31)
        np.random.seed(seed)
        result = aggregator.aggregate()
        cases.append({"confidence_interval": confidence, "n_samples": n_samples, "seed": seed,
                      "scores": [{k: [float(x) for x in v] for k, v in s.items()} for s in per_example],
                      "aggregate": {k: {bound: [float(x) for x in getattr(v, bound)]
                                        for bound in ("low", "mid", "high")} for k, v in result.items()}})
    return cases


PORTER_PIECES = (
    ["", "b", "tr", "hop", "fil", "fall", "hiss", "fizz", "conflat", "troubl", "siz", "happ", "sky", "enjo",
     "agr", "plast", "mot", "sing", "relat", "condit", "valen", "hesit", "digit", "conform", "radic",
     "differ",
     "vil", "analog", "predic", "oper", "feud", "decis", "hope", "call", "form", "sensit", "sensib", "tripl",
     "electr", "good", "reviv", "allow", "infer", "gyroscop", "adjust", "defens", "irrit", "replac",
     "depend", "adopt", "homolog", "commun", "activ", "angular", "effect", "bowdler", "probat", "rat", "ceas",
     "controll", "roll", "y", "yy", "ay", "oy", "by", "syzyg", "toy", "a", "e", "i", "o", "u", "xyz", "ow"],
    ["ational", "tional", "enci", "anci", "izer", "bli", "alli", "entli", "eli", "ousli", "ization", "ation",
     "ator", "alism", "iveness", "fulness", "ousness", "aliti", "iviti", "biliti", "fulli", "logi", "icate",
     "ative", "alize", "iciti", "ical", "ful", "ness", "al", "ance", "ence", "er", "ic", "able", "ible",
     "ant",
     "ement", "ment", "ent", "ion", "sion", "tion", "ou", "ism", "ate", "iti", "ous", "ive", "ize", "e", "ll",
     "sses", "ies", "ss", "s", "eed", "ed", "ing", "ied", "y", "at", "bl", "iz", "ly", "yy", "ying"],
)


def porter_reference(rng: random.Random, words: list[str]) -> dict[str, np.ndarray]:
    """rouge-score's stemmer (nltk's PorterStemmer()) on every distinct Shakespeare word rouge-score's
    tokenizer yields, and on words built to hit every rule (stems x 1-3 suffixes, short words, digits)."""
    vocabulary = sorted(set(rouge_tokenize.tokenize(" ".join(words), None)))
    stems, suffixes = PORTER_PIECES
    built = {rng.choice(stems) + "".join(rng.choice(suffixes) for _ in range(rng.randint(1, 3)))
             for _ in range(6000)}
    built |= {a + b + c for a in "aeiouy" for b in "bcsty" for c in ("", "s", "e", "y")}
    built |= {"y" * k for k in range(1, 8)} | {"1990s", "3rd", "covid19", "mp3s", "a1b2c3ing"}
    all_words = vocabulary + sorted(built - set(vocabulary))
    stemmer = tokenizers.DefaultTokenizer(use_stemmer=True)._stemmer  # exactly the object rouge-score uses
    return {"words": np.array(all_words), "stems": np.array([stemmer.stem(w) for w in all_words]),
            "n_shakespeare": np.array(len(vocabulary))}


def options_reference() -> dict[str, object]:
    rng = random.Random(SEED)
    words = shakespeare_words()
    tang = SHARED / "tang_poems.txt"
    if not tang.exists():
        raise SystemExit(f"{tang} is missing: the Chinese ROUGE option cases draw their characters from it")
    hanzi = [c for c in tang.read_text(encoding="utf-8")[:20000] if not c.isspace()]
    return {
        "bleu_options": {"corpus": bleu_option_cases(rng), "sentence": sentence_option_cases(rng),
                         "compute_bleu": compute_bleu_cases(rng)},
        "tokenize_options": tokenizer_fuzz(rng),
        "rouge_options": {"cases": rouge_option_cases(rng, words, hanzi),
                          "bootstrap": bootstrap_cases(rng, words)},
        "porter": porter_reference(rng, words),
    }


def write_lines(path: Path, data: dict) -> None:
    """JSON with each case on its own line: readable diffs without indent's thousands of lines."""
    parts = []
    for key, value in data.items():
        if isinstance(value, list):
            items = ",\n  ".join(json.dumps(v, ensure_ascii=False) for v in value)
            parts.append(f" {json.dumps(key)}: [\n  {items}\n ]")
        elif isinstance(value, dict):
            inner = {k: v for k, v in value.items()}
            parts.append(f" {json.dumps(key)}: " + json.dumps(inner, ensure_ascii=False))
        else:
            parts.append(f" {json.dumps(key)}: " + json.dumps(value, ensure_ascii=False))
    path.write_text("{\n" + ",\n".join(parts) + "\n}\n", encoding="utf-8")


# ---- main ------------------------------------------------------------------------------------------
def main() -> None:
    OUT.mkdir(exist_ok=True)
    bleu = {"corpus": [bleu_case(*c) for c in BLEU_CASES],
            "sentence": [sentence_case(*c) for c in SENTENCE_CASES]}
    try:
        sacrebleu.corpus_bleu([], [[]])
        empty = "no error"
    except Exception as exc:  # noqa: BLE001 - we record what sacrebleu does with an empty corpus
        empty = f"{type(exc).__name__}: {exc}"
    bleu["empty_corpus_in_sacrebleu"] = empty
    t13, tzh = BLEU(tokenize="13a").tokenizer, BLEU(tokenize="zh").tokenizer
    tokenize = {"strings": TOKENIZE_STRINGS,
                "13a": [t13(s.rstrip()).split() for s in TOKENIZE_STRINGS],
                "zh": [tzh(s.rstrip()).split() for s in TOKENIZE_STRINGS],
                "zh_chinese_ranges": chinese_ranges()}
    token_lists = [["a", "b", "a", "b", "a"], ["the", "cat", "sat", "on", "the", "mat", "."], ["x"], []]
    ngrams = []
    for tokens in token_lists:
        counts, _ = extract_all_word_ngrams(" ".join(tokens), 1, 4)
        ngrams.append({"tokens": tokens, "counts": [[list(g), c] for g, c in sorted(counts.items())]})
    rouge = {"single": [rouge_case(*c) for c in ROUGE_CASES],
             "multi": [rouge_case(*c) for c in ROUGE_MULTI_CASES]}
    for name, data in (("bleu", bleu), ("tokenize", tokenize), ("ngrams", ngrams), ("rouge", rouge)):
        (OUT / f"{name}.json").write_text(json.dumps(data, ensure_ascii=False, indent=1) + "\n",
                                          encoding="utf-8")
    arrays = perplexity_reference()
    np.savez(OUT / "perplexity.npz", **arrays)
    options = options_reference()
    for name in ("bleu_options", "tokenize_options", "rouge_options"):
        write_lines(OUT / f"{name}.json", options[name])
    np.savez_compressed(OUT / "porter.npz", **options["porter"])
    meta = {
        "sacrebleu": sacrebleu.__version__, "rouge_score": version("rouge-score"),
        "torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
        "seed": SEED, "bleu": "sacrebleu.corpus_bleu defaults: tokenize 13a, smooth exp, max order 4, "
                              "effective order off; sentence_bleu: effective order on",
        "rouge": "RougeScorer(['rouge1','rouge2','rougeL'], use_stemmer=False); char cases pass a tokenizer "
                 "whose tokenize() keeps every non-whitespace character",
        "perplexity": {"V": V, "block_size": BLOCK, "N": N, "strides": STRIDES,
                       "model": "logits[t] = tok_table[ids[t]] + pos_table[t - window start]"},
        "cases": {"bleu corpus": len(bleu["corpus"]), "bleu sentence": len(bleu["sentence"]),
                  "rouge single": len(rouge["single"]), "rouge multi": len(rouge["multi"]),
                  "tokenize strings": len(TOKENIZE_STRINGS),
                  "bleu option corpora": len(options["bleu_options"]["corpus"]),
                  "bleu option sentences": len(options["bleu_options"]["sentence"]),
                  "compute_bleu statistics": len(options["bleu_options"]["compute_bleu"]),
                  "tokenizer fuzz strings": len(options["tokenize_options"]["strings"]),
                  "rouge option cases": len(options["rouge_options"]["cases"]),
                  "bootstrap aggregates": len(options["rouge_options"]["bootstrap"]),
                  "porter words": int(options["porter"]["words"].size)},
        "options": "bleu_options: sacrebleu BLEU(tokenize, smooth_method, smooth_value, max_ngram_order, "
                   "effective_order, lowercase).corpus_score, sentence_bleu and BLEU.compute_bleu on seeded "
                   "random input; tokenize_options: every tokenizer on random Unicode strings; "
                   "rouge_options: "
                   "RougeScorer(types, use_stemmer[, char tokenizer]) on Shakespeare / Tang poem lines and "
                   "BootstrapAggregator after np.random.seed(seed); porter.npz: rouge-score's stemmer "
                   "(nltk PorterStemmer()) on Tiny Shakespeare's vocabulary and built words",
        "nltk": version("nltk"), "regex": version("regex"),
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    for path in sorted(OUT.iterdir()):
        print(f"{path.name:<16} {path.stat().st_size:>8} bytes")
    for c in bleu["corpus"]:
        print(f"BLEU {c['score']:8.4f}  {c['name']}")


if __name__ == "__main__":
    main()
