"""SystemRDL and CMSIS-SVD import: small files written here, big generated ones, and their errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmiotk import AccessError, CachePolicy, MmioResource, RamSpace
from mmiotk.fake import FakeDevice
from mmiotk.regmap import RegmapError, load

DATA = Path(__file__).parent / "data"


def ram_buffer(size: int = 0x1000):
    ram = RamSpace(max(size, 0x1000))
    return MmioResource(ram, 0, ram.size).create_region(0, size, "regs").map(CachePolicy.UNCACHED_DEVICE)


def summary(block) -> dict:
    """What matters about a block's registers, independent of the format it came from."""
    out = {}
    for name, spec in block.specs().items():
        if spec.alternate_of:
            continue
        out[name] = (spec.offset, spec.width, spec.reset, spec.count, spec.stride,
                     tuple((f.name, f.lsb, f.width, f.access.value,
                            tuple((m.name, int(m)) for m in f.enum) if f.enum else ()) for f in spec.fields.values()))
    return out


def uart_driver_roundtrip(uart, fake: FakeDevice) -> None:
    """The same few driver steps against any UART0 block, on a behavioural fake of that block."""
    fake.poke("INTSTAT", value=0b011)  # RX and TX pending
    uart.LINECTRL.modify(PARITY="EVEN")
    uart.CTRL.modify(EN=1, RXIE=1)
    assert uart.INTSTAT.read().RX == 1
    uart.INTSTAT.clear("RX")
    assert int(fake.peek("INTSTAT")) == 0b010
    fake.poke("ERRCNT", value=3)
    assert int(uart.ERRCNT.read()) == 3 and int(fake.peek("ERRCNT")) == 0
    with pytest.raises(AccessError):
        uart.STATUS.write(0)


# --- SystemRDL ------------------------------------------------------------------------------------------
def test_rdl_blocks_bases_access_types_arrays_enums_and_docs_are_imported():
    regmap = load(DATA / "uart.rdl")
    assert list(regmap.blocks) == ["UART0", "TIMER0"]
    assert regmap.bases == {"UART0": 0x1000, "TIMER0": 0x2000}
    uart = regmap.block_class("UART0")
    specs = uart.specs()
    assert specs["INTSTAT"].fields["RX"].access.value == "w1c"
    assert specs["ERRCNT"].fields["COUNT"].access.value == "rc" and specs["ERRCNT"].has_rc
    assert specs["STATUS"].access.value == "ro" and specs["STATUS"].reset == 0x2
    assert specs["BAUD"].width == 16 and specs["BAUD"].reset == 0x1A1
    assert specs["SCRATCH"].count == 4 and specs["SCRATCH"].stride == 4
    assert [m.name for m in specs["LINECTRL"].fields["PARITY"].enum] == ["NONE", "ODD", "EVEN"]
    assert specs["CTRL"].doc == "Enables and interrupt masks."
    timer = regmap.block_class("TIMER0").specs()
    assert timer["CTRL"].fields["START"].access.value == "wo"
    assert timer["CTRL"].fields["ARM"].access.value == "w1s"
    assert timer["CH1_CMP"].offset == 0x18 and timer["CH0_CFG"].offset == 0x14


def test_rdl_and_yaml_agree_and_drive_the_same():
    rdl = load(DATA / "uart.rdl").block_class("UART0")
    yml = load(DATA / "uart.yaml").block_class()
    a, b = summary(rdl), summary(yml)
    # the YAML form declares CTRL's reserved nibble and leaves whole-register RC/16-bit fields unnamed
    assert a.keys() == b.keys()
    for name in ("LINECTRL", "STATUS", "INTSTAT", "DATA"):
        assert a[name] == b[name], name
    for block in (rdl, yml):
        fake = FakeDevice(block)
        uart_driver_roundtrip(fake.bind(), fake)


