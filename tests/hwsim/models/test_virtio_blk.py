"""The virtio-blk behavioural model driven with raw register accesses through an MmioBuffer, and raw
descriptors in guest RAM through numpy: registers, negotiation, requests, malformed chains, durability."""

from __future__ import annotations

import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from hwsim.media import BlockMedia
from hwsim.models import ModelSpace, VirtioBlkModel
from mmiotk import AccessError, CachePolicy, IrqTimeoutError, MmioResource, MmioValueError

# virtio-mmio registers and bits
MAGIC, VERSION, DEVICE_ID, VENDOR_ID = 0x000, 0x004, 0x008, 0x00C
DEV_FEAT, DEV_FEAT_SEL, DRV_FEAT, DRV_FEAT_SEL = 0x010, 0x014, 0x020, 0x024
QUEUE_SEL, QUEUE_NUM_MAX, QUEUE_NUM, QUEUE_READY, QUEUE_NOTIFY = 0x030, 0x034, 0x038, 0x044, 0x050
INT_STATUS, INT_ACK, STATUS, SHM_LEN_LOW, CONFIG_GEN, CONFIG = 0x060, 0x064, 0x070, 0x0B0, 0x0FC, 0x100
ACK, DRIVER, DRIVER_OK, FEATURES_OK, NEEDS_RESET = 1, 2, 4, 8, 0x40
NEXT, WRITE, INDIRECT = 1, 2, 4
F_SEG_MAX, F_RO, F_BLK_SIZE, F_FLUSH, F_TOPOLOGY, F_CONFIG_WCE, F_INDIRECT, F_EVENT_IDX, F_VERSION_1 = (
    2, 5, 6, 9, 10, 11, 28, 29, 32)
T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD = 0, 1, 4, 8, 11
S_OK, S_IOERR, S_UNSUPP = 0, 1, 2
DISK = 1 << 20
BASIC = (1 << F_VERSION_1 | 1 << F_FLUSH | 1 << F_CONFIG_WCE | 1 << F_INDIRECT | 1 << F_BLK_SIZE | 1 << F_SEG_MAX
         | 1 << F_TOPOLOGY | 1 << 14)                 # 14: WRITE_ZEROES
OFFERED = BASIC | 1 << F_EVENT_IDX                   # BASIC is what most tests negotiate
F_RING_PACKED = 34

# layout of the test driver in guest RAM (offsets from ram_base)
DESC, AVAIL, USED, HDR, STAT, DATA, QSIZE = 0x0000, 0x1000, 0x2000, 0x3000, 0x3800, 0x10000, 16


class RawDriver:
    """Just enough of a virtio driver to put chosen descriptor chains in front of the model."""

    def __init__(self, space: ModelSpace) -> None:
        self.space = space
        self.base = space.ram_base
        self.regs = MmioResource(space, space.device_base, 0x200).create_region(
            space.device_base, 0x200, "virtio-blk").map(CachePolicy.UNCACHED_DEVICE)
        ram = MmioResource(space, space.ram_base, space.ram_size).create_region(
            space.ram_base, space.ram_size, "ram", memory=True).map(CachePolicy.CACHED)
        self.mem = ram.array(np.uint8)
        self.buf = self.mem.data
        self.avail_idx = 0
        self.used_seen = 0

    def negotiate(self, features: int = BASIC) -> int:
        """Reset, offer `features`, set FEATURES_OK; the status read back."""
        r = self.regs
        r.write32(STATUS, 0)
        r.write32(STATUS, ACK | DRIVER)
        for sel in (0, 1):
            r.write32(DRV_FEAT_SEL, sel)
            r.write32(DRV_FEAT, features >> (32 * sel) & 0xFFFFFFFF)
        r.write32(STATUS, ACK | DRIVER | FEATURES_OK)
        return r.read32(STATUS)

    def setup_queue(self, size: int = QSIZE, desc: int = DESC, avail: int = AVAIL, used: int = USED) -> int:
        """Program queue 0; the QueueReady read back."""
        r = self.regs
        self.mem[DESC:DATA] = 0
        r.write32(QUEUE_SEL, 0)
        r.write32(QUEUE_NUM, size)
        for reg, off in ((0x080, desc), (0x090, avail), (0x0A0, used)):
            r.write32(reg, (self.base + off) & 0xFFFFFFFF)
            r.write32(reg + 4, (self.base + off) >> 32)
        r.write32(QUEUE_READY, 1)
        return r.read32(QUEUE_READY)

    def start(self, features: int = BASIC) -> None:
        assert self.negotiate(features) & FEATURES_OK
        assert self.setup_queue() == 1
        self.regs.write32(STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK)

    def desc(self, i: int, off: int, length: int, flags: int = 0, nxt: int = 0, table: int = DESC) -> None:
        struct.pack_into("<QIHH", self.buf, table + 16 * i, self.base + off, length, flags, nxt)

    def header(self, kind: int, sector: int, slot: int = 0) -> int:
        struct.pack_into("<IIQ", self.buf, HDR + 16 * slot, kind, 0, sector)
        self.mem[STAT + slot] = 0xEE
        return HDR + 16 * slot

    def submit(self, head: int, *, notify: bool = True, no_interrupt: bool = False) -> None:
        struct.pack_into("<H", self.buf, AVAIL, 1 if no_interrupt else 0)
        struct.pack_into("<H", self.buf, AVAIL + 4 + 2 * (self.avail_idx % QSIZE), head)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        struct.pack_into("<H", self.buf, AVAIL + 2, self.avail_idx)
        if notify:
            self.regs.write32(QUEUE_NOTIFY, 0)

    def used(self) -> list[tuple[int, int]]:
        """New used elements (id, len) since the last call."""
        idx = struct.unpack_from("<H", self.buf, USED + 2)[0]
        out = []
        while self.used_seen != idx:
            out.append(struct.unpack_from("<II", self.buf, USED + 4 + 8 * (self.used_seen % QSIZE))[:2])
            self.used_seen = (self.used_seen + 1) & 0xFFFF
        return out

    def request(self, kind: int, sector: int, length: int = 0, *, data_off: int = DATA) -> tuple[int, int]:
        """One three-descriptor request (header, data, status); (status, used len)."""
        hdr = self.header(kind, sector)
        writes = kind != T_OUT
        if length:
            self.desc(0, hdr, 16, NEXT, 1)
            self.desc(1, data_off, length, NEXT | (WRITE if writes else 0), 2)
            self.desc(2, STAT, 1, WRITE)
        else:
            self.desc(0, hdr, 16, NEXT, 2)
            self.desc(2, STAT, 1, WRITE)
        self.submit(0)
        (done,) = self.used()
        assert done[0] == 0
        return int(self.mem[STAT]), done[1]


