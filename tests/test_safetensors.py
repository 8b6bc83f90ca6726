"""minigpt.files.safetensors: agreement with the real library (via committed fixtures), round trips,
hostile files.

The fixtures in tests/fixtures/safetensors/ were written and read back by the `safetensors` library itself
(tests/fixtures/make_safetensors_fixtures.py); this file never imports safetensors or torch.
"""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from minigpt.files import safetensors as sf
from minigpt.files.safetensors import SafetensorsError

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "safetensors"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text(encoding="utf-8"))
FILES = [name for name in EXPECTED if name.endswith(".safetensors")]


def expected_arrays(file: str) -> dict[str, np.ndarray]:
    """The reference library's reading of a fixture, rebuilt as arrays of the dtype it reported."""
    out = {}
    for name, t in EXPECTED[file]["tensors"].items():
        out[name] = np.array(t["values"], dtype=t["dtype"]).reshape(t["shape"])
    return out


# ---- agreement with the reference library ------------------------------------------------------------

@pytest.mark.parametrize("file", FILES)
@pytest.mark.parametrize("mmap", [False, True])
def test_reads_reference_library_files_identically(file: str, mmap: bool) -> None:
    tensors, metadata = sf.load(FIXTURES / file, mmap=mmap, with_metadata=True)
    want = expected_arrays(file)
    assert metadata == (EXPECTED[file]["metadata"] or {})
    assert sorted(tensors) == sorted(want)
    for name, arr in want.items():
        got = tensors[name]
        assert got.dtype == arr.dtype and got.shape == arr.shape, name
        assert got.tobytes() == arr.tobytes(), name  # bit-exact, not merely close


def test_bf16_fixture_really_is_bf16_and_widens_exactly() -> None:
    header = sf.read_header(FIXTURES / "torch_bf16.safetensors")
    assert header.tensors["bf16"].dtype == "BF16" and header.tensors["bf16"].shape == (3, 4)
    assert EXPECTED["torch_bf16.safetensors"]["source_dtypes"]["bf16"] == "torch.bfloat16"
    got = sf.load(FIXTURES / "torch_bf16.safetensors")["bf16_special"]
    assert got.dtype == np.float32
    assert got[2] == 1.0 and got[3] == -2.5 and np.signbit(got[1])


def test_writer_is_byte_identical_to_reference_library(tmp_path: Path) -> None:
    """Same tensors -> same bytes as safetensors' own save(): so the library reads what we write."""
    reference = (FIXTURES / "numpy_plain.safetensors").read_bytes()
    tensors = expected_arrays("numpy_plain.safetensors")
    assert sf.dumps(tensors) == reference
    sf.save(tensors, tmp_path / "ours.safetensors")
    assert (tmp_path / "ours.safetensors").read_bytes() == reference


def test_mmap_arrays_are_read_only_and_copies_are_writable() -> None:
    mapped = sf.load(FIXTURES / "numpy_plain.safetensors", mmap=True)["f32"]
    copied = sf.load(FIXTURES / "numpy_plain.safetensors")["f32"]
    assert not mapped.flags.writeable and copied.flags.writeable
    with pytest.raises(ValueError):
        mapped[0, 0, 0] = 1.0


# ---- round trips --------------------------------------------------------------------------------------

DTYPES = [np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
          np.uint64, np.uint32, np.uint16, np.uint8, np.bool_]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(
    st.text(min_size=1, max_size=12).filter(lambda s: s != "__metadata__"),
    st.sampled_from(DTYPES).flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=0, max_dims=3,
                                                                                min_side=0, max_side=4))),
    max_size=5,
), st.one_of(st.none(), st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3)))
def test_round_trip_is_bit_exact(tensors: dict[str, np.ndarray], metadata: dict[str, str] | None) -> None:
    back, meta = sf.loads(sf.dumps(tensors, metadata), with_metadata=True)
    assert meta == (metadata or {})
    assert sorted(back) == sorted(tensors)
    for name, arr in tensors.items():
        assert back[name].dtype == arr.dtype and back[name].shape == arr.shape
        assert back[name].tobytes() == arr.tobytes()  # NaN payloads and -0.0 included


