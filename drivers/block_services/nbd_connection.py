"""One NBD client's connection: its socket, the reply queue and sender thread, and its request slots.

`Connection.run()` (the connection's thread) runs the handshake (nbd_handshake.py), then the transmission
phase (nbd_transmission.py) until DISC, EOF, an error or the server stopping. Replies go through a
per-connection queue and sender thread: completions (on the device's thread) only enqueue, so a client that
stops reading blocks its own sender and nothing else (and is dropped after `_SEND_TIMEOUT`); the queue is
bounded by the connection's in-flight limit (`_MAX_INFLIGHT` slots), and the reader stops reading requests
while the queue is full. Every receive polls the server's stop flag, so `stop()` ends it promptly.
"""

from __future__ import annotations

import collections
import logging
import select
import socket
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from .nbd_handshake import Closed, Handshake
from .nbd_transmission import Transmission

if TYPE_CHECKING:
    from .nbd import NbdServer

log = logging.getLogger(__name__)

TICK = 0.25  # seconds between checks of the stop flag while waiting on a client
_SEND_TIMEOUT = 30.0  # a client that does not read its replies for this long is dropped
_MAX_INFLIGHT = 64  # asynchronous requests per connection
_MAX_QUEUED = 2 * _MAX_INFLIGHT  # replies waiting for the sender before the reader stops reading


class Connection:
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
                Transmission(self).run()
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
                self.out_cond.wait(TICK)

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
            ready, _, _ = select.select([self.sock], [], [], TICK)
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

    # --- request slots ----------------------------------------------------------------------------------
    def submit(self, start: Callable[[], None]) -> None:
        """Start an asynchronous request that holds a slot; the slot comes back if starting it fails."""
        try:
            start()
        except BaseException:
            self.release_slot()
            raise

    def acquire(self) -> None:
        while not self.slots.acquire(timeout=TICK):
            if self.server._stop.is_set() or self.evicted:
                raise Closed("server stopping")
        with self.out_cond:
            self.inflight += 1

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for this connection's asynchronous requests to finish before the socket closes."""
        taken = 0
        deadline = time.monotonic() + timeout
        while taken < _MAX_INFLIGHT and time.monotonic() < deadline:
            if self.slots.acquire(timeout=TICK):
                taken += 1
        if taken < _MAX_INFLIGHT:
            log.warning("nbd %s: %d requests still in flight at close", self.peer, _MAX_INFLIGHT - taken)
