"""Registers and fields: every access type, the W1C trap, arrays, indirect pairs, errors, definitions."""

from __future__ import annotations

import enum

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmiotk import AccessError, CachePolicy, MmioError, MmioResource, MmioValueError, RamSpace
from mmiotk.registers import (
    RC,
    RO,
    RSVDZ,
    W1C,
    W1S,
    WO,
    Field,
    FieldError,
    Indirect,
    Register,
    RegisterBlock,
    RegisterDefinitionError,
    RegisterValue,
)


def ram_buffer(size: int = 0x1000):
    ram = RamSpace(max(size, 0x1000))
    return MmioResource(ram, 0, ram.size).create_region(0, size, "regs").map(CachePolicy.UNCACHED_DEVICE)


class Mode(enum.IntEnum):
    IDLE = 0
    RUN = 1
    SLEEP = 2


class Dev(RegisterBlock, name="DEV0"):
    # RW control with pending W1C status, a W1S trigger, a reserved field, a WO strobe; bits 24..31 undeclared
    CTRL = Register(0x00, reset=0x0000_0010, fields=[
        Field("EN", 0),
        Field("MODE", (2, 1), enum=Mode),
        Field("DIV", (7, 4)),
        Field("DONE", 8, access=W1C),
        Field("ERR", (10, 9), access=W1C),
        Field("KICK", 11, access=W1S),
        Field("RES", (15, 12), access=RSVDZ),
        Field("CMD", (19, 16), access=WO, reset=0x3),
        Field("VER", (23, 20), access=RO),
    ])
    STATUS = Register(0x04, access=RO, fields=[Field("BUSY", 0), Field("LEVEL", (7, 4))])
    DATA = Register(0x08, access=WO)
    IRQ = Register(0x0C, access=W1C, fields=[Field("RX", 0), Field("TX", 1)])
    COUNT = Register(0x10, access=RC)
    EVT = Register(0x14, fields=[Field("CFG", (3, 0)), Field("HITS", (15, 8), access=RC)])
    SMALL = Register(0x18, width=16, fields=[Field("LO", (7, 0)), Field("HI", (15, 8))])
    WIDE = Register(0x20, width=64, reset=0xFFFF_0000_0000_0000)
    BYTE = Register(0x1A, width=8, access=W1S, fields=[Field("GO", 0)])
    LUT = Register(0x40, count=4, stride=8, fields=[Field("VAL", (15, 0))])


@pytest.fixture
def dev():
    buf = ram_buffer(0x100)
    return Dev(buf), buf


# --- values ---------------------------------------------------------------------------------------------
def test_read_returns_value_with_fields_and_enums(dev):
    d, buf = dev
    buf.write32(0x00, 0x00F0_0023)  # EN=1 MODE=RUN DIV=2 VER=0xF
    v = d.CTRL.read()
    assert isinstance(v, RegisterValue) and isinstance(v, int)
    assert int(v) == 0x00F0_0023 and v == 0x00F0_0023
    assert v.EN == 1 and v.MODE is Mode.RUN
    assert v.DIV == 2 and v.VER == 0xF


def test_value_enum_out_of_range_gives_plain_int(dev):
    d, buf = dev
    buf.write32(0x00, 0b110)  # MODE = 3, not a member
    assert d.CTRL.read().MODE == 3 and not isinstance(d.CTRL.read().MODE, Mode)


def test_value_helpers_and_repr_do_not_touch_hardware(dev):
    d, buf = dev
    buf.write32(0x00, 0x1)
    v = d.CTRL.read()
    buf.write32(0x00, 0x0)  # hardware changes; the value is a snapshot
    assert v.EN == 1
    assert "EN=1" in repr(v) and "MODE=IDLE" in repr(v) and "CMD" not in repr(v)
    assert v._replace(MODE="SLEEP", EN=0).MODE is Mode.SLEEP
    assert v._asdict()["EN"] == 1 and "CMD" not in v._asdict()
    with pytest.raises(AccessError, match="CMD is write-only"):
        _ = v.CMD
    assert d.CTRL.value(EN=1) == 0x0003_0011  # reset value (CMD resets to 3) with EN set, offline


