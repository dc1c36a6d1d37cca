"""A small vhost-user front end for tests: what QEMU's vhost-user-blk does, over a real UNIX socket, with guest
RAM in a real memfd passed by SCM_RIGHTS, and a virtio-blk driver's requests built by hand in that RAM."""

from __future__ import annotations

import mmap
import os
import select
import socket
import struct

from hwsim.vhost_user.messages import (
    CONFIG_HEADER,
    FLAG_NEED_REPLY,
    HEADER,
    MEMORY_HEADER,
    MEMORY_REGION,
    U64,
    VERSION,
    VRING_ADDR,
    VRING_STATE,
)
from hwsim.vhost_user.messages import VhostUserRequest as R

USER_BASE = 0x7F00_0000_0000    # where "QEMU" pretends to map guest RAM
RAM_SIZE = 1 << 20
DESC, AVAIL, USED = 0x1000, 0x2000, 0x3000
NUM = 8


class FrontEnd:
    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.memfd = os.memfd_create("guest-ram")
        os.ftruncate(self.memfd, RAM_SIZE)
        self.ram = mmap.mmap(self.memfd, RAM_SIZE)
        self.kick = os.eventfd(0, os.EFD_NONBLOCK)
        self.call = os.eventfd(0, os.EFD_NONBLOCK)
        self.avail_idx = 0
        self.next_desc = 0

    def send(self, request: int, payload: bytes = b"", fds: list[int] | None = None, flags: int = 0) -> None:
        data = HEADER.pack(request, VERSION | flags, len(payload)) + payload
        if fds:
            socket.send_fds(self.sock, [data], fds)
        else:
            self.sock.sendall(data)

    def ask(self, request: int, payload: bytes = b"") -> bytes:
        self.send(request, payload)
        got, flags, size = HEADER.unpack(self._recv(HEADER.size))
        assert got == request and flags & 0x4, (got, flags)
        return self._recv(size)

    def _recv(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            chunk = self.sock.recv(n - len(out))
            if not chunk:
                raise EOFError("the back end closed the connection")
            out += chunk
        return out

    def setup(self, features: int, base: int = 0) -> None:
        """Everything QEMU sends before the guest's first request."""
        self.send(R.SET_PROTOCOL_FEATURES, U64.pack(1 << 9 | 1 << 3 | 1))
        self.send(R.SET_OWNER)
        self.send(R.SET_FEATURES, U64.pack(features))
        table = MEMORY_HEADER.pack(1, 0) + MEMORY_REGION.pack(0, RAM_SIZE, USER_BASE, 0)
        self.send(R.SET_MEM_TABLE, table, [self.memfd], flags=FLAG_NEED_REPLY)
        assert U64.unpack(self._recv_reply(R.SET_MEM_TABLE))[0] == 0
        self.send(R.SET_VRING_NUM, VRING_STATE.pack(0, NUM))
        self.send(R.SET_VRING_BASE, VRING_STATE.pack(0, base))
        self.send(R.SET_VRING_ADDR, VRING_ADDR.pack(0, 0, USER_BASE + DESC, USER_BASE + USED, USER_BASE + AVAIL, 0))
        self.send(R.SET_VRING_CALL, U64.pack(0), [self.call])
        self.send(R.SET_VRING_KICK, U64.pack(0), [self.kick])
        self.send(R.SET_VRING_ENABLE, VRING_STATE.pack(0, 1))
        self.avail_idx = base

    def _recv_reply(self, request: int) -> bytes:
        got, _flags, size = HEADER.unpack(self._recv(HEADER.size))
        assert got == request
        return self._recv(size)

    def config(self, size: int = 0x3C) -> bytes:
        reply = self.ask(R.GET_CONFIG, CONFIG_HEADER.pack(0, size, 0) + bytes(size))
        return reply[CONFIG_HEADER.size:]

    def request(self, kind: int, sector: int, data: bytes = b"", read_len: int = 0) -> tuple[int, int]:
        """Queue one virtio-blk request (header, data, status); (head, address of its data or read buffer)."""
        base = 0x10000 + 0x4000 * (self.avail_idx % NUM)
        struct.pack_into("<IIQ", self.ram, base, kind, 0, sector)
        chain = [(base, 16, 0)]
        buf = base + 0x200
        if data:
            self.ram[buf:buf + len(data)] = data
            chain.append((buf, len(data), 0))
        if read_len:
            chain.append((buf, read_len, 2))
        chain.append((base + 0x100, 1, 2))
        self.ram[base + 0x100] = 0xFF
        head = self.next_desc
        for i, (addr, length, flags) in enumerate(chain):
            index = (head + i) % NUM
            more = i + 1 < len(chain)
            struct.pack_into("<QIHH", self.ram, DESC + 16 * index, addr, length, flags | (1 if more else 0),
                             (index + 1) % NUM)
        self.next_desc = (head + len(chain)) % NUM
        struct.pack_into("<H", self.ram, AVAIL + 4 + 2 * (self.avail_idx % NUM), head)
        self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        struct.pack_into("<H", self.ram, AVAIL + 2, self.avail_idx)
        return head, buf

    def status_of(self, head_buf: tuple[int, int]) -> int:
        return self.ram[head_buf[1] - 0x200 + 0x100]

    def notify(self) -> None:
        os.eventfd_write(self.kick, 1)

    def wait_call(self, timeout: float = 10) -> int:
        ready, _, _ = select.select([self.call], [], [], timeout)
        assert ready, f"no call (used-buffer interrupt) within {timeout} s"
        return os.eventfd_read(self.call)

    def used_idx(self) -> int:
        return int(struct.unpack_from("<H", self.ram, USED + 2)[0])

    def used_elem(self, slot: int) -> tuple[int, int]:
        return struct.unpack_from("<II", self.ram, USED + 4 + 8 * (slot % NUM))

    def close(self) -> None:
        self.sock.close()
        self.ram.close()
        for fd in (self.memfd, self.kick, self.call):
            os.close(fd)
