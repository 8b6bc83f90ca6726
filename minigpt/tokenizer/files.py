"""Reading tokenizer files: tiktoken's `.tiktoken` ranks, OpenAI's encoder.json + vocab.bpe, and our JSON.

GPT-2's published files describe the same 50,000 merges in two different ways:
- `.tiktoken`: one line per token, `<base64 of the token's bytes> <rank>`, ranks 0..50255. The merges are
  implicit: token r is whatever two earlier tokens BPE would join to spell it, so `recover_merges`
  re-runs BPE on each token's bytes with only the merges ranked below it (karpathy/minbpe's gpt4.py does
  the same) and checks that exactly two pieces are left.
- `encoder.json` (token text -> id) and `vocab.bpe` (one merge "left right" per line, in rank order). The
  token texts are bytes disguised as printable characters by `bytes_to_unicode`, GPT-2's byte-order quirk:
  the 188 printable bytes stand for themselves and the other 68 get the characters U+0100, U+0101, ...
  Because ids follow that list, GPT-2's id for byte b is not b ('!' is 0, 'a' is 64, space is 220).

Also here: minigpt's own JSON tokenizer files (BPE and char). Every reader goes through
minigpt/files/boundary.py (size limit, nesting depth, UTF-8, bounded integers) and checks every field it
uses - types, ranges (ids inside the vocabulary, merges naming earlier ids, no duplicates), counts - so a
truncated, edited or hostile file ends in a FileFormatError (a ValueError) naming the file, the field or
line, and the problem; never a traceback from deeper down, and never more than O(n log n) work.
What this file does not do: download anything (the dataset recipes do), hold a tokenizer or write its files
(bpe_tokenizer.py and char.py do, through minigpt/files/atomic.py).
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from minigpt.files.boundary import FileFormatError, get_field, read_json, read_text
from minigpt.tokenizer.bpe import Pair
from minigpt.tokenizer.bpe_engine import PairTable, encode_chunk_fast

FORMAT_VERSION = 1            # of minigpt's tokenizer JSON files
MAX_TOKENS = 1_000_000        # merges / ranks a file may hold (o200k_base has 199,998)
MAX_TOKEN_BYTES = 4096        # bytes one token may spell (GPT-2's longest: 128)
MAX_SPECIALS = 100_000        # special tokens a file may hold (o200k_harmony has 1,088)
MAX_CHARS = 1_000_000         # characters a char tokenizer may hold
TIKTOKEN_MAX_BYTES = 64 << 20  # o200k_base.tiktoken is 3.6 MB
RECOVER_BULK_MIN = 256        # tokens this long are BPE'd with NumPy steps first (GPT-2 has none)


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
    text = read_text(path, "tiktoken rank file", TIKTOKEN_MAX_BYTES)
    ranks: dict[bytes, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2:
            raise FileFormatError(f"{path}, line {number}: expected '<base64 token> <rank>', got "
                                  f"{line[:60]!r} (is the file truncated or not a .tiktoken file?)")
        if not parts[1].isascii() or not parts[1].isdigit() or len(parts[1]) > 9:
            raise FileFormatError(f"{path}, line {number}: the rank {parts[1][:20]!r} is not a whole number "
                                  f"below 10**9")
        try:
            token = base64.b64decode(parts[0], validate=True)
        except (binascii.Error, ValueError) as exc:
            raise FileFormatError(f"{path}, line {number}: cannot parse {line[:60]!r}: {exc}") from None
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise FileFormatError(f"{path}, line {number}: a token must spell 1..{MAX_TOKEN_BYTES} bytes, "
                                  f"this one spells {len(token)}")
        if token in ranks:
            raise FileFormatError(f"{path}, line {number}: token {token[:40]!r} appears twice")
        if len(ranks) >= MAX_TOKENS:
            raise FileFormatError(f"{path}: more than {MAX_TOKENS:,} tokens; not a tokenizer minigpt reads")
        ranks[token] = int(parts[1])
    if not ranks:
        raise FileFormatError(f"{path}: no tokens found (empty file?)")
    if sorted(ranks.values()) != list(range(len(ranks))):
        raise FileFormatError(f"{path}: ranks must be 0..{len(ranks) - 1} with none missing or repeated")
    return ranks


def recover_merges(ranks: dict[bytes, int], source: str = "ranks") -> tuple[list[int], dict[Pair, int]]:
    """{token bytes: rank} -> (byte_ids, merges): byte_ids[b] is byte b's id, merges[(a, b)] = rank.

    Tokens are taken in rank order, so `merges` holds exactly the merges ranked below the current token
    (minbpe's max_rank); bpe_engine.encode_chunk_fast keeps this O(L log L) for a token of L bytes, and
    long tokens (a file of 3,000 chained tokens "aa", "aaa", ...) take its NumPy steps first.
    """
    byte_ids = []
    for b in range(256):
        rank = ranks.get(bytes([b]))
        if rank is None or rank >= 256:
            raise FileFormatError(f"{source}: the single byte {bytes([b])!r} must have a rank below 256, "
                                  f"found {rank}")
        byte_ids.append(rank)
    table = bytes(byte_ids)                           # bytes.translate maps each byte to its id in one call
    merges: dict[Pair, int] = {}
    pairs, pending = PairTable({}), {}                # the merges in NumPy form, and those not yet added
    for token, rank in sorted(ranks.items(), key=lambda item: item[1]):
        if len(token) == 1:
            continue
        if len(token) >= RECOVER_BULK_MIN and pending:
            pairs.add(pending)
            pending = {}
        parts = encode_chunk_fast(list(token.translate(table)), merges,       # merges ranked below `rank`
                                  pairs if len(token) >= RECOVER_BULK_MIN else None, RECOVER_BULK_MIN)
        if len(parts) != 2:
            raise FileFormatError(f"{source}: token {token[:40]!r} (rank {rank}) is not the merge of two "
                                  f"earlier tokens (BPE leaves {len(parts)} pieces); not a byte-level BPE "
                                  "vocabulary")
        merges[(parts[0], parts[1])] = pending[(parts[0], parts[1])] = rank
    return byte_ids, merges


def read_gpt2_files(encoder_json: str | Path, vocab_bpe: str | Path
                    ) -> tuple[list[int], dict[Pair, int], dict[str, int]]:
    """OpenAI's encoder.json + vocab.bpe (or HF's vocab.json + merges.txt) -> (byte_ids, merges, specials)."""
    encoder_json, vocab_bpe = Path(encoder_json), Path(vocab_bpe)
    encoder = read_json(encoder_json, "GPT-2 encoder.json")
    if not isinstance(encoder, dict):
        raise FileFormatError(f"{encoder_json}: expected a JSON object mapping token text to integer ids")
    if len(encoder) > MAX_TOKENS:
        raise FileFormatError(f"{encoder_json}: more than {MAX_TOKENS:,} tokens")
    for text in encoder:
        get_field(encoder, text, int, f"{encoder_json}", lo=0, hi=2**31 - 1)
    if len(set(encoder.values())) != len(encoder):
        raise FileFormatError(f"{encoder_json}: two tokens share an id")
    byte_to_char = bytes_to_unicode()
    missing = [c for c in byte_to_char.values() if c not in encoder]
    if missing:
        raise FileFormatError(f"{encoder_json}: the byte token {missing[0]!r} is missing ({len(missing)} "
                              "byte tokens missing); is this GPT-2's encoder.json?")
    byte_ids = [encoder[byte_to_char[b]] for b in range(256)]
    if sorted(byte_ids) != list(range(256)):
        raise FileFormatError(f"{encoder_json}: the 256 byte tokens must have the ids 0..255")

    lines = read_text(vocab_bpe, "GPT-2 vocab.bpe").split("\n")
    merges: dict[Pair, int] = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip() or (number == 1 and line.startswith("#version")):
            continue                                  # the header line and the trailing empty line
        parts = line.split(" ")
        if len(parts) != 2 or not all(parts):
            raise FileFormatError(f"{vocab_bpe}, line {number}: expected two tokens separated by one space, "
                                  f"got {line[:60]!r}")
        left, right = parts
        for text in (left, right, left + right):
            if text not in encoder:
                raise FileFormatError(f"{vocab_bpe}, line {number}: token {text[:40]!r} is not in "
                                      f"{encoder_json.name}")
        new = encoder[left + right]
        if new != 256 + len(merges):
            raise FileFormatError(f"{vocab_bpe}, line {number}: merge {left[:20]!r} + {right[:20]!r} has id "
                                  f"{new} in {encoder_json.name}, expected {256 + len(merges)} (ids follow "
                                  "merge order)")
        pair = (encoder[left], encoder[right])
        if pair in merges:
            raise FileFormatError(f"{vocab_bpe}, line {number}: the merge {left[:20]!r} + {right[:20]!r} "
                                  "appears twice")
        merges[pair] = new
    known = set(byte_ids) | set(merges.values())
    specials = {text: idx for text, idx in encoder.items() if idx not in known}
    if len(specials) > MAX_SPECIALS:
        raise FileFormatError(f"{encoder_json}: {len(specials):,} tokens are in no merge of "
                              f"{vocab_bpe.name}; is vocab.bpe truncated?")
    return byte_ids, merges, specials


# ---- minigpt's own JSON tokenizer files ----------------------------------------------------------------
def _read_minigpt_json(path: Path, fmt: str) -> dict[str, Any]:
    data = read_json(path, f"{fmt} tokenizer file")
    where = str(path)
    if not isinstance(data, dict) or data.get("format") != fmt:
        raise FileFormatError(f"{path}: not a {fmt} tokenizer file (its 'format' field must be {fmt!r})")
    version = get_field(data, "version", int, where, lo=0, hi=10**6)
    if version != FORMAT_VERSION:
        raise FileFormatError(f"{path}: format version {version!r}, this minigpt reads version "
                              f"{FORMAT_VERSION}")
    return data


def read_bpe_json(path: Path) -> dict[str, Any]:
    """A file written by BPETokenizer.save -> {pattern, special_tokens, byte_ids, merges, vocab_size}, typed.

    Checked here: every field's type, counts, ids as integers inside 0..2**31-1, merges as
    [left, right, id(, text)] with no pair twice; BPETokenizer's constructor checks the rest (ids in order,
    merges naming earlier ids, special ids free) with the file's name in the message.
    """
    data = _read_minigpt_json(path, "minigpt-bpe")
    where = str(path)
    pattern = data.get("pattern")
    if pattern is not None and not isinstance(pattern, str):
        raise FileFormatError(f"{where}: field 'pattern' must be a pattern name or null, got {pattern!r:.60}")
    vocab_size = get_field(data, "vocab_size", int, where, lo=256, hi=2**31)
    specials = get_field(data, "special_tokens", dict, where)
    if len(specials) > MAX_SPECIALS:
        raise FileFormatError(f"{where}: field 'special_tokens' has more than {MAX_SPECIALS:,} entries")
    for name in specials:
        get_field(specials, name, int, f"{where}: special_tokens", lo=0, hi=2**31 - 1)
    byte_ids = get_field(data, "byte_ids", list, where)
    if len(byte_ids) != 256 or any(type(v) is not int for v in byte_ids):
        raise FileFormatError(f"{where}: field 'byte_ids' must be a list of 256 integer ids")
    items = get_field(data, "merges", list, where)
    if len(items) > MAX_TOKENS:
        raise FileFormatError(f"{where}: field 'merges' has more than {MAX_TOKENS:,} entries")
    merges: dict[Pair, int] = {}
    for k, item in enumerate(items):
        if (not isinstance(item, list) or len(item) not in (3, 4)
                or not all(type(x) is int and 0 <= x < 2**31 for x in item[:3])):
            raise FileFormatError(f"{where}: merge #{k} must be [left_id, right_id, new_id, text] with ids "
                                  f"in 0..2**31-1, got {item!r:.80}")
        pair = (item[0], item[1])
        if pair in merges:
            raise FileFormatError(f"{where}: merge #{k} {list(pair)}: the same pair is merged twice")
        merges[pair] = item[2]
    return {"pattern": pattern, "vocab_size": vocab_size, "special_tokens": specials, "byte_ids": byte_ids,
            "merges": merges}


def read_char_json(path: Path) -> list[str]:
    """A file written by CharTokenizer.save -> its characters (distinct single characters, checked)."""
    data = _read_minigpt_json(path, "minigpt-char")
    chars = get_field(data, "chars", list, str(path))
    if len(chars) > MAX_CHARS:
        raise FileFormatError(f"{path}: field 'chars' has more than {MAX_CHARS:,} entries")
    bad = [k for k, c in enumerate(chars) if not isinstance(c, str) or len(c) != 1]
    if bad:
        raise FileFormatError(f"{path}: field 'chars' must hold single characters, got {chars[bad[0]]!r:.40} "
                              f"at index {bad[0]}")
    if len(set(chars)) != len(chars):
        raise FileFormatError(f"{path}: field 'chars' lists a character twice")
    return chars