def test_handle_repr_never_reads_rc(dev):
    d, buf = dev
    buf.write32(0x10, 7)
    assert "COUNT" in repr(d.COUNT) and "rc" in repr(d.COUNT)
    assert "DEV0" in repr(d)
    dump = d.dump()
    assert "RC" in dump["COUNT"] and "RC" in dump["EVT"] and "write-only" in dump["DATA"]
    assert buf.read32(0x10) == 7  # RAM has no read-clear, but nothing was read through the handle either
    assert d.dump()["STATUS"] == 0


# --- write ----------------------------------------------------------------------------------------------
def test_write_starts_from_reset(dev):
    d, buf = dev
    buf.write32(0x00, 0xFFFF_FFFF)
    written = d.CTRL.write(EN=1, MODE=Mode.SLEEP)
    # reset 0x10 (DIV=1), CMD resets to 3 (WO field reset), W1C/W1S/RSVDZ zero
    assert written == 0x0003_0015 == buf.read32(0x00)


def test_write_merges_fields_into_a_raw_value_and_refuses_one_too_wide(dev):
    d, buf = dev
    d.CTRL.write(0x0000_0001, DIV=0xA)
    assert buf.read32(0x00) == 0xA1
    with pytest.raises(MmioValueError, match=r"DEV0\.CTRL"):
        d.CTRL.write(1 << 32)


def test_write_named_w1c_and_w1s_are_written(dev):
    d, _ = dev
    assert d.CTRL.write(DONE=1, KICK=1) & 0x900 == 0x900


def test_write_ro_field_and_rsvdz_nonzero_refused(dev):
    d, buf = dev
    buf.write32(0x00, 0x1234)
    with pytest.raises(AccessError, match=r"DEV0\.CTRL\.VER"):
        d.CTRL.write(VER=1)
    with pytest.raises(AccessError, match=r"DEV0\.CTRL\.RES.*RSVDZ"):
        d.CTRL.write(RES=1)
    with pytest.raises(AccessError, match="RES"):
        d.CTRL.write(0x1000)
    d.CTRL.write(RES=0)
    assert buf.read32(0) == 0x0003_0010


# --- RO / WO --------------------------------------------------------------------------------------------
def test_ro_register_refuses_writes_and_touches_nothing(dev):
    d, buf = dev
    buf.write32(0x04, 0x31)
    for call in (lambda: d.STATUS.write(0), lambda: d.STATUS.write(BUSY=1), lambda: d.STATUS.modify(BUSY=0)):
        with pytest.raises(AccessError, match=r"DEV0\.STATUS.*read-only"):
            call()
    assert buf.read32(0x04) == 0x31
    v = d.STATUS.read()
    assert v.BUSY == 1 and v.LEVEL == 3
    assert isinstance(AccessError("x"), MmioError)


def test_wo_register_refuses_reads(dev):
    d, buf = dev
    with pytest.raises(AccessError, match=r"read DEV0\.DATA.*write-only"):
        d.DATA.read()
    with pytest.raises(AccessError, match=r"DEV0\.DATA.*write-only"):
        d.DATA.modify()
    d.DATA.write(0xDEAD_BEEF)
    assert buf.read32(0x08) == 0xDEAD_BEEF


# --- modify: semantics-aware read-modify-write ----------------------------------------------------------
def test_modify_writes_pending_w1c_bits_as_0_so_they_are_not_acked(dev):
    """A modify of an RW field in a register holding pending W1C bits writes them as 0."""
    d, buf = dev
    buf.write32(0x00, 0x0000_0700)  # DONE=1, ERR=0b11 pending
    written = d.CTRL.modify(EN=1)
    assert written & 0x700 == 0
    assert buf.read32(0x00) == 0x0003_0001  # EN, and the WO field CMD at its reset


