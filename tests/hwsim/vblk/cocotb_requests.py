"""Requests through the synchronous driver running under the greenlet bridge (cocotb tests)."""

from __future__ import annotations

import cocotb
import numpy as np
import pytest
from rtl_helpers import TIMEOUT_MS, make, pattern
from vblk_driver import (
    DESC,
    F_EVENT_IDX,
    F_FLUSH,
    F_INDIRECT,
    F_RO,
    F_VERSION_1,
    INDIRECT,
    INTERRUPT_ACK,
    INTERRUPT_STATUS,
    NEXT,
    QUEUE_NOTIFY,
    QUEUE_READY,
    S_IOERR,
    S_OK,
    S_UNSUPP,
    SECTOR,
    T_GET_ID,
    T_IN,
    T_OUT,
    WRITE,
    BlkError,
)

from hwsim.media import BlockMedia
from hwsim.vblk.env import ShmLib


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def written_sector_reads_back_and_reaches_the_media_on_flush(dut):
    """A written sector reads back (from the write buffer) with its neighbours still zero, is on the media
    after FLUSH, and no DMA access faulted."""
    env, drv = await make(dut)

    def io():
        drv.init()
        data = pattern(SECTOR, 1)
        drv.write(5, data)
        assert drv.read(5) == data                   # served from the write buffer
        assert drv.read(4) == bytes(SECTOR)          # neighbours untouched
        assert drv.read(6) == bytes(SECTOR)
        drv.flush()
        return data

    data = await env.run(io)
    assert env.media.sector(5) == data
    assert env.shm.stat(ShmLib.HOST, ShmLib.FAULTS) == 0
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def reads_return_what_is_on_the_media(dut):
    """Reads of eight sectors and of the last sector return exactly the bytes preloaded on the media."""
    media = BlockMedia(size=256 * SECTOR)
    media.fill(0, pattern(256 * SECTOR, 2))
    env, drv = await make(dut, media=media)

    def io():
        drv.init()
        return drv.read(10, 8), drv.read(255)

    eight, last = await env.run(io)
    assert eight == media.sector(10, 8)
    assert last == media.sector(255)
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def writes_beyond_the_buffer_reach_the_media_before_flush(dut):
    """16 sectors through an 8-line write buffer read back whole; the eight evicted lines are on the media
    before any FLUSH (no sync yet), and after FLUSH all 16 are, with one sync."""
    env, drv = await make(dut)
    data = pattern(16 * SECTOR, 3)

    def io():
        drv.init()
        drv.set_writeback(True)
        drv.write(100, data)
        return drv.read(100, 16)

    assert await env.run(io) == data
    on_media = sum(env.media.sector(100 + i) == data[i * SECTOR:(i + 1) * SECTOR] for i in range(16))
    assert on_media == 8, "eight evicted lines are durable, eight still buffered"
    assert env.shm.stat(ShmLib.MEDIA, ShmLib.SYNCS) == 0
    await env.run(drv.flush)
    assert env.media.sector(100, 16) == data
    assert env.shm.stat(ShmLib.MEDIA, ShmLib.SYNCS) == 1
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def writethrough_writes_reach_the_media_without_flush(dut):
    """Once the driver turns writeback off, a write replaces the buffered copy of its sectors and is on the
    media without a FLUSH."""
    env, drv = await make(dut)
    data = pattern(2 * SECTOR, 4)

    def io():
        drv.init()
        drv.set_writeback(True)
        drv.write(20, pattern(SECTOR, 9))            # buffered (writeback)
        syncs = env.shm.stat(ShmLib.MEDIA, ShmLib.SYNCS)
        drv.set_writeback(False)
        drv.write(20, data)                          # writethrough: replaces the buffered copy too
        return syncs, env.shm.stat(ShmLib.MEDIA, ShmLib.SYNCS), drv.read(20, 2)

    syncs_wb, syncs_wt, got = await env.run(io)
    assert got == data
    assert env.media.sector(20, 2) == data           # on the media without a FLUSH
    assert (syncs_wb, syncs_wt) == (0, 1), "a writethrough OUT completes after a media sync (5.2.6)"
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def used_lengths_count_device_written_bytes_and_get_id_returns_the_serial(dut):
    """used.len counts the bytes the device wrote, status included (2 x 512 + 1 for an IN, 1 for an OUT, 21
    for GET_ID); GET_ID returns the 20-byte serial, truncated to a shorter buffer."""
    env, drv = await make(dut)

    def io():
        drv.init()
        st_in, _, used_in = drv.request(T_IN, 0, in_len=2 * SECTOR)
        st_out, _, used_out = drv.request(T_OUT, 0, out=bytes(SECTOR))
        st_id, ident, used_id = drv.request(T_GET_ID, in_len=20)
        st_id8, ident8, used_id8 = drv.request(T_GET_ID, in_len=8)   # short buffer: truncated
        st_bad, _, used_bad = drv.request(T_IN, drv.capacity(), in_len=2 * SECTOR)  # a failed IN
        return (st_in, used_in.len, st_out, used_out.len, st_id, ident, used_id.len, st_id8, ident8,
                used_id8.len, st_bad, used_bad.len)

    assert await env.run(io) == (S_OK, 2 * SECTOR + 1, S_OK, 1, S_OK, b"mmiotk-vblk-rtl-0001", 21,
                                 S_OK, b"mmiotk-v", 9, S_IOERR, 1)
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def bad_requests_complete_unsupp_or_ioerr_and_write_nothing(dut):
    """DISCARD and unknown types complete UNSUPP; requests at or across the capacity, with a huge sector or
    a partial sector complete IOERR (and the test driver raises); the last sector reads OK; the rejected
    write left the media untouched."""
    env, drv = await make(dut, media_sectors=64)

    def io():
        drv.init()
        results = {
            "discard": drv.request(11, 0)[0],
            "unknown": drv.request(0x42, 0)[0],
            "at_capacity": drv.request(T_IN, 64, in_len=SECTOR)[0],
            "across_end": drv.request(T_OUT, 63, out=bytes(2 * SECTOR))[0],
            "sector_hi": drv.request(T_IN, 1 << 40, in_len=SECTOR)[0],
            "partial_sector": drv.request(T_IN, 0, in_len=100)[0],
            "last_sector": drv.request(T_IN, 63, in_len=SECTOR)[0],
        }
        with pytest.raises(BlkError) as err:
            drv.read(64)
        results["raised"] = err.value.status
        return results

    assert await env.run(io) == {"discard": S_UNSUPP, "unknown": S_UNSUPP, "at_capacity": S_IOERR,
                                 "across_end": S_IOERR, "sector_hi": S_IOERR, "partial_sector": S_IOERR,
                                 "last_sector": S_OK, "raised": S_IOERR}
    assert env.media.sector(63) == bytes(SECTOR), "a rejected write wrote nothing"
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def flush_without_the_feature_completes_ok(dut):
    """With neither FLUSH nor CONFIG_WCE negotiated the device writes through: the write is on the media and
    a FLUSH request still completes OK."""
    env, drv = await make(dut)

    def io():
        drv.negotiate(1 << F_VERSION_1)
        drv.setup_queue()
        drv.regs.write32(0x70, 0xF)
        drv.write(1, pattern(SECTOR, 5))            # neither FLUSH nor CONFIG_WCE: writethrough
        return drv.request(4)[0]

    assert await env.run(io) == S_OK
    assert env.media.sector(1) == pattern(SECTOR, 5)
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def no_interrupt_flag_completes_with_the_line_low(dut):
    """With VIRTQ_AVAIL_F_NO_INTERRUPT set the request completes (used.idx 1, the driver polls) while
    InterruptStatus stays 0 and the line stays low."""
    env, drv = await make(dut)

    def io():
        drv.init((1 << F_VERSION_1) | (1 << F_FLUSH))
        drv.avail[0] = 1
        drv.mem(drv.header_pa, 16)[:] = 0
        drv.put_desc(0, drv.header_pa, 16, NEXT, 2)
        drv.put_desc(2, drv.status_pa, 1, WRITE)
        drv.publish(0)
        for _ in range(100):
            if drv.used_idx() == 1:
                break
            env.space.sleep(1e-6)
        return drv.used_idx(), drv.regs.read32(INTERRUPT_STATUS)

    assert await env.run(io) == (1, 0)
    assert dut.irq.value == 0
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def interrupts_reenabled_mid_request_are_not_missed(dut):
    """A polling driver turns interrupts back on while a request runs, then sleeps on the line: the device
    decides about the interrupt after writing used.idx, so the interrupt comes and used.idx is 1."""
    env, drv = await make(dut)

    def io():
        drv.init()
        drv.avail[0] = 1                             # NO_INTERRUPT while spinning
        drv.mem(drv.header_pa, 16)[:] = 0
        drv.put_desc(0, drv.header_pa, 16, NEXT, 1)
        drv.put_desc(1, drv.data_pa, 8 * SECTOR, NEXT | WRITE, 2)
        drv.put_desc(2, drv.status_pa, 1, WRITE)
        drv.publish(0)
        env.space.sleep(200e-9)                      # the device is busy with the request by now
        assert drv.used_idx() == 0
        drv.avail[0] = 0                             # going to sleep: interrupts on
        drv.irq.wait(100e-6)                         # raises IrqTimeoutError if the device skipped it
        return drv.used_idx()

    assert await env.run(io) == 1
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def requests_keep_completing_as_the_ring_wraps(dut):
    """Eleven writes and eleven reads through a 4-entry ring all complete with the right data: used.idx
    reaches 22 across several wraps."""
    env, drv = await make(dut, qsize=4)

    def io():
        drv.init()
        for i in range(11):
            drv.write(i, pattern(SECTOR, i))
        return [drv.read(i) == pattern(SECTOR, i) for i in range(11)], drv.used_idx()

    ok, used = await env.run(io)
    assert all(ok) and used == 22
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def back_pressure_loses_and_duplicates_nothing(dut):
    """Host and media ports refuse half of the cycles: the written sectors read back and are on the media
    after FLUSH, and GET_ID still returns the serial."""
    env, drv = await make(dut, stall=128)
    data = pattern(12 * SECTOR, 6)

    def io():
        drv.init()
        drv.write(30, data)
        drv.flush()
        return drv.read(30, 12), drv.get_id()

    got, ident = await env.run(io)
    assert got == data and ident == b"mmiotk-vblk-rtl-0001"
    assert env.media.sector(30, 12) == data
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def any_descriptor_layout_is_served(dut):
    """A header split over two descriptors, and data sharing its last descriptor with the status byte (4n+1
    bytes): the read completes OK with the media's data and used.len 2 x 512 + 1."""
    env, drv = await make(dut)
    env.media.fill(40, pattern(2 * SECTOR, 7))

    def io():
        drv.init()
        hdr, buf = drv.header_pa, drv.data_pa
        drv.mem(hdr, 16)[:] = np.frombuffer(np.array([T_IN, 0, 40, 0], "<u4").tobytes(), np.uint8)
        drv.put_desc(0, hdr, 8, NEXT, 3)
        drv.put_desc(3, hdr + 8, 8, NEXT, 5)
        drv.put_desc(5, buf, SECTOR, NEXT | WRITE, 6)
        drv.put_desc(6, buf + SECTOR, SECTOR + 1, WRITE)
        drv.mem(buf + 2 * SECTOR, 1)[0] = 0xFF
        drv.publish(0)
        used = drv.wait_used()
        return used.len, int(drv.mem(buf + 2 * SECTOR, 1)[0]), bytes(drv.mem(buf, 2 * SECTOR))

    used_len, status, data = await env.run(io)
    assert (used_len, status, data) == (2 * SECTOR + 1, S_OK, pattern(2 * SECTOR, 7))
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def virtio_reset_restarts_the_rings_and_keeps_the_write_buffer(dut):
    """After a virtio reset (Status 0) and a new initialisation used.idx starts again at 0, and a write
    buffered before the reset still reads back."""
    env, drv = await make(dut)

    def io():
        drv.init()
        drv.set_writeback(True)
        drv.write(3, pattern(SECTOR, 8))
        drv.init()                                   # Status=0, renegotiate, new rings
        assert drv.used_idx() == 0
        return drv.read(3)                           # the write buffer survived the virtio reset

    assert await env.run(io) == pattern(SECTOR, 8)
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def every_completion_is_acknowledged_and_the_line_ends_low(dut):
    """After each request InterruptStatus reads 0 (the driver acknowledged it), a further acknowledgement
    changes nothing, and the line ends low."""
    env, drv = await make(dut)

    def io():
        drv.init()
        seen = []
        for lba in range(3):
            drv.write(lba, bytes(SECTOR))
            seen.append(drv.regs.read32(INTERRUPT_STATUS))   # acknowledged by wait_used
        drv.regs.write32(INTERRUPT_ACK, 3)
        return seen

    assert await env.run(io) == [0, 0, 0]
    assert dut.irq.value == 0
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def read_only_input(dut):
    """Read-only is an input of the controller (sampled at reset), not a build parameter."""
    media = BlockMedia(size=64 * SECTOR)
    media.fill(0, pattern(64 * SECTOR, 3))
    env, drv = await make(dut, media=media, readonly=True)

    def io():
        features = drv.init()
        out = drv.request(T_OUT, 4, out=bytes(SECTOR))[0]
        return features, out, drv.read(4)

    features, out, data = await env.run(io)
    assert features >> F_RO & 1, "VIRTIO_BLK_F_RO offered"
    assert out == S_IOERR
    assert data == media.sector(4) == pattern(64 * SECTOR, 3)[4 * SECTOR:5 * SECTOR]
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def device_range(dut):
    """The device is sectors [100, 150) of its backing store: capacity 50, sector 0 is sector 100."""
    media = BlockMedia(size=256 * SECTOR)
    media.fill(0, pattern(256 * SECTOR, 5))
    env, drv = await make(dut, media=media, media_range=(100, 50))

    def io():
        drv.init()
        drv.set_writeback(True)
        drv.write(49, pattern(SECTOR, 6))
        drv.write(10, pattern(SECTOR, 7))
        drv.flush()                                  # the write buffer's lines land in the range too
        past_end = drv.request(T_IN, 50, in_len=SECTOR)[0]
        return drv.capacity(), drv.read(0, 2), past_end

    capacity, first, past_end = await env.run(io)
    before = pattern(256 * SECTOR, 5)
    assert capacity == 50 and past_end == S_IOERR
    assert first == before[100 * SECTOR:102 * SECTOR]
    assert media.sector(149) == pattern(SECTOR, 6) and media.sector(110) == pattern(SECTOR, 7)
    untouched = [s for s in range(256) if s not in (110, 149)]
    assert all(media.sector(s) == before[s * SECTOR:(s + 1) * SECTOR] for s in untouched)
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def queue_ready_zero_stops_ring_access(dut):
    """QueueReady=0 mid-request: from the write on, the device touches neither rings nor buffers."""
    env, drv = await make(dut, stall=128)

    def io():
        drv.init()
        drv.mem(drv.header_pa, 16)[:] = 0            # IN of 64 sectors from sector 0
        drv.put_desc(0, drv.header_pa, 16, NEXT, 1)
        drv.put_desc(1, drv.data_pa, 64 * SECTOR, NEXT | WRITE, 2)
        drv.put_desc(2, drv.status_pa, 1, WRITE)
        drv.mem(drv.status_pa, 1)[0] = 0xFF
        drv.publish(0)
        env.space.sleep(5e-6)                        # the data copy is under way
        drv.regs.write32(QUEUE_READY, 0)
        ready = drv.regs.read32(QUEUE_READY)
        writes = env.shm.stat(ShmLib.HOST, ShmLib.WRITES)
        reads = env.shm.stat(ShmLib.HOST, ShmLib.READS)
        env.space.sleep(200e-6)                      # far longer than the request would take
        after = (env.shm.stat(ShmLib.HOST, ShmLib.WRITES) - writes,
                 env.shm.stat(ShmLib.HOST, ShmLib.READS) - reads)
        stopped = (ready, after, drv.used_idx(), int(drv.mem(drv.status_pa, 1)[0]))
        drv.init()                                   # and the device works again
        return stopped, drv.read(3)

    stopped, data = await env.run(io)
    assert stopped == (0, (0, 0), 0, 0xFF)
    assert data == bytes(SECTOR)
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def queue_of_256(dut):
    """QueueNumMax is 256 (the seed's 64 and beyond): descriptors and ring slots up to 255 work."""
    env, drv = await make(dut, qsize=256)
    env.media.fill(8, pattern(SECTOR, 9))

    def io():
        drv.init()
        hdr = drv.mem(drv.header_pa, 16)
        hdr[:] = np.frombuffer(np.array([T_IN, 0, 8, 0], "<u4").tobytes(), np.uint8)
        drv.put_desc(253, drv.header_pa, 16, NEXT, 255)
        drv.put_desc(255, drv.data_pa, SECTOR, NEXT | WRITE, 254)
        drv.put_desc(254, drv.status_pa, 1, WRITE)
        for _ in range(3):
            drv.publish(253)
            used = drv.wait_used()
        return used.id, int(drv.mem(drv.status_pa, 1)[0]), bytes(drv.mem(drv.data_pa, SECTOR))

    assert await env.run(io) == (253, S_OK, pattern(SECTOR, 9))
    env.close()


