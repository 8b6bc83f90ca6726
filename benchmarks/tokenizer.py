"""Tokenizer speed: BPE training time, and GPT-2 encoding throughput vs tiktoken, measured in one run.

    training   BPETokenizer.train on tiny Shakespeare to vocab 512 and 1024 (pattern "gpt2"); the target is
               under 5 s for 1024 on a 2-core machine (karpathy/minbpe's recount-every-merge trainer needs
               minutes). Median of --repeat runs.
    encoding   GPT-2's vocabulary (from gpt2.tiktoken) on tiny Shakespeare and the Tang poems: tiktoken's
               encode_ordinary (one thread, built offline from the same file, its own r50k pattern),
               minigpt cold (chunk and piece caches emptied first: the honest number) and minigpt warm
               (the caches already hold the corpus), timed one after the other in each round. Times are
               CPU seconds (time.process_time: less disturbed by other jobs than the wall clock); the
               ratios are tiktoken's time / minigpt's, i.e. minigpt's speed as a fraction of tiktoken's,
               median over the rounds. The target is >= 0.33 cold.
    long chunk one 1,000,000-character chunk ("x" * 10**6, and 10**6 random letters with no space: the
               regex keeps each whole), GPT-2, caches emptied: minigpt's CPU seconds vs tiktoken's, the
               ratio, and whether the ids are identical. The target is under 2 s (issue 13); the
               definition (bpe.encode_chunk) is quadratic and would take hours.

    python benchmarks/tokenizer.py [--repeat 5] [--no-train] [--only-long]

Needs ../shared/data (or $MINIGPT_SHARED_DATA). tiktoken is optional: without it only minigpt's numbers are
printed. Run it on an otherwise idle machine; numbers from a busy one are noise.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import string
import sys
import time

from _common import median_seconds

from minigpt.files.paths import shared_data
from minigpt.tokenizer import BPETokenizer
from minigpt.tokenizer.bpe import GPT2_PATTERN_TIKTOKEN

CORPORA = ("tinyshakespeare.txt", "tang_poems.txt")


def cpu_time(fn) -> float:
    t0 = time.process_time()
    fn()
    return time.process_time() - t0


def tiktoken_gpt2(path):
    """tiktoken's Encoding with GPT-2's ranks from the local file (no download), or None if not installed."""
    try:
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", "")
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe
    except ImportError:
        return None
    return tiktoken.Encoding("gpt2_local", pat_str=GPT2_PATTERN_TIKTOKEN,
                             mergeable_ranks=load_tiktoken_bpe(str(path)),
                             special_tokens={"<|endoftext|>": 50256}, explicit_n_vocab=50257)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5, help="runs per measurement (the median is printed)")
    p.add_argument("--no-train", action="store_true", help="only the encoding benchmarks")
    p.add_argument("--only-long", action="store_true", help="only the 1,000,000-character chunk")
    args = p.parse_args()
    paths = {name: shared_data(name) for name in (*CORPORA, "gpt2.tiktoken")}
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        print(f"skipped: {missing} not found in ../shared/data (set MINIGPT_SHARED_DATA)")
        return 0

    if not args.no_train and not args.only_long:
        print("== BPE training on tiny Shakespeare (pattern gpt2) ==")
        text = paths["tinyshakespeare.txt"].read_text(encoding="utf-8")
        for vocab in (512, 1024):
            t = median_seconds(lambda v=vocab: BPETokenizer.train(text, vocab_size=v), args.repeat)
            print(f"vocab {vocab:>5}: median {t:6.2f} s over {args.repeat} runs")

    print("\n== GPT-2 encoding: CPU seconds and speed relative to tiktoken (median over rounds) ==")
    t0 = time.perf_counter()
    gpt2 = BPETokenizer.from_tiktoken(paths["gpt2.tiktoken"])
    print(f"minigpt BPETokenizer.from_tiktoken: {time.perf_counter() - t0:.2f} s (recovers 50,000 merges)")
    enc = tiktoken_gpt2(paths["gpt2.tiktoken"])
    if enc is None:
        print("tiktoken not installed: no baseline, only minigpt's numbers")

    def cold(text: str) -> list[int]:
        gpt2._encoder.clear()                             # empty the chunk and piece caches
        return gpt2.encode(text)

    print("\n== one 1,000,000-character chunk, GPT-2, caches emptied (CPU seconds, median) ==")
    letters = "".join(random.Random(0).choices(string.ascii_letters, k=10**6))
    for label, text in (('"x" * 10**6', "x" * 10**6), ("10**6 random letters", letters)):
        same = enc is None or enc.encode_ordinary(text) == cold(text)
        t = statistics.median(cpu_time(lambda text=text: cold(text)) for _ in range(args.repeat))
        line = f"{label:<22} minigpt {t:6.3f} s"
        if enc is not None:
            tik = statistics.median(cpu_time(lambda text=text: enc.encode_ordinary(text))
                                    for _ in range(args.repeat))
            line += f"   tiktoken {tik:6.3f} s   x tiktoken: {tik / t:.2f}   ids identical: {same}"
        print(line)
    if args.only_long:
        return 0

    for name in CORPORA:
        corpus = paths[name].read_text(encoding="utf-8")
        mb = len(corpus.encode("utf-8")) / 1e6
        ids = cold(corpus)
        line = f"{name:<20} {mb:4.2f} MB {len(ids):>8,} tokens"
        if enc is not None:
            line += f"   ids identical to tiktoken: {enc.encode_ordinary(corpus) == ids}"
        print(line)
        rounds = []                                       # (tiktoken, cold, warm) CPU seconds
        for _ in range(args.repeat):
            tik = cpu_time(lambda corpus=corpus: enc.encode_ordinary(corpus)) if enc is not None else None
            rounds.append((tik, cpu_time(lambda corpus=corpus: cold(corpus)),
                           cpu_time(lambda corpus=corpus: gpt2.encode(corpus))))
        for k, label in ((1, "cold"), (2, "warm")):
            t = statistics.median(r[k] for r in rounds)
            line = f"    minigpt {label}  {t:6.3f} s  {mb / t:5.2f} MB/s"
            if enc is not None:
                ratios = sorted(r[0] / r[k] for r in rounds)
                line += (f"   x tiktoken: median {statistics.median(ratios):.2f}"
                         f"  (range {ratios[0]:.2f}-{ratios[-1]:.2f})")
            print(line)
        if enc is not None:
            t = statistics.median(r[0] for r in rounds)
            print(f"    tiktoken      {t:6.3f} s  {mb / t:5.2f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
