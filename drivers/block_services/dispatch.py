"""The block server's request path: validation, splitting, groups, FORCE_ACCESS and completions.

Runs on the server's loop thread. Requests become `BlockOp`s over the session's mapped buffers (views, so
the data is never copied here); completions, which may arrive on any thread, are queued and handled by
`drain()` on the loop thread, so session state needs no locks.
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
    FifoFlag,
    FifoOp,
    MalformedRecord,
    Request,
    Response,
    ZxStatus,
    zx_from_block,
)
from .session import AttachedVmo, Session, Txn

log = logging.getLogger(__name__)



@dataclass
class ServerStats:
    sessions: int = 0  # accepted since start
    clients: int = 0  # connected now
    requests: int = 0  # FIFO records received
    responses: int = 0
    errors: int = 0  # error responses sent
    malformed: int = 0  # messages that were not whole records
    device_ops: int = 0  # BlockOps queued on the device (after splitting)
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
        self._done: collections.deque[tuple[Session, Txn, BlockStatus]] = collections.deque()
        self.loop_ident: int | None = None  # completions from other threads wake the loop

    def malformed(self, session: Session, exc: MalformedRecord) -> None:
        self.stats.malformed += 1
        self._respond(session, Response(ZxStatus.INVALID_ARGS, exc.reqid, 0, 0))

    def handle(self, session: Session, req: Request) -> None:
        """Start one request; its response (or its group's) is queued on the session when it is done."""
        self.stats.requests += 1
        flags = req.flags
        if flags & ~KNOWN_FLAGS:
            self._respond(session, Response(ZxStatus.INVALID_ARGS, req.reqid, req.group, 1))
            return
        grouped = bool(flags & FifoFlag.GROUP_ITEM)
        if flags & FifoFlag.GROUP_LAST and not grouped:
            self._respond(session, Response(ZxStatus.INVALID_ARGS, req.reqid, req.group, 1))
            return
        if grouped:
            if req.group >= MAX_TXN_GROUP_COUNT:
                self._respond(session, Response(ZxStatus.INVALID_ARGS, req.reqid, req.group, 1))
                return
            group = session.group(req.group)
            if group.last_reqid is not None:  # the group is still completing: a protocol violation
                self._respond(session, Response(ZxStatus.BAD_STATE, req.reqid, req.group, 1))
                return
            group.count += 1
            group.pending += 1
            if flags & FifoFlag.GROUP_LAST:
                group.last_reqid = req.reqid
        txn = Txn(req.reqid, req.group, grouped)
        status = self._start(session, req, txn)
        if status is not None:
            txn.status = status
            self._finish(session, txn)

    def _start(self, session: Session, req: Request, txn: Txn) -> ZxStatus | None:
        """Queue the request's ops on the device; a status when it fails before reaching the device."""
        try:
            op = FifoOp(req.opcode)
        except ValueError:
            return ZxStatus.NOT_SUPPORTED
        if op is FifoOp.CLOSE_VMO:
            vmo = session.vmos.get(req.vmoid)
            if vmo is None:
                return ZxStatus.BAD_HANDLE
            session.drop_vmo(vmo)
            return ZxStatus.OK
        if op is FifoOp.FLUSH:
            self._queue_parts(session, txn, [BlockOp(BlockCommand.FLUSH)], None)
            return None
        info = self.info
        if req.length == 0:
            return ZxStatus.INVALID_ARGS
        if req.dev_offset >= info.block_count or req.length > info.block_count - req.dev_offset:
            return ZxStatus.OUT_OF_RANGE
        writes = op in (FifoOp.WRITE, FifoOp.TRIM)
        if writes and info.flags & BlockFlag.READONLY:
            return ZxStatus.ACCESS_DENIED
        if op is FifoOp.TRIM and not self._trim:
            return ZxStatus.NOT_SUPPORTED
        vmo = None
        if op is not FifoOp.TRIM:
            vmo = session.vmos.get(req.vmoid)
            if vmo is None:
                return ZxStatus.BAD_HANDLE
            if (req.vmo_offset + req.length) * info.block_size > vmo.size:
                return ZxStatus.OUT_OF_RANGE
        force = bool(req.flags & FifoFlag.FORCE_ACCESS) and writes
        txn.flush_after = force and not self._fua
        op_flags = OpFlag.FORCE_ACCESS if force and self._fua else OpFlag.NONE
        command = BlockCommand(int(op))
        parts = []
        step = self._max_blocks
        for done in range(0, req.length, step):
            n = min(step, req.length - done)
            parts.append(BlockOp(command, n, req.dev_offset + done, req.vmo_offset + done,
                                 vmo.vmo if vmo is not None else None, op_flags))
        nbytes = req.length * info.block_size
        if vmo is not None:
            self.stats.bytes_by_reference += nbytes
            if vmo.vmo.dma_addr is not None:
                self.stats.bytes_dma += nbytes
        if op is FifoOp.READ:
            self.stats.bytes_read += nbytes
        elif op is FifoOp.WRITE:
            self.stats.bytes_written += nbytes
        self._queue_parts(session, txn, parts, vmo)
        return None

    def _queue_parts(self, session: Session, txn: Txn, parts: list[BlockOp], vmo: AttachedVmo | None) -> None:
        txn.pending = len(parts)
        txn.vmo = vmo
        if vmo is not None:
            vmo.refs += 1
        session.inflight += 1
        for part in parts:
            self._queue_op(session, txn, part)

    def _queue_op(self, session: Session, txn: Txn, op: BlockOp) -> None:
        done = self._done
        loop = self.loop_ident

        def completion(status: BlockStatus, _op: BlockOp) -> None:
            done.append((session, txn, status))
            if threading.get_ident() != loop:
                self._wake()

        self.stats.device_ops += 1
        try:
            self.device.queue(op, completion)
        except Exception:
            log.exception("block server: device.queue raised for %s", op)
            done.append((session, txn, BlockStatus.IO))

    def drain(self) -> None:
        """Handle the completions that arrived (on the loop thread)."""
        done = self._done
        while done:
            session, txn, status = done.popleft()
            self._part_done(session, txn, status)

    def _part_done(self, session: Session, txn: Txn, status: BlockStatus) -> None:
        failed = status is not BlockStatus.OK and not (status is BlockStatus.NOT_SUPPORTED and txn.flushing)
        if failed and txn.status is ZxStatus.OK:  # a device with nothing to flush has no FLUSH
            txn.status = zx_from_block(status)
        txn.pending -= 1
        if txn.pending:
            return
        if txn.flush_after and txn.status is ZxStatus.OK and not session.closed:
            txn.flush_after = False
            txn.flushing = True
            txn.pending = 1
            self._queue_op(session, txn, BlockOp(BlockCommand.FLUSH))
            return
        session.inflight -= 1
        vmo = txn.vmo
        if vmo is not None:
            vmo.refs -= 1
            if vmo.closed and vmo.refs == 0:
                vmo.release()
        self._finish(session, txn)

    def _finish(self, session: Session, txn: Txn) -> None:
        """A request is done with txn.status: answer it, or account it to its group."""
        if session.closed:
            return
        if not txn.grouped:
            self._respond(session, Response(txn.status, txn.reqid, txn.group, 1))
            return
        group = session.group(txn.group)
        group.pending -= 1
        if txn.status is not ZxStatus.OK and group.status is ZxStatus.OK:
            group.status = txn.status
        if group.last_reqid is not None and group.pending == 0:
            self._respond(session, Response(group.status, group.last_reqid, txn.group, group.count))
            session.reset_group(txn.group)

    def _respond(self, session: Session, response: Response) -> None:
        self.stats.responses += 1
        if response.status != ZxStatus.OK:
            self.stats.errors += 1
        session.outq.append(response)
        session.dirty = True
