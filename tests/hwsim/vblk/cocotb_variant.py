"""The other build: the legacy interface (LEGACY=1: virtio-mmio Version 1), read-only by parameter (F_RO=1),
without FLUSH or CONFIG_WCE."""

from __future__ import annotations

import cocotb
from rtl_helpers import TIMEOUT_MS, make, pattern
from vblk_driver import (
    CFG_WRITEBACK,
    DEVICE_FEATURES,
    DEVICE_FEATURES_SEL,
    DRIVER_OK,
    F_BLK_SIZE,
    F_INDIRECT,
    F_RO,
    F_SEG_MAX,
    F_TOPOLOGY,
    FEATURES_OK,
    QUEUE_PFN,
    QUEUE_READY,
    S_IOERR,
    S_UNSUPP,
    SECTOR,
    STATUS,
    T_FLUSH,
    T_OUT,
    VERSION,
)

from hwsim.media import BlockMedia

OFFERED = (1 << F_SEG_MAX) | (1 << F_RO) | (1 << F_BLK_SIZE) | (1 << F_TOPOLOGY) | (1 << F_INDIRECT)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def legacy_identity_and_features(dut):
    """Version 1, 32 feature bits without VERSION_1 (legacy devices do not offer it), no FEATURES_OK."""
    env, drv = await make(dut)

    def body():
        r = drv.regs
        r.write32(DEVICE_FEATURES_SEL, 1)
        high = r.read32(DEVICE_FEATURES)
        negotiated = drv.init_legacy(0xFFFF_FFFF)
        r.write32(STATUS, r.read32(STATUS) | FEATURES_OK)      # no such bit in the legacy interface
        return r.read32(VERSION), high, negotiated, r.read32(STATUS), r.read32(QUEUE_READY), \
            r.read32(QUEUE_PFN) * 4096 == drv.desc_pa, drv.regs.read8(CFG_WRITEBACK)

    version, high, negotiated, status, ready, pfn_ok, writeback = await env.run(body)
    assert (version, high, negotiated) == (1, 0, OFFERED)
    assert status & FEATURES_OK == 0 and status & DRIVER_OK
    assert ready == 0, "QueueReady is not a legacy register"
    assert pfn_ok and writeback == 0
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def legacy_requests_through_queue_pfn(dut):
    """The rings where the legacy layout puts them: avail after the descriptors, used at QueueAlign."""
    media = BlockMedia(size=128 * SECTOR)
    media.fill(0, pattern(128 * SECTOR, 3))
    env, drv = await make(dut, media=media, qsize=32)

    def body():
        drv.init_legacy(align=256)
        reads = [drv.read(lba, 2) for lba in (4, 100)]
        out = drv.request(T_OUT, 4, out=bytes(SECTOR))[0]
        flush = drv.request(T_FLUSH)[0]
        return reads, out, flush, drv.used_pa - drv.desc_pa

    reads, out, flush, used_off = await env.run(body)
    assert reads == [media.sector(4, 2), media.sector(100, 2)]
    assert (out, flush) == (S_IOERR, S_UNSUPP), "read-only build, no FLUSH"
    assert used_off == 768                           # 16 * 32 + 6 + 64 = 582, up to 256
    assert media.sector(4) == pattern(128 * SECTOR, 3)[4 * SECTOR:5 * SECTOR]
    env.close()
