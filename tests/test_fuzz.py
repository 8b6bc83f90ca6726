"""Tests that attack: a seeded mutation fuzzer over every file reader but the tokenizer's, and named attacks.

Each reader starts from a valid file (built here, in a temporary folder) and reads mutations of it:
truncated, bytes flipped, chunks spliced or repeated, brackets nested 100,000 deep, fields retyped (null,
list, object, string, lone surrogate, 400-digit integer, NaN, inf), counts and shapes enlarged. A reader may
accept a mutant or refuse it with one of the project's documented errors (DOCUMENTED below: ValueError
subclasses whose message names the file); anything else -- TypeError, KeyError, AttributeError,
RecursionError, MemoryError, OverflowError, UnicodeError, a NumPy error -- fails the test, as does a case
taking CASE_SECONDS or a process peak over MAX_RSS_BYTES.

    MINIGPT_FUZZ_CASES=3000 python -m pytest -q tests/test_fuzz.py -s   # a bigger campaign (default 200)
    MINIGPT_FUZZ_SEED=7 ...                                             # other mutants

Readers: safetensors (header and data), config.json, generation_config.json, model.safetensors.index.json,
a GPT-2 folder's model.safetensors, meta.json and the token .bin files, a checkpoint folder (state.json,
model.safetensors, optimizer.safetensors), task JSONL, the Tang poems' JSON, TOML presets. The tokenizer's
own files belong to tests/test_tokenizer.py. Targeted attacks (each a case that once crashed) follow.
"""

from __future__ import annotations

import json
import os
import random
import resource
import struct
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest

from minigpt import hf
from minigpt.datasets import prepared
from minigpt.datasets.prepared import DataError
from minigpt.datasets.sources import _poems_from_json
from minigpt.files import checkpoint, safetensors
from minigpt.files.boundary import FileFormatError, read_toml
from minigpt.files.checkpoint import CheckpointError
from minigpt.files.safetensors import SafetensorsError
from minigpt.finetune.tasks import TaskError, read_jsonl
from minigpt.model import GPT, GPTConfig
from minigpt.optim import AdamW
from minigpt.tokenizer import CharTokenizer

DOCUMENTED = (FileFormatError, SafetensorsError, CheckpointError, DataError, TaskError)
CASES = int(os.environ.get("MINIGPT_FUZZ_CASES", "200"))
SEED = int(os.environ.get("MINIGPT_FUZZ_SEED", "0"))
CASE_SECONDS = 10.0
MAX_RSS_BYTES = 2 << 30
CHARS = "\nabcdefgh ,."
PRESET = Path(__file__).resolve().parents[1] / "minigpt" / "training" / "presets" / "smoke.toml"


# ---- mutations ------------------------------------------------------------------------------------------
NASTY_VALUES = [None, [], {}, "", "x", "\ud800", True, False, 0, -1, 1, 2**31, 2**64, -(2**63), 10**400,
                float("nan"), float("inf"), -float("inf"), 1e308, 0.5, -0.0, [1, 2], {"a": 1}, ["x"] * 50,
                "9" * 1000]


def nested(depth: int) -> object:
    value: object = 1
    for _ in range(depth):
        value = [value]
    return value


def paths_in(obj, path=()):
    """The path to every value inside obj (lists: their first 20 items), the root first."""
    yield path
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from paths_in(v, path + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj[:20]):
            yield from paths_in(v, path + (i,))


def enlarge(value, rng: random.Random):
    if isinstance(value, bool) or value is None:
        return 10 ** rng.choice([3, 9, 18, 30])
    if isinstance(value, int | float):
        return value * 10 ** rng.choice([1, 3, 6, 9, 20, 40]) + rng.choice([0, 1, -1])
    if isinstance(value, str):
        return value * rng.choice([100, 10_000])
    if isinstance(value, list):
        return (value or [0]) * rng.choice([10, 1000, 20_000])
    return {f"k{i}": i for i in range(rng.choice([10, 1000, 20_000]))} | value