def test_save_load_file_round_trip_with_odd_layouts(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    tensors = {
        "big_endian": np.arange(6, dtype=">f4").reshape(2, 3),   # stored little-endian regardless
        "fortran": np.asfortranarray(rng.standard_normal((3, 4))),
        "strided": np.arange(20, dtype=np.int32)[::3],
        "scalar": np.float64(7.25),
        "empty": np.zeros((2, 0, 3), dtype=np.float16),
    }
    path = tmp_path / "odd.safetensors"
    sf.save(tensors, path, metadata={"format": "np"})
    back = sf.load(path)
    for name, arr in tensors.items():
        np.testing.assert_array_equal(back[name], arr)
        assert back[name].shape == np.shape(arr)
    assert back["big_endian"].dtype == np.dtype("<f4") and back["fortran"].flags.c_contiguous
    header = sf.read_header(path)
    info = header.tensors["big_endian"]
    on_disk = path.read_bytes()[header.data_start + info.begin: header.data_start + info.end]
    assert on_disk == np.arange(6, dtype="<f4").tobytes()   # little-endian in the file
    assert header.data_start % 8 == 0


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "model.safetensors"
    sf.save({"a": np.ones(3)}, path)
    before = path.read_bytes()

    def crash(fd: int) -> None:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="disk full"):
        sf.save({"a": np.zeros(1000)}, path)
    assert path.read_bytes() == before                      # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # and no temp file is left behind


@pytest.mark.parametrize("tensors, metadata, message", [
    ({"c": np.ones(2, dtype=np.complex64)}, None, "'c' has dtype complex64"),
    ({"o": np.array([object()])}, None, "'o' has dtype object"),
    ({"s": np.array(["x"])}, None, "'s' has dtype <U1"),
    ({"__metadata__": np.ones(1)}, None, "reserved"),
    ({"a": np.ones(1)}, {"format": 1}, "metadata must map strings to strings"),
    ({"\ud800": np.ones(1)}, None, "lone surrogates"),
    ({"a": np.ones(1)}, {"k": "\udfff"}, "lone surrogate"),
])
def test_writer_refuses_what_it_cannot_store(tensors, metadata, message, tmp_path: Path) -> None:
    with pytest.raises(SafetensorsError, match=message):
        sf.save(tensors, tmp_path / "x.safetensors", metadata=metadata)
    assert list(tmp_path.iterdir()) == []


