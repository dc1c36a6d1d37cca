"""Per-client state of the block server: attached buffers, open requests, groups, queued responses.

Only the server's loop thread touches these objects, so they need no locks.
"""

from __future__ import annotations

import collections
import mmap
import socket
import time
from dataclasses import dataclass

import numpy as np

from drivers.block.protocol import BlockDevice, BlockOp, Vmo

from .fifo import MAX_TXN_GROUP_COUNT, ZxStatus
from .shared_dma import DmaAllocation

Record = tuple[int, int, int, int, int, int, int, int, int]  # one unpacked request (fifo.REQUEST's fields)


class AttachedVmo:
    """A client buffer the server mapped once; `vmo` is what the driver gets (a view, never a copy)."""

    __slots__ = ("_alloc", "closed", "dma", "mapping", "refs", "size", "vmo", "vmoid")

    def __init__(self, vmoid: int, mapping: mmap.mmap | None, alloc: DmaAllocation | None,
                 dma_addr: int | None) -> None:
        self.vmoid = vmoid
        self.mapping = mapping
        self._alloc = alloc
        if mapping is not None:
            array = np.frombuffer(mapping, dtype=np.uint8)
        else:
            assert alloc is not None
            array = alloc.array
        self.vmo = Vmo(array, dma_addr)
        self.dma = dma_addr is not None  # the driver can use it in place
        self.size = int(array.size)
        self.refs = 0  # requests in flight on this buffer
        self.closed = False

    def release(self) -> None:
        """Give the memory back once nothing uses it (the mapping goes when the last view does)."""
        if self._alloc is not None:
            alloc, self._alloc = self._alloc, None
            alloc.release()
        self.mapping = None

    def __repr__(self) -> str:
        return f"<AttachedVmo {self.vmoid} {self.vmo!r}{' closed' if self.closed else ''}>"


class Txn:
    """One FIFO request that needs more than a single device op: split, grouped, or with a flush before
    or after it. (A plain READ or WRITE is one op whose cookie is a `FastCookie`, and needs no Txn.)"""

    __slots__ = ("after", "barrier", "flush_after", "flushing", "group", "grouped", "pending", "reqid",
                 "session", "status", "vmo")

    def __init__(self, session: Session, reqid: int, group: int, grouped: bool) -> None:
        self.session = session
        self.reqid = reqid
        self.group = group
        self.grouped = grouped
        self.status = ZxStatus.OK
        self.pending = 0  # device ops of the current stage not yet completed
        self.vmo: AttachedVmo | None = None
        self.after: list[BlockOp] | None = None  # ops to queue once the flush in flight succeeded
        self.flush_after = False  # FORCE_ACCESS write on a device without FUA
        self.flushing = False  # the op in flight is a flush the server added
        self.barrier = False  # PRE_BARRIER: later requests of the session wait for its flush


FastCookie = tuple["Session", int, AttachedVmo]  # what a plain READ/WRITE op carries: session, reqid, buffer


@dataclass(eq=False)
class Group:
    count: int = 0  # records received since the group last answered (the response's count)
    pending: int = 0  # items started and not yet finished
    status: ZxStatus = ZxStatus.OK  # the first failure
    last_reqid: int | None = None  # set by the GROUP_LAST item: the group is completing


class Session:
    """One connected client."""

    def __init__(self, sid: int, ctrl: socket.socket, fifo: socket.socket, fifo_peer: socket.socket) -> None:
        self.sid = sid
        self.ctrl = ctrl
        self.fifo = fifo
        self.fifo_peer: socket.socket | None = fifo_peer  # the client's end until handed over
        self.vmos: dict[int, AttachedVmo] = {}
        self._next_vmoid = 1  # 0 is VMOID_INVALID
        self._groups: list[Group | None] = [None] * MAX_TXN_GROUP_COUNT
        self.outbuf = bytearray()  # packed responses not yet sent
        self.inflight = 0  # requests started on the device and not yet finished
        self.held: collections.deque[Record] = collections.deque()  # waiting behind a PRE_BARRIER
        self.barrier: Txn | None = None  # the PRE_BARRIER write the held records wait for
        self.closed = False
        self.events = 1  # selectors.EVENT_READ, as registered
        self.peer_pid = 0  # the connecting process (SO_PEERCRED), for the per-process limit
        self.handshake_done = False  # the client took its FIFO
        self.last_active = time.monotonic()  # a message from the client, or a response it accepted

    def add_vmo(self, mapping: mmap.mmap | None, alloc: DmaAllocation | None,
                dma_addr: int | None) -> AttachedVmo:
        vmoid = self._next_vmoid
        while vmoid in self.vmos or vmoid == 0:
            vmoid = (vmoid + 1) & 0xFFFF
        self._next_vmoid = (vmoid + 1) & 0xFFFF or 1
        vmo = AttachedVmo(vmoid, mapping, alloc, dma_addr)
        self.vmos[vmoid] = vmo
        return vmo

    def drop_vmo(self, vmo: AttachedVmo) -> None:
        """Detach a buffer; its memory goes once the requests still using it complete."""
        self.vmos.pop(vmo.vmoid, None)
        vmo.closed = True
        if vmo.refs == 0:
            vmo.release()

    def group(self, gid: int) -> Group:
        group = self._groups[gid]
        if group is None:
            group = self._groups[gid] = Group()
        return group

    def reset_group(self, gid: int) -> None:
        self._groups[gid] = None


def device_bytes_copied(device: BlockDevice) -> int:
    """Bytes the driver copied through bounce buffers, when it counts them (0 when it does not)."""
    total = 0
    for name in ("bytes_copied", "bytes_bounced"):
        value = getattr(device, name, None)
        if isinstance(value, int):
            total += value
    return total
