"""NbdServer: any BlockDevice over the NBD protocol, so qemu-img, qemu-io, nbdinfo, nbdcopy and fio use it.

Fixed newstyle handshake with NBD_OPT_EXPORT_NAME, INFO, GO, LIST, ABORT, STRUCTURED_REPLY and
LIST/SET_META_CONTEXT (`base:allocation`); STARTTLS is answered NBD_REP_ERR_POLICY. Transmission: READ (DF
under structured replies), WRITE (with FUA), FLUSH, TRIM, WRITE_ZEROES, BLOCK_STATUS (REQ_ONE) and DISC,
requests handled out of order as they complete. Without structured replies every reply is simple; with them
reads and errors are structured (nbd_structured.py) and other successes stay simple, as the protocol allows.
One thread per connection reads requests; aligned reads and writes go to the device asynchronously (bounded
per connection), the rest synchronously. Unaligned requests work
(read-modify-write). Listens on a unix socket or a TCP address (loopback by default: NBD has no
authentication). Every receive polls the stop flag, so `stop()` ends every connection promptly.

No client stalls or locks out another. Replies go through a per-connection queue and sender thread:
completions (on the device's thread) only enqueue, so a client that stops reading blocks its own sender and
nothing else (and is dropped after `_SEND_TIMEOUT`); the queue is bounded by the connection's in-flight
limit, and its reader stops reading requests while the queue is full. A connection must finish its handshake
within `handshake_timeout` s and is closed after `idle_timeout` s with nothing in flight; one process (unix
sockets) holds at most `max_connections_per_process`; when the server is full, the connection idle longest
(at least `_EVICT_IDLE` s) makes room for the new one.
"""

from __future__ import annotations

import collections
import logging
import os
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from drivers.block.protocol import BlockDevice, BlockStatus

from . import nbd_protocol as P
from . import nbd_structured as S
from .byte_addressed import Export
from .nbd_handshake import Closed, Handshake

log = logging.getLogger(__name__)

_TICK = 0.25  # seconds between checks of the stop flag while waiting for a client
_SEND_TIMEOUT = 30.0  # a client that does not read its replies for this long is dropped
_MAX_INFLIGHT = 64  # asynchronous requests per connection
_MAX_QUEUED = 2 * _MAX_INFLIGHT  # replies waiting for the sender before the reader stops reading
_EVICT_IDLE = 1.0  # seconds a connection must have been idle to make room for a new one


@dataclass
class NbdStats:
    connections: int = 0
    active: int = 0
    requests: int = 0
    errors: int = 0
    bytes_read: int = 0
    bytes_written: int = 0


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


