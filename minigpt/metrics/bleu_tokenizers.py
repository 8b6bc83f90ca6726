"""BLEU's tokenizers, rule for rule as sacrebleu 2.x applies them: "13a", "zh", "intl", "char" and "none".

A BLEU score is only comparable with another if both split text into words the same way, which is why
sacrebleu fixed one tokenizer per language and prints it in its signature (`tok:13a`). We re-implement the
ones that need no outside model so `minigpt.metrics.bleu` equals `sacrebleu.corpus_bleu` to the last digit:

- "13a"  the tokenizer of WMT's mteval-v13a.pl (sacrebleu's default): split off ASCII punctuation and
         symbols, split periods and commas except inside numbers (3.14, 1,000), split a dash after a digit.
         Apostrophes are never split ("It's" stays one word).
- "zh"   the same rules after putting spaces around every "Chinese" character, so a Chinese sentence is
         scored character by character (Chinese has no spaces between words).
- "intl"  mteval-v14's international tokenizer, on Unicode categories: punctuation (P*: . , ! « » “ ” 。)
         is split from a neighbour that is not a number character (N*), so "3.14" and "1,000" stay whole,
         and every symbol (S*: $ € + © emoji) is split off. No padding: a final "2024." stays one token,
         as in mteval-v14 itself.
- "char"  one token per non-whitespace character: language-agnostic, used for Chinese/Japanese/Thai.
- "none"  whitespace only.

Deliberately not here: sacrebleu's Japanese / Korean (MeCab) and SentencePiece tokenizers (they need
outside models), and its lowercasing (done by the caller, `minigpt.metrics.bleu`).
"""

from __future__ import annotations

import re
from collections.abc import Callable

import regex  # the `regex` package: Unicode categories \p{P}, \p{S}, \p{N}, which `re` lacks

# ---- the shared rules (sacrebleu's TokenizerRegexp, used by both "13a" and "zh") ----------------------
# 1. Put spaces around these ASCII characters: every printable ASCII symbol except the apostrophe ' and
#    the three handled below ( , . - ), plus the space itself (harmless: runs of spaces collapse at the end).
_SYMBOL = re.compile(r"""([ !"#$%&()*+/:;<=>?@\[\\\]^_`{|}~])""")
# 2. A period or comma after a non-digit is split off: "end." -> "end .", but "3.14" is left alone ...
_AFTER_NON_DIGIT = re.compile(r"([^0-9])([.,])")
# 3. ... and so is one before a non-digit: ".5" stays, "1,a" -> "1 , a".
_BEFORE_NON_DIGIT = re.compile(r"([.,])([^0-9])")
# 4. A dash after a digit is split off: "3-5" -> "3 - 5" (a range), but "well-known" stays one word.
_DASH_AFTER_DIGIT = re.compile(r"([0-9])(-)")


def _split_punctuation(line: str) -> list[str]:
    """The four rules above, applied in order (each is one left-to-right regex pass), then split."""
    line = _SYMBOL.sub(r" \1 ", line)
    line = _AFTER_NON_DIGIT.sub(r"\1 \2 ", line)
    line = _BEFORE_NON_DIGIT.sub(r" \1 \2", line)
    line = _DASH_AFTER_DIGIT.sub(r"\1 \2 ", line)
    return line.split()  # any Unicode whitespace, runs collapsed, no empty tokens


def tokenize_13a(line: str) -> list[str]:
    """mteval-v13a: clean a few SGML leftovers, then split punctuation. 'Hello, world!' -> 5 tokens."""
    line = line.replace("<skipped>", "")
    line = line.replace("-\n", "")  # a word hyphenated across a line break is joined again
    line = line.replace("\n", " ")
    if "&" in line:  # the four XML entities mteval un-escapes
        for entity, char in (("&quot;", '"'), ("&amp;", "&"), ("&lt;", "<"), ("&gt;", ">")):
            line = line.replace(entity, char)
    # Padding with spaces matters: a leading "." now follows a non-digit (the space), so rule 2 splits it.
    return _split_punctuation(f" {line} ")


