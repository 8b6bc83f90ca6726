"""Read and write `.safetensors` files (Hugging Face's checkpoint format) with NumPy and the standard library.

A safetensors file is three parts, all little-endian:

    [8 bytes]  N, an unsigned 64-bit integer: the size of the header
    [N bytes]  a UTF-8 JSON object: {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [BEGIN, END]},
               ..., "__metadata__": {"free": "form strings"}}, maybe padded with spaces
    [rest]     the byte buffer: every tensor's raw bytes, C order, at [BEGIN, END) relative to the buffer

That is the whole format: no code, no pickle, nothing is executed. Because the file comes from strangers on
the internet, the reader trusts nothing: every field of the header is checked (size limit, JSON object,
known dtype, shape x itemsize == byte span, offsets inside the buffer, no overlap, no holes, no trailing
bytes), and any violation raises SafetensorsError naming the file and the tensor.

Like the reference library (safetensors 0.8; tests/fixtures/make_safetensors_fixtures.py asks it), the
reader accepts JSON whitespace before the '{' and after the '}', and `"__metadata__": null`; it refuses lone
surrogates (\ud800) in names, and shapes whose byte size NumPy cannot represent ([0, 2**64] included).
Deliberately stricter: a duplicate tensor name or entry field is refused (the reference keeps one), and a
header may list at most MAX_TENSORS tensors (see there). The work is linear in the header's size; the writer
refuses to write what the reader would refuse (a header over 100 MB, lone surrogates, too many tensors).

What this file deliberately does not do: the 8-bit/4-bit float dtypes, complex numbers, or writing BF16
(NumPy has no bfloat16; BF16 tensors are widened to float32 when read). It knows nothing about GPT-2:
names and layouts are minigpt/hf.py's business.
"""

from __future__ import annotations

import json
import os
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import numpy as np

from minigpt.files.atomic import atomic_open

MAX_HEADER_SIZE = 100_000_000  # the reference implementation's limit (a guard against huge-header attacks)
# minigpt's own limit, not the format's: GPT-2 xl has 581 tensors, the largest public checkpoints a few
# thousand per file. Without it a 100 MB header of empty tensors would make ~1.7 million Python objects
# (1.9 GB, 19 s); with it a header costs at most ~0.1 GB and ~1 s to parse.
MAX_TENSORS = 100_000
MAX_JSON_VALUES = 20 * MAX_TENSORS   # a tensor entry is ~8 values (dtype, shape and its dims, offsets)
_JSON_SPACE = b" \t\n\r"         # what JSON (and the reference's serde_json) allows around the object
_MAX_BYTES = 2**63 - 1            # NumPy's limit on an array's byte size (a signed 64-bit integer)

# dtype code in the file -> how its bytes look on disk (always little-endian). BF16 is read as raw uint16.
DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"), "F32": np.dtype("<f4"), "F16": np.dtype("<f2"), "BF16": np.dtype("<u2"),
    "I64": np.dtype("<i8"), "I32": np.dtype("<i4"), "I16": np.dtype("<i2"), "I8": np.dtype("i1"),
    "U64": np.dtype("<u8"), "U32": np.dtype("<u4"), "U16": np.dtype("<u2"), "U8": np.dtype("u1"),
    "BOOL": np.dtype("u1"),
}
# The order the reference writer lays tensors out in: by dtype, "largest" first (its enum order), then name.
# Following it makes our files byte-identical to safetensors' own save() for the same tensors.
_WRITE_ORDER = ("U64", "I64", "F64", "F32", "U32", "I32", "BF16", "F16", "U16", "I16", "I8", "U8", "BOOL")


class SafetensorsError(ValueError):
    """A file that is not a valid safetensors file, or a tensor that cannot be written to one."""


class TensorInfo(NamedTuple):
    """One header entry: where a tensor's bytes are in the buffer and how to read them.

    A named tuple, not a dataclass: a header may list many entries, and a tuple is the smallest and
    quickest object to make (a frozen dataclass's __init__ is ~2x slower)."""

    dtype: str                 # the file's code, e.g. "F32"
    shape: tuple[int, ...]
    begin: int                 # byte offsets relative to the start of the buffer; end is one past
    end: int


