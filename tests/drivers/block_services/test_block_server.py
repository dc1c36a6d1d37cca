"""The block server: data paths, isolation between clients, malformed input, groups, splitting,
FORCE_ACCESS, zero-copy, client death, and several client processes at once."""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.block.protocol import BlockCommand, BlockFlag, BlockInfo, OpFlag
from drivers.block.ramdisk import RamDisk
from drivers.block_services import control
from drivers.block_services.client import BlockClient, BlockFifoError
from drivers.block_services.fifo import RECORD_SIZE, FifoFlag, FifoOp, Request, Response, ZxStatus
from drivers.block_services.server import BlockServer
from mmiotk import RamSpace
from mmiotk.dma import DmaPool

from .block_helpers import BLOCKS, BS, Procs, Recorder

Serve = Callable[..., BlockServer]


def noise(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8)


@pytest.fixture
def server(serve: Serve, ramdisk: RamDisk) -> BlockServer:
    return serve(ramdisk)


@pytest.fixture
def client(server: BlockServer) -> Iterator[BlockClient]:
    with BlockClient(server.path, timeout=5) as blk:
        yield blk


def wait_for(predicate: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)


# --- data paths -------------------------------------------------------------------------------------------
def test_hello_reports_the_device_geometry(client: BlockClient) -> None:
    assert (client.info.block_count, client.info.block_size) == (BLOCKS, BS)


def test_write_lands_on_the_device_and_reads_back(client: BlockClient, ramdisk: RamDisk) -> None:
    buf = client.attach(16 * BS)
    data = noise(8 * BS, 1)
    buf.array[:8 * BS] = data
    client.write(buf, dev_offset=100, length=8)
    assert np.array_equal(ramdisk.data[100 * BS:108 * BS], data)
    client.read(buf, dev_offset=100, length=8, vmo_offset=8)
    assert np.array_equal(buf.array[8 * BS:], data)


def test_flush_and_trim_are_answered(serve: Serve) -> None:
    disk = RamDisk(BLOCKS * BS, BS, BlockFlag.TRIM_SUPPORT)
    disk.data[:] = 0xAA
    with BlockClient(serve(disk).path) as blk:
        blk.flush()
        blk.trim(4, 2)
    assert not disk.data[4 * BS:6 * BS].any() and disk.data[6 * BS] == 0xAA


def test_trim_on_a_device_without_trim_support_is_not_supported(client: BlockClient) -> None:
    with pytest.raises(BlockFifoError, match="NOT_SUPPORTED"):
        client.trim(0, 1)


def test_pipelined_requests_beyond_the_fifo_depth_all_complete(client: BlockClient, ramdisk: RamDisk) -> None:
    buf = client.attach(BLOCKS * BS)
    buf.array[:] = noise(BLOCKS * BS, 2)
    reqs = [Request(FifoOp.WRITE, 0, client.next_reqid(), 0, buf.vmoid, 1, i, i) for i in range(BLOCKS)]
    responses = client.transact(reqs)
    assert [r.reqid for r in responses] == [r.reqid for r in reqs]
    assert all(r.ok and r.count == 1 for r in responses)
    assert np.array_equal(ramdisk.data, buf.array)


# --- groups, splitting, FORCE_ACCESS ------------------------------------------------------------------
def test_a_group_is_answered_once_with_its_item_count(client: BlockClient, ramdisk: RamDisk) -> None:
    buf = client.attach(4 * BS)
    buf.array[:] = noise(4 * BS, 3)
    items = [Request(FifoOp.WRITE, FifoFlag.GROUP_ITEM, 10 + i, 5, buf.vmoid, 1, i, 50 + i) for i in range(3)]
    last = Request(FifoOp.WRITE, FifoFlag.GROUP_ITEM | FifoFlag.GROUP_LAST, 13, 5, buf.vmoid, 1, 3, 53)
    assert client.transact([*items, last]) == [Response(ZxStatus.OK, 13, 5, 4)]
    assert np.array_equal(ramdisk.data[50 * BS:54 * BS], buf.array)


def test_a_failing_item_fails_its_group_with_a_single_response(client: BlockClient) -> None:
    buf = client.attach(BS)
    reqs = [Request(FifoOp.READ, FifoFlag.GROUP_ITEM, 1, 2, buf.vmoid, 1, 0, 0),
            Request(FifoOp.READ, FifoFlag.GROUP_ITEM, 2, 2, buf.vmoid, 1, 0, BLOCKS),  # past the end
            Request(FifoOp.READ, FifoFlag.GROUP_ITEM | FifoFlag.GROUP_LAST, 3, 2, buf.vmoid, 1, 0, 1)]
    assert client.transact(reqs) == [Response(ZxStatus.OUT_OF_RANGE, 3, 2, 3)]
    client.read(buf, 0, 1)  # the group is free again, and the session is fine


