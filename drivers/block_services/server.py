"""BlockServer: serves one BlockDevice to many client processes over the block FIFO protocol (`fifo`).

A client connects to the server's unix socket (the control channel, `control`; its requests are answered by
`control_ops`), receives its FIFO (one end of a SOCK_SEQPACKET socketpair, passed with SCM_RIGHTS), and
attaches shared buffers: its own sealed memfds (`attach_vmo`) or DMA memory the server allocates from the
device's pool (`alloc_vmo`). Requests then name a buffer by its vmoid, which is private to the client's
session: a client can only ever reach its own buffers. The server maps each buffer once and hands the
driver a `Vmo` over that mapping (with `dma_addr` for DMA memory), so request data is never copied by the
server.

One thread runs a selector loop and owns every session's state. Completions arrive on any thread (before
`queue()` returns or later); they are queued and handled by the loop, woken through an eventfd. A client
that dies mid-request only loses its own session: in-flight ops finish into the server's mapping, and the
buffers are released when the last of them completes. Malformed records, bad vmoids, out-of-range requests
and protocol violations get error responses, never another client's data.

No client can lock others out: one process holds at most `max_clients_per_process` sessions, a session that
has not taken its FIFO within `handshake_timeout` s is closed, and so is one with nothing in flight that sent
nothing and accepted no response for `idle_timeout` s.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import socket
import struct
import threading
import time
from typing import Any

from drivers.block.protocol import BlockDevice

from . import control
from .control_ops import ControlOps
from .dispatch import Dispatcher, ServerStats
from .fifo import (
    FIFO_MAX_DEPTH,
    MAX_BATCH,
    RECORD_SIZE,
    MalformedRecord,
)
from .session import AttachedVmo, Session, device_bytes_copied
from .shared_dma import PoolExporter

__all__ = ["BlockServer", "ServerStats"]
log = logging.getLogger(__name__)
_OUTBUF_HIGH = 4 * FIFO_MAX_DEPTH * MAX_BATCH * RECORD_SIZE  # response bytes queued before we stop reading
_MESSAGE = MAX_BATCH * RECORD_SIZE
_MSG_TRUNC = int(socket.MSG_TRUNC)  # a plain int: an IntFlag's & costs a Python call per message
_TICK = 0.25  # seconds: the loop's select timeout, so stop() is noticed promptly


class BlockServer:
    """Serves `device` at unix socket `path` until `stop()`.

    `dma` (a DmaPool over a shared RamSpace file, or a `PoolExporter`) lets clients allocate DMA-able
    buffers; see `dmaexport` for the trust this implies. Limits bound what one client can hold.
    """

    def __init__(self, device: BlockDevice, path: str | os.PathLike[str], *, dma: Any = None,
                 max_clients: int = 64, max_vmos: int = 256, max_vmo_bytes: int = 1 << 30,
                 max_clients_per_process: int = 16, handshake_timeout: float = 10.0,
                 idle_timeout: float = 300.0) -> None:
        self.device = device
        self.path = os.fspath(path)
        self.info = device.query()
        if self.info.block_size <= 0 or self.info.block_count <= 0:
            raise ValueError(f"device reports block_size {self.info.block_size} and block_count "
                             f"{self.info.block_count}: nothing to serve")
        self._dma: PoolExporter | None = PoolExporter(dma) if dma is not None and not isinstance(
            dma, PoolExporter) else dma
        self.max_clients = max_clients
        self.max_clients_per_process = max_clients_per_process
        self.handshake_timeout = handshake_timeout
        self.idle_timeout = idle_timeout
        self._next_idle_check = 0.0
        self.stats = ServerStats()
        self._engine = Dispatcher(device, self.stats, self._wake)
        self._control = ControlOps(device, self.info, self.stats, self._dma, max_vmos, max_vmo_bytes,
                                   self._close_session)
        self._sessions: dict[int, Session] = {}
        self._next_session = 1
        self._wake_armed = False
        self._wake_fd = -1
        self._listener: socket.socket | None = None
        self._sel: selectors.BaseSelector | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._rxbuf = bytearray(MAX_BATCH * RECORD_SIZE)  # the loop's receive buffer (one thread uses it)
        self._rxview = memoryview(self._rxbuf)

    # --- lifecycle ------------------------------------------------------------------------------------
    def start(self, *, thread: bool = True) -> BlockServer:
        """Listen, and serve from a thread of its own; with `thread=False` the caller drives the server
        by calling `poll()` (for single-threaded hosts such as a simulator's driver greenlet)."""
        if self._thread is not None or self._sel is not None:
            raise RuntimeError(f"block server at {self.path} is already running")
        if os.path.exists(self.path):
            raise FileExistsError(f"{self.path} already exists; remove it or choose another socket path")
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            listener.bind(self.path)
            listener.listen(16)
            listener.setblocking(False)
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        self._wake_fd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        self._sel = selectors.DefaultSelector()
        self._sel.register(listener, selectors.EVENT_READ, ("accept", None))
        self._sel.register(self._wake_fd, selectors.EVENT_READ, ("wake", None))
        if thread:
            self._thread = threading.Thread(target=self._run, name=f"block-server {self.path}", daemon=True)
            self._thread.start()
        else:
            self._engine.loop_ident = threading.get_ident()
        return self

    def poll(self, timeout: float = 0.0) -> None:
        """Without a server thread: handle whatever is ready, waiting up to `timeout` s for something."""
        if self._thread is not None or self._sel is None:
            raise RuntimeError("poll() drives a server started with thread=False")
        self._iterate(timeout)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving: close every session and the socket, remove the socket file. Safe to call twice."""
        thread = self._thread
        if thread is None:
            if self._sel is not None:
                self._shutdown()
            return
        self._stopping.set()
        self._wake()
        thread.join(timeout)
        if thread.is_alive():
            raise TimeoutError(f"block server at {self.path} did not stop within {timeout} s")
        self._thread = None

    def __enter__(self) -> BlockServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_until(self, event: threading.Event, poll: float = 0.5) -> None:
        """Block until `event` is set (a signal handler's job), then stop."""
        while not event.wait(poll):
            if self._thread is None or not self._thread.is_alive():
                break
        self.stop()

    @property
    def max_vmos(self) -> int:
        """Buffers one session may hold at once."""
        return self._control.max_vmos

    @property
    def max_vmo_bytes(self) -> int:
        """The largest buffer a client may attach or allocate."""
        return self._control.max_vmo_bytes

    @property
    def bytes_copied(self) -> int:
        """Bytes copied on the way between client memory and the medium: the server's (none) plus the
        driver's own bounce copies when it reports them (`bytes_copied`/`bytes_bounced`)."""
        return self.stats.bytes_copied + device_bytes_copied(self.device)

    def session_vmos(self) -> dict[int, dict[int, AttachedVmo]]:
        """Each session's attached buffers (for tests and diagnostics)."""
        return {sid: dict(s.vmos) for sid, s in self._sessions.items()}

    # --- the loop -------------------------------------------------------------------------------------
    def _run(self) -> None:
        self._engine.loop_ident = threading.get_ident()
        try:
            while not self._stopping.is_set():
                try:
                    self._iterate(_TICK)
                except Exception:  # the loop serves every client: report, never die silently
                    log.exception("block server at %s: loop iteration failed", self.path)
                    self._stopping.wait(_TICK)
        finally:
            self._shutdown()

    def _iterate(self, timeout: float) -> None:
        assert self._sel is not None
        for key, mask in self._sel.select(timeout):
            kind, session = key.data
            try:
                self._dispatch(kind, session, mask)
            except Exception:  # a bug handling one client must not take the others down
                log.exception("block server: dropping client %s", session.sid if session else "-")
                if session is not None:
                    self._close_session(session)
            self._engine.drain()
        self._engine.drain()
        self._flush_all()
        self._close_idle()

    def _close_idle(self) -> None:
        """Close sessions past their handshake or idle timeout (checked a few times a second)."""
        now = time.monotonic()
        if now < self._next_idle_check:
            return
        self._next_idle_check = now + min(_TICK, self.handshake_timeout / 4, self.idle_timeout / 4)
        for session in list(self._sessions.values()):
            if session.inflight:
                continue
            limit = self.idle_timeout if session.handshake_done else self.handshake_timeout
            if now - session.last_active > limit:
                log.info("block server: closing client %d: %s for %.1f s", session.sid,
                         "idle" if session.handshake_done else "no handshake", limit)
                self._close_session(session)

    def _dispatch(self, kind: str, session: Session | None, mask: int) -> None:
        if session is not None and session.closed:
            return  # closed by an earlier event of the same select() (its other socket saw EOF first)
        if kind == "accept":
            self._accept()
        elif kind == "wake":
            with contextlib.suppress(BlockingIOError):
                os.eventfd_read(self._wake_fd)
            self._wake_armed = False
        elif kind == "ctrl":
            assert session is not None
            self._control.on_control(session)
        elif kind == "fifo":
            assert session is not None
            if mask & selectors.EVENT_WRITE:
                self._flush(session)
            if mask & selectors.EVENT_READ and not session.closed:
                self._on_fifo(session)

    def _wake(self) -> None:
        if self._wake_fd >= 0 and not self._wake_armed:
            self._wake_armed = True
            with contextlib.suppress(OSError):
                os.eventfd_write(self._wake_fd, 1)

    def _shutdown(self) -> None:
        for session in list(self._sessions.values()):
            self._close_session(session)
        assert self._sel is not None
        self._sel.close()
        self._sel = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)
        os.close(self._wake_fd)
        self._wake_fd = -1
        if self._dma is not None:
            self._dma.close()

    # --- sessions -------------------------------------------------------------------------------------
    def _accept(self) -> None:
        assert self._listener is not None and self._sel is not None
        try:
            conn, _ = self._listener.accept()
        except (BlockingIOError, InterruptedError):
            return
        pid = _peer_pid(conn)
        refusal = None
        if len(self._sessions) >= self.max_clients:
            refusal = f"server full ({self.max_clients} clients)"
        elif pid and sum(s.peer_pid == pid for s in self._sessions.values()) >= self.max_clients_per_process:
            refusal = f"process {pid} already holds {self.max_clients_per_process} sessions (the limit)"
        if refusal is not None:
            try:
                conn.setblocking(False)
                with contextlib.suppress(OSError):
                    control.send_msg(conn, {"ok": False, "error": refusal})
            finally:
                conn.close()
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        conn.setblocking(False)
        ours.setblocking(False)
        session = Session(self._next_session, conn, ours, theirs)
        session.peer_pid = pid
        self._next_session += 1
        self._sessions[session.sid] = session
        self.stats.sessions += 1
        self.stats.clients = len(self._sessions)
        self._sel.register(conn, selectors.EVENT_READ, ("ctrl", session))
        self._sel.register(ours, selectors.EVENT_READ, ("fifo", session))

    def _close_session(self, session: Session) -> None:
        if session.closed:
            return
        session.closed = True
        assert self._sel is not None
        for sock in (session.ctrl, session.fifo):
            with contextlib.suppress(KeyError, ValueError):
                self._sel.unregister(sock)
            sock.close()
        if session.fifo_peer is not None:
            session.fifo_peer.close()
            session.fifo_peer = None
        for vmo in list(session.vmos.values()):
            session.drop_vmo(vmo)
        session.outbuf.clear()
        session.held.clear()
        self._sessions.pop(session.sid, None)
        self.stats.clients = len(self._sessions)

    # --- FIFO -----------------------------------------------------------------------------------------
    def _on_fifo(self, session: Session) -> None:
        buf, view = self._rxbuf, self._rxview
        for _ in range(16):  # a bounded number of messages per wake-up keeps clients fair
            if len(session.outbuf) >= _OUTBUF_HIGH:
                self._flush(session)  # a client that does not read its responses stops being read
                return
            try:
                n, _, flags, _ = session.fifo.recvmsg_into([buf])
            except (BlockingIOError, InterruptedError):
                return
            except (ConnectionError, OSError):
                self._close_session(session)
                return
            if not n:
                if control.peer_closed(session.fifo):
                    self._close_session(session)  # the client closed its FIFO (or died)
                    return
                continue  # a 0-byte message holds no request
            session.last_active = time.monotonic()
            if flags & _MSG_TRUNC:
                self._engine.malformed(session, MalformedRecord(
                    f"request message longer than {MAX_BATCH} records", int.from_bytes(buf[8:12], "little")))
                continue
            if n % RECORD_SIZE:
                self._engine.malformed(session, MalformedRecord(
                    f"request message of {n} bytes: expected 1..{MAX_BATCH} whole {RECORD_SIZE}-byte records",
                    int.from_bytes(buf[8:12], "little") if n >= 12 else 0))
                continue
            self._engine.handle_message(session, view[:n])
            if session.outbuf:
                self._flush(session)  # answer each message at once: the client works while we read on

    def _flush_all(self) -> None:
        for session in list(self._sessions.values()):
            if session.outbuf:
                self._flush(session)

    def _flush(self, session: Session) -> None:
        """Send queued responses, MAX_BATCH per message; wait for writability when the socket is full."""
        if session.closed:
            return
        out = session.outbuf
        send = session.fifo.send
        while out:
            chunk = out if len(out) <= _MESSAGE else out[:_MESSAGE]
            try:
                send(chunk)
            except (BlockingIOError, InterruptedError):
                self._want(session, read=len(out) < _OUTBUF_HIGH, write=True)
                return
            except (ConnectionError, OSError):
                self._close_session(session)
                return
            del out[:len(chunk)]
        session.last_active = time.monotonic()
        if session.events != selectors.EVENT_READ:
            self._want(session, read=True, write=False)

    def _want(self, session: Session, read: bool = True, write: bool = False) -> None:
        events = (selectors.EVENT_READ if read else 0) | (selectors.EVENT_WRITE if write else 0)
        if events == session.events or session.closed or not events:
            return
        assert self._sel is not None
        self._sel.modify(session.fifo, events, ("fifo", session))
        session.events = events


def _peer_pid(conn: socket.socket) -> int:
    """The connecting process's pid (0 when the kernel does not say)."""
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return 0
    return int(struct.unpack("3i", creds)[0])
