"""virtio-blk (virtio 1.2 §5.2): a BlockDevice over one split virtqueue of a virtio-mmio device.

Init follows §3.1.1 top to bottom in `VirtioBlk.__init__`. Each request is a chain: a 16-byte header the
device reads, the data, and one status byte the device writes; headers and status bytes live in one DMA
buffer, one 64-byte slot per request in flight (at most 64).

Zero-copy: when an op's Vmo has a `dma_addr` inside the device's DMA window, that address goes straight into
the descriptor. Otherwise the data is bounced through a per-slot DMA buffer and `bytes_copied` counts it.

Completion model: `queue()` may be called from any thread (one lock guards the ring). Completions are
delivered either
- by `poll(timeout)` on the caller's thread (`completions="poll"`, no threads at all: what a simulator
  bridge needs, and the fastest path), or
- by an IRQ thread the driver starts (`completions="thread"`): it waits on the interrupt (or, without one,
  polls the used ring every `poll_interval` s) and calls completions from that thread.
Completions run outside the lock and may queue more work; anything queued from inside a completion, or in
a `with dev.batch():` block, is published with one doorbell at the end.

Options: `writeback` (True/False: set the cache mode through CONFIG_WCE, or emulate writethrough with a
flush after every write when the device has a cache but no CONFIG_WCE), `readonly`, `start`/`length` (expose
blocks [start, start + length) of the disk), `queue_size`, `max_transfer` (bytes). FORCE_ACCESS writes are
followed by a FLUSH before they complete. TRIM uses WRITE_ZEROES (the blocks read back as zeroes).
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any, cast

from mmiotk import barrier
from mmiotk.bus import Device, DeviceGoneError, Driver
from mmiotk.dma import DmaBuffer, DmaPool
from mmiotk.errors import RevokedError
from mmiotk.irq import Interrupt, IrqTimeoutError
from mmiotk.policy import CachePolicy
from mmiotk.registers import RO, Register, RegisterBlock

from .block.protocol import (
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
from .virtio import VirtioError
from .virtio.mmio import Feature, Status, VirtioMmio, bit
from .virtio.virtqueue import DESC_F_WRITE, Virtqueue, le_view, ring_layout

VIRTIO_ID_BLOCK = 2
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


class VirtioBlk(BlockDevice):
    """The driver proper: give it the mapped registers, a DMA pool and (optionally) the interrupt."""

    def __init__(self, regs: Any, pool: DmaPool, irq: Interrupt | None = None, *,
                 completions: str = "thread", writeback: bool | None = None, readonly: bool = False,
                 start: int = 0, length: int | None = None, queue_size: int = 256,
                 max_transfer: int = 128 * 1024, spin: float = 50e-6, poll_interval: float = 1e-3) -> None:
        if completions not in ("thread", "poll"):
            raise ValueError(f"virtio-blk: completions must be 'thread' or 'poll', not {completions!r}")
        self.pool, self.irq, self.spin, self.poll_interval = pool, irq, spin, poll_interval
        self.bytes_copied = 0      # bounced through DMA buffers (0 when every Vmo is DMA-able)
        self.zero_copy_ops = 0
        self._lock = threading.Lock()
        self._backlog: deque[_Req] = deque()
        self._plug = 0
        self._dead = False
        self._thread: threading.Thread | None = None
        self._coherent = pool.coherent
        self._dma_lo = pool.base + pool.dma_offset
        self._dma_hi = self._dma_lo + pool.size

        # 1. reset, ACKNOWLEDGE, DRIVER (§3.1.1 steps 1-3)
        dev = self.dev = VirtioMmio(regs)
        if dev.device_id != VIRTIO_ID_BLOCK:
            raise VirtioError(f"{dev.name}: device id {dev.device_id} is not a block device ({VIRTIO_ID_BLOCK})")
        dev.reset()
        dev.regs.STATUS.write(Status.ACKNOWLEDGE)
        dev.regs.STATUS.write(Status.ACKNOWLEDGE | Status.DRIVER)
        # 2. features (steps 4-6): FEATURES_OK must stick
        wanted = sum(bit(b) for b in (BlkFeature.SIZE_MAX, BlkFeature.SEG_MAX, BlkFeature.RO, BlkFeature.BLK_SIZE,
                                      BlkFeature.FLUSH, BlkFeature.CONFIG_WCE, BlkFeature.WRITE_ZEROES,
                                      Feature.ACCESS_PLATFORM))
        dev.negotiate(wanted)
        try:
            # 3. configuration (step 7), read consistently under ConfigGeneration
            self.config = dev.config_block(VirtioBlkConfig)
            capacity, blk_size, size_max, seg_max, max_wz = dev.read_config(self._read_config)
            self.capacity = capacity  # in 512-byte sectors
            if dev.has(BlkFeature.CONFIG_WCE) and writeback is not None:
                self.config.WRITEBACK.write(int(writeback))
            if dev.has(BlkFeature.CONFIG_WCE):
                self.writeback = bool(int(self.config.WRITEBACK.read()))
            else:
                self.writeback = dev.has(BlkFeature.FLUSH)  # a device with FLUSH but no WCE caches (§5.2.5.1)
            if writeback is True and not self.writeback:
                raise VirtioError(f"{dev.name}: writeback was asked for, but the device offers neither "
                                  "CONFIG_WCE nor FLUSH: it has no write cache")
            self.emulated_writethrough = writeback is False and self.writeback
            block_size = blk_size if dev.has(BlkFeature.BLK_SIZE) else SECTOR
            if block_size < SECTOR or block_size & (block_size - 1):
                raise VirtioError(f"{dev.name}: blk_size {block_size} is not a power of two >= {SECTOR}")
            self._spb = block_size // SECTOR
            disk_blocks = capacity // self._spb
            length = disk_blocks - start if length is None else length
            if not (isinstance(start, int) and isinstance(length, int)) or start < 0 or length <= 0 \
                    or start + length > disk_blocks:
                raise ValueError(f"virtio-blk {dev.name}: range start={start!r} length={length!r} is not inside "
                                 f"the disk's {disk_blocks} blocks of {block_size} bytes")
            self._start = start
            self.max_wz_sectors = max_wz if dev.has(BlkFeature.WRITE_ZEROES) else 0
            self._size_max = size_max if dev.has(BlkFeature.SIZE_MAX) and size_max else 1 << 32
            segs = seg_max if dev.has(BlkFeature.SEG_MAX) and seg_max else 1 << 16
            max_transfer = min(max_transfer, self._size_max * segs) // block_size * block_size
            flags = BlockFlag.READONLY if readonly or dev.has(BlkFeature.RO) else BlockFlag.NONE
            self._info = BlockInfo(length, block_size, max_transfer, flags)
            self._bs, self._max_blocks = block_size, max_transfer // block_size
            self._writable = not flags & BlockFlag.READONLY
            # 4. the request queue (step 7), slots for headers and status bytes
            qmax = dev.queue_max(0)
            size = 1 << (max(1, min(queue_size, qmax)).bit_length() - 1)  # split queues: a power of two
            if size < 4:
                raise VirtioError(f"{dev.name}: queue 0 has QueueNumMax {qmax}: a request needs 3 descriptors")
            self._rings = pool.alloc(ring_layout(size)[2], align=4096, name="vq0")
            self.vq = Virtqueue(dev, 0, size, self._rings)
            nslots = min(MAX_IN_FLIGHT, size // (2 + -(-max_transfer // self._size_max)))
            self._slots = pool.alloc(SLOT * nslots, align=SLOT, name="blk-headers")
            self._slot_addr = self._slots.dma_addr
            self._h32 = le_view(self._slots, 0, SLOT * nslots, "I")
            self._h64 = le_view(self._slots, 0, SLOT * nslots, "Q")
            self._status = memoryview(cast(Any, self._slots)).cast("B")
            self._free_slots = list(range(nslots - 1, -1, -1))
            self._slot_segs = [((self._slot_addr + SLOT * k, 16, 0), (self._slot_addr + SLOT * k + 32, 1,
                                DESC_F_WRITE)) for k in range(nslots)]
            self._bounce: list[DmaBuffer | None] = [None] * nslots
            if completions == "poll":
                self.vq.suppress_interrupts(True)  # on only while poll() sleeps on the interrupt
            # 5. DRIVER_OK (step 8): the device is live
            dev.driver_ok()
        except BaseException:
            dev.fail()
            raise
        self.max_in_flight = nslots
        if completions == "thread":
            self._thread = threading.Thread(target=self._irq_loop, name=f"{dev.name}-irq", daemon=True)
            self._thread.start()

    def _read_config(self) -> tuple[int, int, int, int, int]:
        """Capacity, blk_size, size_max, seg_max, max_write_zeroes_sectors; fields of features the device
        did not offer are not read (they may not exist) and come back 0."""
        c, has = self.config, self.dev.has
        low = int(c.CAPACITY_LO.read())
        capacity = (int(c.CAPACITY_HI.read()) << 32) | low

        def field(feature: int, reg: Any) -> int:
            return int(reg.read()) if has(feature) else 0
        return (capacity, field(BlkFeature.BLK_SIZE, c.BLK_SIZE), field(BlkFeature.SIZE_MAX, c.SIZE_MAX),
                field(BlkFeature.SEG_MAX, c.SEG_MAX),
                field(BlkFeature.WRITE_ZEROES, c.MAX_WRITE_ZEROES_SECTORS))

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

    def wait_for(self, done: threading.Event, timeout: float) -> bool:
        """Wait for `done`, delivering completions meanwhile when nobody else does (poll mode)."""
        if self._thread is not None:
            return done.wait(timeout)
        deadline = time.monotonic() + timeout
        while not done.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.poll(remaining)
        return True

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Requests queued inside share one doorbell, rung on exit."""
        with self._lock:
            self._plug += 1
        try:
            yield
        finally:
            with self._lock:
                self._plug -= 1
                if not self._plug and not self._dead:
                    self.vq.kick()

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

    # --- completion ---------------------------------------------------------------------------------
    def _reap(self) -> int:
        """Deliver every returned request; returns how many ops completed."""
        done: list[tuple[Completion, BlockStatus, BlockOp]] = []
        with self._lock:
            if self._dead:
                return 0
            status_bytes, free = self._status, self._free_slots
            for req, _written in self.vq.pop_used():
                k = req.slot
                if not self._coherent:
                    cast(DmaBuffer, self._slots[SLOT * k:SLOT * (k + 1)]).sync_for_cpu()
                status = _STATUS.get(status_bytes[SLOT * k + 32], BlockStatus.IO)
                free.append(k)
                op = req.op
                if req.bounce is not None:
                    if op.command is BlockCommand.READ and status is BlockStatus.OK:
                        self._copy_in(req)
                    req.bounce = None
                elif not self._coherent and op.command is BlockCommand.READ:
                    self._sync_in_place(op)
                if req.flush_after and not req.flushing and status is BlockStatus.OK:
                    req.flushing = True  # FORCE_ACCESS: the write completes when the flush does
                    self._backlog.appendleft(req)
                    continue
                done.append((req.completion, status, op))
            backlog = self._backlog
            while backlog and self._start_req(backlog[0]):
                backlog.popleft()
            self._plug += 1  # work queued by the completions below shares one doorbell
        try:
            for completion, status, op in done:
                completion(status, op)
        finally:
            with self._lock:
                self._plug -= 1
                if not self._plug and not self._dead:
                    self.vq.kick()
        return len(done)

    def _sync_in_place(self, op: BlockOp) -> None:
        """Make what the device read into a DMA-able Vmo visible to the CPU (non-coherent pools)."""
        array, bs = op.vmo.array if op.vmo is not None else None, self._info.block_size
        if isinstance(array, DmaBuffer):
            cast(DmaBuffer, array[op.offset_vmo * bs:(op.offset_vmo + op.length) * bs]).sync_for_cpu()

    def _copy_in(self, req: _Req) -> None:
        op, bounce = req.op, req.bounce
        assert op.vmo is not None and bounce is not None
        nbytes = op.length * self._info.block_size
        if not self._coherent:
            cast(DmaBuffer, bounce[:nbytes]).sync_for_cpu()
        voff = op.offset_vmo * self._info.block_size
        op.vmo.array[voff:voff + nbytes] = bounce[:nbytes]
        self.bytes_copied += nbytes

    def poll(self, timeout: float = 0.0) -> int:
        """Deliver completions on this thread, waiting up to `timeout` s for at least one; returns how many.

        It spins on the used ring for `spin` s, then waits on the interrupt or reads InterruptStatus (a
        register access: what lets a simulated device make progress)."""
        n = self._reap()
        if n or timeout <= 0:
            return n
        now = time.monotonic()
        deadline, spin_end = now + timeout, now + self.spin
        vq = self.vq
        while not self._dead:
            if vq.has_used():
                n = self._reap()
                if n:
                    return n
            now = time.monotonic()
            if now >= deadline:
                return 0
            if now >= spin_end:
                self._wait_device(min(deadline - now, 0.05))
        return 0

    def _wait_device(self, timeout: float) -> None:
        """Wait for the interrupt (or look at InterruptStatus) and acknowledge it at device and controller.

        A polling driver keeps the device's interrupts off (avail NO_INTERRUPT) and turns them on only to
        sleep, checking the used ring once more after turning them on so no completion slips between."""
        irq, vq = self.irq, self.vq
        if irq is not None:
            if self._thread is None:
                vq.suppress_interrupts(False)
                barrier.mb()
                if vq.has_used():
                    vq.suppress_interrupts(True)
                    return
            try:
                irq.wait(timeout)
            except IrqTimeoutError:
                return
            finally:
                if self._thread is None:
                    vq.suppress_interrupts(True)
        self.dev.ack_interrupt(self.dev.interrupt_status())
        if irq is not None:
            irq.ack()

    def _irq_loop(self) -> None:
        while not self._dead:
            try:
                if self.irq is not None:
                    self._wait_device(0.1)
                else:
                    time.sleep(self.poll_interval)
                self._reap()
            except RevokedError:
                return  # unbind revoked the registers or the line; unbind() fails what is left

    # --- teardown -----------------------------------------------------------------------------------
    @property
    def dead(self) -> bool:
        return self._dead

    def unbind(self, timeout: float = 2.0) -> None:
        """Stop the device; every op in flight or queued, and every later op, completes IO_NOT_PRESENT."""
        with self._lock:
            if self._dead:
                return
            self._dead = True
            with contextlib.suppress(RevokedError):
                self.dev.reset()  # the device stops using the rings and buffers
            pending = [*self.vq.detach_all(), *self._backlog]
            self._backlog.clear()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        for req in pending:
            req.completion(BlockStatus.IO_NOT_PRESENT, req.op)

    def release(self) -> None:
        """Free the DMA buffers (after unbind)."""
        for buf in (self._rings, self._slots, *self._bounce):
            if buf is not None and not buf.freed and not self.pool.closed:
                buf.free()
        self._bounce = [None] * len(self._bounce)

    def __repr__(self) -> str:
        i = self._info
        return (f"<VirtioBlk {self.dev.name} {i.block_count} x {i.block_size} B, "
                f"{'writeback' if self.writeback else 'writethrough'}{', ro' if i.flags & BlockFlag.READONLY else ''}>")