@dataclass(frozen=True)
class Header:
    tensors: dict[str, TensorInfo]
    metadata: dict[str, str]   # the free-form "__metadata__" strings ({} if absent)
    data_start: int            # where the buffer starts in the file: 8 + N


# ---- reading ------------------------------------------------------------------------------------------

def read_header(path: str | Path) -> Header:
    """Parse and validate the header of a safetensors file without reading any tensor data."""
    path = Path(path)
    with open(path, "rb") as f:
        return _read_header(f, os.fstat(f.fileno()).st_size, str(path))


def load(path: str | Path, *, mmap: bool = False, with_metadata: bool = False):
    """Read every tensor of a safetensors file -> {name: ndarray} (or (tensors, metadata) if with_metadata).

    Arrays are native-endian copies that own their memory. mmap=True instead returns read-only views on
    the file (np.memmap), read lazily by the OS — useful for multi-GB checkpoints. BF16 becomes float32.
    """
    path = Path(path)
    with open(path, "rb") as f:
        header = _read_header(f, os.fstat(f.fileno()).st_size, str(path))
        tensors = {}
        for name, info in header.tensors.items():
            nbytes = info.end - info.begin
            disk = DTYPES[info.dtype]
            if nbytes == 0:
                raw = np.empty(info.shape, dtype=disk)   # nothing to read (byte_size() checked the shape)
            elif mmap:
                raw = np.memmap(path, dtype=disk, mode="r", offset=header.data_start + info.begin,
                                shape=info.shape)
            else:
                f.seek(header.data_start + info.begin)
                buf = bytearray(nbytes)
                if f.readinto(buf) != nbytes:
                    raise SafetensorsError(f"{path}: tensor {name!r}: file ended while reading its bytes "
                                           "(was the file changed while being read?)")
                raw = np.frombuffer(buf, dtype=disk).reshape(info.shape)  # writable: bytearray owns it
            tensors[name] = _to_numpy(raw, info.dtype)
    return (tensors, dict(header.metadata)) if with_metadata else tensors


def loads(data: bytes, *, with_metadata: bool = False, name: str = "<bytes>"):
    """Like load(), but from the bytes of a whole safetensors file already in memory."""
    view = memoryview(data)
    header = _parse(bytes(view[:8]), lambda n: bytes(view[8:8 + n]), len(view), name)
    tensors = {}
    for key, info in header.tensors.items():
        chunk = view[header.data_start + info.begin: header.data_start + info.end]
        raw = np.frombuffer(bytearray(chunk), dtype=DTYPES[info.dtype]).reshape(info.shape)
        tensors[key] = _to_numpy(raw, info.dtype)
    return (tensors, dict(header.metadata)) if with_metadata else tensors


def _to_numpy(raw: np.ndarray, code: str) -> np.ndarray:
    """Bytes as stored -> the array the caller gets: BF16 widened, BOOL as bool, native byte order."""
    if code == "BF16":
        # bfloat16 is the top half of a float32: shift the 16 bits up and reinterpret.
        return (raw.astype(np.uint32) << 16).view(np.float32)
    if code == "BOOL":
        return raw != 0
    return raw.astype(raw.dtype.newbyteorder("="), copy=False)  # a no-op on little-endian machines


def _read_header(f, file_size: int, where: str) -> Header:
    return _parse(f.read(8), f.read, file_size, where)


