"""Lesson 01's checks: a byte-level BPE's five functions, graded against tiktoken.

The functions under test (exercise.py has their signatures): get_stats, merge, train, encode, decode, with
ids 0..255 = byte values and merges {(a, b): new_id}. Every comparison is exact (token ids, counts, hashes).

    basics       get_stats / merge on small id lists (reference: collections.Counter and a plain loop)
    training     train() on 30,000 characters of tiny Shakespeare with GPT-2's regex: the first 32 merges
                 must equal tiktoken's educational trainer's (before its first tied count, where its
                 tie-break and ours may differ); then 7 small texts that reach tied counts, where the
                 documented tie-break (the smallest pair) decides
    small vocab  encode/decode with GPT-2's first 1,000 tokens (shipped in reference/small_vocab.json) must
                 give tiktoken's ids for 18 tricky texts: always graded, no ../shared needed. GPT-2
                 numbers byte tokens in its own order, so this check translates your byte ids (0..255 =
                 byte value) into GPT-2's and back for you.
    GPT-2        the same texts with GPT-2's 50,000 merges (read from ../shared/data/gpt2.tiktoken)
    corpora      the token count and the sha256 of the id stream of tiny Shakespeare and the Tang poems
    class        if the module also has a BPETokenizer class (minigpt's does): from_tiktoken, special
                 tokens allowed or not, decode of ids that end mid-character, and streaming decode

The GPT-2, corpus and class checks are skipped when ../shared/data is absent.
"""

from __future__ import annotations

import base64
import hashlib

import numpy as np

from minigpt.course.grader import Step, load_reference
from minigpt.files.paths import shared_data
from minigpt.tokenizer.files import read_tiktoken, recover_merges

IMPL = ("minigpt.tokenizer.bpe", "minigpt.tokenizer.bpe_tokenizer")   # the functions, and the class


def _in_byte_ids(byte_ids, merges):
    """GPT-2-numbered merges with byte tokens renumbered to byte values, and the maps between the two."""
    to_byte = {rank: b for b, rank in enumerate(byte_ids)}            # GPT-2 id < 256 -> byte value

    def mine(i: int) -> int:
        return to_byte.get(i, i)

    learner_merges = {(mine(a), mine(b)): idx for (a, b), idx in merges.items()}

    def to_gpt2(ids):                                                 # byte value -> GPT-2's id
        return [byte_ids[i] if i < 256 else i for i in ids]

    def from_gpt2(ids):
        return [mine(i) for i in ids]

    return learner_merges, to_gpt2, from_gpt2


def _gpt2_in_byte_ids(path):
    byte_ids, merges = recover_merges(read_tiktoken(path), source=str(path))
    return _in_byte_ids(byte_ids, merges)


def _small_in_byte_ids(small):
    """reference/small_vocab.json: byte ids from the single-byte ranks, merges as tiktoken found them."""
    byte_ids = [0] * 256
    for token, rank in small["ranks"]:
        raw = base64.b64decode(token)
        if len(raw) == 1:
            byte_ids[raw[0]] = rank
    return _in_byte_ids(byte_ids, {(a, b): idx for a, b, idx in small["merges"]})


def _get_stats(impl, g) -> None:
    for k, case in enumerate(load_reference(__file__, "basics.json")):
        with g.case(f"get_stats #{k} {case['ids']}", pitfall="overlap"):
            stats = impl.get_stats(list(case["ids"]))
            g.equal("pair counts", sorted([a, b, n] for (a, b), n in stats.items()), case["stats"])


def _merge(impl, g) -> None:
    for k, case in enumerate(load_reference(__file__, "basics.json")):
        with g.case(f"merge #{k} {case['ids']} {tuple(case['pair'])} -> {case['idx']}", pitfall="overlap"):
            g.equal("ids", list(impl.merge(list(case["ids"]), tuple(case["pair"]), case["idx"])),
                    case["merged"])


def _train(impl, g) -> None:
    train = load_reference(__file__, "training.json")
    with g.case(f"train: {len(train['merges'])} merges on tiny Shakespeare vs tiktoken's trainer",
                pitfall="ties"):
        merges = impl.train(train["text"], train["vocab_size"], train["pattern"])
        got = sorted([[a, b, idx] for (a, b), idx in merges.items()], key=lambda m: m[2])
        g.equal("merges [left, right, new]", got, train["merges"])
    for case in train["tie_cases"]:
        with g.case(f"train with tied counts ({case['tied_steps']} tied steps): {case['text'][:30]!r}",
                    pitfall="ties"):
            merges = impl.train(case["text"], case["vocab_size"], case["pattern"])
            got = sorted([[a, b, idx] for (a, b), idx in merges.items()], key=lambda m: m[2])
            g.equal("merges [left, right, new] (ties: the smallest pair)", got, case["merges"])


HOW_GPT2 = ("../shared/data/gpt2.tiktoken is not available: put GPT-2's gpt2.tiktoken in ../shared/data/ "
            "(minigpt download gpt2-tiktoken) to grade encode and decode with all 50,000 merges")