def test_modify_writes_w1s_and_rsvdz_as_0_wo_at_reset_and_keeps_undeclared_bits(dev):
    d, buf = dev
    # KICK (W1S) reads 1, RES (RSVDZ) reads garbage, CMD (WO) reads garbage, bits 31:24 undeclared
    buf.write32(0x00, 0xABFF_F8A0)
    written = d.CTRL.modify(MODE="RUN")
    assert written & (1 << 11) == 0            # W1S not named: 0
    assert written & 0xF000 == 0               # RSVDZ: 0
    assert (written >> 16) & 0xF == 3          # WO field: its reset, never the read garbage
    assert written >> 24 == 0xAB               # undeclared: preserved
    assert (written >> 20) & 0xF == 0xF        # RO: written back as read (ignored by hardware)
    assert (written >> 4) & 0xF == 0xA         # RW DIV kept
    assert written & 0b111 == 0b010            # MODE=RUN, EN kept at 0


def test_modify_sets_several_fields_and_writes_1_only_to_the_named_w1c(dev):
    d, buf = dev
    buf.write32(0x00, 0x0000_0300)
    written = d.CTRL.modify(EN=1, DIV=5, DONE=1)
    assert written == 0x0003_0151


def test_modify_rc_register_refused_before_any_access(dev):
    d, _ = dev
    with pytest.raises(AccessError, match=r"DEV0\.EVT.*clears HITS \(RC\)"):
        d.EVT.modify(CFG=1)
    with pytest.raises(AccessError, match=r"DEV0\.COUNT"):
        d.COUNT.modify()


def test_rc_read_is_explicit(dev):
    d, buf = dev
    buf.write32(0x10, 42)
    assert d.COUNT.read() == 42
    with pytest.raises(AccessError, match="COUNT"):
        d.COUNT.write(0)
    with pytest.raises(AccessError, match=r"EVT\.HITS.*RC"):
        d.EVT.write(HITS=1)


def test_modify_errors_name_register_and_field(dev):
    d, buf = dev
    buf.write32(0x00, 0x5)
    with pytest.raises(FieldError, match=r"DEV0\.CTRL: no field named 'NOPE'"):
        d.CTRL.modify(NOPE=1)
    with pytest.raises(FieldError, match=r"DEV0\.CTRL\.DIV: value 16 does not fit in 4 bits"):
        d.CTRL.modify(DIV=16)
    with pytest.raises(FieldError, match=r"DEV0\.CTRL\.DIV"):
        d.CTRL.modify(DIV=-1)
    with pytest.raises(FieldError, match=r"DEV0\.CTRL\.MODE: 'FAST' is not a value"):
        d.CTRL.modify(MODE="FAST")
    with pytest.raises(FieldError, match=r"DEV0\.CTRL\.EN: 'x' is not a value of this field"):
        d.CTRL.modify(EN="x")
    with pytest.raises(AccessError, match=r"DEV0\.CTRL\.VER"):
        d.CTRL.modify(VER=1)
    assert buf.read32(0x00) == 0x5  # nothing was written by any of them


def test_modify_accepts_bool_and_enum(dev):
    d, buf = dev
    d.CTRL.modify(EN=True, MODE=Mode.SLEEP)
    assert buf.read32(0) & 0x7 == 0b101
    with pytest.raises(FieldError, match="not a member of Mode"):
        d.CTRL.modify(MODE=enum.IntEnum("Other", {"X": 1}).X)


# --- clear ----------------------------------------------------------------------------------------------
def test_clear_writes_exactly_named_w1c_bits_and_keeps_rw(dev):
    d, buf = dev
    buf.write32(0x00, 0xAB00_0F5B)  # EN=1 MODE=1 DIV=5, DONE=1 ERR=3 KICK=1
    written = d.CTRL.clear("DONE")
    assert written & 0xF00 == 0x100          # only DONE; ERR and KICK written 0
    assert written & 0xFF == 0x5B            # RW kept
    assert written >> 24 == 0xAB
    assert d.CTRL.clear(ERR=0b10) & 0x700 == 0x400


