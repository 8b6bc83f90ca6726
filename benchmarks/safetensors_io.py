"""Saving and loading a GPT-2-shaped checkpoint: minigpt.files.safetensors vs the `safetensors`
library (NumPy API).

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
import tempfile
from pathlib import Path

import numpy as np
from _common import median_seconds

from minigpt.files import safetensors as sf
from minigpt.model import GPTConfig, param_shapes


def gpt2_tensors(n_layer: int, C: int = 768, V: int = 50257, P: int = 1024) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    shapes = param_shapes(GPTConfig(vocab_size=V, block_size=P, n_layer=n_layer, n_head=12, n_embd=C))
    return {name: rng.standard_normal(shape, dtype=np.float32) for name, shape in shapes.items()}


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
