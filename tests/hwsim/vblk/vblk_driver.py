"""A minimal synchronous virtio-blk driver for the RTL tests: plain code over MmioBuffer and an Interrupt.

It knows nothing about simulation: registers are an `MmioBuffer`, DMA memory is reached through
`mem(paddr, size) -> numpy uint8 view` and `alloc(size, align) -> paddr`. The full driver lives in
drivers/; this one exists to drive every corner of the RTL, including malformed chains (`put_desc`,
`publish`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from mmiotk import Interrupt, MmioBuffer

# Deliberate duplication: the virtio constants here are written out again, on purpose, in the driver
# (drivers/virtio/) and in the device model (hwsim/models/): this driver stays an independent reading of
# the spec, so it can catch what the driver and the RTL might misread alike.
MAGIC, VERSION, DEVICE_ID, VENDOR_ID = 0x000, 0x004, 0x008, 0x00C
DEVICE_FEATURES, DEVICE_FEATURES_SEL = 0x010, 0x014
DRIVER_FEATURES, DRIVER_FEATURES_SEL = 0x020, 0x024
QUEUE_SEL, QUEUE_NUM_MAX, QUEUE_NUM, QUEUE_READY, QUEUE_NOTIFY = 0x030, 0x034, 0x038, 0x044, 0x050
INTERRUPT_STATUS, INTERRUPT_ACK, STATUS = 0x060, 0x064, 0x070
QUEUE_DESC, QUEUE_DRIVER, QUEUE_DEVICE = 0x080, 0x090, 0x0A0
CONFIG_GENERATION, CONFIG = 0x0FC, 0x100
CFG_CAPACITY, CFG_SEG_MAX, CFG_BLK_SIZE, CFG_WRITEBACK = 0x100, 0x10C, 0x114, 0x120
CFG_PHYS_BLOCK_EXP, CFG_ALIGNMENT_OFFSET, CFG_MIN_IO_SIZE, CFG_OPT_IO_SIZE = 0x118, 0x119, 0x11A, 0x11C
GUEST_PAGE_SIZE, QUEUE_ALIGN, QUEUE_PFN = 0x028, 0x03C, 0x040          # legacy (Version 1) only

ACKNOWLEDGE, DRIVER, DRIVER_OK, FEATURES_OK, NEEDS_RESET, FAILED = 1, 2, 4, 8, 0x40, 0x80
F_SEG_MAX, F_RO, F_BLK_SIZE, F_FLUSH, F_TOPOLOGY, F_CONFIG_WCE = 2, 5, 6, 9, 10, 11
F_INDIRECT, F_EVENT_IDX, F_VERSION_1 = 28, 29, 32
T_IN, T_OUT, T_FLUSH, T_GET_ID = 0, 1, 4, 8
S_OK, S_IOERR, S_UNSUPP = 0, 1, 2
NEXT, WRITE, INDIRECT = 1, 2, 4
SECTOR = 512

DESC = np.dtype([("addr", "<u8"), ("len", "<u4"), ("flags", "<u2"), ("next", "<u2")])


class BlkError(Exception):
    """A request completed with a status other than OK."""

    def __init__(self, status: int, what: str) -> None:
        super().__init__(f"{what}: status {status}")
        self.status = status


class DeviceError(Exception):
    """The device refused initialisation or asks for a reset."""


@dataclass
class Used:
    id: int
    len: int


class MiniBlk:
    """One virtqueue, one request in flight."""

    def __init__(self, regs: MmioBuffer, mem: Callable[[int, int], np.ndarray],
                 alloc: Callable[[int, int], int], irq: Interrupt, qsize: int = 16) -> None:
        self.regs = regs
        self.mem = mem
        self.alloc = alloc
        self.irq = irq
        self.qsize = qsize
        self.scratch = alloc(64 * 1024 + 64, 64)   # header | status | data
        self.header_pa = self.scratch
        self.status_pa = self.scratch + 32
        self.data_pa = self.scratch + 64

    # --- initialisation ------------------------------------------------------------------------------
    def reset(self) -> None:
        self.regs.write32(STATUS, 0)
        if self.regs.read32(STATUS) != 0:
            raise DeviceError("status did not read back 0 after reset")

    def device_features(self) -> int:
        features = 0
        for sel in (0, 1):
            self.regs.write32(DEVICE_FEATURES_SEL, sel)
            features |= self.regs.read32(DEVICE_FEATURES) << (32 * sel)
        return features

    def negotiate(self, wanted: int) -> int:
        """Reset, ACKNOWLEDGE, DRIVER, write `wanted` & offered, FEATURES_OK; returns the negotiated set."""
        self.reset()
        self.regs.write32(STATUS, ACKNOWLEDGE)
        self.regs.write32(STATUS, ACKNOWLEDGE | DRIVER)
        features = self.device_features() & wanted
        self.write_features(features)
        self.regs.write32(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK)
        if not self.regs.read32(STATUS) & FEATURES_OK:
            raise DeviceError(f"device refused features {features:#x}")
        self.features = features
        return features

    def write_features(self, features: int) -> None:
        for sel in (0, 1):
            self.regs.write32(DRIVER_FEATURES_SEL, sel)
            self.regs.write32(DRIVER_FEATURES, (features >> (32 * sel)) & 0xFFFF_FFFF)

    def setup_queue(self) -> None:
        q = self.qsize
        self.regs.write32(QUEUE_SEL, 0)
        if self.regs.read32(QUEUE_NUM_MAX) < q:
            raise DeviceError("queue too small")
        self.desc_pa = self.alloc(16 * q, 16)
        self.avail_pa = self.alloc(6 + 2 * q, 2)
        self.used_pa = self.alloc(6 + 8 * q, 4)
        self.desc = self.mem(self.desc_pa, 16 * q).view(DESC)
        self.avail = self.mem(self.avail_pa, 6 + 2 * q).view("<u2")
        self.used = self.mem(self.used_pa, 6 + 8 * q)
        self.avail_idx = 0
        self.used_seen = 0
        self.regs.write32(QUEUE_NUM, q)
        for reg, pa in ((QUEUE_DESC, self.desc_pa), (QUEUE_DRIVER, self.avail_pa), (QUEUE_DEVICE, self.used_pa)):
            self.regs.write32(reg, pa & 0xFFFF_FFFF)
            self.regs.write32(reg + 4, pa >> 32)
        self.regs.write32(QUEUE_READY, 1)

    def init(self, wanted: int = (1 << F_VERSION_1) | (1 << F_FLUSH) | (1 << F_BLK_SIZE) | (1 << F_SEG_MAX)
             | (1 << F_CONFIG_WCE) | (1 << F_RO)) -> int:
        features = self.negotiate(wanted)
        self.setup_queue()
        self.regs.write32(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK)
        return features

    def init_legacy(self, wanted: int = (1 << F_BLK_SIZE) | (1 << F_SEG_MAX) | (1 << F_RO) | (1 << F_INDIRECT),
                    page_size: int = 4096, align: int = 4096) -> int:
        """Bring up a legacy (Version 1) device: features, GuestPageSize, QueueNum, QueueAlign, QueuePFN,
        DRIVER_OK. The rings are one page-aligned area: descriptors, avail ring, used ring at `align`."""
        q = self.qsize
        self.reset()
        self.regs.write32(STATUS, ACKNOWLEDGE)
        self.regs.write32(STATUS, ACKNOWLEDGE | DRIVER)
        self.regs.write32(DEVICE_FEATURES_SEL, 0)
        features = self.regs.read32(DEVICE_FEATURES) & wanted
        self.regs.write32(DRIVER_FEATURES_SEL, 0)
        self.regs.write32(DRIVER_FEATURES, features)
        self.regs.write32(GUEST_PAGE_SIZE, page_size)
        self.regs.write32(QUEUE_SEL, 0)
        used_off = (16 * q + 6 + 2 * q + align - 1) & ~(align - 1)
        base = self.alloc(used_off + 6 + 8 * q, page_size)
        self.desc_pa, self.avail_pa, self.used_pa = base, base + 16 * q, base + used_off
        self.desc = self.mem(self.desc_pa, 16 * q).view(DESC)
        self.avail = self.mem(self.avail_pa, 6 + 2 * q).view("<u2")
        self.used = self.mem(self.used_pa, 6 + 8 * q)
        self.avail_idx = self.used_seen = 0
        self.regs.write32(QUEUE_NUM, q)
        self.regs.write32(QUEUE_ALIGN, align)
        self.regs.write32(QUEUE_PFN, base // page_size)
        self.regs.write32(STATUS, ACKNOWLEDGE | DRIVER | DRIVER_OK)
        self.features = features
        return features

    def capacity(self) -> int:
        return self.regs.read32(CFG_CAPACITY) | self.regs.read32(CFG_CAPACITY + 4) << 32

    def set_writeback(self, on: bool) -> None:
        self.regs.write8(CFG_WRITEBACK, int(on))

    # --- the ring --------------------------------------------------------------------------------------
    def put_desc(self, i: int, addr: int, length: int, flags: int = 0, nxt: int = 0) -> None:
        self.desc[i] = (addr, length, flags, nxt)

    def publish(self, head: int, *, bump: int = 1) -> None:
        """Put `head` in the avail ring, move avail.idx on by `bump`, notify."""
        self.avail[2 + self.avail_idx % self.qsize] = head
        self.avail_idx = (self.avail_idx + bump) & 0xFFFF
        self.avail[1] = self.avail_idx
        self.regs.write32(QUEUE_NOTIFY, 0)

    def used_idx(self) -> int:
        return int(self.used[2:4].view("<u2")[0])

    def make_available(self, head: int) -> None:
        """Put `head` in the avail ring and publish avail.idx, without a notify."""
        self.avail[2 + self.avail_idx % self.qsize] = head
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self.avail[1] = self.avail_idx

    # --- VIRTIO_F_EVENT_IDX (virtio 1.2, 2.7.7 and 2.7.10) -------------------------------------------
    def set_used_event(self, index: int) -> None:
        """avail->used_event: interrupt when the device fills used ring entry `index`."""
        self.avail[2 + self.qsize] = index & 0xFFFF

    def avail_event(self) -> int:
        """used->avail_event: the avail ring entry the device wants a notify for."""
        off = 4 + 8 * self.qsize
        return int(self.used[off:off + 2].view("<u2")[0])

    def wait_used(self, timeout: float = 2e-3) -> Used:
        """Wait for the interrupt, ACK it, and return the next used element."""
        self.irq.wait(timeout)
        isr = self.regs.read32(INTERRUPT_STATUS)
        self.regs.write32(INTERRUPT_ACK, isr)
        if self.regs.read32(STATUS) & NEEDS_RESET:
            raise DeviceError(f"device needs reset (InterruptStatus {isr:#x})")
        if self.used_idx() == self.used_seen:
            raise DeviceError(f"interrupt {isr:#x} without a used buffer")
        slot = 4 + 8 * (self.used_seen % self.qsize)
        elem = self.used[slot:slot + 8].view("<u4")
        self.used_seen = (self.used_seen + 1) & 0xFFFF
        return Used(int(elem[0]), int(elem[1]))

    # --- requests --------------------------------------------------------------------------------------
    def request(self, rtype: int, sector: int = 0, out: bytes = b"", in_len: int = 0,
                timeout: float = 2e-3) -> tuple[int, bytes, Used]:
        """One request as header | data | status in descriptors 0, 1, 2; returns (status, data in, used)."""
        hdr = self.mem(self.header_pa, 16)
        hdr[:] = np.frombuffer(np.array([rtype, 0], "<u4").tobytes() + np.array([sector], "<u8").tobytes(),
                               np.uint8)
        self.mem(self.status_pa, 1)[0] = 0xFF
        data_len = len(out) or in_len
        if out:
            self.mem(self.data_pa, len(out))[:] = np.frombuffer(out, np.uint8)
        if data_len:
            self.put_desc(0, self.header_pa, 16, NEXT, 1)
            self.put_desc(1, self.data_pa, data_len, NEXT | (0 if out else WRITE), 2)
            self.put_desc(2, self.status_pa, 1, WRITE)
        else:
            self.put_desc(0, self.header_pa, 16, NEXT, 2)
            self.put_desc(2, self.status_pa, 1, WRITE)
        self.publish(0)
        used = self.wait_used(timeout)
        status = int(self.mem(self.status_pa, 1)[0])
        data = bytes(self.mem(self.data_pa, in_len)) if in_len else b""
        return status, data, used

    def read(self, lba: int, count: int = 1) -> bytes:
        status, data, _ = self.request(T_IN, lba, in_len=count * SECTOR)
        if status != S_OK:
            raise BlkError(status, f"read {count} at {lba}")
        return data

    def write(self, lba: int, data: bytes) -> None:
        status, _, _ = self.request(T_OUT, lba, out=data)
        if status != S_OK:
            raise BlkError(status, f"write {len(data)} bytes at {lba}")

    def flush(self) -> None:
        status, _, _ = self.request(T_FLUSH)
        if status != S_OK:
            raise BlkError(status, "flush")

    def get_id(self) -> bytes:
        status, data, _ = self.request(T_GET_ID, in_len=20)
        if status != S_OK:
            raise BlkError(status, "get_id")
        return data
