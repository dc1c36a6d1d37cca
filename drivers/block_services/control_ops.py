"""The control requests a block server answers on each session's control channel (`control`).

hello (the device's geometry and the protocol), get_fifo (the FIFO handed over once), attach_vmo (a
client's sealed memfd, mapped once), alloc_vmo (DMA memory from the shared pool), detach_vmo, stats.
Apart from the serving loop (`server`) because these are the session's buffers and handshake, not its
sockets: each request is answered exactly once, and a refused one changes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from drivers.block.protocol import BlockDevice, BlockInfo
from mmiotk.errors import MmioError

from . import control
from .dispatch import ServerStats
from .fifo import FIFO_MAX_DEPTH, MAX_BATCH
from .session import Session, device_bytes_copied
from .shared_dma import DmaAllocation, PoolExporter


class ControlOps:
    """Answers the control messages of every session of one server; `close` drops a session whose
    control socket is gone or does not take its reply."""

    def __init__(self, device: BlockDevice, info: BlockInfo, stats: ServerStats, dma: PoolExporter | None,
                 max_vmos: int, max_vmo_bytes: int, close: Callable[[Session], None]) -> None:
        self.device = device
        self.info = info
        self.stats = stats
        self.dma = dma
        self.max_vmos = max_vmos
        self.max_vmo_bytes = max_vmo_bytes
        self._close = close

    def on_control(self, session: Session) -> None:
        """One message from the session's control socket, answered (or the session closed)."""
        try:
            msg, fds = control.recv_msg(session.ctrl)
        except (EOFError, ConnectionError):
            self._close(session)
            return
        except (BlockingIOError, InterruptedError):
            return
        except control.ControlError as exc:
            session.last_active = time.monotonic()
            self._reply(session, {"ok": False, "error": str(exc)})
            return
        session.last_active = time.monotonic()
        owned: list[int] = []
        try:
            reply, out_fds, owned = self._control_op(session, msg, fds)
        except (ValueError, OSError, MmioError, control.ControlError) as exc:  # MmioError: DMA pool exhausted
            reply, out_fds = {"ok": False, "error": str(exc)}, []
        finally:
            control.close_fds(fds)
        try:
            self._reply(session, reply, out_fds)
        finally:
            control.close_fds(owned)  # ours to close once sent (the FIFO's client end)

    def _reply(self, session: Session, reply: dict[str, Any], fds: list[int] | None = None) -> None:
        try:
            control.send_msg(session.ctrl, reply, fds or [])
        except OSError:
            self._close(session)  # control is request/reply: a client that does not read is gone

    def _control_op(self, session: Session, msg: dict[str, Any],
                    fds: list[int]) -> tuple[dict[str, Any], list[int], list[int]]:
        """(reply, fds to send, fds to close after sending) for one control request."""
        op = msg.get("op")
        if op != "attach_vmo" and fds:
            raise ValueError(f"control op {op!r} takes no file descriptors, got {len(fds)}")
        if op == "hello":
            version = msg.get("version", control.PROTOCOL_VERSION)
            if version != control.PROTOCOL_VERSION:
                raise ValueError(f"client speaks protocol version {version!r}; this server speaks "
                                 f"{control.PROTOCOL_VERSION}")
            info = self.info
            return {"ok": True, "version": control.PROTOCOL_VERSION, "block_count": info.block_count,
                    "block_size": info.block_size, "max_transfer_size": info.max_transfer_size,
                    "flags": int(info.flags), "fifo_depth": FIFO_MAX_DEPTH, "max_batch": MAX_BATCH,
                    "dma": self.dma is not None, "session": session.sid}, [], []
        if op == "get_fifo":
            peer = session.fifo_peer
            if peer is None:
                raise ValueError("the FIFO was already handed out for this session")
            session.fifo_peer = None
            session.handshake_done = True
            fd = peer.detach()
            return {"ok": True}, [fd], [fd]
        if op == "attach_vmo":
            if len(fds) != 1:
                raise ValueError(f"attach_vmo takes exactly one memfd, got {len(fds)}")
            self._check_vmo_room(session)
            size = control.check_shareable(fds[0], self.max_vmo_bytes)
            mapping = control.map_fd(fds[0], size)
            vmo = session.add_vmo(mapping, None, None)
            return {"ok": True, "vmoid": vmo.vmoid, "size": size}, [], []
        if op == "alloc_vmo":
            if self.dma is None:
                raise ValueError("this server has no DMA pool to share: attach your own memfd instead")
            want = msg.get("size")
            if not isinstance(want, int) or want <= 0 or want > self.max_vmo_bytes:
                raise ValueError(f"alloc_vmo size must be an int in [1, {self.max_vmo_bytes}], got {want!r}")
            self._check_vmo_room(session)
            alloc: DmaAllocation = self.dma.allocate(want)
            vmo = session.add_vmo(None, alloc, alloc.dma_addr)
            return {"ok": True, "vmoid": vmo.vmoid, "size": want, "offset": alloc.offset,
                    "dma_addr": alloc.dma_addr}, [alloc.fd], []
        if op == "detach_vmo":
            vmoid = msg.get("vmoid")
            found = session.vmos.get(vmoid) if isinstance(vmoid, int) else None
            if found is None:
                raise ValueError(f"no buffer with vmoid {msg.get('vmoid')!r} in this session")
            session.drop_vmo(found)
            return {"ok": True}, [], []
        if op == "stats":
            return {"ok": True, **self.stats.as_dict(), "device_bytes_copied": device_bytes_copied(self.device),
                    "session_vmos": len(session.vmos)}, [], []
        raise ValueError(f"unknown control op {op!r} (known: hello, get_fifo, attach_vmo, alloc_vmo, "
                         "detach_vmo, stats)")

    def _check_vmo_room(self, session: Session) -> None:
        if len(session.vmos) >= self.max_vmos:
            raise ValueError(f"this session already holds {self.max_vmos} buffers (the limit)")
