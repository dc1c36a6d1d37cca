"""virtio-blk (virtio 1.2 §5.2): a BlockDevice over one split virtqueue, on virtio-mmio or virtio-pci.

Init follows §3.1.1 top to bottom in `VirtioBlk.__init__` (the generic steps in `virtio.device`). Each
request is a chain: a 16-byte header the device reads, the data, one status byte the device writes. Headers
and status bytes live in one DMA buffer, a 64-byte slot per request in flight (at most 64); requests beyond
that, or beyond the ring's free descriptors, wait in a backlog.

Zero-copy: when an op's Vmo has a `dma_addr` inside the device's DMA window, that address goes straight into
the descriptor. Otherwise the data is bounced through the slot's DMA buffer and `bytes_copied` counts it.

Completions: by `poll()` or an IRQ thread, batched doorbells: see `virtio.device`.

Options: `writeback` (True/False: set the cache mode through CONFIG_WCE, or emulate writethrough with a
flush after every write when the device has a cache but no CONFIG_WCE), `readonly`, `start`/`length` (expose
blocks [start, start + length) of the disk), `queue_size`, `max_transfer` (bytes). FORCE_ACCESS writes are
followed by a FLUSH before they complete. TRIM uses WRITE_ZEROES (the blocks read back as zeroes).
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, cast

from mmiotk.bus import Device, DeviceGoneError, Driver
from mmiotk.dma import DmaBuffer, DmaPool
from mmiotk.irq import Interrupt
from mmiotk.policy import CachePolicy
from mmiotk.registers import RO, Register, RegisterBlock

from ..block.protocol import (
    BlockCommand,
    BlockDevice,
    BlockFlag,
    BlockInfo,
    BlockOp,
    BlockStatus,
    Completion,
    OpFlag,
    validate,
)
from ..bus.pci import PciDevice
from . import VirtioError
from .device import Done, VirtioDevice
from .mmio import Feature, bit
from .pci import VIRTIO_PCI_MODERN_DEVICE_ID_BASE, VIRTIO_PCI_VENDOR_ID, VirtioPci
from .virtqueue import DESC_F_WRITE, le_view

SECTOR = 512                  # the unit of `sector` in every request, whatever blk_size says
MAX_IN_FLIGHT = 64
SLOT = 64                     # bytes per request slot: header @0, write-zeroes segment @16, status @32


class BlkFeature:
    SIZE_MAX = 1
    SEG_MAX = 2
    RO = 5
    BLK_SIZE = 6
    FLUSH = 9
    CONFIG_WCE = 11
    WRITE_ZEROES = 14


class ReqType:
    IN = 0
    OUT = 1
    FLUSH = 4
    WRITE_ZEROES = 13


_READ, _WRITE = BlockCommand.READ, BlockCommand.WRITE
_STATUS = {0: BlockStatus.OK, 1: BlockStatus.IO, 2: BlockStatus.NOT_SUPPORTED}  # OK, IOERR, UNSUPP


class VirtioBlkConfig(RegisterBlock, name="virtio-blk config"):
    """struct virtio_blk_config (§5.2.4); 64-bit capacity as two 32-bit halves (§4.2.2.2)."""

    CAPACITY_LO = Register(0x00, access=RO)
    CAPACITY_HI = Register(0x04, access=RO)
    SIZE_MAX = Register(0x08, access=RO)
    SEG_MAX = Register(0x0C, access=RO)
    BLK_SIZE = Register(0x14, access=RO)
    WRITEBACK = Register(0x20, width=8)
    MAX_WRITE_ZEROES_SECTORS = Register(0x30, access=RO)


class _Req:
    __slots__ = ("bounce", "completion", "flush_after", "flushing", "op", "slot")

    def __init__(self, op: BlockOp, completion: Completion, flush_after: bool) -> None:
        self.op, self.completion, self.flush_after = op, completion, flush_after
        self.flushing = False  # the write is done; the FLUSH that makes it durable is in flight
        self.slot = -1
        self.bounce: DmaBuffer | None = None


class VirtioBlk(VirtioDevice, BlockDevice):
    """The driver proper: give it the mapped registers, a DMA pool and (optionally) the interrupt."""

    device_id = 2
    device_kind = "block device"

    def __init__(self, regs: Any, pool: DmaPool, irq: Interrupt | None = None, *,
                 completions: str = "thread", writeback: bool | None = None, readonly: bool = False,
                 start: int = 0, length: int | None = None, queue_size: int = 256,
                 max_transfer: int = 128 * 1024, spin: float = 50e-6, poll_interval: float = 1e-3) -> None:
        self.bytes_copied = 0      # bounced through DMA buffers (0 when every Vmo is DMA-able)
        self.zero_copy_ops = 0
        self._backlog: deque[_Req] = deque()
        self._dma_lo = pool.base + pool.dma_offset
        self._dma_hi = self._dma_lo + pool.size
        self._coherent = pool.coherent
        # 1. reset, ACKNOWLEDGE, DRIVER (§3.1.1 steps 1-3)
        super().__init__(regs, pool, irq, completions=completions, spin=spin, poll_interval=poll_interval)
        dev = self.dev
        # 2. features (steps 4-6): FEATURES_OK must stick
        dev.negotiate(sum(bit(b) for b in (
            BlkFeature.SIZE_MAX, BlkFeature.SEG_MAX, BlkFeature.RO, BlkFeature.BLK_SIZE, BlkFeature.FLUSH,
            BlkFeature.CONFIG_WCE, BlkFeature.WRITE_ZEROES, Feature.ACCESS_PLATFORM)))
        try:
            # 3. configuration (step 7), read consistently under ConfigGeneration
            self.config = dev.config_block(VirtioBlkConfig)
            capacity, blk_size, size_max, seg_max, max_wz = dev.read_config(self._read_config)
            self.capacity = capacity  # in 512-byte sectors
            if dev.has(BlkFeature.CONFIG_WCE):
                if writeback is not None:
                    self.config.WRITEBACK.write(int(writeback))
                self.writeback = bool(int(self.config.WRITEBACK.read()))
            else:
                self.writeback = dev.has(BlkFeature.FLUSH)  # a device with FLUSH but no WCE caches (§5.2.5.1)
            if writeback is True and not self.writeback:
                raise VirtioError(f"{dev.name}: writeback was asked for, but the device offers neither "
                                  "CONFIG_WCE nor FLUSH: it has no write cache")
            self.emulated_writethrough = writeback is False and self.writeback
            bs = blk_size if dev.has(BlkFeature.BLK_SIZE) else SECTOR
            if bs < SECTOR or bs & (bs - 1):
                raise VirtioError(f"{dev.name}: blk_size {bs} is not a power of two >= {SECTOR}")
            self._spb = bs // SECTOR
            disk_blocks = capacity // self._spb
            length = disk_blocks - start if length is None else length
            if not (isinstance(start, int) and isinstance(length, int)) or start < 0 or length <= 0 \
                    or start + length > disk_blocks:
                raise ValueError(f"virtio-blk {dev.name}: range start={start!r} length={length!r} is not inside "
                                 f"the disk's {disk_blocks} blocks of {bs} bytes")
            self._start = start
            self.max_wz_sectors = max_wz if dev.has(BlkFeature.WRITE_ZEROES) else 0
            self._size_max = size_max if dev.has(BlkFeature.SIZE_MAX) and size_max else 1 << 32
            segs = seg_max if dev.has(BlkFeature.SEG_MAX) and seg_max else 1 << 16
            max_transfer = min(max_transfer, self._size_max * segs) // bs * bs
            flags = BlockFlag.READONLY if readonly or dev.has(BlkFeature.RO) else BlockFlag.NONE
            flags |= BlockFlag.FUA_SUPPORT  # FORCE_ACCESS is handled here (a FLUSH after the write)
            if self.max_wz_sectors:
                flags |= BlockFlag.TRIM_SUPPORT
            self._info = BlockInfo(length, bs, max_transfer, flags)
            self._bs, self._max_blocks, self._writable = bs, max_transfer // bs, not flags & BlockFlag.READONLY
            # 4. the request queue (step 7), and a slot per request in flight for header and status
            vq = self.setup_queue(queue_size)
            nslots = min(MAX_IN_FLIGHT, vq.size // (2 + -(-max_transfer // self._size_max)))
            self._slots = pool.alloc(SLOT * nslots, align=SLOT, name="blk-headers")
            base = self._slots.dma_addr
            self._h32 = le_view(self._slots, 0, SLOT * nslots, "I")
            self._h64 = le_view(self._slots, 0, SLOT * nslots, "Q")
            self._status = memoryview(cast(Any, self._slots)).cast("B")
            self._free_slots = list(range(nslots - 1, -1, -1))
            self._slot_segs = [((base + SLOT * k, 16, 0), (base + SLOT * k + 32, 1, DESC_F_WRITE))
                               for k in range(nslots)]
            self._bounce: list[DmaBuffer | None] = [None] * nslots
            self.max_in_flight = nslots
            # 5. DRIVER_OK (step 8): the device is live
            self.start()
        except BaseException:
            dev.fail()
            raise

    def _read_config(self) -> tuple[int, int, int, int, int]:
        """Capacity, blk_size, size_max, seg_max, max_write_zeroes_sectors; fields of features the device
        did not offer are not read (they may not exist) and come back 0."""
        c, has = self.config, self.dev.has
        low = int(c.CAPACITY_LO.read())
        capacity = (int(c.CAPACITY_HI.read()) << 32) | low

        def field(feature: int, reg: Any) -> int:
            return int(reg.read()) if has(feature) else 0
        return (capacity, field(BlkFeature.BLK_SIZE, c.BLK_SIZE), field(BlkFeature.SIZE_MAX, c.SIZE_MAX),
                field(BlkFeature.SEG_MAX, c.SEG_MAX), field(BlkFeature.WRITE_ZEROES, c.MAX_WRITE_ZEROES_SECTORS))

    # --- the block protocol -------------------------------------------------------------------------
    def query(self) -> BlockInfo:
        return self._info

    def queue(self, op: BlockOp, completion: Completion) -> None:
        if self._dead:
            completion(BlockStatus.IO_NOT_PRESENT, op)
            return
        cmd, vmo, n = op.command, op.vmo, op.length
        # Fast path: a read/write that is plainly valid (a subset of what validate() accepts); anything
        # else goes through validate() itself, so the statuses are exactly the protocol's.
        if (cmd is _READ or (cmd is _WRITE and self._writable)) and vmo is not None and 0 < n <= self._max_blocks \
                and 0 <= op.offset_dev <= self._info.block_count - n and 0 <= op.offset_vmo \
                and (op.offset_vmo + n) * self._bs <= vmo.array.size:
            status = None
        else:
            status = self._check(op)
        if status is not None:
            completion(status, op)
            return
        req = _Req(op, completion, cmd is _WRITE and self.writeback
                   and (self.emulated_writethrough or bool(op.flags and op.flags & OpFlag.FORCE_ACCESS)))
        with self._lock:
            if self._dead:
                req = None
            elif self._backlog or not self._start_req(req):
                self._backlog.append(req)
            if req is not None and not self._plug:
                self.vq.kick()
        if req is None:
            completion(BlockStatus.IO_NOT_PRESENT, op)

    def _check(self, op: BlockOp) -> BlockStatus | None:
        """protocol.validate, plus what this device adds: FLUSH without a cache, TRIM limits."""
        status = validate(self._info, op)
        cmd = op.command
        if status is None and cmd is BlockCommand.FLUSH and not self.writeback:
            status = BlockStatus.OK  # no volatile cache: every completed write is already durable
        elif status is None and cmd is BlockCommand.TRIM and op.length * self._spb > self.max_wz_sectors:
            status = BlockStatus.OUT_OF_RANGE if self.max_wz_sectors else BlockStatus.NOT_SUPPORTED
        return status

    # --- submission (under the lock) ----------------------------------------------------------------
    def _start_req(self, req: _Req) -> bool:
        """Put `req` in a free slot and on the ring; False (nothing changed) when there is no room."""
        free = self._free_slots
        if not free:
            return False
        op, k = req.op, free[-1]
        cmd = op.command
        if (cmd is _READ or cmd is _WRITE) and not req.flushing:
            segs = self._rw_segments(req, op, k)
            if segs is None:
                return False
            kind = ReqType.IN if cmd is _READ else ReqType.OUT
        else:
            hdr, status_seg = self._slot_segs[k]
            if cmd is BlockCommand.TRIM:
                kind, segs = ReqType.WRITE_ZEROES, [hdr, (hdr[0] + 16, 16, 0), status_seg]
                self._h64[8 * k + 2] = (op.offset_dev + self._start) * self._spb
                self._h32[16 * k + 6] = op.length * self._spb
                self._h32[16 * k + 7] = 0  # flags: no UNMAP
            else:
                kind, segs = ReqType.FLUSH, [hdr, status_seg]
            if self.vq.num_free < len(segs):
                return False
        self._h32[16 * k] = kind
        self._h64[8 * k + 1] = 0 if kind == ReqType.FLUSH else (op.offset_dev + self._start) * self._spb
        self._status[SLOT * k + 32] = 0xFF  # the device overwrites it
        if not self._coherent:
            cast(DmaBuffer, self._slots[SLOT * k:SLOT * (k + 1)]).sync_for_device()
        self.vq.add(segs, req)
        free.pop()
        req.slot = k
        return True

    def _rw_segments(self, req: _Req, op: BlockOp, k: int) -> list[tuple[int, int, int]] | None:
        """Header, data and status segments of a read or write in slot k; None when the ring is full."""
        bs, vmo = self._bs, op.vmo
        assert vmo is not None
        nbytes, voff = op.length * bs, op.offset_vmo * bs
        step = self._size_max
        if self.vq.num_free < 2 + -(-nbytes // step):
            return None
        read = op.command is _READ
        flag = DESC_F_WRITE if read else 0
        addr = vmo.dma_addr
        if addr is not None and self._dma_lo <= addr + voff and addr + voff + nbytes <= self._dma_hi:
            addr += voff
            self.zero_copy_ops += 1
            if not self._coherent and isinstance(vmo.array, DmaBuffer):
                cast(DmaBuffer, vmo.array[voff:voff + nbytes]).sync_for_device()
        else:
            addr = self._bounce_out(req, k, nbytes, voff, read)
        hdr, status_seg = self._slot_segs[k]
        if nbytes <= step:
            return [hdr, (addr, nbytes, flag), status_seg]
        return [hdr, *((addr + o, min(step, nbytes - o), flag) for o in range(0, nbytes, step)), status_seg]

    def _bounce_out(self, req: _Req, k: int, nbytes: int, voff: int, read: bool) -> int:
        """Slot k's bounce buffer for data the device cannot reach in place; filled now for writes."""
        bounce = self._bounce[k]
        if bounce is None:
            bounce = self._bounce[k] = self.pool.alloc(self._info.max_transfer_size, align=4096,
                                                       name=f"bounce{k}", zero=False)
        req.bounce = bounce
        if not read:
            assert req.op.vmo is not None
            bounce[:nbytes] = req.op.vmo.array[voff:voff + nbytes]
            self.bytes_copied += nbytes
            if not self._coherent:
                cast(DmaBuffer, bounce[:nbytes]).sync_for_device()
        return int(bounce.dma_addr)

    # --- completion (under the lock; VirtioDevice calls the callbacks after releasing it) --------------
    def _complete(self, req: _Req, written: int, done: Done) -> None:
        k, op = req.slot, req.op
        if not self._coherent:
            cast(DmaBuffer, self._slots[SLOT * k:SLOT * (k + 1)]).sync_for_cpu()
        status = _STATUS.get(self._status[SLOT * k + 32], BlockStatus.IO)
        self._free_slots.append(k)
        if op.command is _READ and status is BlockStatus.OK and not req.flushing:
            self._data_in(req)
        req.bounce = None
        if req.flush_after and not req.flushing and status is BlockStatus.OK:
            req.flushing = True  # FORCE_ACCESS: the write completes when the flush does
            self._backlog.appendleft(req)
            return
        done.append((req.completion, status, op))

    def _data_in(self, req: _Req) -> None:
        """What the device read: copy it out of the bounce buffer, or make the Vmo's own memory visible to
        the CPU (non-coherent pools)."""
        op, bs = req.op, self._bs
        assert op.vmo is not None
        lo, hi = op.offset_vmo * bs, (op.offset_vmo + op.length) * bs
        bounce, array = req.bounce, op.vmo.array
        if bounce is not None:
            if not self._coherent:
                cast(DmaBuffer, bounce[:hi - lo]).sync_for_cpu()
            array[lo:hi] = bounce[:hi - lo]
            self.bytes_copied += hi - lo
        elif not self._coherent and isinstance(array, DmaBuffer):
            cast(DmaBuffer, array[lo:hi]).sync_for_cpu()

    def _restart(self) -> None:
        backlog = self._backlog
        while backlog and self._start_req(backlog[0]):
            backlog.popleft()

    def _detach(self) -> Done:
        pending = [*self.vq.detach_all(), *self._backlog]
        self._backlog.clear()
        return [(req.completion, BlockStatus.IO_NOT_PRESENT, req.op) for req in pending]

    def release(self) -> None:
        """Free the DMA buffers (after unbind)."""
        self._free(self._slots, *self._bounce)
        self._bounce = [None] * len(self._bounce)
        super().release()

    def __repr__(self) -> str:
        i = self._info
        return (f"<VirtioBlk {self.dev.name} {i.block_count} x {i.block_size} B, "
                f"{'writeback' if self.writeback else 'writethrough'}{', ro' if i.flags & BlockFlag.READONLY else ''}>")


