"""Write lesson 13's references with PyTorch: autograd for the big-batch gradient, torch.distributed (gloo,
real processes) for the all-reduce, torch.tensor_split for the chunks. Never with minigpt.

    pip install -e ".[reference]"          # torch==2.13.0 (CPU)
    python lessons/13_data_parallel/make_reference.py       # ~30 s: it starts 2 + 3 + 5 gloo processes

What it writes to reference/:
  shards.npz     a global batch for N = 3 ranks (x, y: (N*B, T) = (6, 5), some targets masked with -100 as
                 fine-tuning does), a tiny model's weights (an embedding table wte (V, C) = (11, 4) and an
                 output matrix w_out (C, V) = (4, 11)), and from torch autograd, float64:
                   grad_full.<name>          the gradient of the masked mean cross-entropy of the whole batch
                   grad_rank<r>.<name>       the gradient of rank r's own mean over its B = 2 rows
                   x_rank<r>, y_rank<r>      rank r's rows (torch.chunk of the batch)
                   weight                    (N,): each rank's counted targets over the whole batch's
  ring.npz       for N in 2, 3, 5 and n in 0, 1, 2, 4, 7, 13, 100: each rank's input buffer
                 (in.N<N>.n<n>.rank<r>) and the sum torch.distributed.all_reduce (gloo) gave on every rank
                 (out.N<N>.n<n>.rank<r>)
  chunks.json    torch.tensor_split(arange(n), N)'s [start, stop) bounds for many (n, N)
  cost.json      the ring's bytes per rank and seconds, from the formulas written out below in plain Python,
                 for a few buffer sizes, world sizes and links
  meta.json      versions, seeds, shapes

What it does not do: use minigpt, or store anything but numbers (no pickle in the files; torch's
multiprocessing queue carries the results home from the gloo processes).
"""

from __future__ import annotations

import json
import platform
import tempfile
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

HERE = Path(__file__).resolve().parent
REF = HERE / "reference"
SEED = 13
N_RANKS, B, T, V, C = 3, 2, 5, 11, 4
IGNORE = -100
RING_SIZES = (2, 3, 5)
RING_LENGTHS = (0, 1, 2, 4, 7, 13, 100)


