"""The Porter stemmer (Porter, 1980) exactly as rouge-score applies it: nltk's PorterStemmer() defaults.

ROUGE with `use_stemmer=True` (what most summarisation papers report) lets "cats" match "cat" and
"running" match "run": every token longer than 3 characters is cut back to its stem before counting.
rouge-score calls nltk's `PorterStemmer()`, whose default mode, NLTK_EXTENSIONS, is Martin Porter's 1980
algorithm plus his later fixes plus a few of nltk's own. This file re-implements that mode rule for rule
(checked against nltk on every word of Tiny Shakespeare and on generated words that hit every rule: see
lessons/12_evaluation/make_reference.py).

The algorithm in one paragraph. Letters are consonants (c) or vowels (v: a e i o u, and y after a
consonant). Any word is [C](VC)^m[V]; m, the *measure*, counts vowel-consonant runs (tree m=0,
trouble m=1, troubles m=2). Five steps strip suffixes in order, each rule guarded by a condition on what
would remain (the *stem*): step 1 plurals and -ed/-ing (caresses -> caress, ponies -> poni, hopping -> hop),
1c y -> i, step 2 double suffixes (relational -> relate), step 3 (-icate, -ful, -ness), step 4 removes
-al, -ance, -er, -ment ... when m > 1, step 5 tidies a final -e and -ll. The first rule whose suffix
matches decides the step, whether or not its condition holds.

Deliberately not here: nltk's other two modes (ORIGINAL_ALGORITHM, MARTIN_EXTENSIONS) and other languages.
"""

from __future__ import annotations

from collections.abc import Callable

_VOWELS = frozenset("aeiou")

# nltk's exceptions, looked up before any rule (word -> stem)
_IRREGULAR: dict[str, str] = {
    "sky": "sky", "skies": "sky", "dying": "die", "lying": "lie", "tying": "tie", "news": "news",
    "innings": "inning", "inning": "inning", "outings": "outing", "outing": "outing",
    "cannings": "canning", "canning": "canning", "howe": "howe", "proceed": "proceed", "exceed": "exceed",
    "succeed": "succeed",
}

Rule = tuple[str, str, Callable[[str], bool] | None]  # (suffix, replacement, condition on the stem)


def _consonant_flags(word: str) -> list[bool]:
    """True where word[i] is a consonant: not a vowel, and a 'y' only after a vowel (or first)."""
    flags: list[bool] = []
    for i, ch in enumerate(word):
        if ch in _VOWELS:
            flags.append(False)
        elif ch == "y":
            flags.append(True if i == 0 else not flags[i - 1])
        else:
            flags.append(True)
    return flags


def _is_consonant(word: str, i: int) -> bool:
    return _consonant_flags(word[: i + 1])[i]


def measure(stem: str) -> int:
    """m in [C](VC)^m[V]: the number of vowel-to-consonant changes. tree 0, trouble 1, troubles 2."""
    flags = _consonant_flags(stem)
    return sum(1 for a, b in zip(flags, flags[1:], strict=False) if not a and b)


def _positive_measure(stem: str) -> bool:
    return measure(stem) > 0


def _contains_vowel(stem: str) -> bool:
    return not all(_consonant_flags(stem))


def _ends_double_consonant(word: str) -> bool:
    """*d: the word ends in two equal consonants (-tt, -ss)."""
    return len(word) >= 2 and word[-1] == word[-2] and _is_consonant(word, len(word) - 1)


def _ends_cvc(word: str) -> bool:
    """*o: the word ends consonant-vowel-consonant, the last not w, x or y (-hop); nltk adds 2-letter vc."""
    if len(word) >= 3:
        flags = _consonant_flags(word)
        if flags[-3] and not flags[-2] and flags[-1] and word[-1] not in "wxy":
            return True
    return len(word) == 2 and not _is_consonant(word, 0) and _is_consonant(word, 1)


def _apply_rules(word: str, rules: list[Rule]) -> str:
    """The first rule whose suffix the word ends with decides: replace it if the condition holds, else stop.

    The suffix "*d" means "ends in a double consonant" (the stem then loses both letters, and the
    replacement puts one back).
    """
    for suffix, replacement, condition in rules:
        if suffix == "*d" and _ends_double_consonant(word):
            stem = word[:-2]
            return stem + replacement if condition is None or condition(stem) else word
        if word.endswith(suffix):
            stem = word[: len(word) - len(suffix)]
            return stem + replacement if condition is None or condition(stem) else word
    return word


