"""One NBD client's connection: its socket, its replies and sender thread, and its request slots.

`Connection.run()` (the connection's thread) runs the handshake (nbd_handshake.py), then the transmission
phase (nbd_transmission.py) until DISC, EOF, an error or the server stopping.

Replies go out on the thread that produced them when nothing is queued ahead, one sendmsg for a reply's
header and data. The connection's own thread (its reader, on which synchronous devices such as the RAM and
file disks complete) waits for its own client when the socket is full, as its reader would have to anyway.
Any other thread (a device's worker or interrupt thread, shared by every client) never waits: what the
socket does not take, and every reply behind it, waits in a per-connection queue for the connection's sender
thread. So a client that stops reading blocks its own connection and nothing else (and is dropped after
`_SEND_TIMEOUT`), and an uncongested reply costs no thread switch. At most `_MAX_INFLIGHT` asynchronous
requests are in flight per connection, and the reader stops reading requests while `_MAX_QUEUED` replies
wait. The socket is non-blocking; every wait for a request polls the server's stop flag, so `stop()` ends it
promptly.
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
_SNDBUF = 4 << 20  # unix socket send buffer asked for (the kernel caps it at net.core.wmem_max), so replies
# to a client's pipelined 256 KiB reads rarely find the socket full
_MAX_IOV = 256  # buffers per sendmsg (Linux takes at most IOV_MAX = 1024)

Parts = tuple[bytes | memoryview, ...]


class Connection:
    """One client: the handshake, then requests until DISC, EOF, an error, or the server stopping."""

    def __init__(self, server: NbdServer, sock: socket.socket, peer: str) -> None:
        self.server = server
        self.export = server.export
        self.sock = sock
        self.peer = peer
        self.sock.setblocking(False)  # every wait is a select that also watches the stop flag
        if sock.family == socket.AF_UNIX:
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, _SNDBUF)
            except OSError:
                pass  # the default buffer works too, with more replies finished by the sender
        else:  # TCP keeps its autotuned buffers (setting SO_SNDBUF would turn that off)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.thread = threading.Thread(target=self.run, name=f"nbd {peer}", daemon=True)
        self.broken = False
        self.pid = 0
        self.evicted = False
        self.last_active = time.monotonic()
        self.inflight = 0  # asynchronous requests whose reply has not been sent (under lock)
        # replies: (parts, holds a slot); filled by the reader and by completions, emptied by the sender
        self.outq: collections.deque[tuple[Parts, bool]] = collections.deque()
        self.lock = threading.Lock()  # guards outq, sending, inflight
        self.work = threading.Condition(self.lock)  # the sender waits here for replies to send
        self.room = threading.Condition(self.lock)  # the reader waits here for a slot or queue room
        self.sending = False  # a thread is writing a reply to the socket; nobody else may start one
        self.reader = 0  # the connection thread's ident: its replies may wait for the client
        self.sender: threading.Thread | None = None
        self.sender_done = False
        self.structured = False  # NBD_OPT_STRUCTURED_REPLY was acknowledged
        self.contexts: list[str] = []  # the metadata contexts SET_META_CONTEXT selected

    def run(self) -> None:
        self.reader = threading.get_ident()
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
    def enqueue(self, parts: Parts, slot: bool) -> None:
        """Send a reply, or queue it for the sender. Only the connection's own thread waits for the client;
        completions on any other thread never block. `slot`: the reply ends an asynchronous request, whose
        slot comes back once the reply is out (or will never go out)."""
        with self.lock:
            if self.broken or self.sender_done:
                if slot:
                    self._release()  # nobody will send it: the connection is going away
                return
            if self.outq or self.sending:
                self.outq.append((parts, slot))
                self.work.notify()
                return
            self.sending = True
        rest: Parts = ()
        try:
            rest = self.send_nowait(parts)
            if rest and threading.get_ident() == self.reader:
                self.send(*rest)
                rest = ()
        except Exception as exc:
            self.drop_replies(exc)
            rest = ()
        with self.lock:
            self.sending = False
            if rest:
                self.outq.appendleft((rest, slot))  # before anything queued while this one went out
            elif slot:
                self._release()
            if self.outq:
                self.work.notify()
        if not rest:
            self.last_active = time.monotonic()

    def release_slot(self) -> None:
        with self.lock:
            self._release()

    def _release(self) -> None:
        """Under the lock: one asynchronous request fewer in flight."""
        self.inflight -= 1
        self.room.notify()

    def send_loop(self) -> None:
        """The sender thread: the replies the socket did not take at once, one blocking send at a time."""
        while True:
            with self.lock:
                while self.sending or (not self.outq and not self.sender_done):
                    self.work.wait()
                if not self.outq:
                    return
                parts, slot = self.outq.popleft()
                self.sending = True
                self.room.notify()  # a reader waiting for room
            try:
                self.send(*parts)
                self.last_active = time.monotonic()
            except Exception as exc:
                self.drop_replies(exc)
            finally:
                with self.lock:
                    self.sending = False
                    if slot:
                        self._release()

    def drop_replies(self, exc: Exception) -> None:
        """A send failed: OSError, the client is gone or stopped reading; anything else is a bug: say so."""
        (log.debug if isinstance(exc, OSError) else log.exception)("nbd %s: dropping replies: %s", self.peer, exc)
        self.broken = True
        self.evict()  # the reader sees EOF and ends the connection

    def wait_for_room(self) -> None:
        """The reader, before queuing a reply of its own: wait while the sender is behind."""
        with self.lock:
            while len(self.outq) >= _MAX_QUEUED and not self.broken:
                if self.server._stop.is_set() or self.evicted:
                    raise Closed("server stopping")
                self.room.wait(TICK)

    def stop_sender(self) -> None:
        with self.lock:
            self.sender_done = True
            self.work.notify()
        if self.sender is not None and self.sender is not threading.current_thread():
            self.sender.join(_SEND_TIMEOUT + 5)
        with self.lock:  # what the sender did not get to (it stopped on an error)
            for _, slot in self.outq:
                if slot:
                    self._release()
            self.outq.clear()

    # --- socket helpers -------------------------------------------------------------------------------
    def recv_into(self, view: memoryview, deadline: float | None = None, idle: bool = False) -> None:
        """Fill `view`, polling the stop flag; raises Closed on EOF, stop, the deadline, or (`idle`: waiting
        for a request) after idle_timeout s without traffic and with nothing in flight."""
        got = 0
        while got < len(view):
            if self.server._stop.is_set() or self.evicted:
                raise Closed("server stopping" if not self.evicted else "evicted")
            if deadline is not None and time.monotonic() > deadline:
                raise Closed("handshake timed out")
            try:
                n = self.sock.recv_into(view[got:])
            except BlockingIOError:  # nothing there yet: wait for it, a tick at a time
                if idle and not got and self.idle_for(time.monotonic()) > self.server.idle_timeout:
                    raise Closed(f"idle for {self.server.idle_timeout} s") from None
                select.select([self.sock], [], [], TICK)
                continue
            if n == 0:
                raise Closed("client closed the connection")
            got += n

    def recv(self, n: int, deadline: float | None = None) -> bytes:
        buf = bytearray(n)
        self.recv_into(memoryview(buf), deadline)
        return bytes(buf)

    def send_nowait(self, parts: Parts) -> Parts:
        """Write what the socket takes of `parts` now; the rest (empty: all sent). Raises OSError."""
        views = [memoryview(part) for part in parts]
        while views:
            try:
                sent = self.sock.sendmsg(views[:_MAX_IOV])
            except BlockingIOError:
                break
            while views and sent >= views[0].nbytes:
                sent -= views.pop(0).nbytes
            if sent:
                views[0] = views[0][sent:]
                break  # a short write: the socket is full
        return tuple(views)

    def send(self, *parts: bytes | memoryview) -> None:
        """Write `parts` whole, waiting for the client; TimeoutError after `_SEND_TIMEOUT` s without progress."""
        if self.broken:
            return
        rest: Parts = parts
        try:
            while rest := self.send_nowait(rest):  # the socket is full: wait until it takes more
                _, ready, _ = select.select([], [self.sock], [], _SEND_TIMEOUT)
                if not ready:
                    raise TimeoutError(f"the client read nothing for {_SEND_TIMEOUT} s")
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
        """Take a slot for an asynchronous request, waiting while `_MAX_INFLIGHT` are in flight."""
        with self.lock:
            while self.inflight >= _MAX_INFLIGHT:
                if self.server._stop.is_set() or self.evicted:
                    raise Closed("server stopping")
                self.room.wait(TICK)
            self.inflight += 1

    def drain(self, timeout: float = 30.0) -> None:
        """Wait for this connection's asynchronous requests to finish before the socket closes."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.inflight and time.monotonic() < deadline:
                self.room.wait(TICK)
            if self.inflight:
                log.warning("nbd %s: %d requests still in flight at close", self.peer, self.inflight)