def mutate_json(obj, rng: random.Random) -> str:
    """obj with one value retyped, enlarged, deleted or given a sibling, as JSON text (NaN, huge ints and
    lone surrogates allowed: the text a hostile writer could produce)."""
    obj = json.loads(json.dumps(obj))
    path = rng.choice(list(paths_in(obj)))
    parent, key, target = None, None, obj
    for k in path:
        parent, key, target = target, k, target[k]
    op = rng.random()
    if op < 0.45:
        value = rng.choice(NASTY_VALUES + [nested(rng.choice([10, 100, 500]))])
    elif op < 0.7:
        value = enlarge(target, rng)
    elif op < 0.85 and parent is not None:             # delete the value
        del parent[key]
        return json.dumps(obj, allow_nan=True)
    else:                                              # add an unknown field or element
        if isinstance(target, dict):
            target[rng.choice(["extra", "__metadata__", "", "\ud800"])] = rng.choice(NASTY_VALUES)
        elif isinstance(target, list):
            target.append(rng.choice(NASTY_VALUES))
        value = target
    if parent is None:
        obj = value
    else:
        parent[key] = value
    return json.dumps(obj, allow_nan=True, ensure_ascii=rng.random() < 0.5)


def mutate_bytes(data: bytes, rng: random.Random) -> bytes:
    """Truncate, flip, splice, repeat, nest or delete: one to three times."""
    out = bytearray(data)
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        op = rng.randrange(6)
        at = rng.randrange(len(out) + 1)
        if op == 0:                                    # truncate
            del out[at:]
        elif op == 1 and out:                          # flip bytes
            for _ in range(rng.randint(1, 4)):
                out[rng.randrange(len(out))] = rng.randrange(256)
        elif op == 2:                                  # splice in a chunk from elsewhere
            a = rng.randrange(len(out) + 1)
            out[at:at] = out[a:a + rng.randint(1, 64)]
        elif op == 3:                                  # repeat a chunk many times
            a = rng.randrange(len(out) + 1)
            out[at:at] = bytes(out[a:a + rng.randint(1, 16)]) * rng.choice([10, 1000])
        elif op == 4:                                  # nest deeply
            n = rng.choice([100, 10_000, 100_000])
            out[at:at] = b"[" * n + (b"]" * n if rng.random() < 0.5 else b"")
        else:                                          # delete a chunk
            del out[at:at + rng.randint(1, 32)]
    return bytes(out)


Structured = Callable[[random.Random], bytes]


def json_mutants(obj) -> Structured:
    return lambda rng: mutate_json(obj, rng).encode("utf-8", "surrogatepass")


def safetensors_mutants(valid: bytes) -> Structured:
    """Mutate the header's JSON (or add many empty tensors), pad it, keep the length prefix consistent,
    and sometimes cut or lengthen the buffer."""
    (n,) = struct.unpack("<Q", valid[:8])
    header, buffer = json.loads(valid[8:8 + n]), valid[8 + n:]

    empty = ', "e{}": {{"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}}'
    many = {k: "".join(empty.format(i) for i in range(k))            # made once: the mutants reuse them
            for k in (100, 10_000, safetensors.MAX_TENSORS + 1)}

    def make(rng: random.Random) -> bytes:
        if rng.random() < 0.06:                        # many empty tensors
            text = json.dumps(header)[:-1] + rng.choice(list(many.values())) + "}"
        else:
            text = mutate_json(header, rng)
        raw = text.encode("utf-8", "surrogatepass")
        raw = rng.choice([b"", b" ", b"\n\t "]) + raw + rng.choice([b"", b"   ", b"\0"])
        tail = buffer
        if rng.random() < 0.2:
            tail = buffer[:rng.randrange(len(buffer) + 1)] + bytes(rng.randrange(9))
        return struct.pack("<Q", len(raw)) + raw + tail
    return make


