"""Write lessons/10_sampling/reference/ with Hugging Face transformers (and tiktoken), never with minigpt.

Two kinds of reference:

    reference/warpers.npz, warpers.json   transformers' logits warpers, applied in generate()'s order
                                          (TemperatureLogitsWarper -> TopKLogitsWarper -> TopPLogitsWarper),
                                          then softmax, on random logits (V = 23) in float64: ties at the k-th
                                          value, extreme temperatures, k >= V, and top-p cases whose
                                          cumulative sums stay >= 1e-6 away from the threshold (the boundary
                                          itself depends on rounding and on torch.sort's order)
    reference/tiny_gpt2/                  a small random GPT2LMHeadModel written by save_pretrained
                                          (config.json, generation_config.json, model.safetensors) plus a
                                          GPT-2-format tokenizer (vocab.json, merges.txt): GPT-2's first 500
                                          merges and <|endoftext|>, so V = 757
    reference/greedy.json                 generate(do_sample=False, max_new_tokens=50) from "In the beginning"
                                          (the seed article's example) and from a Chinese prompt, with
                                          use_cache=True and use_cache=False (equal), the decoded text, and
                                          the smallest top-1 / top-2 logit gap on the way (float32 is safe)

The tokenizer files are built from ../shared/data/gpt2.tiktoken: ranks 0..755 (the 256 bytes and the first
500 merges), each merge recovered by running BPE on the token's bytes with the lower ranks only (the way
tiktoken's own educational code does). transformers' GPT2Tokenizer then reads them; tiktoken on the same
ranks must give the same prompt ids (checked here).

Weights are redrawn so logits are well separated: weights N(0, 0.3^2), biases N(0, 0.1^2), LayerNorm
gains 1 + N(0, 0.1^2), stored in float32.

Run: python lessons/10_sampling/make_reference.py   (needs torch==2.13.0, transformers, tiktoken; offline)
"""

from __future__ import annotations

import base64
import json
import platform
import shutil
from pathlib import Path