def test_clear_pure_w1c_register_does_not_read(dev):
    _, buf = dev
    buf.write32(0x0C, 0x3)
    reads = []

    class Spy:  # a bus that refuses reads: clear() of a W1C-only register is one write, nothing else
        size = 0x100

        def __getattr__(self, name):
            if name.startswith("read"):
                return lambda off: reads.append(off) or 0
            return getattr(buf, name)

    Dev(Spy()).IRQ.clear("TX")
    assert reads == [] and buf.read32(0x0C) == 0x2


def test_clear_refuses_non_w1c_fields(dev):
    d, _ = dev
    with pytest.raises(AccessError, match=r"DEV0\.CTRL\.EN: field is RW, clear\(\) is for W1C"):
        d.CTRL.clear("EN")
    with pytest.raises(FieldError, match="no field named"):
        d.CTRL.clear("NOPE")
    with pytest.raises(FieldError, match="ERR: value 4 does not fit"):
        d.CTRL.clear(ERR=4)


# --- W1S, widths ----------------------------------------------------------------------------------------
def test_8_16_and_64_bit_registers_write_and_modify_at_their_width(dev):
    d, buf = dev
    d.BYTE.write(GO=1)
    assert buf.read8(0x1A) == 1
    d.SMALL.modify(HI=0xAB)
    assert buf.read16(0x18) == 0xAB00
    assert d.SMALL.read().HI == 0xAB
    d.WIDE.write()
    assert buf.read64(0x20) == 0xFFFF_0000_0000_0000
    d.WIDE.modify()
    assert d.WIDE.read() == 0xFFFF_0000_0000_0000


# --- arrays ---------------------------------------------------------------------------------------------
def test_register_array_elements_sit_at_their_stride_and_bad_indices_are_refused(dev):
    d, buf = dev
    assert len(d.LUT) == 4
    for i, reg in enumerate(d.LUT):
        reg.write(VAL=0x100 + i)
    assert [buf.read32(0x40 + 8 * i) for i in range(4)] == [0x100, 0x101, 0x102, 0x103]
    assert d.LUT[2].read().VAL == 0x102
    assert d.LUT[3].name == "DEV0.LUT[3]" and d.LUT[3].offset == 0x58
    with pytest.raises(IndexError, match=r"DEV0\.LUT: index 4 out of range 0\.\.3"):
        d.LUT[4]
    with pytest.raises(TypeError, match="array of 4 registers"):
        d.LUT.read()
    with pytest.raises(TypeError, match="not an array"):
        d.CTRL[0]


def test_block_bound_at_an_offset_must_fit_and_be_8_byte_aligned():
    buf = ram_buffer(0x200)
    d = Dev(buf, offset=0x100)
    d.DATA.write(5)
    assert buf.read32(0x108) == 5
    with pytest.raises(MmioValueError, match="needs 0x5c bytes"):
        Dev(buf, offset=0x1C0)
    with pytest.raises(MmioValueError, match="multiple of 8"):
        Dev(buf, offset=4)
    with pytest.raises(AttributeError, match="no register named 'NOPE'"):
        _ = d.NOPE
    assert d["CTRL"] is d.CTRL


# --- indirect -------------------------------------------------------------------------------------------
class Phy(RegisterBlock, name="PHY"):
    BMCR = Register(0x0, width=16, fields=[Field("RESET", 15), Field("SPEED", 13)])
    BMSR = Register(0x2, width=16, access=RO, fields=[Field("LINK", 2)])


class Mac(RegisterBlock, name="MAC"):
    MDIO_IDX = Register(0x10, fields=[Field("REG", (4, 0)), Field("BUSY", 31, access=RO)])
    MDIO_DATA = Register(0x14, fields=[Field("DATA", (15, 0))])
    PHY = Indirect(Phy, index="MDIO_IDX", data="MDIO_DATA", index_field="REG", unit=2)