def test_requests_over_max_transfer_are_split_and_answered_once(serve: Serve) -> None:
    disk = RamDisk(BLOCKS * BS, BS, max_transfer_size=4 * BS)
    rec = Recorder(disk)
    with BlockClient(serve(rec).path) as blk:
        buf = blk.attach(10 * BS)
        buf.array[:] = noise(10 * BS, 4)
        blk.write(buf, dev_offset=7, length=10)
    assert [(op.length, op.offset_dev, op.offset_vmo) for op in rec.ops] == [(4, 7, 0), (4, 11, 4), (2, 15, 8)]
    assert np.array_equal(disk.data[7 * BS:17 * BS], buf.array)


def test_force_access_without_fua_flushes_after_the_write(serve: Serve, ramdisk: RamDisk) -> None:
    rec = Recorder(ramdisk)
    with BlockClient(serve(rec).path) as blk:
        buf = blk.attach(BS)
        blk.write(buf, 0, 1, force_access=True)
    assert [op.command for op in rec.ops] == [BlockCommand.WRITE, BlockCommand.FLUSH]
    assert rec.ops[0].flags == OpFlag.NONE


def test_force_access_with_fua_goes_to_the_device_without_a_flush(serve: Serve, ramdisk: RamDisk) -> None:
    info = ramdisk.query()
    rec = Recorder(ramdisk, BlockInfo(info.block_count, info.block_size, flags=BlockFlag.FUA_SUPPORT))
    with BlockClient(serve(rec).path) as blk:
        buf = blk.attach(BS)
        blk.write(buf, 0, 1, force_access=True)
    assert [(op.command, op.flags) for op in rec.ops] == [(BlockCommand.WRITE, OpFlag.FORCE_ACCESS)]


# --- bad input ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("req", "status"), [
    (Request(FifoOp.READ, 0, 1, 0, 1, 1, 0, BLOCKS), ZxStatus.OUT_OF_RANGE),  # first block past the end
    (Request(FifoOp.READ, 0, 1, 0, 1, 2, 0, BLOCKS - 1), ZxStatus.OUT_OF_RANGE),  # runs past the end
    (Request(FifoOp.READ, 0, 1, 0, 1, 9, 0, 0), ZxStatus.OUT_OF_RANGE),  # more than the 8-block buffer
    (Request(FifoOp.READ, 0, 1, 0, 1, 1, 8, 0), ZxStatus.OUT_OF_RANGE),  # buffer offset past its end
    (Request(FifoOp.READ, 0, 1, 0, 1, 0, 0, 0), ZxStatus.INVALID_ARGS),  # zero length
    (Request(FifoOp.READ, 0, 1, 0, 7, 1, 0, 0), ZxStatus.IO),  # no such vmoid (Fuchsia: IO)
    (Request(FifoOp.READ, 0, 1, 0, 0, 1, 0, 0), ZxStatus.IO),  # VMOID_INVALID
    (Request(FifoOp.WRITE, 0, 1, 0, 7, 1, 0, 0), ZxStatus.IO),
    (Request(99, 0, 1, 0, 1, 1, 0, 0), ZxStatus.INVALID_ARGS),  # unknown opcode (Fuchsia: INVALID_ARGS)
    (Request(FifoOp.READ, 0x80, 1, 0, 1, 1, 0, 0), ZxStatus.INVALID_ARGS),  # unknown flag
    (Request(FifoOp.READ, FifoFlag.GROUP_ITEM | FifoFlag.GROUP_LAST, 1, 8, 1, 1, 0, 0), ZxStatus.IO),  # group 8
])
def test_a_bad_request_gets_an_error_and_touches_nothing(client: BlockClient, ramdisk: RamDisk, req: Request,
                                                         status: ZxStatus) -> None:
    buf = client.attach(8 * BS)
    assert buf.vmoid == 1
    buf.array[:] = 0x5A
    before = ramdisk.data.copy()
    assert client.transact([req]) == [Response(status, 1, req.group, 1)]
    assert np.array_equal(ramdisk.data, before) and (buf.array == 0x5A).all()
    client.read(buf, 0, 1)  # the session still works


