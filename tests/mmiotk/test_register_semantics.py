"""Every access semantic of the register layer, on the handles, the fake device and the mock."""

from __future__ import annotations

import pytest

from mmiotk import AccessError
from mmiotk.fake import FakeDevice
from mmiotk.mock import MockMmio
from mmiotk.registers import Access, Field, PollTimeout, Register, RegisterBlock


class Events(RegisterBlock, name="EV"):
    """One register per write/read behaviour; each 8-bit field at its own byte."""

    W1 = Register(0x00, fields=[Field("C", (7, 0), access="w1c"), Field("S", (15, 8), access="w1s"),
                                Field("T", (23, 16), access="w1t"), Field("RW", (31, 24))])
    W0 = Register(0x04, reset=0x00_00_F0_0F,
                  fields=[Field("C", (7, 0), access="w0c"), Field("S", (15, 8), access="w0s"),
                          Field("T", (23, 16), access="w0t"), Field("RW", (31, 24))])
    ANY = Register(0x08, fields=[Field("C", (7, 0), access="wc"), Field("S", (15, 8), access="ws")])
    RD = Register(0x0C, fields=[Field("RC", (7, 0), access="wrc"), Field("RS", (15, 8), access="wrs"),
                                Field("ONCE", (23, 16), access="w1")])
    WO = Register(0x10, fields=[Field("ONCE", (7, 0), access="wo1"), Field("CLR", (15, 8), access="woc"),
                                Field("DATA", (31, 16), access="wo", reset=0x1234)])
    PULSE = Register(0x14, fields=[Field("GO", 0, singlepulse=True), Field("MODE", (3, 1))])
    LANES = Register(0x18, accesswidth=8, fields=[Field("A", (7, 0), swmod=True), Field("B", (15, 8)),
                                                  Field("ACK", (23, 16), access="w1c"),
                                                  Field("STAT", (31, 24), access="ro", swacc=True)])
    SHARED = Register(0x1C, fields=[Field("STATUS", (7, 0), access="ro"), Field("CMD", (7, 0), access="wo")])
    WIDE = Register(0x20, width=64, accesswidth=32, fields=[Field("LO", (31, 0)), Field("HI", (63, 32))])
    SNOOP = Register(0x28, fields=[Field("DATA", (7, 0), access="ro", precious=True), Field("EN", 8)])


@pytest.fixture
def dev():
    fake = FakeDevice(Events)
    return fake, fake.bind()


def test_every_access_type_has_documented_read_write_and_neutral_behaviour():
    assert Access.W0C.neutral == "ones" and Access.W1T.neutral == "zero" and Access.WC.neutral == ""
    assert Access.WO1.once and not Access.WO1.readable and Access.W1.readable
    assert (Access.WRC.read_op, Access.WRC.write_op) == ("c", "value")
    assert (Access.W1SRC.read_op, Access.W1SRC.write_op) == ("c", "1s")
    assert {a.value for a in Access} >= {"ro", "rw", "rc", "rs", "wrc", "wrs", "wc", "ws", "wsrc", "wcrs", "w1c",
                                         "w1s", "w1t", "w0c", "w0s", "w0t", "w1src", "w1crs", "w0src", "w0crs",
                                         "wo", "woc", "wos", "w1", "wo1", "na", "rsvdz"}


def test_fake_applies_write_one_clear_set_toggle(dev):
    fake, _regs = dev
    fake.poke("W1", C=0xFF, S=0x0F, T=0x0F)
    fake.buffer.write32(0x00, 0x00_F0_F0_0F)
    v = fake.peek("W1")
    assert (v.C, v.S, v.T, v.RW) == (0xF0, 0xFF, 0xFF, 0x00)


def test_fake_applies_write_zero_clear_set_toggle(dev):
    fake, _ = dev
    fake.poke("W0", C=0xFF, S=0x00, T=0x0F)
    fake.buffer.write32(0x04, 0xFF_F0_F0_0F)      # zeros in C[7:4], S[3:0], T[3:0]
    v = fake.peek("W0")
    assert (v.C, v.S, v.T) == (0x0F, 0x0F, 0x00)