import numpy as np
import tiktoken
import torch
import transformers
from transformers import GPT2Config, GPT2LMHeadModel, GPT2Tokenizer
from transformers.convert_slow_tokenizer import bytes_to_unicode
from transformers.generation.logits_process import (
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

SEED = 10
V_WARP = 23
N_MERGES = 500
P, C, H, L = 64, 24, 3, 2
NEW_TOKENS = 50
PROMPTS = ["In the beginning", "你好，世界"]
HERE = Path(__file__).resolve().parent
OUT = HERE / "reference"
TIKTOKEN_FILE = HERE.parent.parent.parent / "shared" / "data" / "gpt2.tiktoken"
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# (name, temperature, top_k, top_p, kind of logits)
CASES = [
    ("plain", 1.0, None, None, "normal"),
    ("temperature 0.7", 0.7, None, None, "normal"),
    ("cold 0.02", 0.02, None, None, "normal"),
    ("hot 50", 50.0, None, None, "normal"),
    ("top-k 5", 1.0, 5, None, "normal"),
    ("top-k 1", 1.0, 1, None, "normal"),
    ("top-k 6, ties at the 6th", 1.0, 6, None, "ties"),
    ("top-k 3, ties at the 3rd, T 0.5", 0.5, 3, None, "ties"),
    ("top-k larger than V", 1.0, 40, None, "normal"),
    ("top-p 0.9", 1.0, None, 0.9, "normal"),
    ("top-p 0.5", 1.0, None, 0.5, "normal"),
    ("top-p 0.2", 1.0, None, 0.2, "wide"),
    ("top-p 0.99, T 2", 2.0, None, 0.99, "normal"),
    ("T 0.8, top-k 10, top-p 0.9", 0.8, 10, 0.9, "normal"),
    ("T 1.5, top-k 8 with ties, top-p 0.7", 1.5, 8, 0.7, "ties"),
    ("T 0.3, top-k 15, top-p 0.6", 0.3, 15, 0.6, "wide"),
]


def warp(logits: np.ndarray, temperature: float, top_k: int | None, top_p: float | None) -> np.ndarray:
    """transformers' warpers in generate()'s order, then softmax, in float64."""
    scores = torch.tensor(logits[None, :], dtype=torch.float64)       # (1, V)
    ids = torch.zeros((1, 1), dtype=torch.long)                       # unused by these warpers
    if temperature != 1.0:
        scores = TemperatureLogitsWarper(temperature)(ids, scores)
    if top_k is not None:
        scores = TopKLogitsWarper(top_k)(ids, scores)
    if top_p is not None and top_p < 1.0:
        scores = TopPLogitsWarper(top_p)(ids, scores)
    return torch.softmax(scores, dim=-1)[0].numpy()


def far_from_boundary(logits: np.ndarray, temperature: float, top_k: int | None, top_p: float) -> bool:
    """True if every cumulative sum of the top-p step is >= 1e-6 from 1 - top_p and no tie straddles it."""
    scores = torch.tensor(logits[None, :], dtype=torch.float64) / temperature
    if top_k is not None:
        scores = TopKLogitsWarper(top_k)(torch.zeros((1, 1), dtype=torch.long), scores)
    probs = torch.softmax(scores, dim=-1)[0].numpy()
    ascending = np.sort(probs)
    cum = np.cumsum(ascending)
    crossing = int(np.searchsorted(cum, 1 - top_p, side="right"))     # first kept in ascending order
    no_tie = crossing == 0 or ascending[crossing] != ascending[crossing - 1] or ascending[crossing] == 0
    return bool(np.min(np.abs(cum - (1 - top_p))) >= 1e-6) and no_tie


def draw_logits(rng: np.random.Generator, kind: str) -> np.ndarray:
    if kind == "ties":                                                # few distinct values: many ties
        return rng.integers(-4, 5, size=V_WARP).astype(np.float64) * 0.75
    scale = 3.0 if kind == "wide" else 1.5
    return rng.normal(0.0, scale, size=V_WARP)


def warper_references(rng: np.random.Generator) -> tuple[dict[str, np.ndarray], list[dict]]:
    arrays: dict[str, np.ndarray] = {}
    cases = []
    for i, (name, temperature, top_k, top_p, kind) in enumerate(CASES):
        for _ in range(1000):
            logits = draw_logits(rng, kind)
            if top_p is None or far_from_boundary(logits, temperature, top_k, top_p):
                break
        else:
            raise RuntimeError(f"could not draw logits away from the top-p boundary for {name}")
        if kind == "ties" and top_k is not None:
            kth = np.sort(logits)[::-1][top_k - 1]
            assert np.sum(logits == kth) >= 2 and np.sum(logits >= kth) > top_k, name  # a real tie at k
        arrays[f"logits_{i}"] = logits
        arrays[f"probs_{i}"] = warp(logits, temperature, top_k, top_p)
        cases.append({"index": i, "name": name, "temperature": temperature, "top_k": top_k, "top_p": top_p,
                      "kept": int(np.sum(arrays[f"probs_{i}"] > 0))})
    # greedy: argmax with the maximum tied, torch.argmax returns the first
    tied = rng.integers(0, 3, size=V_WARP).astype(np.float64)
    arrays["greedy_logits"] = tied
    arrays["greedy_argmax"] = np.array(int(torch.argmax(torch.tensor(tied))))
    return arrays, cases


# ---- a GPT-2-format tokenizer: the first N_MERGES merges of GPT-2 ------------------------------------
def read_ranks(path: Path, n: int) -> dict[bytes, int]:
    ranks = {}
    for line in path.read_text().splitlines():
        token, rank = line.split()
        if int(rank) < n:
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def bpe_parts(ranks: dict[bytes, int], token: bytes, max_rank: int) -> list[bytes]:
    """Merge token's bytes using only ranks below max_rank, lowest rank first: the last two parts."""
    parts = [bytes([b]) for b in token]
    while True:
        best = None
        for j in range(len(parts) - 1):
            r = ranks.get(parts[j] + parts[j + 1])
            if r is not None and r < max_rank and (best is None or r < best[0]):
                best = (r, j)
        if best is None:
            return parts
        j = best[1]
        parts = parts[:j] + [parts[j] + parts[j + 1]] + parts[j + 2:]


def write_tokenizer(folder: Path) -> dict[bytes, int]:
    ranks = read_ranks(TIKTOKEN_FILE, 256 + N_MERGES)
    to_text = bytes_to_unicode()
    def show(b: bytes) -> str:
        return "".join(to_text[x] for x in b)
    vocab = {show(tok): rank for tok, rank in ranks.items()}
    vocab["<|endoftext|>"] = 256 + N_MERGES
    merges = []
    for tok, rank in sorted(ranks.items(), key=lambda kv: kv[1]):
        if rank < 256:
            assert len(tok) == 1
            continue
        parts = bpe_parts(ranks, tok, rank)
        assert len(parts) == 2, (tok, parts)
        merges.append(f"{show(parts[0])} {show(parts[1])}")
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    return ranks


def tiny_model(eos: int) -> GPT2LMHeadModel:
    config = GPT2Config(vocab_size=256 + N_MERGES + 1, n_positions=P, n_embd=C, n_layer=L, n_head=H,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0, bos_token_id=eos, eos_token_id=eos)
    model = GPT2LMHeadModel(config)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(".bias"):
                p.copy_(0.1 * torch.randn_like(p))
            elif ".ln_" in name or ".ln_f." in name:
                p.copy_(1.0 + 0.1 * torch.randn_like(p))
            else:
                p.copy_(0.3 * torch.randn_like(p))
    return model.eval()


def greedy(model: GPT2LMHeadModel, ids: list[int], use_cache: bool) -> tuple[list[int], float]:
    with torch.no_grad():
        out = model.generate(torch.tensor([ids]), do_sample=False, max_new_tokens=NEW_TOKENS,
                             use_cache=use_cache, output_scores=True, return_dict_in_generate=True,
                             pad_token_id=model.config.eos_token_id)
    gaps = [float(torch.topk(s[0], 2).values.diff().abs()) for s in out.scores]
    return out.sequences[0, len(ids):].tolist(), min(gaps)


def main() -> None:
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    OUT.mkdir(exist_ok=True)
    arrays, cases = warper_references(rng)
    np.savez(OUT / "warpers.npz", **arrays)
    (OUT / "warpers.json").write_text(json.dumps(cases, indent=1) + "\n")

    folder = OUT / "tiny_gpt2"
    shutil.rmtree(folder, ignore_errors=True)
    eot = 256 + N_MERGES
    model = tiny_model(eot)
    model.save_pretrained(folder)
    ranks = write_tokenizer(folder)
    hf_tok = GPT2Tokenizer.from_pretrained(folder)          # reads vocab.json + merges.txt
    enc = tiktoken.Encoding("gpt2_first_merges", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                            special_tokens={"<|endoftext|>": eot})
    runs = []
    for prompt in PROMPTS:
        ids = hf_tok.encode(prompt)
        assert ids == enc.encode_ordinary(prompt), (ids, enc.encode_ordinary(prompt))
        new_cached, gap = greedy(model, ids, use_cache=True)
        new_plain, gap_plain = greedy(model, ids, use_cache=False)
        assert new_cached == new_plain, "transformers' greedy with and without its cache disagree"
        assert eot not in new_cached, "the continuation hit <|endoftext|>: pick another seed"
        runs.append({"prompt": prompt, "prompt_ids": ids, "new_ids": new_cached,
                     "new_ids_no_cache": new_plain, "text": hf_tok.decode(new_cached),
                     "min_top2_gap": min(gap, gap_plain)})
    (OUT / "greedy.json").write_text(json.dumps({"max_new_tokens": NEW_TOKENS, "runs": runs}, indent=1,
                                                ensure_ascii=False) + "\n", encoding="utf-8")
    meta = {
        "generator": "lessons/10_sampling/make_reference.py",
        "torch": torch.__version__, "transformers": transformers.__version__,
        "tiktoken": tiktoken.__version__,
        "numpy": np.__version__, "python": platform.python_version(), "seed": SEED,
        "rng": "numpy default_rng(seed) for the warper logits (in CASES order, redrawn near a top-p "
               "boundary); "
               "torch.manual_seed(seed) for the model weights",
        "warpers": "TemperatureLogitsWarper (if T != 1) -> TopKLogitsWarper -> TopPLogitsWarper "
                   "(if top_p < 1), then softmax; float64 logits of shape (23,); probs_i for logits_i, "
                   "case i in warpers.json",
        "greedy_argmax": "torch.argmax of logits with a tied maximum (the first index)",
        "model": {"vocab_size": eot + 1, "n_positions": P, "n_embd": C, "n_head": H, "n_layer": L,
                  "dtype": "float32",
                  "weights": "weights N(0, 0.3^2), biases N(0, 0.1^2), gains 1 + N(0, 0.1^2)"},
        "tokenizer": f"GPT-2's 256 byte tokens and first {N_MERGES} merges (from gpt2.tiktoken), "
                     f"<|endoftext|> = {eot}; read by transformers.GPT2Tokenizer, checked against tiktoken",
        "greedy": f"model.generate(prompt, do_sample=False, max_new_tokens={NEW_TOKENS}, use_cache=True and "
                  "False); new_ids are the new tokens only; text = GPT2Tokenizer.decode(new_ids)",
    }
    (OUT / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    for case in cases:
        print(f"{case['name']:<40} kept {case['kept']}")
    for run in runs:
        print(run["prompt"], run["prompt_ids"], run["new_ids"][:10], f"gap {run['min_top2_gap']:.3g}")
        print("  ", repr(run["text"][:80]))


if __name__ == "__main__":
    main()