def test_writer_refuses_a_header_its_reader_would_refuse(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(sf, "MAX_HEADER_SIZE", 200)            # the same check as at 100 MB, cheaply
    tensors = {f"name_{i}": np.ones(1) for i in range(5)}
    with pytest.raises(SafetensorsError, match="over the format's 200-byte limit"):
        sf.save(tensors, tmp_path / "x.safetensors")
    monkeypatch.setattr(sf, "MAX_TENSORS", 4)
    with pytest.raises(SafetensorsError, match="5 tensors, more than the 4"):
        sf.dumps({f"t{i}": np.ones(1) for i in range(5)})
    assert list(tmp_path.iterdir()) == []


# ---- agreement with the reference library at the format's edges ---------------------------------------

EDGE = json.loads((FIXTURES / "edge_cases.json").read_text(encoding="utf-8"))
# Where minigpt is deliberately stricter than the library (see safetensors.py's docstring).
STRICTER = {"duplicate key"}


@pytest.mark.parametrize("case", sorted(EDGE["cases"]))
def test_accepts_exactly_what_the_reference_library_accepts(case: str) -> None:
    want = EDGE["cases"][case]
    data = bytes.fromhex(want["hex"])
    if want["accepts"] and case not in STRICTER:
        tensors = sf.loads(data)
        assert {k: list(v.shape) for k, v in tensors.items()} == want["tensors"]
    else:
        with pytest.raises(SafetensorsError, match="<bytes>"):
            sf.loads(data)


def test_stricter_cases_are_still_accepted_by_the_library() -> None:
    """If a new safetensors refuses them too, STRICTER should shrink."""
    assert all(EDGE["cases"][case]["accepts"] for case in STRICTER)


# ---- hostile files ------------------------------------------------------------------------------------

def raw_file(header: dict | bytes, buffer: bytes = b"", length: int | None = None) -> bytes:
    """Assemble a file by hand: 8-byte length, header (dict -> JSON), buffer. length overrides the prefix."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + buffer


def entry(dtype: str, shape: list, begin: int, end: int) -> dict:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}


GOOD = raw_file({"a": entry("F32", [2], 0, 8), "b": entry("F32", [1], 8, 12)}, bytes(12))

HOSTILE = {
    "too short": (GOOD[:5], "too short for the 8-byte header length"),
    "truncated buffer": (GOOD[:-3], "tensor 'b'.*run past the end"),
    "truncated header": (GOOD[:30], "runs past the end of the"),
    "header over limit": (raw_file(b"{}", length=sf.MAX_HEADER_SIZE + 1),
                          "exceeds the 100,000,000-byte limit"),
    "header length huge": (raw_file(b"{}", length=2**64 - 1), "exceeds"),
    "not utf-8": (raw_file(b'{"\xff": 1}'), "not valid UTF-8"),
    "bad json": (raw_file(b'{"a": {"dtype": "F32",'), "not valid JSON"),
    "not an object": (raw_file(b"[1, 2]"), "does not start with '{'"),
    "NaN in json": (raw_file(b'{"a": NaN}'), "not valid JSON.*NaN"),
    "deep nesting": (raw_file(b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}"), "not valid JSON"),
    "duplicate key": (raw_file(b'{"a": ' + json.dumps(entry("F32", [1], 0, 4)).encode() + b', "a": '
                               + json.dumps(entry("F32", [1], 0, 4)).encode() + b"}", bytes(4)),
                      "duplicate key 'a'"),
    "unknown dtype": (raw_file({"w": entry("F7", [1], 0, 1)}, bytes(1)),
                      "tensor 'w'.*dtype 'F7' is not supported"),
    "fp8 dtype": (raw_file({"w": entry("F8_E4M3", [1], 0, 1)}, bytes(1)), "'F8_E4M3' is not supported"),
    "dtype a list": (raw_file({"w": entry(["F32"], [1], 0, 4)}, bytes(4)),
                     r"dtype \['F32'\] is not supported"),
    "entry not object": (raw_file({"w": [1, 2]}), "tensor 'w'.*must be an object"),
    "missing field": (raw_file({"w": {"dtype": "F32", "shape": [1]}}, bytes(4)), "'w'.*missing data_offsets"),
    "negative dim": (raw_file({"w": entry("F32", [-1], 0, 0)}), "'w'.*non-negative integers"),
    "float dim": (raw_file({"w": entry("F32", [1.0], 0, 4)}, bytes(4)), "'w'.*non-negative integers"),
    "bool dim": (raw_file({"w": entry("F32", [True], 0, 4)}, bytes(4)), "'w'.*non-negative integers"),
    "shape not list": (raw_file({"w": entry("F32", 4, 0, 16)}, bytes(16)), "'w'.*shape must be a list"),
    "size mismatch": (raw_file({"w": entry("F32", [2, 3], 0, 20)}, bytes(20)),
                      "'w'.*needs 24 bytes.*span 20"),
    "huge shape": (raw_file({"w": entry("F64", [2**40, 2**40], 0, 8)}, bytes(8)), "'w'.*too large"),
    "shape 0 x 2**64": (raw_file({"w": entry("F32", [0, 2**64], 0, 0)}), "'w'.*too large"),
    "shape 2**62 x 0": (raw_file({"w": entry("U8", [2**62, 2, 0], 0, 0)}), "'w'.*too large"),
    "lone surrogate name": (raw_file(b'{"\\ud800": ' + json.dumps(entry("F32", [1], 0, 4)).encode() + b"}",
                                     bytes(4)), "lone surrogate"),
    "lone surrogate metadata": (raw_file(b'{"__metadata__": {"k": "\\udfff"}}'), "lone surrogate"),
    "trailing NUL": (raw_file(b"{}\0"), "not valid JSON"),
    "too many tensors": (raw_file(b"{" + b",".join(b'"t%d":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}'
                                                   % i for i in range(sf.MAX_TENSORS + 1)) + b"}"),
                         "more than 100,000 tensors"),
    "too many JSON values": (raw_file(b'{"__metadata__": {}, "a": [' + b"[]," * sf.MAX_JSON_VALUES + b"[]]}"),
                             "more than 2,000,000 JSON values"),
    "begin after end": (raw_file({"w": entry("U8", [0], 4, 2)}, bytes(4)), "'w'.*0 <= begin <= end"),
    "three offsets": (raw_file({"w": {"dtype": "U8", "shape": [1], "data_offsets": [0, 1, 2]}}, bytes(1)),
                      "'w'.*data_offsets must be"),
    "out of bounds": (raw_file({"w": entry("F32", [2], 0, 8)}, bytes(4)), "'w'.*run past the end"),
    "overlap": (raw_file({"a": entry("F32", [2], 0, 8), "b": entry("F32", [1], 4, 8)}, bytes(8)),
                "'b'.*overlaps tensor 'a'"),
    "same bytes twice": (raw_file({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 0, 4)}, bytes(4)),
                         "overlaps"),
    "hole in the middle": (raw_file({"a": entry("F32", [1], 0, 4), "b": entry("F32", [1], 8, 12)}, bytes(12)),
                           "'b' starts at byte 8, leaving a hole of 4 unused bytes after tensor 'a'"),
    "hole at start": (raw_file({"a": entry("F32", [1], 4, 8)}, bytes(8)), "hole.*at the start"),
    "trailing bytes": (raw_file({"a": entry("F32", [1], 0, 4)}, bytes(9)), "5 bytes after the last tensor"),
    "polyglot tail, no tensors": (raw_file({}, b"#!/bin/sh"), "9 bytes after the last tensor"),
    "metadata int": (raw_file({"__metadata__": {"format": 1}}), "'__metadata__' must map strings to strings"),
    "metadata list": (raw_file({"__metadata__": ["pt"]}), "'__metadata__' must map strings"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_file_gives_clear_error(case: str, tmp_path: Path) -> None:
    data, message = HOSTILE[case]
    path = tmp_path / "hostile.safetensors"
    path.write_bytes(data)
    for read in (sf.load, sf.read_header, lambda p: sf.load(p, mmap=True)):
        with pytest.raises(SafetensorsError, match=message) as info:
            read(path)
        assert str(path) in str(info.value)  # the message names the file
    with pytest.raises(SafetensorsError, match=message):
        sf.loads(data)


def test_good_file_of_the_hostile_table_is_good() -> None:
    """The table's baseline really is valid, so each case fails for its own reason."""
    assert sf.loads(GOOD)["a"].shape == (2,)
    assert sf.loads(raw_file({"a": entry("F32", [1], 0, 4)}, bytes(4)) + b"")["a"][0] == 0.0
    assert sf.loads(raw_file(b'{"__metadata__": {"k": "v"}}    ')) == {}  # space padding is allowed


def test_error_is_a_value_error() -> None:
    """So callers (and the CLI's generic handler) can catch it as ValueError."""
    assert issubclass(SafetensorsError, ValueError)


# ---- fuzzing: whatever the bytes, the only failure is SafetensorsError ---------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False)
    | st.text(max_size=6),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(max_size=6), children, max_size=4),
    max_leaves=12,
)
entries = st.fixed_dictionaries({
    "dtype": st.sampled_from(["F32", "F16", "BF16", "I64", "U8", "BOOL", "F8_E5M2", "x"]),
    "shape": st.lists(st.integers(-1, 4), max_size=3),
    "data_offsets": st.lists(st.integers(-1, 40), min_size=0, max_size=3),
})


def expect_only_safetensors_error(data: bytes) -> None:
    try:
        tensors = sf.loads(data)
    except SafetensorsError:
        return
    assert all(isinstance(a, np.ndarray) for a in tensors.values())


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.integers(0, 80), st.binary(max_size=40))
def test_fuzz_random_header_bytes(header: bytes, length: int, buffer: bytes) -> None:
    expect_only_safetensors_error(struct.pack("<Q", length) + b"{" + header + buffer)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.text(max_size=4), entries | json_values, max_size=4), st.binary(max_size=40))
def test_fuzz_structured_headers(header: dict, buffer: bytes) -> None:
    expect_only_safetensors_error(raw_file(header, buffer))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=4),
       st.integers(0, len(GOOD)))
def test_fuzz_corrupted_and_truncated_valid_file(flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(GOOD)
    for at, value in flips:
        data[at] = value
    expect_only_safetensors_error(bytes(data[:cut]))
    expect_only_safetensors_error(bytes(data))