# Code points sacrebleu's "zh" tokenizer treats as Chinese characters. Its table lists CJK blocks; we list
# what that table *does* (checked against every code point in lessons/12_evaluation/make_reference.py).
# Two of its entries, meant for CJK Extension B (U+20000-U+2A6D6) and the Compatibility Supplement
# (U+2F800-U+2FA1D), are written with 4-digit escapes, so they compare as the strings "\u2000" + "0" ...
# "\u2a6d" + "6": the effect is U+2001..U+2A6D (general punctuation such as “ ” — …, currency, arrows,
# maths and dingbats count as "Chinese") while characters beyond U+FFFF never do.
_ZH_RANGES: tuple[tuple[int, int], ...] = (
    (0x2001, 0x2A6D),  # the mis-typed Extension B entry (covers the radicals, symbol and dingbat blocks)
    (0x2E80, 0x2FDF),  # CJK radicals supplement, Kangxi radicals
    (0x2FF0, 0x303F),  # ideographic description characters, CJK punctuation (、。「」)
    (0x3100, 0x312F),  # bopomofo
    (0x31A0, 0x31EF),  # bopomofo extended, CJK strokes
    (0x3200, 0x4DB5),  # enclosed CJK, compatibility, CJK Extension A
    (0x4E00, 0x9FBB),  # CJK unified ideographs (as of Unicode 4.1)
    (0xF900, 0xFA2D), (0xFA30, 0xFA6A), (0xFA70, 0xFAD9),  # CJK compatibility ideographs
    (0xFE10, 0xFE1F), (0xFE30, 0xFE4F),  # vertical forms, CJK compatibility forms
    (0xFF00, 0xFFEF),  # full-width ASCII and punctuation (，！？), half-width katakana
)


def is_chinese_char(char: str) -> bool:
    """True for a code point sacrebleu's "zh" tokenizer puts spaces around (see _ZH_RANGES)."""
    code = ord(char)
    return any(lo <= code <= hi for lo, hi in _ZH_RANGES)


def tokenize_zh(line: str) -> list[str]:
    """Every Chinese character becomes its own token; the rest follows 13a's punctuation rules.

    Unlike "13a" there is no SGML clean-up and no padding, and the line is stripped first, so a leading
    ".5" is kept whole here but split by "13a". '我爱北京。' -> ['我', '爱', '北', '京', '。'].
    """
    spaced = "".join(f" {c} " if is_chinese_char(c) else c for c in line.strip())
    return _split_punctuation(spaced)


# ---- "intl": three passes with Unicode categories (sacrebleu's TokenizerV14International) ---------------
_INTL_RULES = (
    (regex.compile(r"(\P{N})(\p{P})"), r"\1 \2 "),  # punctuation after a non-number: "end." -> "end . "
    (regex.compile(r"(\p{P})(\P{N})"), r" \1 \2"),  # punctuation before a non-number: "(a" -> " ( a"
    (regex.compile(r"(\p{S})"), r" \1 "),            # every symbol: "$5" -> " $ 5", "a+b" -> "a + b"
)


def tokenize_intl(line: str) -> list[str]:
    """mteval-v14 --international-tokenization: '3.14' and '1,000' stay, 'Hello, “world”!' splits.

    Each rule is one left-to-right pass; a character consumed as the right context of one match cannot
    start the next, so "a..b" -> "a . .b" -> "a . . b" needs the second rule to finish the job.
    """
    for pattern, replacement in _INTL_RULES:
        line = pattern.sub(replacement, line)
    return line.split()


def tokenize_char(line: str) -> list[str]:
    """Every character that is not whitespace is a token: '我爱 北京' -> ['我', '爱', '北', '京']."""
    return [c for c in line if not c.isspace()]


def tokenize_none(line: str) -> list[str]:
    """Whitespace only: for text that is already tokenized."""
    return line.split()


TOKENIZERS: dict[str, Callable[[str], list[str]]] = {
    "13a": tokenize_13a,
    "zh": tokenize_zh,
    "intl": tokenize_intl,
    "char": tokenize_char,
    "none": tokenize_none,
}


def get_tokenizer(name: str) -> Callable[[str], list[str]]:
    """The tokenizer called `name`, or a ValueError that lists the ones we have."""
    if name not in TOKENIZERS:
        raise ValueError(f"unknown BLEU tokenizer {name!r}; choose one of {sorted(TOKENIZERS)} "
                         "(sacrebleu's 'ja-mecab', 'ko-mecab' and 'spm' need outside models and are not "
                         "re-implemented)")
    return TOKENIZERS[name]
