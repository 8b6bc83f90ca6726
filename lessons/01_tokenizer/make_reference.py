"""Write lessons/01_tokenizer/reference/ with tiktoken, never with minigpt.

    gpt2_texts.json   GPT-2 ids for a set of tricky texts (English, code, whitespace runs, digits,
                      contractions, Chinese, emoji, CRLF, NBSP, combining marks, "<|endoftext|>" allowed,
                      refused and as ordinary text), from tiktoken.Encoding built offline with GPT-2's ranks
                      from ../shared/data/gpt2.tiktoken (see ../shared/NOTES.md 1.6): per text the ordinary
                      ids (encode_ordinary) and encode(text, allowed_special, disallowed_special)'s ids or
                      "raises"; and tiktoken's decode of a few id lists that end mid-character.
    small_vocab.json  self-contained, so encode/decode are graded without ../shared: GPT-2's first
                      SMALL_VOCAB tokens (ranks as base64), the merges tiktoken's educational encoder
                      finds for them ([left, right, new] in GPT-2's ids), and the ids tiktoken.Encoding
                      built from those ranks gives on the texts above (and its decode of partial ids).
    corpora.json      for the two shared corpora: the file's sha256, its GPT-2 token count, and the sha256
                      of the id stream (ids as little-endian uint32, concatenated).
    training.json     tiktoken's own teaching trainer (tiktoken._educational.bpe_train) on 30,000 characters
                      of tiny Shakespeare (stored in the file):
                      its merges as [left_id, right_id, new_id]. Its tie-break (the first pair counted) is
                      not minigpt's (the smallest pair), so we keep only merges whose winning count was
                      unique at that step, which this script verifies by recounting with collections.Counter.
                      Plus "tie_cases": small texts that reach tied counts early and often, trained with
                      the documented tie-break (highest count, then the smallest pair) by a plain
                      Counter loop written here (train_with_ties), which is first checked against
                      tiktoken's trainer on every step before the first tie.
    basics.json       get_stats / merge on small id lists, computed with collections.Counter and a plain loop
                      (the definitions, written out here independently of minigpt).
    meta.json         versions, pattern, sources.

Run: python lessons/01_tokenizer/make_reference.py   (needs tiktoken and ../shared/data)
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
from collections import Counter
from pathlib import Path

os.environ.setdefault("TIKTOKEN_CACHE_DIR", "")  # never cache or download: the ranks file is local

import numpy as np
import regex
import tiktoken
from tiktoken import _educational
from tiktoken.load import load_tiktoken_bpe

HERE = Path(__file__).resolve().parent
OUT = HERE / "reference"
SHARED = HERE.parent.parent.parent / "shared" / "data"
# tiktoken's r50k_base pattern (tiktoken_ext/openai_public.py), equivalent to openai/gpt-2's encoder.py
GPT2_PAT = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""

TEXTS = {
    "english": "The quick brown fox jumps over the lazy dog. Hello, world!",
    "shakespeare": "First Citizen:\nBefore we proceed any further, hear me speak.\n\nAll:\nSpeak, speak.",
    "code": 'def add(a, b):\n    """Sum."""\n    return a + b  # two spaces\n\tif x: print(x)\n',
    "whitespace runs": "a   b\t\t c  \n\n\n   d    \n",
    "trailing spaces": "Hello  world  ",
    "digits": "3.14159 and 1234567890, year 2024, 1e-5, $1,000,000.",
    "contractions": "I'm sure it's fine, we'll see; they've said you'd know. I'M HERE'S DON'T",
    "chinese": "床前明月光，疑是地上霜。举头望明月，低头思故乡。",
    "chinese short": "我说你倒是快点啊",
    "emoji": "I love 🤗 and 😀! Family: 👩‍👩‍👧 flags: 🇫🇷🇯🇵",
    "crlf": "line one\r\nline two\r\n\r\nend",
    "nbsp": "100\u00a0km and\u00a0\u00a0two\u202fnarrow",
    "combining marks": "e\u0301 vs \u00e9, n\u0303, Z\u0335\u0321a\u0337lgo",
    "mixed scripts": "Привет мир, γειά σου, مرحبا, नमस्ते, こんにちは",
    "special as text": "Hello<|endoftext|>World",           # tiktoken's default refuses it
    "special as ordinary text": "<|endoftext|>",          # 7 tokens: <, |, end, of, text, |, >
    "special allowed": "Hello<|endoftext|>World <|endoftext|>",
    "empty": "",
}
ALLOWED = {"special allowed": "all"}      # encode(text, allowed_special=...) for these; [] for the others
DISALLOWED = {"special as ordinary text": []}   # ... disallowed_special=(); "all" (tiktoken's default) else
PARTIAL = [[22755], [22755, 239], [31373, 22755], [220, 161, 222]]   # ids that end mid-character

TRAIN_SLICE = slice(600_000, 630_000)     # 30,000 characters of tiny Shakespeare: 32 merges before a tie
TRAIN_VOCAB = 256 + 100
SMALL_VOCAB = 1000                        # GPT-2's tokens 0..999: 256 bytes + 744 merges (~15 kB)
TIE_CASES = [                             # (text, number of merges, pattern or None)
    ("aaabdaaabac", 3, None),             # Wikipedia's example: step 2 ties (Z, a) with (a, b)
    ("abcd", 1, None), ("dcba", 2, None), ("zyzy yzyz", 4, GPT2_PAT), ("ab ba ab ba cd dc", 6, GPT2_PAT),
    ("the cat sat on the mat, the rat ate the hat", 12, GPT2_PAT),
]
TIE_SHAKESPEARE = slice(0, 2_000)         # and the start of tiny Shakespeare, 60 merges (many tied steps)


def gpt2_encoding() -> tiktoken.Encoding:
    ranks = load_tiktoken_bpe(str(SHARED / "gpt2.tiktoken"))
    return tiktoken.Encoding("gpt2_local", pat_str=GPT2_PAT, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256}, explicit_n_vocab=50257)


def sha256_ids(ids: list[int]) -> str:
    return hashlib.sha256(np.asarray(ids, dtype="<u4").tobytes()).hexdigest()


def training_reference(text: str) -> list[list[int]]:
    """tiktoken's educational trainer; keep the merges up to the first step whose best count is tied."""
    ranks = _educational.bpe_train(text, TRAIN_VOCAB, GPT2_PAT, visualise=None)
    by_rank = sorted(ranks.items(), key=lambda item: item[1])
    merges: list[list[int]] = []
    words = [[bytes([b]) for b in w.encode()] for w in regex.findall(GPT2_PAT, text)]
    for token, rank in by_rank[256:]:
        below = {t: r for t, r in ranks.items() if r < rank}
        left, right = _educational.bpe_encode(below, token, visualise=None)   # tiktoken splits it
        stats = Counter(p for w in words for p in zip(w, w[1:], strict=False))
        top = stats.most_common(2)
        pair = (by_rank[left][0], by_rank[right][0])
        assert top[0][0] == pair or stats[pair] == top[0][1], "tiktoken did not take the most frequent pair"
        if len(top) > 1 and top[1][1] == top[0][1]:
            break                                                              # a tie: stop here
        merges.append([left, right, rank])
        words = [_merge(w, pair) for w in words]
    return merges