def _encode_decode(impl, g) -> None:
    # ---- a small vocabulary (shipped, always graded) ---------------------------------------------------
    small = load_reference(__file__, "small_vocab.json")
    small_merges, to_small, from_small = _small_in_byte_ids(small)
    for case in small["texts"]:
        with g.case(f"encode/decode, GPT-2's first {small['vocab_size']} tokens: {case['name']}",
                    pitfall="priority"):
            g.equal("ids", to_small(impl.encode(case["text"], small_merges, small["pattern"])), case["ids"])
            g.equal("decode(ids)", impl.decode(from_small(case["ids"]), small_merges), case["text"])
    for case in small["partial"]:
        with g.case(f"decode ids that end mid-character (small vocabulary) {case['ids']}", pitfall="replace"):
            g.equal("text (U+FFFD for broken UTF-8)", impl.decode(from_small(case["ids"]), small_merges),
                    case["text"])

    # ---- GPT-2's 50,000 merges (../shared/data) ----------------------------------------------------------
    path = shared_data("gpt2.tiktoken")
    if path is None:
        g.skip("GPT-2 ids: encode and decode with all 50,000 merges", HOW_GPT2)
        return
    ref = load_reference(__file__, "gpt2_texts.json")
    pattern = load_reference(__file__, "training.json")["pattern"]
    gpt2_merges, to_gpt2, from_gpt2 = _gpt2_in_byte_ids(path)
    for case in ref["texts"]:                                          # the functions know no special tokens:
        with g.case(f"GPT-2 encode/decode: {case['name']}", pitfall="priority"):   # special text is ordinary
            ids = to_gpt2(impl.encode(case["text"], gpt2_merges, pattern))
            g.equal("ids", ids, case["ordinary_ids"])
            g.equal("decode(ids)", impl.decode(from_gpt2(case["ordinary_ids"]), gpt2_merges), case["text"])
    for case in ref["partial"]:
        with g.case(f"GPT-2 decode ids that end mid-character {case['ids']}", pitfall="replace"):
            g.equal("text (U+FFFD for broken UTF-8)", impl.decode(from_gpt2(case["ids"]), gpt2_merges),
                    case["text"])

    corpora = load_reference(__file__, "corpora.json")
    for name, want in corpora.items():
        corpus = shared_data(name)
        if corpus is None or hashlib.sha256(corpus.read_bytes()).hexdigest() != want["file_sha256"]:
            g.skip(f"GPT-2 on {name}", "the corpus is absent or not the file the reference was made from: "
                   f"put {name} in ../shared/data/ (minigpt download) to grade it")
            continue
        with g.case(f"GPT-2 encode {name}", pitfall="priority"):
            ids = to_gpt2(impl.encode(corpus.read_text(encoding="utf-8"), gpt2_merges, pattern))
            g.equal("token count", len(ids), want["tokens"])
            g.equal("first ids", ids[:16], want["first_ids"])
            g.equal("sha256 of the ids", hashlib.sha256(np.asarray(ids, dtype="<u4").tobytes()).hexdigest(),
                    want["ids_sha256"])


def _tokenizer_class(impl, g) -> None:
    if not hasattr(impl, "BPETokenizer"):
        g.skip("BPETokenizer class", "your module has no BPETokenizer class (optional; "
               "minigpt/tokenizer/bpe_tokenizer.py has one): define it to have it graded")
        return
    path = shared_data("gpt2.tiktoken")
    if path is None:
        g.skip("BPETokenizer.from_tiktoken", HOW_GPT2)
        return
    ref = load_reference(__file__, "gpt2_texts.json")
    with g.case("BPETokenizer.from_tiktoken"):
        tok = impl.BPETokenizer.from_tiktoken(path)
        g.equal("vocab_size", tok.vocab_size, 50257)
        for case in ref["texts"]:
            allowed, disallowed = case["allowed_special"], case["disallowed_special"]
            kwargs = {"allowed_special": allowed if allowed == "all" else set(allowed),
                      "disallowed_special": disallowed if disallowed == "all" else set(disallowed)}
            what = f"encode {case['name']!r} allowed_special={allowed} disallowed_special={disallowed}"
            if case["raises"]:
                try:
                    tok.encode(case["text"], **kwargs)
                    raised = False
                except ValueError:
                    raised = True
                g.true(f"{what} raises ValueError (special-token text, as tiktoken)", raised)
            else:
                g.equal(what, tok.encode(case["text"], **kwargs), case["ids"])
            g.equal(f"encode_ordinary {case['name']!r}", tok.encode_ordinary(case["text"]),
                    case["ordinary_ids"])
            g.equal(f"decode {case['name']!r}", tok.decode(case["ordinary_ids"]), case["text"])
        for case in ref["partial"]:
            g.equal(f"decode {case['ids']}", tok.decode(case["ids"]), case["text"])
            g.equal(f"decode_bytes {case['ids']}", tok.decode_bytes(case["ids"]).hex(), case["bytes_hex"])
    with g.case("BPETokenizer.stream_decoder: only whole characters"):
        for case in ref["texts"]:
            dec = tok.stream_decoder()
            pieces = [dec.push(i) for i in case["ordinary_ids"]]
            text = "".join(pieces) + dec.flush()
            g.true(f"{case['name']!r}: joined pieces == text, no U+FFFD",
                   text == case["text"] and all("\ufffd" not in p for p in pieces))


STEPS = [
    Step(1, "count adjacent pairs", ("get_stats",), _get_stats),
    Step(2, "merge a pair, left to right", ("merge",), _merge),
    Step(3, "learn the merges", ("train",), _train),
    Step(4, "encode and decode with GPT-2's merges", ("encode", "decode"), _encode_decode),
    Step(5, "optional: the full tokenizer class (special tokens, streaming)", ("BPETokenizer",),
         _tokenizer_class),
]
