"""The block server's control channel and shared buffers.

Control messages are small JSON objects on a SOCK_SEQPACKET unix socket, each answered once; file
descriptors ride along as SCM_RIGHTS. They are rare (connect, attach a buffer), so JSON's cost does not
matter and its errors are readable. Bulk data never crosses this socket or the FIFO: it lives in shared
buffers the client attached.

Client buffers are memfds sealed against shrinking (F_SEAL_SHRINK). The server maps them and hands the
mapping to the driver; a plain /dev/shm file could be truncated by the client under the server, and the
server's next access would die with SIGBUS. Sealing is what lets the server trust the mapping.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import mmap
import os
import select
import socket
from collections.abc import Sequence
from typing import Any

MAX_CONTROL = 4096  # bytes in one control message
MAX_FDS = 2
PROTOCOL_VERSION = 1


class ControlError(Exception):
    """A control message was malformed, refused, or did not arrive in time."""


def peer_closed(sock: socket.socket) -> bool:
    """After a recv returned nothing: whether that was end-of-file, not a 0-byte message (SOCK_SEQPACKET
    returns b"" for both; only a peer that is gone leaves the socket hung up)."""
    poller = select.poll()
    poller.register(sock, select.POLLRDHUP)
    return any(ev & (select.POLLRDHUP | select.POLLHUP | select.POLLERR) for _, ev in poller.poll(0))


def send_msg(sock: socket.socket, obj: dict[str, Any], fds: Sequence[int] = ()) -> None:
    data = json.dumps(obj, separators=(",", ":")).encode()
    if len(data) > MAX_CONTROL:
        raise ControlError(f"control message of {len(data)} bytes exceeds {MAX_CONTROL}")
    if fds:
        socket.send_fds(sock, [data], list(fds))
    else:
        sock.send(data)


def recv_msg(sock: socket.socket) -> tuple[dict[str, Any], list[int]]:
    """One control message and the fds that came with it (the caller owns them).

    Raises EOFError when the peer closed, ControlError (after closing any fds) when the message is not one
    JSON object of at most MAX_CONTROL bytes with at most MAX_FDS fds. Honors the socket's timeout.
    """
    data, fds, flags, _ = socket.recv_fds(sock, MAX_CONTROL, MAX_FDS)
    try:
        if not data and not fds:
            if peer_closed(sock):
                raise EOFError("control socket closed by peer")
            raise ControlError("empty control message: expected one JSON object")
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise ControlError(f"control message truncated: more than {MAX_CONTROL} bytes or "
                               f"{MAX_FDS} file descriptors")
        try:
            obj = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ControlError(f"control message is not JSON: {exc}") from None
        except RecursionError:
            raise ControlError("control message is nested too deeply") from None
        if not isinstance(obj, dict):
            raise ControlError(f"control message must be a JSON object, got {type(obj).__name__}")
    except BaseException:
        close_fds(fds)
        raise
    return obj, list(fds)


def request(sock: socket.socket, obj: dict[str, Any], fds: Sequence[int] = ()) -> tuple[dict[str, Any], list[int]]:
    """Send one control request and wait (socket timeout) for its reply; raise ControlError on refusal.

    A server that refuses a connection (full, or too many sessions for this process) sends its reason and
    closes at once, possibly before our request reached it: the kernel then reports the reset (or a
    broken pipe) first, and the reason is still queued behind it, so it is read once more.
    """
    try:
        send_msg(sock, obj, fds)
        reply, rfds = recv_msg(sock)
    except (ConnectionResetError, BrokenPipeError) as exc:
        try:
            reply, rfds = recv_msg(sock)
        except (OSError, EOFError, ControlError):
            raise ControlError(f"server reset the control socket during {obj.get('op')!r}: {exc}") from None
    except TimeoutError:
        raise ControlError(f"no reply to control request {obj.get('op')!r} within {sock.gettimeout()} s") \
            from None
    except EOFError:
        raise ControlError(f"server closed the control socket during {obj.get('op')!r}") from None
    if not reply.get("ok"):
        close_fds(rfds)
        raise ControlError(f"{obj.get('op')}: {reply.get('error', 'refused')}")
    return reply, rfds


def close_fds(fds: Sequence[int]) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


def create_sealed_memfd(size: int, name: str = "mmiotk-block") -> int:
    """A memfd of `size` bytes that cannot shrink or grow (so a server may map it safely)."""
    if not isinstance(size, int) or size <= 0:
        raise ValueError(f"buffer size must be a positive int, got {size!r}")
    fd = os.memfd_create(name, os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        os.ftruncate(fd, size)
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SEAL)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_shareable(fd: int, max_size: int) -> int:
    """The size of a buffer fd a client sent, after checking the server may map it; ValueError otherwise."""
    try:
        seals = fcntl.fcntl(fd, fcntl.F_GET_SEALS)
    except OSError as exc:
        if exc.errno == errno.EINVAL:
            raise ValueError("the buffer must be a memfd sealed with F_SEAL_SHRINK (this fd cannot be "
                             "sealed: a plain file could be truncated under the server)") from None
        raise ValueError(f"cannot inspect the buffer fd: {exc}") from None
    if not seals & fcntl.F_SEAL_SHRINK:
        raise ValueError("the buffer memfd is not sealed with F_SEAL_SHRINK: the client could truncate it "
                         "under the server")
    if seals & fcntl.F_SEAL_WRITE:
        raise ValueError("the buffer memfd is sealed against writes: the server could not read into it")
    size = os.fstat(fd).st_size
    if size <= 0:
        raise ValueError("the buffer memfd is empty")
    if size > max_size:
        raise ValueError(f"the buffer is {size} bytes; this server accepts at most {max_size}")
    return size


def map_fd(fd: int, size: int, offset: int = 0) -> mmap.mmap:
    """A shared read-write mapping of [offset, offset + size) of `fd` (offset page aligned)."""
    return mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=offset)
