"""Register-level behaviour of the controller (cocotb tests; run by test_rtl.py on both simulators)."""

from __future__ import annotations

import cocotb
import pytest
from cocotb.handle import Immediate
from cocotb.triggers import Timer
from rtl_helpers import TIMEOUT_MS, make, map_regs
from vblk_driver import (
    ACKNOWLEDGE,
    CFG_ALIGNMENT_OFFSET,
    CFG_BLK_SIZE,
    CFG_CAPACITY,
    CFG_MIN_IO_SIZE,
    CFG_OPT_IO_SIZE,
    CFG_PHYS_BLOCK_EXP,
    CFG_SEG_MAX,
    CFG_WRITEBACK,
    CONFIG_GENERATION,
    DEVICE_FEATURES,
    DEVICE_FEATURES_SEL,
    DEVICE_ID,
    DRIVER,
    DRIVER_FEATURES,
    DRIVER_FEATURES_SEL,
    DRIVER_OK,
    F_BLK_SIZE,
    F_CONFIG_WCE,
    F_EVENT_IDX,
    F_FLUSH,
    F_INDIRECT,
    F_SEG_MAX,
    F_TOPOLOGY,
    F_VERSION_1,
    FAILED,
    FEATURES_OK,
    INTERRUPT_ACK,
    INTERRUPT_STATUS,
    MAGIC,
    NEEDS_RESET,
    QUEUE_DESC,
    QUEUE_NUM,
    QUEUE_NUM_MAX,
    QUEUE_READY,
    QUEUE_SEL,
    STATUS,
    VENDOR_ID,
    VERSION,
    DeviceError,
)

from hwsim.cosim import NotBridgedError
from mmiotk import IrqTimeoutError

OFFERED = ((1 << F_VERSION_1) | (1 << F_SEG_MAX) | (1 << F_BLK_SIZE) | (1 << F_FLUSH) | (1 << F_TOPOLOGY)
           | (1 << F_CONFIG_WCE) | (1 << F_INDIRECT) | (1 << F_EVENT_IDX))
