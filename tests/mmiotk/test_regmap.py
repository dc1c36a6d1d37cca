"""Register maps: YAML/JSON schema and its errors, binding, exports (Markdown, C header)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from mmiotk import AccessError, CachePolicy, MmioResource, RamSpace
from mmiotk.registers import W1C, Field, Register, RegisterBlock
from mmiotk.regmap import RegisterMap, RegmapError, load, loads

DATA = Path(__file__).parent / "data"


def ram_buffer(size: int = 0x1000):
    ram = RamSpace(max(size, 0x1000))
    return MmioResource(ram, 0, ram.size).create_region(0, size, "regs").map(CachePolicy.UNCACHED_DEVICE)


BRIEF_EXAMPLE = """\
name: uart
blocks:
  - name: UART0
    registers:
      - name: LINECTRL
        offset: 0x4
        width: 32          # default 32
        access: rw         # ro wo rw w1c w1s rc rsvdz; fields inherit it
        reset: 0           # default 0
        fields:
          - {name: PARITY, lsb: 0, width: 2, enum: {NONE: 0, ODD: 1, EVEN: 2}}
          - {name: STOPBITS, lsb: 2, width: 2}
"""


def test_minimal_form_loads_and_binds(tmp_path):
    path = tmp_path / "uart.yaml"
    path.write_text(BRIEF_EXAMPLE)
    regmap = load(path)
    buf = ram_buffer(0x100)
    uart = regmap.bind(buf)  # one block: no name needed
    uart.LINECTRL.write(PARITY="EVEN", STOPBITS=1)
    assert buf.read32(0x4) == 0b0110
    v = uart.LINECTRL.read()
    assert v.PARITY.name == "EVEN" and v.STOPBITS == 1
    uart.LINECTRL.modify(PARITY="ODD")
    assert buf.read32(0x4) == 0b0101


def test_yaml_and_json_give_the_same_map():
    a, b = load(DATA / "uart.yaml"), load(DATA / "uart.json")
    assert a.to_dict() == b.to_dict()
    assert a.bases == {"UART0": 0x4000_1000}


def test_a_yaml_map_binds_registers_with_their_access_semantics():
    regmap = load(DATA / "uart.yaml")
    buf = ram_buffer(0x100)
    uart = regmap.bind(buf, "UART0")
    buf.write32(0x0, 0xF7)  # RESERVED (rsvdz) bits read back non-zero, EN..TXIE set
    uart.CTRL.modify(LOOP=1)
    assert buf.read32(0x0) == 0x0F  # reserved written 0
    with pytest.raises(AccessError, match=r"UART0\.STATUS"):
        uart.STATUS.write(RXNE=1)
    buf.write32(0xC, 0b101)
    uart.INTSTAT.clear("RX")
    assert buf.read32(0xC) == 0b001
    with pytest.raises(AccessError, match="ERRCNT"):
        uart.ERRCNT.modify()
    assert uart.BAUD.spec.reset == 0x1A1 and uart.BAUD.width == 16
    assert len(uart.SCRATCH) == 4 and uart.SCRATCH[3].offset == 0x2C
    assert uart.STATUS.spec.reset == 2 and uart.STATUS.spec.fields["TXE"].reset == 1


def test_lsb_width_msb_and_bits_forms_all_give_field_positions():
    regmap = loads("""
name: m
blocks:
  - name: B
    registers:
      - name: R
        offset: 0
        fields:
          - {name: A, lsb: 0}
          - {name: B, lsb: 1, width: 3}
          - {name: C, lsb: 4, msb: 7}
          - {name: D, bits: "[15:8]"}
          - {name: E, bits: 16}
          - {name: F, bits: "[20]"}