@pytest.mark.parametrize("size", [1, 47, 49, 95, RECORD_SIZE * 65])
def test_a_malformed_message_gets_an_error_response_and_the_session_survives(client: BlockClient,
                                                                            size: int) -> None:
    raw = (bytes(8) + (777).to_bytes(4, "little") + bytes(size))[:size]
    client.send_raw(raw)
    (response,) = client.recv()
    assert response.status == ZxStatus.INVALID_ARGS and response.reqid == (777 if size >= 12 else 0)
    buf = client.attach(BS)
    client.read(buf, 0, 1)


def test_a_write_to_a_read_only_device_is_denied(serve: Serve) -> None:
    disk = RamDisk(BLOCKS * BS, BS, BlockFlag.READONLY)
    with BlockClient(serve(disk).path) as blk:
        buf = blk.attach(BS)
        with pytest.raises(BlockFifoError, match="ACCESS_DENIED"):
            blk.write(buf, 0, 1)


def test_a_closed_vmo_can_no_longer_be_used(client: BlockClient) -> None:
    buf = client.attach(BS)
    client.close_vmo(buf)
    with pytest.raises(BlockFifoError, match=r"IO \(-40\)"):
        client.read(buf.vmoid, 0, 1)
    with pytest.raises(BlockFifoError, match=r"IO \(-40\)"):
        client.close_vmo(buf.vmoid)


def test_an_unsealed_buffer_is_refused(client: BlockClient, tmp_path: Path) -> None:
    fd = os.open(tmp_path / "plain", os.O_RDWR | os.O_CREAT)
    try:
        os.ftruncate(fd, 4096)
        with pytest.raises(control.ControlError, match="F_SEAL_SHRINK"):
            client.attach_fd(fd)
    finally:
        os.close(fd)
    client.read(client.attach(BS), 0, 1)


def test_unknown_and_malformed_control_messages_are_refused(server: BlockServer) -> None:
    with socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET) as sock:
        sock.settimeout(5)
        sock.connect(server.path)
        with pytest.raises(control.ControlError, match="unknown control op 'format'"):
            control.request(sock, {"op": "format"})
        sock.send(b"{not json")
        reply, _ = control.recv_msg(sock)
        assert not reply["ok"] and "not JSON" in reply["error"]
        with pytest.raises(control.ControlError, match="no DMA pool"):
            control.request(sock, {"op": "alloc_vmo", "size": 4096})
        with pytest.raises(control.ControlError, match="protocol version 2"):
            control.request(sock, {"op": "hello", "version": 2})


# --- isolation and zero-copy --------------------------------------------------------------------------
def test_a_client_cannot_reach_another_clients_buffer(server: BlockServer, ramdisk: RamDisk) -> None:
    with BlockClient(server.path) as alice, BlockClient(server.path) as bob:
        secret = alice.attach(4 * BS)
        secret.array[:] = 0xA5
        alice.write(secret, 0, 4)
        # bob names alice's vmoid: it is not his, so it does not exist for him
        with pytest.raises(BlockFifoError, match=r"IO \(-40\)"):
            bob.write(secret.vmoid, 8, 4)
        with pytest.raises(BlockFifoError, match=r"IO \(-40\)"):
            bob.read(secret.vmoid, 0, 4)
        mine = bob.attach(4 * BS)
        assert mine.vmoid == secret.vmoid  # ids are per session: the same number names bob's own buffer
        bob.write(mine, 8, 4)
    assert not ramdisk.data[8 * BS:12 * BS].any()


def test_the_driver_gets_a_view_of_the_client_mapping_and_nothing_is_copied(serve: Serve,
                                                                          ramdisk: RamDisk) -> None:
    rec = Recorder(ramdisk)
    server = serve(rec)
    with BlockClient(server.path) as blk:
        buf = blk.attach(8 * BS)
        blk.write(buf, 0, 8)
        (vmos,) = server.session_vmos().values()
        mapped = vmos[buf.vmoid].vmo.array
        assert rec.ops[0].vmo is not None and np.shares_memory(rec.ops[0].vmo.array, mapped)
        assert rec.ops[0].vmo.dma_addr is None  # a client memfd is not DMA memory
        stats = blk.stats()
    assert stats["bytes_copied"] == 0 and stats["bytes_by_reference"] == 8 * BS and stats["bytes_dma"] == 0
    assert server.bytes_copied == 0