def _parse(first8: bytes, read, file_size: int, where: str) -> Header:
    """Validate everything about the header; `read(n)` returns the n header bytes after the length."""
    if len(first8) < 8:
        raise SafetensorsError(f"{where}: only {file_size} bytes, too short for the 8-byte header length; "
                               "the file is truncated or not a safetensors file")
    (n,) = struct.unpack("<Q", first8)
    if n > MAX_HEADER_SIZE:
        raise SafetensorsError(f"{where}: header length {n:,} bytes exceeds the {MAX_HEADER_SIZE:,}-byte "
                               "limit; the file is corrupt or not a safetensors file")
    if 8 + n > file_size:
        raise SafetensorsError(f"{where}: header length {n:,} bytes runs past the end of the "
                               f"{file_size:,}-byte file; the file is truncated (download it again)")
    raw = read(n)
    if len(raw) != n:
        raise SafetensorsError(f"{where}: file ended inside the header (was it changed while being read?)")
    if not raw.lstrip(_JSON_SPACE).startswith(b"{"):   # JSON whitespace may come first, as in the reference
        raise SafetensorsError(f"{where}: header does not start with '{{'; not a safetensors file")
    # Count before parsing: every tensor entry names "data_offsets", so this bounds the entries (and the
    # memory json.loads would spend on them) in one C-speed pass.
    if raw.count(b'"data_offsets"') > MAX_TENSORS:
        raise SafetensorsError(f"{where}: the header lists more than {MAX_TENSORS:,} tensors, more than "
                               "minigpt reads from one file; the file is corrupt or not a model")
    # Every JSON value but the first follows a ',', '[' or '{': this bounds the Python objects parsing makes.
    if raw.count(b",") + raw.count(b"[") + raw.count(b"{") > MAX_JSON_VALUES:
        raise SafetensorsError(f"{where}: the header holds more than {MAX_JSON_VALUES:,} JSON values, more "
                               f"than {MAX_TENSORS:,} tensors would need; the file is corrupt or not a model")
    try:
        text = raw.decode("utf-8")
        obj = json.loads(text, parse_constant=_no_nan)                 # C speed: no Python call per object
        entries = len(obj) - ("__metadata__" in obj) if isinstance(obj, dict) else -1
        if not raw.count(b'"data_offsets"') == raw.count(b'"dtype"') == raw.count(b'"shape"') == entries:
            # A duplicate key (which json.loads would resolve silently) could hide here: parse again,
            # slowly, refusing duplicates. A valid header without one passes the counts above.
            obj = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_nan)
    except UnicodeDecodeError as exc:
        raise SafetensorsError(f"{where}: header is not valid UTF-8 "
                               f"({exc.reason} at byte {exc.start})") from None
    except (ValueError, RecursionError) as exc:
        raise SafetensorsError(f"{where}: header is not valid JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise SafetensorsError(f"{where}: header must be a JSON object, got {type(obj).__name__}")
    if b"\\u" in raw:                                  # only \\u escapes can spell a lone surrogate
        _check_utf8_names(obj, where)

    metadata = obj.pop("__metadata__", None)
    if metadata is None:
        metadata = {}                                  # absent or null: no metadata (the reference agrees)
    if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
        raise SafetensorsError(f"{where}: '__metadata__' must map strings to strings, got {metadata!r:.200}")
    buffer_size = file_size - 8 - n
    tensors = {name: _tensor_info(name, entry, buffer_size, where) for name, entry in obj.items()}
    _check_layout(tensors, buffer_size, where)
    return Header(tensors=tensors, metadata=metadata, data_start=8 + n)


def _no_duplicates(pairs: list[tuple[str, object]]) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise ValueError(f"duplicate key {key!r:.80}")
            seen.add(key)
    return out


def _no_nan(token: str):
    raise ValueError(f"{token} is not allowed")


def _check_utf8_names(obj: dict, where: str) -> None:
    """JSON's \\ud800 escapes can spell lone surrogates, which are not UTF-8: refused, like the reference."""
    meta = obj.get("__metadata__")
    strings = list(obj) + (list(meta) + list(meta.values()) if isinstance(meta, dict) else [])
    for s in strings:
        if isinstance(s, str) and not _is_utf8(s):
            raise SafetensorsError(f"{where}: the name or metadata string {s!r:.80} holds a lone surrogate "
                                   "(\\ud800-\\udfff), which is not valid UTF-8")


def _is_utf8(s: str) -> bool:
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _is_int(x: object) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)  # JSON true would otherwise pass as 1


