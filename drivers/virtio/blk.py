"""virtio-blk (virtio 1.2 §5.2): a BlockDevice over one split virtqueue, on virtio-mmio or virtio-pci.

Init follows §3.1.1 top to bottom in `VirtioBlk.__init__` (the generic steps in `virtio.device`; feature
bits, config layout and request structures in `virtio.blk_uapi`). Each request is a chain (§5.2.6, `struct
virtio_blk_req`): the header `out_hdr` (type, sector) the device reads, the data, one `status` byte the
device writes. Headers and status bytes live in one DMA buffer, a 64-byte
`VirtioBlkReqSlot` per request in flight (at most 64; `virtio.blk_slot`), written through its fields as
Linux's virtio_blk.c writes `vbr->out_hdr` (a read or write sets header and status with one struct store of
the same layout, the hot path's cheaper form); everything else a slot needs (its descriptors, its bounce
buffer) is computed once. Requests beyond the free slots, or beyond the ring's free descriptors, wait in a
backlog. `queue_many` submits a batch under one lock and one doorbell; `queue` is a batch of one.

Zero-copy: when an op's Vmo has a `dma_addr` inside the device's DMA window, that address goes straight into
the descriptor. Otherwise the data is bounced through the slot's DMA buffer and `bytes_copied` counts it.

Each slot also keeps its own three-descriptor chain (header, data, status), reserved once when the ring has
room beside those chains for any other request: a read or write with one data segment rewrites only the
data descriptor and the avail entry. Flushes, write-zeroes and multi-segment transfers take descriptors from
the free list.

Where completions come from: the device returns each chain on the used ring; `VirtioDevice` reaps the
ring (in `poll()` on the caller's thread with completions="poll", else on its IRQ thread) and calls
`_complete` here under the lock with the chain's token, its slot (which holds the request, as Linux's
per-tag `virtblk_req` does): it reads the slot's `status` byte, copies bounced reads out and frees the slot;
the op's completion callback then runs outside the lock, on that same thread. On unbind every request
still on the ring or in the backlog completes IO_NOT_PRESENT (`_detach`).

Options: `writeback` (True/False: set the cache mode through CONFIG_WCE, or emulate writethrough with a
flush after every write when the device has a cache but no CONFIG_WCE), `readonly`, `start`/`length` (expose
blocks [start, start + length) of the disk), `queue_size`, `max_transfer` (bytes), `indirect_threshold`
(chains of more segments go through an indirect table when the device offers RING_INDIRECT_DESC).
FORCE_ACCESS writes are followed by a FLUSH before they complete. TRIM uses WRITE_ZEROES (the blocks read
back as zeroes; the header's sector is 0, the range is in the segment, §5.2.6). EVENT_IDX is used when
offered; TOPOLOGY goes into `BlockInfo`; legacy (Version 1) devices bind too.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

from mmiotk.bus import Device
from mmiotk.dma import DmaBuffer, DmaPool
from mmiotk.irq import Interrupt
from mmiotk.policy import CachePolicy

from ..block.driver import BlockDriver
from ..block.protocol import (
    BlockCommand,
    BlockDevice,
    BlockFlag,
    BlockInfo,
    BlockOp,
    BlockStatus,
    Completion,
    OpFlag,
    Vmo,
    validate,
)
from ..bus.pci import PciDevice
from . import VirtioError
from .blk_slot import SLOT, RequestSlot, WaitingRequest, pack_rw_header
from .blk_uapi import (
    SECTOR,
    BlkFeature,
    ReqStatus,
    ReqType,
    VirtioBlkConfig,
)
from .device import DEFAULT_REQUEST_TIMEOUT, Done, VirtioDevice, deliver
from .mmio import Feature, bit
from .pci import VIRTIO_PCI_MODERN_DEVICE_ID_BASE, VIRTIO_PCI_VENDOR_ID, VirtioPci
from .virtqueue import DESC_F_WRITE

log = logging.getLogger(__name__)

MAX_IN_FLIGHT = 64


_READ, _WRITE = BlockCommand.READ, BlockCommand.WRITE
_OK, _IO = BlockStatus.OK, BlockStatus.IO
_STATUS = {ReqStatus.OK: BlockStatus.OK, ReqStatus.IOERR: BlockStatus.IO,
           ReqStatus.UNSUPP: BlockStatus.NOT_SUPPORTED}
_STATUS_OF = tuple(_STATUS.get(byte, BlockStatus.IO) for byte in range(256))  # any other byte: IO


_IN, _OUT = ReqType.IN, ReqType.OUT


class VirtioBlk(VirtioDevice, BlockDevice):
    """The driver proper: give it the mapped registers, a DMA pool and (optionally) the interrupt."""

    device_id = 2
    device_kind = "block device"

    def __init__(self, regs: Any, pool: DmaPool, irq: Interrupt | None = None, *,
                 completions: str = "thread", writeback: bool | None = None, readonly: bool = False,
                 start: int = 0, length: int | None = None, queue_size: int = 256,
                 max_transfer: int = 128 * 1024, spin: float = 50e-6, poll_interval: float = 1e-3,
                 indirect_threshold: int = 3, request_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> None:
        for option, value in (("writeback", writeback), ("readonly", readonly)):
            if not isinstance(value, bool) and not (option == "writeback" and value is None):
                raise ValueError(f"virtio-blk: option {option!r} must be true or false, got {value!r}")
        self.bytes_copied = 0      # bounced through DMA buffers (0 when every Vmo is DMA-able)
        self.zero_copy_ops = 0
        self._backlog: deque[WaitingRequest] = deque()
        self._dma_lo = pool.base + pool.dma_offset
        self._dma_hi = self._dma_lo + pool.size
        self._coherent = pool.coherent
        # 1. reset, ACKNOWLEDGE, DRIVER (§3.1.1 steps 1-3)
        super().__init__(regs, pool, irq, completions=completions, spin=spin, poll_interval=poll_interval,
                         request_timeout=request_timeout)
        dev = self.dev
        # 2. features (steps 4-6): FEATURES_OK must stick
        dev.negotiate(sum(bit(b) for b in (
            BlkFeature.SIZE_MAX, BlkFeature.SEG_MAX, BlkFeature.RO, BlkFeature.BLK_SIZE, BlkFeature.FLUSH,
            BlkFeature.CONFIG_WCE, BlkFeature.WRITE_ZEROES, BlkFeature.TOPOLOGY, Feature.ACCESS_PLATFORM,
            Feature.RING_INDIRECT_DESC, Feature.RING_EVENT_IDX)))
        try:
            # 3. configuration (step 7), read consistently under ConfigGeneration
            self.config = dev.config_block(VirtioBlkConfig)
            capacity, blk_size, size_max, seg_max, max_wz, topology = dev.read_config(self._read_config)
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
            self._flush_writes = self.writeback  # writes may need a FLUSH after them (FORCE_ACCESS, writethrough)
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
            self._start_block = start
            self.max_wz_sectors = max_wz if dev.has(BlkFeature.WRITE_ZEROES) else 0
            self._size_max = size_max if dev.has(BlkFeature.SIZE_MAX) and size_max else 1 << 32
            segs = seg_max if dev.has(BlkFeature.SEG_MAX) and seg_max else 1 << 16
            max_transfer = min(max_transfer, self._size_max * segs) // bs * bs
            flags = BlockFlag.READONLY if readonly or dev.has(BlkFeature.RO) else BlockFlag.NONE
            flags |= BlockFlag.FUA_SUPPORT  # FORCE_ACCESS is handled here (a FLUSH after the write)
            if self.max_wz_sectors:
                flags |= BlockFlag.TRIM_SUPPORT
            topo = {}
            if dev.has(BlkFeature.TOPOLOGY):
                exp, align, min_io, opt_io = topology
                topo = {"physical_block_size": bs << exp, "alignment_offset": align * bs,
                        "min_io_size": min_io * bs, "opt_io_size": opt_io * bs}
            self._info = BlockInfo(length, bs, max_transfer, flags, **topo)
            self._blocks = length
            self._bs, self._max_blocks, self._writable = bs, max_transfer // bs, not flags & BlockFlag.READONLY
            # 4. the request queue (step 7), and a slot per request in flight for header and status
            segs_per_req = 2 + -(-max_transfer // self._size_max)
            vq = self.setup_queue(queue_size, indirect_entries=min(segs_per_req, 1024),
                                  indirect_threshold=indirect_threshold)
            nslots = min(MAX_IN_FLIGHT, vq.size if self._indirect is not None else vq.size // segs_per_req)
            self._slots = pool.alloc(SLOT * nslots, align=SLOT, name="blk-headers")
            self._slot_list = [RequestSlot(self._slots, k) for k in range(nslots)]
            self._slot_bytes = memoryview(cast(Any, self._slots)).cast("B")
            # Each slot keeps its own header-data-status chain (one descriptor rewritten per request) when the
            # ring still has room beside them for the longest chain of any other request, and three-segment
            # chains are not to go through indirect tables.
            other = 3 if self._indirect is not None else max(3, segs_per_req)
            if vq.size - 3 * nslots >= other and (self._indirect is None or indirect_threshold >= 3):
                for slot in self._slot_list:
                    slot.chain = vq.reserve([slot.hdr_seg, (slot.hdr_seg[0], 0, DESC_F_WRITE), slot.status_seg], 1)
            # taken from the left, returned on the right: a steady stream of requests whose buffers come back
            # in the order they completed finds each buffer's address already in its slot's descriptor
            self._free_slots = deque(self._slot_list)
            self._add_reserved = vq.add_reserved
            self.max_in_flight = nslots
            # what queue_many reads for every batch, none of which changes once the device is up: one load
            self._submit_state = (
                self._backlog, self._start_request, self._free_slots, self._add_reserved, self._slot_bytes,
                self._writable, self._max_blocks, self._blocks, self._bs, self._dma_lo, self._dma_hi,
                self._size_max, self._spb, self._start_block, self._coherent, self._flush_writes,
                self.emulated_writethrough)
            # 5. DRIVER_OK (step 8): the device is live
            self.start()
        except BaseException:
            dev.fail()
            raise

    def _read_config(self) -> tuple[int, int, int, int, int, tuple[int, int, int, int]]:
        """Capacity, blk_size, size_max, seg_max, max_write_zeroes_sectors, topology (physical_block_exp,
        alignment_offset, min_io_size, opt_io_size); fields of features the device did not offer are not read
        (they may not exist) and come back 0."""
        c, has = self.config, self.dev.has
        low = int(c.CAPACITY_LO.read())
        capacity = (int(c.CAPACITY_HI.read()) << 32) | low

        def field(feature: int, reg: Any) -> int:
            return int(reg.read()) if has(feature) else 0
        topology = (field(BlkFeature.TOPOLOGY, c.PHYSICAL_BLOCK_EXP), field(BlkFeature.TOPOLOGY, c.ALIGNMENT_OFFSET),
                    field(BlkFeature.TOPOLOGY, c.MIN_IO_SIZE), field(BlkFeature.TOPOLOGY, c.OPT_IO_SIZE))
        return (capacity, field(BlkFeature.BLK_SIZE, c.BLK_SIZE), field(BlkFeature.SIZE_MAX, c.SIZE_MAX),
                field(BlkFeature.SEG_MAX, c.SEG_MAX), field(BlkFeature.WRITE_ZEROES, c.MAX_WRITE_ZEROES_SECTORS),
                topology)

    # --- the block protocol -------------------------------------------------------------------------
    def query(self) -> BlockInfo:
        return self._info

    def queue(self, op: BlockOp, completion: Completion) -> None:
        self.queue_many((op,), completion)

    def queue_many(self, ops: Sequence[BlockOp], completion: Completion) -> None:
        """Every op on the ring (or in the backlog) under one hold of the lock, then one doorbell; ops
        answered at once (refused, or needing no device) complete after the lock is released, in order.

        The common request - a plainly valid zero-copy read or write, a free slot with its own chain, nothing
        waiting - is put on the ring right here, the same steps as `_start_request` takes for it, unrolled:
        that is most of the driver's CPU per request (bench_block, QEMU at QD16). Everything else goes through
        `_check` and `_start_request`."""
        at_once: Done = []  # ops answered without the device (refused, or a FLUSH with no cache)
        kick_error = None
        self._acquire()
        try:
            if self._dead:
                at_once = [(completion, BlockStatus.IO_NOT_PRESENT, op) for op in ops]
            else:
                backlog, start, free, add_reserved, slot_bytes, writable, max_blocks, blocks, bs, lo, hi, \
                    size_max, spb, first, coherent, flush_writes, writethrough = self._submit_state
                zero_copy = 0
                for op in ops:
                    cmd, vmo, n, dev_off, vmo_off = op.command, op.vmo, op.length, op.offset_dev, op.offset_vmo
                    # A read/write that is plainly valid (a subset of what validate() accepts); anything else
                    # goes through validate() itself, so the statuses are exactly the protocol's.
                    plain = (cmd is _READ or (cmd is _WRITE and writable)) and vmo.__class__ is Vmo \
                        and n.__class__ is int and dev_off.__class__ is int and vmo_off.__class__ is int \
                        and 0 < n <= max_blocks and 0 <= dev_off <= blocks - n and 0 <= vmo_off \
                        and (vmo_off + n) * bs <= vmo.array.size
                    if not plain:
                        status = self._check(op)
                        if status is not None:
                            at_once.append((completion, status, op))
                            continue
                    flush_after = cmd is _WRITE and flush_writes \
                        and (writethrough or bool(op.flags and op.flags & OpFlag.FORCE_ACCESS))
                    if plain and coherent and free and not backlog and not flush_after:
                        slot, nbytes, addr = free[0], n * bs, vmo.dma_addr  # type: ignore[union-attr]
                        chain = slot.chain
                        if chain is not None and nbytes <= size_max and addr is not None \
                                and lo <= (addr := addr + vmo_off * bs) <= hi - nbytes:
                            read = cmd is _READ
                            pack_rw_header(slot_bytes, slot.offset, _IN if read else _OUT, 0,
                                            (dev_off + first) * spb, 0xFF)
                            try:
                                add_reserved(chain, addr, nbytes, DESC_F_WRITE if read else 0, slot)
                            except Exception:  # changed nothing: this request fails alone
                                log.exception("%s: a request could not be put on the ring", self.dev.name)
                                at_once.append((completion, BlockStatus.IO, op))
                                continue
                            free.popleft()  # a free slot's bounced, flush_after and flushing are False
                            slot.op, slot.completion = op, completion
                            zero_copy += 1
                            continue
                    try:
                        if backlog or not start(op, completion, flush_after, False):
                            backlog.append(WaitingRequest(op, completion, flush_after))
                    except Exception:  # e.g. no DMA memory left for a bounce buffer: this request fails alone
                        log.exception("%s: a request could not be put on the ring", self.dev.name)
                        at_once.append((completion, BlockStatus.IO, op))
                self.zero_copy_ops += zero_copy
                if not self._plug:
                    try:
                        self.vq.kick()
                    except Exception as exc:  # failed after the lock is released, as in _unplug
                        kick_error = exc
        finally:
            self._release()
        if kick_error is not None:
            self._fail(kick_error)  # completes these requests too: they are on the ring or in the backlog
        if at_once:
            deliver(at_once, self.dev.name)

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
    def _start_request(self, op: BlockOp, completion: Completion, flush_after: bool, flushing: bool) -> bool:
        """Put the request in a free slot and on the ring; False (nothing changed) when there is no room."""
        free = self._free_slots
        if not free:
            return False
        slot = free[0]
        cmd = op.command
        if (cmd is _READ or cmd is _WRITE) and not flushing:
            nbytes = op.length * self._bs
            chain = slot.chain
            if chain is None or nbytes > self._size_max:
                return self._start_chain(op, completion, flush_after, slot, nbytes)
            # the common request: header, one data segment and status on the slot's own chain
            if cmd is _READ:
                req_type, flag = _IN, DESC_F_WRITE
            else:
                req_type, flag = _OUT, 0
            pack_rw_header(self._slot_bytes, slot.offset, req_type, 0, (op.offset_dev + self._start_block) * self._spb,
                            0xFF)
            addr = op.vmo.dma_addr  # type: ignore[union-attr]
            if addr is not None and self._coherent \
                    and self._dma_lo <= (addr := addr + op.offset_vmo * self._bs) <= self._dma_hi - nbytes:
                slot.bounced = False  # zero copy, nothing to sync
                self.zero_copy_ops += 1
            else:
                addr = self._data_address(op, slot, nbytes, not flag)
                if not self._coherent:
                    slot.mem.sync_for_device()
            self._add_reserved(chain, addr, nbytes, flag, slot)
            free.popleft()
            slot.op, slot.completion, slot.flush_after, slot.flushing = op, completion, flush_after, False
            return True
        out_hdr = slot.out_hdr
        if cmd is BlockCommand.TRIM:
            segs = slot.segs_write_zeroes
            out_hdr.type = ReqType.WRITE_ZEROES
            # the header's sector is for reads and writes only, 0 otherwise (§5.2.6): the range is in the
            # write-zeroes segment
            slot.write_zeroes.sector = (op.offset_dev + self._start_block) * self._spb
            slot.write_zeroes.num_sectors = op.length * self._spb
            slot.write_zeroes.flags = 0  # no UNMAP
        else:
            segs = slot.segs_flush
            out_hdr.type = ReqType.FLUSH
        if self.vq.num_free < len(segs):
            return False
        out_hdr.sector = 0
        return self._add_chain(op, completion, flush_after, flushing, slot, segs)

    def _start_chain(self, op: BlockOp, completion: Completion, flush_after: bool, slot: RequestSlot,
                     nbytes: int) -> bool:
        """A read or write on descriptors from the free list: the data in size_max pieces."""
        step = self._size_max
        if self.vq.num_free < 2 + -(-nbytes // step):
            return False
        flag = DESC_F_WRITE if op.command is _READ else 0
        addr = self._data_address(op, slot, nbytes, not flag)
        slot.out_hdr.type = ReqType.IN if flag else ReqType.OUT
        slot.out_hdr.sector = (op.offset_dev + self._start_block) * self._spb
        data = [(addr + o, min(step, nbytes - o), flag) for o in range(0, nbytes, step)]
        return self._add_chain(op, completion, flush_after, False, slot, [slot.hdr_seg, *data, slot.status_seg])

    def _add_chain(self, op: BlockOp, completion: Completion, flush_after: bool, flushing: bool, slot: RequestSlot,
                   segs: list[tuple[int, int, int]]) -> bool:
        slot.req.status = 0xFF  # the device overwrites it
        if not self._coherent:
            slot.mem.sync_for_device()
        self.vq.add(segs, slot)
        self._free_slots.popleft()
        slot.op, slot.completion, slot.flush_after, slot.flushing = op, completion, flush_after, flushing
        return True

    def _data_address(self, op: BlockOp, slot: RequestSlot, nbytes: int, write: bool) -> int:
        """Where the device finds the data: the Vmo's own memory when the device reaches it (zero copy), else
        the slot's bounce buffer, filled now for writes."""
        vmo = op.vmo
        assert vmo is not None
        voff = op.offset_vmo * self._bs
        addr = vmo.dma_addr
        if addr is not None and self._dma_lo <= addr + voff and addr + voff + nbytes <= self._dma_hi:
            slot.bounced = False
            self.zero_copy_ops += 1
            if not self._coherent and isinstance(vmo.array, DmaBuffer):
                cast(DmaBuffer, vmo.array[voff:voff + nbytes]).sync_for_device()
            return int(addr + voff)
        bounce = slot.bounce
        if bounce is None:
            bounce = slot.bounce = self.pool.alloc(self._info.max_transfer_size, align=4096,
                                                   name=f"bounce{slot.index}", zero=False)
        slot.bounced = True
        if write:
            bounce[:nbytes] = vmo.array[voff:voff + nbytes]
            self.bytes_copied += nbytes
            if not self._coherent:
                cast(DmaBuffer, bounce[:nbytes]).sync_for_device()
        return int(bounce.dma_addr)

    # --- completion (under the lock; VirtioDevice calls the callbacks after releasing it) --------------
    def _complete(self, slot: RequestSlot, written: int, done: Done) -> None:
        op, completion, flush_after, flushing = slot.op, slot.completion, slot.flush_after, slot.flushing
        if not self._coherent:
            slot.mem.sync_for_cpu()
        status = _STATUS_OF[self._slot_bytes[slot.status_at]]  # vbr->status
        # a free slot has bounced, flush_after and flushing all False (queue_many relies on it)
        slot.flush_after = slot.flushing = False
        self._free_slots.append(slot)
        if slot.bounced or not self._coherent:
            try:
                if op.command is _READ and status is _OK and not flushing:  # type: ignore[union-attr]
                    self._data_in(slot, op)  # type: ignore[arg-type]
            finally:
                slot.bounced = False
        if flush_after and not flushing and status is _OK:
            # FORCE_ACCESS: the write completes when the flush does
            self._backlog.appendleft(WaitingRequest(op, completion, True, flushing=True))  # type: ignore[arg-type]
        else:
            done.append((completion, status, op))  # type: ignore[arg-type]
        slot.op = slot.completion = None

    def _complete_used(self, used: list[tuple[Any, int]], done: Done) -> None:
        """The common completion inline - a coherent pool, the data not bounced, no FLUSH to follow: read the
        status byte, free the slot - and the rest through `_complete`."""
        if not self._coherent:
            super()._complete_used(used, done)
            return
        status_of, slot_bytes, free, finish = _STATUS_OF, self._slot_bytes, self._free_slots, done.append
        for slot, written in used:
            if slot.bounced or slot.flush_after:
                super()._complete_used([(slot, written)], done)
                continue
            finish((slot.completion, status_of[slot_bytes[slot.status_at]], slot.op))
            free.append(slot)
            slot.op = slot.completion = None

    def _data_in(self, slot: RequestSlot, op: BlockOp) -> None:
        """What the device read: copy it out of the bounce buffer, or make the Vmo's own memory visible to
        the CPU (non-coherent pools)."""
        bs = self._bs
        assert op.vmo is not None
        lo, hi = op.offset_vmo * bs, (op.offset_vmo + op.length) * bs
        bounce, array = slot.bounce if slot.bounced else None, op.vmo.array
        if bounce is not None:
            if not self._coherent:
                cast(DmaBuffer, bounce[:hi - lo]).sync_for_cpu()
            array[lo:hi] = bounce[:hi - lo]
            self.bytes_copied += hi - lo
        elif not self._coherent and isinstance(array, DmaBuffer):
            cast(DmaBuffer, array[lo:hi]).sync_for_cpu()

    def _complete_error(self, slot: RequestSlot, done: Done) -> None:
        assert slot.op is not None and slot.completion is not None
        done.append((slot.completion, BlockStatus.IO, slot.op))
        slot.op = slot.completion = None

    def _restart(self, done: Done) -> None:
        backlog = self._backlog
        while backlog:
            w = backlog[0]
            try:
                if not self._start_request(w.op, w.completion, w.flush_after, w.flushing):
                    return
            except Exception:
                log.exception("%s: a request could not be put on the ring", self.dev.name)
                done.append((w.completion, BlockStatus.IO, w.op))
            backlog.popleft()

    def _detach(self) -> Done:
        pending: list[RequestSlot | WaitingRequest] = [*self.vq.detach_all(), *self._backlog]
        self._backlog.clear()
        done: Done = []
        for req in pending:
            assert req.op is not None and req.completion is not None
            done.append((req.completion, BlockStatus.IO_NOT_PRESENT, req.op))
            req.op = req.completion = None
        return done

    def release(self) -> None:
        """Free the DMA buffers (after unbind)."""
        slots = self._slot_list
        self._free(self._slots, *(slot.bounce for slot in slots))
        for slot in slots:
            slot.bounce = None
        super().release()

    def __repr__(self) -> str:
        i = self._info
        return (f"<VirtioBlk {self.dev.name} {i.block_count} x {i.block_size} B, "
                f"{'writeback' if self.writeback else 'writethrough'}{', ro' if i.flags & BlockFlag.READONLY else ''}>")


class VirtioBlkDriver(BlockDriver[VirtioBlk]):
    """Binds virtio-mmio block devices and virtio-blk-pci functions; the bound driver is itself the
    BlockDevice (`block` is the VirtioBlk).

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

    def bind(self, device: Device) -> None:
        if isinstance(device, PciDevice):  # its properties describe the function (class_code), not options
            props: dict[str, Any] = {}
            regs: Any = VirtioPci.from_device(device)
        else:
            props = {k.replace("-", "_"): v for k, v in device.properties.items()}
            regs = device.mmio(0).map(CachePolicy.UNCACHED_DEVICE)
        irq = device.irq(0) if device.num_irqs else None
        self.block = VirtioBlk(regs, device.dma_pool(), irq, **{**props, **self.options})

    def release(self) -> None:
        if self.block is not None:
            self.block.release()
