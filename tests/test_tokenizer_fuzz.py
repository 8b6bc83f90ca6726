"""A seeded mutation fuzzer over every tokenizer file reader: minigpt's BPE and char JSON, GPT-2's
encoder.json + vocab.bpe, and .tiktoken rank files. Each case truncates, flips bytes, splices, nests,
retypes a field or enlarges a number in a valid file; the reader must either load a working tokenizer or
raise a ValueError (FileFormatError) naming the file, within a time bound.
MINIGPT_FUZZ_CASES=5000 runs a longer campaign (200 cases per reader by default)."""

import base64
import json
import os
import random
import re
import resource
import time

import pytest

from minigpt.tokenizer import BPETokenizer, CharTokenizer
from minigpt.tokenizer.files import bytes_to_unicode

CASES = int(os.environ.get("MINIGPT_FUZZ_CASES", "200"))
SECONDS = 5.0                     # per case; valid files of this size load in milliseconds
TEXT = ("It's 2024: the quick brown fox jumps over the lazy dog, 1234567 times. 床前明月光 😀\n" * 8
        + "<|endoftext|>" + "aaaa abab baba " * 10)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Valid files of every kind, written by minigpt (JSON) or built from a trained vocabulary."""
    folder = tmp_path_factory.mktemp("valid")
    tok = BPETokenizer.train(TEXT, vocab_size=320, pattern="gpt2", special_tokens=("<|endoftext|>", "<|x|>"))
    tok.save(folder / "bpe.json")
    CharTokenizer.from_text(TEXT).save(folder / "char.json")
    n = 256 + len(tok.merges)
    lines = [base64.b64encode(tok.decode_single_token_bytes(i)).decode() + f" {i}" for i in range(n)]
    (folder / "ranks.tiktoken").write_text("\n".join(lines) + "\n")
    table = bytes_to_unicode()                     # byte ids = byte values here, which GPT-2's reader allows
    text = {i: "".join(table[b] for b in tok.decode_single_token_bytes(i)) for i in range(n)}
    encoder = {text[i]: i for i in range(n)} | {"<|endoftext|>": n}
    (folder / "encoder.json").write_text(json.dumps(encoder), encoding="utf-8")
    merges = sorted(tok.merges.items(), key=lambda item: item[1])
    body = "\n".join(f"{text[a]} {text[b]}" for (a, b), _ in merges)
    (folder / "vocab.bpe").write_text("#version: 0.2\n" + body + "\n", encoding="utf-8")
    return {name: (folder / name).read_bytes() for name in
            ("bpe.json", "char.json", "ranks.tiktoken", "encoder.json", "vocab.bpe")}


JUNK = [None, [], {}, "x", "", -1, 0, 1.5, True, 10**25, [[[[1]]]], {"a": [1, 2]}, "gpt2", [1, 2, 3]]


def _retype(data: bytes, rng: random.Random) -> bytes:
    """JSON: replace one value somewhere in the tree with a value of another type; text: one word."""
    try:
        obj = json.loads(data)
    except ValueError:
        words = data.split(b" ")
        words[rng.randrange(len(words))] = rng.choice([b"", b"-1", b"null", b"1e999", b"\xff", b"9" * 40])
        return b" ".join(words)
    node = obj
    while isinstance(node, dict | list) and node:               # walk down to a random value
        key = rng.choice(list(node)) if isinstance(node, dict) else rng.randrange(len(node))
        if rng.random() < 0.4 or not isinstance(node[key], dict | list) or not node[key]:
            node[key] = rng.choice(JUNK)
            break
        node = node[key]
    return json.dumps(obj, ensure_ascii=rng.random() < 0.5).encode()


def mutate(data: bytes, rng: random.Random) -> bytes:
    kind = rng.choice(["truncate", "flip", "splice", "nest", "retype", "enlarge"])
    n = len(data)
    if kind == "truncate":
        return data[:rng.randrange(n)]
    if kind == "flip":
        out = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            out[rng.randrange(n)] = rng.randrange(256)
        return bytes(out)
    if kind == "splice":
        a, b = sorted(rng.randrange(n) for _ in range(2))
        at = rng.randrange(n)
        return data[:at] + data[a:b] * rng.randint(1, 3) + data[at:]
    if kind == "nest":
        at, depth = rng.randrange(n), rng.choice([2, 70, 5000, 100_000])
        return data[:at] + b"[" * depth + data[at:] + b"]" * rng.randint(0, depth)
    if kind == "retype":
        return _retype(data, rng)
    numbers = list(re.finditer(rb"\d+", data))                  # enlarge
    if not numbers:
        return data + b"9" * 50
    m = rng.choice(numbers)
    big = rng.choice([b"256", b"65535", b"2147483647", b"99999999999", b"9" * 400, m.group() + b"000"])
    return data[:m.start()] + big + data[m.end():]


READERS = {
    "bpe.json": lambda p: BPETokenizer.load(p / "bpe.json"),
    "char.json": lambda p: CharTokenizer.load(p / "char.json"),
    "ranks.tiktoken": lambda p: BPETokenizer.from_tiktoken(p / "ranks.tiktoken"),
    "encoder.json": lambda p: BPETokenizer.from_gpt2_files(p / "encoder.json", p / "vocab.bpe"),
    "vocab.bpe": lambda p: BPETokenizer.from_gpt2_files(p / "encoder.json", p / "vocab.bpe"),
}


@pytest.mark.parametrize("target", list(READERS))
def test_mutated_files_end_in_documented_errors(files, tmp_path, target):
    rng = random.Random(f"fuzz-{target}")
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    outcomes = {"loaded": 0, "refused": 0}
    for case in range(CASES):
        mutated = mutate(files[target], rng)
        (tmp_path / target).write_bytes(mutated)
        t0 = time.process_time()
        try:
            tok = READERS[target](tmp_path)
        except ValueError as exc:                                    # FileFormatError is a ValueError
            assert any(name in str(exc) for name in (target, "encoder.json", "vocab.bpe")), (case, str(exc))
            outcomes["refused"] += 1
        else:                                                        # what loads must work
            sample = "hello wörld 123 床"
            if isinstance(tok, BPETokenizer):
                assert tok.decode(tok.encode_ordinary(sample)) == sample, case
            else:
                assert tok.decode(tok.encode("".join(c for c in sample if c in tok.stoi))) is not None
            outcomes["loaded"] += 1
        seconds = time.process_time() - t0
        assert seconds < SECONDS, f"case {case} ({target}, {len(mutated)} bytes) took {seconds:.1f} s"
    assert outcomes["refused"] > CASES // 4                          # the mutations do reach the checks
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # the whole process's peak, KiB
    assert peak_mib < 2048, f"peak memory {peak_mib:.0f} MiB"
