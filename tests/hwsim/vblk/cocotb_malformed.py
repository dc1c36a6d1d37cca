"""Malformed driver input: the controller completes with IOERR or sets DEVICE_NEEDS_RESET, never hangs.

The policy is the behavioural model's (and QEMU's): a chain that breaks the virtqueue rules sets
DEVICE_NEEDS_RESET; a well-formed chain the request cannot use completes with IOERR. Each case checks the
outcome and then that the device still works (after a reset where one is needed).
"""

from __future__ import annotations

from collections.abc import Callable

import cocotb
import numpy as np
from rtl_helpers import TIMEOUT_MS, make, pattern
from vblk_driver import (
    DESC,
    F_FLUSH,
    F_INDIRECT,
    F_VERSION_1,
    INDIRECT,
    INTERRUPT_ACK,
    INTERRUPT_STATUS,
    NEEDS_RESET,
    NEXT,
    QUEUE_DESC,
    QUEUE_NUM,
    S_IOERR,
    SECTOR,
    STATUS,
    T_IN,
    T_OUT,
    WRITE,
    MiniBlk,
)

from hwsim.vblk.env import HOST_BASE, HOST_SIZE, ShmLib

OUTSIDE_LOW = 0x0000_1000
OUTSIDE_HIGH = HOST_BASE + HOST_SIZE


def header(drv: MiniBlk, rtype: int = T_IN, sector: int = 0) -> None:
    drv.mem(drv.header_pa, 16)[:] = np.frombuffer(
        np.array([rtype, 0, sector & 0xFFFF_FFFF, sector >> 32], "<u4").tobytes(), np.uint8)
    drv.mem(drv.status_pa, 1)[0] = 0xFF


def expect_ioerr(drv: MiniBlk) -> None:
    used = drv.wait_used()
    assert used.id == 0 and used.len == 1, used
    assert drv.mem(drv.status_pa, 1)[0] == S_IOERR
    assert drv.regs.read32(STATUS) & NEEDS_RESET == 0
    assert drv.read(1) == bytes(SECTOR), "the queue keeps working"


def expect_needs_reset(drv: MiniBlk) -> None:
    before = drv.used_idx()
    drv.irq.wait(1e-3)
    assert drv.regs.read32(INTERRUPT_STATUS) == 2, "a configuration-change interrupt"
    assert drv.regs.read32(STATUS) & NEEDS_RESET
    drv.regs.write32(INTERRUPT_ACK, 2)
    drv.publish(0)                                   # halted: further notifications do nothing
    drv.regs.read32(STATUS)
    assert drv.used_idx() == before
    assert drv.regs.read32(INTERRUPT_STATUS) == 0
    drv.init()                                       # a reset brings the device back
    assert drv.read(1) == bytes(SECTOR)


async def check(dut, build: Callable[[MiniBlk], None], expect: Callable[[MiniBlk], None],
                qsize: int = 16, indirect: bool = False) -> None:
    env, drv = await make(dut, qsize=qsize)

    def body():
        drv.init((1 << F_VERSION_1) | (1 << F_FLUSH) | (1 << F_INDIRECT)) if indirect else drv.init()
        build(drv)
        expect(drv)

    await env.run(body)
    assert env.shm.stat(ShmLib.HOST, ShmLib.FAULTS) == 0, "the device never touched memory outside RAM"
    env.close()


