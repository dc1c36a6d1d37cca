"""FakeDevice: register state with access semantics, hooks, and the read-modify-write garbage mode."""

from __future__ import annotations

from pathlib import Path

import pytest

from mmiotk import MmioBuffer
from mmiotk.fake import DeviceEvent, FakeDevice
from mmiotk.registers import RC, RO, RSVDZ, W1C, W1S, WO, Field, Register, RegisterBlock
from mmiotk.regmap import load

DATA = Path(__file__).parent / "data"


class Dev(RegisterBlock, name="DEV"):
    CTRL = Register(0x0, reset=0x10, fields=[
        Field("EN", 0), Field("DIV", (7, 4)), Field("DONE", 8, access=W1C), Field("ERR", 9, access=W1C),
        Field("KICK", 10, access=W1S), Field("RES", (15, 12), access=RSVDZ), Field("CMD", (19, 16), access=WO),
        Field("VER", (23, 20), access=RO, reset=0x3)])
    STATUS = Register(0x4, access=RO, fields=[Field("READY", 0), Field("LEVEL", (15, 8))])
    DATA = Register(0x8, access=WO)
    COUNT = Register(0xC, access=RC)
    IRQ = Register(0x10, access=W1C, fields=[Field("RX", 0), Field("TX", 1)])
    HALF = Register(0x14, width=16)


@pytest.fixture
def fake():
    return FakeDevice(Dev)


def test_fake_starts_at_each_registers_reset_value_behind_a_real_buffer(fake):
    assert isinstance(fake.buffer, MmioBuffer) and fake.size == 0x18
    assert fake.peek("CTRL") == 0x0030_0010  # reset, with VER's own reset
    assert fake["HALF"] == 0


def test_ro_bits_ignore_writes(fake):
    fake.buffer.write32(0x4, 0xFFFF)
    assert fake.peek("STATUS") == 0
    fake.buffer.write32(0x0, 0x00F0_0000)
    assert fake.peek("CTRL").VER == 3


def test_writing_1_clears_w1c_bits_and_sets_w1s_bits_and_0_leaves_both(fake):
    fake.poke("CTRL", DONE=1, ERR=1)
    fake.buffer.write32(0x0, 1 << 8)            # write 1 to DONE: clears DONE only
    v = fake.peek("CTRL")
    assert v.DONE == 0 and v.ERR == 1
    fake.buffer.write32(0x0, 1 << 10)           # W1S
    assert fake.peek("CTRL").KICK == 1
    fake.buffer.write32(0x0, 0)                 # 0 leaves W1C/W1S alone
    assert fake.peek("CTRL").KICK == 1 and fake.peek("CTRL").ERR == 1


def test_rc_clears_on_read_and_wo_reads_zero(fake):
    fake.poke("COUNT", 7)
    assert fake.buffer.read32(0xC) == 7
    assert fake.buffer.read32(0xC) == 0
    fake.buffer.write32(0x8, 0x55)
    assert fake.buffer.read32(0x8) == 0 and fake.peek("DATA") == 0x55
    fake.buffer.write32(0x0, 0x5 << 16)         # the WO field takes the write, reads as 0
    assert fake.peek("CTRL").CMD == 5 and (fake.buffer.read32(0x0) >> 16) & 0xF == 0


def test_rsvdz_written_nonzero_fails(fake):
    with pytest.raises(AssertionError, match=r"fake DEV: write of 0x1000 to CTRL sets reserved \(RSVDZ\) bits in RES"):
        fake.buffer.write32(0x0, 0x1000)


def test_strict_fake_fails_stray_and_wrong_width_accesses_and_a_lax_one_stores_strays(fake):
    with pytest.raises(AssertionError, match="read32 at 0x18 hits no register"):
        FakeDevice(Dev, size=0x20).buffer.read32(0x18)
    with pytest.raises(AssertionError, match=r"read16 at 0x0 does not match register CTRL \(32 bits at 0x0\)"):
        fake.buffer.read16(0x0)
    lax = FakeDevice(Dev, size=0x20, strict=False)
    lax.buffer.write32(0x18, 0xABCD)
    assert lax.buffer.read32(0x18) == 0xABCD