# ---- the readers, each from a valid file -------------------------------------------------------------
@dataclass
class Reader:
    file: str                                          # the file mutated, relative to the folder
    read: Callable[[Path], object]                     # reads the whole folder, as minigpt would
    structured: Structured | None                      # format-aware mutants (else bytes only)


def tiny_model(dtype=np.float32) -> GPT:
    return GPT(GPTConfig(vocab_size=len(CHARS), block_size=8, n_layer=1, n_head=2, n_embd=8), seed=0,
               dtype=dtype)


def build_safetensors(folder: Path) -> Reader:
    tensors = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(3, dtype=np.float16),
               "i": np.arange(4, dtype=np.int64), "m": np.array([True, False]), "z": np.zeros((0, 2))}
    path = folder / "x.safetensors"
    safetensors.save(tensors, path, metadata={"format": "pt"})

    def read(f: Path) -> None:
        safetensors.load(f / "x.safetensors")
        safetensors.load(f / "x.safetensors", mmap=True)
        safetensors.loads((f / "x.safetensors").read_bytes(), name=str(f / "x.safetensors"))
    return Reader("x.safetensors", read, safetensors_mutants(path.read_bytes()))


def build_hf(folder: Path, file: str) -> Reader:
    hf.save_gpt2(tiny_model(), folder)
    (folder / "generation_config.json").write_text(json.dumps({"eos_token_id": 3, "bos_token_id": 3}))
    if file == "model.safetensors.index.json":
        state = safetensors.load(folder / "model.safetensors")
        (folder / "model.safetensors").unlink()
        names = sorted(state)
        weight_map = {}
        for k, part in enumerate((names[:5], names[5:])):
            shard = f"model-0000{k + 1}-of-00002.safetensors"
            safetensors.save({n: state[n] for n in part}, folder / shard)
            weight_map |= dict.fromkeys(part, shard)
        (folder / file).write_text(json.dumps({"metadata": {"total_size": 1}, "weight_map": weight_map}))

    def read(f: Path) -> None:
        model = hf.load_gpt2(f)
        hf.read_eos_token_id(f, model.config.vocab_size)
    valid = (folder / file).read_bytes()
    if file.endswith(".json"):
        return Reader(file, read, json_mutants(json.loads(valid)))
    return Reader(file, read, safetensors_mutants(valid))


def build_dataset(folder: Path, file: str) -> Reader:
    tok = CharTokenizer(CHARS)
    tok.save(folder / "tokenizer.json")
    ids = tok.encode("abc, def. gh\n" * 20)
    prepared.write_tokens(folder / "train.bin", ids[:200], np.dtype("<u2"))
    prepared.write_tokens(folder / "val.bin", ids[200:], np.dtype("<u2"))
    prepared.write_meta(folder, {"name": "fuzz", "tokenizer": "tokenizer.json", "vocab_size": tok.vocab_size,
                                 "dtype": "uint16", "train_tokens": 200, "val_tokens": len(ids) - 200,
                                 "source_sha256": "0" * 64, "cleaning": {"control characters": 0}})

    def read(f: Path) -> None:
        meta = prepared.load_meta(f)
        for split in ("train", "val"):
            prepared.load_tokens(f, split)
        prepared.check_vocab(meta, prepared.load_tokenizer(f / meta.get("tokenizer", "tokenizer.json")), f)
    if file == "meta.json":
        return Reader(file, read, json_mutants(json.loads((folder / "meta.json").read_text())))
    valid = np.fromfile(folder / file, dtype="<u2")

    def ids_mutants(rng: random.Random) -> bytes:             # same length, some ids replaced
        out = valid.copy()
        for _ in range(rng.randint(1, 3)):
            out[rng.randrange(len(out))] = rng.choice([0, tok.vocab_size - 1, tok.vocab_size, 65535])
        return out.tobytes()
    return Reader(file, read, ids_mutants)


