"""Saving and loading a GPT-2-shaped checkpoint: minigpt.safetensors vs the `safetensors` library (NumPy API).

Builds GPT-2 small's tensors (float32, 768 channels, 50257-token vocabulary; --layers of the 12 blocks),
writes them to a temporary folder and reads them back. Printed, all measured in this one run:

- median seconds for save, load (copies), load with mmap=True (plus a pass that touches every byte), for
  minigpt and for safetensors.numpy, and their ratio (minigpt / library: below 1.0 means minigpt is faster);
- the MB/s each reaches, and whether both read back identical arrays.

    python benchmarks/safetensors_io.py [--layers 12] [--repeat 5] [--dir /tmp]

minigpt's save also fsyncs the file before renaming it into place (atomic, durable); the library's save_file
does not, so on slow disks "save" mostly measures that guarantee.
The page cache makes repeated reads fast: both sides read the same file, alternately, so both see it warm.
Needs an otherwise idle machine and ~3x the checkpoint in RAM (500 MB for all 12 layers). The library is
optional: without it only minigpt's numbers are printed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from minigpt import safetensors as sf


def gpt2_tensors(n_layer: int, C: int = 768, V: int = 50257, P: int = 1024) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)

    def rand(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape, dtype=np.float32)

    tensors = {"wte.weight": rand(V, C), "wpe.weight": rand(P, C),
               "ln_f.weight": rand(C), "ln_f.bias": rand(C)}
    for i in range(n_layer):
        h = f"h.{i}."
        tensors |= {h + "ln_1.weight": rand(C), h + "ln_1.bias": rand(C),
                    h + "attn.c_attn.weight": rand(C, 3 * C), h + "attn.c_attn.bias": rand(3 * C),
                    h + "attn.c_proj.weight": rand(C, C), h + "attn.c_proj.bias": rand(C),
                    h + "ln_2.weight": rand(C), h + "ln_2.bias": rand(C),
                    h + "mlp.c_fc.weight": rand(C, 4 * C), h + "mlp.c_fc.bias": rand(4 * C),
                    h + "mlp.c_proj.weight": rand(4 * C, C), h + "mlp.c_proj.bias": rand(C)}
    return tensors


def median_seconds(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def touch_all(tensors: dict[str, np.ndarray]) -> float:
    return float(sum(float(a.sum(dtype=np.float64)) for a in tensors.values()))  # forces every page in


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--layers", type=int, default=12)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--dir", default=None, help="where to write the temporary files (default: system temp)")
    args = p.parse_args()
    try:
        from safetensors.numpy import load_file, save_file
    except ImportError:
        load_file = save_file = None
        print("safetensors not installed: minigpt's numbers only")

    tensors = gpt2_tensors(args.layers)
    mb = sum(a.nbytes for a in tensors.values()) / 1e6
    print(f"GPT-2 small shapes, {args.layers} layers: {len(tensors)} tensors, {mb:.0f} MB float32, "
          f"median of {args.repeat}")
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        ours, theirs = Path(tmp) / "ours.safetensors", Path(tmp) / "theirs.safetensors"
        rows = [("save", lambda: sf.save(tensors, ours),
                 save_file and (lambda: save_file(tensors, str(theirs)))),
                ("load (copies)", lambda: sf.load(ours), load_file and (lambda: load_file(str(ours)))),
                ("load mmap + touch", lambda: touch_all(sf.load(ours, mmap=True)),
                 load_file and (lambda: touch_all(load_file(str(ours)))))]
        print(f"{'':20} {'minigpt s':>10} {'MB/s':>7} {'library s':>10} {'MB/s':>7} {'ratio':>6}")
        for label, mine, lib in rows:
            t_mine = median_seconds(mine, args.repeat)
            line = f"{label:20} {t_mine:10.3f} {mb / t_mine:7.0f}"
            if lib is not None:
                t_lib = median_seconds(lib, args.repeat)
                line += f" {t_lib:10.3f} {mb / t_lib:7.0f} {t_mine / t_lib:6.2f}"
            print(line)
        if load_file is not None:
            a, b = sf.load(theirs), load_file(str(ours))
            same = all(np.array_equal(a[k], tensors[k]) and np.array_equal(b[k], tensors[k]) for k in tensors)
            print(f"each reads the other's file identically: {same}; "
                  f"files byte-identical: {ours.read_bytes() == theirs.read_bytes()}")


if __name__ == "__main__":
    main()
