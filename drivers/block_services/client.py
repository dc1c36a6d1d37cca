"""BlockClient: the client side of the block FIFO protocol (see `server` and `fifo`).

    with BlockClient("/run/blk.sock") as blk:
        buf = blk.attach(1 << 20)            # a sealed memfd, shared with the server
        buf.array[:4096] = 0xAB
        blk.write(buf, dev_offset=0, length=8)
        blk.read(buf, dev_offset=0, length=8, vmo_offset=16)

`transact()` pipelines many requests (up to the FIFO depth outstanding) and returns one response per
answered request; `read`/`write`/`flush`/`trim` are the one-request conveniences and raise
`BlockFifoError` naming the status. Every wait has the client's timeout.
"""

from __future__ import annotations

import mmap
import os
import socket
import struct
from collections.abc import Sequence

import numpy as np

from drivers.block.protocol import BlockFlag, BlockInfo

from . import control
from .fifo import (
    FIFO_MAX_DEPTH,
    MAX_BATCH,
    RECORD_SIZE,
    FifoFlag,
    FifoOp,
    Request,
    Response,
    ZxStatus,
    pack_requests,
    status_name,
    unpack_responses,
)


def _kernel_timeouts(sock: socket.socket, timeout: float) -> None:
    """Blocking FIFO calls that the kernel times out (SO_RCVTIMEO/SO_SNDTIMEO; EAGAIN when it does): one
    system call per send or receive, where a Python socket timeout adds a poll() before each."""
    sock.setblocking(True)
    seconds = int(timeout)
    timeval = struct.pack("@ll", seconds, int((timeout - seconds) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)


class BlockFifoError(Exception):
    """A FIFO request was answered with an error status."""

    def __init__(self, response: Response, what: str) -> None:
        super().__init__(f"{what}: {status_name(response.status)} ({response.status})")
        self.status = response.status
        self.response = response


class ClientVmo:
    """A buffer attached to the server: `array` (uint8) is shared with it; `vmoid` names it in requests."""

    def __init__(self, vmoid: int, mapping: mmap.mmap, size: int, dma_addr: int | None) -> None:
        self.vmoid = vmoid
        self.size = size
        self.dma_addr = dma_addr
        self._mapping: mmap.mmap | None = mapping
        self.array = np.frombuffer(mapping, dtype=np.uint8, count=size)

    def __repr__(self) -> str:
        dma = f" dma={self.dma_addr:#x}" if self.dma_addr is not None else ""
        return f"<ClientVmo {self.vmoid} {self.size} bytes{dma}>"


class BlockClient:
    """A connection to a BlockServer: one control socket and one FIFO."""

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 10.0) -> None:
        self.path = os.fspath(path)
        self.timeout = timeout
        ctrl = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ctrl.settimeout(timeout)
        try:
            ctrl.connect(self.path)
        except OSError as exc:
            ctrl.close()
            raise ConnectionError(f"cannot connect to block server at {self.path}: {exc.strerror or exc}") \
                from None
        self._ctrl = ctrl
        try:
            hello, _ = control.request(ctrl, {"op": "hello", "version": control.PROTOCOL_VERSION})
            self.info = BlockInfo(hello["block_count"], hello["block_size"], hello["max_transfer_size"],
                                  BlockFlag(hello["flags"]))
            self.dma_available = bool(hello.get("dma"))
            self.depth = min(int(hello.get("fifo_depth", FIFO_MAX_DEPTH)), FIFO_MAX_DEPTH)
            _, fds = control.request(ctrl, {"op": "get_fifo"})
            if len(fds) != 1:
                control.close_fds(fds)
                raise control.ControlError(f"get_fifo: expected one fd, got {len(fds)}")
            self._fifo = socket.socket(fileno=fds[0])
            _kernel_timeouts(self._fifo, timeout)
        except BaseException:
            ctrl.close()
            raise
        self._next_reqid = 1
        self._vmos: dict[int, ClientVmo] = {}
        self.unexpected: list[Response] = []  # responses to no request of the current transact()

    # --- lifecycle ------------------------------------------------------------------------------------
    def close(self) -> None:
        for sock in (getattr(self, "_fifo", None), self._ctrl):
            if sock is not None:
                sock.close()
        self._vmos.clear()

    def __enter__(self) -> BlockClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- buffers --------------------------------------------------------------------------------------
    def attach(self, size: int) -> ClientVmo:
        """A new shared buffer of `size` bytes (a sealed memfd this process maps too)."""
        fd = control.create_sealed_memfd(size)
        try:
            return self.attach_fd(fd)
        finally:
            os.close(fd)

    def attach_fd(self, fd: int) -> ClientVmo:
        """Attach an existing sealed memfd (the caller keeps its fd)."""
        size = os.fstat(fd).st_size
        mapping = control.map_fd(fd, size)
        try:
            reply, _ = control.request(self._ctrl, {"op": "attach_vmo"}, [fd])
        except BaseException:
            mapping.close()
            raise
        vmo = ClientVmo(reply["vmoid"], mapping, size, None)
        self._vmos[vmo.vmoid] = vmo
        return vmo

    def alloc_dma(self, size: int) -> ClientVmo:
        """A buffer the server allocates in DMA memory: drivers use it in place (zero-copy)."""
        reply, fds = control.request(self._ctrl, {"op": "alloc_vmo", "size": size})
        try:
            if len(fds) != 1:
                raise control.ControlError(f"alloc_vmo: expected one fd, got {len(fds)}")
            span = -(-size // mmap.PAGESIZE) * mmap.PAGESIZE
            mapping = control.map_fd(fds[0], span, reply["offset"])
        finally:
            control.close_fds(fds)
        vmo = ClientVmo(reply["vmoid"], mapping, size, reply["dma_addr"])
        self._vmos[vmo.vmoid] = vmo
        return vmo

    def close_vmo(self, vmo: ClientVmo | int) -> None:
        """Detach a buffer (the CLOSE_VMO request); later requests naming it fail IO, as on Fuchsia."""
        vmoid = vmo if isinstance(vmo, int) else vmo.vmoid
        self.check(self.transact([Request(FifoOp.CLOSE_VMO, reqid=self.next_reqid(), vmoid=vmoid)])[0],
                   f"close of vmo {vmoid}")
        self._vmos.pop(vmoid, None)

    def stats(self) -> dict[str, int]:
        reply, _ = control.request(self._ctrl, {"op": "stats"})
        reply.pop("ok", None)
        return reply

    # --- requests -------------------------------------------------------------------------------------
    def next_reqid(self) -> int:
        reqid = self._next_reqid
        self._next_reqid = (reqid + 1) & 0xFFFF_FFFF or 1
        return reqid

    def send(self, requests: Sequence[Request]) -> None:
        """Send requests as is, MAX_BATCH records per message (responses are not awaited)."""
        for i in range(0, len(requests), MAX_BATCH):
            self.send_raw(pack_requests(requests[i:i + MAX_BATCH]))

    def send_raw(self, data: bytes) -> None:
        """Send one FIFO message of arbitrary bytes (tests use it for malformed records)."""
        try:
            self._fifo.send(data)
        except (TimeoutError, BlockingIOError):
            raise TimeoutError(f"block server at {self.path} did not accept a request within "
                               f"{self.timeout} s") from None

    def recv(self) -> list[Response]:
        """The responses in the next FIFO message."""
        return unpack_responses(self.recv_raw())

    def recv_raw(self) -> bytes:
        """The next FIFO message as it came (whole `fifo.RESPONSE` records; `recv()` unpacks them), for
        clients that unpack the records themselves."""
        try:
            data = self._fifo.recv(MAX_BATCH * RECORD_SIZE)
        except (TimeoutError, BlockingIOError):
            raise TimeoutError(f"no response from the block server at {self.path} within "
                               f"{self.timeout} s") from None
        if not data:
            raise ConnectionError(f"block server at {self.path} closed the FIFO")
        return data

    def transact(self, requests: Sequence[Request]) -> list[Response]:
        """Send `requests` with at most `depth` answered ones outstanding; return the responses in the
        order of the requests that get one (group items answer only with their GROUP_LAST)."""
        answered = [r.reqid for r in requests if r.answered]
        if len(set(answered)) != len(answered):
            raise ValueError("transact() needs distinct reqids on the requests that are answered")
        got: dict[int, Response] = {}
        expected = set(answered)
        outstanding = 0
        batch: list[Request] = []
        for req in requests:
            batch.append(req)
            outstanding += req.answered
            if len(batch) == MAX_BATCH or outstanding >= self.depth:
                self.send(batch)
                batch = []
            while outstanding >= self.depth:
                outstanding -= self._collect(got, expected)
        if batch:
            self.send(batch)
        while len(got) < len(answered):
            self._collect(got, expected)
        return [got[reqid] for reqid in answered]

    def _collect(self, got: dict[int, Response], expected: set[int]) -> int:
        responses = self.recv()
        for response in responses:
            if response.reqid in expected:
                got[response.reqid] = response
            else:
                self.unexpected.append(response)
        return len(responses)

    @staticmethod
    def check(response: Response, what: str) -> None:
        if response.status != ZxStatus.OK:
            raise BlockFifoError(response, what)

    def _one(self, op: FifoOp, what: str, vmo: ClientVmo | int = 0, length: int = 0, vmo_offset: int = 0,
             dev_offset: int = 0, flags: int = 0) -> Response:
        vmoid = vmo if isinstance(vmo, int) else vmo.vmoid
        req = Request(op, flags, self.next_reqid(), 0, vmoid, length, vmo_offset, dev_offset)
        response = self.transact([req])[0]
        self.check(response, what)
        return response

    def read(self, vmo: ClientVmo | int, dev_offset: int, length: int, vmo_offset: int = 0) -> None:
        """Read `length` blocks at block `dev_offset` into the buffer at block `vmo_offset`."""
        self._one(FifoOp.READ, f"read of {length} blocks at block {dev_offset}", vmo, length, vmo_offset,
                  dev_offset)

    def write(self, vmo: ClientVmo | int, dev_offset: int, length: int, vmo_offset: int = 0, *,
              force_access: bool = False) -> None:
        flags = FifoFlag.FORCE_ACCESS if force_access else FifoFlag.NONE
        self._one(FifoOp.WRITE, f"write of {length} blocks at block {dev_offset}", vmo, length, vmo_offset,
                  dev_offset, int(flags))

    def flush(self) -> None:
        self._one(FifoOp.FLUSH, "flush")

    def trim(self, dev_offset: int, length: int) -> None:
        self._one(FifoOp.TRIM, f"trim of {length} blocks at block {dev_offset}", 0, length, 0, dev_offset)
