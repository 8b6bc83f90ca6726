"""Reading GPT-2's published tokenizer files: tiktoken's `.tiktoken` ranks, OpenAI's encoder.json + vocab.bpe.

Both describe the same 50,000 merges, in two different ways:
- `.tiktoken`: one line per token, `<base64 of the token's bytes> <rank>`, ranks 0..50255. The merges are
  implicit: token r is whatever two earlier tokens BPE would join to spell it, so `recover_merges`
  re-runs BPE on each token's bytes with only the merges ranked below it (karpathy/minbpe's gpt4.py does
  the same) and checks that exactly two pieces are left.
- `encoder.json` (token text -> id) and `vocab.bpe` (one merge "left right" per line, in rank order). The
  token texts are bytes disguised as printable characters by `bytes_to_unicode`, GPT-2's byte-order quirk:
  the 188 printable bytes stand for themselves and the other 68 get the characters U+0100, U+0101, ...
  Because ids follow that list, GPT-2's id for byte b is not b ('!' is 0, 'a' is 64, space is 220).

Also here: reading minigpt's own JSON tokenizer files (format and version checked). Every reader validates
what it reads and names the file, the line and the problem. What this file does not do: download anything
(the dataset recipes do), hold a tokenizer or write its files (bpe_tokenizer.py does, through
minigpt/files/atomic.py).
"""

from __future__ import annotations

import base64
import binascii
import json
from pathlib import Path
from typing import Any

from minigpt.tokenizer.bpe import Pair, encode_chunk

FORMAT_VERSION = 1  # of minigpt's tokenizer JSON files


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's byte -> printable character table, in GPT-2's id order (its i-th key is byte token i)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
                 *range(ord("®"), ord("ÿ") + 1)]
    table = {b: chr(b) for b in printable}           # 188 bytes that print stand for themselves
    extra = 0
    for b in range(256):
        if b not in table:                            # the 68 others (control bytes, space, ...) are moved
            table[b] = chr(256 + extra)               # to U+0100, U+0101, ... so every byte is visible
            extra += 1
    return table


def read_tiktoken(path: str | Path) -> dict[bytes, int]:
    """A `.tiktoken` file -> {token bytes: rank}, checking every line and that ranks are 0..n-1."""
    path = Path(path)
    ranks: dict[bytes, int] = {}
    try:
        lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise FileNotFoundError(f"cannot read tiktoken file {path}: {exc}") from exc
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}, line {number}: expected '<base64 token> <rank>', got {line[:60]!r} "
                             "(is the file truncated or not a .tiktoken file?)")
        try:
            token = base64.b64decode(parts[0], validate=True)
            rank = int(parts[1])
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"{path}, line {number}: cannot parse {line[:60]!r}: {exc}") from exc
        if token in ranks:
            raise ValueError(f"{path}, line {number}: token {token!r} appears twice")
        ranks[token] = rank
    if not ranks:
        raise ValueError(f"{path}: no tokens found (empty file?)")
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise ValueError(f"{path}: ranks must be 0..{len(ranks) - 1} with none missing or repeated")
    return ranks


def recover_merges(ranks: dict[bytes, int], source: str = "ranks") -> tuple[list[int], dict[Pair, int]]:
    """{token bytes: rank} -> (byte_ids, merges): byte_ids[b] is byte b's id, merges[(a, b)] = rank."""
    byte_ids = []
    for b in range(256):
        rank = ranks.get(bytes([b]))
        if rank is None or rank >= 256:
            raise ValueError(f"{source}: the single byte {bytes([b])!r} must have a rank below 256, "
                             f"found {rank}")
        byte_ids.append(rank)
    table = bytes(byte_ids)                           # bytes.translate maps each byte to its id in one call
    merges: dict[Pair, int] = {}
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) == 1:
            continue
        parts = encode_chunk(list(token.translate(table)), merges)   # uses only merges ranked below `rank`
        if len(parts) != 2:
            raise ValueError(f"{source}: token {token!r} (rank {rank}) is not the merge of two earlier "
                             f"tokens (BPE leaves {len(parts)} pieces); not a byte-level BPE vocabulary")
        merges[(parts[0], parts[1])] = rank
    return byte_ids, merges


def read_gpt2_files(encoder_json: str | Path, vocab_bpe: str | Path
                    ) -> tuple[list[int], dict[Pair, int], dict[str, int]]:
    """OpenAI's encoder.json + vocab.bpe (or HF's vocab.json + merges.txt) -> (byte_ids, merges, specials)."""
    encoder_json, vocab_bpe = Path(encoder_json), Path(vocab_bpe)
    try:
        encoder = json.loads(encoder_json.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{encoder_json}: not valid JSON ({exc})") from exc
    except OSError as exc:
        raise FileNotFoundError(f"cannot read {encoder_json}: {exc}") from exc
    if not isinstance(encoder, dict) or not all(isinstance(v, int) for v in encoder.values()):
        raise ValueError(f"{encoder_json}: expected a JSON object mapping token text to integer ids")
    byte_to_char = bytes_to_unicode()
    missing = [c for c in byte_to_char.values() if c not in encoder]
    if missing:
        raise ValueError(f"{encoder_json}: the byte token {missing[0]!r} is missing ({len(missing)} byte "
                         "tokens missing); is this GPT-2's encoder.json?")
    byte_ids = [encoder[byte_to_char[b]] for b in range(256)]

    try:
        lines = vocab_bpe.read_text(encoding="utf-8").split("\n")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{vocab_bpe}: not UTF-8 text ({exc}); is this GPT-2's vocab.bpe?") from exc
    except OSError as exc:
        raise FileNotFoundError(f"cannot read {vocab_bpe}: {exc}") from exc
    merges: dict[Pair, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or (number == 1 and line.startswith("#version")):
            continue                                  # the header line and the trailing empty line
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise ValueError(f"{vocab_bpe}, line {number}: expected two tokens separated by one space, "
                             f"got {line[:60]!r}")
        left, right = parts
        for text in (left, right, left + right):
            if text not in encoder:
                raise ValueError(f"{vocab_bpe}, line {number}: token {text!r} is not in {encoder_json.name}")
        new = encoder[left + right]
        if new != 256 + len(merges):
            raise ValueError(f"{vocab_bpe}, line {number}: merge {left!r} + {right!r} has id {new} in "
                             f"{encoder_json.name}, expected {256 + len(merges)} (ids follow merge order)")
        merges[(encoder[left], encoder[right])] = new
    known = set(byte_ids) | set(merges.values())
    specials = {text: idx for text, idx in encoder.items() if idx not in known}
    return byte_ids, merges, specials


# ---- minigpt's own JSON tokenizer files ----------------------------------------------------------------
def read_json(path: Path, fmt: str, fields: list[str]) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: not valid JSON ({exc}); was it truncated or edited by hand?") from exc
    except OSError as exc:
        raise FileNotFoundError(f"cannot read tokenizer file {path}: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise ValueError(f"{path}: not a {fmt} tokenizer file (its 'format' field must be {fmt!r})")
    if data.get("version") != FORMAT_VERSION:
        raise ValueError(f"{path}: format version {data.get('version')!r}, this minigpt reads version "
                         f"{FORMAT_VERSION}")
    missing = [f for f in fields if f not in data]
    if missing:
        raise ValueError(f"{path}: missing field(s) {missing}")
    return data
