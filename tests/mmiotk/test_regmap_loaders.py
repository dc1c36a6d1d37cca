"""Loaders on constructs real files use: each was refused or imported silently wrong before, each test
fails on that code. Plus strict/lenient modes, the spelling of names, and limits for hostile inputs."""

from __future__ import annotations

import pytest

from mmiotk.fake import FakeDevice
from mmiotk.mock import MockMmio
from mmiotk.regmap import RegmapError, RegmapWarning, load, loads

SVD = """<?xml version="1.0"?>
<device><name>DEV</name><size>32</size><access>read-write</access><peripherals>{periphs}</peripherals></device>
"""


def svd(tmp_path, periphs: str, name: str = "dev.svd"):
    path = tmp_path / name
    path.write_text(SVD.format(periphs=periphs))
    return path


def periph(registers: str, name: str = "P", base: str = "<baseAddress>0x1000</baseAddress>") -> str:
    return f"<peripheral><name>{name}</name>{base}<registers>{registers}</registers></peripheral>"


def reg(name: str, offset: int, fields: str = "", extra: str = "") -> str:
    return (f"<register><name>{name}</name><addressOffset>{offset:#x}</addressOffset>{extra}"
            f"<fields>{fields}</fields></register>")


def field(name: str, lsb: int, width: int = 1, extra: str = "") -> str:
    return f"<field><name>{name}</name><bitOffset>{lsb}</bitOffset><bitWidth>{width}</bitWidth>{extra}</field>"