def build_checkpoint(folder: Path, file: str) -> Reader:
    folder.parent.mkdir(parents=True, exist_ok=True)
    CharTokenizer(CHARS).save(folder.parent / "tok.json")
    model = tiny_model()
    opt = AdamW(model.params, lr=1e-3)
    state = {"iter": 3, "eval_done": True, "best_val": 2.5, "stale_evals": 0, "dataset": "fuzz",
             "dataset_sha256": "0" * 64, "model_config": asdict(model.config), "train_config": {"lr": 1e-3},
             "rng": {"data": np.random.default_rng(0).bit_generator.state,
                     "dropout": np.random.default_rng(1).bit_generator.state}}
    checkpoint.save(folder, model, opt.state_dict(), state, folder.parent / "tok.json")
    valid = (folder / file).read_bytes()
    structured = json_mutants(json.loads(valid)) if file == "state.json" else safetensors_mutants(valid)
    return Reader(file, checkpoint.load, structured)


def build_tasks(folder: Path) -> Reader:
    lines = [{"prompt": "秦川雄帝宅，", "response": "函谷壯皇居。"}, {"prompt": "a", "response": "b"},
             {"prompt": "", "response": "x" * 40}]
    (folder / "task.jsonl").write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines),
                                       encoding="utf-8")

    def structured(rng: random.Random) -> bytes:
        k = rng.randrange(len(lines))
        out = [json.dumps(x, ensure_ascii=False) for x in lines]
        out[k] = mutate_json(lines[k], rng)
        return "\n".join(out).encode("utf-8", "surrogatepass")
    return Reader("task.jsonl", lambda f: read_jsonl(f / "task.jsonl"), structured)


def build_tang(folder: Path) -> Reader:
    poems = [{"title": "靜夜思", "author": "李白",
              "paragraphs": ["床前明月光，疑是地上霜。", "舉頭望明月，低頭思故鄉。"]},
             {"author": "王維", "paragraphs": ["空山不見人"]}]
    (folder / "tang.json").write_text(json.dumps(poems, ensure_ascii=False), encoding="utf-8")

    def read(f: Path) -> None:
        path = f / "tang.json"
        try:
            text = path.read_bytes().decode("utf-8")
        except UnicodeDecodeError:
            return                                     # sources._read_utf8 refuses it first (test_data.py)
        _poems_from_json(text, path)
    return Reader("tang.json", read, json_mutants(poems))


def build_toml(folder: Path) -> Reader:
    (folder / "preset.toml").write_bytes(PRESET.read_bytes())
    return Reader("preset.toml", lambda f: read_toml(f / "preset.toml"), None)


BUILDERS: dict[str, Callable[[Path], Reader]] = {
    "safetensors": build_safetensors,
    "config.json": lambda f: build_hf(f, "config.json"),
    "generation_config.json": lambda f: build_hf(f, "generation_config.json"),
    "index.json": lambda f: build_hf(f, "model.safetensors.index.json"),
    "hf model.safetensors": lambda f: build_hf(f, "model.safetensors"),
    "meta.json": lambda f: build_dataset(f, "meta.json"),
    "train.bin": lambda f: build_dataset(f, "train.bin"),
    "state.json": lambda f: build_checkpoint(f, "state.json"),
    "checkpoint model.safetensors": lambda f: build_checkpoint(f, "model.safetensors"),
    "checkpoint optimizer.safetensors": lambda f: build_checkpoint(f, "optimizer.safetensors"),
    "task jsonl": build_tasks,
    "tang json": build_tang,
    "toml preset": build_toml,
}