def patterned(n: int, seed: int) -> bytes:
    return bytes((i * 7 + seed) & 0xFF for i in range(n))


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.img"
    path.write_bytes(patterned(DISK, 1))
    return path


@pytest.fixture
def blk(image: Path) -> Iterator[VirtioBlkModel]:
    model = VirtioBlkModel(BlockMedia(image))
    yield model
    model.media.close()


@pytest.fixture
def space(blk: VirtioBlkModel) -> Iterator[ModelSpace]:
    with ModelSpace(blk, ram_size=1 << 20) as s:
        yield s


@pytest.fixture
def drv(space: ModelSpace) -> RawDriver:
    return RawDriver(space)


@pytest.fixture
def make_drv(image: Path) -> Iterator[Callable[..., RawDriver]]:
    """A RawDriver on a model of `image` built with the given options; closed afterwards."""
    made: list[tuple[VirtioBlkModel, ModelSpace]] = []

    def make(readonly: bool = False, **options: Any) -> RawDriver:
        model = VirtioBlkModel(BlockMedia(image, readonly=readonly), readonly=readonly, **options)
        space = ModelSpace(model, ram_size=1 << 20)
        made.append((model, space))
        return RawDriver(space)

    yield make
    for model, space in made:
        space.close()
        model.media.close()


# --- registers and negotiation ----------------------------------------------------------------------
def test_identity_features_and_config_registers_read_their_specified_values(drv: RawDriver) -> None:
    r = drv.regs
    assert r.mechanism == "behavioural model"
    assert (r.read32(MAGIC), r.read32(VERSION), r.read32(DEVICE_ID)) == (0x74726976, 2, 2)
    assert r.read32(VENDOR_ID) == 0x4B544D4D
    r.write32(DEV_FEAT_SEL, 0)
    low = r.read32(DEV_FEAT)
    r.write32(DEV_FEAT_SEL, 1)
    assert r.read32(DEV_FEAT) == 1                              # VERSION_1
    assert low == OFFERED & 0xFFFFFFFF                          # no RO on a writable image
    assert r.read32(QUEUE_NUM_MAX) == 256
    assert r.read32(CONFIG) | r.read32(CONFIG + 4) << 32 == DISK // 512
    assert (r.read32(CONFIG + 0x0C), r.read32(CONFIG + 0x14), r.read8(CONFIG + 0x20)) == (126, 512, 0)
    assert r.read32(SHM_LEN_LOW) == 0xFFFFFFFF


