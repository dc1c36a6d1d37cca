"""A vhost-user back end serving one virtio device queue from an `MmioTarget` (virtio-mmio registers).

It listens on a UNIX socket, takes one front end (QEMU's vhost-user-blk-pci), answers the control messages
and runs the queue on the target: a kick eventfd becomes a QueueNotify write, the target's used-buffer
interrupt becomes a write to the call eventfd. Guest RAM (SET_MEM_TABLE) is mapped once and attached to the
target, so the device's DMA lands in the guest's own pages. The loop ends when the front end disconnects.
"""

from __future__ import annotations

import logging
import os
import select
import socket
import time
from collections.abc import Callable

from .memory import GuestRam
from .messages import (
    CONFIG_HEADER,
    F_PROTOCOL_FEATURES,
    HEADER,
    MAX_PAYLOAD,
    MAX_REGIONS,
    U64,
    VRING_ADDR,
    VRING_INDEX_MASK,
    VRING_NOFD,
    VRING_STATE,
    Message,
    ProtocolFeature,
    VhostUserError,
    VhostUserRequest,
    pack_reply,
    unpack_mem_table,
)
from .target import INT_CONFIG, INT_USED, MmioTarget
from .vring import Vring

log = logging.getLogger("hwsim.vhost_user")
R = VhostUserRequest
PROTOCOL_FEATURES = (1 << ProtocolFeature.MQ | 1 << ProtocolFeature.REPLY_ACK | 1 << ProtocolFeature.CONFIG)
STOP_TIMEOUT = 10.0   # seconds of wall time a stopping ring may take to finish the requests in flight


class Disconnected(Exception):
    """The front end closed the connection."""


