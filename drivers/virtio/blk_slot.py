"""A virtio-blk request slot: the header and status a request in flight keeps in DMA memory, and what the
driver keeps beside them (Linux's per-tag `struct virtblk_req`, preallocated).

A slot is 64 bytes of one DMA buffer (`VirtioBlkReqSlot`): `out_hdr` the device reads, the `write_zeroes`
segment, the `status` byte the device writes. `RequestSlot` is the rest: its offsets and descriptors,
computed once, its bounce buffer, and the request it holds while that is on the ring.
"""

from __future__ import annotations

import struct
from ctypes import LittleEndianStructure, c_uint8, sizeof
from typing import Any, cast

from mmiotk.dma import DmaBuffer

from ..block.protocol import BlockOp, Completion
from .blk_uapi import VirtioBlkDiscardWriteZeroes, VirtioBlkOutHdr
from .virtqueue import DESC_F_WRITE, ReservedChain

SLOT = 64  # bytes per request slot (a VirtioBlkReqSlot)


class VirtioBlkReqSlot(LittleEndianStructure):
    """One request slot in DMA memory: `out_hdr`, `write_zeroes` (used by WRITE_ZEROES only), `status`."""

    _fields_ = [("out_hdr", VirtioBlkOutHdr), ("write_zeroes", VirtioBlkDiscardWriteZeroes),
                ("status", c_uint8), ("_pad", c_uint8 * (SLOT - 33))]


assert sizeof(VirtioBlkReqSlot) == SLOT

# What a read or write sets in its slot, as one store: out_hdr (type, reserved = 0, sector), the write_zeroes
# bytes (zero; only WRITE_ZEROES uses them, and sets them itself) and status = 0xFF (the device overwrites it).
# The same bytes as three ctypes field stores, at a third of their cost.
_RW_HEADER = struct.Struct("<IIQ16xB")
assert _RW_HEADER.size == VirtioBlkReqSlot.status.offset + 1 and VirtioBlkReqSlot.write_zeroes.offset == 16
pack_rw_header = _RW_HEADER.pack_into


class RequestSlot:
    """One request slot: what the hot path needs of it, computed once (its fields, descriptors and DMA
    memory), and the request it holds while that is on the ring (Linux's `struct virtblk_req`, preallocated
    per tag). The slot is the chain's token: completion finds the request through it."""

    __slots__ = ("bounce", "bounced", "chain", "completion", "flush_after", "flushing", "hdr_seg", "index", "mem",
                 "offset", "op", "out_hdr", "req", "segs_flush", "segs_write_zeroes", "status_at", "status_seg",
                 "write_zeroes")

    def __init__(self, slots: DmaBuffer, k: int) -> None:
        self.index = k
        self.offset = SLOT * k  # in the slots buffer
        self.status_at = self.offset + VirtioBlkReqSlot.status.offset
        self.mem = cast(DmaBuffer, slots[SLOT * k:SLOT * (k + 1)])
        self.req = VirtioBlkReqSlot.from_buffer(cast(Any, slots), SLOT * k)
        self.out_hdr, self.write_zeroes = self.req.out_hdr, self.req.write_zeroes
        base = int(self.mem.dma_addr)
        self.hdr_seg = (base, sizeof(VirtioBlkOutHdr), 0)
        self.status_seg = (base + VirtioBlkReqSlot.status.offset, 1, DESC_F_WRITE)
        self.segs_flush = [self.hdr_seg, self.status_seg]
        zeroes = (base + VirtioBlkReqSlot.write_zeroes.offset, sizeof(VirtioBlkDiscardWriteZeroes), 0)
        self.segs_write_zeroes = [self.hdr_seg, zeroes, self.status_seg]
        self.bounce: DmaBuffer | None = None   # made on first use: most ops are zero-copy
        self.chain: ReservedChain | None = None  # its own descriptors, when the ring has room for them
        # the request in the slot
        self.op: BlockOp | None = None
        self.completion: Completion | None = None
        self.flush_after = False   # FORCE_ACCESS or emulated writethrough: a FLUSH follows the write
        self.flushing = False      # the write is done; this is the FLUSH that makes it durable
        self.bounced = False       # its data goes through `bounce`


class WaitingRequest:
    """A request in the backlog: no slot or no room on the ring yet."""

    __slots__ = ("completion", "flush_after", "flushing", "op")

    def __init__(self, op: BlockOp, completion: Completion, flush_after: bool, flushing: bool = False) -> None:
        self.op, self.completion, self.flush_after, self.flushing = op, completion, flush_after, flushing
