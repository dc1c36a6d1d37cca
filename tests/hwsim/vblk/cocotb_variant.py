"""A read-only build without FLUSH or CONFIG_WCE (parameters F_RO=1, F_FLUSH=0, F_CONFIG_WCE=0)."""

from __future__ import annotations

import cocotb
from rtl_helpers import TIMEOUT_MS, make, pattern
from vblk_driver import (
    ACKNOWLEDGE,
    CFG_WRITEBACK,
    DRIVER,
    F_BLK_SIZE,
    F_CONFIG_WCE,
    F_INDIRECT,
    F_RO,
    F_SEG_MAX,
    F_TOPOLOGY,
    F_VERSION_1,
    FEATURES_OK,
    S_IOERR,
    S_UNSUPP,
    SECTOR,
    STATUS,
    T_FLUSH,
    T_OUT,
)

from hwsim.media import BlockMedia


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def read_only_build_offers_ro_and_neither_flush_nor_config_wce(dut):
    """The read-only build offers VERSION_1, SEG_MAX, RO and BLK_SIZE only: FEATURES_OK with CONFIG_WCE does
    not stick, the negotiated set equals the offered one, and writeback stays 0."""
    env, drv = await make(dut)

    def body():
        offered = drv.device_features()
        drv.reset()                                  # CONFIG_WCE is not offered: refused
        drv.regs.write32(STATUS, ACKNOWLEDGE | DRIVER)
        drv.write_features((1 << F_VERSION_1) | (1 << F_CONFIG_WCE))
        drv.regs.write32(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK)
        refused = drv.regs.read32(STATUS) & FEATURES_OK == 0
        drv.init(offered)
        drv.set_writeback(True)
        return refused, offered, drv.features, drv.regs.read8(CFG_WRITEBACK)

    refused, offered, negotiated, writeback = await env.run(body)
    assert refused
    expected = (1 << F_VERSION_1) | (1 << F_SEG_MAX) | (1 << F_RO) | (1 << F_BLK_SIZE) | (1 << F_TOPOLOGY) \
        | (1 << F_INDIRECT)
    assert offered == negotiated == expected
    assert writeback == 0
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def read_only_build_fails_writes_and_flush_and_serves_reads(dut):
    """On the read-only build an OUT completes IOERR and a FLUSH UNSUPP, while reads return the preloaded
    media, which is unchanged."""
    media = BlockMedia(size=128 * SECTOR)
    media.fill(0, pattern(128 * SECTOR, 3))
    env, drv = await make(dut, media=media)

    def body():
        drv.init()
        out = drv.request(T_OUT, 4, out=bytes(SECTOR))[0]
        flush = drv.request(T_FLUSH)[0]
        return out, flush, drv.read(4)

    out, flush, data = await env.run(body)
    assert (out, flush) == (S_IOERR, S_UNSUPP)
    assert data == media.sector(4) == pattern(128 * SECTOR, 3)[4 * SECTOR:5 * SECTOR]
    env.close()