def test_indirect_register_access_writes_the_index_then_goes_through_the_data_register():
    buf = ram_buffer(0x100)
    mac = Mac(buf)
    mac.PHY.BMCR.modify(SPEED=1)
    # index register was written with REG=0, then data read (0) and written with SPEED
    assert buf.read32(0x10) == 0 and buf.read32(0x14) == 1 << 13
    buf.write32(0x14, 1 << 2)
    assert mac.PHY.BMSR.read().LINK == 1
    assert buf.read32(0x10) == 1  # BMSR is index 1 (offset 2 / unit 2)
    with pytest.raises(AccessError):
        mac.PHY.BMSR.write(LINK=0)


def test_indirect_definition_with_a_bad_index_register_is_refused():
    with pytest.raises(RegisterDefinitionError, match="wider"):
        class Bad(RegisterBlock):
            IDX = Register(0x0, width=8)
            DAT = Register(0x1, width=8)
            IN = Indirect(Phy, index="IDX", data="DAT")
    with pytest.raises(RegisterDefinitionError, match="no field named"):
        class Bad2(RegisterBlock):
            IDX = Register(0x0)
            DAT = Register(0x4)
            IN = Indirect(Phy, index="IDX", data="DAT", index_field="X")


# --- definitions ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("make", "message"), [
    (lambda: Register(0x2), r"block B, register R: offset 0x2 is not aligned"),
    (lambda: Register(0x0, width=24), "width must be one of"),
    (lambda: Register(0x0, fields=[Field("A", (3, 0)), Field("B", (4, 3))]),
     r"block B, register R, field B: bits \[4:3\] overlap field A"),
    (lambda: Register(0x0, width=8, fields=[Field("A", (8, 1))]),
     r"field A: bits \[8:1\] go beyond the register width \(8"),
    (lambda: Register(0x0, width=8, reset=0x100), "reset 256 does not fit in 8 bits"),
    (lambda: Register(0x0, fields=[Field("A", (1, 0), reset=4)]), "field A: reset 4 does not fit in 2 bits"),
    (lambda: Register(0x0, fields=[Field("A", 0, enum={"X": 2})]), r"field A: enum value X=2 does not fit in 1 bit"),
    (lambda: Register(0x0, fields=[Field("A", 0), Field("A", 1)]), "field A: declared twice"),
    (lambda: Register(0x0, fields=[Field("class", 0)]), "not a usable identifier"),
    (lambda: Register(0x0, fields=[Field("A", 0, access=RSVDZ, reset=1)]), "RSVDZ field must reset to 0"),
    (lambda: Register(0x0, fields=[Field("A", (0, 3))]), "msb >= lsb"),
    (lambda: Register(0x0, count=2, stride=2), "stride 2 must be a multiple"),
])
def test_bad_definitions_name_block_register_field(make, message):
    with pytest.raises(RegisterDefinitionError, match=message):
        type("B", (RegisterBlock,), {"R": make()})


def test_overlapping_registers_rejected():
    with pytest.raises(RegisterDefinitionError, match=r"block X, register B at 0x4 overlaps register A"):
        class X(RegisterBlock):
            A = Register(0x0, width=64)
            B = Register(0x4)
    with pytest.raises(RegisterDefinitionError, match=r"LUT\[1\]"):
        class Y(RegisterBlock):
            LUT = Register(0x0, count=4, stride=8)
            B = Register(0x8)


def test_access_types_parse_from_strings_and_fields_inherit_the_registers():
    class S(RegisterBlock):
        R = Register(0x0, access="W1C", fields=[Field("A", 0), Field("B", 1, access="rw")])
    spec = S.specs()["R"]
    assert spec.fields["A"].access is W1C and spec.fields["B"].access.value == "rw"
    with pytest.raises(MmioValueError, match="unknown access type 'rwx'"):
        Register(0x0, access="rwx")
    assert RO.readable and not WO.readable and not RC.writable and W1S.writable


