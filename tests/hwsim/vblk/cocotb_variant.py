"""The other build: the legacy interface (LEGACY=1: virtio-mmio Version 1), the 64-bit datapath (DATA_W=64),
without FLUSH or CONFIG_WCE."""

from __future__ import annotations

import cocotb
import numpy as np
from rtl_helpers import TIMEOUT_MS, make, pattern
from vblk_driver import (
    CFG_WRITEBACK,
    DEVICE_FEATURES,
    DEVICE_FEATURES_SEL,
    DRIVER_OK,
    F_BLK_SIZE,
    F_EVENT_IDX,
    F_INDIRECT,
    F_SEG_MAX,
    F_TOPOLOGY,
    FEATURES_OK,
    INTERRUPT_ACK,
    INTERRUPT_STATUS,
    NEXT,
    QUEUE_PFN,
    QUEUE_READY,
    S_IOERR,
    S_OK,
    S_UNSUPP,
    SECTOR,
    STATUS,
    T_FLUSH,
    T_GET_ID,
    T_IN,
    VERSION,
    WRITE,
)

from hwsim.media import BlockMedia

OFFERED = (1 << F_SEG_MAX) | (1 << F_BLK_SIZE) | (1 << F_TOPOLOGY) | (1 << F_INDIRECT) | (1 << F_EVENT_IDX)


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
        drv.write(4, pattern(SECTOR, 4))
        flush = drv.request(T_FLUSH)[0]
        return reads, flush, drv.used_pa - drv.desc_pa

    before = pattern(128 * SECTOR, 3)
    reads, flush, used_off = await env.run(body)
    assert reads == [before[4 * SECTOR:6 * SECTOR], before[100 * SECTOR:102 * SECTOR]]
    assert flush == S_UNSUPP, "no FLUSH in this build"
    assert used_off == 768                           # 16 * 32 + 6 + 64 = 582, up to 256
    assert media.sector(4) == pattern(SECTOR, 4), "writethrough: on the media at completion"
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def wide_datapath_transfers(dut):
    """DATA_W=64: 8-byte words on the host and media ports, under back-pressure, in any 8-byte layout."""
    env, drv = await make(dut, stall=96)
    data = pattern(24 * SECTOR, 5)

    def body():
        drv.init_legacy()
        drv.write(40, data)
        whole = drv.read(40, 24)
        hdr, buf = drv.header_pa, drv.data_pa                      # header 8 + 8, data over two buffers,
        drv.mem(hdr, 16)[:] = np.frombuffer(np.array([T_IN, 0, 41, 0], "<u4").tobytes(), np.uint8)
        drv.put_desc(0, hdr, 8, NEXT, 3)                           # the last with the status (8n + 1)
        drv.put_desc(3, hdr + 8, 8, NEXT, 5)
        drv.put_desc(5, buf, 24, NEXT | WRITE, 6)
        drv.put_desc(6, buf + 24, 2 * SECTOR - 24 + 1, WRITE)
        drv.mem(buf + 2 * SECTOR, 1)[0] = 0xFF
        drv.publish(0)
        used = drv.wait_used()
        layout = (used.len, int(drv.mem(buf + 2 * SECTOR, 1)[0]), bytes(drv.mem(buf, 2 * SECTOR)))
        return whole, layout

    whole, layout = await env.run(body)
    assert whole == data and env.media.sector(40, 24) == data
    assert layout == (2 * SECTOR + 1, S_OK, data[SECTOR:3 * SECTOR])
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def wide_datapath_alignment_and_get_id(dut):
    """DATA_W=64: a 4-byte-aligned data buffer breaks the 8-byte contract of IN/OUT (IOERR, used len 1);
    GET_ID is written 32 bits at a time, so a 20-byte or 12-byte ID buffer still works."""
    env, drv = await make(dut)

    def body():
        drv.init_legacy()
        drv.mem(drv.header_pa, 16)[:] = np.frombuffer(np.array([T_IN, 0, 0, 0], "<u4").tobytes(), np.uint8)
        drv.put_desc(0, drv.header_pa, 16, NEXT, 1)
        drv.put_desc(1, drv.data_pa + 4, SECTOR, NEXT | WRITE, 2)
        drv.put_desc(2, drv.status_pa, 1, WRITE)
        drv.publish(0)
        used = drv.wait_used()
        misaligned = (int(drv.mem(drv.status_pa, 1)[0]), used.len)
        st20, id20, used20 = drv.request(T_GET_ID, in_len=20)
        st12, id12, used12 = drv.request(T_GET_ID, in_len=12)
        return misaligned, (st20, id20, used20.len), (st12, id12, used12.len)

    misaligned, full, short = await env.run(body)
    assert misaligned == (S_IOERR, 1)
    assert full == (S_OK, b"mmiotk-vblk-rtl-0001", 21)
    assert short == (S_OK, b"mmiotk-vblk-", 13)
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def legacy_wide_event_idx_used_event_and_avail_event(dut):
    """Legacy, 64-bit datapath: EVENT_IDX is negotiated in the 32 legacy feature bits; used_event (in the
    upper half of a 64-bit word) gates the interrupt to used entry 1, avail_event (upper lane) follows."""
    env, drv = await make(dut)

    def body():
        features = drv.init_legacy((1 << F_BLK_SIZE) | (1 << F_SEG_MAX) | (1 << F_EVENT_IDX))
        drv.set_used_event(1)
        seen = []
        for i in range(2):
            drv.mem(drv.header_pa, 16)[:] = 0
            drv.put_desc(0, drv.header_pa, 16, NEXT, 2)
            drv.put_desc(2, drv.status_pa, 1, WRITE)
            drv.publish(0)
            for _ in range(500):
                if drv.used_idx() == i + 1:
                    break
                env.space.sleep(1e-6)
            env.space.sleep(1e-6)
            isr = drv.regs.read32(INTERRUPT_STATUS)
            seen.append(isr)
            drv.regs.write32(INTERRUPT_ACK, isr)
        return features, seen, drv.used_idx(), drv.avail_event()

    features, seen, used, avail_event = await env.run(body)
    assert features >> F_EVENT_IDX & 1 and used == 2
    assert seen == [0, 1] and avail_event == 2
    env.close()