def train_with_ties(text: str, num_merges: int, pattern: str | None) -> tuple[list[list[int]], int]:
    """The documented rule, written out independently of minigpt: count pairs over all chunks, merge the
    highest count, ties to the smallest (a, b). Returns [left, right, new] (ids 0..255 = bytes) and how
    many steps had a tied top count."""
    words = [list(w.encode()) for w in (regex.findall(pattern, text) if pattern else [text])]
    merges, tied = [], 0
    for new in range(256, 256 + num_merges):
        stats = Counter(p for w in words for p in zip(w, w[1:], strict=False))
        top = max(stats.values())
        best = min(p for p, n in stats.items() if n == top)
        tied += sum(1 for n in stats.values() if n == top) > 1
        merges.append([best[0], best[1], new])
        words = [_merge_ids(w, best, new) for w in words]
    return merges, tied


def _merge_ids(word: list[int], pair: tuple[int, int], new: int) -> list[int]:
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def tie_cases(shakespeare: str, unique_prefix: list[list[int]], train_text: str) -> list[dict]:
    # the independent trainer must agree with tiktoken's on every step before the first tie
    mine, _ = train_with_ties(train_text, len(unique_prefix), GPT2_PAT)
    ranks = _educational.bpe_train(train_text, TRAIN_VOCAB, GPT2_PAT, visualise=None)
    by_rank = sorted(ranks.items(), key=lambda item: item[1])
    as_bytes = [[by_rank[a][0], by_rank[b][0]] for a, b, _ in unique_prefix]
    vocab = {i: bytes([i]) for i in range(256)}
    for a, b, new in mine:
        vocab[new] = vocab[a] + vocab[b]
    assert [[vocab[a], vocab[b]] for a, b, _ in mine] == as_bytes, "train_with_ties disagrees with tiktoken"
    cases = []
    for text, n, pattern in [*TIE_CASES, (shakespeare[TIE_SHAKESPEARE], 60, GPT2_PAT)]:
        merges, tied = train_with_ties(text, n, pattern)
        assert tied > 0, f"no tie in {text[:30]!r}"
        cases.append({"text": text, "pattern": pattern, "vocab_size": 256 + n, "merges": merges,
                      "tied_steps": tied})
    return cases


