"""Board files that are small but hostile (issue 16, item 8): alias bombs, huge boards, duplicate keys,
messages that would print a whole expanded tree, and an `arch` the spaces do not follow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivers.bus.platform import MAX_BOARD_BYTES, MAX_DEVICES, BoardError, PlatformBus, load_board
from mmiotk import RamSpace

BILLION_LAUGHS = """\
a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
name: *g
"""


def test_a_yaml_alias_bomb_is_refused_without_expanding(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(BILLION_LAUGHS)
    with pytest.raises(BoardError, match=r"alias \*a is not allowed") as info:
        load_board(path)
    assert len(str(info.value)) < 1000  # today: pydantic's message repr()s the expanded tree


def test_one_alias_of_a_plain_value_is_refused_too(tmp_path: Path) -> None:
    path = tmp_path / "alias.yaml"
    path.write_text("name: &n mini\ndevices: []\narch: *n\n")
    with pytest.raises(BoardError, match="alias"):
        load_board(path)


@pytest.mark.parametrize("text", ["name: a\nname: b\n", "name: a\nmemory: {base: 0, size: 1, size: 2}\n",
                                  "devices:\n  - name: x\n    compatible: a\n    compatible: b\n"])
def test_duplicate_yaml_keys_are_an_error_naming_the_key(tmp_path: Path, text: str) -> None:
    path = tmp_path / "dup.yaml"
    path.write_text(text)
    with pytest.raises(BoardError, match="duplicate key"):
        load_board(path)


def test_duplicate_json_keys_are_an_error_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "dup.json"
    path.write_text('{"name": "a", "memory": {"base": 0, "size": 4096, "base": 8192}}')
    with pytest.raises(BoardError, match="duplicate key 'base'"):
        load_board(path)


def test_a_file_larger_than_a_board_is_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "huge.yaml"
    path.write_text("name: x\n# " + "x" * MAX_BOARD_BYTES + "\n")
    with pytest.raises(BoardError, match="larger than"):
        load_board(path)


def test_too_many_devices_are_refused() -> None:
    devices = [{"name": f"d{i}", "compatible": "x"} for i in range(MAX_DEVICES + 1)]
    with pytest.raises(BoardError, match="at most"):
        load_board({"devices": devices})


def test_deep_json_nesting_is_a_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text('{"name": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(BoardError, match=r"nested too deeply|syntax"):
        load_board(path)


def test_a_long_bad_value_is_quoted_short() -> None:
    with pytest.raises(BoardError) as info:
        load_board({"name": ["x" * 10_000] * 1000})
    assert len(str(info.value)) < 600


def test_a_board_whose_arch_the_space_does_not_follow_is_refused() -> None:
    board = {"name": "virt", "arch": "aarch64", "memory": {"base": 0x4000_0000, "size": 0x10_0000}}
    with RamSpace(0x10_0000, base=0x4000_0000, arch="x86_64") as ram, \
            pytest.raises(BoardError, match="the board is aarch64, but its register space"):
        PlatformBus.from_board(board, ram)
    with RamSpace(0x10_0000, base=0x4000_0000, arch="arm64") as ram:
        PlatformBus.from_board(board, ram).close()  # the same architecture under another name


def test_an_unknown_arch_is_refused_by_name() -> None:
    with RamSpace(0x10_0000, base=0x4000_0000) as ram, pytest.raises(BoardError, match="unknown architecture 'vax'"):
        PlatformBus.from_board({"arch": "vax"}, ram)


def test_a_json_board_still_loads(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    path.write_text(json.dumps({"name": "ok", "devices": [{"name": "u", "compatible": "x"}]}))
    board, _ = load_board(path)
    assert board.name == "ok" and board.devices[0].name == "u"


def test_a_device_with_an_empty_name_is_named_by_its_index() -> None:
    with pytest.raises(BoardError) as info:
        load_board({"devices": [{"name": "", "compatible": "x"}]})
    assert all(p.node for p in info.value.problems) and info.value.node == "devices[0]"
