"""NbdServer: any BlockDevice over the NBD protocol, so qemu-img, qemu-io, nbdinfo, nbdcopy and fio use it.

The protocol's parts live in their own modules: the fixed newstyle handshake (NBD_OPT_EXPORT_NAME, INFO,
GO, LIST, ABORT, STRUCTURED_REPLY, LIST/SET_META_CONTEXT with `base:allocation`; STARTTLS answered
NBD_REP_ERR_POLICY) in nbd_handshake.py, the requests in nbd_transmission.py, structured replies and
BLOCK_STATUS in nbd_structured.py, one client's socket, reply queue and sender in nbd_connection.py, the
constants and layouts in nbd_protocol.py. This module is the server: it listens on a unix socket or a TCP
address (loopback by default: NBD has no authentication), accepts, and keeps the connections in bounds.
Unaligned requests work (read-modify-write, byte_addressed.py).

No client stalls or locks out another: each connection has its own threads (nbd_connection.py). A
connection must finish its handshake within `handshake_timeout` s and is closed after `idle_timeout` s with
nothing in flight; one process (unix sockets) holds at most `max_connections_per_process`; when the server
is full, the connection idle longest (at least `_EVICT_IDLE` s) makes room for the new one. `stop()` ends
every connection promptly: every receive polls the stop flag.
"""

from __future__ import annotations

import logging
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass

from drivers.block.protocol import BlockDevice

from . import nbd_protocol as P
from .byte_addressed import Export
from .nbd_connection import TICK as _TICK
from .nbd_connection import Connection

log = logging.getLogger(__name__)

_EVICT_IDLE = 1.0  # seconds a connection must have been idle to make room for a new one


@dataclass
class NbdStats:
    connections: int = 0
    active: int = 0
    requests: int = 0
    errors: int = 0
    bytes_read: int = 0
    bytes_written: int = 0


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
        self._conns: set[Connection] = set()
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
                    conn = Connection(self, sock, str(peer) or "unix")
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

    def _forget(self, conn: Connection) -> None:
        with self._lock:
            self._conns.discard(conn)
            self.stats.active = len(self._conns)


def _peer_pid(sock: socket.socket) -> int:
    """The connecting process's pid on a unix socket; 0 on TCP (or when the kernel does not say)."""
    if sock.family != socket.AF_UNIX:
        return 0
    try:
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except OSError:
        return 0
    return int(struct.unpack("3i", creds)[0])
