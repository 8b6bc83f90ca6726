"""Tokens per second of minigpt's generate (with and without the KV cache) vs transformers' generate.

The same random weights in both (minigpt's GPT copied into a GPT2LMHeadModel), float32, greedy
(transformers: do_sample=False, use_cache=True, no EOS), the same thread count, measured in this one run:

- tokens/s of minigpt with the cache, without it (the window recomputed each step), and transformers;
  the ratios minigpt-cached / transformers (targets: >= 5x on "baby", >= 1.0x on "gpt2");
- that the greedy ids of all three agree (same weights, so they should; a mismatch is printed);
- memory: the peak of NumPy allocations during minigpt's generate (tracemalloc), next to the weights'
  and the full KV cache's size, and the process's peak RSS (which includes torch and both models).

Shapes: "baby" = nanoGPT's CPU recipe (L4 H4 C128, V65, block 64); "gpt2" = GPT-2 small (L12 H12 C768,
V50257, block 1024, 124M parameters). The prompt is --prompt-len random ids; --tokens new ones are made.

    python benchmarks/sampling.py [--shape baby|gpt2|all] [--tokens 60] [--repeat 5] [--threads 2]
    python benchmarks/sampling.py --shape gpt2 --tokens 100 --nocache-tokens 8      # 124M: slow without cache

Needs an otherwise idle machine; transformers and torch are optional (their column is skipped).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
import tracemalloc

from _common import default_threads, keep_memory, median_seconds, set_blas_threads

SHAPES = {  # name: (vocab, block, layers, heads, channels)
    "baby": (65, 64, 4, 4, 128),
    "gpt2": (50257, 1024, 12, 12, 768),
}


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", choices=[*SHAPES, "all"], default="all")
    p.add_argument("--tokens", type=int, default=None, help="new tokens per run (default: 60 baby, 100 gpt2)")
    p.add_argument("--nocache-tokens", type=int, default=None,
                   help="new tokens for the no-cache run (default: --tokens on baby, 8 on gpt2)")
    p.add_argument("--prompt-len", type=int, default=4)
    p.add_argument("--repeat", type=int, default=5, help="runs per measurement; the median is reported")
    p.add_argument("--threads", type=int, default=default_threads())
    return p.parse_args()


ARGS = parse()
set_blas_threads(ARGS.threads)   # read by BLAS when numpy / torch load: set before importing them
keep_memory()                    # the allocator setting the `minigpt` command applies

import numpy as np  # noqa: E402

from minigpt import hf  # noqa: E402
from minigpt.model import GPT, GPTConfig  # noqa: E402
from minigpt.sampling import generate  # noqa: E402

try:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel
    torch.set_num_threads(ARGS.threads)
except ImportError:   # the comparison is optional
    torch = None


def median_tok_s(run, n: int, repeat: int) -> tuple[float, list[int]]:
    ids = run()                                  # warm-up (and the ids to compare)
    return n / median_seconds(run, repeat), ids


def to_transformers(model: GPT):
    cfg = model.config
    config = GPT2Config(vocab_size=cfg.vocab_size, n_positions=cfg.block_size, n_embd=cfg.n_embd,
                        n_layer=cfg.n_layer, n_head=cfg.n_head, resid_pdrop=0.0, embd_pdrop=0.0,
                        attn_pdrop=0.0,
                        bos_token_id=None, eos_token_id=None, pad_token_id=None)
    ref = GPT2LMHeadModel(config)
    state = {k: torch.from_numpy(v) for k, v in hf.to_hf_state_dict(model.params).items()}
    missing, unexpected = ref.load_state_dict(state, strict=False)
    assert not unexpected and all(k == "lm_head.weight" or k.endswith((".attn.bias", ".attn.masked_bias"))
                                  for k in missing), (missing, unexpected)
    ref.tie_weights()
    return ref.eval()


def bench(name: str) -> None:
    V, P, L, H, C = SHAPES[name]
    n = ARGS.tokens or (60 if name == "baby" else 100)
    n_plain = ARGS.nocache_tokens or (n if name == "baby" else 8)
    n = min(n, P - ARGS.prompt_len)              # transformers cannot go past n_positions
    cfg = GPTConfig(V, P, L, H, C)
    print(f"\n== {name}: V {V}, block {P}, L {L}, H {H}, C {C}; prompt {ARGS.prompt_len}, {n} new tokens, "
          f"float32, {ARGS.threads} thread(s)")
    t0 = time.perf_counter()
    model = GPT(cfg, seed=0, dtype=np.float32)
    print(f"   model: {model.num_params() / 1e6:.1f}M parameters (built in {time.perf_counter() - t0:.1f} s)")
    prompt = np.random.default_rng(0).integers(0, V, ARGS.prompt_len).tolist()

    cached, ids_c = median_tok_s(lambda: generate(model, prompt, n, temperature=0), n, ARGS.repeat)
    plain, ids_p = median_tok_s(lambda: generate(model, prompt, n_plain, temperature=0, use_cache=False),
                                n_plain, max(1, ARGS.repeat // 2))
    print(f"   minigpt, KV cache      {cached:9.1f} tok/s")
    print(f"   minigpt, no cache      {plain:9.1f} tok/s   ({n_plain} tokens; "
          f"cache speed-up {cached / plain:.1f}x)")
    if ids_p != ids_c[:n_plain]:
        print("   !! cached and uncached greedy ids differ")

    if torch is not None:
        ref = to_transformers(model)
        x = torch.tensor([prompt])

        def hf_run() -> list[int]:
            with torch.no_grad():
                out = ref.generate(x, max_new_tokens=n, min_new_tokens=n, do_sample=False, use_cache=True,
                                   pad_token_id=0)
            return out[0, len(prompt):].tolist()

        theirs, ids_t = median_tok_s(hf_run, n, ARGS.repeat)
        print(f"   transformers generate  {theirs:9.1f} tok/s   (KV cache, greedy)")
        print(f"   ratio minigpt-cached / transformers: {cached / theirs:.2f}x   "
              f"(target {'>= 5x' if name == 'baby' else '>= 1.0x'})")
        agree = sum(a == b for a, b in zip(ids_c, ids_t, strict=True))
        print(f"   greedy ids agree with transformers on {agree}/{n} tokens"
              + ("" if agree == n else "  (float32 rounding can flip a near-tie)"))
        del ref
    else:
        print("   transformers / torch not installed: comparison skipped")

    weights = sum(v.nbytes for v in model.params.values())
    kv = 2 * L * P * C * np.dtype(np.float32).itemsize
    tracemalloc.start()
    generate(model, prompt, n, temperature=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"   memory: weights {weights / 2**20:.0f} MiB, full KV cache {kv / 2**20:.1f} MiB, peak NumPy "
          f"allocations during generate {peak / 2**20:.1f} MiB (cache + temporaries, beyond the weights)")


def main() -> int:
    for name in (SHAPES if ARGS.shape == "all" else [ARGS.shape]):
        bench(name)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # KiB on Linux
    print(f"\npeak RSS of this process: {rss:.0f} MiB (torch, both models and their caches included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