def test_a_dma_buffer_reaches_the_driver_with_its_device_address(serve: Serve, ramdisk: RamDisk,
                                                                 sockdir: Path) -> None:
    ram = RamSpace(1 << 20, base=0x4000_0000, path=sockdir / "dma")
    pool = DmaPool.from_space(ram)
    rec = Recorder(ramdisk)
    server = serve(rec, dma=pool)
    try:
        with BlockClient(server.path) as blk:
            assert blk.dma_available
            buf = blk.alloc_dma(8 * BS)
            buf.array[:] = noise(8 * BS, 5)
            blk.write(buf, 16, 8)
            assert np.array_equal(ramdisk.data[16 * BS:24 * BS], buf.array)
            vmo = rec.ops[0].vmo
            assert vmo is not None and vmo.dma_addr == buf.dma_addr
            assert buf.dma_addr is not None
            offset = buf.dma_addr - 0x4000_0000
            assert np.array_equal(ram.array[offset:offset + 8 * BS], buf.array)  # the same pages
            stats = blk.stats()
        assert stats["bytes_dma"] == 8 * BS and stats["bytes_copied"] == 0
        wait_for(lambda: pool.buffers == 0, "the DMA buffer to return to the pool")
    finally:
        server.stop()
        ram.close()


# --- processes ---------------------------------------------------------------------------------------------
def test_several_client_processes_each_verify_their_own_data(server: BlockServer, procs: Procs,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    nclients, nblocks = 4, 32
    workers = [procs.worker("verify", server.path, str(i), str(i * nblocks * 2), str(nblocks), "6")
               for i in range(nclients)]
    results = []
    for proc in workers:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    assert all(r["ok"] for r in results), results
    assert sorted(r["ident"] for r in results) == list(range(nclients))
    assert all(r["checked"] == 6 * nblocks * BS for r in results)
    assert server.stats.sessions == nclients
    wait_for(lambda: server.stats.clients == 0, "every client to be gone")
    assert not [r for r in caplog.records if r.name.startswith("drivers.block")]  # clean exits log nothing


def test_a_client_killed_mid_request_leaves_the_server_and_others_running(serve: Serve, ramdisk: RamDisk,
                                                                           procs: Procs,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    rec = Recorder(ramdisk)
    rec.hold()
    server = serve(rec)
    with BlockClient(server.path) as survivor:
        proc = procs.worker("hang", server.path, "0")
        assert proc.stdout is not None
        assert json.loads(proc.stdout.readline())["sent"]
        wait_for(lambda: len(rec.held) == 1, "the doomed read to reach the device")
        os.kill(proc.pid, 9)
        proc.wait(timeout=10)
        wait_for(lambda: server.stats.clients == 1, "the server to notice the dead client")
        rec.release()  # the read completes into the dead client's buffer, which the server still maps
        buf = survivor.attach(4 * BS)
        buf.array[:] = 0x3C
        survivor.write(buf, 40, 4)
        survivor.read(buf, 0, 4)
        assert server.stats.sessions == 2
    assert (ramdisk.data[40 * BS:44 * BS] == 0x3C).all()
    assert not [r for r in caplog.records if r.name.startswith("drivers.block")]  # a death is no error


def test_stopping_the_server_disconnects_clients_and_removes_the_socket(serve: Serve, ramdisk: RamDisk) -> None:
    server = serve(ramdisk)
    blk = BlockClient(server.path, timeout=5)
    buf = blk.attach(BS)
    server.stop()
    assert not os.path.exists(server.path)
    with pytest.raises((ConnectionError, OSError)):
        blk.read(buf, 0, 1)
    blk.close()
    with pytest.raises(ConnectionError, match="cannot connect"):
        BlockClient(server.path)


def test_a_server_without_a_thread_serves_while_its_owner_polls(ramdisk: RamDisk, sockdir: Path,
                                                                procs: Procs) -> None:
    server = BlockServer(ramdisk, sockdir / "coop.sock").start(thread=False)
    try:
        proc = procs.worker("verify", server.path, "5", "0", "8", "3")
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            server.poll(0.01)
        out, err = proc.communicate(timeout=10)
        assert proc.returncode == 0, err
        assert json.loads(out)["ok"]
        with pytest.raises(RuntimeError, match="thread=False"):
            serve_threaded = BlockServer(ramdisk, sockdir / "t.sock").start()
            try:
                serve_threaded.poll()
            finally:
                serve_threaded.stop()
    finally:
        server.stop()
    assert not (sockdir / "coop.sock").exists()