def ring_inputs(size: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng([SEED, size])
    return {f"in.N{size}.n{n}.rank{r}": rng.standard_normal(n) for n in RING_LENGTHS for r in range(size)}


def gloo_worker(rank: int, size: int, path: str, queue) -> None:
    """One process of a gloo world: all-reduce (sum) each of this rank's buffers; send the results home."""
    dist.init_process_group("gloo", init_method=f"file://{path}", rank=rank, world_size=size)
    out = {}
    for name, arr in ring_inputs(size).items():
        if not name.endswith(f".rank{rank}"):
            continue
        t = torch.tensor(arr, dtype=torch.float64)
        if t.numel():
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        out[name.replace("in.", "out.", 1)] = t.numpy().copy()
    queue.put(out)
    dist.barrier()
    dist.destroy_process_group()


def ring_reference() -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    ctx = mp.get_context("spawn")
    for size in RING_SIZES:
        arrays.update(ring_inputs(size))
        queue = ctx.Queue()
        with tempfile.TemporaryDirectory() as tmp:
            procs = [ctx.Process(target=gloo_worker, args=(r, size, f"{tmp}/rendezvous", queue))
                     for r in range(size)]
            for p in procs:
                p.start()
            for _ in range(size):
                arrays.update(queue.get(timeout=300))
            for p in procs:
                p.join(timeout=300)
                assert p.exitcode == 0, f"gloo process exited with {p.exitcode}"
    return arrays


def shards_reference() -> dict[str, np.ndarray]:
    """A tiny model (embedding, then a matrix to the vocabulary) and its masked mean cross-entropy."""
    g = torch.Generator().manual_seed(SEED)
    x = torch.randint(0, V, (N_RANKS * B, T), generator=g)                      # (N*B, T)
    y = torch.randint(0, V, (N_RANKS * B, T), generator=g)                      # (N*B, T)
    y[0, :3] = IGNORE                   # fine-tuning masks prompts: the ranks count 6, 10 and 9 targets of
    y[1, 0] = IGNORE                    # 25 (uneven shards: a plain mean of the ranks' means would be wrong)
    y[5, 4] = IGNORE
    wte = torch.randn(V, C, generator=g, dtype=torch.float64)
    w_out = torch.randn(C, V, generator=g, dtype=torch.float64) * 0.5

    def grads(xb, yb):
        a = wte.clone().requires_grad_(True)
        b = w_out.clone().requires_grad_(True)
        logits = a[xb] @ b                                                     # (B, T, V)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, V), yb.reshape(-1), ignore_index=IGNORE)
        loss.backward()
        return loss.item(), a.grad.numpy(), b.grad.numpy()

    out = {"x": x.numpy(), "y": y.numpy(), "wte": wte.numpy(), "w_out": w_out.numpy()}
    loss, ga, gb = grads(x, y)
    out.update({"loss_full": np.array(loss), "grad_full.wte": ga, "grad_full.w_out": gb})
    counted = (y != IGNORE).sum().item()
    weights = []
    for r, (xr, yr) in enumerate(zip(torch.chunk(x, N_RANKS), torch.chunk(y, N_RANKS), strict=True)):
        loss, ga, gb = grads(xr, yr)
        out.update({f"x_rank{r}": xr.numpy(), f"y_rank{r}": yr.numpy(), f"loss_rank{r}": np.array(loss),
                    f"grad_rank{r}.wte": ga, f"grad_rank{r}.w_out": gb})
        weights.append((yr != IGNORE).sum().item() / counted)
    out["weight"] = np.array(weights)
    return out


def chunks_reference() -> list[dict]:
    cases = []
    for n in (0, 1, 3, 7, 8, 13, 100):
        for size in (1, 2, 3, 4, 5, 8):
            parts = torch.tensor_split(torch.arange(n), size)
            bounds, start = [], 0
            for p in parts:
                bounds.append([start, start + p.numel()])
                start += p.numel()
            cases.append({"n": n, "size": size, "bounds": bounds})
    return cases


def cost_reference() -> list[dict]:
    """The ring's cost written out: each of 2(N-1) steps moves a chunk of n/N bytes and pays one latency."""
    cases = []
    for n_bytes in (4.0, 3.2e6, 4.97e8):                 # a float, the baby GPT's gradients, GPT-2 small's
        for size in (1, 2, 4, 8, 64):
            for latency, bandwidth in ((2e-6, 12.5e9), (2e-5, 1.25e9)):
                steps = 2 * (size - 1)
                sent = steps * (n_bytes / size)
                cases.append({"n_bytes": n_bytes, "size": size, "latency_s": latency, "bandwidth": bandwidth,
                              "bytes_per_rank": sent, "seconds": steps * latency + sent / bandwidth})
    return cases


def main() -> None:
    REF.mkdir(exist_ok=True)
    np.savez(REF / "shards.npz", **shards_reference())
    np.savez(REF / "ring.npz", **ring_reference())
    (REF / "chunks.json").write_text(json.dumps(chunks_reference()) + "\n")
    (REF / "cost.json").write_text(json.dumps(cost_reference(), indent=1) + "\n")
    meta = {"generator": "lessons/13_data_parallel/make_reference.py", "torch": torch.__version__,
            "numpy": np.__version__, "python": platform.python_version(), "seed": SEED,
            "shards": {"N": N_RANKS, "B": B, "T": T, "V": V, "C": C, "ignore_index": IGNORE,
                       "dtype": "float64"},
            "ring": {"sizes": list(RING_SIZES), "lengths": list(RING_LENGTHS), "backend": "gloo",
                     "dtype": "float64"}}
    (REF / "meta.json").write_text(json.dumps(meta, indent=1) + "\n")
    print(f"wrote {', '.join(sorted(p.name for p in REF.iterdir()))}")


if __name__ == "__main__":
    main()