def _step1a(word: str) -> str:
    """Plurals: caresses -> caress, ponies -> poni, ties -> tie (nltk), cats -> cat."""
    if word.endswith("ies") and len(word) == 4:
        return word[:-3] + "ie"
    return _apply_rules(word, [("sses", "ss", None), ("ies", "i", None), ("ss", "ss", None), ("s", "", None)])


def _step1b(word: str) -> str:
    """-eed, -ed, -ing: agreed -> agree, plastered -> plaster, hopping -> hop, filing -> file."""
    if word.endswith("ied"):  # nltk: died -> die, spied -> spi
        return word[:-3] + ("ie" if len(word) == 4 else "i")
    if word.endswith("eed"):
        stem = word[:-3]
        return stem + "ee" if measure(stem) > 0 else word
    for suffix in ("ed", "ing"):
        if word.endswith(suffix) and _contains_vowel(word[: len(word) - len(suffix)]):
            stem = word[: len(word) - len(suffix)]
            break
    else:
        return word
    return _apply_rules(stem, [
        ("at", "ate", None), ("bl", "ble", None), ("iz", "ize", None),
        ("*d", stem[-1], lambda _: stem[-1] not in "lsz"),       # hopp -> hop, but fall, hiss, fizz stay
        ("", "e", lambda s: measure(s) == 1 and _ends_cvc(s)),  # fil -> file
    ])


def _step1c(word: str) -> str:
    """y -> i after a consonant that is not the first letter (nltk): happy -> happi, but enjoy, by stay."""
    return _apply_rules(word, [("y", "i", lambda s: len(s) > 1 and _is_consonant(s, len(s) - 1))])


def _step2(word: str) -> str:
    """Double suffixes to single ones, when m > 0: relational -> relate, hopefulness -> hopeful."""
    if word.endswith("alli") and _positive_measure(word[:-4]):  # nltk: -alli -> -al, then step 2 again
        return _step2(word[:-4] + "al")
    rules: list[Rule] = [(suffix, repl, _positive_measure) for suffix, repl in (
        ("ational", "ate"), ("tional", "tion"), ("enci", "ence"), ("anci", "ance"), ("izer", "ize"),
        ("bli", "ble"), ("alli", "al"), ("entli", "ent"), ("eli", "e"), ("ousli", "ous"),
        ("ization", "ize"), ("ation", "ate"), ("ator", "ate"), ("alism", "al"), ("iveness", "ive"),
        ("fulness", "ful"), ("ousness", "ous"), ("aliti", "al"), ("iviti", "ive"), ("biliti", "ble"),
        ("fulli", "ful"))]
    rules.append(("logi", "log", lambda _: _positive_measure(word[:-3])))  # nltk's guard looks at word[:-3]
    return _apply_rules(word, rules)


def _step3(word: str) -> str:
    """-icate, -ative, -alize, -iciti, -ical, -ful, -ness when m > 0: hopeful -> hope, goodness -> good."""
    return _apply_rules(word, [(suffix, repl, _positive_measure) for suffix, repl in (
        ("icate", "ic"), ("ative", ""), ("alize", "al"), ("iciti", "ic"), ("ical", "ic"), ("ful", ""),
        ("ness", ""))])


def _step4(word: str) -> str:
    """Remove a last suffix when m > 1: allowance -> allow, adoption -> adopt (-ion only after s or t)."""
    def m_gt_1(stem: str) -> bool:
        return measure(stem) > 1

    rules: list[Rule] = [(suffix, "", m_gt_1) for suffix in (
        "al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent")]
    rules.append(("ion", "", lambda s: measure(s) > 1 and s[-1] in "st"))
    rules += [(suffix, "", m_gt_1) for suffix in ("ou", "ism", "ate", "iti", "ous", "ive", "ize")]
    return _apply_rules(word, rules)


def _step5a(word: str) -> str:
    """Drop a final e when m > 1, or m == 1 and not *o: probate -> probat, cease -> ceas, but rate stays."""
    if word.endswith("e"):
        stem = word[:-1]
        if measure(stem) > 1 or (measure(stem) == 1 and not _ends_cvc(stem)):
            return stem
    return word


def _step5b(word: str) -> str:
    """-ll -> -l when m > 1: controll -> control, but roll stays."""
    return _apply_rules(word, [("ll", "l", lambda _: measure(word[:-1]) > 1)])


def porter_stem(word: str) -> str:
    """The stem of one word, == nltk.stem.porter.PorterStemmer().stem(word) (it lowercases first)."""
    stem = word.lower()
    if stem in _IRREGULAR:
        return _IRREGULAR[stem]
    if len(word) <= 2:
        return stem
    for step in (_step1a, _step1b, _step1c, _step2, _step3, _step4, _step5a, _step5b):
        stem = step(stem)
    return stem