def indirect_table(drv, entries: list[tuple[int, int, int, int]]) -> tuple[int, int]:
    """An indirect descriptor table in host RAM; its (address, length)."""
    pa = drv.alloc(16 * len(entries), 16)
    table = drv.mem(pa, 16 * len(entries)).view(DESC)
    for i, entry in enumerate(entries):
        table[i] = entry
    return pa, 16 * len(entries)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def indirect_descriptors(dut):
    """RING_INDIRECT_DESC: a chain that is one indirect table, and a direct header followed by an indirect
    descriptor (virtio 1.2, 2.7.5.3.2: the device must handle both)."""
    env, drv = await make(dut)
    env.media.fill(40, pattern(4 * SECTOR, 10))

    def io():
        features = drv.init((1 << F_VERSION_1) | (1 << F_FLUSH) | (1 << F_INDIRECT))
        hdr, buf, st = drv.header_pa, drv.data_pa, drv.status_pa
        drv.mem(hdr, 16)[:] = np.frombuffer(np.array([T_IN, 0, 40, 0], "<u4").tobytes(), np.uint8)
        results = []
        # 1: the whole chain in one table (WRITE on the indirect descriptor itself is ignored)
        pa, length = indirect_table(drv, [(hdr, 16, NEXT, 1), (buf, 2 * SECTOR, NEXT | WRITE, 2),
                                          (buf + 2 * SECTOR, 2 * SECTOR, NEXT | WRITE, 3), (st, 1, WRITE, 0)])
        drv.put_desc(0, pa, length, INDIRECT | WRITE)
        drv.publish(0)
        results.append((drv.wait_used().len, bytes(drv.mem(buf, 4 * SECTOR))))
        # 2: header direct, then an indirect descriptor holding the data and the status
        drv.mem(buf, 4 * SECTOR)[:] = 0
        pa, length = indirect_table(drv, [(buf, 4 * SECTOR, NEXT | WRITE, 1), (st, 1, WRITE, 0)])
        drv.put_desc(5, hdr, 16, NEXT, 6)
        drv.put_desc(6, pa, length, INDIRECT)
        drv.publish(5)
        results.append((drv.wait_used().len, bytes(drv.mem(buf, 4 * SECTOR))))
        return features, results, int(drv.mem(st, 1)[0])

    features, results, status = await env.run(io)
    assert features >> F_INDIRECT & 1
    assert results == [(4 * SECTOR + 1, pattern(4 * SECTOR, 10))] * 2
    assert status == S_OK
    env.close()


