"""Tokenizer speed: BPE training time, and GPT-2 encoding throughput vs tiktoken, measured in one run.

    training   BPETokenizer.train on tiny Shakespeare to vocab 512 and 1024 (pattern "gpt2"); the target is
               under 5 s for 1024 on a 2-core machine (karpathy/minbpe's recount-every-merge trainer needs
               minutes). Median of --repeat runs.
    encoding   GPT-2's vocabulary (from gpt2.tiktoken) on tiny Shakespeare and the Tang poems, in MB/s of
               UTF-8 input: minigpt cold (a fresh chunk cache, the honest number), minigpt warm (the
               cache already holds the corpus's chunks), and tiktoken's encode_ordinary (one thread,
               built offline from the same file). Ratios are minigpt / tiktoken: the target is >= 0.33.

    python benchmarks/tokenizer.py [--repeat 5]

Needs ../shared/data (or $MINIGPT_SHARED_DATA). tiktoken is optional: without it only minigpt's numbers are
printed. Run it on an otherwise idle machine; numbers from a busy one are noise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

from minigpt.bpe import GPT2_PATTERN
from minigpt.paths import shared_data
from minigpt.tokenizer import BPETokenizer

CORPORA = ("tinyshakespeare.txt", "tang_poems.txt")


def median_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def tiktoken_gpt2(path):
    """tiktoken's Encoding with GPT-2's ranks from the local file (no download), or None if not installed."""
    try:
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", "")
        import tiktoken
        from tiktoken.load import load_tiktoken_bpe
    except ImportError:
        return None
    return tiktoken.Encoding("gpt2_local", pat_str=GPT2_PATTERN, mergeable_ranks=load_tiktoken_bpe(str(path)),
                             special_tokens={"<|endoftext|>": 50256}, explicit_n_vocab=50257)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeat", type=int, default=5, help="runs per measurement (the median is printed)")
    args = p.parse_args()
    paths = {name: shared_data(name) for name in (*CORPORA, "gpt2.tiktoken")}
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        print(f"skipped: {missing} not found in ../shared/data (set MINIGPT_SHARED_DATA)")
        return 0

    print("== BPE training on tiny Shakespeare (pattern gpt2) ==")
    text = paths["tinyshakespeare.txt"].read_text(encoding="utf-8")
    for vocab in (512, 1024):
        t = median_time(lambda v=vocab: BPETokenizer.train(text, vocab_size=v), args.repeat)
        print(f"vocab {vocab:>5}: median {t:6.2f} s over {args.repeat} runs")

    print("\n== GPT-2 encoding throughput (MB/s of UTF-8 input, median) ==")
    t0 = time.perf_counter()
    gpt2 = BPETokenizer.from_tiktoken(paths["gpt2.tiktoken"])
    print(f"minigpt BPETokenizer.from_tiktoken: {time.perf_counter() - t0:.2f} s (recovers 50,000 merges)")
    enc = tiktoken_gpt2(paths["gpt2.tiktoken"])
    if enc is None:
        print("tiktoken not installed: no baseline, only minigpt's numbers")
    for name in CORPORA:
        corpus = paths[name].read_text(encoding="utf-8")
        mb = len(corpus.encode("utf-8")) / 1e6

        def cold(corpus=corpus):
            gpt2._cache.clear()
            return gpt2.encode(corpus)

        ids = cold()
        cold_s = median_time(cold, args.repeat)
        warm_s = median_time(lambda corpus=corpus: gpt2.encode(corpus), args.repeat)
        line = (f"{name:<20} {len(ids):>8,} tokens   minigpt cold {mb / cold_s:6.2f} MB/s"
                f"   warm {mb / warm_s:6.2f} MB/s")
        if enc is not None:
            same = enc.encode_ordinary(corpus) == ids
            tik_s = median_time(lambda corpus=corpus: enc.encode_ordinary(corpus), args.repeat)
            line += (f"   tiktoken {mb / tik_s:6.2f} MB/s   ratio cold {tik_s / cold_s:.2f}"
                     f"  warm {tik_s / warm_s:.2f}   ids identical: {same}")
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