def three(drv: MiniBlk, data_addr: int, data_len: int = SECTOR, data_flags: int = WRITE,
          hdr_addr: int | None = None, hdr_len: int = 16, status_addr: int | None = None) -> None:
    """header -> data -> status in descriptors 0, 1, 2, with the given overrides; then publish."""
    header(drv)
    drv.put_desc(0, drv.header_pa if hdr_addr is None else hdr_addr, hdr_len, NEXT, 1)
    drv.put_desc(1, data_addr, data_len, data_flags | NEXT, 2)
    drv.put_desc(2, drv.status_pa if status_addr is None else status_addr, 1, WRITE)
    drv.publish(0)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def data_buffer_below_host_ram_needs_reset(dut):
    """A data buffer below host RAM sets DEVICE_NEEDS_RESET (QEMU's policy: the chain breaks the virtqueue rules);
    after a reset the device serves the next read and touched no memory outside RAM."""
    await check(dut, lambda d: three(d, OUTSIDE_LOW), expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def data_buffer_above_host_ram_needs_reset(dut):
    """A data buffer above host RAM sets DEVICE_NEEDS_RESET (QEMU's policy: the chain breaks the virtqueue rules);
    after a reset the device serves the next read and touched no memory outside RAM."""
    await check(dut, lambda d: three(d, OUTSIDE_HIGH), expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def data_buffer_crossing_the_end_of_host_ram_needs_reset(dut):
    """A data buffer running off the end of host RAM sets DEVICE_NEEDS_RESET (QEMU's policy: the chain breaks the
    virtqueue rules); after a reset the device serves the next read and touched no memory outside RAM."""
    await check(dut, lambda d: three(d, OUTSIDE_HIGH - SECTOR // 2), expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def header_outside_host_ram_needs_reset(dut):
    """A header outside host RAM sets DEVICE_NEEDS_RESET (QEMU's policy: the chain breaks the virtqueue rules); after a
    reset the device serves the next read and touched no memory outside RAM."""
    await check(dut, lambda d: three(d, d.data_pa, hdr_addr=OUTSIDE_LOW), expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def header_shorter_than_16_bytes_needs_reset(dut):
    """An 8-byte header sets DEVICE_NEEDS_RESET (QEMU's policy: the chain breaks the virtqueue rules); after a reset
    the device serves the next read and touched no memory outside RAM."""
    def build(d: MiniBlk) -> None:
        header(d)
        d.put_desc(0, d.header_pa, 8, NEXT, 2)
        d.put_desc(2, d.status_pa, 1, WRITE)
        d.publish(0)

    await check(dut, build, expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def readable_descriptor_after_a_writable_one_needs_reset(dut):
    """A device-readable descriptor after a device-writable one sets DEVICE_NEEDS_RESET (QEMU's policy: the chain
    breaks the virtqueue rules); after a reset the device serves the next read and touched no memory outside RAM."""
    def build(d: MiniBlk) -> None:
        header(d)
        d.put_desc(0, d.header_pa, 16, NEXT, 1)
        d.put_desc(1, d.data_pa, SECTOR, NEXT | WRITE, 2)
        d.put_desc(2, d.data_pa + SECTOR, SECTOR, NEXT, 3)
        d.put_desc(3, d.status_pa, 1, WRITE)
        d.publish(0)

    await check(dut, build, expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def indirect_descriptor_without_the_feature_needs_reset(dut):
    """An INDIRECT descriptor although RING_INDIRECT_DESC was not negotiated sets DEVICE_NEEDS_RESET (QEMU's policy:
    the chain breaks the virtqueue rules); after a reset the device serves the next read and touched no memory
    outside RAM."""
    await check(dut, lambda d: three(d, d.data_pa, data_flags=WRITE | INDIRECT), expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def zero_length_data_descriptor_needs_reset(dut):
    """A zero-length data descriptor sets DEVICE_NEEDS_RESET (QEMU's policy: the chain breaks the virtqueue rules);
    after a reset the device serves the next read and touched no memory outside RAM."""
    await check(dut, lambda d: three(d, d.data_pa, data_len=0), expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def unaligned_data_buffer_is_ioerr(dut):
    """A data buffer not 4-byte aligned: the request completes IOERR, the device stays out of
    DEVICE_NEEDS_RESET, touched no memory outside RAM, and serves the next read."""
    await check(dut, lambda d: three(d, d.data_pa + 2), expect_ioerr)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def more_segments_than_seg_max_is_ioerr(dut):
    """A write of 31 data segments (33 descriptors, over seg_max): the request completes IOERR, the device
    stays out of DEVICE_NEEDS_RESET, touched no memory outside RAM, and serves the next read."""
    def build(d: MiniBlk) -> None:
        header(d, T_OUT)
        d.put_desc(0, d.header_pa, 16, NEXT, 1)
        for i in range(1, 32):                       # 31 data segments + header + status = 33 > 32
            d.put_desc(i, d.data_pa + (i - 1) * SECTOR, SECTOR, NEXT, i + 1)
        d.put_desc(32, d.status_pa, 1, WRITE)
        d.publish(0)

    await check(dut, build, expect_ioerr, qsize=64)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def rejected_write_leaves_the_media_untouched(dut):
    """An OUT whose second data segment breaks the alignment contract completes IOERR and writes nothing at
    all, not even its good first segment: the sector reads zero, also on the media after FLUSH."""
    env, drv = await make(dut)

    def body():
        drv.init()
        drv.mem(drv.data_pa, SECTOR)[:] = np.frombuffer(pattern(SECTOR, 1), np.uint8)
        header(drv, T_OUT, 9)
        drv.put_desc(0, drv.header_pa, 16, NEXT, 1)
        drv.put_desc(1, drv.data_pa, SECTOR, NEXT, 2)
        drv.put_desc(2, drv.data_pa + SECTOR + 2, SECTOR, NEXT, 3)     # breaks the alignment contract
        drv.put_desc(3, drv.status_pa, 1, WRITE)
        drv.publish(0)
        expect_ioerr(drv)
        drv.flush()
        return drv.read(9)

    assert await env.run(body) == bytes(SECTOR)
    assert env.media.sector(9) == bytes(SECTOR)
    env.close()


# ---- cases where no status byte can be trusted: DEVICE_NEEDS_RESET --------------------------------------

@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def chain_without_a_status_descriptor_needs_reset(dut):
    """A chain whose last descriptor is device-readable (no status byte): no status byte can be trusted: the
    device sets DEVICE_NEEDS_RESET with a configuration interrupt, ignores further notifications, touched no
    memory outside RAM, and works again after a reset."""
    def build(d: MiniBlk) -> None:
        header(d, T_OUT)
        d.put_desc(0, d.header_pa, 16, NEXT, 1)
        d.put_desc(1, d.data_pa, SECTOR, 0)          # last descriptor is device-readable
        d.publish(0)

    await check(dut, build, expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def status_outside_host_ram_needs_reset(dut):
    """A status byte outside host RAM: no status byte can be trusted: the device sets DEVICE_NEEDS_RESET
    with a configuration interrupt, ignores further notifications, touched no memory outside RAM, and works
    again after a reset."""
    await check(dut, lambda d: three(d, d.data_pa, status_addr=OUTSIDE_HIGH), expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def chain_looping_back_to_its_head_needs_reset(dut):
    """A chain whose next field loops back to its head: no status byte can be trusted: the device sets
    DEVICE_NEEDS_RESET with a configuration interrupt, ignores further notifications, touched no memory
    outside RAM, and works again after a reset."""
    def build(d: MiniBlk) -> None:
        header(d)
        d.put_desc(0, d.header_pa, 16, NEXT, 1)
        d.put_desc(1, d.data_pa, SECTOR, NEXT | WRITE, 0)
        d.publish(0)

    await check(dut, build, expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def descriptor_chained_to_itself_needs_reset(dut):
    """A descriptor whose next field names itself: no status byte can be trusted: the device sets
    DEVICE_NEEDS_RESET with a configuration interrupt, ignores further notifications, touched no memory
    outside RAM, and works again after a reset."""
    def build(d: MiniBlk) -> None:
        header(d)
        d.put_desc(0, d.header_pa, 16, NEXT, 0)
        d.publish(0)

    await check(dut, build, expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def chain_longer_than_the_queue_needs_reset(dut):
    """A chain that cycles through all 4 descriptors of a 4-entry queue: no status byte can be trusted: the
    device sets DEVICE_NEEDS_RESET with a configuration interrupt, ignores further notifications, touched no
    memory outside RAM, and works again after a reset."""
    def build(d: MiniBlk) -> None:                   # 0 -> 1 -> 2 -> 3 -> 0 ... in a queue of 4
        header(d)
        for i in range(4):
            d.put_desc(i, d.data_pa + i * 16, 16, NEXT, (i + 1) % 4)
        d.publish(0)

    await check(dut, build, expect_needs_reset, qsize=4)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def next_beyond_the_queue_needs_reset(dut):
    """A next field beyond the queue size: no status byte can be trusted: the device sets DEVICE_NEEDS_RESET
    with a configuration interrupt, ignores further notifications, touched no memory outside RAM, and works
    again after a reset."""
    def build(d: MiniBlk) -> None:
        header(d)
        d.put_desc(0, d.header_pa, 16, NEXT, 16)
        d.publish(0)

    await check(dut, build, expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def head_beyond_the_queue_needs_reset(dut):
    """An avail entry naming a head beyond the queue size: no status byte can be trusted: the device sets
    DEVICE_NEEDS_RESET with a configuration interrupt, ignores further notifications, touched no memory
    outside RAM, and works again after a reset."""
    def build(d: MiniBlk) -> None:
        header(d)
        d.publish(40)

    await check(dut, build, expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def avail_index_running_ahead_by_more_than_the_queue_needs_reset(dut):
    """avail.idx 17 entries ahead of the device in a queue of 16: no status byte can be trusted: the device
    sets DEVICE_NEEDS_RESET with a configuration interrupt, ignores further notifications, touched no memory
    outside RAM, and works again after a reset."""
    def build(d: MiniBlk) -> None:
        three(d, d.data_pa)
        d.wait_used()
        d.publish(0, bump=17)                        # 17 new entries in a queue of 16

    await check(dut, build, expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def queue_size_not_a_power_of_two_needs_reset(dut):
    """A queue enabled with 12 entries (not a power of two) and then notified: no status byte can be
    trusted: the device sets DEVICE_NEEDS_RESET with a configuration interrupt, ignores further
    notifications, touched no memory outside RAM, and works again after a reset."""
    def build(d: MiniBlk) -> None:
        d.regs.write32(0x44, 0)                      # QueueReady = 0 to change the size
        d.regs.write32(QUEUE_NUM, 12)
        d.regs.write32(0x44, 1)
        three(d, d.data_pa)

    await check(dut, build, expect_needs_reset)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def descriptor_table_outside_host_ram_needs_reset(dut):
    """A descriptor table outside host RAM: no status byte can be trusted: the device sets
    DEVICE_NEEDS_RESET with a configuration interrupt, ignores further notifications, touched no memory
    outside RAM, and works again after a reset."""
    def build(d: MiniBlk) -> None:
        d.regs.write32(0x44, 0)
        d.regs.write32(QUEUE_DESC, OUTSIDE_HIGH & 0xFFFF_FFFF)
        d.regs.write32(0x44, 1)
        three(d, d.data_pa)

    await check(dut, build, expect_needs_reset)


# ---- indirect tables that cannot be walked ------------------------------------------------------------

def via_indirect(d: MiniBlk, entries: list[tuple[int, int, int, int]], flags: int = INDIRECT,
                 length: int | None = None) -> None:
    header(d)
    pa = d.alloc(16 * max(1, len(entries)), 16)
    table = d.mem(pa, 16 * max(1, len(entries))).view(DESC)
    for i, entry in enumerate(entries):
        table[i] = entry
    d.put_desc(0, pa, 16 * len(entries) if length is None else length, flags, 1)
    d.publish(0)


def simple_entries(d: MiniBlk) -> list[tuple[int, int, int, int]]:
    return [(d.header_pa, 16, NEXT, 1), (d.data_pa, SECTOR, NEXT | WRITE, 2), (d.status_pa, 1, WRITE, 0)]


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def indirect_with_next_needs_reset(dut):
    """INDIRECT together with NEXT sets DEVICE_NEEDS_RESET (QEMU's policy: the chain breaks the virtqueue rules); after
    a reset the device serves the next read and touched no memory outside RAM."""
    await check(dut, lambda d: via_indirect(d, simple_entries(d), INDIRECT | NEXT), expect_needs_reset,
                indirect=True)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def nested_indirect_table_needs_reset(dut):
    """An INDIRECT descriptor inside an indirect table sets DEVICE_NEEDS_RESET (QEMU's policy: the chain breaks the
    virtqueue rules); after a reset the device serves the next read and touched no memory outside RAM."""
    def build(d: MiniBlk) -> None:
        inner = d.alloc(48, 16)
        via_indirect(d, [(d.header_pa, 16, NEXT, 1), (inner, 48, INDIRECT, 0)])

    await check(dut, build, expect_needs_reset, indirect=True)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def indirect_table_not_a_multiple_of_16_bytes_needs_reset(dut):
    """An indirect table of 40 bytes (not a multiple of 16) sets DEVICE_NEEDS_RESET (QEMU's policy: the chain breaks
    the virtqueue rules); after a reset the device serves the next read and touched no memory outside RAM."""
    await check(dut, lambda d: via_indirect(d, simple_entries(d), length=40), expect_needs_reset,
                indirect=True)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def next_beyond_the_indirect_table_needs_reset(dut):
    """A next index beyond the indirect table sets DEVICE_NEEDS_RESET (QEMU's policy: the chain breaks the virtqueue
    rules); after a reset the device serves the next read and touched no memory outside RAM."""
    def build(d: MiniBlk) -> None:
        entries = simple_entries(d)
        entries[1] = (d.data_pa, SECTOR, NEXT | WRITE, 3)      # a table of 3 entries
        via_indirect(d, entries)

    await check(dut, build, expect_needs_reset, indirect=True)


@cocotb.test(timeout_time=TIMEOUT_MS, timeout_unit="ms")
async def loop_inside_an_indirect_table_needs_reset(dut):
    """A NEXT loop inside an indirect table sets DEVICE_NEEDS_RESET (QEMU's policy: the chain breaks the virtqueue
    rules); after a reset the device serves the next read and touched no memory outside RAM."""
    def build(d: MiniBlk) -> None:
        via_indirect(d, [(d.header_pa, 16, NEXT, 1), (d.data_pa, SECTOR, NEXT | WRITE, 0)])

    await check(dut, build, expect_needs_reset, indirect=True)