def run_campaign(name: str, folder: Path, cases: int, seed: int) -> dict:
    """Read `cases` mutants of the reader's file; return the outcome counts and the slowest case's time.
    An undocumented error or a slow case raises AssertionError naming the reader, case and mutant."""
    folder.mkdir(parents=True, exist_ok=True)
    reader = BUILDERS[name](folder)
    target = folder / reader.file
    valid = target.read_bytes()
    reader.read(folder)                                # the starting file is valid
    rng = random.Random(f"{name}/{seed}")
    outcomes: dict[str, int] = {}
    slowest = 0.0
    for case in range(cases):
        data = mutate_bytes(valid, rng) if reader.structured is None or rng.random() < 0.4 \
            else reader.structured(rng)
        target.write_bytes(data)
        start = time.perf_counter()
        try:
            reader.read(folder)
            outcome = "accepted"
        except DOCUMENTED as exc:
            outcome = type(exc).__name__
            assert str(folder) in str(exc), f"{name} case #{case}: the error names no file: {exc!s:.300}"
        except Exception as exc:                       # noqa: BLE001 (exactly what the fuzzer looks for)
            raise AssertionError(f"{name} case #{case} (seed {seed}): {type(exc).__name__}: {exc!s:.300}\n"
                                 f"mutant starts {data[:300]!r}") from exc
        elapsed = time.perf_counter() - start
        slowest = max(slowest, elapsed)
        assert elapsed < CASE_SECONDS, f"{name} case #{case} took {elapsed:.1f} s: {data[:300]!r}"
        outcomes[outcome] = outcomes.get(outcome, 0) + 1
    target.write_bytes(valid)
    return {"cases": cases, "outcomes": outcomes, "slowest_s": round(slowest, 3)}


@pytest.mark.parametrize("name", list(BUILDERS))
def test_fuzz_reader_ends_only_in_documented_errors(name: str, tmp_path: Path) -> None:
    start = time.perf_counter()
    report = run_campaign(name, tmp_path / "f", CASES, SEED)
    print(f"\nfuzz {name}: {report} in {time.perf_counter() - start:.1f} s")
    outcomes = report["outcomes"]
    assert sum(outcomes.values()) == CASES
    assert len(outcomes) >= 2, f"{name}: every mutant had one outcome {outcomes}: the fuzzer is blind"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024      # Linux reports KiB
    assert peak < MAX_RSS_BYTES, f"{name}: peak memory {peak / 2**30:.2f} GB"


def test_mutants_are_seeded() -> None:
    obj = {"a": [1, 2, {"b": "c"}], "d": None}
    assert [mutate_json(obj, random.Random(5)) for _ in range(3)] == \
           [mutate_json(obj, random.Random(5)) for _ in range(3)]
    assert len({mutate_bytes(b'{"a": [1, 2]}', random.Random(k)) for k in range(20)}) > 10


def test_every_documented_error_is_a_value_error() -> None:
    """The CLI turns ValueError (and OSError) into one line; every error a reader raises must be one."""
    assert all(issubclass(cls, ValueError) for cls in DOCUMENTED)


# ---- targeted attacks: checkpoints ------------------------------------------------------------------------
def checkpoint_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "run" / "last"
    build_checkpoint(folder, "state.json")
    return folder


def edit_state(folder: Path, change: Callable[[dict], object]) -> None:
    state = json.loads((folder / "state.json").read_text())
    change(state)
    (folder / "state.json").write_text(json.dumps(state, allow_nan=True))


