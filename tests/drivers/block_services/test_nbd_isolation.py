"""NBD clients cannot stall or lock out each other (issue 16, items 3 and 6): replies leave through each
connection's own sender, idle and greedy connections make room, and a client killed mid-request costs
nobody else anything."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.block.ramdisk import RamDisk
from drivers.block_services import nbd_protocol as P
from drivers.block_services.nbd import NbdServer

from .block_helpers import BLOCKS, BS, Procs, RawNbd


@pytest.fixture
def worker_disk() -> Iterator[RamDisk]:
    """A RAM disk whose one worker thread runs every completion, as a device's IRQ thread does."""
    disk = RamDisk(BLOCKS * BS, BS, worker=True)
    yield disk
    disk.unbind()


def nbd(disk: RamDisk, sockdir: Path, **options: object) -> NbdServer:
    return NbdServer(disk, unix_path=sockdir / "nbd.sock", **options).start()  # type: ignore[arg-type]


def connect(server: NbdServer) -> RawNbd:
    raw = RawNbd(str(server.unix_path))
    raw.greet()
    raw.go()
    return raw


def read_one(raw: RawNbd, handle: int = 7) -> None:
    raw.request(P.CMD_READ, 0, BS, handle=handle)
    error, got, _ = raw.simple_reply(BS)
    assert (error, got) == (0, handle)


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached within the bound"
        time.sleep(0.02)


def test_a_client_that_stops_reading_replies_does_not_stall_another(worker_disk: RamDisk,
                                                                    sockdir: Path) -> None:
    server = nbd(worker_disk, sockdir)
    try:
        stuck = connect(server)
        stuck.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        for handle in range(48):  # 24 MiB of replies it never reads: far more than any socket buffer
            stuck.request(P.CMD_READ, 0, BLOCKS * BS // 2, handle=handle)
        time.sleep(0.2)  # let the worker reach the replies it cannot send
        other = connect(server)
        other.sock.settimeout(5)  # today: the worker sits in sendall to `stuck` for 30 s
        for handle in range(20):
            read_one(other, handle)
        other.close()
        stuck.close()
    finally:
        server.stop()


@pytest.mark.parametrize("worker", [False, True], ids=["inline-device", "worker-device"])
def test_pipelined_replies_beyond_the_socket_buffers_arrive_whole_and_once(worker: bool, sockdir: Path) -> None:
    """Replies the socket cannot take at once: the connection's own thread waits for its client (a device
    completing inline), another thread's go to the sender (a worker); either way each arrives whole."""
    disk = RamDisk(BLOCKS * BS, BS, worker=worker)
    disk.data[:] = np.random.default_rng(3).integers(0, 256, disk.data.size, dtype=np.uint8)
    half = BLOCKS * BS // 2
    server = nbd(disk, sockdir)
    try:
        raw = connect(server)
        for handle in range(48):  # 24 MiB of replies before the client reads any
            raw.request(P.CMD_READ, (handle % 2) * half, half, handle=handle)
        seen = []
        for _ in range(48):
            error, handle, data = raw.simple_reply(half)
            assert error == 0
            start = (handle % 2) * half
            assert data == disk.data[start:start + half].tobytes()
            seen.append(handle)
        assert sorted(seen) == list(range(48))
        raw.request(P.CMD_FLUSH, handle=99)
        assert raw.simple_reply()[:2] == (0, 99)
        raw.close()
    finally:
        server.stop()
        disk.unbind()


def test_idle_connections_make_room_for_a_new_one(worker_disk: RamDisk, sockdir: Path) -> None:
    server = nbd(worker_disk, sockdir, max_connections=4, max_connections_per_process=16)
    idle = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(4)]
    try:
        for sock in idle:
            sock.connect(str(server.unix_path))  # never say a word
        wait_until(lambda: server.stats.active == 4)
        time.sleep(1.1)  # idle long enough to be evicted
        other = connect(server)  # today: closed at once while the idle four hold the server
        other.sock.settimeout(5)
        read_one(other)
        other.close()
    finally:
        for sock in idle:
            sock.close()
        server.stop()


def test_a_handshake_that_never_finishes_is_closed(worker_disk: RamDisk, sockdir: Path) -> None:
    server = nbd(worker_disk, sockdir, handshake_timeout=0.5)
    try:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        sock.connect(str(server.unix_path))
        sock.recv(P.HANDSHAKE.size)
        assert sock.recv(1) == b""  # closed by the server within the client's 5 s
        sock.close()
    finally:
        server.stop()


def test_a_connection_idle_in_transmission_is_closed(worker_disk: RamDisk, sockdir: Path) -> None:
    server = nbd(worker_disk, sockdir, idle_timeout=0.5)
    try:
        raw = connect(server)
        read_one(raw)
        raw.sock.settimeout(5)
        assert raw.closed()
        wait_until(lambda: server.stats.active == 0)
    finally:
        server.stop()


def test_one_process_cannot_take_every_connection(worker_disk: RamDisk, sockdir: Path, procs: Procs) -> None:
    server = nbd(worker_disk, sockdir, max_connections=16, max_connections_per_process=2)
    hog = procs.start("-c", """
import socket, sys, time
socks = []
for _ in range(16):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sys.argv[1])
    socks.append(s)
print("connected", flush=True)
time.sleep(60)
""", str(server.unix_path))
    try:
        assert hog.stdout is not None and hog.stdout.readline().strip() == "connected"
        wait_until(lambda: server.stats.connections >= 2)
        assert server.stats.active <= 2
        other = connect(server)
        other.sock.settimeout(5)
        read_one(other)
        other.close()
    finally:
        server.stop()


def test_a_client_killed_mid_request_leaves_the_others_served(worker_disk: RamDisk, sockdir: Path,
                                                               procs: Procs) -> None:
    server = nbd(worker_disk, sockdir)
    victim = procs.start("-c", f"""
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.recv(18); s.sendall(struct.pack(">I", 3))
s.sendall(struct.pack(">QII", {P.IHAVEOPT}, {P.OPT_GO}, 6) + bytes(6))
for handle in range(64):
    s.sendall(struct.pack(">IHHQQI", {P.REQUEST_MAGIC}, 0, {P.CMD_READ}, handle, 0, {BLOCKS * BS // 2}))
print("sent", flush=True)
import time; time.sleep(60)
""", str(server.unix_path))
    try:
        assert victim.stdout is not None and victim.stdout.readline().strip() == "sent"
        victim.kill()
        victim.wait(10)
        other = connect(server)
        other.sock.settimeout(5)
        for handle in range(10):
            read_one(other, handle)
        other.close()
        wait_until(lambda: server.stats.active == 0)  # the victim's connection ended and cleaned up
    finally:
        server.stop()