def test_hooks_run_on_accesses_and_a_read_hook_may_replace_the_value(fake):
    reads = []

    @fake.on_write("CTRL")
    def started(dev, value):
        if value.EN:
            dev.poke("STATUS", READY=1, LEVEL=4)

    fake.on_read("STATUS", lambda dev, value: reads.append(int(value)))
    fake.on_read("HALF", lambda dev, value: 0xBEEF)   # a non-None return is what the read returns
    regs = fake.bind()
    regs.CTRL.modify(EN=1)
    assert regs.STATUS.read().READY == 1 and reads == [0x401]
    assert regs.HALF.read() == 0xBEEF
    assert fake.log[:2] == [DeviceEvent("read", "CTRL", 0x0030_0010), DeviceEvent("write", "CTRL", 0x0030_0011)]
    with pytest.raises(KeyError, match="no register 'NOPE'"):
        fake.on_write("NOPE", print)


def test_poke_and_peek_refuse_values_that_do_not_fit_and_unknown_registers(fake):
    with pytest.raises(ValueError, match="does not fit in 16 bits"):
        fake.poke("HALF", 0x10000)
    with pytest.raises(ValueError, match=r"DEV\.CTRL\.EN"):
        fake.poke("CTRL", EN=2)
    with pytest.raises(KeyError):
        fake.peek("NOPE")


def test_modify_keeps_pending_w1c_events_that_a_hand_written_rmw_acks(fake):
    """A modify of an RW field in a register holding pending W1C bits writes them as 0: the events survive.
    A hand-written read-modify-write loses them."""
    regs = fake.bind()
    fake.poke("CTRL", DONE=1, ERR=1)
    regs.CTRL.modify(DIV=3)
    assert fake.peek("CTRL").DONE == 1 and fake.peek("CTRL").ERR == 1 and fake.peek("CTRL").DIV == 3
    regs.CTRL.clear("DONE")
    assert fake.peek("CTRL").DONE == 0 and fake.peek("CTRL").ERR == 1 and fake.peek("CTRL").DIV == 3
    buf = fake.buffer
    buf.write32(0x0, buf.read32(0x0) | 1)      # the classic bug
    assert fake.peek("CTRL").ERR == 0          # acknowledged without anyone handling it


def test_garbage_mode_exposes_rmw_bugs():
    fake = FakeDevice(Dev, rmw_garbage=True)
    regs = fake.bind()
    fake.poke("CTRL", DONE=1)
    raw = fake.buffer.read32(0x0)
    assert raw & (1 << 9) and raw & (1 << 10) and raw & 0xF000 and (raw >> 16) & 0xF == 0xF  # garbage
    regs.CTRL.modify(EN=1)                                    # correct: passes
    regs.CTRL.clear("DONE")                                   # correct: passes
    regs.CTRL.write(DIV=2)
    assert fake.peek("CTRL").EN == 0 and fake.peek("CTRL").DIV == 2
    buf = fake.buffer
    with pytest.raises(AssertionError, match=r"read-modify-write of CTRL wrote back the garbage its read "
                                             r"returned in DONE, ERR, KICK, RES, CMD"):
        buf.write32(0x0, buf.read32(0x0) | 1)
    # writing the same bits without reading first is not an echo
    fake2 = FakeDevice(Dev, rmw_garbage=True)
    fake2.buffer.write32(0x0, 0x0F_0700 & ~0xF000)


def test_garbage_mode_catches_naive_modify32():
    fake = FakeDevice(Dev, rmw_garbage=True, strict=False)
    with pytest.raises(AssertionError, match="wrote back the garbage"):
        fake.buffer.modify32(0x0, 0, 1)  # clrsetbits knows nothing of W1C


def test_fake_built_from_a_register_map_honours_its_access_semantics():
    fake = FakeDevice(load(DATA / "uart.yaml"))
    uart = fake.bind()
    fake.poke("INTSTAT", RX=1, TX=1)
    uart.CTRL.modify(EN=1)
    uart.INTSTAT.clear("TX")
    assert fake.peek("INTSTAT").RX == 1 and fake.peek("INTSTAT").TX == 0
    assert fake.peek("SCRATCH[2]") == 0
    uart.SCRATCH[2].write(9)
    assert fake.peek("SCRATCH[2]") == 9
    with pytest.raises(TypeError, match="RegisterBlock class or a RegisterMap"):
        FakeDevice(42)