def test_rdl_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.rdl"
    bad.write_text("addrmap top { reg { field { sw = rw; } A[0:0] = 0; } R @ 0x0 \n};\n")
    with pytest.raises(RegmapError, match=r"bad\.rdl: SystemRDL compilation failed:\n.*error"):
        load(bad)
    toggle = tmp_path / "wot.rdl"
    toggle.write_text("addrmap top { reg { field { sw = rw; onwrite = wot; } T[0:0] = 0; } R @ 0x0; };\n")
    assert load(toggle).block_class().specs()["R"].fields["T"].access.value == "w1t"
    checked = tmp_path / "checked.rdl"  # the compiler's own checks come through with file and line
    checked.write_text("enum e { A = 0; B = 2; };\n"
                       "addrmap top { reg { field { sw = rw; encode = e; } F[0:0] = 0; } R @ 0x0;\n"
                       "              reg { field { sw = rw; } G[3:0] = 0; } S @ 0x2; };\n")
    with pytest.raises(RegmapError, match=r"(?s)checked\.rdl: .*checked\.rdl:2:\d+: error: Field 'F' is not wide "
                                          r"enough to encode as enum 'e'.*checked\.rdl:3:\d+: error: Instance 'S'.*"
                                          "overlaps with 'R'"):
        load(checked)


def _generate_rdl(path: Path, blocks: int, regs: int) -> None:
    lines = ["enum mode_e { OFF = 0; SLOW = 1; FAST = 2; };", "addrmap big {"]
    for b in range(blocks):
        lines.append("  addrmap {")
        for r in range(regs):
            kind = r % 4
            if kind == 0:
                body = ("field { sw = rw; hw = r; } EN[0:0] = 1; "
                        "field { sw = rw; hw = r; encode = mode_e; } MODE[2:1] = 0; "
                        "field { sw = rw; hw = w; onwrite = woclr; } DONE[8:8] = 0;")
            elif kind == 1:
                body = "field { sw = r; hw = w; } LEVEL[15:0] = 0;"
            elif kind == 2:
                body = "field { sw = r; hw = w; onread = rclr; } HITS[7:0] = 0;"
            else:
                body = "field { sw = w; hw = r; } CMD[3:0]; field { sw = rw; hw = r; onwrite = woset; } GO[4:4] = 0;"
            lines.append(f"    reg {{ {body} }} R{r} @ {r * 4:#x};")
        lines.append(f"  }} B{b} @ {0x1000 * (b + 1):#x};")
    lines.append("};")
    path.write_text("\n".join(lines) + "\n")


def test_a_generated_rdl_file_of_600_registers_imports_and_binds(tmp_path):
    path = tmp_path / "big.rdl"
    _generate_rdl(path, blocks=4, regs=150)
    regmap = load(path)
    assert len(regmap.blocks) == 4 and sum(len(b.specs()) for b in regmap.blocks.values()) == 600
    b3 = regmap.block_class("B3").specs()
    assert b3["R148"].fields["MODE"].enum.FAST == 2 and b3["R148"].reset == 1
    assert b3["R147"].fields["GO"].access.value == "w1s" and b3["R146"].has_rc
    buf = ram_buffer(0x400)
    block = regmap.bind(buf, "B2")
    buf.write32(148 * 4, 0x101)  # DONE pending
    block.R148.modify(MODE="FAST")
    assert buf.read32(148 * 4) == 0x5


# --- CMSIS-SVD ------------------------------------------------------------------------------------------
def test_svd_peripherals_access_types_alternates_arrays_enums_and_derived_ones_are_imported():
    regmap = load(DATA / "mcu.svd")
    assert regmap.name == "MINIMCU"
    assert list(regmap.blocks) == ["UART0", "UART1", "DMA"]
    assert regmap.bases == {"UART0": 0x4000_1000, "UART1": 0x4000_2000, "DMA": 0x4001_0000}
    uart = regmap.block_class("UART0").specs()
    assert uart["INTSTAT"].fields["OVERRUN"].access.value == "w1c"      # modifiedWriteValues oneToClear
    assert uart["ERRCNT"].access.value == "rc"                           # readAction clear
    assert uart["STATUS"].reset == 2 and uart["STATUS"].access.value == "ro"
    assert uart["TXDATA"].alternate_of == "DATA" and uart["TXDATA"].access.value == "wo"
    assert uart["BAUD"].width == 16 and uart["BAUD"].reset == 0x1A1
    assert uart["SCRATCH"].count == 4 and uart["SCRATCH"].stride == 4   # NAME[%s]
    parity = uart["LINECTRL"].fields["PARITY"].enum
    assert [(m.name, int(m)) for m in parity] == [("NONE", 0), ("ODD", 1), ("EVEN", 2)]  # #10, isDefault skipped
    assert summary(regmap.block_class("UART1")) == summary(regmap.block_class("UART0"))  # derivedFrom
    dma = regmap.block_class("DMA").specs()
    assert dma["IFCR"].fields["CTCIF"].access.value == "wo"
    assert dma["CH1_CCR"].offset == 0x20 and dma["CH1_CPAR"].offset == 0x28           # cluster CH%s
    assert list(dma["CH0_CPAR"].fields) == ["NDT"]                                     # register derivedFrom
    assert [dma[n].offset for n in ("SELA", "SELB", "SELC")] == [0x40, 0x44, 0x48]     # dimIndex A,B,C
    assert dma["SELB"].width == 8