@pytest.mark.parametrize("change, message", [
    (lambda s: s["model_config"].update(n_layer=100_000_000), "'n_layer' = 100000000 is outside"),
    (lambda s: s["model_config"].update(n_layer=3), "describes .* parameters"),
    (lambda s: s["model_config"].update(n_embd=None), "'n_embd' must be an integer"),
    (lambda s: s["model_config"].update(future_field=1), "unknown field 'future_field'"),
    (lambda s: s["model_config"].update(n_head=3), "divisible"),
    (lambda s: s.update(iter=-1), "'iter' = -1 is outside"),
    (lambda s: s.update(iter="7"), "'iter' must be an integer"),
    (lambda s: s.update(best_val=float("nan")), "not valid JSON"),
    (lambda s: s.update(best_val="low"), "'best_val' must be a number"),
    (lambda s: s.update(eval_done=1), "'eval_done' must be true or false"),
    (lambda s: s.update(version=2), "version 2"),
    (lambda s: s.pop("rng"), "'rng' is missing"),
    (lambda s: s["rng"].update(data=None), "'data' must be an object"),
    (lambda s: s["rng"]["data"].update(bit_generator="MT19937"), "'PCG64'"),
    (lambda s: s["rng"]["data"]["state"].update(state=2**128), "'state' = .* is outside"),
    (lambda s: s["rng"]["data"]["state"].update(inc=2), "'inc' must be odd"),
    (lambda s: s["rng"]["dropout"].update(uinteger=-1), "'uinteger' = -1 is outside"),
    (lambda s: s["rng"]["dropout"].update(has_uint32=2), "'has_uint32' = 2 is outside"),
    (lambda s: s["optimizer"].update(lr=float("inf")), "not valid JSON"),
    (lambda s: s["optimizer"].update(lr=-1), "'lr' = -1.0 is outside"),
    (lambda s: s["optimizer"].update(step=[1]), "'step' must be an integer"),
    (lambda s: s.update(train_config=[]), "'train_config' must be an object"),
])
def test_damaged_state_json_is_a_checkpoint_error(tmp_path: Path, change, message) -> None:
    folder = checkpoint_folder(tmp_path)
    checkpoint.load(folder)
    edit_state(folder, change)
    with pytest.raises(CheckpointError, match=message) as info:
        checkpoint.load(folder)
    assert "state.json" in str(info.value)


def test_rng_state_mid_stream_passes_the_check(tmp_path: Path) -> None:
    folder = checkpoint_folder(tmp_path)
    rng = np.random.default_rng(123)
    rng.random(3)
    rng.integers(0, 10, dtype=np.uint32)               # leaves has_uint32 = 1: a state mid-stream
    assert rng.bit_generator.state["has_uint32"] == 1
    edit_state(folder, lambda s: s["rng"].update(data=rng.bit_generator.state))
    assert checkpoint.load(folder).state["rng"]["data"] == rng.bit_generator.state


def test_non_finite_checkpoint_weights_are_refused(tmp_path: Path) -> None:
    folder = checkpoint_folder(tmp_path)
    params = safetensors.load(folder / "model.safetensors")
    params["h.0.mlp.c_fc.weight"][1, 2] = np.nan
    safetensors.save(params, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match="h.0.mlp.c_fc.weight contains 1 NaN or inf"):
        checkpoint.load(folder)


# ---- targeted attacks: prepared datasets -------------------------------------------------------------------
@pytest.fixture
def dataset(tmp_path: Path) -> Path:
    folder = tmp_path / "data" / "fuzz"
    folder.mkdir(parents=True)
    build_dataset(folder, "meta.json")
    return folder


def edit_meta(folder: Path, **fields) -> None:
    meta = json.loads((folder / "meta.json").read_text())
    (folder / "meta.json").write_text(json.dumps(meta | fields))


@pytest.mark.parametrize("fields, message", [
    ({"vocab_size": None}, "'vocab_size' must be an integer"),
    ({"vocab_size": 0}, "'vocab_size' = 0 is outside"),
    ({"vocab_size": 70_000}, "does not fit the uint16"),
    ({"train_tokens": 2**60}, "'train_tokens' = .* is outside"),
    ({"train_tokens": "200"}, "'train_tokens' must be an integer"),
    ({"dtype": "int8"}, "'dtype' must be one of 'uint16', 'uint32'"),
    ({"tokenizer": "../../secret.json"}, "plain file name"),
    ({"tokenizer": "/etc/passwd"}, "plain file name"),
    ({"source_sha256": 5}, "'source_sha256' must be a string"),
    ({"format": None}, "'format' must be a string"),
])
def test_damaged_meta_json_is_a_data_error(dataset: Path, fields, message) -> None:
    edit_meta(dataset, **fields)
    with pytest.raises(DataError, match=message) as info:
        prepared.load_meta(dataset)
    assert "meta.json" in str(info.value) and "prepare" in str(info.value)