F_RING_PACKED = 34                                   # not offered


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def registers_read_their_reset_values(dut):
    """After reset every register reads its specified value: identity, offered features, QueueNumMax 64,
    zeroed queue and status registers, the config space of the medium; an undefined offset reads 0 and
    ignores writes; the line is low."""
    env, drv = await make(dut, media_sectors=4096)

    def check():
        r = drv.regs
        assert r.read32(MAGIC) == 0x74726976
        assert r.read32(VERSION) == 2
        assert r.read32(DEVICE_ID) == 2
        assert r.read32(VENDOR_ID) == 0x4B544D4D
        assert drv.device_features() == OFFERED
        r.write32(QUEUE_SEL, 0)
        assert r.read32(QUEUE_NUM_MAX) == 256
        for off in (QUEUE_NUM, QUEUE_READY, INTERRUPT_STATUS, STATUS, CONFIG_GENERATION,
                    QUEUE_DESC, QUEUE_DESC + 4, 0x90, 0x94, 0xA0, 0xA4):
            assert r.read32(off) == 0, hex(off)
        assert r.read32(CFG_CAPACITY) == 4096 and r.read32(CFG_CAPACITY + 4) == 0
        assert r.read32(CFG_SEG_MAX) == 30
        assert r.read32(CFG_BLK_SIZE) == 512
        assert r.read8(CFG_WRITEBACK) == 0
        # topology: 4 KiB physical blocks (2**3 logical ones), no offset, min 1 block, optimal 8
        assert (r.read8(CFG_PHYS_BLOCK_EXP), r.read8(CFG_ALIGNMENT_OFFSET), r.read16(CFG_MIN_IO_SIZE),
                r.read32(CFG_OPT_IO_SIZE)) == (3, 0, 1, 8)
        r.write32(0x0F0, 0x1234_5678)  # undefined: reads zero, ignores writes
        assert r.read32(0x0F0) == 0

    await env.run(check)
    assert dut.irq.value == 0
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def queue_registers_read_back_and_freeze_while_the_queue_is_ready(dut):
    """Queue 1 does not exist (QueueNumMax 0, writes to it go nowhere); queue 0's size and descriptor
    address read back, and writes to them are ignored while QueueReady is 1."""
    env, drv = await make(dut)

    def check():
        r = drv.regs
        drv.negotiate(OFFERED)                       # QueueReady=1 needs FEATURES_OK
        r.write32(QUEUE_SEL, 1)                      # no such queue
        assert r.read32(QUEUE_NUM_MAX) == 0
        r.write32(QUEUE_NUM, 8)
        r.write32(QUEUE_READY, 1)
        assert r.read32(QUEUE_READY) == 0
        r.write32(QUEUE_SEL, 0)
        assert r.read32(QUEUE_NUM) == 0              # the write to queue 1 went nowhere
        r.write32(QUEUE_NUM, 16)
        r.write32(QUEUE_DESC, 0x8000_1000)
        assert (r.read32(QUEUE_NUM), r.read32(QUEUE_DESC)) == (16, 0x8000_1000)
        r.write32(QUEUE_READY, 1)
        assert r.read32(QUEUE_READY) == 1
        r.write32(QUEUE_NUM, 32)                     # frozen while the queue is ready
        r.write32(QUEUE_DESC, 0x8000_2000)
        assert (r.read32(QUEUE_NUM), r.read32(QUEUE_DESC)) == (16, 0x8000_1000)
        r.write32(QUEUE_READY, 0)
        r.write32(QUEUE_NUM, 32)
        assert r.read32(QUEUE_NUM) == 32

    await env.run(check)
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def features_ok_sticks_only_for_an_offered_subset_with_version_1(dut):
    """FEATURES_OK does not stick without VERSION_1 or with a feature the device does not offer; an offered
    subset is accepted and then frozen; feature words beyond bit 63 read 0."""
    env, drv = await make(dut)

    def check():
        r = drv.regs
        # VERSION_1 is required
        with pytest.raises(DeviceError):
            drv.negotiate(OFFERED & ~(1 << F_VERSION_1))
        assert r.read32(STATUS) == ACKNOWLEDGE | DRIVER
        # a feature the device does not offer is refused
        drv.reset()
        r.write32(STATUS, ACKNOWLEDGE | DRIVER)
        drv.write_features((1 << F_VERSION_1) | (1 << F_RING_PACKED))
        r.write32(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK)
        assert r.read32(STATUS) & FEATURES_OK == 0
        # a proper subset is accepted and then frozen
        assert drv.negotiate((1 << F_VERSION_1) | (1 << F_FLUSH)) == (1 << F_VERSION_1) | (1 << F_FLUSH)
        assert r.read32(STATUS) == ACKNOWLEDGE | DRIVER | FEATURES_OK
        drv.write_features(OFFERED)
        r.write32(DRIVER_FEATURES_SEL, 0)
        assert r.read32(DRIVER_FEATURES) == 1 << F_FLUSH
        r.write32(DRIVER_FEATURES_SEL, 1)
        assert r.read32(DRIVER_FEATURES) == 1
        r.write32(DEVICE_FEATURES_SEL, 2)            # beyond the 64 bits
        assert r.read32(DEVICE_FEATURES) == 0

    await env.run(check)
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def status_zero_resets_everything_and_needs_reset_belongs_to_the_device(dut):
    """The driver cannot set DEVICE_NEEDS_RESET; FAILED sticks; writing Status 0 clears queue, features and
    writeback, and the device initialises again and serves a read."""
    env, drv = await make(dut)

    def check():
        r = drv.regs
        drv.init()
        assert r.read32(STATUS) == ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK
        r.write32(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK | NEEDS_RESET)
        assert r.read32(STATUS) & NEEDS_RESET == 0, "DEVICE_NEEDS_RESET belongs to the device"
        r.write32(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK | FAILED)
        assert r.read32(STATUS) & FAILED
        r.write32(STATUS, 0)                         # reset
        assert r.read32(STATUS) == 0
        assert r.read32(QUEUE_READY) == 0 and r.read32(QUEUE_NUM) == 0 and r.read32(QUEUE_DESC) == 0
        r.write32(DRIVER_FEATURES_SEL, 0)
        assert r.read32(DRIVER_FEATURES) == 0
        assert r.read8(CFG_WRITEBACK) == 0
        drv.init()                                   # and the device comes back
        assert drv.read(0) == bytes(512)

    await env.run(check)
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def queue_ready_refused_before_features_ok(dut):
    """virtio 1.2, 3.1.1: the queue is set up after FEATURES_OK; QueueReady=1 before it does not stick."""
    env, drv = await make(dut)

    def check():
        r = drv.regs
        drv.reset()
        r.write32(STATUS, ACKNOWLEDGE | DRIVER)
        r.write32(QUEUE_SEL, 0)
        r.write32(QUEUE_NUM, 16)
        r.write32(QUEUE_READY, 1)
        before = r.read32(QUEUE_READY)
        drv.negotiate(OFFERED)
        r.write32(QUEUE_READY, 1)
        return before, r.read32(QUEUE_READY)

    assert await env.run(check) == (0, 1)
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def status_write_cannot_clear_features_ok(dut):
    """A Status write without FEATURES_OK leaves it set, and the features stay frozen."""
    env, drv = await make(dut)

    def check():
        r = drv.regs
        drv.negotiate((1 << F_VERSION_1) | (1 << F_FLUSH))
        r.write32(STATUS, ACKNOWLEDGE | DRIVER)      # FEATURES_OK missing from the write
        after = r.read32(STATUS)
        r.write32(DRIVER_FEATURES_SEL, 0)
        r.write32(DRIVER_FEATURES, 0)                # still frozen
        return after, r.read32(DRIVER_FEATURES)

    assert await env.run(check) == (ACKNOWLEDGE | DRIVER | FEATURES_OK, 1 << F_FLUSH)
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def driver_ok_without_features_ok_needs_reset(dut):
    """DRIVER_OK without FEATURES_OK sets DEVICE_NEEDS_RESET with a configuration-change interrupt."""
    env, drv = await make(dut)

    def check():
        r = drv.regs
        drv.reset()
        r.write32(STATUS, ACKNOWLEDGE | DRIVER)
        r.write32(STATUS, ACKNOWLEDGE | DRIVER | DRIVER_OK)
        status, isr = r.read32(STATUS), r.read32(INTERRUPT_STATUS)
        drv.init()                                   # a reset clears it
        return status, isr, r.read32(STATUS)

    status, isr, after = await env.run(check)
    assert status == ACKNOWLEDGE | DRIVER | DRIVER_OK | NEEDS_RESET
    assert isr == 2, "with a configuration-change interrupt"
    assert after == ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def writeback_follows_flush_and_only_config_wce_makes_it_writable(dut):
    """writeback reads 0 after FEATURES_OK (writethrough is the default, as the seed's); the driver can change
    it only when CONFIG_WCE is negotiated; num_queues reads 0."""
    env, drv = await make(dut)

    def check():
        r = drv.regs
        drv.negotiate((1 << F_VERSION_1) | (1 << F_FLUSH) | (1 << F_CONFIG_WCE))
        assert r.read8(CFG_WRITEBACK) == 0           # writethrough is the default (as the seed's)
        drv.set_writeback(True)
        assert r.read8(CFG_WRITEBACK) == 1
        drv.set_writeback(False)
        assert r.read8(CFG_WRITEBACK) == 0
        drv.set_writeback(True)
        assert r.read8(CFG_WRITEBACK) == 1
        drv.negotiate((1 << F_VERSION_1) | (1 << F_CONFIG_WCE))
        assert r.read8(CFG_WRITEBACK) == 0           # CONFIG_WCE without FLUSH starts writethrough
        drv.negotiate((1 << F_VERSION_1) | (1 << F_FLUSH))
        drv.set_writeback(True)                      # not negotiated: read-only
        assert r.read8(CFG_WRITEBACK) == 0
        assert r.read16(CFG_WRITEBACK + 2) == 0      # num_queues (no MQ)

    await env.run(check)
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def capacity_change_bumps_the_generation_and_raises_a_config_interrupt(dut):
    """When the medium shrinks under the driver, ConfigGeneration goes up by one, InterruptStatus shows the
    configuration bit with the line high, and the new capacity reads back; acknowledging the other bit
    leaves it pending, acknowledging bit 1 clears it and drops the line."""
    env, drv = await make(dut, media_sectors=1024)
    await env.run(drv.init)
    gen0 = await env.run(drv.regs.read32, CONFIG_GENERATION)
    dut.capacity.value = Immediate(512)              # the medium shrinks under the driver
    await Timer(50, "ns")
    assert dut.irq.value == 1

    def check():
        r = drv.regs
        assert r.read32(CONFIG_GENERATION) == gen0 + 1
        assert r.read32(INTERRUPT_STATUS) == 2
        assert drv.capacity() == 512
        r.write32(INTERRUPT_ACK, 1)                  # the wrong bit: still pending
        assert r.read32(INTERRUPT_STATUS) == 2
        r.write32(INTERRUPT_ACK, 2)
        assert r.read32(INTERRUPT_STATUS) == 0

    await env.run(check)
    assert dut.irq.value == 0
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def interrupt_ack_clears_only_the_bits_written(dut):
    """A completed FLUSH sets the used-buffer bit; acknowledging 0 or the configuration bit leaves it set;
    acknowledging bit 0 clears it, the level line drops and used.idx is 1."""
    env, drv = await make(dut)

    def check():
        r = drv.regs
        drv.init()
        drv.put_desc(0, drv.header_pa, 16, 1, 2)
        drv.put_desc(2, drv.status_pa, 1, 2)
        drv.mem(drv.header_pa, 16)[:] = 0
        drv.mem(drv.header_pa, 1)[0] = 4                 # FLUSH
        drv.publish(0)
        drv.irq.wait(1e-3)
        assert r.read32(INTERRUPT_STATUS) == 1
        r.write32(INTERRUPT_ACK, 0)
        r.write32(INTERRUPT_ACK, 2)
        assert r.read32(INTERRUPT_STATUS) == 1
        r.write32(INTERRUPT_ACK, 1)
        assert r.read32(INTERRUPT_STATUS) == 0
        with pytest.raises(IrqTimeoutError):             # level line is low again
            drv.irq.wait(20e-6)
        return drv.used_idx()

    assert await env.run(check) == 1
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def cocotbext_axi_master_reads_what_the_hdl_master_reads(dut):
    """The same register accesses through cocotbext-axi's AxiLiteMaster (a reference AXI4-Lite master)
    return exactly what the HDL master returns, in 12 transactions, and the HDL master works again after
    switching back."""
    env, drv = await make(dut, media_sectors=300)

    def snapshot():
        r = drv.regs
        r.write32(QUEUE_SEL, 0)
        r.write32(QUEUE_NUM, 8)
        r.write8(CFG_WRITEBACK, 1)  # ignored (nothing negotiated): a byte write the slave must take
        return [r.read32(o) for o in (MAGIC, VERSION, DEVICE_ID, VENDOR_ID, QUEUE_NUM_MAX, QUEUE_NUM,
                                      CFG_CAPACITY)] + [r.read8(CFG_CAPACITY + 1), r.read16(CFG_SEG_MAX)]

    hdl = await env.run(snapshot)
    bus = env.use_axi_master()
    ref = await env.run(snapshot)
    assert bus.transactions == 12
    assert hdl == ref == [0x74726976, 2, 2, 0x4B544D4D, 256, 8, 300, 1, 30]
    env.use_hdl_bus()
    assert await env.run(map_regs(env).read32, MAGIC) == 0x74726976
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def bridge_carries_exceptions_both_ways_and_refuses_unbridged_access(dut):
    """A driver exception reaches the cocotb test; an interrupt wait that times out in simulated time
    reaches the driver as IrqTimeoutError; a register access outside the bridge raises NotBridgedError; the
    bridge still works afterwards."""
    env, drv = await make(dut)

    def fails():
        drv.regs.read32(MAGIC)
        raise ValueError("from the driver")

    with pytest.raises(ValueError, match="from the driver"):
        await env.run(fails)

    def times_out():
        try:
            drv.irq.wait(5e-6)                       # nothing pending: the cocotb side raises
        except IrqTimeoutError as exc:
            return str(exc)
        return "no timeout"

    assert "simulated time" in await env.run(times_out)
    with pytest.raises(NotBridgedError):
        drv.regs.read32(MAGIC)                       # not under the bridge: no task to await in
    assert await env.run(drv.regs.read32, MAGIC) == 0x74726976
    env.close()