def byte_size(shape: list | tuple, itemsize: int) -> int | None:
    """Bytes of a C-order array of this shape, or None if NumPy could not make it (its limit: the product
    of the non-zero dimensions times itemsize must fit in a signed 64-bit integer; the reference library's
    u64 limit is looser, but its own Python binding then fails the same way)."""
    size = itemsize
    for d in shape:
        if d:
            size *= d
            if size > _MAX_BYTES:
                return None
    return size if all(shape) else 0


def _tensor_info(name: str, entry: object, buffer_size: int, where: str) -> TensorInfo:
    """One entry of the header -> TensorInfo, checking each field on its own."""
    if (type(entry) is dict and type(entry.get("dtype")) is str and entry["dtype"] in DTYPES
            and type(shape := entry.get("shape")) is list and all(type(d) is int and d >= 0 for d in shape)
            and type(offsets := entry.get("data_offsets")) is list and len(offsets) == 2
            and type(offsets[0]) is int and type(offsets[1]) is int
            and 0 <= offsets[0] <= offsets[1] <= buffer_size
            and byte_size(shape, DTYPES[entry["dtype"]].itemsize) == offsets[1] - offsets[0]):
        return TensorInfo(entry["dtype"], tuple(shape), offsets[0], offsets[1])   # the common case, fast
    at = f"{where}: tensor {name!r:.80}"
    if not isinstance(entry, dict):
        raise SafetensorsError(f"{at}: entry must be an object with dtype, shape, data_offsets")
    missing = [k for k in ("dtype", "shape", "data_offsets") if k not in entry]
    if missing:
        raise SafetensorsError(f"{at}: entry is missing {', '.join(missing)}")
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        raise SafetensorsError(f"{at}: dtype {dtype!r:.40} is not supported (minigpt reads "
                               f"{', '.join(DTYPES)})")
    if not isinstance(shape, list) or not all(_is_int(d) and d >= 0 for d in shape):
        raise SafetensorsError(f"{at}: shape must be a list of non-negative integers, got {shape!r:.80}")
    if (not isinstance(offsets, list) or len(offsets) != 2 or not all(_is_int(o) for o in offsets)
            or not 0 <= offsets[0] <= offsets[1]):
        raise SafetensorsError(f"{at}: data_offsets must be [begin, end] with 0 <= begin <= end, "
                               f"got {offsets!r:.80}")
    begin, end = offsets
    if end > buffer_size:
        raise SafetensorsError(f"{at}: data_offsets [{begin}, {end}] run past the end of the "
                               f"{buffer_size}-byte data buffer; the file is truncated or corrupt")
    nbytes = byte_size(shape, DTYPES[dtype].itemsize)
    if nbytes is None:
        raise SafetensorsError(f"{at}: shape {shape!r:.120} of {dtype} is too large for any array (its byte "
                               "size overflows 64 bits); the file is corrupt")
    raise SafetensorsError(f"{at}: shape {shape} of {dtype} needs {nbytes} bytes but data_offsets "
                           f"[{begin}, {end}] span {end - begin}")


def _check_layout(tensors: dict[str, TensorInfo], buffer_size: int, where: str) -> None:
    """The byte spans, sorted, must tile the buffer exactly: start at 0, no overlap, no hole, no tail."""
    expected, previous = 0, None
    for begin, end, name in sorted((info.begin, info.end, name) for name, info in tensors.items()):
        if begin < expected:
            raise SafetensorsError(f"{where}: tensor {name!r} at bytes [{begin}, {end}) overlaps "
                                   f"tensor {previous!r} which ends at {expected}")
        if begin > expected:
            after = f"after tensor {previous!r}" if previous else "at the start of the buffer"
            raise SafetensorsError(f"{where}: tensor {name!r} starts at byte {begin}, leaving a hole of "
                                   f"{begin - expected} unused bytes {after}")
        expected, previous = end, name
    if expected != buffer_size:
        raise SafetensorsError(f"{where}: {buffer_size - expected} bytes after the last tensor are not "
                               "covered by any tensor; the file is corrupt")


# ---- writing ------------------------------------------------------------------------------------------