def test_strict_model_refuses_accesses_the_spec_forbids(drv: RawDriver) -> None:
    r = drv.regs
    with pytest.raises(AccessError, match="write-only register QueueNotify"):
        r.read32(QUEUE_NOTIFY)
    with pytest.raises(AccessError, match="read-only register MagicValue"):
        r.write32(MAGIC, 1)
    with pytest.raises(AccessError, match="16-bit read of Status"):
        r.read16(STATUS)
    with pytest.raises(AccessError, match="use 32-bit accesses"):
        r.read64(CONFIG)                                        # capacity: two 32-bit halves
    with pytest.raises(AccessError, match="undefined register"):
        r.read32(0x0F0)
    with pytest.raises(AccessError, match="read-only config field capacity"):
        r.write32(CONFIG, 5)


def test_lenient_model_ignores_what_the_strict_one_refuses(make_drv: Callable[..., RawDriver]) -> None:
    drv = make_drv(strict=False)
    assert drv.regs.read32(QUEUE_NOTIFY) == 0
    drv.regs.write32(MAGIC, 1)
    assert drv.regs.read32(MAGIC) == 0x74726976
    assert drv.regs.read64(CONFIG) == DISK // 512


def test_features_ok_is_refused_for_unoffered_features_or_missing_version_1(drv: RawDriver,
                                                                            blk: VirtioBlkModel) -> None:
    assert not drv.negotiate(BASIC | 1 << F_RING_PACKED) & FEATURES_OK
    assert "unoffered bits 0x400000000" in str(blk.last_error)
    assert not drv.negotiate(1 << F_FLUSH) & FEATURES_OK
    assert "VERSION_1" in str(blk.last_error)
    assert drv.negotiate(BASIC) & FEATURES_OK
    drv.regs.write32(DRV_FEAT_SEL, 0)
    drv.regs.write32(DRV_FEAT, 0)                               # ignored once FEATURES_OK is set
    assert blk.features == BASIC


def test_status_zero_resets_queue_interrupts_and_status(drv: RawDriver, blk: VirtioBlkModel) -> None:
    drv.start()
    drv.request(T_IN, 0, 512)
    assert drv.regs.read32(INT_STATUS) == 1
    drv.regs.write32(STATUS, 0)
    assert (drv.regs.read32(STATUS), drv.regs.read32(INT_STATUS), drv.regs.read32(QUEUE_READY)) == (0, 0, 0)
    assert blk.irq_level == 0


@pytest.mark.parametrize(("size", "desc", "why"), [
    (12, DESC, "not a power of two"), (512, DESC, "not a power of two in 1..256"),
    (16, DESC + 8, "not 16-byte aligned"), (16, (1 << 20) - 64, "outside guest RAM")])
def test_bad_queue_settings_leave_the_queue_disabled(drv: RawDriver, blk: VirtioBlkModel, size: int,
                                                     desc: int, why: str) -> None:
    drv.negotiate()
    assert drv.setup_queue(size=size, desc=desc) == 0
    assert why in str(blk.last_error)


def test_queue_cannot_be_enabled_before_features_ok(drv: RawDriver, blk: VirtioBlkModel) -> None:
    drv.regs.write32(STATUS, ACK | DRIVER)
    assert drv.setup_queue() == 0
    assert "before FEATURES_OK" in str(blk.last_error)


# --- requests ---------------------------------------------------------------------------------------
def test_read_request_copies_the_sectors_and_raises_the_interrupt(drv: RawDriver, space: ModelSpace) -> None:
    drv.start()
    irq = space.interrupt()
    assert drv.request(T_IN, 3, 1024) == (S_OK, 1025)
    assert bytes(drv.mem[DATA:DATA + 1024]) == patterned(DISK, 1)[3 * 512:5 * 512]
    assert irq.wait(0) == 1
    assert drv.regs.read32(INT_STATUS) == 1
    drv.regs.write32(INT_ACK, 1)
    irq.ack()
    with pytest.raises(IrqTimeoutError, match="line is low"):
        irq.wait(0.01)


def test_write_request_reaches_what_later_reads_see(drv: RawDriver) -> None:
    drv.start()
    drv.mem[DATA:DATA + 512] = np.frombuffer(patterned(512, 9), np.uint8)
    assert drv.request(T_OUT, 10, 512) == (S_OK, 1)
    drv.mem[DATA:DATA + 512] = 0
    assert drv.request(T_IN, 10, 512) == (S_OK, 513)
    assert bytes(drv.mem[DATA:DATA + 512]) == patterned(512, 9)


def test_read_scattered_over_an_indirect_table_lands_in_every_segment(drv: RawDriver) -> None:
    drv.start()
    table = 0x4000
    hdr = drv.header(T_IN, 1)
    drv.desc(0, hdr, 16, NEXT, 1, table=table)
    drv.desc(1, DATA, 100, NEXT | WRITE, 2, table=table)
    drv.desc(2, DATA + 0x1000, 412, NEXT | WRITE, 3, table=table)
    drv.desc(3, STAT, 1, WRITE, table=table)
    drv.desc(0, table, 64, INDIRECT)
    drv.submit(0)
    assert drv.used() == [(0, 513)]
    assert drv.mem[STAT] == S_OK
    expected = patterned(DISK, 1)[512:1024]
    assert bytes(drv.mem[DATA:DATA + 100]) + bytes(drv.mem[DATA + 0x1000:DATA + 0x1000 + 412]) == expected