def rdl(tmp_path, text: str, name: str = "map.rdl"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- SystemRDL: silently wrong before ---------------------------------------------------------------
def test_rdl_field_written_lsb_to_msb_lands_on_its_bits(tmp_path):
    spec = load(rdl(tmp_path, "addrmap top { reg { field { sw = rw; } F[4:7] = 0; } R @ 0; };")
                ).block_class().specs()["R"]
    f = spec.fields["F"]
    assert (f.lsb, f.width, f.mask) == (4, 4, 0xF0)


def test_rdl_mem_block_is_a_memory_region_of_its_block(tmp_path):
    regmap = load(rdl(tmp_path, "addrmap top { reg { field { sw = rw; } F[31:0] = 0; } R @ 0;"
                                " external mem { mementries = 64; memwidth = 32; } BUF @ 0x100; };"))
    block = regmap.block_class()
    assert block._memories["BUF"].offset == 0x100 and block._memories["BUF"].size == 256
    fake = MockMmio(0x200)
    view = block(fake.buffer).memory("BUF")
    assert view.size == 256


def test_rdl_accesswidth_splits_a_wide_register_into_pieces_low_first(tmp_path):
    regmap = load(rdl(tmp_path, "addrmap top { reg { regwidth = 64; accesswidth = 32; field { sw = rw; } "
                                "LO[31:0] = 0; field { sw = rw; } HI[63:32] = 0; } R @ 0; };"))
    mock = MockMmio(0x10)
    regs = regmap.bind(mock.buffer)
    mock.expect_write32(0x0, 0x2222)
    mock.expect_write32(0x4, 0x1111)
    regs.R.write(LO=0x2222, HI=0x1111)
    mock.verify()


def test_rdl_rw_field_with_read_clear_takes_writes(tmp_path):
    regmap = load(rdl(tmp_path, "addrmap top { reg { field { sw = rw; onread = rclr; } C[7:0] = 0; } R @ 0; };"))
    assert regmap.block_class().specs()["R"].fields["C"].access.value == "wrc"
    fake = FakeDevice(regmap)
    regs = fake.bind()
    regs.R.write(C=9)
    assert int(regs.R.read()) == 9 and fake.peek("R").C == 0


def test_rdl_bits_no_field_declares_read_as_zero_and_ignore_writes(tmp_path):
    """As PeakRDL-regblock implements them (the regcheck RTL test found the map calling them RW)."""
    regmap = load(rdl(tmp_path, "addrmap top { reg { field { sw = rw; } A[3:0] = 0; field { sw = rw; onwrite = woclr; }"
                                " P[11:8] = 0; } R @ 0; reg { field { sw = rw; } F[31:0] = 0; } FULL @ 4; };"))
    specs = regmap.block_class().specs()
    assert specs["R"].access.value == "ro" and specs["FULL"].access.value == "rw"
    fake = FakeDevice(regmap)
    fake.bind().R.write(A=0x5)
    fake.buffer.write32(0, 0xFFFF_F0F5)
    assert fake.buffer.read32(0) == 0x5


def test_rdl_swacc_swmod_singlepulse_are_kept_and_honoured(tmp_path):
    regmap = load(rdl(tmp_path, "addrmap top {"
                                " reg { field { sw = r; hw = w; swacc; } S[7:0] = 0; } STAT @ 0;"
                                " reg { field { sw = rw; hw = r; singlepulse; } GO[0:0] = 0;"
                                "       field { sw = rw; hw = r; swmod; } CFG[15:8] = 0; } CTRL @ 4; };"))
    fake = FakeDevice(regmap)
    regs = fake.bind()
    assert "swacc" in regs.dump()["STAT"] and not [e for e in fake.log if e.register == "STAT"]
    regs.CTRL.write(GO=1, CFG=3)
    assert fake.peek("CTRL").GO == 0 and ("swmod", "CTRL.CFG", 3) in [tuple(e) for e in fake.log]


def test_rdl_every_side_effect_maps_to_an_access_type(tmp_path):
    ops = {"woclr": "w1c", "woset": "w1s", "wot": "w1t", "wzc": "w0c", "wzs": "w0s", "wzt": "w0t", "wclr": "wc",
           "wset": "ws"}
    body = " ".join(f"reg {{ field {{ sw = rw; onwrite = {op}; }} F[0:0] = 0; }} R_{op} @ {i * 4};"
                    for i, op in enumerate(ops))
    body += " reg { field { sw = r; onread = rset; } F[0:0] = 0; } R_rset @ 0x40;"
    body += " reg { field { sw = r; } A[3:0]; field { sw = w; } B[3:0]; } R_shared @ 0x44;"
    specs = load(rdl(tmp_path, f"addrmap top {{ {body} }};")).block_class().specs()
    assert {op: specs[f"R_{op}"].fields["F"].access.value for op in ops} == ops
    assert specs["R_rset"].fields["F"].access.value == "rs"
    assert specs["R_shared"].fields["A"].mask == specs["R_shared"].fields["B"].mask


def test_rdl_enum_members_that_are_not_python_names_are_spelt(tmp_path):
    f = load(rdl(tmp_path, "enum e { mro = 0; _name_ = 1; in = 2; }; addrmap top { reg { field { sw = rw; "
                           "encode = e; } F[1:0] = 0; } R @ 0; };")).block_class().specs()["R"].fields["F"]
    assert [m.name for m in f.enum] == ["mro_", "x_name_", "in_"]


def test_rdl_several_files_include_paths_and_udps(tmp_path):
    inc = tmp_path / "inc"
    inc.mkdir()
    (inc / "fields.rdl").write_text("field ctl_f { sw = rw; hw = r; };\n")
    common = rdl(tmp_path, "reg common_r { ctl_f EN[0:0] = 0; };\n", "common.rdl")
    (tmp_path / "common.rdl").write_text('`include "fields.rdl"\nreg common_r { ctl_f EN[0:0] = 0; };\n')
    top = rdl(tmp_path, "property my_prop { type = boolean; component = reg; };\n"
                        "addrmap top { common_r A @ 0; common_r B @ 4; B->my_prop = true; };\n", "top.rdl")
    regmap = load(top, also=[common], include_paths=[inc])
    assert list(regmap.block_class().specs()) == ["A", "B"]


def test_rdl_compiled_node_and_ip_xact_are_inputs(tmp_path):
    from peakrdl_ipxact import IPXACTExporter
    from systemrdl import RDLCompiler

    src = rdl(tmp_path, "addrmap top { reg { field { sw = rw; onwrite = woclr; } EV[3:0] = 0; } IRQ @ 0x8; };")
    compiler = RDLCompiler()
    compiler.compile_file(str(src))
    root = compiler.elaborate()
    from_node = load(root)
    assert from_node.block_class().specs()["IRQ"].fields["EV"].access.value == "w1c"
    xml = tmp_path / "top.xml"
    IPXACTExporter().export(root.top, str(xml))
    from_ipxact = load(xml)
    spec = from_ipxact.block_class().specs()["IRQ"]
    assert spec.offset == 0x8 and spec.fields["EV"].access.value == "w1c"


# --- SVD: silently wrong before -----------------------------------------------------------------------
def test_svd_second_base_address_is_an_error_strict_and_the_last_one_lenient(tmp_path):
    path = svd(tmp_path, periph(reg("R", 0), base="<baseAddress>0x1000</baseAddress><baseAddress>0x2000"
                                                  "</baseAddress>"))
    with pytest.raises(RegmapError, match="block P: 2 <baseAddress> elements"):
        load(path)
    with pytest.warns(RegmapWarning, match="took the last"):
        regmap = load(path, strict=False)
    assert regmap.bases["P"] == 0x2000 and len(regmap.warnings) == 1


def test_svd_separate_read_and_write_enums_are_both_kept(tmp_path):
    enums = ("<enumeratedValues><usage>read</usage><enumeratedValue><name>Busy</name><value>1</value>"
             "</enumeratedValue></enumeratedValues><enumeratedValues><usage>write</usage><enumeratedValue>"
             "<name>Start</name><value>1</value></enumeratedValue></enumeratedValues>")
    f = load(svd(tmp_path, periph(reg("R", 0, field("F", 0, 1, enums))))).block_class().specs()["R"].fields["F"]
    assert [m.name for m in f.enum] == ["Busy"] and [m.name for m in f.write_enum] == ["Start"]
    fake = FakeDevice(load(svd(tmp_path, periph(reg("R", 0, field("F", 0, 1, enums))))))
    fake.bind().R.write(F="Start")
    assert fake.peek("R").F.name == "Busy"


def test_svd_derived_enumerated_values_are_resolved(tmp_path):
    enums = ("<enumeratedValues><name>ONOFF</name><enumeratedValue><name>OFF</name><value>0</value>"
             "</enumeratedValue><enumeratedValue><name>ON</name><value>1</value></enumeratedValue>"
             "</enumeratedValues>")
    path = svd(tmp_path, periph(reg("A", 0, field("F", 0, 1, enums))
                                + reg("B", 4, field("G", 0, 1, '<enumeratedValues derivedFrom="ONOFF"/>'))))
    g = load(path).block_class().specs()["B"].fields["G"]
    assert {m.name: int(m) for m in g.enum} == {"OFF": 0, "ON": 1}


def test_svd_reset_value_beyond_the_width_is_not_masked_silently(tmp_path):
    path = svd(tmp_path, periph(reg("R", 0, extra="<size>8</size><resetValue>0x1FF</resetValue>")))
    with pytest.raises(RegmapError, match="resetValue 0x1ff does not fit in 8 bits"):
        load(path)
    with pytest.warns(RegmapWarning):
        assert load(path, strict=False).block_class().specs()["R"].reset == 0xFF


def test_svd_every_modified_write_value_and_read_action(tmp_path):
    cases = {"oneToToggle": "w1t", "zeroToClear": "w0c", "zeroToSet": "w0s", "zeroToToggle": "w0t",
             "clear": "wc", "set": "ws"}
    fields = "".join(field(f"F{i}", i, 1, f"<modifiedWriteValues>{m}</modifiedWriteValues>")
                     for i, m in enumerate(cases))
    fields += field("RC", 8, 1, "<readAction>clear</readAction>")
    fields += field("RS", 9, 1, "<access>read-only</access><readAction>set</readAction>")
    fields += field("MOD", 10, 1, "<readAction>modifyExternal</readAction>")
    fields += field("ONCE", 11, 1, "<access>read-writeOnce</access>")
    spec = load(svd(tmp_path, periph(reg("R", 0, fields)))).block_class().specs()["R"]
    assert [spec.fields[f"F{i}"].access.value for i in range(len(cases))] == list(cases.values())
    assert spec.fields["RC"].access.value == "wrc" and spec.fields["RS"].access.value == "rs"
    assert spec.fields["MOD"].precious and spec.fields["ONCE"].access.value == "w1"


def test_svd_dims_on_peripherals_clusters_and_fields_and_derived_dim_elements(tmp_path):
    cluster = ("<cluster><name>CH[%s]</name><dim>2</dim><dimIncrement>0x10</dimIncrement>"
               "<addressOffset>0x100</addressOffset>" + reg("CFG", 0, field("EN%s", 0, 1, "<dim>4</dim>"
                                                                        "<dimIncrement>2</dimIncrement>"))
               + "</cluster>")
    p = ("<peripheral><name>UART%s</name><dim>2</dim><dimIncrement>0x1000</dimIncrement>"
         "<baseAddress>0x4000</baseAddress><registers>" + reg("DATA", 0) + cluster + "</registers></peripheral>"
         "<peripheral derivedFrom='UART1'><name>UART9</name><baseAddress>0x9000</baseAddress></peripheral>")
    regmap = load(svd(tmp_path, p))
    assert regmap.bases == {"UART0": 0x4000, "UART1": 0x5000, "UART9": 0x9000}
    specs = regmap.block_class("UART9").specs()
    assert specs["CH1_CFG"].offset == 0x110
    assert [(f.name, f.lsb) for f in specs["CH0_CFG"].fields.values()] == [("EN0", 0), ("EN1", 2), ("EN2", 4),
                                                                          ("EN3", 6)]


def test_svd_dont_care_enum_values_name_every_value_they_match(tmp_path):
    enums = ("<enumeratedValues><enumeratedValue><name>FAST</name><value>#1x</value></enumeratedValue>"
             "<enumeratedValue><name>SLOW</name><value>0b00</value></enumeratedValue></enumeratedValues>")
    f = load(svd(tmp_path, periph(reg("R", 0, field("F", 0, 2, enums))))).block_class().specs()["R"].fields["F"]
    assert f.members[2].name == "FAST" and f.members[3].name == "FAST" and f.members[0].name == "SLOW"


def test_svd_vendor_mistakes_are_errors_strict_and_warnings_naming_the_place_lenient(tmp_path):
    fields = field("RESERVED", 4, 2) + field("RESERVED", 8, 2) + field("Z", 12, 0) + field("BIG", 30, 4)
    fields += field("_name_", 0) + field("in", 1)
    path = svd(tmp_path, periph(reg("R", 0, fields) + reg("MIS", 2) + reg("W", 8, field("X", 0, 1,
                                "<access>write</access>"))), "vendor.svd")
    with pytest.raises(RegmapError, match=r"vendor\.svd: block P, register R, field RESERVED: a field of this"):
        load(path)
    with pytest.warns(RegmapWarning):
        regmap = load(path, strict=False)
    assert [w.split(": ", 1)[1] for w in regmap.warnings] == [
        "block P, register R, field RESERVED: a field of this name is declared already; renamed it RESERVED_8",
        "block P, register R, field Z: width 0; dropped the field",
        "block P, register R, field BIG: bits [33:30] go beyond the register width (32 bits); dropped the field",
        "block P, register MIS: offset 0x2 is not aligned to its size (4 bytes); dropped the register",
        "block P, register W, field X: access 'write' is not an SVD access type; read as write-only"]
    spec = regmap.block_class().specs()["R"]
    assert list(spec.fields) == ["RESERVED", "RESERVED_8", "x_name_", "in_"]
    assert spec.fields["x_name_"].lsb == 0


# --- hostile inputs: specific errors, fast, without the memory -----------------------------------------
def test_hostile_count_is_refused_by_the_limit(tmp_path):
    text = "name: m\nblocks:\n  - name: B\n    registers:\n      - {name: R, offset: 0, count: 0xFFFFFFFF}\n"
    with pytest.raises(RegmapError, match="count 0xffffffff is over the limit of 65536"):
        loads(text)


@pytest.mark.timeout(60)  # expanding any of these would take far longer (and the memory)
def test_hostile_dims_are_refused_before_expanding(tmp_path):
    with pytest.raises(RegmapError, match="dim 0xffffffff is over the limit"):
        load(svd(tmp_path, periph(reg("R[%s]", 0, extra="<dim>0xFFFFFFFF</dim><dimIncrement>4</dimIncrement>"))))
    nested = "".join(f"<cluster><name>C{i}[%s]</name><dim>1000</dim><dimIncrement>0x100</dimIncrement>"
                     f"<addressOffset>0</addressOffset>" for i in range(3)) + reg("R", 0) + "</cluster>" * 3
    with pytest.raises(RegmapError, match="nested cluster dims expand to 1000000000 copies"):
        load(svd(tmp_path, periph(nested)))
    with pytest.raises(RegmapError, match="array size 0xffffffff is over the limit"):
        load(rdl(tmp_path, "addrmap top { reg { field { sw = rw; } F[0:0]; } R[0xFFFFFFFF] @ 0; };"))


def test_yaml_alias_bomb_is_refused_without_expanding():
    lines = ["name: bomb", "a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join(['*a' + str(i - 1)] * 10)}]" for i in range(1, 8)]
    lines += ["blocks: [{name: B, registers: [{name: R, offset: 0, fields: *a7}]}]"]
    with pytest.raises(RegmapError, match="expands to more than 1048576 nodes through YAML aliases"):
        loads("\n".join(lines))


def test_duplicate_keys_are_errors_in_yaml_and_json():
    with pytest.raises(RegmapError, match="key 'name' appears twice"):
        loads("name: a\nname: b\nblocks: []\n")
    with pytest.raises(RegmapError, match="key 'name' appears twice"):
        loads('{"name": "a", "name": "b", "blocks": []}', "json")


def test_a_big_array_binds_and_checks_overlaps_without_expanding():
    from mmiotk.registers import Register, RegisterBlock, RegisterDefinitionError

    class Big(RegisterBlock):
        ARR = Register(0x0, count=1 << 24, stride=4)
        AFTER = Register((1 << 26) + 4)

    class Bus:   # a read8..write64 duck without a size: nothing is mapped
        def __init__(self):
            self.writes = []
            self.read32 = lambda off: 0
            self.write32 = lambda off, v: self.writes.append((off, v))

    bus = Bus()
    regs = Big(bus)
    assert Big.size() == (1 << 26) + 8 and len(regs.ARR) == 1 << 24
    regs.ARR[123456].write(5)
    assert bus.writes == [(123456 * 4, 5)]
    with pytest.raises(RegisterDefinitionError, match=r"register INSIDE at 0x9c40 overlaps register ARR\[5000\]"):
        class Clash(RegisterBlock):
            ARR = Register(0x0, count=1 << 24, stride=8)
            INSIDE = Register(0x8 * 5000)