class NbdServer:
    """Serves `device` as one NBD export named `name` (the empty default name always works too)."""

    def __init__(self, device: BlockDevice, *, unix_path: str | os.PathLike[str] | None = None,
                 tcp: tuple[str, int] | None = None, name: str = "mmiotk", description: str = "",
                 read_only: bool = False, max_connections: int = 16, max_connections_per_process: int = 4,
                 handshake_timeout: float = 10.0, idle_timeout: float = 300.0) -> None:
        if (unix_path is None) == (tcp is None):
            raise ValueError("NbdServer needs exactly one of unix_path= or tcp=(host, port)")
        if len(name.encode()) > P.MAX_STRING or len(description.encode()) > P.MAX_STRING:
            raise ValueError(f"export name and description must be at most {P.MAX_STRING} bytes")
        self.export = Export(device, read_only=read_only)
        self.name = name
        self.description = description
        self.unix_path = os.fspath(unix_path) if unix_path is not None else None
        self._tcp = tcp
        self.max_connections = max_connections
        self.max_connections_per_process = max_connections_per_process
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self.stats = NbdStats()
        self._stop = threading.Event()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._conns: set[_Connection] = set()
        self._lock = threading.Lock()
        bs = self.export.block_size
        self.min_block = bs if bs <= 1 << 16 else 1
        self.transmission_flags = (P.FLAG_HAS_FLAGS | P.FLAG_SEND_FLUSH | P.FLAG_SEND_FUA | P.FLAG_SEND_TRIM
                                   | P.FLAG_SEND_WRITE_ZEROES | P.FLAG_CAN_MULTI_CONN
                                   | (P.FLAG_READ_ONLY if self.export.read_only else 0))

    # --- lifecycle ------------------------------------------------------------------------------------
    @property
    def address(self) -> str | tuple[str, int]:
        """The unix socket path, or the bound (host, port)."""
        if self.unix_path is not None:
            return self.unix_path
        assert self._listener is not None, "start() the server first"
        host, port = self._listener.getsockname()[:2]
        return host, port

    @property
    def uri(self) -> str:
        """An NBD URI for libnbd tools (nbdinfo, nbdcopy)."""
        if self.unix_path is not None:
            return f"nbd+unix:///{self.name}?socket={self.unix_path}"
        address = self.address
        assert isinstance(address, tuple)
        host = f"[{address[0]}]" if ":" in address[0] else address[0]
        return f"nbd://{host}:{address[1]}/{self.name}"

    def start(self) -> NbdServer:
        if self._thread is not None:
            raise RuntimeError("the NBD server is already running")
        if self.unix_path is not None:
            if os.path.exists(self.unix_path):
                raise FileExistsError(f"{self.unix_path} already exists; remove it or choose another path")
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            where: str | tuple[str, int] = self.unix_path
        else:
            assert self._tcp is not None
            listener = socket.socket(socket.AF_INET6 if ":" in self._tcp[0] else socket.AF_INET)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            where = self._tcp
        try:
            listener.bind(where)
            listener.listen(16)
            listener.settimeout(_TICK)
        except OSError as exc:
            listener.close()
            raise OSError(exc.errno, f"NBD server cannot listen on {where}: {exc.strerror}") from None
        self._listener = listener
        self._thread = threading.Thread(target=self._accept_loop, name="nbd-accept", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop accepting, end every connection (in-flight requests finish first), remove the socket."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(timeout)
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            conn.thread.join(timeout)
            if conn.thread.is_alive():
                raise TimeoutError(f"NBD connection {conn.peer} did not end within {timeout} s")
        self._thread = None

    def __enter__(self) -> NbdServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_until(self, event: threading.Event, poll: float = 0.5) -> None:
        while not event.wait(poll):
            pass
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        try:
            while not self._stop.is_set():
                try:
                    sock, peer = self._listener.accept()
                except TimeoutError:
                    continue
                except OSError as exc:
                    if self._stop.is_set():
                        break
                    # e.g. EMFILE: out of descriptors for now; keep serving those we have, try again
                    log.warning("nbd: accept failed: %s", exc)
                    self._stop.wait(_TICK)
                    continue
                pid = _peer_pid(sock)
                with self._lock:
                    if pid and sum(c.pid == pid for c in self._conns) >= self.max_connections_per_process:
                        log.info("nbd: refusing process %d: it holds %d connections", pid,
                                 self.max_connections_per_process)
                        sock.close()
                        continue
                    if len(self._conns) >= self.max_connections and not self._evict_idle():
                        sock.close()
                        continue
                    conn = _Connection(self, sock, str(peer) or "unix")
                    conn.pid = pid
                    self._conns.add(conn)
                    self.stats.connections += 1
                    self.stats.active = len(self._conns)
                conn.thread.start()
        finally:
            self._listener.close()
            if self.unix_path is not None and os.path.exists(self.unix_path):
                os.unlink(self.unix_path)

    def _evict_idle(self) -> bool:
        """Under the lock, the server full: end the connection idle longest, if any was idle long enough."""
        now = time.monotonic()
        idle = [(c.idle_for(now), c) for c in self._conns if not c.evicted]
        if not idle:
            return False
        longest, conn = max(idle, key=lambda item: item[0])
        if longest < _EVICT_IDLE:
            return False
        log.info("nbd %s: closing it (idle %.1f s) to make room for a new connection", conn.peer, longest)
        conn.evict()
        self._conns.discard(conn)  # its slot is free now; its thread ends on its own
        return True

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            self._conns.discard(conn)
            self.stats.active = len(self._conns)


class _Connection:
    """One client: the handshake, then requests until DISC, EOF, an error, or the server stopping."""

    def __init__(self, server: NbdServer, sock: socket.socket, peer: str) -> None:
        self.server = server
        self.export = server.export
        self.sock = sock
        self.peer = peer
        self.sock.settimeout(_SEND_TIMEOUT)
        if sock.family != socket.AF_UNIX:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.send_lock = threading.Lock()
        self.slots = threading.BoundedSemaphore(_MAX_INFLIGHT)
        self.thread = threading.Thread(target=self.run, name=f"nbd {peer}", daemon=True)
        self.broken = False
        self.pid = 0
        self.evicted = False
        self.last_active = time.monotonic()
        self.inflight = 0  # asynchronous requests whose reply has not been sent
        # replies: (parts, holds a slot); filled by the reader and by completions, emptied by the sender
        self.outq: collections.deque[tuple[tuple[bytes | memoryview, ...], bool]] = collections.deque()
        self.out_cond = threading.Condition()
        self.sender: threading.Thread | None = None
        self.sender_done = False
        self.structured = False  # NBD_OPT_STRUCTURED_REPLY was acknowledged
        self.contexts: list[str] = []  # the metadata contexts SET_META_CONTEXT selected

    def run(self) -> None:
        try:
            handshake = Handshake(self, self.server)
            if handshake.run():
                self.structured, self.contexts = handshake.structured, handshake.contexts
                self.sender = threading.Thread(target=self.send_loop, name=f"nbd {self.peer} sender", daemon=True)
                self.sender.start()
                self.transmission()
        except Closed as exc:
            log.debug("nbd %s: %s", self.peer, exc)
        except OSError as exc:
            log.debug("nbd %s: %s", self.peer, exc)
        except Exception:
            log.exception("nbd %s: dropping the connection", self.peer)
        finally:
            self.drain()
            self.stop_sender()
            self.sock.close()
            self.server._forget(self)

    def idle_for(self, now: float) -> float:
        """Seconds since the last request or reply, 0 while requests are in flight or replies queued."""
        return 0.0 if self.inflight or self.outq else now - self.last_active

    def evict(self) -> None:
        """End the connection from another thread: its reader sees end-of-file."""
        self.evicted = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    # --- replies ----------------------------------------------------------------------------------------
    def enqueue(self, parts: tuple[bytes | memoryview, ...], slot: bool) -> None:
        """Queue a reply for the sender; never blocks (completions call it on the device's thread)."""
        with self.out_cond:
            if not self.broken and not self.sender_done:
                self.outq.append((parts, slot))
                self.out_cond.notify()
                return
        if slot:
            self.release_slot()  # nobody will send it: the connection is going away

    def release_slot(self) -> None:
        with self.out_cond:
            self.inflight -= 1
        self.slots.release()

    def send_loop(self) -> None:
        """The sender thread: one blocking sendall at a time, for this client only."""
        while True:
            with self.out_cond:
                while not self.outq and not self.sender_done:
                    self.out_cond.wait()
                if not self.outq:
                    return
                parts, slot = self.outq.popleft()
                self.out_cond.notify_all()  # a reader waiting for room
            try:
                self.send(*parts)
                self.last_active = time.monotonic()
            except Exception as exc:  # OSError: the client is gone or stopped reading; else a bug: say so
                (log.debug if isinstance(exc, OSError) else log.exception)("nbd %s: dropping replies: %s",
                                                                           self.peer, exc)
                self.broken = True
                self.evict()  # the reader sees EOF and ends the connection
            finally:
                if slot:
                    self.release_slot()

    def wait_for_room(self) -> None:
        """The reader, before queuing a reply of its own: wait while the sender is behind."""
        with self.out_cond:
            while len(self.outq) >= _MAX_QUEUED and not self.broken:
                if self.server._stop.is_set() or self.evicted:
                    raise Closed("server stopping")
                self.out_cond.wait(_TICK)

    def stop_sender(self) -> None:
        with self.out_cond:
            self.sender_done = True
            self.out_cond.notify_all()
        if self.sender is not None and self.sender is not threading.current_thread():
            self.sender.join(_SEND_TIMEOUT + 5)
        with self.out_cond:  # what the sender did not get to (it stopped on an error)
            left, self.outq = list(self.outq), collections.deque()
        for _, slot in left:
            if slot:
                self.release_slot()

    # --- socket helpers -------------------------------------------------------------------------------
    def recv_into(self, view: memoryview, deadline: float | None = None, idle: bool = False) -> None:
        """Fill `view`, polling the stop flag; raises Closed on EOF, stop, the deadline, or (`idle`: waiting
        for a request) after idle_timeout s without traffic and with nothing in flight."""
        got = 0
        while got < len(view):
            if self.server._stop.is_set() or self.evicted:
                raise Closed("server stopping" if not self.evicted else "evicted")
            now = time.monotonic()
            if deadline is not None and now > deadline:
                raise Closed("handshake timed out")
            if idle and not got and self.idle_for(now) > self.server.idle_timeout:
                raise Closed(f"idle for {self.server.idle_timeout} s")
            ready, _, _ = select.select([self.sock], [], [], _TICK)
            if not ready:
                continue
            n = self.sock.recv_into(view[got:])
            if n == 0:
                raise Closed("client closed the connection")
            got += n

    def recv(self, n: int, deadline: float | None = None) -> bytes:
        buf = bytearray(n)
        self.recv_into(memoryview(buf), deadline)
        return bytes(buf)

    def send(self, *parts: bytes | memoryview) -> None:
        with self.send_lock:
            if self.broken:
                return
            try:
                for part in parts:
                    self.sock.sendall(part)
            except OSError:
                self.broken = True  # the reader notices EOF next; nothing more goes out
                raise

    # --- transmission ---------------------------------------------------------------------------------
    def transmission(self) -> None:
        header = bytearray(P.REQUEST.size)
        view = memoryview(header)
        while True:
            self.recv_into(view, idle=True)
            self.last_active = time.monotonic()
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
                self.recv_into(payload.data)
            error, why = self.check(flags, kind, offset, length)
            if error:
                self.answer(handle, error, message=f"{P.COMMAND_NAMES.get(kind, kind)}: {why}")
                continue
            self.execute(kind, flags, handle, offset, length, payload)

    def check(self, flags: int, kind: int, offset: int, length: int) -> tuple[int, str]:
        """The NBD error (and why) for a request that must not reach the device, or (0, "")."""
        allowed = {P.CMD_READ: P.CMD_FLAG_FUA | (P.CMD_FLAG_DF if self.structured else 0),
                   P.CMD_WRITE: P.CMD_FLAG_FUA, P.CMD_FLUSH: P.CMD_FLAG_FUA,
                   P.CMD_TRIM: P.CMD_FLAG_FUA, P.CMD_WRITE_ZEROES: P.CMD_FLAG_FUA | P.CMD_FLAG_NO_HOLE}
        if self.contexts:
            allowed[P.CMD_BLOCK_STATUS] = P.CMD_FLAG_REQ_ONE
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
            self.wait_for_room()
        self.enqueue(parts, slot)

    def execute(self, kind: int, flags: int, handle: int, offset: int, length: int,
                payload: np.ndarray | None) -> None:
        export, stats = self.export, self.server.stats
        fua = bool(flags & P.CMD_FLAG_FUA)
        if length == 0 and kind not in (P.CMD_FLUSH, P.CMD_BLOCK_STATUS):
            self.answer(handle, 0, np.empty(0, np.uint8) if kind == P.CMD_READ else None)
            return
        if kind == P.CMD_BLOCK_STATUS:
            self.wait_for_room()
            self.enqueue((S.block_status_chunk(handle, export.extents(offset, length),
                                               bool(flags & P.CMD_FLAG_REQ_ONE)),), False)
            return
        if kind == P.CMD_READ:
            self.acquire()
            holes = self.structured and not flags & P.CMD_FLAG_DF

            def read_done(status: BlockStatus, data: np.ndarray | None) -> None:
                if status is not BlockStatus.OK:
                    self.answer(handle, _errno(status, False), slot=True,
                                message=_failed("READ", offset, length, status))
                    return
                stats.bytes_read += length
                self.answer(handle, 0, data, slot=True, offset=offset, holes=holes)

            self.submit(lambda: export.read(offset, length, read_done))
        elif kind == P.CMD_WRITE:
            assert payload is not None
            self.acquire()

            def write_done(status: BlockStatus) -> None:
                if status is BlockStatus.OK:
                    stats.bytes_written += length
                self.answer(handle, 0 if status is BlockStatus.OK else _errno(status, True), slot=True,
                            message=_failed("WRITE", offset, length, status))

            self.submit(lambda: export.write(offset, payload, fua, write_done))
        else:
            if kind == P.CMD_FLUSH:
                status = export.flush()
            elif kind == P.CMD_TRIM:
                status = export.trim(offset, length, fua)
            else:
                status = export.write_zeroes(offset, length, fua)
            self.answer(handle, 0 if status is BlockStatus.OK else _errno(status, kind != P.CMD_FLUSH),
                        message=_failed(P.COMMAND_NAMES[kind], offset, length, status))

    def submit(self, start: Callable[[], None]) -> None:
        """Start an asynchronous request that holds a slot; the slot comes back if starting it fails."""
        try:
            start()
        except BaseException:
            self.release_slot()
            raise

    def acquire(self) -> None:
        while not self.slots.acquire(timeout=_TICK):
            if self.server._stop.is_set() or self.evicted:
                raise Closed("server stopping")
        with self.out_cond:
            self.inflight += 1

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for this connection's asynchronous requests to finish before the socket closes."""
        taken = 0
        deadline = time.monotonic() + timeout
        while taken < _MAX_INFLIGHT and time.monotonic() < deadline:
            if self.slots.acquire(timeout=_TICK):
                taken += 1
        if taken < _MAX_INFLIGHT:
            log.warning("nbd %s: %d requests still in flight at close", self.peer, _MAX_INFLIGHT - taken)


def _failed(command: str, offset: int, length: int, status: BlockStatus) -> str:
    return f"{command} of {length} bytes at byte {offset}: the device says {status.name}"


def _peer_pid(sock: socket.socket) -> int:
    """The connecting process's pid on a unix socket; 0 on TCP (or when the kernel does not say)."""
    if sock.family != socket.AF_UNIX:
        return 0
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return 0
    return int(struct.unpack("3i", creds)[0])
