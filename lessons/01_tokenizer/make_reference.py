"""Write lessons/01_tokenizer/reference/ with tiktoken, never with minigpt.

    gpt2_texts.json   GPT-2 ids for a set of tricky texts (English, code, whitespace runs, digits,
                      contractions, Chinese, emoji, CRLF, NBSP, combining marks, "<|endoftext|>" allowed
                      and not), from tiktoken.Encoding built offline with GPT-2's ranks from
                      ../shared/data/gpt2.tiktoken (see ../shared/NOTES.md 1.6), and tiktoken's decode of a
                      few id lists that end mid-character.
    corpora.json      for the two shared corpora: the file's sha256, its GPT-2 token count, and the sha256
                      of the id stream (ids as little-endian uint32, concatenated).
    training.json     tiktoken's own teaching trainer (tiktoken._educational.bpe_train) on 30,000 characters
                      of tiny Shakespeare (stored in the file):
                      its merges as [left_id, right_id, new_id]. Its tie-break (the first pair counted) is
                      not minigpt's (the smallest pair), so we keep only merges whose winning count was
                      unique at that step, which this script verifies by recounting with collections.Counter.
    basics.json       get_stats / merge on small id lists, computed with collections.Counter and a plain loop
                      (the definitions, written out here independently of minigpt).
    meta.json         versions, pattern, sources.

Run: python lessons/01_tokenizer/make_reference.py   (needs tiktoken and ../shared/data)
"""

from __future__ import annotations

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
    "special as text": "Hello<|endoftext|>World",
    "special allowed": "Hello<|endoftext|>World <|endoftext|>",
    "empty": "",
}
ALLOWED = {"special allowed": "all"}      # every other text is encoded with special tokens as plain text
PARTIAL = [[22755], [22755, 239], [31373, 22755], [220, 161, 222]]   # ids that end mid-character

TRAIN_SLICE = slice(600_000, 630_000)     # 30,000 characters of tiny Shakespeare: 32 merges before a tie
TRAIN_VOCAB = 256 + 100


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
        allowed = ALLOWED.get(name, "none")
        ids = enc.encode(text, allowed_special="all") if allowed == "all" else enc.encode_ordinary(text)
        assert enc.decode(ids) == text
        texts.append({"name": name, "text": text, "allowed_special": allowed, "ids": ids})
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
    (OUT / "training.json").write_text(json.dumps({"text": train_text, "pattern": GPT2_PAT,
                                                   "vocab_size": 256 + len(merges), "merges": merges}),
                                       encoding="utf-8")
    (OUT / "basics.json").write_text(json.dumps(basics()), encoding="utf-8")
    meta = {"tiktoken": tiktoken.__version__, "regex": regex.__version__, "python": platform.python_version(),
            "pattern": GPT2_PAT, "special_tokens": {"<|endoftext|>": 50256},
            "ranks": "gpt2.tiktoken, sha256 306cd27f03c1a714eca7108e03d66b7dc042abe8c258b44c199a7ed9838dd930",
            "ids_sha256": "sha256 of the ids as little-endian uint32, concatenated",
            "training": f"tiktoken._educational.bpe_train, {len(merges)} merges before the first tied count"}
    (OUT / "meta.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    print(f"wrote {OUT}: {len(texts)} texts, corpora {[(k, v['tokens']) for k, v in corpora.items()]}, "
          f"{len(merges)} training merges")


if __name__ == "__main__":
    main()