def queue_read(drv, slot: int, lba: int, count: int) -> int:
    """An IN of `count` sectors at `lba` in descriptors 3*slot.. (own header, data and status); returns
    the data address. Published without a notify."""
    base = drv.alloc(32 + count * SECTOR, 64)
    hdr, status, data = base, base + 16, base + 32
    drv.mem(hdr, 16)[:] = np.frombuffer(np.array([T_IN, 0, lba, 0], "<u4").tobytes(), np.uint8)
    drv.mem(status, 1)[0] = 0xFF
    drv.put_desc(3 * slot, hdr, 16, NEXT, 3 * slot + 1)
    drv.put_desc(3 * slot + 1, data, count * SECTOR, NEXT | WRITE, 3 * slot + 2)
    drv.put_desc(3 * slot + 2, status, 1, WRITE)
    drv.avail[2 + drv.avail_idx % drv.qsize] = 3 * slot
    drv.avail_idx = (drv.avail_idx + 1) & 0xFFFF
    drv.avail[1] = drv.avail_idx
    return data


def collect(drv, n: int) -> list[int]:
    """The heads of the next `n` used elements, in used-ring order."""
    heads: list[int] = []
    while len(heads) < n:
        heads.append(drv.wait_used(timeout=5e-3).id)
        while drv.used_idx() != drv.used_seen and len(heads) < n:
            slot = 4 + 8 * (drv.used_seen % drv.qsize)
            heads.append(int(drv.used[slot:slot + 4].view("<u4")[0]))
            drv.used_seen = (drv.used_seen + 1) & 0xFFFF
    return heads


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def completions_in_media_order(dut):
    """With a media latency growing with the sector, a read of sector 200 made available first completes
    after a read of sector 0 made available after it: completions follow the media, not the ring."""
    env, drv = await make(dut, qsize=16)
    env.media.fill(0, pattern(256 * SECTOR, 12))
    env.set_media_latency(10, per_sector=20)     # sector 200: 4,010 clocks; sector 0: 10

    def io():
        drv.init()
        slow = queue_read(drv, 0, 200, 1)
        fast = queue_read(drv, 1, 0, 1)
        drv.regs.write32(QUEUE_NOTIFY, 0)
        return collect(drv, 2), bytes(drv.mem(slow, SECTOR)), bytes(drv.mem(fast, SECTOR))

    order, slow, fast = await env.run(io)
    assert order == [3, 0], "the fast request completed first"
    assert slow == env.media.sector(200) and fast == env.media.sector(0)
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def requests_in_flight_overlap(dut):
    """Eight reads at once with a 3,000-clock media latency: the device keeps all eight in flight, so they
    take less than two latencies (one after another: eight); ten more than its contexts all complete too."""
    env, drv = await make(dut, qsize=64)
    env.media.fill(0, pattern(64 * SECTOR, 13))
    env.set_media_latency(3000)

    def io():
        drv.init()
        start = env.cycles
        addrs = [queue_read(drv, i, 2 * i, 2) for i in range(8)]
        drv.regs.write32(QUEUE_NOTIFY, 0)
        heads = collect(drv, 8)
        cycles = env.cycles - start
        more = [queue_read(drv, i, 2 * i, 2) for i in range(18)]
        drv.regs.write32(QUEUE_NOTIFY, 0)
        more_heads = collect(drv, 18)
        return cycles, sorted(heads), [bytes(drv.mem(a, 2 * SECTOR)) for a in addrs + more], sorted(more_heads)

    cycles, heads, data, more_heads = await env.run(io)
    assert heads == [3 * i for i in range(8)] and more_heads == [3 * i for i in range(18)]
    assert data == [env.media.sector(2 * i, 2) for i in [*range(8), *range(18)]]
    assert cycles < 2 * 3000, f"{cycles} clocks for eight reads: the media latencies did not overlap"
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def earlier_requests_complete_before_needs_reset(dut):
    """A good request still waiting for the media, then a malformed chain: the good one completes, then
    the device sets DEVICE_NEEDS_RESET (as the model does)."""
    env, drv = await make(dut, qsize=16)
    env.set_media_latency(2000)

    def io():
        drv.init()
        queue_read(drv, 0, 4, 1)
        drv.put_desc(9, drv.header_pa, 16, NEXT, 9)          # a NEXT loop
        drv.avail[2 + drv.avail_idx % drv.qsize] = 9
        drv.avail_idx += 1
        drv.avail[1] = drv.avail_idx
        drv.regs.write32(QUEUE_NOTIFY, 0)
        drv.irq.wait(1e-3)
        isr = drv.regs.read32(INTERRUPT_STATUS)
        while not isr & 2:
            drv.regs.write32(INTERRUPT_ACK, isr)
            drv.irq.wait(1e-3)
            isr = drv.regs.read32(INTERRUPT_STATUS)
        return drv.used_idx(), drv.regs.read32(0x70) & 0x40

    used, needs_reset = await env.run(io)
    assert used == 1 and needs_reset
    env.close()