""")
    fields = regmap.block_class().specs()["R"].fields
    assert [(f.lsb, f.width) for f in fields.values()] == [(0, 1), (1, 3), (4, 4), (8, 8), (16, 1), (20, 1)]


def _doc(**reg_overrides) -> dict:
    reg = {"name": "LINECTRL", "offset": 4, "fields": [
        {"name": "PARITY", "lsb": 0, "width": 2, "enum": {"NONE": 0, "ODD": 1}},
        {"name": "STOPBITS", "lsb": 2, "width": 2}]}
    reg.update(reg_overrides)
    return {"name": "uart", "blocks": [{"name": "UART0", "registers": [
        {"name": "CTRL", "offset": 0}, reg]}]}


def _field(**overrides) -> list:
    return [{"name": "PARITY", "lsb": 0, "width": 2}, {"name": "STOPBITS", "lsb": 2, "width": 2, **overrides}]


BAD_MAPS = [
    # (what, document, expected message after the file name)
    ("overlapping fields", _doc(fields=_field(lsb=1)),
     r"block UART0, register LINECTRL, field STOPBITS: bits \[2:1\] overlap field PARITY \[1:0\]"),
    ("field beyond the width", _doc(width=8, fields=_field(lsb=7)),
     r"block UART0, register LINECTRL, field STOPBITS: bits \[8:7\] go beyond the register width \(8 bits\)"),
    ("misaligned offset", _doc(offset=6), r"block UART0, register LINECTRL: offset 0x6 is not aligned"),
    ("overlapping registers", _doc(offset=0), r"block UART0, register LINECTRL at 0x0 overlaps register CTRL"),
    ("array overlapping",
     {"name": "u", "blocks": [{"name": "UART0", "registers": [
         {"name": "LUT", "offset": 0, "count": 4, "stride": 8}, {"name": "X", "offset": 16}]}]},
     r"block UART0, register X at 0x10 overlaps register LUT\[2\]"),
    ("register reset too wide", _doc(width=16, reset=0x10000),
     r"block UART0, register LINECTRL: reset 65536 does not fit in 16 bits"),
    ("field reset too wide", _doc(fields=_field(reset=4)),
     r"block UART0, register LINECTRL, field STOPBITS: reset 4 does not fit in 2 bits"),
    ("enum value too wide", _doc(fields=_field(enum={"ONE": 1, "FIVE": 5})),
     r"block UART0, register LINECTRL, field STOPBITS: enum value FIVE=5 does not fit in 2 bits"),
    ("unknown key", _doc(acess="ro"), r"block UART0, register LINECTRL: acess: unknown key"),
    ("unknown field key", _doc(fields=_field(lbs=3)),
     r"block UART0, register LINECTRL, field STOPBITS: lbs: unknown key"),
    ("bad access", _doc(access="readwrite"), r"block UART0, register LINECTRL: access: Input should be 'ro'"),
    ("bad width", _doc(width=24), r"block UART0, register LINECTRL: width: Input should be 8, 16, 32 or 64"),
    ("missing offset", {"name": "u", "blocks": [{"name": "UART0", "registers": [{"name": "X"}]}]},
     r"block UART0, register X: offset: missing"),
    ("bad integer", _doc(offset="0xZZ"), r"block UART0, register LINECTRL: offset: '0xZZ' is not an integer"),
    ("boolean reset", _doc(reset=True), r"register LINECTRL: reset: a boolean is not an integer"),
    ("no field position", _doc(fields=[{"name": "A"}]),
     r"block UART0, register LINECTRL, field A: no bit position"),
    ("bad bits", _doc(fields=[{"name": "A", "bits": "[1:3]"}]), r"field A: bits '\[1:3\]': msb must be >= lsb"),
    ("bad field name", _doc(fields=[{"name": "2FAST", "lsb": 0}]),
     r"block UART0, register LINECTRL, field 2FAST: name: '2FAST' is not a usable name"),
    ("duplicate register", {"name": "u", "blocks": [{"name": "UART0", "registers": [
        {"name": "X", "offset": 0}, {"name": "X", "offset": 4}]}]}, r"block UART0, register X: declared twice"),
    ("duplicate field", _doc(fields=[{"name": "A", "lsb": 0}, {"name": "A", "lsb": 1}]),
     r"block UART0, register LINECTRL, field A: declared twice"),
    ("duplicate block", {"name": "u", "blocks": [{"name": "B", "registers": []}, {"name": "B"}]},
     r"block B: declared twice"),
    ("no blocks", {"name": "u", "blocks": []}, r"blocks: List should have at least 1 item"),
    ("count zero", _doc(count=0), r"register LINECTRL: count: Input should be greater than or equal to 1"),
    ("alternate of nothing", _doc(offset=0, alternate_of="NOPE"),
     r"block UART0, register LINECTRL: alternate_of names register 'NOPE'"),
]


@pytest.mark.parametrize(("what", "doc", "message"), BAD_MAPS, ids=[b[0] for b in BAD_MAPS])
@pytest.mark.parametrize("fmt", ["yaml", "json"])
def test_bad_map_files_name_file_block_register_field(tmp_path, what, doc, message, fmt):
    path = tmp_path / f"bad.{fmt}"
    path.write_text(yaml.safe_dump(doc) if fmt == "yaml" else json.dumps(doc, indent=2))
    with pytest.raises(RegmapError) as info:
        load(path)
    text = str(info.value)
    assert text.startswith(str(path)), text
    assert re.search(message, text), f"{what}: {text!r} does not match {message!r}"


def test_several_errors_are_listed(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(_doc(width=24, acess="ro")))
    with pytest.raises(RegmapError, match=r"(?s)width: Input should be.*acess: unknown key"):
        load(path)


def test_syntax_errors_name_file_and_line(tmp_path):
    y = tmp_path / "broken.yaml"
    y.write_text("name: x\nblocks:\n  - name: [unclosed\n")
    with pytest.raises(RegmapError, match=r"broken\.yaml: line \d+, column \d+: not valid YAML"):
        load(y)
    j = tmp_path / "broken.json"
    j.write_text('{"name": "x",\n "blocks": [}\n')
    with pytest.raises(RegmapError, match=r"broken\.json: line 2, column 13: not valid JSON"):
        load(j)
    top = tmp_path / "list.yaml"
    top.write_text("- 1\n- 2\n")
    with pytest.raises(RegmapError, match=r"list\.yaml: the top level must be a mapping"):
        load(top)


def test_an_unknown_suffix_or_a_missing_file_is_a_regmap_error(tmp_path):
    with pytest.raises(RegmapError, match=r"unknown register-map format '\.toml'"):
        load(tmp_path / "x.toml")
    with pytest.raises(RegmapError, match=r"nope\.yaml: no such file"):
        load(tmp_path / "nope.yaml")


def test_bind_with_several_blocks_needs_a_name():
    regmap = loads("""
