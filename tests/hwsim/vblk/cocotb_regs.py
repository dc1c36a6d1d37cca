"""Register-level behaviour of the controller (cocotb tests; run by test_rtl.py on both simulators)."""

from __future__ import annotations

import cocotb
import pytest
from cocotb.handle import Immediate
from cocotb.triggers import Timer
from rtl_helpers import TIMEOUT_MS, make, map_regs
from vblk_driver import (
    ACKNOWLEDGE,
    CFG_BLK_SIZE,
    CFG_CAPACITY,
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
    F_FLUSH,
    F_INDIRECT,
    F_SEG_MAX,
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

OFFERED = (1 << F_VERSION_1) | (1 << F_SEG_MAX) | (1 << F_BLK_SIZE) | (1 << F_FLUSH) | (1 << F_CONFIG_WCE)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def reset_values(dut):
    env, drv = await make(dut, media_sectors=4096)

    def check():
        r = drv.regs
        assert r.read32(MAGIC) == 0x74726976
        assert r.read32(VERSION) == 2
        assert r.read32(DEVICE_ID) == 2
        assert r.read32(VENDOR_ID) == 0x4B544D4D
        assert drv.device_features() == OFFERED
        r.write32(QUEUE_SEL, 0)
        assert r.read32(QUEUE_NUM_MAX) == 64
        for off in (QUEUE_NUM, QUEUE_READY, INTERRUPT_STATUS, STATUS, CONFIG_GENERATION,
                    QUEUE_DESC, QUEUE_DESC + 4, 0x90, 0x94, 0xA0, 0xA4):
            assert r.read32(off) == 0, hex(off)
        assert r.read32(CFG_CAPACITY) == 4096 and r.read32(CFG_CAPACITY + 4) == 0
        assert r.read32(CFG_SEG_MAX) == 30
        assert r.read32(CFG_BLK_SIZE) == 512
        assert r.read8(CFG_WRITEBACK) == 0
        r.write32(0x0F0, 0x1234_5678)  # undefined: reads zero, ignores writes
        assert r.read32(0x0F0) == 0

    await env.run(check)
    assert dut.irq.value == 0
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def queue_registers(dut):
    env, drv = await make(dut)

    def check():
        r = drv.regs
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
async def feature_negotiation(dut):
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
        drv.write_features((1 << F_VERSION_1) | (1 << F_INDIRECT))
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
async def status_transitions(dut):
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
async def writeback_config(dut):
    env, drv = await make(dut)

    def check():
        r = drv.regs
        drv.negotiate((1 << F_VERSION_1) | (1 << F_FLUSH) | (1 << F_CONFIG_WCE))
        assert r.read8(CFG_WRITEBACK) == 1           # FLUSH negotiated: writeback cache
        drv.set_writeback(False)
        assert r.read8(CFG_WRITEBACK) == 0
        drv.set_writeback(True)
        assert r.read8(CFG_WRITEBACK) == 1
        drv.negotiate((1 << F_VERSION_1) | (1 << F_CONFIG_WCE))
        assert r.read8(CFG_WRITEBACK) == 0           # CONFIG_WCE without FLUSH starts writethrough
        drv.negotiate((1 << F_VERSION_1) | (1 << F_FLUSH))
        drv.set_writeback(False)                     # not negotiated: read-only
        assert r.read8(CFG_WRITEBACK) == 1
        assert r.read16(CFG_WRITEBACK + 2) == 0      # num_queues (no MQ)

    await env.run(check)
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def config_change_interrupt(dut):
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
async def interrupt_ack(dut):
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
async def reference_bus_model(dut):
    """The same registers through cocotbext-axi's AxiLiteMaster (a reference AXI4-Lite master)."""
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
    assert hdl == ref == [0x74726976, 2, 2, 0x4B544D4D, 64, 8, 300, 1, 30]
    env.use_hdl_bus()
    assert await env.run(map_regs(env).read32, MAGIC) == 0x74726976
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def bridge_exceptions(dut):
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
