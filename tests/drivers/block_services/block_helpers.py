"""Shared pieces of the block tests: a recording/holding device wrapper and a subprocess tracker."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from drivers.block.protocol import BlockDevice, BlockInfo, BlockOp, Completion
from drivers.block_services import nbd_protocol as P

BS = 512
BLOCKS = 2048  # 1 MiB
HERE = Path(__file__).parent


class Recorder(BlockDevice):
    """Wraps a device and records every op it was handed (and, optionally, holds them until released)."""

    def __init__(self, inner: BlockDevice, info: BlockInfo | None = None) -> None:
        self.inner = inner
        self._info = info
        self.ops: list[BlockOp] = []
        self.gate: threading.Event | None = None
        self.held: list[tuple[BlockOp, Completion]] = []
        self._lock = threading.Lock()

    def query(self) -> BlockInfo:
        return self._info or self.inner.query()

    def queue(self, op: BlockOp, completion: Completion) -> None:
        with self._lock:
            self.ops.append(op)
            if self.gate is not None and not self.gate.is_set():
                self.held.append((op, completion))
                return
        self.inner.queue(op, completion)

    def hold(self) -> None:
        self.gate = threading.Event()

    def release(self) -> None:
        """Run the held ops from another thread, as an asynchronous device completes them."""
        assert self.gate is not None
        with self._lock:
            self.gate.set()
            held, self.held = self.held, []

        def run() -> None:
            for op, completion in held:
                self.inner.queue(op, completion)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(10)


class Procs:
    """Subprocesses a test starts; each is killed by PID at teardown if still running."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        self.procs.append(proc)
        return proc

    def worker(self, *args: str) -> subprocess.Popen[str]:
        return self.start(str(HERE / "fifo_worker.py"), *args)

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)


class RawNbd:
    """A minimal NBD client for the protocol cases real tools never produce."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)

    def recv(self, n: int) -> bytes:
        buf = b""
        while len(buf) < n:
            chunk = self.sock.recv(n - len(buf))
            if not chunk:
                raise EOFError(f"server closed after {len(buf)} of {n} bytes")
            buf += chunk
        return buf

    def greet(self, client_flags: int = 3) -> int:
        magic, opt, flags = P.HANDSHAKE.unpack(self.recv(P.HANDSHAKE.size))
        assert (magic, opt) == (P.NBDMAGIC, P.IHAVEOPT)
        self.sock.sendall(client_flags.to_bytes(4, "big"))
        return int(flags)

    def option(self, option: int, data: bytes = b"") -> None:
        self.sock.sendall(P.OPTION.pack(P.IHAVEOPT, option, len(data)) + data)

    def reply(self) -> tuple[int, int, bytes]:
        magic, option, kind, length = P.OPT_REPLY.unpack(self.recv(P.OPT_REPLY.size))
        assert magic == P.OPT_REPLY_MAGIC
        return option, kind, self.recv(length)

    def go(self, name: bytes = b"", infos: tuple[int, ...] = ()) -> list[tuple[int, bytes]]:
        """NBD_OPT_GO; the NBD_REP_INFO payloads on success (raises AssertionError on an error reply)."""
        data = len(name).to_bytes(4, "big") + name + len(infos).to_bytes(2, "big")
        data += b"".join(i.to_bytes(2, "big") for i in infos)
        self.option(P.OPT_GO, data)
        got: list[tuple[int, bytes]] = []
        while True:
            _, kind, payload = self.reply()
            if kind == P.REP_ACK:
                return got
            assert kind == P.REP_INFO, f"GO failed with reply {kind:#x}: {payload!r}"
            got.append((int.from_bytes(payload[:2], "big"), payload[2:]))

    def request(self, kind: int, offset: int = 0, length: int = 0, flags: int = 0, handle: int = 1,
                payload: bytes = b"") -> None:
        self.sock.sendall(P.REQUEST.pack(P.REQUEST_MAGIC, flags, kind, handle, offset, length) + payload)

    def simple_reply(self, data_len: int = 0) -> tuple[int, int, bytes]:
        magic, error, handle = P.SIMPLE_REPLY.unpack(self.recv(P.SIMPLE_REPLY.size))
        assert magic == P.SIMPLE_REPLY_MAGIC
        return error, handle, self.recv(data_len) if data_len and not error else b""

    def meta(self, option: int, queries: tuple[str, ...] = (), name: bytes = b"") -> list[tuple[int, int, bytes]]:
        """LIST/SET_META_CONTEXT; every reply up to and including the final one, as (type, id, name)."""
        data = len(name).to_bytes(4, "big") + name + len(queries).to_bytes(4, "big")
        data += b"".join(len(q.encode()).to_bytes(4, "big") + q.encode() for q in queries)
        self.option(option, data)
        got = []
        while True:
            _, kind, payload = self.reply()
            got.append((kind, int.from_bytes(payload[:4], "big"), payload[4:]))
            if kind != P.REP_META_CONTEXT:
                return got

    def chunk(self) -> tuple[int, int, int, bytes]:
        """One structured reply chunk: (flags, type, handle, payload)."""
        magic, flags, kind, handle, length = P.CHUNK.unpack(self.recv(P.CHUNK.size))
        assert magic == P.STRUCTURED_REPLY_MAGIC, f"not a structured reply: magic {magic:#x}"
        return flags, kind, handle, self.recv(length)

    def chunks(self) -> list[tuple[int, int, int, bytes]]:
        """The chunks of one structured reply, up to the one flagged DONE."""
        got = [self.chunk()]
        while not got[-1][0] & P.REPLY_FLAG_DONE:
            got.append(self.chunk())
        return got

    def closed(self) -> bool:
        """True when the server has closed the connection (EOF)."""
        try:
            return self.sock.recv(1) == b""
        except ConnectionResetError:
            return True

    def close(self) -> None:
        self.sock.close()
