"""Data pipeline: cleaning, token files, batches, and every recipe on small local files (offline)."""

import json

import numpy as np
import pytest

from minigpt.datasets import recipes, sources
from minigpt.datasets.prepared import (
    DataError,
    drop_control_chars,
    drop_duplicates,
    load_meta,
    load_tokenizer,
    load_tokens,
    normalize_newlines,
    split_text,
    token_dtype,
)
from minigpt.training.batches import get_batch

UNREACHABLE = "http://127.0.0.1:9/nothing-here.txt"  # port 9 (discard): connection refused at once


@pytest.fixture
def data_root(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIGPT_DATA", str(tmp_path / "data"))
    return tmp_path / "data"


def quiet(_msg):
    pass


def test_cleaning_functions():
    assert normalize_newlines("a\r\nb\rc\n") == "a\nb\nc\n"
    text, n = drop_control_chars("a\x00b\x1b[0mc\td\n\x0c")
    assert (text, n) == ("ab[0mc\td\n", 3)
    kept, dropped = drop_duplicates(iter(["x", "y", "x", "z", "y"]))
    assert (kept, dropped) == (["x", "y", "z"], 2)
    assert split_text("0123456789") == ("012345678", "9")
    with pytest.raises(ValueError):
        split_text("abc", 1.0)


def test_token_dtype():
    assert token_dtype(65) == np.dtype("<u2") and token_dtype(65536) == np.dtype("<u2")
    assert token_dtype(65537) == np.dtype("<u4")


def test_get_batch_windows_and_seed():
    ids = np.arange(100, dtype=np.uint16)
    x, y = get_batch(ids, 7, 5, np.random.default_rng(3))
    assert x.shape == y.shape == (7, 5) and x.dtype == y.dtype == np.int64
    assert np.array_equal(y, x + 1)                      # y is x shifted by one token
    assert np.all(np.diff(x, axis=1) == 1) and x.max() <= 98 and y.max() <= 99
    x2, _ = get_batch(ids, 7, 5, np.random.default_rng(3))
    assert np.array_equal(x, x2)
    starts = get_batch(ids, 5000, 5, np.random.default_rng(0))[0][:, 0]
    assert starts.min() == 0 and starts.max() == 94     # every start position is reachable
    with pytest.raises(DataError, match="block_size"):
        get_batch(ids[:5], 1, 5, np.random.default_rng(0))


def test_textfile_cleaning_split_and_files(data_root, tmp_path):
    src = tmp_path / "notes.txt"
    src.write_bytes(("hello\r\nworld\x00\x07 " * 50 + "end").encode("utf-8"))
    folder = recipes.prepare("textfile", from_file=src, log=quiet)
    assert folder == data_root / "notes"
    meta = load_meta(folder)
    assert meta["cleaning"]["control characters"] == 100
    tok = load_tokenizer(folder / "tokenizer.json")
    train, val = load_tokens(folder, "train"), load_tokens(folder, "val")
    assert isinstance(train, np.memmap) and train.dtype == np.dtype("<u2")
    text = tok.decode(train.tolist()) + tok.decode(val.tolist())
    clean = "hello\nworld " * 50 + "end"
    assert text == clean and len(train) == int(len(clean) * 0.9)
    assert meta["train_tokens"] == len(train) and meta["val_tokens"] == len(val)
    (folder / "val.bin").write_bytes((folder / "val.bin").read_bytes()[:-2])   # truncate one token
    with pytest.raises(DataError, match="val.bin.*truncated"):
        load_tokens(folder, "val")
    with pytest.raises(DataError, match="notes: a prepared dataset has the splits 'train' and 'val'"):
        load_tokens(folder, "test")                                            # was KeyError: 'test_tokens'


def test_textfile_bpe_option(data_root, tmp_path):
    src = tmp_path / "t.txt"
    words = ["the", "cat", "sat", "on", "a", "mat", "dog", "ran", "far", "away", "quick", "brown", "fox"]
    rng = np.random.default_rng(0)
    src.write_text(" ".join(words[i] for i in rng.integers(0, len(words), 3000)), encoding="utf-8")
    folder = recipes.prepare("textfile", from_file=src, tokenizer="bpe", vocab_size=280, log=quiet)
    tok = load_tokenizer(folder / "tokenizer.json")
    assert tok.vocab_size == 280 and load_meta(folder)["train_tokens"] < 0.9 * len(src.read_text())


def test_malformed_inputs_are_clear_errors(data_root, tmp_path):
    bad = tmp_path / "latin1.txt"
    bad.write_bytes("caf\xe9 au lait".encode("latin-1"))
    with pytest.raises(DataError, match=r"latin1.txt is not UTF-8.*0xe9 at offset 3"):
        recipes.prepare("textfile", from_file=bad, log=quiet)
    broken = tmp_path / "poems.json"
    broken.write_text('[{"title": "x", "paragraphs": "not a list"}]', encoding="utf-8")
    with pytest.raises(DataError, match="poem #0"):
        recipes.prepare("tang_poems", from_file=broken, log=quiet)
    broken.write_text('[{"title": ', encoding="utf-8")
    with pytest.raises(DataError, match="not valid JSON"):
        recipes.prepare("tang_poems", from_file=broken, log=quiet)
    empty = tmp_path / "empty.txt"
    empty.write_text("\x00\x01", encoding="utf-8")
    with pytest.raises(DataError, match="too short"):
        recipes.prepare("textfile", from_file=empty, log=quiet)
    with pytest.raises(DataError, match="does not exist"):
        recipes.prepare("shakespeare_char", from_file=tmp_path / "missing.txt", log=quiet)
    with pytest.raises(DataError, match="unknown dataset recipe"):
        recipes.prepare("wikipedia", log=quiet)
    with pytest.raises(DataError, match="minigpt prepare"):
        load_meta(data_root / "never_prepared")
    folder = tmp_path / "future"
    folder.mkdir()
    (folder / "meta.json").write_text(json.dumps({"format": "minigpt-data", "version": 2, "dtype": "uint16",
                                                  "vocab_size": 5, "train_tokens": 1, "val_tokens": 1}))
    with pytest.raises(DataError, match="meta.json: .* version 2; this minigpt reads"):
        load_meta(folder)


def test_offline_without_file_says_what_to_do(data_root):
    with pytest.raises(DataError) as info:
        recipes.prepare("shakespeare_char", url=UNREACHABLE, progress=False, log=quiet)
    msg = str(info.value)
    assert UNREACHABLE in msg and "--from-file" in msg and "minigpt train" in msg
    assert not (data_root / "shakespeare_char" / "meta.json").exists()


def test_shakespeare_char_matches_nanogpt(data_root, shared):
    folder = recipes.prepare("shakespeare_char", from_file=shared("tinyshakespeare.txt"), log=quiet)
    meta = load_meta(folder)
    # nanoGPT's prepare.py prints: vocab size 65, train has 1,003,854 tokens, val has 111,540 tokens
    assert (meta["vocab_size"], meta["train_tokens"], meta["val_tokens"]) == (65, 1_003_854, 111_540)
    assert meta["source_sha256"] == "86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed"
    tok = load_tokenizer(folder / "tokenizer.json")
    assert tok.decode(load_tokens(folder, "train")[:14].tolist()) == "First Citizen:"


def test_shakespeare_bpe_learned_and_gpt2(data_root, tmp_path, shared):
    src = tmp_path / "small.txt"
    src.write_text(shared("tinyshakespeare.txt").read_text(encoding="utf-8")[:30_000], encoding="utf-8")
    folder = recipes.prepare("shakespeare", from_file=src, vocab_size=400, log=quiet)  # learned BPE
    assert load_meta(folder)["vocab_size"] == 400
    out = tmp_path / "gpt2"
    folder = recipes.prepare("shakespeare", from_file=src, vocab=shared("gpt2.tiktoken"), out=out, log=quiet)
    meta = load_meta(folder)
    assert meta["vocab_size"] == 50257 and meta["dtype"] == "uint16"
    # "First Citizen:" in GPT-2's tokens (tiktoken r50k_base): First, ĠCitizen, :
    assert load_tokens(folder, "train")[:3].tolist() == [5962, 22307, 25]


def test_tang_poems_text_and_json(data_root, tmp_path):
    poems = ["春曉\n孟浩然\n春眠不覺曉，處處聞啼鳥。", "靜夜思\n李白\n床前明月光，疑是地上霜。"]
    text = "\n\n".join(poems + [poems[0], "\x07"] + poems[1:] * 3) + "\n"
    src = tmp_path / "tang.txt"
    src.write_text(text.replace("\n", "\r\n"), encoding="utf-8")
    logs: list[str] = []
    folder = recipes.prepare("tang_poems", from_file=src, log=logs.append)
    meta = load_meta(folder)
    assert meta["cleaning"]["duplicate poems"] == 4 and meta["documents"] == 2
    assert any("4 duplicate poems" in line for line in logs)
    tok = load_tokenizer(folder / "tokenizer.json")
    full = tok.decode(load_tokens(folder, "train").tolist() + load_tokens(folder, "val").tolist())
    assert full == "\n\n".join(poems) + "\n"
    items = [{"title": "春曉", "author": "孟浩然", "paragraphs": ["春眠不覺曉，處處聞啼鳥。"]},
             {"title": "靜夜思", "author": "李白", "paragraphs": ["床前明月光，疑是地上霜。"]}]
    js = tmp_path / "poet.tang.0.json"
    js.write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    folder = recipes.prepare("tang_poems", from_file=js, out=tmp_path / "from_json", log=quiet)
    tok = load_tokenizer(folder / "tokenizer.json")
    assert tok.decode(load_tokens(folder, "train").tolist() + load_tokens(folder, "val").tolist()) == full


def test_tang_poems_shared_corpus(data_root, shared):
    folder = recipes.prepare("tang_poems", from_file=shared("tang_poems.txt"), log=quiet)
    meta = load_meta(folder)
    assert 4800 < meta["documents"] <= 4875 and 5000 < meta["vocab_size"] < 6000


def test_pystdlib_rules_on_a_fake_stdlib(data_root, tmp_path):
    root = tmp_path / "lib"
    (root / "test").mkdir(parents=True)
    (root / "pkg").mkdir()
    (root / "a.py").write_text("def f():\n\treturn 1\x0c\n", encoding="utf-8")
    (root / "b.py").write_text("x = 'é'\n", encoding="utf-8")                  # non-ASCII: skipped
    (root / "pkg" / "__init__.py").write_text("", encoding="utf-8")             # empty: skipped
    (root / "pkg" / "c.py").write_text("def f():\n\treturn 1\n", encoding="utf-8")  # duplicate of a.py
    (root / "test" / "test_a.py").write_text("assert True\n" * 100, encoding="utf-8")
    (root / "z.py").write_text("print('hi')\n" * 100, encoding="utf-8")
    folder = recipes.prepare("pystdlib", from_file=root, log=quiet)
    meta = load_meta(folder)
    assert meta["cleaning"] == {"control characters": 1, "files with other characters": 1,
                                "empty files": 1, "duplicate files": 1}
    tok = load_tokenizer(folder / "tokenizer.json")
    assert tok.vocab_size == 96
    text = tok.decode(load_tokens(folder, "train").tolist() + load_tokens(folder, "val").tolist())
    assert text.startswith("# file: a.py\ndef f():\n    return 1\n\n# file: z.py\nprint('hi')\n")
    assert "test_a" not in text and "c.py" not in text


def test_pystdlib_real_is_deterministic(data_root, tmp_path, monkeypatch):
    monkeypatch.setattr(sources, "PYSTDLIB_BYTES", 150_000)
    a = recipes.prepare("pystdlib", out=tmp_path / "a", log=quiet)
    b = recipes.prepare("pystdlib", out=tmp_path / "b", log=quiet)
    for name in ("train.bin", "val.bin", "tokenizer.json"):
        assert (a / name).read_bytes() == (b / name).read_bytes()
    assert load_meta(a)["source_sha256"] == load_meta(b)["source_sha256"]
    assert load_meta(a)["characters"] >= 150_000


def test_cli_prepare(data_root, tmp_path, capsys):
    from minigpt.cli import main

    src = tmp_path / "story.txt"
    src.write_text("once upon a time " * 20, encoding="utf-8")
    assert main(["prepare", "textfile", str(src), "--name", "story"]) == 0
    assert (data_root / "story" / "train.bin").is_file()
    assert main(["prepare", "shakespeare_char", "--url", UNREACHABLE, "--no-progress"]) == 2
    assert "--from-file" in capsys.readouterr().err