def save(tensors: Mapping[str, np.ndarray], path: str | Path,
         metadata: Mapping[str, str] | None = None) -> None:
    """Write tensors to a safetensors file atomically: a temp file in the same folder, fsync, rename.

    A crash or Ctrl-C mid-write leaves the old file (if any) intact, never a half-written one.
    """
    path = Path(path)
    header, arrays = _build_header(tensors, metadata, str(path))
    with atomic_open(path) as f:
        f.write(struct.pack("<Q", len(header)))
        f.write(header)
        for arr in arrays:
            f.write(arr.reshape(-1).view(np.uint8).data)  # raw bytes, no extra copy


def dumps(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None) -> bytes:
    """The bytes save() would write, in memory."""
    header, arrays = _build_header(tensors, metadata, "<bytes>")
    return b"".join([struct.pack("<Q", len(header)), header, *(a.tobytes() for a in arrays)])


def _code_of(arr: np.ndarray) -> str | None:
    for code, disk in DTYPES.items():
        if code != "BF16" and arr.dtype.kind == disk.kind and arr.dtype.itemsize == disk.itemsize:
            return code
    return "BOOL" if arr.dtype == np.bool_ else None


def _build_header(tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None,
                  where: str) -> tuple[bytes, list[np.ndarray]]:
    """-> (the padded JSON header, the arrays as little-endian C-contiguous in file order)."""
    if metadata is not None and not all(isinstance(k, str) and isinstance(v, str)
                                        for k, v in metadata.items()):
        raise SafetensorsError(f"{where}: metadata must map strings to strings, got {dict(metadata)!r:.200}")
    bad = [s for s in (metadata or {}).items() for s in s if not _is_utf8(s)]
    if bad:
        raise SafetensorsError(f"{where}: metadata string {bad[0]!r:.80} holds a lone surrogate, which is "
                               "not UTF-8: a reader would refuse the file")
    if len(tensors) > MAX_TENSORS:
        raise SafetensorsError(f"{where}: {len(tensors):,} tensors, more than the {MAX_TENSORS:,} minigpt "
                               "reads from one file; split them over several files")
    entries = []
    for name, value in tensors.items():
        if not isinstance(name, str) or name == "__metadata__" or not _is_utf8(name):
            raise SafetensorsError(f"{where}: tensor name {name!r:.80} is not allowed (names are UTF-8 "
                                   "strings, without lone surrogates, and '__metadata__' is reserved)")
        arr = np.asarray(value)
        code = _code_of(arr)
        if code is None:
            raise SafetensorsError(f"{where}: tensor {name!r} has dtype {arr.dtype}, which minigpt cannot "
                                   "store in safetensors; convert it to float64/32/16, an integer type or "
                                   "bool first")
        disk = np.dtype(np.uint8) if code == "BOOL" else DTYPES[code]
        arr = np.asarray(arr, dtype=disk, order="C")  # (not ascontiguousarray: it turns 0-d into 1-d)
        if byte_size(arr.shape, disk.itemsize) is None:        # what the reader refuses (NumPy cannot
            raise SafetensorsError(f"{where}: tensor {name!r}: shape {arr.shape} is too large")  # make it)
        entries.append((_WRITE_ORDER.index(code), name, code, arr))
    entries.sort(key=lambda e: (e[0], e[1]))

    header: dict[str, object] = {} if metadata is None else {"__metadata__": dict(metadata)}
    offset = 0
    for _, name, code, arr in entries:
        span = [offset, offset + arr.nbytes]
        header[name] = {"dtype": code, "shape": list(arr.shape), "data_offsets": span}
        offset += arr.nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # pad with spaces: the buffer starts 8-byte aligned, as in the reference
    if len(raw) > MAX_HEADER_SIZE:
        raise SafetensorsError(f"{where}: the header would be {len(raw):,} bytes, over the format's "
                               f"{MAX_HEADER_SIZE:,}-byte limit (no reader would open the file): use "
                               "shorter names or fewer tensors per file")
    return raw, [arr for *_, arr in entries]
