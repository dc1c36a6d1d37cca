"""The ublk server's pieces that need no ublk kernel: the io_uring layer on the host's own kernel, the ABI's
struct layouts and offsets (Linux's include/uapi/linux/ublk_cmd.h), and the errors for bad arguments or a
kernel without ublk. The server itself runs under a real kernel in test_ublk_guest.py."""

from __future__ import annotations

import ctypes
import os

import pytest

from drivers.block.protocol import BlockFlag
from drivers.block.ramdisk import RamDisk
from drivers.block_services import ublk, ublk_control
from drivers.block_services import ublk_cmd as U
from drivers.block_services.io_uring import CMD_OFFSET, Ring
from mmiotk.cli import main


def test_io_uring_ring_completes_a_nop_and_an_eventfd_read() -> None:
    with Ring(8) as ring:
        ring.prep_nop(7)
        assert ring.submit_and_wait(1) == 1
        assert [(c.user_data, c.res) for c in ring.completions()] == [(7, 0)]
        event, value = os.eventfd(0), ctypes.c_uint64()
        try:
            ring.prep_read(event, ctypes.addressof(value), 8, 99)
            ring.submit_and_wait(0)
            assert ring.completions() == []  # nothing to read yet: the read waits in the kernel
            os.eventfd_write(event, 5)
            ring.submit_and_wait(1)
            assert [(c.user_data, c.res) for c in ring.completions()] == [(99, 8)]
            assert value.value == 5
        finally:
            os.close(event)


def test_io_uring_uring_cmd_payload_must_fit_the_sqe() -> None:
    with Ring(4) as small, Ring(4, sqe128=True) as big:
        with pytest.raises(ValueError, match="SQEs hold 16"):
            small.prep_uring_cmd(0, 1, bytes(32), 1)
        assert big.sqe_size - CMD_OFFSET == 80
        event = os.eventfd(0)
        try:  # an eventfd has no uring_cmd: the kernel answers EOPNOTSUPP, proving the SQE went through
            big.prep_uring_cmd(event, U.CMD_ADD_DEV, bytes(ctypes.sizeof(U.CtrlCmd)), 3)
            big.submit_and_wait(1)
            (cqe,) = big.completions()
            assert (cqe.user_data, cqe.res) == (3, -95)
        finally:
            os.close(event)


def test_ublk_abi_structs_and_offsets_match_the_kernel_header() -> None:
    sizes = {U.CtrlCmd: 32, U.CtrlDevInfo: 64, U.IoCmd: 16, U.IoDesc: 24, U.ParamBasic: 32, U.ParamDiscard: 20}
    assert {t: ctypes.sizeof(t) for t in sizes} == sizes
    assert U.CMD_ADD_DEV == 0xC0207504 and U.CMD_GET_DEV_INFO == 0x80207502
    assert U.IO_FETCH_REQ == 0xC0107520 and U.IO_COMMIT_AND_FETCH_REQ == 0xC0107521
    assert U.user_copy_offset(0, 0) == 0x80000000
    assert U.user_copy_offset(1, 3) == 0x80000000 + (1 << 41) + (3 << 25)
    assert U.io_desc_offset(2) == 2 * 4096 * 24


def test_ublk_server_refuses_bad_depth_and_block_size() -> None:
    disk = RamDisk(1 << 20, 512)
    with pytest.raises(ValueError, match="queue_depth 65"):
        ublk.UblkServer(disk, queue_depth=65)
    with pytest.raises(ValueError, match="block size 8192"):
        ublk.UblkServer(RamDisk(1 << 20, 8192))
    with pytest.raises(ValueError, match="at least one page"):
        ublk.UblkServer(RamDisk(1 << 20, 512, max_transfer_size=1024))