def test_get_id_returns_the_20_byte_serial(drv: RawDriver) -> None:
    drv.start()
    assert drv.request(T_GET_ID, 0, 20) == (S_OK, 21)
    assert bytes(drv.mem[DATA:DATA + 20]) == b"mmiotk-virtio-blk\0\0\0"


@pytest.mark.parametrize(("kind", "sector", "length", "status"), [
    (T_IN, DISK // 512 - 1, 1024, S_IOERR),                     # past the end
    (T_IN, 0, 100, S_IOERR),                                    # not a multiple of 512
    (T_DISCARD, 0, 16, S_UNSUPP),
    (99, 0, 0, S_UNSUPP)])
def test_bad_requests_get_an_error_status_and_nothing_else(drv: RawDriver, kind: int, sector: int,
                                                          length: int, status: int) -> None:
    drv.start()
    drv.mem[DATA:DATA + 2048] = 0xAB
    assert drv.request(kind, sector, length) == (status, 1)
    assert (drv.mem[DATA:DATA + 2048] == 0xAB).all()


def test_flush_is_unsupported_unless_negotiated(drv: RawDriver) -> None:
    drv.start(BASIC & ~(1 << F_FLUSH | 1 << F_CONFIG_WCE))
    assert drv.request(T_FLUSH, 0) == (S_UNSUPP, 1)


def test_read_only_device_offers_ro_and_fails_writes(make_drv: Callable[..., RawDriver], image: Path) -> None:
    drv = make_drv(readonly=True)
    drv.regs.write32(DEV_FEAT_SEL, 0)
    assert drv.regs.read32(DEV_FEAT) & 1 << F_RO
    drv.start(BASIC | 1 << F_RO)
    assert drv.request(T_OUT, 0, 512) == (S_IOERR, 1)
    assert image.read_bytes()[:512] == patterned(DISK, 1)[:512]


def test_blk_size_alignment_and_seg_max_are_enforced(make_drv: Callable[..., RawDriver]) -> None:
    drv = make_drv(blk_size=4096, seg_max=1)
    drv.start()
    assert drv.regs.read32(CONFIG + 0x14) == 4096
    assert drv.request(T_IN, 8, 4096) == (S_OK, 4097)
    assert drv.request(T_IN, 1, 4096) == (S_IOERR, 1)          # sector not on a 4 KiB boundary
    assert drv.request(T_IN, 8, 512) == (S_IOERR, 1)           # length not a whole block
    hdr = drv.header(T_IN, 0)
    drv.desc(0, hdr, 16, NEXT, 1)
    drv.desc(1, DATA, 2048, NEXT | WRITE, 2)
    drv.desc(2, DATA + 4096, 2048, NEXT | WRITE, 3)
    drv.desc(3, STAT, 1, WRITE)
    drv.submit(0)
    assert drv.used() == [(0, 1)] and drv.mem[STAT] == S_IOERR   # two data buffers, seg_max 1


def test_no_interrupt_flag_suppresses_the_used_buffer_interrupt(drv: RawDriver, space: ModelSpace) -> None:
    drv.start()
    hdr = drv.header(T_IN, 0)
    drv.desc(0, hdr, 16, NEXT, 1)
    drv.desc(1, STAT, 1, WRITE)
    drv.submit(0, no_interrupt=True)
    assert drv.used() == [(0, 1)]
    assert drv.regs.read32(INT_STATUS) == 0
    with pytest.raises(IrqTimeoutError):
        space.interrupt().wait(0)


def in_request(drv: RawDriver, slot: int, *, notify: bool = True) -> None:
    """A status-only IN request in descriptors 2*slot, 2*slot + 1, made available."""
    hdr = drv.header(T_IN, 0, slot)
    drv.desc(2 * slot, hdr, 16, NEXT, 2 * slot + 1)
    drv.desc(2 * slot + 1, STAT + slot, 1, WRITE)
    drv.submit(2 * slot, notify=notify)


USED_EVENT, AVAIL_EVENT = AVAIL + 4 + 2 * QSIZE, USED + 4 + 8 * QSIZE


def test_event_idx_interrupts_only_when_the_used_entry_named_by_used_event_is_filled(drv: RawDriver) -> None:
    drv.start(BASIC | 1 << F_EVENT_IDX)
    struct.pack_into("<H", drv.buf, USED_EVENT, 2)               # interrupt when used entry 2 is filled
    for slot in range(2):
        in_request(drv, slot)
        assert len(drv.used()) == 1
        assert drv.regs.read32(INT_STATUS) == 0, f"interrupt at used entry {slot}, used_event is 2"
    struct.pack_into("<H", drv.buf, AVAIL, 1)                    # NO_INTERRUPT is ignored with EVENT_IDX
    in_request(drv, 2)
    assert len(drv.used()) == 1 and drv.regs.read32(INT_STATUS) == 1
    drv.regs.write32(INT_ACK, 1)
    # a batch of three (entries 3..5) interrupts if used_event is any of them, once
    struct.pack_into("<H", drv.buf, USED_EVENT, 4)
    for slot in range(3, 6):
        in_request(drv, slot, notify=False)
    drv.regs.write32(QUEUE_NOTIFY, 0)
    assert len(drv.used()) == 3 and drv.regs.read32(INT_STATUS) == 1
    drv.regs.write32(INT_ACK, 1)
    struct.pack_into("<H", drv.buf, USED_EVENT, 5)               # already passed: no interrupt
    in_request(drv, 6)
    assert len(drv.used()) == 1 and drv.regs.read32(INT_STATUS) == 0


def test_event_idx_device_writes_avail_event_with_its_next_avail_index(drv: RawDriver) -> None:
    drv.start(BASIC | 1 << F_EVENT_IDX)
    struct.pack_into("<H", drv.buf, AVAIL_EVENT, 0xBEEF)
    for n in range(1, 4):
        in_request(drv, n % 4)
        assert drv.used() and struct.unpack_from("<H", drv.buf, AVAIL_EVENT)[0] == n


def test_without_event_idx_used_event_is_ignored_and_avail_event_untouched(drv: RawDriver) -> None:
    drv.start()                                                  # BASIC: no EVENT_IDX
    struct.pack_into("<H", drv.buf, USED_EVENT, 7)
    struct.pack_into("<H", drv.buf, AVAIL_EVENT, 0xBEEF)
    in_request(drv, 0)
    assert drv.used() and drv.regs.read32(INT_STATUS) == 1
    assert struct.unpack_from("<H", drv.buf, AVAIL_EVENT)[0] == 0xBEEF


def test_event_idx_not_offered_when_built_without_it(make_drv: Callable[..., RawDriver]) -> None:
    drv = make_drv(event_idx=False)
    assert not drv.negotiate(BASIC | 1 << F_EVENT_IDX) & FEATURES_OK


def test_deferred_model_completes_only_when_the_driver_waits(make_drv: Callable[..., RawDriver]) -> None:
    drv = make_drv(deferred=True)
    drv.start()
    hdr = drv.header(T_IN, 0)
    drv.desc(0, hdr, 16, NEXT, 1)
    drv.desc(1, STAT, 1, WRITE)
    drv.submit(0)
    assert drv.used() == []
    assert drv.space.interrupt().wait(1.0) == 1
    assert drv.used() == [(0, 1)]


def test_interrupt_wait_wakes_when_another_thread_completes_a_request(drv: RawDriver,
                                                                     space: ModelSpace) -> None:
    drv.start()
    irq = space.interrupt()
    hdr = drv.header(T_IN, 0)
    drv.desc(0, hdr, 16, NEXT, 1)
    drv.desc(1, STAT, 1, WRITE)
    worker = threading.Thread(target=drv.submit, args=(0,))
    worker.start()
    try:
        assert irq.wait(10.0) == 1
    finally:
        worker.join(10.0)
    assert drv.used() == [(0, 1)]


# --- malformed chains -------------------------------------------------------------------------------
def _expect_needs_reset(drv: RawDriver, blk: VirtioBlkModel, space: ModelSpace, why: str) -> None:
    assert drv.regs.read32(STATUS) & NEEDS_RESET
    assert drv.regs.read32(INT_STATUS) & 2                     # configuration change notification
    assert space.interrupt().wait(0) == 1
    assert drv.used() == []
    assert why in str(blk.last_error)


@pytest.mark.parametrize(("build", "why"), [
    ("loop", "a loop"), ("outside", "outside guest RAM"), ("short", "header is 8 bytes"),
    ("no_status", "no device-writable byte"), ("next", "next index 40"), ("order", "follows a device-writable"),
    ("zero", "length 0")])
def test_malformed_chain_sets_needs_reset_and_stops_the_queue(drv: RawDriver, blk: VirtioBlkModel,
                                                              space: ModelSpace, build: str, why: str) -> None:
    drv.start()
    hdr = drv.header(T_IN, 0)
    if build == "loop":
        drv.desc(0, hdr, 16, NEXT, 1)
        drv.desc(1, DATA, 512, NEXT | WRITE, 2)
        drv.desc(2, DATA + 512, 512, NEXT | WRITE, 1)
    elif build == "outside":
        drv.desc(0, hdr, 16, NEXT, 1)
        drv.desc(1, (1 << 20) - 256, 512, NEXT | WRITE, 2)
        drv.desc(2, STAT, 1, WRITE)
    elif build == "short":
        drv.desc(0, hdr, 8, NEXT, 1)
        drv.desc(1, STAT, 1, WRITE)
    elif build == "no_status":
        drv.desc(0, hdr, 16)
    elif build == "next":
        drv.desc(0, hdr, 16, NEXT, 40)
    elif build == "order":
        drv.desc(0, STAT, 1, NEXT | WRITE, 1)
        drv.desc(1, hdr, 16)
    elif build == "zero":
        drv.desc(0, hdr, 16, NEXT, 1)
        drv.desc(1, DATA, 0, NEXT | WRITE, 2)
        drv.desc(2, STAT, 1, WRITE)
    drv.submit(0)
    _expect_needs_reset(drv, blk, space, why)
    drv.desc(0, drv.header(T_IN, 0), 16, NEXT, 1)               # a good chain is not processed now
    drv.desc(1, STAT, 1, WRITE)
    drv.submit(0)
    assert drv.used() == []


def test_indirect_without_negotiation_needs_reset(drv: RawDriver, blk: VirtioBlkModel, space: ModelSpace) -> None:
    drv.start(BASIC & ~(1 << F_INDIRECT))
    drv.desc(0, 0x4000, 32, INDIRECT)
    drv.submit(0)
    _expect_needs_reset(drv, blk, space, "RING_INDIRECT_DESC was not negotiated")


def test_head_outside_the_table_or_avail_index_racing_ahead_needs_reset(drv: RawDriver, blk: VirtioBlkModel,
                                                                         space: ModelSpace) -> None:
    drv.start()
    drv.submit(QSIZE + 3)
    _expect_needs_reset(drv, blk, space, "head descriptor 19")
    drv.avail_idx = drv.used_seen = 0
    drv.start()
    struct.pack_into("<H", drv.buf, AVAIL + 2, QSIZE + 1)
    drv.regs.write32(QUEUE_NOTIFY, 0)
    assert "ran 17 entries ahead" in str(blk.last_error)


def test_reset_recovers_from_needs_reset(drv: RawDriver) -> None:
    drv.start()
    drv.desc(0, HDR, 16)
    drv.submit(0)
    assert drv.regs.read32(STATUS) & NEEDS_RESET
    drv.avail_idx = drv.used_seen = 0
    drv.start()
    assert drv.request(T_IN, 0, 512) == (S_OK, 513)


def test_chains_before_a_bad_one_still_complete(drv: RawDriver, blk: VirtioBlkModel) -> None:
    drv.start()
    hdr = drv.header(T_IN, 0)
    drv.desc(0, hdr, 16, NEXT, 1)
    drv.desc(1, STAT, 1, WRITE)
    drv.desc(5, hdr, 16)                                        # no status
    drv.submit(0, notify=False)
    drv.submit(5)
    assert drv.used() == [(0, 1)]
    assert drv.regs.read32(STATUS) & NEEDS_RESET
    assert drv.regs.read32(INT_STATUS) == 3


# --- write cache and durability ---------------------------------------------------------------------
def test_writeback_data_reaches_the_media_only_on_flush(drv: RawDriver, blk: VirtioBlkModel,
                                                        image: Path) -> None:
    drv.start()
    drv.regs.write8(CONFIG + 0x20, 1)                           # writeback (writethrough is the default)
    drv.mem[DATA:DATA + 512] = np.frombuffer(patterned(512, 5), np.uint8)
    assert drv.request(T_OUT, 2, 512) == (S_OK, 1)
    assert image.read_bytes()[1024:1536] == patterned(DISK, 1)[1024:1536]
    assert blk.media.dirty_sectors == 1
    assert drv.request(T_FLUSH, 0) == (S_OK, 1)
    assert image.read_bytes()[1024:1536] == patterned(512, 5)
    assert blk.media.dirty_sectors == 0


def test_power_loss_loses_unflushed_writes(drv: RawDriver, blk: VirtioBlkModel) -> None:
    drv.start()
    drv.regs.write8(CONFIG + 0x20, 1)
    drv.mem[DATA:DATA + 512] = 0x11
    drv.request(T_OUT, 0, 512)
    assert blk.media.power_loss() == 1
    assert drv.request(T_IN, 0, 512) == (S_OK, 513)
    assert bytes(drv.mem[DATA:DATA + 512]) == patterned(DISK, 1)[:512]


def test_writethrough_set_by_the_driver_flushes_and_writes_through(drv: RawDriver, blk: VirtioBlkModel,
                                                                   image: Path) -> None:
    drv.start()
    drv.regs.write8(CONFIG + 0x20, 1)
    drv.mem[DATA:DATA + 512] = 0x22
    drv.request(T_OUT, 0, 512)
    drv.regs.write8(CONFIG + 0x20, 0)                           # writethrough: flushes the cache
    assert image.read_bytes()[:512] == b"\x22" * 512
    drv.mem[DATA:DATA + 512] = 0x33
    drv.request(T_OUT, 1, 512)
    assert image.read_bytes()[512:1024] == b"\x33" * 512       # no FLUSH needed
    assert blk.media.dirty_sectors == 0


def test_without_flush_negotiated_the_device_writes_through(drv: RawDriver, image: Path) -> None:
    drv.start(1 << F_VERSION_1)
    assert drv.regs.read8(CONFIG + 0x20) == 0
    drv.mem[DATA:DATA + 512] = 0x44
    drv.request(T_OUT, 0, 512)
    assert image.read_bytes()[:512] == b"\x44" * 512


def test_writeback_field_is_read_only_without_config_wce(drv: RawDriver) -> None:
    drv.start(BASIC & ~(1 << F_CONFIG_WCE))
    with pytest.raises(AccessError, match="writeback"):
        drv.regs.write8(CONFIG + 0x20, 0)


# --- the space --------------------------------------------------------------------------------------
def test_space_maps_ram_as_memory_and_refuses_other_ranges(space: ModelSpace) -> None:
    assert space.open(space.ram_base, 64, CachePolicy.CACHED).memory is not None
    assert space.open(space.device_base, 0x200, CachePolicy.UNCACHED).memory is None
    with pytest.raises(IndexError, match="neither inside the device window"):
        space.open(space.device_base + 0x1000, 16, CachePolicy.UNCACHED)
    with pytest.raises(MmioValueError, match="one interrupt line"):
        space.interrupt(5)


def test_model_rejects_bad_parameters(tmp_path: Path) -> None:
    odd = tmp_path / "odd.img"
    odd.write_bytes(b"x" * 1000)
    with pytest.raises(MmioValueError, match="multiple of 512"):
        BlockMedia(odd)
    with pytest.raises(MmioValueError, match="blk_size"):
        VirtioBlkModel(size=1 << 20, blk_size=1000)
    with pytest.raises(MmioValueError, match="serial"):
        VirtioBlkModel(size=1 << 20, serial=b"x" * 21)
    with pytest.raises(MmioValueError, match="overlaps"):
        ModelSpace(ram_base=0x40000000, device_base=0x40000000)


def test_writethrough_is_the_default_and_durable_at_completion(drv: RawDriver, blk: VirtioBlkModel,
                                                                image: Path) -> None:
    drv.start()
    assert drv.regs.read8(CONFIG + 0x20) == 0
    syncs = blk.media.syncs
    drv.mem[DATA:DATA + 512] = 0x55
    assert drv.request(T_OUT, 3, 512) == (S_OK, 1)
    assert blk.media.syncs == syncs + 1, "msync'd before the OUT completed (5.2.6)"
    assert image.read_bytes()[1536:2048] == b"\x55" * 512 and blk.media.dirty_sectors == 0


def test_config_wce_without_flush_is_refused_at_build() -> None:
    with pytest.raises(MmioValueError, match="config_wce needs flush"):
        VirtioBlkModel(size=1 << 20, flush=False)
    model = VirtioBlkModel(size=1 << 20, flush=False, config_wce=False)
    assert not model.offered_features() >> F_FLUSH & 1


def test_topology_reports_physical_blocks_distinct_from_logical(make_drv: Callable[..., RawDriver]) -> None:
    drv = make_drv(blk_size=512, physical_block_exp=3, alignment_offset=1, min_io_size=8, opt_io_size=64)
    r = drv.regs
    r.write32(DEV_FEAT_SEL, 0)
    assert r.read32(DEV_FEAT) >> F_TOPOLOGY & 1
    assert (r.read32(CONFIG + 0x14), r.read8(CONFIG + 0x18), r.read8(CONFIG + 0x19), r.read16(CONFIG + 0x1A),
            r.read32(CONFIG + 0x1C)) == (512, 3, 1, 8, 64)
    plain = make_drv(topology=False)
    plain.regs.write32(DEV_FEAT_SEL, 0)
    assert not plain.regs.read32(DEV_FEAT) >> F_TOPOLOGY & 1 and plain.regs.read8(CONFIG + 0x18) == 0
    with pytest.raises(MmioValueError, match="physical_block_exp"):
        VirtioBlkModel(size=1 << 20, physical_block_exp=256)


def test_media_range_exposes_part_of_the_media(make_drv: Callable[..., RawDriver], image: Path) -> None:
    drv = make_drv(media_range=(64 * 512, 16 * 512))
    drv.start()
    assert drv.regs.read32(CONFIG) == 16
    assert drv.request(T_IN, 0, 1024) == (S_OK, 1025)
    assert bytes(drv.mem[DATA:DATA + 1024]) == patterned(DISK, 1)[64 * 512:66 * 512]
    drv.mem[DATA:DATA + 512] = 0x66
    assert drv.request(T_OUT, 15, 512) == (S_OK, 1)
    assert drv.request(T_IN, 16, 512)[0] == S_IOERR
    on_disk = image.read_bytes()
    assert on_disk[79 * 512:80 * 512] == b"\x66" * 512
    assert on_disk[:79 * 512] + on_disk[80 * 512:] == patterned(DISK, 1)[:79 * 512] + patterned(DISK, 1)[80 * 512:]
    with pytest.raises(MmioValueError, match="media_range"):
        VirtioBlkModel(size=1 << 20, media_range=(1 << 20, 512))


def test_direct_descriptors_followed_by_an_indirect_one(drv: RawDriver) -> None:
    """virtio 1.2, 2.7.5.3.2: the device must handle normal chained descriptors followed by INDIRECT."""
    drv.start()
    table = 0x4000
    drv.desc(0, DATA, 512, NEXT | WRITE, 1, table=table)
    drv.desc(1, STAT, 1, WRITE, table=table)
    drv.desc(0, drv.header(T_IN, 2), 16, NEXT, 1)
    drv.desc(1, table, 32, INDIRECT)
    drv.submit(0)
    assert drv.used() == [(0, 513)]
    assert drv.mem[STAT] == S_OK and drv.regs.read32(STATUS) & NEEDS_RESET == 0
    assert bytes(drv.mem[DATA:DATA + 512]) == patterned(DISK, 1)[1024:1536]


def test_used_len_of_a_failed_in_counts_only_the_status_byte(drv: RawDriver) -> None:
    drv.start()
    assert drv.request(T_IN, DISK // 512, 1024) == (S_IOERR, 1)


@pytest.fixture
def legacy(image: Path) -> Iterator[RawDriver]:
    model = VirtioBlkModel(BlockMedia(image), legacy=True)
    with ModelSpace(model, ram_size=1 << 20) as space:
        yield RawDriver(space)
    model.media.close()


def test_legacy_interface_version_1_queue_pfn(legacy: RawDriver) -> None:
    """virtio 1.2, 4.2.4: Version 1, 32 feature bits without VERSION_1, no FEATURES_OK, QueuePFN set-up."""
    r = legacy.regs
    assert r.read32(VERSION) == 1
    r.write32(STATUS, 0)
    r.write32(STATUS, ACK | DRIVER)
    r.write32(DEV_FEAT_SEL, 1)
    assert r.read32(DEV_FEAT) == 0                              # no VERSION_1
    r.write32(DEV_FEAT_SEL, 0)
    offered = r.read32(DEV_FEAT)
    r.write32(DRV_FEAT_SEL, 0)
    r.write32(DRV_FEAT, offered & (1 << F_FLUSH | 1 << F_INDIRECT | 1 << F_CONFIG_WCE | 1 << F_BLK_SIZE))
    r.write32(0x028, 4096)                                      # GuestPageSize
    r.write32(QUEUE_SEL, 0)
    r.write32(QUEUE_NUM, QSIZE)
    r.write32(0x03C, 4096)                                      # QueueAlign
    legacy.mem[:0x2000] = 0
    r.write32(0x040, legacy.base // 4096)                       # QueuePFN: descriptors at DESC (offset 0)
    assert r.read32(0x040) == legacy.base // 4096
    with pytest.raises(AccessError, match="undefined register"):
        r.read32(QUEUE_READY)                                   # not in the legacy interface
    r.write32(STATUS, ACK | DRIVER | FEATURES_OK | DRIVER_OK)
    assert r.read32(STATUS) == ACK | DRIVER | DRIVER_OK         # FEATURES_OK does not exist
    # the avail ring follows the 16 descriptors; the used ring is on the next 4 KiB boundary
    hdr = legacy.header(T_IN, 4)
    legacy.desc(0, hdr, 16, NEXT, 1)
    legacy.desc(1, DATA, 512, NEXT | WRITE, 2)
    legacy.desc(2, STAT, 1, WRITE)
    avail = 16 * QSIZE
    struct.pack_into("<HHH", legacy.buf, avail, 0, 1, 0)
    r.write32(QUEUE_NOTIFY, 0)
    used = 0x1000
    assert struct.unpack_from("<HHII", legacy.buf, used) == (0, 1, 0, 513)
    assert legacy.mem[STAT] == S_OK and bytes(legacy.mem[DATA:DATA + 512]) == patterned(DISK, 1)[2048:2560]
    r.write8(CONFIG + 0x20, 1)                                  # CONFIG_WCE taken from GuestFeatures
    assert r.read8(CONFIG + 0x20) == 1