def test_svd_and_yaml_agree_and_drive_the_same():
    svd = load(DATA / "mcu.svd").block_class("UART0")
    yml = load(DATA / "uart.yaml").block_class()
    a, b = summary(svd), summary(yml)
    for name in ("LINECTRL", "STATUS", "INTSTAT", "DATA", "BAUD", "SCRATCH"):
        assert a[name] == b[name], name
    fake = FakeDevice(svd)
    uart_driver_roundtrip(fake.bind(), fake)


def test_svd_alternate_register_shares_the_address():
    regmap = load(DATA / "mcu.svd")
    fake = FakeDevice(regmap, block="UART0", strict=False)
    uart = fake.bind()
    uart.TXDATA.write(0x41)
    with pytest.raises(AccessError, match="TXDATA"):
        uart.TXDATA.read()
    assert regmap.block_class("UART0").decode(0x10, 32, 0x41) == ("UART0.DATA", {"BYTE": 0x41})


SVD_HEAD = """<?xml version="1.0"?>
<device><name>BAD</name><size>32</size><peripherals><peripheral><name>P</name><baseAddress>0x1000</baseAddress>
<registers>{registers}</registers></peripheral></peripherals></device>
"""

BAD_SVDS = [
    ("overlap", "<register><name>A</name><addressOffset>0</addressOffset></register>"
                "<register><name>B</name><addressOffset>2</addressOffset><size>16</size></register>",
     r"block P, register B: shares bytes with register A"),
    ("field beyond", "<register><name>A</name><addressOffset>0</addressOffset><size>16</size><fields>"
                     "<field><name>F</name><bitOffset>12</bitOffset><bitWidth>8</bitWidth></field></fields></register>",
     r"block P, register A, field F: bits \[19:12\] go beyond the register width \(16 bits\)"),
    ("misaligned", "<register><name>A</name><addressOffset>0x6</addressOffset></register>",
     r"block P, register A: offset 0x6 is not aligned"),
    ("unknown write", "<register><name>A</name><addressOffset>0</addressOffset><fields><field><name>T</name>"
                      "<bitOffset>0</bitOffset><modifiedWriteValues>oneToFlip</modifiedWriteValues>"
                      "</field></fields></register>",
     r"block P, register A, field T: modifiedWriteValues 'oneToFlip' is not an SVD value"),
    ("no offset", "<register><name>A</name></register>", r"block P, register A: no addressOffset"),
    ("bad number", "<register><name>A</name><addressOffset>0xZ</addressOffset></register>",
     r"block P, register A: addressOffset '0xZ' is not a number"),
    ("reset too wide", "<register><name>A</name><addressOffset>0</addressOffset><size>8</size>"
                       "<resetValue>0x1FF</resetValue><resetMask>0xFFFF</resetMask></register>",
     r"block P, register A: resetValue 0x1ff does not fit in 8 bits"),
    ("enum too wide", "<register><name>A</name><addressOffset>0</addressOffset><fields><field><name>F</name>"
                      "<bitOffset>0</bitOffset><bitWidth>1</bitWidth><enumeratedValues><enumeratedValue>"
                      "<name>BIG</name><value>2</value></enumeratedValue></enumeratedValues></field></fields></register>",
     r"block P, register A, field F, enum BIG: value 0x2 does not fit in the field \(1 bits\)"),
    ("bad size", "<register><name>A</name><addressOffset>0</addressOffset><size>24</size></register>",
     r"block P, register A: size 24 is not 8, 16, 32 or 64 bits"),
    ("derived from nothing", "<register derivedFrom='NOPE'><name>A</name><addressOffset>0</addressOffset></register>",
     r"block P, register A: derivedFrom 'NOPE': no such register"),
]