def test_ublk_server_without_the_kernel_module_names_it(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setattr(ublk_control, "CONTROL", str(tmp_path / "ublk-control"))
    server = ublk.UblkServer(RamDisk(1 << 20, 512, BlockFlag.TRIM_SUPPORT))
    with pytest.raises(ublk.UblkError, match="ublk_drv"):
        server.start()
    server.stop()  # nothing started: nothing to stop


def test_serve_cli_wants_socket_or_ublk_and_no_dma_with_ublk(monkeypatch: pytest.MonkeyPatch, tmp_path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["serve", "--ramdisk", "1M"])
    assert "--socket" in capsys.readouterr().err
    assert main(["serve", "--ublk", "--dma", "--ramdisk", "1M"]) != 0
    assert "--dma goes with --socket" in capsys.readouterr().err
    monkeypatch.setattr(ublk_control, "CONTROL", str(tmp_path / "ublk-control"))
    assert main(["serve", "--ublk", "--ramdisk", "1M"]) != 0
    assert "ublk_drv" in capsys.readouterr().err


def test_ublk_params_carry_block_size_size_read_only_fua_and_discard_only_with_trim() -> None:
    p = ublk.UblkServer(RamDisk(1 << 20, 4096, BlockFlag.TRIM_SUPPORT | BlockFlag.FUA_SUPPORT))._params()
    assert (p.basic.logical_bs_shift, p.basic.dev_sectors, p.basic.max_sectors) == (12, 2048, 256)
    assert p.basic.attrs == U.ATTR_VOLATILE_CACHE | U.ATTR_FUA
    assert p.types == U.PARAM_TYPE_BASIC | U.PARAM_TYPE_DISCARD
    assert (p.discard.discard_granularity, p.discard.max_discard_segments) == (4096, 1)
    assert p.discard.max_write_zeroes_sectors == 256
    ro = ublk.UblkServer(RamDisk(1 << 20, 512, BlockFlag.READONLY | BlockFlag.TRIM_SUPPORT))._params()
    assert ro.basic.attrs == U.ATTR_VOLATILE_CACHE | U.ATTR_READ_ONLY and ro.types == U.PARAM_TYPE_BASIC
    assert ro.basic.logical_bs_shift == 9


class _FakeQueue:
    """What `UblkServer.handle` needs of a queue, over a sparse file standing in for /dev/ublkcN: user copy
    is plain pread/pwrite at the request's offset, so the file shows what the kernel would have received."""

    def __init__(self, server: ublk.UblkServer, path: str) -> None:
        self.q_id = 0
        self.cdev = os.open(path, os.O_RDWR | os.O_CREAT)
        self.vmos = [server.tag_buffer() for _ in range(2)]
        self.results: list[tuple[int, int]] = []

    def complete(self, tag: int, result: int) -> None:
        self.results.append((tag, result))


def test_ublk_requests_map_to_block_ops_with_data_through_the_user_copy_offsets(tmp_path) -> None:
    disk = RamDisk(1 << 20, 512, BlockFlag.TRIM_SUPPORT)
    server = ublk.UblkServer(disk, queue_depth=2)
    queue = _FakeQueue(server, str(tmp_path / "ublkc"))
    try:
        at1 = U.user_copy_offset(0, 1)
        os.pwrite(queue.cdev, b"W" * 1024, at1)  # the data of a write request, as the kernel offers it
        server.handle(queue, 1, U.IO_OP_WRITE | U.IO_F_FUA, 2, 8)
        assert queue.results.pop() == (1, 1024)
        assert disk.data[8 * 512:10 * 512].tobytes() == b"W" * 1024
        disk.data[0:512] = 7
        server.handle(queue, 0, U.IO_OP_READ, 1, 0)
        assert queue.results.pop() == (0, 512)
        assert os.pread(queue.cdev, 512, U.user_copy_offset(0, 0)) == b"\x07" * 512
        server.handle(queue, 0, U.IO_OP_FLUSH, 0, 0)
        server.handle(queue, 1, U.IO_OP_WRITE_ZEROES, 2, 8)
        assert queue.results == [(0, 0), (1, 0)] and not disk.data[8 * 512:10 * 512].any()
        queue.results.clear()
        server.handle(queue, 0, U.IO_OP_WRITE_SAME, 1, 0)
        server.handle(queue, 0, U.IO_OP_READ, 1, 4096)  # past the end
        disk.inject_io_error(16, 1)
        server.handle(queue, 1, U.IO_OP_READ, 1, 16)
        assert queue.results == [(0, -95), (0, -22), (1, -5)]  # EOPNOTSUPP, EINVAL, EIO
        assert server.stats.errors == 3 and server.bytes_copied == 0
    finally:
        os.close(queue.cdev)
        disk.unbind()
