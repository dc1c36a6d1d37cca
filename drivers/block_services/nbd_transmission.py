"""The NBD transmission phase: requests read off a connection, checked, run on the export, answered.

READ (DF under structured replies), WRITE (with FUA), FLUSH, TRIM, WRITE_ZEROES, BLOCK_STATUS (REQ_ONE) and
DISC, handled out of order as they complete. Aligned reads and writes go to the device asynchronously, each
holding one of the connection's slots until its reply is queued; the rest run synchronously. Without
structured replies every reply is simple; with them reads and errors are structured (nbd_structured.py) and
other successes stay simple, as the protocol allows. Errors map to NBD's errnos (`_errno`).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import numpy as np

from drivers.block.protocol import BlockStatus

from . import nbd_protocol as P
from . import nbd_structured as S
from .nbd_handshake import Closed

if TYPE_CHECKING:
    from .nbd_connection import Connection


def _errno(status: BlockStatus, writing: bool) -> int:
    if status is BlockStatus.ACCESS_DENIED:
        return P.EPERM
    if status is BlockStatus.OUT_OF_RANGE:
        return P.ENOSPC if writing else P.EINVAL
    if status in (BlockStatus.INVALID_ARGS, BlockStatus.NOT_SUPPORTED):
        return P.EINVAL
    if status is BlockStatus.IO_NOT_PRESENT:
        return P.ESHUTDOWN
    return P.EIO


class Transmission:
    """The requests of one connection, after its handshake."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.export = conn.export
        self.server = conn.server
        self.structured = conn.structured
        self.contexts = conn.contexts
        # the flags each supported command may carry (BLOCK_STATUS only once a context was selected)
        self.allowed = {P.CMD_READ: P.CMD_FLAG_FUA | (P.CMD_FLAG_DF if self.structured else 0),
                        P.CMD_WRITE: P.CMD_FLAG_FUA, P.CMD_FLUSH: P.CMD_FLAG_FUA,
                        P.CMD_TRIM: P.CMD_FLAG_FUA, P.CMD_WRITE_ZEROES: P.CMD_FLAG_FUA | P.CMD_FLAG_NO_HOLE}
        if self.contexts:
            self.allowed[P.CMD_BLOCK_STATUS] = P.CMD_FLAG_REQ_ONE

    def run(self) -> None:
        """Requests until DISC (returns) or the connection ends (raises Closed or OSError)."""
        conn = self.conn
        header = bytearray(P.REQUEST.size)
        view = memoryview(header)
        while True:
            conn.recv_into(view, idle=True)
            conn.last_active = time.monotonic()
            magic, flags, kind, handle, offset, length = P.REQUEST.unpack(header)
            if magic != P.REQUEST_MAGIC:
                raise Closed(f"bad request magic {magic:#x}")
            self.server.stats.requests += 1
            if kind == P.CMD_DISC:
                return
            payload = None
            if kind == P.CMD_WRITE:
                if length > P.MAX_PAYLOAD:
                    raise Closed(f"WRITE of {length} bytes exceeds {P.MAX_PAYLOAD}")  # may not skip it
                payload = np.empty(length, dtype=np.uint8)
                conn.recv_into(payload.data)
            error, why = self.check(flags, kind, offset, length)
            if error:
                self.answer(handle, error, message=f"{P.COMMAND_NAMES.get(kind, kind)}: {why}")
                continue
            self.execute(kind, flags, handle, offset, length, payload)

    def check(self, flags: int, kind: int, offset: int, length: int) -> tuple[int, str]:
        """The NBD error (and why) for a request that must not reach the device, or (0, "")."""
        allowed = self.allowed
        if kind not in allowed:
            if kind == P.CMD_BLOCK_STATUS:
                return P.EINVAL, "no metadata context was selected (NBD_OPT_SET_META_CONTEXT)"
            return P.EINVAL, "unknown or unsupported command"
        if flags & ~allowed[kind]:
            return P.EINVAL, f"flags {flags & ~allowed[kind]:#x} are not valid here"
        writing = kind in (P.CMD_WRITE, P.CMD_WRITE_ZEROES, P.CMD_TRIM)
        if writing and self.export.read_only:
            return P.EPERM, "the export is read-only"
        if kind == P.CMD_FLUSH:
            return 0, ""
        if offset + length > self.export.size:
            return (P.ENOSPC if kind in (P.CMD_WRITE, P.CMD_WRITE_ZEROES) else P.EINVAL,
                    f"bytes [{offset}, +{length}) end past the {self.export.size}-byte export")
        if kind == P.CMD_READ and length > P.MAX_PAYLOAD:
            return P.EINVAL, f"{length} bytes exceeds the largest read, {P.MAX_PAYLOAD}"
        if kind == P.CMD_BLOCK_STATUS and length == 0:
            return P.EINVAL, "a length of 0"
        return 0, ""

    def answer(self, handle: int, error: int, data: np.ndarray | None = None, *, slot: bool = False,
               message: str = "", offset: int = 0, holes: bool = False) -> None:
        """Queue the reply to `handle`; `slot`: it ends an asynchronous request (from its completion). Under
        structured replies an error is an ERROR chunk with `message`, and read `data` (from `offset`) goes
        out in chunks (zero runs as holes when `holes`); otherwise, and for other successes, a simple reply."""
        if error:
            self.server.stats.errors += 1
        parts: S.Parts
        if self.structured and error:
            parts = (S.error_chunk(handle, error, message),)
        elif self.structured and data is not None:
            parts = S.read_chunks(handle, offset, data, holes)
        else:
            head = P.SIMPLE_REPLY.pack(P.SIMPLE_REPLY_MAGIC, error, handle)
            parts = (head,) if data is None else (head, data.data)
        if not slot:
            self.conn.wait_for_room()
        self.conn.enqueue(parts, slot)

    def execute(self, kind: int, flags: int, handle: int, offset: int, length: int,
                payload: np.ndarray | None) -> None:
        export, stats = self.export, self.server.stats
        fua = bool(flags & P.CMD_FLAG_FUA)
        if length == 0 and kind not in (P.CMD_FLUSH, P.CMD_BLOCK_STATUS):
            self.answer(handle, 0, np.empty(0, np.uint8) if kind == P.CMD_READ else None)
            return
        if kind == P.CMD_BLOCK_STATUS:
            self.conn.wait_for_room()
            self.conn.enqueue((S.block_status_chunk(handle, export.extents(offset, length),
                                               bool(flags & P.CMD_FLAG_REQ_ONE)),), False)
            return
        if kind == P.CMD_READ:
            self.conn.acquire()
            holes = self.structured and not flags & P.CMD_FLAG_DF

            def read_done(status: BlockStatus, data: np.ndarray | None) -> None:
                if status is not BlockStatus.OK:
                    self.answer(handle, _errno(status, False), slot=True,
                                message=_failed("READ", offset, length, status))
                    return
                stats.bytes_read += length
                self.answer(handle, 0, data, slot=True, offset=offset, holes=holes)

            self.conn.submit(lambda: export.read(offset, length, read_done))
        elif kind == P.CMD_WRITE:
            assert payload is not None
            self.conn.acquire()

            def write_done(status: BlockStatus) -> None:
                if status is BlockStatus.OK:
                    stats.bytes_written += length
                self.answer(handle, 0 if status is BlockStatus.OK else _errno(status, True), slot=True,
                            message=_failed("WRITE", offset, length, status))

            self.conn.submit(lambda: export.write(offset, payload, fua, write_done))
        else:
            if kind == P.CMD_FLUSH:
                status = export.flush()
            elif kind == P.CMD_TRIM:
                status = export.trim(offset, length, fua)
            else:
                status = export.write_zeroes(offset, length, fua)
            self.answer(handle, 0 if status is BlockStatus.OK else _errno(status, kind != P.CMD_FLUSH),
                        message=_failed(P.COMMAND_NAMES[kind], offset, length, status))


def _failed(command: str, offset: int, length: int, status: BlockStatus) -> str:
    return f"{command} of {length} bytes at byte {offset}: the device says {status.name}"
