"""minigpt.files.boundary: hostile JSON/TOML ends in a FileFormatError naming the file, never a crash."""

from __future__ import annotations

import pytest

from minigpt.files.boundary import FileFormatError, get_field, parse_json, read_json, read_toml


@pytest.mark.parametrize("text", ["[" * 100_000, "{\"a\":" * 10_000 + "1" + "}" * 10_000, "[1e999999",
                                  "NaN", "[Infinity]", "1" * 400, "{\"a\": 1", "\ud800", ""])
def test_bad_json_is_a_format_error(text):
    with pytest.raises(FileFormatError, match="where.json"):
        parse_json(text, "where.json")


def test_brackets_inside_strings_do_not_count():
    text = '{"a": "' + "[" * 100 + '\\"{{"}'                  # 100 brackets and an escaped quote, in a string
    assert parse_json(text, "x") == {"a": "[" * 100 + '"{{'}


def test_read_json_limits_size_and_encoding(tmp_path):
    big = tmp_path / "big.json"
    big.write_text("[" + "1," * 100 + "1]")
    with pytest.raises(FileFormatError, match="larger than"):
        read_json(big, max_bytes=50)
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(FileFormatError, match="not UTF-8"):
        read_json(bad)
    with pytest.raises(FileFormatError, match="folder"):
        read_json(tmp_path)


def test_read_toml_refuses_deep_nesting(tmp_path):
    deep = tmp_path / "deep.toml"
    deep.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    with pytest.raises(FileFormatError, match="nested"):
        read_toml(deep)
    ok = tmp_path / "ok.toml"
    ok.write_text("lr = 1e-3\nname = 'x'\n")
    assert read_toml(ok) == {"lr": 1e-3, "name": "x"}


@pytest.mark.parametrize("value, kind, message", [
    (None, int, "must be an integer"), ([1], int, "must be an integer"), (True, int, "must be an integer"),
    (1.5, int, "must be an integer"), ("3", float, "must be a number"), (10**400, float, "must be a number"),
    (-1, int, "outside"), (2.0, float, "outside"),
])
def test_get_field_checks_type_and_range(value, kind, message):
    with pytest.raises(FileFormatError, match=message):
        get_field({"k": value}, "k", kind, "f.json", lo=0, hi=1)


def test_get_field_accepts_good_values_and_defaults():
    assert get_field({"k": 1}, "k", float, "f") == 1.0
    assert get_field({}, "k", int, "f", default=7) == 7
    with pytest.raises(FileFormatError, match="missing"):
        get_field({}, "k", int, "f")
