"""Wing: files and formats. Everything minigpt writes or reads on disk, and how it stays safe.

    atomic.py        write to a temporary name, fsync, rename: a crash never leaves half a file
    safetensors.py   the safetensors format, read and written with NumPy alone (no pickle anywhere)
    checkpoint.py    a training checkpoint: model, optimizer moments, RNG state, tokenizer
    download.py      fetching files over HTTP: resumable, atomic, with a progress bar
    paths.py         where the repository, data, lessons and shared test corpora are

Teaches nothing by itself; the chapters use it.
"""
