"""The block server's request path: validation, splitting, groups, barriers, FORCE_ACCESS and completions.

Runs on the server's loop thread. Requests become `BlockOp`s over the session's mapped buffers (views, so
the data is never copied here). A plain READ or WRITE (no flags, one device op) takes the short path in
`handle_message`: one BlockOp whose cookie is a `FastCookie`, answered straight from its completion when
that arrives on the loop thread (the RAM-disk completes inside `queue()`). Everything else goes through
`_handle`, which is complete on its own: the short path only skips work for requests it has already
checked, and hands any request it does not fully accept to `_handle` for the exact status. Completions
from other threads are queued and handled by `drain()` on the loop thread, so session state needs no
locks. Semantics and statuses follow Fuchsia's block server; docs/blockfifo.md lists them.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, fields

from drivers.block.protocol import (
    MAX_TRANSFER_UNBOUNDED,
    BlockCommand,
    BlockDevice,
    BlockFlag,
    BlockOp,
    BlockStatus,
    OpFlag,
)

from .fifo import (
    KNOWN_FLAGS,
    MAX_TXN_GROUP_COUNT,
    REQUEST,
    RESPONSE,
    FifoFlag,
    FifoOp,
    MalformedRecord,
    ZxStatus,
    zx_from_block,
)
from .session import AttachedVmo, FastCookie, Record, Session, Txn

log = logging.getLogger(__name__)

_GROUP_ITEM = int(FifoFlag.GROUP_ITEM)
_GROUP_LAST = int(FifoFlag.GROUP_LAST)
_FORCE_ACCESS = int(FifoFlag.FORCE_ACCESS)
_PRE_BARRIER = int(FifoFlag.PRE_BARRIER)
_READ, _WRITE = int(FifoOp.READ), int(FifoOp.WRITE)
_OK = BlockStatus.OK
_pack_response = RESPONSE.pack
_get_ident = threading.get_ident


@dataclass
class ServerStats:
    sessions: int = 0  # accepted since start
    clients: int = 0  # connected now
    requests: int = 0  # FIFO records received
    responses: int = 0
    errors: int = 0  # error responses sent
    malformed: int = 0  # messages that were not whole records
    device_ops: int = 0  # BlockOps queued on the device (after splitting, flushes included)
    bytes_read: int = 0
    bytes_written: int = 0
    bytes_copied: int = 0  # by the server's data path: it has none, so this stays 0
    bytes_by_reference: int = 0  # request bytes handed to the driver as views of client memory
    bytes_dma: int = 0  # of those, bytes in DMA-able buffers (vmo.dma_addr set)

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


class Dispatcher:
    """Turns FIFO requests into device ops for every session of one server."""

    def __init__(self, device: BlockDevice, stats: ServerStats, wake: Callable[[], None]) -> None:
        self.device = device
        self.info = info = device.query()
        self.stats = stats
        self._wake = wake
        mts = info.max_transfer_size
        self._max_blocks = (1 << 62) if mts == MAX_TRANSFER_UNBOUNDED else max(1, mts // info.block_size)
        self._fua = info.fua_supported
        self._trim = info.trim_supported
        self._readonly = bool(info.flags & BlockFlag.READONLY)
        self._done: collections.deque[tuple[BlockOp, BlockStatus]] = collections.deque()
        self._ready: collections.deque[Session] = collections.deque()  # sessions whose barrier may move
        self.loop_ident: int | None = None  # completions from other threads wake the loop

    # --- requests in --------------------------------------------------------------------------------
    def malformed(self, session: Session, exc: MalformedRecord) -> None:
        self.stats.malformed += 1
        self._respond(session, ZxStatus.INVALID_ARGS, exc.reqid, 0, 0)

    def handle_message(self, session: Session, data: bytes | bytearray | memoryview) -> None:
        """Start every request of one FIFO message (a whole number of records, checked by the caller)."""
        info = self.info
        blocks, bsize, max_blocks = info.block_count, info.block_size, self._max_blocks
        max_opcode = _READ if self._readonly else _WRITE  # READ 1, WRITE 2
        vmos = session.vmos
        queue, complete = self.device.queue, self._complete
        commands = (BlockCommand.READ, BlockCommand.READ, BlockCommand.WRITE)  # by opcode 1, 2 (0 unused)
        nblocks = nwritten = ndma = nops = nrecords = 0
        waiting = bool(session.held) or session.barrier is not None
        for record in REQUEST.iter_unpack(data):
            nrecords += 1
            if waiting:
                session.held.append(record)  # behind a PRE_BARRIER write: keep the order
                continue
            opcode, flags, reqid, _group, vmoid, length, vmo_offset, dev_offset, _trace = record
            vmo = vmos.get(vmoid)
            if (flags or vmo is None or not 1 <= opcode <= max_opcode or not 0 < length <= max_blocks
                    or dev_offset + length > blocks or (vmo_offset + length) * bsize > vmo.size):
                self._handle(session, record)  # anything else, and every error, takes the full path
                if self._done:
                    self.drain()  # a failure the device already reported is seen by the records after it
                waiting = bool(session.held) or session.barrier is not None
                continue
            op = BlockOp(commands[opcode], length, dev_offset, vmo_offset, vmo.vmo)
            op.cookie = (session, reqid, vmo)  # a FastCookie
            vmo.refs += 1
            session.inflight += 1
            nblocks += length
            if opcode == _WRITE:
                nwritten += length
            if vmo.dma:
                ndma += length
            nops += 1
            try:
                queue(op, complete)
            except Exception:
                log.exception("block server: device.queue raised for %s", op)
                self._done.append((op, BlockStatus.IO))
        stats = self.stats
        stats.requests += nrecords
        if nops:
            stats.device_ops += nops
            stats.bytes_read += (nblocks - nwritten) * bsize
            stats.bytes_written += nwritten * bsize
            stats.bytes_by_reference += nblocks * bsize
            stats.bytes_dma += ndma * bsize

    def _handle(self, session: Session, record: Record) -> None:
        """One request, by the full rules: groups, then validation, then the device."""
        opcode, flags, reqid, gid, vmoid, length, vmo_offset, dev_offset, _trace = record
        if not flags & _GROUP_ITEM:  # GROUP_LAST alone is an ordinary request, as in Fuchsia
            txn = Txn(session, reqid, 0, False)
        else:
            last = bool(flags & _GROUP_LAST)
            if gid >= MAX_TXN_GROUP_COUNT:  # Fuchsia's core server: IO, answered only by a GROUP_LAST
                if last:
                    self._respond(session, ZxStatus.IO, reqid, gid, 1)
                return
            group = session.group(gid)
            group.count += 1
            if group.last_reqid is not None:  # the group is still completing: it fails, no response
                if group.status is ZxStatus.OK:
                    group.status = ZxStatus.INVALID_ARGS
                return
            if last:
                group.last_reqid = reqid
            if group.status is not ZxStatus.OK:  # an earlier item failed: skip this one
                self._group_answer(session, gid)
                return
            group.pending += 1
            txn = Txn(session, reqid, gid, True)
        status = self._start(session, txn, opcode, flags, vmoid, length, vmo_offset, dev_offset)
        if status is not None:
            txn.status = status
            self._finish(txn)

    def _start(self, session: Session, txn: Txn, opcode: int, flags: int, vmoid: int, length: int,
               vmo_offset: int, dev_offset: int) -> ZxStatus | None:
        """Queue the request's ops on the device; a status when it fails before reaching the device."""
        if flags & ~KNOWN_FLAGS:
            return ZxStatus.INVALID_ARGS
        if opcode == FifoOp.CLOSE_VMO:
            vmo = session.vmos.get(vmoid)
            if vmo is None:
                return ZxStatus.IO  # as Fuchsia: an unknown vmoid is an I/O error
            session.drop_vmo(vmo)
            return ZxStatus.OK
        if opcode == FifoOp.FLUSH:
            self._begin(txn, [BlockOp(BlockCommand.FLUSH)], None)
            return None
        if opcode != FifoOp.READ and opcode != FifoOp.WRITE and opcode != FifoOp.TRIM:
            return ZxStatus.INVALID_ARGS
        info = self.info
        if length == 0:
            return ZxStatus.INVALID_ARGS
        if dev_offset >= info.block_count or length > info.block_count - dev_offset:
            return ZxStatus.OUT_OF_RANGE
        if opcode != FifoOp.READ and self._readonly:
            return ZxStatus.ACCESS_DENIED
        vmo = None
        if opcode == FifoOp.TRIM:
            if not self._trim:
                return ZxStatus.NOT_SUPPORTED
        else:
            vmo = session.vmos.get(vmoid)
            if vmo is None:
                return ZxStatus.IO
            if (vmo_offset + length) * info.block_size > vmo.size:
                return ZxStatus.OUT_OF_RANGE
        force = bool(flags & _FORCE_ACCESS) and opcode != FifoOp.TRIM  # TRIM has no FUA
        op_flags = OpFlag.FORCE_ACCESS if force and self._fua else OpFlag.NONE
        command = BlockCommand(opcode)
        parts = []
        step = self._max_blocks
        for done in range(0, length, step):
            n = min(step, length - done)
            parts.append(BlockOp(command, n, dev_offset + done, vmo_offset + done,
                                 vmo.vmo if vmo is not None else None, op_flags))
        nbytes = length * info.block_size
        if vmo is not None:
            self.stats.bytes_by_reference += nbytes
            if vmo.vmo.dma_addr is not None:
                self.stats.bytes_dma += nbytes
        if opcode == FifoOp.READ:
            self.stats.bytes_read += nbytes
        elif opcode == FifoOp.WRITE:
            self.stats.bytes_written += nbytes
        if force and not self._fua:
            if opcode == FifoOp.WRITE:
                txn.flush_after = True  # durable once the flush after it completed
            else:
                txn.after = parts  # a read served from the medium: flush what the cache holds first
                parts = [BlockOp(BlockCommand.FLUSH)]
                txn.flushing = True
        if opcode == FifoOp.WRITE and flags & _PRE_BARRIER:
            if txn.after is None:
                txn.after = parts
            txn.barrier = True
            txn.vmo = vmo
            session.barrier = txn  # later records wait in session.held
            if session.inflight == 0:
                self._start_barrier(txn)
            return None  # otherwise it starts when the requests before it have finished
        self._begin(txn, parts, vmo)
        return None

    def _start_barrier(self, txn: Txn) -> None:
        """Every earlier request has finished: flush, then (in _part_done) the write itself."""
        vmo, txn.vmo = txn.vmo, None
        txn.flushing = True
        self._begin(txn, [BlockOp(BlockCommand.FLUSH)], vmo)

    def _begin(self, txn: Txn, parts: list[BlockOp], vmo: AttachedVmo | None) -> None:
        txn.vmo = vmo
        if vmo is not None:
            vmo.refs += 1
        txn.session.inflight += 1
        self._queue_ops(txn, parts)

    def _queue_ops(self, txn: Txn, parts: list[BlockOp]) -> None:
        txn.pending = len(parts)
        self.stats.device_ops += len(parts)
        queue, complete = self.device.queue, self._complete
        for op in parts:
            op.cookie = txn
            try:
                queue(op, complete)
            except Exception:
                log.exception("block server: device.queue raised for %s", op)
                self._done.append((op, BlockStatus.IO))

    # --- completions ----------------------------------------------------------------------------------
    def _complete(self, status: BlockStatus, op: BlockOp) -> None:
        """The device's completion callback, on any thread. A plain request completing on the loop thread
        (inside queue()) is answered here: that touches only its session's counters and responses."""
        cookie = op.cookie
        if type(cookie) is tuple and _get_ident() == self.loop_ident:
            session, reqid, vmo = cookie
            if status is _OK and not (session.closed or vmo.closed or session.barrier is not None):
                session.inflight -= 1  # the common case of _fast_done, inline
                vmo.refs -= 1
                self.stats.responses += 1
                session.outbuf += _pack_response(0, reqid, 0, 1)
            else:
                self._fast_done(cookie, status)
            return
        self._done.append((op, status))
        if _get_ident() != self.loop_ident:
            self._wake()

    def drain(self) -> None:
        """Handle the completions that arrived, and move barriers whose predecessors finished."""
        done, ready = self._done, self._ready
        while done or ready:
            while done:
                op, status = done.popleft()
                cookie = op.cookie
                if type(cookie) is tuple:
                    self._fast_done(cookie, status)
                else:
                    self._part_done(cookie, status)
            while ready:
                self._advance(ready.popleft())

    def _fast_done(self, cookie: FastCookie, status: BlockStatus) -> None:
        session, reqid, vmo = cookie
        session.inflight -= 1
        vmo.refs -= 1
        if vmo.closed and vmo.refs == 0:
            vmo.release()
        if session.closed:
            return
        if session.barrier is not None and session.inflight == 0:
            self._ready.append(session)
        stats = self.stats
        stats.responses += 1
        if status is _OK:
            session.outbuf += _pack_response(0, reqid, 0, 1)
        else:
            stats.errors += 1
            session.outbuf += _pack_response(zx_from_block(status), reqid, 0, 1)

    def _part_done(self, txn: Txn, status: BlockStatus) -> None:
        # A device with nothing volatile has no FLUSH: for a flush the server added, that is success.
        failed = status is not _OK and not (status is BlockStatus.NOT_SUPPORTED and txn.flushing)
        if failed and txn.status is ZxStatus.OK:
            txn.status = zx_from_block(status)
        txn.pending -= 1
        if txn.pending:
            return
        session = txn.session
        txn.flushing = False
        if txn.barrier:  # its flush is done (or failed): the records behind it may go
            txn.barrier = False
            session.barrier = None
            self._ready.append(session)
        if txn.after is not None:
            parts, txn.after = txn.after, None
            if txn.status is ZxStatus.OK and not session.closed:
                self._queue_ops(txn, parts)
                return
        if txn.flush_after and txn.status is ZxStatus.OK and not session.closed:
            txn.flush_after = False
            txn.flushing = True
            self._queue_ops(txn, [BlockOp(BlockCommand.FLUSH)])
            return
        session.inflight -= 1
        vmo = txn.vmo
        if vmo is not None:
            vmo.refs -= 1
            if vmo.closed and vmo.refs == 0:
                vmo.release()
        if session.barrier is not None and session.inflight == 0:
            self._ready.append(session)
        self._finish(txn)

    def _advance(self, session: Session) -> None:
        """Start a barrier whose predecessors finished, or run the records that waited for one."""
        if session.closed:
            session.held.clear()
            return
        barrier = session.barrier
        if barrier is not None:
            if session.inflight == 0 and barrier.pending == 0 and not barrier.flushing:
                self._start_barrier(barrier)
            return
        held = session.held
        while held and session.barrier is None:
            self._handle(session, held.popleft())

    # --- responses out --------------------------------------------------------------------------------
    def _finish(self, txn: Txn) -> None:
        """A request is done with txn.status: answer it, or account it to its group."""
        session = txn.session
        if session.closed:
            return
        if not txn.grouped:
            self._respond(session, txn.status, txn.reqid, txn.group, 1)
            return
        group = session.group(txn.group)
        group.pending -= 1
        if txn.status is not ZxStatus.OK and group.status is ZxStatus.OK:
            group.status = txn.status
        self._group_answer(session, txn.group)

    def _group_answer(self, session: Session, gid: int) -> None:
        """Answer a group once its GROUP_LAST arrived and every started item finished."""
        group = session.group(gid)
        if group.last_reqid is not None and group.pending == 0:
            self._respond(session, group.status, group.last_reqid, gid, group.count)
            session.reset_group(gid)

    def _respond(self, session: Session, status: int, reqid: int, group: int, count: int) -> None:
        self.stats.responses += 1
        if status != ZxStatus.OK:
            self.stats.errors += 1
        session.outbuf += _pack_response(int(status), reqid, group, count)