def small_vocab(enc_texts: dict[str, str]) -> dict:
    """GPT-2's first SMALL_VOCAB tokens, their merges as tiktoken finds them, and tiktoken's ids."""
    full = load_tiktoken_bpe(str(SHARED / "gpt2.tiktoken"))
    ranks = {t: r for t, r in full.items() if r < SMALL_VOCAB}
    merges = []
    for token, rank in sorted(ranks.items(), key=lambda item: item[1])[256:]:
        below = {t: r for t, r in ranks.items() if r < rank}
        left, right = _educational.bpe_encode(below, token, visualise=None)     # exactly two parts
        merges.append([left, right, rank])
    enc = tiktoken.Encoding("gpt2_small", pat_str=GPT2_PAT, mergeable_ranks=ranks, special_tokens={})
    texts = [{"name": name, "text": text, "ids": enc.encode_ordinary(text)}
             for name, text in enc_texts.items()]
    for case in texts:
        assert enc.decode(case["ids"]) == case["text"]
    partial = []
    for text in ("我", "😀", "é"):
        ids = enc.encode_ordinary(text)[:-1] or enc.encode_ordinary(text)
        partial.append({"ids": ids, "text": enc.decode(ids)})
    return {"vocab_size": SMALL_VOCAB, "pattern": GPT2_PAT,
            "ranks": [[base64.b64encode(t).decode(), r] for t, r in sorted(ranks.items(), key=lambda x: x[1])
                      ],
            "merges": merges, "texts": texts, "partial": partial}


def _merge(word: list[bytes], pair: tuple[bytes, bytes]) -> list[bytes]:
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and (word[i], word[i + 1]) == pair:
            out.append(pair[0] + pair[1])
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def basics() -> list[dict]:
    cases = [[1, 2, 3, 1, 2], [5, 5, 5, 5], [7], [], [0, 1, 0, 1, 0, 1, 1]]
    pairs = [(1, 2), (5, 5), (7, 7), (1, 2), (0, 1)]
    out = []
    for ids, pair in zip(cases, pairs, strict=True):
        stats = Counter(zip(ids, ids[1:], strict=False))
        merged, i = [], 0
        while i < len(ids):
            if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
                merged.append(999)
                i += 2
            else:
                merged.append(ids[i])
                i += 1
        out.append({"ids": ids, "stats": sorted([a, b, n] for (a, b), n in stats.items()),
                    "pair": list(pair), "idx": 999, "merged": merged})
    return out


def main() -> None:
    OUT.mkdir(exist_ok=True)
    enc = gpt2_encoding()
    texts = []
    for name, text in TEXTS.items():
        allowed = ALLOWED.get(name, [])
        disallowed = DISALLOWED.get(name, "all")
        try:
            ids = enc.encode(text, allowed_special=set(allowed) if allowed != "all" else "all",
                             disallowed_special=disallowed if disallowed == "all" else set(disallowed))
        except ValueError:
            ids = None                                                   # tiktoken refuses the text
        ordinary = enc.encode_ordinary(text)
        assert enc.decode(ordinary) == text
        texts.append({"name": name, "text": text, "allowed_special": allowed,
                      "disallowed_special": disallowed, "ids": ids, "raises": ids is None,
                      "ordinary_ids": ordinary})
    partial = [{"ids": ids, "text": enc.decode(ids), "bytes_hex": enc.decode_bytes(ids).hex()}
               for ids in PARTIAL]
    (OUT / "gpt2_texts.json").write_text(json.dumps({"texts": texts, "partial": partial}, ensure_ascii=False,
                                                    indent=1), encoding="utf-8")
    corpora = {}
    for name in ("tinyshakespeare.txt", "tang_poems.txt"):
        raw = (SHARED / name).read_bytes()
        ids = enc.encode_ordinary(raw.decode("utf-8"))
        corpora[name] = {"file_sha256": hashlib.sha256(raw).hexdigest(), "bytes": len(raw),
                         "tokens": len(ids), "ids_sha256": sha256_ids(ids), "first_ids": ids[:16]}
    (OUT / "corpora.json").write_text(json.dumps(corpora, indent=1), encoding="utf-8")
    train_text = (SHARED / "tinyshakespeare.txt").read_text(encoding="utf-8")[TRAIN_SLICE]
    merges = training_reference(train_text)
    shakespeare = (SHARED / "tinyshakespeare.txt").read_text(encoding="utf-8")
    ties = tie_cases(shakespeare, merges, train_text)
    (OUT / "training.json").write_text(json.dumps({"text": train_text, "pattern": GPT2_PAT,
                                                   "vocab_size": 256 + len(merges), "merges": merges,
                                                   "tie_cases": ties}), encoding="utf-8")
    small = small_vocab({c["name"]: c["text"] for c in texts})
    (OUT / "small_vocab.json").write_text(json.dumps(small, ensure_ascii=False), encoding="utf-8")
    (OUT / "basics.json").write_text(json.dumps(basics()), encoding="utf-8")
    meta = {"tiktoken": tiktoken.__version__, "regex": regex.__version__, "python": platform.python_version(),
            "pattern": GPT2_PAT, "special_tokens": {"<|endoftext|>": 50256},
            "ranks": "gpt2.tiktoken, sha256 306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
            "ids_sha256": "sha256 of the ids as little-endian uint32, concatenated",
            "training": f"tiktoken._educational.bpe_train, {len(merges)} merges before the first tied count; "
                        f"tie_cases: the documented tie-break by train_with_ties, checked against tiktoken",
            "small_vocab": f"GPT-2's ranks 0..{SMALL_VOCAB - 1}; merges: tiktoken._educational.bpe_encode"}
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    print(f"wrote {OUT}: {len(texts)} texts, corpora {[(k, v['tokens']) for k, v in corpora.items()]}, "
          f"{len(merges)} training merges")


if __name__ == "__main__":
    main()