name: two
blocks:
  - {name: A, base: 0x1000, registers: [{name: X, offset: 0}]}
  - {name: B, base: 0x2000, registers: [{name: Y, offset: 4, access: ro}]}
""")
    buf = ram_buffer(0x100)
    with pytest.raises(RegmapError, match=r"has 2 blocks \(A, B\); name one"):
        regmap.bind(buf)
    with pytest.raises(RegmapError, match="no block 'C'"):
        regmap.bind(buf, "C")
    b = regmap.bind(buf, "B")
    buf.write32(4, 9)
    assert b.Y.read() == 9
    # multi-block decoding: offsets from the lowest base
    assert regmap.decode(0x1004, 32, 1) == ("B.Y", {})
    assert regmap.decode(0x0, 32, 1) == ("A.X", {})
    assert regmap.decode(0x800, 32, 1) is None


def test_a_map_exported_to_yaml_or_json_loads_back_equal():
    regmap = load(DATA / "uart.yaml")
    again = loads(regmap.to_yaml())
    assert again.to_dict() == regmap.to_dict()
    assert loads(regmap.to_json(), "json").to_dict() == regmap.to_dict()


def test_from_blocks_exports_hand_written_classes():
    class Timer(RegisterBlock, name="TIMER"):
        CTRL = Register(0x0, fields=[Field("EN", 0), Field("IRQ", 1, access=W1C)], doc="Control")
        LOAD = Register(0x8, width=64)

    regmap = RegisterMap.from_blocks("soc", Timer, bases={"TIMER": 0x5000})
    assert regmap.block_class() is Timer
    d = regmap.to_dict()
    assert d["blocks"][0]["base"] == 0x5000
    assert d["blocks"][0]["registers"][0]["fields"][1] == {"name": "IRQ", "lsb": 1, "width": 1, "access": "w1c"}
    assert loads(regmap.to_yaml()).to_dict() == d
    assert "#define TIMER_LOAD_RESET 0x0ull" in regmap.to_c_header()


# --- exports --------------------------------------------------------------------------------------------
def test_markdown_export_tabulates_registers_and_fields():
    md = load(DATA / "uart.yaml").to_markdown()
    assert md.startswith("# Register map `uart`")
    assert "## UART0 (base 0x40001000)" in md
    assert "| 0x004 | [LINECTRL](#uart0-linectrl) | 32 | rw | 0x00000000 |  |" in md
    assert "| [1:0] | PARITY | rw | 0x0 | NONE=0, ODD=1, EVEN=2 |  |" in md
    assert "| 0x020 + i*0x4 | [SCRATCH[4]](#uart0-scratch) |" in md
    assert "| [7:4] | RESERVED | rsvdz |" in md


def test_c_header_defines_base_offsets_shifts_masks_enums_and_resets():
    h = load(DATA / "uart.yaml").to_c_header()
    for line in ("#ifndef UART_REGS_H", "#define UART0_BASE 0x40001000u", "#define UART0_LINECTRL_OFFSET 0x4u",
                 "#define UART0_LINECTRL_PARITY_SHIFT 0u", "#define UART0_LINECTRL_PARITY_MASK 0x3u",
                 "#define UART0_LINECTRL_PARITY_EVEN 0x2u", "#define UART0_STATUS_RESET 0x2u",
                 "#define UART0_SCRATCH_OFFSET(i) (0x20u + (i) * 0x4u)", "#define UART0_SCRATCH_COUNT 4u",
                 "#define UART0_BAUD_RESET 0x1a1u"):
        assert line in h, line


def test_c_header_compiles_and_agrees(tmp_path):
    regmap = load(DATA / "uart.yaml")
    (tmp_path / "uart.h").write_text(regmap.to_c_header())
    (tmp_path / "check.c").write_text("""
#include "uart.h"
_Static_assert(UART0_BASE == 0x40001000u, "base");
_Static_assert(UART0_LINECTRL_OFFSET == 4, "offset");
_Static_assert((UART0_LINECTRL_PARITY_EVEN << UART0_LINECTRL_PARITY_SHIFT) == 2, "enum");
_Static_assert(UART0_LINECTRL_STOPBITS_MASK == 0xc, "mask");
_Static_assert(UART0_SCRATCH_OFFSET(3) == 0x2c, "array");
_Static_assert(UART0_INTSTAT_OVERRUN_MASK == 4, "w1c");
int main(void) { return 0; }
""")
    result = subprocess.run(["cc", "-std=c11", "-Wall", "-Werror", "-fsyntax-only", str(tmp_path / "check.c")],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