def test_modify_writes_ones_into_write_zero_fields_it_does_not_name(dev):
    fake, regs = dev
    fake.poke("W0", C=0x3C, S=0x0F, T=0x55)
    new = regs.W0.modify(RW=7)
    assert new >> 24 == 7 and new & 0xFF_FFFF == 0xFF_FFFF      # W0x fields written all-ones: unchanged
    v = fake.peek("W0")
    assert (v.C, v.S, v.T, v.RW) == (0x3C, 0x0F, 0x55, 7)


def test_modify_writes_zero_into_write_one_fields_it_does_not_name(dev):
    fake, regs = dev
    fake.poke("W1", C=0xFF, S=0x01, T=0x0F)
    regs.W1.modify(RW=3)
    v = fake.peek("W1")
    assert (v.C, v.S, v.T, v.RW) == (0xFF, 0x01, 0x0F, 3)


def test_any_write_clears_or_sets_so_modify_of_another_field_is_refused(dev):
    fake, regs = dev
    fake.poke("ANY", C=0xAA)
    fake.buffer.write32(0x08, 0)
    assert (fake.peek("ANY").C, fake.peek("ANY").S) == (0, 0xFF)
    fake.poke("RD", RC=1)
    with pytest.raises(AccessError, match="clears RC"):
        regs.RD.modify(ONCE=1)
    fake.log.clear()
    with pytest.raises(AccessError, match=r"changes S \(WS\)"):
        regs.ANY.clear("C")                         # the write would also set S: refused, nothing done
    assert fake.log == []


def test_clear_covers_w1c_w0c_and_wc(dev):
    fake, regs = dev
    fake.poke("W0", C=0xFF)
    regs.W0.clear(C=0x0F)
    assert fake.peek("W0").C == 0xF0
    fake.poke("W1", C=0xFF)
    regs.W1.clear(C=0x01)
    assert fake.peek("W1").C == 0xFE


def test_read_clears_and_read_sets_on_read_write_fields(dev):
    fake, regs = dev
    regs.RD.write(RC=0x5A, RS=0x00)
    v = regs.RD.read()
    assert (v.RC, v.RS) == (0x5A, 0x00)
    assert (fake.peek("RD").RC, fake.peek("RD").RS) == (0, 0xFF)


def test_write_once_fields_take_only_the_first_write_after_reset(dev):
    fake, regs = dev
    regs.WO.write(ONCE=0x11)
    regs.WO.write(ONCE=0x22)
    assert fake.peek("WO").ONCE == 0x11
    regs.RD.write(ONCE=5)
    regs.RD.write(ONCE=6)
    assert regs.RD.read().ONCE == 5
    fake.reset()
    regs.WO.write(ONCE=0x33)
    assert fake.peek("WO").ONCE == 0x33


def test_write_only_any_write_clears(dev):
    fake, regs = dev
    fake.poke("WO", CLR=0xFF)
    regs.WO.write(DATA=1)
    assert fake.peek("WO").CLR == 0
    assert fake.peek("WO").DATA == 1


def test_singlepulse_reads_back_zero_after_the_write_and_modify_never_refires_it(dev):
    fake, regs = dev
    seen = []
    fake.on_write("PULSE", lambda d, v: seen.append(v.GO))
    regs.PULSE.write(GO=1, MODE=2)
    assert seen == [1] and fake.peek("PULSE").GO == 0 and fake.peek("PULSE").MODE == 2
    fake.poke("PULSE", GO=1)                        # even if it read 1, modify writes 0
    regs.PULSE.modify(MODE=3)
    assert seen == [1, 0]


def test_byte_lane_modify_writes_only_the_named_fields_bytes_so_swmod_does_not_fire(dev):
    fake, regs = dev
    fake.poke("LANES", A=1, B=2, ACK=0xFF, STAT=0x77)
    fake.log.clear()
    regs.LANES.modify(B=9)
    assert [(e.kind, e.value) for e in fake.log] == [("write", 9)]   # no read: nothing to preserve
    assert fake.peek("LANES").A == 1 and fake.peek("LANES").B == 9 and fake.peek("LANES").ACK == 0xFF
    regs.LANES.modify(A=4)
    assert ("swmod", "LANES.A", 4) in [tuple(e) for e in fake.log]
    fake.log.clear()
    regs.LANES.clear(ACK=0x0F)
    assert [e.kind for e in fake.log] == ["write"] and fake.peek("LANES").ACK == 0xF0