class VhostUserBackend:
    """Serve `target` (a virtio device of `device_id`, one queue) to one front end on `socket_path`."""

    def __init__(self, target: MmioTarget, socket_path: str, *, device_id: int = 2) -> None:
        self.target = target
        self.socket_path = socket_path
        target.check_identity(device_id)
        self.device_features = target.device_features() | 1 << F_PROTOCOL_FEATURES
        self.queue_num_max = target.queue_num_max()
        self.features = 0
        self.protocol_features = 0
        self.ram: GuestRam | None = None
        self.vring = Vring(0)
        self.conn: socket.socket | None = None
        self.kicks = 0
        self.calls = 0

    # --- connection ----------------------------------------------------------------------------------
    def serve(self, listener: socket.socket | None = None) -> None:
        """Accept one front end and serve it until it disconnects."""
        own = listener is None
        if listener is None:
            listener = listen(self.socket_path)
        try:
            conn, _ = listener.accept()
        finally:
            if own:
                listener.close()
        self.conn = conn
        log.info("front end connected on %s", self.socket_path)
        try:
            self._loop()
        except Disconnected:
            log.info("front end disconnected after %d kicks and %d calls", self.kicks, self.calls)
        finally:
            self.close()

    def _loop(self) -> None:
        assert self.conn is not None
        while True:
            fds: list[int] = [self.conn.fileno()]
            ring = self.vring
            if ring.started and ring.kick is not None:
                fds.append(ring.kick)
            busy = ring.started and self._busy()
            readable, _, _ = select.select(fds, [], [], 0 if busy else 1.0)
            if self.conn.fileno() in readable:
                self._handle(self._receive())
            if ring.started and ring.kick is not None and ring.kick in readable and ring.take_kick():
                self.kicks += 1
                self.target.notify()
            if ring.started:
                if busy:
                    self.target.advance()
                self._deliver()

    def _busy(self) -> bool:
        """Requests the driver made available that the device has not completed."""
        ring = self.vring
        assert self.ram is not None and ring.avail is not None and ring.used is not None
        return self.ram.read_u16(ring.avail + 2) != self.ram.read_u16(ring.used + 2)

    def _deliver(self) -> None:
        bits = self.target.take_interrupt()
        if bits & INT_USED:
            self.calls += 1
            self.vring.signal("call")
        if bits & INT_CONFIG and self.target.needs_reset():
            log.error("%s: the device needs a reset (malformed queue); signalling the err eventfd", self.target.name)
            self.vring.signal("err")

    def _receive(self) -> Message:
        assert self.conn is not None
        data, fds, _flags, _addr = socket.recv_fds(self.conn, HEADER.size, MAX_REGIONS)
        if not data:
            for fd in fds:
                os.close(fd)
            raise Disconnected
        data += _recv_exact(self.conn, HEADER.size - len(data))
        request, flags, size = HEADER.unpack(data)
        if size > MAX_PAYLOAD:
            raise VhostUserError(f"request {request}: payload of {size} bytes, at most {MAX_PAYLOAD} expected")
        payload = _recv_exact(self.conn, size)
        return Message(request, flags, payload, list(fds))

    def _reply(self, msg: Message, payload: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(pack_reply(msg.request, payload))

    # --- messages ------------------------------------------------------------------------------------
    def _handle(self, msg: Message) -> None:
        log.debug("%s flags=%#x size=%d fds=%s", msg.name, msg.flags, len(msg.payload), msg.fds)
        handler = _HANDLERS.get(msg.request)
        if handler is None:
            for fd in msg.fds:
                os.close(fd)
            raise VhostUserError(f"{msg.name} is not supported by this back end")
        reply = handler(self, msg)
        if reply is not None:
            self._reply(msg, reply)
        elif msg.need_reply and self.protocol_features >> ProtocolFeature.REPLY_ACK & 1:
            self._reply(msg, U64.pack(0))

    def _get_features(self, msg: Message) -> bytes:
        return U64.pack(self.device_features)

    def _set_features(self, msg: Message) -> None:
        features = msg.u64()
        if features & ~self.device_features:
            raise VhostUserError(f"SET_FEATURES {features:#x} has bits the device does not offer "
                                 f"({features & ~self.device_features:#x})")
        self.features = features

    def _get_protocol_features(self, msg: Message) -> bytes:
        return U64.pack(PROTOCOL_FEATURES)

    def _set_protocol_features(self, msg: Message) -> None:
        features = msg.u64()
        if features & ~PROTOCOL_FEATURES:
            raise VhostUserError(f"SET_PROTOCOL_FEATURES {features:#x} has unoffered bits")
        self.protocol_features = features

    def _get_queue_num(self, msg: Message) -> bytes:
        return U64.pack(1)

    def _set_owner(self, msg: Message) -> None:
        return None

    def _set_mem_table(self, msg: Message) -> None:
        regions = unpack_mem_table(msg)
        self._stop_ring()
        self._drop_ram()
        self.ram = GuestRam(regions, msg.fds)
        array, base = self.ram.window()
        self.target.attach(array, base)
        log.info("guest RAM: %s", ", ".join(f"[{r.guest_addr:#x}, +{r.size:#x})" for r in regions))
        self._maybe_start()

    def _ring_of(self, index: int, what: str) -> Vring:
        if index != 0:
            raise VhostUserError(f"{what}: vring {index}, but the device has one queue (index 0)")
        return self.vring

    def _set_vring_num(self, msg: Message) -> None:
        index, num = msg.unpack(VRING_STATE)
        ring = self._ring_of(index, "SET_VRING_NUM")
        if not 1 <= num <= self.queue_num_max or num & (num - 1):
            raise VhostUserError(f"SET_VRING_NUM {num}: not a power of two in 1..{self.queue_num_max}")
        ring.num = num

    def _set_vring_addr(self, msg: Message) -> None:
        index, _flags, desc, used, avail, _log = msg.unpack(VRING_ADDR)
        ring = self._ring_of(index, "SET_VRING_ADDR")
        if self.ram is None:
            raise VhostUserError("SET_VRING_ADDR before SET_MEM_TABLE")
        num = ring.num or self.queue_num_max
        ring.desc = self.ram.to_guest(desc, 16 * num, "descriptor table")
        ring.avail = self.ram.to_guest(avail, 6 + 2 * num, "avail ring")
        ring.used = self.ram.to_guest(used, 6 + 8 * num, "used ring")
        self._maybe_start()

    def _set_vring_base(self, msg: Message) -> None:
        index, base = msg.unpack(VRING_STATE)
        ring = self._ring_of(index, "SET_VRING_BASE")
        ring.base = base          # the target says at start whether it can resume there

    def _get_vring_base(self, msg: Message) -> bytes:
        index, _ = msg.unpack(VRING_STATE)
        ring = self._ring_of(index, "GET_VRING_BASE")
        next_avail = self._stop_ring()
        ring.enabled = False
        return VRING_STATE.pack(index, next_avail)

    def _set_vring_fd(self, msg: Message, which: str) -> None:
        value = msg.u64()
        ring = self._ring_of(value & VRING_INDEX_MASK, f"SET_VRING_{which.upper()}")
        fd = None
        if not value & VRING_NOFD:
            if len(msg.fds) != 1:
                raise VhostUserError(f"SET_VRING_{which.upper()} came with {len(msg.fds)} descriptors, 1 expected")
            fd = msg.fds[0]
            if which == "kick":
                os.set_blocking(fd, False)
        elif which == "kick":
            raise VhostUserError("SET_VRING_KICK without a descriptor: polling the ring is not supported")
        ring.replace_fd(which, fd)
        if which == "kick":
            self._maybe_start()

    def _set_vring_enable(self, msg: Message) -> None:
        index, enable = msg.unpack(VRING_STATE)
        ring = self._ring_of(index, "SET_VRING_ENABLE")
        if enable:
            ring.enabled = True
            self._maybe_start()
        else:
            self._stop_ring()
            ring.enabled = False

    def _get_config(self, msg: Message) -> bytes:
        offset, size, flags = msg.unpack(CONFIG_HEADER)
        space = self.target.config()
        data = space[offset:offset + size].ljust(size, b"\0")
        return CONFIG_HEADER.pack(offset, size, flags) + data

    def _set_config(self, msg: Message) -> None:
        offset, size, _flags = msg.unpack(CONFIG_HEADER)
        data = msg.payload[CONFIG_HEADER.size:CONFIG_HEADER.size + size]
        self.target.write_config(offset, data)

    # --- the ring on the device ----------------------------------------------------------------------
    def _maybe_start(self) -> None:
        ring = self.vring
        if ring.started or not ring.ready or self.ram is None:
            return
        assert ring.desc is not None and ring.avail is not None and ring.used is not None
        features = self.features & ~(1 << F_PROTOCOL_FEATURES)
        self.target.start(features, ring.num, ring.desc, ring.avail, ring.used, ring.base)
        ring.started = True
        log.info("queue started: %d entries at index %d, features %#x", ring.num, ring.base, features)
        self.target.notify()      # requests made available before the kick fd existed

    def _stop_ring(self) -> int:
        """Let the device finish what is in flight (bounded), stop it; the next avail index."""
        ring = self.vring
        if not ring.started:
            return ring.base
        deadline = time.monotonic() + STOP_TIMEOUT
        while self._busy() and time.monotonic() < deadline:
            self.target.advance()
            self._deliver()
        self._deliver()
        assert self.ram is not None and ring.used is not None
        used = self.ram.read_u16(ring.used + 2)
        self.target.stop()
        ring.started = False
        ring.base = used
        log.info("queue stopped at index %d", used)
        return used

    def _drop_ram(self) -> None:
        if self.ram is not None:
            self.target.detach()
            self.ram.close()
            self.ram = None

    def close(self) -> None:
        try:
            if self.vring.started:
                self.target.stop()
                self.vring.started = False
        finally:
            self.vring.close()
            self._drop_ram()
            if self.conn is not None:
                self.conn.close()
                self.conn = None


_HANDLERS: dict[int, Callable[[VhostUserBackend, Message], bytes | None]] = {
    R.GET_FEATURES: VhostUserBackend._get_features,
    R.SET_FEATURES: VhostUserBackend._set_features,
    R.GET_PROTOCOL_FEATURES: VhostUserBackend._get_protocol_features,
    R.SET_PROTOCOL_FEATURES: VhostUserBackend._set_protocol_features,
    R.GET_QUEUE_NUM: VhostUserBackend._get_queue_num,
    R.SET_OWNER: VhostUserBackend._set_owner,
    R.RESET_OWNER: VhostUserBackend._set_owner,
    R.SET_MEM_TABLE: VhostUserBackend._set_mem_table,
    R.SET_VRING_NUM: VhostUserBackend._set_vring_num,
    R.SET_VRING_ADDR: VhostUserBackend._set_vring_addr,
    R.SET_VRING_BASE: VhostUserBackend._set_vring_base,
    R.GET_VRING_BASE: VhostUserBackend._get_vring_base,
    R.SET_VRING_KICK: lambda self, msg: self._set_vring_fd(msg, "kick"),
    R.SET_VRING_CALL: lambda self, msg: self._set_vring_fd(msg, "call"),
    R.SET_VRING_ERR: lambda self, msg: self._set_vring_fd(msg, "err"),
    R.SET_VRING_ENABLE: VhostUserBackend._set_vring_enable,
    R.GET_CONFIG: VhostUserBackend._get_config,
    R.SET_CONFIG: VhostUserBackend._set_config,
}


def listen(path: str) -> socket.socket:
    """A listening UNIX socket at `path` (a stale socket file there is replaced)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(1)
    return sock


def _recv_exact(conn: socket.socket, n: int) -> bytes:
    out = b""
    while len(out) < n:
        chunk = conn.recv(n - len(out))
        if not chunk:
            raise Disconnected
        out += chunk
    return out