class VirtioBlkDriver(Driver, BlockDevice):
    """Binds virtio-mmio block devices on a bus; the bound driver is itself the BlockDevice.

    Options come from the device's board `properties` (`completions`, `writeback`, `readonly`, `start`,
    `length`, `queue-size`, `max-transfer`, `spin`) and are overridden by keyword arguments given to the
    constructor (a bus factory: `bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(...))`).
    A virtio device of another type is refused, so the bus tries the next driver.
    """

    compatible = ("virtio,mmio",)

    def __init__(self, **options: Any) -> None:
        super().__init__()
        self.options = options
        self.blk: VirtioBlk | None = None

    def bind(self, device: Device) -> None:
        props = {k.replace("-", "_"): v for k, v in device.properties.items()}
        options = {**props, **self.options}
        regs = device.mmio(0).map(CachePolicy.UNCACHED_DEVICE)
        irq = device.irq(0) if device.num_irqs else None
        self.blk = VirtioBlk(regs, device.dma_pool(), irq, **options)

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
        blk = self.blk
        if blk is None:
            completion(BlockStatus.IO_NOT_PRESENT, op)
            return
        blk.queue(op, completion)

    def wait_for(self, done: threading.Event, timeout: float) -> bool:
        return self._bound().wait_for(done, timeout)

    def _bound(self) -> VirtioBlk:
        if self.blk is None:
            raise DeviceGoneError(f"{self.name}: not bound to a device")
        return self.blk