def test_decode_names_the_register_or_array_element_and_its_fields_or_none_for_a_gap():
    assert Dev.decode(0x48, 32, 7) == ("DEV0.LUT[1]", {"VAL": 7})
    assert Dev.decode(0x00, 32, 1 << 1)[1]["MODE"] is Mode.RUN
    assert Dev.decode(0x30, 32, 0) is None
    assert Dev.size() == 0x5C


# --- the fast paths installed at bind time behave exactly like the reference methods -------------------
WRITABLE = {"EN": 1, "MODE": 3, "DIV": 15, "DONE": 1, "ERR": 3, "KICK": 1, "CMD": 15, "RES": 15, "VER": 15}


@settings(max_examples=300, deadline=None)
@given(raw=st.integers(0, 0xFFFF_FFFF),
       fields=st.dictionaries(st.sampled_from(sorted(WRITABLE)), st.integers(-1, 17), max_size=4))
def test_fast_paths_match_reference_methods(raw, fields):
    from mmiotk.registers import RegisterHandle

    results = []
    for fast in (True, False):
        buf = ram_buffer(0x100)
        d = Dev(buf)
        out = []
        for op in ("modify", "write"):
            buf.write32(0x0, raw)
            call = getattr(d.CTRL, op) if fast else getattr(RegisterHandle, op).__get__(d.CTRL)
            try:
                out.append(("ok", call(**fields), buf.read32(0x0)))
            except (FieldError, AccessError) as exc:
                out.append((type(exc).__name__, str(exc), buf.read32(0x0)))
        results.append(out)
    assert results[0] == results[1]


def test_field_access_decides_over_the_register_default():
    class Irq(RegisterBlock, name="IRQ"):
        PENDING = Register(0x0, access=RO, fields=[Field("RX", 0, access=W1C), Field("LEVEL", (7, 4))])
        ONLY_RO = Register(0x4, fields=[Field("A", 0, access=RO)])
        ONLY_WO = Register(0x8, access=RO, fields=[Field("GO", 0, access=WO)])

    buf = ram_buffer(0x100)
    irq = Irq(buf)
    buf.write32(0x0, 0x31)
    assert irq.PENDING.read().LEVEL == 3
    assert irq.PENDING.clear("RX") == 0x1      # an RO register with a W1C field can be acknowledged
    assert buf.read32(0x0) == 0x1              # (no RW field: no read first; RAM has no W1C semantics)
    with pytest.raises(AccessError, match="ONLY_RO"):
        irq.ONLY_RO.write(0)
    irq.ONLY_WO.write(GO=1)
    with pytest.raises(AccessError, match="ONLY_WO"):
        irq.ONLY_WO.read()
    assert irq.PENDING.value(0xFF).LEVEL == 0xF  # offline values take any bits


def test_a_block_works_bound_to_a_view_or_a_big_endian_mapping():
    buf = ram_buffer(0x200)
    view = buf.view(0x100, 0x100)
    d = Dev(view)
    d.CTRL.write(EN=1)
    assert buf.read32(0x100) == 0x0003_0011
    with view.trace(Dev) as trace:
        d.LUT[1].modify(VAL=0xBEEF)
    assert [(a.kind, a.offset, a.register) for a in trace] == [("read", 0x48, "DEV0.LUT[1]"),
                                                                ("write", 0x48, "DEV0.LUT[1]")]
    ram = RamSpace(0x1000)
    be = MmioResource(ram, 0, 0x1000).create_region(0, 0x100, "be").map(CachePolicy.UNCACHED_DEVICE, "big")
    Dev(be).SMALL.write(HI=0x12, LO=0x34)
    assert bytes(ram.array[0x18:0x1A]) == b"\x12\x34"
    assert Dev(be).SMALL.read().HI == 0x12
