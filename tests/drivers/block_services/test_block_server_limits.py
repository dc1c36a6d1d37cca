"""The block FIFO server under hostile clients (issue 16, item 6): requests that used to drop the session
get an error answer, a 0-byte message is not end-of-file, and idle or greedy clients cannot lock others out."""

from __future__ import annotations

import json
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from drivers.block.ramdisk import RamDisk
from drivers.block_services import control
from drivers.block_services.client import BlockClient
from drivers.block_services.server import BlockServer
from mmiotk import DmaPool, RamSpace

from .block_helpers import BS, Procs

Serve = Callable[..., BlockServer]


def raw_control(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(5)
    sock.connect(path)
    return sock


def ask(sock: socket.socket, data: bytes) -> dict[str, object]:
    sock.send(data)
    reply, fds = control.recv_msg(sock)
    control.close_fds(fds)
    return reply


def wait_until(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    """Wait for `condition`, failing the test after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached within the bound"
        time.sleep(0.02)


def connects(path: str) -> bool:
    try:
        BlockClient(path, timeout=5).close()
    except ConnectionError:
        return False
    return True


def check_io(path: str) -> None:
    """A fresh client is served: write and read back one block."""
    with BlockClient(path, timeout=5) as blk:
        buf = blk.attach(BS)
        buf.array[:] = 0x5A
        blk.write(buf, 3, 1)
        buf.array[:] = 0
        blk.read(buf, 3, 1)
        assert (buf.array == 0x5A).all()


def test_an_alloc_larger_than_the_dma_pool_is_answered_and_the_session_survives(serve: Serve, ramdisk: RamDisk,
                                                                               sockdir: Path) -> None:
    ram = RamSpace(1 << 20, base=0x4000_0000, path=sockdir / "dma")
    try:
        server = serve(ramdisk, dma=DmaPool.from_space(ram))
        with BlockClient(server.path, timeout=5) as blk:
            with pytest.raises(control.ControlError, match="cannot allocate"):
                blk.alloc_dma(8 << 20)
            buf = blk.alloc_dma(4 * BS)  # the same session goes on
            buf.array[:] = 7
            blk.write(buf, 0, 4)
            assert (ramdisk.data[:4 * BS] == 7).all()
        server.stop()
    finally:
        ram.close()


def test_deeply_nested_control_json_is_answered_with_an_error(serve: Serve, ramdisk: RamDisk) -> None:
    server = serve(ramdisk)
    sock = raw_control(server.path)
    try:
        deep = b"[" * 2000 + b"]" * 2000
        reply = ask(sock, deep)
        assert reply["ok"] is False and "nested too deeply" in str(reply["error"])
        reply = ask(sock, json.dumps({"op": "hello", "version": control.PROTOCOL_VERSION}).encode())
        assert reply["ok"] is True  # the session is still there
    finally:
        sock.close()


def test_an_empty_control_message_is_an_error_not_end_of_file(serve: Serve, ramdisk: RamDisk) -> None:
    server = serve(ramdisk)
    sock = raw_control(server.path)
    try:
        reply = ask(sock, b"")
        assert reply["ok"] is False and "empty control message" in str(reply["error"])
        assert ask(sock, b'{"op": "hello"}')["ok"] is True
    finally:
        sock.close()


def test_an_empty_fifo_message_does_not_end_the_session(serve: Serve, ramdisk: RamDisk) -> None:
    server = serve(ramdisk)
    with BlockClient(server.path, timeout=5) as blk:
        buf = blk.attach(BS)
        blk.send_raw(b"")
        buf.array[:] = 9
        blk.write(buf, 1, 1)  # today: the server closed the session on the empty message
        assert (ramdisk.data[BS:2 * BS] == 9).all()


HOG = """
import socket, sys, time
path, n = sys.argv[1], int(sys.argv[2])
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    s.connect(path)
    socks.append(s)
print("connected", flush=True)
time.sleep(60)
"""


def start_hog(procs: Procs, path: str, n: int) -> subprocess.Popen[str]:
    proc = procs.start("-c", HOG, path, str(n))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "connected"
    return proc


def test_one_process_cannot_take_every_session(serve: Serve, ramdisk: RamDisk, procs: Procs) -> None:
    server = serve(ramdisk, max_clients=64, max_clients_per_process=8)
    start_hog(procs, server.path, 64)  # today: 64 idle connections lock every new client out
    wait_until(lambda: server.stats.sessions >= 8)
    assert server.stats.clients <= 8
    wait_until(lambda: connects(server.path))  # the hog's refused connects may still fill the backlog
    check_io(server.path)


def test_idle_connections_are_closed_after_the_handshake_timeout(serve: Serve, ramdisk: RamDisk,
                                                                 procs: Procs) -> None:
    server = serve(ramdisk, max_clients=8, max_clients_per_process=8, handshake_timeout=0.5)
    start_hog(procs, server.path, 8)
    with pytest.raises(control.ControlError, match="server full"):
        BlockClient(server.path, timeout=5)
    wait_until(lambda: server.stats.clients == 0)  # today: never
    check_io(server.path)


def test_a_client_idle_after_its_handshake_is_closed_after_the_idle_timeout(serve: Serve,
                                                                            ramdisk: RamDisk) -> None:
    server = serve(ramdisk, max_clients=1, idle_timeout=0.5)
    idle = BlockClient(server.path, timeout=5)
    try:
        wait_until(lambda: server.stats.clients == 0)
        check_io(server.path)
    finally:
        idle.close()