@pytest.mark.parametrize(("what", "registers", "message"), BAD_SVDS, ids=[b[0] for b in BAD_SVDS])
def test_a_bad_svd_register_is_a_regmap_error_naming_the_file(tmp_path, what, registers, message):
    path = tmp_path / "bad.svd"
    path.write_text(SVD_HEAD.format(registers=registers))
    with pytest.raises(RegmapError, match=rf"^{path}: {message}"):
        load(path)


def test_an_svd_file_that_is_not_xml_or_not_svd_is_refused_by_name(tmp_path):
    broken = tmp_path / "broken.svd"
    broken.write_text("<device><name>X</name>")
    with pytest.raises(RegmapError, match=r"broken\.svd: not valid XML: .*line"):
        load(broken)
    other = tmp_path / "other.svd"
    other.write_text("<html/>")
    with pytest.raises(RegmapError, match=r"other\.svd: the root element is <html>"):
        load(other)


def _generate_svd(path: Path, peripherals: int, regs: int) -> None:
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           "<device schemaVersion='1.3'><name>BIGMCU</name><size>32</size><access>read-write</access>"
           "<resetValue>0</resetValue><resetMask>0xFFFFFFFF</resetMask><peripherals>"]
    for p in range(peripherals):
        if p % 2 == 1:  # every other peripheral is derived from the one before it
            out.append(f"<peripheral derivedFrom='P{p - 1}'><name>P{p}</name>"
                       f"<baseAddress>{0x4000_0000 + p * 0x1000:#x}</baseAddress></peripheral>")
            continue
        out.append(f"<peripheral><name>P{p}</name><baseAddress>{0x4000_0000 + p * 0x1000:#x}</baseAddress><registers>")
        for r in range(regs):
            kind = r % 4
            if kind == 0:
                fields = ("<field><name>EN</name><bitOffset>0</bitOffset><bitWidth>1</bitWidth></field>"
                          "<field><name>MODE</name><bitRange>[2:1]</bitRange><enumeratedValues>"
                          "<enumeratedValue><name>OFF</name><value>0</value></enumeratedValue>"
                          "<enumeratedValue><name>ON</name><value>1</value></enumeratedValue>"
                          "</enumeratedValues></field>"
                          "<field><name>DONE</name><bitOffset>8</bitOffset><bitWidth>1</bitWidth>"
                          "<modifiedWriteValues>oneToClear</modifiedWriteValues></field>")
                extra = "<resetValue>0x1</resetValue>"
            elif kind == 1:
                fields = "<field><name>LEVEL</name><lsb>0</lsb><msb>15</msb><access>read-only</access></field>"
                extra = ""
            elif kind == 2:
                fields = ("<field><name>HITS</name><bitRange>[7:0]</bitRange><access>read-only</access>"
                          "<readAction>clear</readAction></field>")
                extra = ""
            else:
                fields = "<field><name>CMD</name><bitRange>[3:0]</bitRange><access>write-only</access></field>"
                extra = ""
            out.append(f"<register><name>R{r}</name><addressOffset>{r * 4:#x}</addressOffset>{extra}"
                       f"<fields>{fields}</fields></register>")
        out.append("<register><name>ARR[%s]</name><dim>16</dim><dimIncrement>4</dimIncrement>"
                   f"<addressOffset>{regs * 4:#x}</addressOffset></register>")
        out.append("</registers></peripheral>")
    out.append("</peripherals></device>")
    path.write_text("\n".join(out))


def test_a_generated_svd_file_of_726_registers_imports_and_binds(tmp_path):
    path = tmp_path / "big.svd"
    _generate_svd(path, peripherals=6, regs=120)
    regmap = load(path)
    assert len(regmap.blocks) == 6 and sum(len(b.specs()) for b in regmap.blocks.values()) == 6 * 121
    p5 = regmap.block_class("P5").specs()
    assert p5["R116"].fields["DONE"].access.value == "w1c" and p5["R116"].reset == 1
    assert p5["R118"].has_rc and p5["ARR"].count == 16
    fake = FakeDevice(regmap, block="P5")
    block = fake.bind()
    fake.poke("R116", DONE=1)
    block.R116.modify(MODE="ON")
    assert int(fake.peek("R116")) == 0x103  # DONE still pending: the modify wrote it as 0
    block.R116.clear("DONE")
    assert int(fake.peek("R116")) == 0x003
    md, header = regmap.to_markdown(), regmap.to_c_header()
    assert md.count("### ") == 6 * 121 and "#define P5_ARR_OFFSET(i) (0x1e0u + (i) * 0x4u)" in header