def status_only_chains(drv, n: int) -> None:
    """n status-only IN requests (header, status byte) in descriptors 2i, 2i + 1; nothing made available."""
    area = drv.alloc(32 * n, 16)
    for i in range(n):
        drv.mem(area + 32 * i, 16)[:] = 0                        # VIRTIO_BLK_T_IN, sector 0
        drv.put_desc(2 * i, area + 32 * i, 16, NEXT, 2 * i + 1)
        drv.put_desc(2 * i + 1, area + 32 * i + 16, 1, WRITE)


def spin_until_used(env, drv, count: int) -> None:
    for _ in range(2000):
        if drv.used_idx() == count:
            return
        env.space.sleep(1e-6)
    raise AssertionError(f"used.idx is {drv.used_idx()}, expected {count}")


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def event_idx_interrupts_only_when_the_used_entry_used_event_names_is_filled(dut):
    """EVENT_IDX negotiated, used_event = 2: the completions into used entries 0 and 1 raise no interrupt,
    the one into entry 2 does, although avail.flags says NO_INTERRUPT (ignored with EVENT_IDX); a used_event
    already passed raises none."""
    env, drv = await make(dut)

    def io():
        features = drv.init((1 << F_VERSION_1) | (1 << F_FLUSH) | (1 << F_EVENT_IDX))
        assert features >> F_EVENT_IDX & 1, "EVENT_IDX offered and accepted"
        status_only_chains(drv, 4)
        drv.set_used_event(2)
        seen = []
        for i in range(4):
            if i == 2:
                drv.avail[0] = 1                                 # NO_INTERRUPT: ignored
            drv.publish(2 * i)
            spin_until_used(env, drv, i + 1)
            env.space.sleep(1e-6)                                # the interrupt decision follows used.idx
            isr = drv.regs.read32(INTERRUPT_STATUS)
            seen.append(isr)
            drv.regs.write32(INTERRUPT_ACK, isr)
        return seen

    assert await env.run(io) == [0, 0, 1, 0]
    env.close()


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def event_idx_avail_event_asks_for_notifies_only_when_idle_and_no_chain_is_missed(dut):
    """EVENT_IDX: with every context waiting on a slow media the device has not moved avail_event on, so a
    driver following vring_need_event adds two more chains without a notify; the device still takes them
    when contexts free up (it reads avail.idx again before going idle), all 14 complete, and avail_event
    ends at 14, the next entry it wants to hear about."""
    env, drv = await make(dut, qsize=32)
    env.set_media_latency(3000)

    def io():
        drv.init((1 << F_VERSION_1) | (1 << F_EVENT_IDX))
        status_only_chains(drv, 14)
        for i in range(12):
            drv.make_available(2 * i)
        drv.regs.write32(QUEUE_NOTIFY, 0)
        env.space.sleep(2e-6)                                    # 8 contexts taken, all waiting on the media
        assert drv.used_idx() == 0
        old, event = drv.avail_idx, drv.avail_event()
        drv.make_available(24)
        drv.make_available(26)
        # vring_need_event(avail_event, new, old): notify only if avail_event is in [old, new)
        need = (drv.avail_idx - event - 1) & 0xFFFF < (drv.avail_idx - old) & 0xFFFF
        spin_until_used(env, drv, 14)
        env.space.sleep(1e-6)
        return event, need, drv.avail_event()

    event, need, final = await env.run(io)
    assert event < 12 and not need, f"avail_event {event} asked for a notify while the device was busy"
    assert final == 14
    env.close()