class VirtioBlkDriver(Driver, BlockDevice):
    """Binds virtio-mmio block devices and virtio-blk-pci functions; the bound driver is itself the BlockDevice.

    Options come from a platform device's board `properties` (`completions`, `writeback`, `readonly`, `start`,
    `length`, `queue-size`, `max-transfer`, `spin`) and are overridden by keyword arguments given to the
    constructor (a bus factory: `bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(...))`).
    A virtio device of another type is refused, so the bus tries the next driver.
    """

    compatible = ("virtio,mmio",)
    ids = ((VIRTIO_PCI_VENDOR_ID, VIRTIO_PCI_MODERN_DEVICE_ID_BASE + VirtioBlk.device_id),)  # virtio-blk-pci

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options
        self.blk: VirtioBlk | None = None

    def bind(self, device: Device) -> None:
        if isinstance(device, PciDevice):  # its properties describe the function (class_code), not options
            props: dict[str, Any] = {}
            regs: Any = VirtioPci.from_device(device)
        else:
            props = {k.replace("-", "_"): v for k, v in device.properties.items()}
            regs = device.mmio(0).map(CachePolicy.UNCACHED_DEVICE)
        irq = device.irq(0) if device.num_irqs else None
        self.blk = VirtioBlk(regs, device.dma_pool(), irq, **{**props, **self.options})

    def unbind(self) -> None:
        if self.blk is not None:
            self.blk.unbind()
        super().unbind()

    def release(self) -> None:
        if self.blk is not None:
            self.blk.release()

    def query(self) -> BlockInfo:
        return self._bound().query()

    def queue(self, op: BlockOp, completion: Completion) -> None:
        if self.blk is None:
            completion(BlockStatus.IO_NOT_PRESENT, op)
            return
        self.blk.queue(op, completion)

    def wait_for(self, done: threading.Event, timeout: float) -> bool:
        return self._bound().wait_for(done, timeout)

    def _bound(self) -> VirtioBlk:
        if self.blk is None:
            raise DeviceGoneError(f"{self.name}: not bound to a device")
        return self.blk