def test_swacc_and_precious_registers_are_never_read_by_dump_or_an_unneeded_modify_read(dev):
    fake, regs = dev
    fake.log.clear()
    dump = regs.dump()
    assert "swacc" in dump["LANES"] and "precious" in dump["SNOOP"]
    assert all(e.register not in ("LANES", "SNOOP") for e in fake.log)
    with pytest.raises(AccessError, match="notifies the hardware of DATA"):
        regs.SNOOP.modify(EN=1)
    assert regs.SNOOP.read().DATA == 0              # an explicit read is allowed
    repr(regs.SNOOP), repr(regs)


def test_a_read_only_and_a_write_only_field_may_share_bits(dev):
    fake, regs = dev
    fake.poke("SHARED", STATUS=0x42)
    regs.SHARED.write(CMD=0x99)
    assert regs.SHARED.read().STATUS == 0x42 and fake.peek_written("SHARED") == 0x99


def test_wide_register_is_accessed_in_accesswidth_pieces_low_first(mock_mmio):
    regs = Events(mock_mmio.buffer)
    mock_mmio.expect_read(regs.WIDE, 0x1111_2222_3333_4444)
    assert int(regs.WIDE.read()) == 0x1111_2222_3333_4444
    mock_mmio.expect_write32(0x24, 0x5)             # only the HI half holds the named field
    regs.WIDE.modify(HI=5)
    mock_mmio.expect_write(regs.WIDE, 0xAAAA_BBBB_CCCC_DDDD)
    regs.WIDE.write(0xAAAA_BBBB_CCCC_DDDD)
    assert [p.offset for p in mock_mmio.pending] == []


def test_mock_expectations_for_a_piecewise_register_are_one_per_piece():
    mock = MockMmio(0x100)
    regs = Events(mock.buffer)
    mock.expect_write(regs.WIDE, LO=1)
    assert [(p.offset, p.width) for p in mock.pending] == [(0x20, 4)]
    mock.reset()


def test_fake_applies_a_narrow_piece_write_to_that_piece_only(dev):
    fake, _ = dev
    fake.poke("LANES", A=1, B=2, ACK=0x0F)
    fake.buffer.write8(0x1A, 0x03)                  # ACK byte: W1C bits 0 and 1
    assert fake.peek("LANES").ACK == 0x0C and fake.peek("LANES").A == 1
    assert fake.buffer.read8(0x19) == 2


# --- poll ---------------------------------------------------------------------------------------------
def test_poll_returns_once_the_fields_match(dev):
    fake, regs = dev
    reads = iter(range(100))
    fake.on_read("PULSE", lambda d, v: v._replace(MODE=min(next(reads), 5)))
    assert regs.PULSE.poll(MODE=5, timeout=1.0).MODE == 5


def test_poll_times_out_naming_the_register_and_last_value(dev):
    _fake, regs = dev
    with pytest.raises(PollTimeout, match=r"poll EV.PULSE: MODE=1 not met within 0.01 s \(wall time\)"):
        regs.PULSE.poll(MODE=1, timeout=0.01)


def test_poll_follows_the_spaces_clock(dev):
    fake, regs = dev
    slept = []

    class SimClock:
        simulated = True

        def sleep(self, seconds):
            slept.append(seconds)

    fake.buffer._space = SimClock()     # a space offering only sleep(): simulated time is counted
    with pytest.raises(PollTimeout, match="simulated time"):
        regs.PULSE.poll(lambda v: v.MODE == 7, timeout=1e-6, interval=1e-7)
    assert 9 <= len(slept) <= 11


def test_poll_refuses_a_register_whose_read_has_side_effects(dev):
    _, regs = dev
    with pytest.raises(Exception, match="reading it changes state"):
        regs.RD.poll(RC=1)