def test_token_ids_beyond_the_vocabulary_are_refused_on_load(dataset: Path) -> None:
    ids = np.array(prepared.load_tokens(dataset, "train"))
    ids[57] = len(CHARS) + 5
    prepared.write_tokens(dataset / "train.bin", ids, np.dtype("<u2"))
    with pytest.raises(DataError, match=r"train.bin: token id 17 \(first bad id at position 57\) is outside"):
        prepared.load_tokens(dataset, "train")
    assert prepared.load_tokens(dataset, "train", check=False)[57] == len(CHARS) + 5   # opting out reads
    with pytest.raises(DataError, match="token id 17"):
        prepared.check_tokens(ids, len(CHARS), "x.bin")
    prepared.check_tokens(ids, len(CHARS) + 6, "x.bin")
    prepared.check_tokens(np.zeros(0, np.uint16), 1, "x.bin")


def test_meta_vocab_size_that_disagrees_with_its_tokenizer_is_refused(dataset: Path) -> None:
    edit_meta(dataset, vocab_size=len(CHARS) + 10)
    meta = prepared.load_meta(dataset)
    prepared.load_tokens(dataset, "train")             # the ids are all below the (larger) vocab_size
    tok = prepared.load_tokenizer(dataset / "tokenizer.json")
    with pytest.raises(DataError, match=f"says vocab_size {len(CHARS) + 10} but its tokenizer has "
                                        f"{len(CHARS)} tokens"):
        prepared.check_vocab(meta, tok, dataset)


# ---- targeted attacks: task lines and Tang JSON -------------------------------------------------------
@pytest.mark.parametrize("line, message", [
    ('{"prompt": "a", "response": ' + "[" * 100_000 + "]" * 100_000 + "}", "nested deeper"),
    ('{"prompt": null, "response": "b"}', "'prompt' must be a string"),
    ('{"prompt": "a", "response": 1' + "0" * 400 + "}", "not valid JSON"),
    ('{"prompt": "a", "response": NaN}', "not valid JSON"),
    ('{"prompt": "\\ud800", "response": "b"}', "lone surrogate"),
    ('["prompt", "response"]', "expected a JSON object"),
    ('{"prompt": "a", "response": "' + "b" * 1_000_001 + '"}', "longer than an example can be"),
])
def test_hostile_task_lines_are_task_errors(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "t.jsonl"
    path.write_text('{"prompt": "x", "response": "y"}\n' + line + "\n", encoding="utf-8")
    with pytest.raises(TaskError, match=message) as info:
        read_jsonl(path)
    assert f"{path}:2" in str(info.value)


@pytest.mark.parametrize("text, message", [
    ("[" * 100_000, "nested deeper"),
    ('{"paragraphs": ["a"]}', "expected a JSON list"),
    ('[{"title": ["x"], "paragraphs": ["a"]}]', "'title' must be a string"),
    ('[{"paragraphs": "abc"}]', "'paragraphs' must be a list"),
    ('[{"paragraphs": ["a", 1]}]', "list of strings"),
    ("[null]", "poem #0"),
])
def test_hostile_tang_json_is_a_data_error(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(DataError, match=message):
        _poems_from_json(text, tmp_path / "tang.json")


def test_tang_json_title_and_author_may_be_null_or_absent(tmp_path: Path) -> None:
    poems = '[{"title": null, "paragraphs": ["a", "b"]}, {"author": "x", "paragraphs": ["c"]}]'
    assert _poems_from_json(poems, tmp_path / "t.json") == ["a\nb", "x\nc"]
