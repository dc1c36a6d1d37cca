"""The ublk server under a real kernel (Debian's 6.12 in the guest, ublk_drv loaded): a file system on
/dev/ublkbN made, checked, remounted and read back, and fio's verify job, on a RAM-disk, a file disk and on virtio-blk
over the behavioural model, over QEMU's device model and over the RTL controller under Verilator (our
driver under the kernel's block layer all the way down); the device's
block size, queue depth, read-only flag, FLUSH and TRIM as the kernel sees them; a clean stop failing the
pending I/O (also what a device that stopped answering holds), and a draining one; and a server killed
mid-I/O (the CLI's RAM-disk, TRIM checked first) leaving the kernel's I/O failing, not hanging. One boot
with the other backend tests."""

from __future__ import annotations

import errno
import mmap
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drivers.block.protocol import BlockDevice, BlockFlag, BlockInfo, BlockOp, Completion
from drivers.block.ramdisk import RamDisk
from drivers.block_services.ublk import UblkServer, delete_device, device_info
from drivers.block_services.ublk_queue import FAIL_TIMEOUT
from hwsim.linux.blockcheck import check_filesystem, fio_verify
from hwsim.linux.guest import load_module
from hwsim.linux.machines import BACKENDS

pytestmark = pytest.mark.linux_guest(BACKENDS)

MiB = 1 << 20
KILL_BOUND = 30.0  # seconds from SIGKILL to the I/O errors


@pytest.fixture(scope="module", autouse=True)
def ublk_drv() -> None:
    load_module("ublk_drv")


class Counting(BlockDevice):
    """Passes every op through and counts them by command, so a test sees FLUSH and TRIM arrive; shows the
    inner device's DMA pool (the server's tag buffers come from it) and its bounce count."""

    def __init__(self, inner: BlockDevice) -> None:
        self.inner = inner
        self.counts: dict[str, int] = {}
        self.pool = getattr(inner, "pool", None)

    def query(self) -> BlockInfo:
        return self.inner.query()

    def queue(self, op: BlockOp, completion: Completion) -> None:
        self.counts[op.command.name] = self.counts.get(op.command.name, 0) + 1
        self.inner.queue(op, completion)

    @property
    def bytes_copied(self) -> int:
        return int(getattr(self.inner, "bytes_copied", 0) or 0)


@pytest.fixture
def ramdisk() -> Iterator[RamDisk]:
    disk = RamDisk(64 * MiB, 4096, BlockFlag.TRIM_SUPPORT | BlockFlag.FUA_SUPPORT)
    yield disk
    disk.unbind()


def _queue_attr(server: UblkServer, name: str) -> str:
    return Path(f"/sys/block/ublkb{server.dev_id}/queue/{name}").read_text().strip()


def test_ublk_ramdisk_carries_ext4_and_fio_verify_with_no_copy_by_the_server(ramdisk: RamDisk,
                                                                              tmp_path: Path) -> None:
    device = Counting(ramdisk)
    with UblkServer(device) as server:
        assert os.path.exists(server.path)
        assert _queue_attr(server, "logical_block_size") == "4096"
        assert Path(f"/sys/block/ublkb{server.dev_id}/mq/0/nr_tags").read_text().strip() == "64"  # queue depth
        assert _queue_attr(server, "write_cache") == "write back"  # so the kernel sends FLUSH
        assert _queue_attr(server, "fua") == "1"
        assert int(_queue_attr(server, "discard_max_bytes")) > 0
        assert Path(f"/sys/block/ublkb{server.dev_id}/size").read_text().strip() == str(64 * MiB // 512)
        assert len(check_filesystem(server.path, tmp_path).files) == 8
        assert fio_verify(server.path, size="16M").read >= 16 * MiB
        assert server.stats.errors == 0
        assert server.stats.bytes_written > 16 * MiB and server.stats.bytes_read > 16 * MiB
        assert server.bytes_copied == 0  # the kernel copies into the tag buffers; the server copies nothing
    assert device.counts.get("FLUSH", 0) > 0 and device.counts.get("TRIM", 0) > 0, device.counts
    assert not os.path.exists(server.path)


@pytest.fixture
def disk_image(tmp_path: Path) -> Path:
    image = tmp_path / "disk.img"
    with open(image, "wb") as f:
        f.truncate(32 * MiB)
    return image


def _serve_virtio_blk(blk: Any, workdir: Path) -> None:
    """ext4 and fio's verify job through ublk over our virtio-blk driver, with no copy anywhere."""
    device = Counting(blk)
    with UblkServer(device, queue_depth=16) as server:
        assert _queue_attr(server, "logical_block_size") == str(blk.query().block_size)
        assert len(check_filesystem(server.path, workdir).files) == 8
        assert fio_verify(server.path, size="4M", iodepth=8).read >= 4 * MiB
        assert server.stats.errors == 0
        assert server.bytes_copied == 0  # tag buffers are the driver's DMA memory: no bounce either
        assert blk.bytes_copied == 0
    assert device.counts["WRITE"] > 0 and device.counts.get("FLUSH", 0) > 0, device.counts


def test_ublk_virtio_blk_on_the_model_carries_ext4_and_fio_verify_from_dma_buffers(disk_image: Path,
                                                                                    tmp_path: Path) -> None:
    from hwsim.integration.block_targets import open_model

    with open_model(disk_image) as blk:
        _serve_virtio_blk(blk, tmp_path)


def test_ublk_virtio_blk_on_qemus_device_model_carries_ext4_and_fio_verify(disk_image: Path,
                                                                          tmp_path: Path) -> None:
    """The same server over our driver on QEMU's own virtio-blk (qtest; QEMU runs inside this guest)."""
    from hwsim.integration.block_targets import open_qemu

    with open_qemu(disk_image) as blk:
        _serve_virtio_blk(blk, tmp_path)
    written = disk_image.read_bytes()[:4 * MiB]  # fio's blocks went through QEMU's device into its image
    assert written.count(0) < len(written) // 2


def _build_rtl() -> None:
    from hwsim.integration.ublk_rtl import build

    build()  # on the host: the guest's view of the checkout (and so of .sim_build) is read-only


@pytest.mark.linux_guest_prepare(fn=_build_rtl)
def test_ublk_virtio_blk_on_the_rtl_carries_ext4_and_fio_verify(tmp_path: Path) -> None:
    """The same server over our driver bound to the RTL controller (Verilator, started inside this guest):
    the server runs in the simulator's process, its queue thread posting ops to the driver's greenlet."""
    from hwsim.integration.ublk_rtl import serve_rtl

    image = tmp_path / "rtl.img"
    with open(image, "wb") as f:
        f.truncate(16 * MiB)
    with serve_rtl(image, tmp_path / "rtl") as served:
        assert Path(f"/sys/block/ublkb{served.dev_id}/size").read_text().strip() == str(16 * MiB // 512)
        assert len(check_filesystem(served.path, tmp_path, files=4).files) == 4
        assert fio_verify(served.path, size="1M", iodepth=8).read >= 1 * MiB
    result = served.result
    assert not os.path.exists(served.path)
    stats = result["stats"]
    assert result["error"] is None and stats["errors"] == 0, result
    assert stats["committed"] == stats["requests"] > 0  # every request answered exactly once
    assert result["posted"] == result["completed"] == stats["requests"]
    assert result["bytes_copied"] == 0 and result["device_bytes_copied"] == 0  # tag buffers are DMA memory
    assert result["counts"]["WRITE"] > 0 and result["counts"].get("FLUSH", 0) > 0, result["counts"]
    assert result["cycles"] > 0
    written = image.read_bytes()[:1 * MiB]  # fio's blocks went through the RTL's DMA and cache into its media
    assert written.count(0) < len(written) // 2


def test_ublk_file_disk_puts_what_the_kernel_writes_into_its_file(tmp_path: Path) -> None:
    from drivers.block.filedisk import FileDisk

    path = tmp_path / "backing.img"
    disk = FileDisk(path, 4096, size=16 * MiB)
    pattern = os.urandom(64 << 10)
    try:
        with UblkServer(disk) as server:
            assert fio_verify(server.path, size="4M").read >= 4 * MiB
            fd = os.open(server.path, os.O_RDWR)
            try:
                os.pwrite(fd, pattern, 8 * MiB)
                os.fsync(fd)
            finally:
                os.close(fd)
            assert server.stats.errors == 0
    finally:
        disk.close()
    with open(path, "rb") as f:
        f.seek(8 * MiB)
        assert f.read(len(pattern)) == pattern


def test_ublk_read_only_device_is_read_only_to_the_kernel() -> None:
    disk = RamDisk(4 * MiB, 512, BlockFlag.READONLY)
    disk.data[:512] = 0x5A
    try:
        with UblkServer(disk) as server:
            assert Path(f"/sys/block/ublkb{server.dev_id}/ro").read_text().strip() == "1"
            assert _queue_attr(server, "logical_block_size") == "512"
            fd = os.open(server.path, os.O_RDONLY | os.O_DIRECT)
            try:
                assert os.pread(fd, 4096, 0)[:512] == b"\x5a" * 512
            finally:
                os.close(fd)
            with pytest.raises(OSError) as err:
                fd = os.open(server.path, os.O_WRONLY)
                try:
                    os.pwrite(fd, b"\0" * 512, 0)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            assert err.value.errno in (errno.EPERM, errno.EROFS, errno.EACCES)
    finally:
        disk.unbind()


def _busy_fio(path: str, rw: str = "randread") -> subprocess.Popen[str]:
    """fio reading (or writing) `path` at random, 16 requests in flight, until the device fails under it."""
    return subprocess.Popen(["fio", "--name=busy", f"--filename={path}", f"--rw={rw}", "--bs=4k", "--iodepth=16",
                             "--ioengine=libaio", "--direct=1", "--runtime=300", "--time_based"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_io(dev_id: int, count: int = 200) -> None:
    stat, deadline = Path(f"/sys/block/ublkb{dev_id}/stat"), time.monotonic() + 30
    while sum(int(n) for n in stat.read_text().split()[0:5:4]) < count:  # reads + writes done: fio is in flight
        assert time.monotonic() < deadline, "fio did not get going on the ublk device"
        time.sleep(0.1)


def _stop_under_fio(ramdisk: RamDisk, *, drain: bool) -> tuple[UblkServer, str, float]:
    """Serve `ramdisk`, put fio random writes at QD16 on it (a descriptor of ours open too), stop(drain=...)
    under that load; return the server, fio's output and the seconds fio took to end after the stop."""
    server = UblkServer(ramdisk, queue_depth=8).start()
    dev_id, path = server.dev_id, server.path
    fd = os.open(path, os.O_RDWR | os.O_DIRECT)
    fio = _busy_fio(path, "randwrite")  # a read of the dead disk finds 0 bytes and fio would read on
    try:
        _wait_for_io(dev_id)
        stopped = time.monotonic()
        server.stop(drain=drain)
        out, _ = fio.communicate(timeout=KILL_BOUND)
        took = time.monotonic() - stopped
        assert fio.returncode != 0 and "error" in out.lower(), out[-2000:]
        assert not os.path.exists(path)
        assert not os.path.exists(f"/dev/ublkc{dev_id}")
        try:  # the dead disk has no blocks left: a read finds nothing, a write fails
            assert os.pread(fd, 4096, 4096) == b""
        except OSError:
            pass
        with pytest.raises(OSError):
            os.pwrite(fd, b"\0" * 4096, 0)
        return server, out, took
    finally:
        os.close(fd)
        if fio.poll() is None:
            os.kill(fio.pid, signal.SIGKILL)
            fio.wait(10)
        server.stop()  # a second stop does nothing


def test_ublk_clean_stop_under_io_fails_the_pending_io_and_removes_the_disk(ramdisk: RamDisk) -> None:
    server, out, took = _stop_under_fio(ramdisk, drain=False)
    assert took < KILL_BOUND
    assert "Input/output error" in out, out[-2000:]  # the requests pending at the stop failed with EIO
    assert server.stats.aborted > 0 and server.stats.errors == server.stats.aborted
    assert server.stats.committed == server.stats.requests  # each request answered exactly once
    assert server.stats.bytes_written > 0


def test_ublk_draining_stop_completes_the_io_in_flight_first(ramdisk: RamDisk) -> None:
    server, out, took = _stop_under_fio(ramdisk, drain=True)
    assert took < KILL_BOUND
    assert "Input/output error" not in out, out[-2000:]  # ENOSPC: the disk has no blocks left
    assert server.stats.errors == 0 and server.stats.aborted == 0  # what it took, it completed
    assert server.stats.committed == server.stats.requests


class Holding(Counting):
    """Passes ops through until `hold` is set, then keeps them: a device that stopped answering."""

    def __init__(self, inner: BlockDevice) -> None:
        super().__init__(inner)
        self.hold = threading.Event()
        self.held: list[tuple[BlockOp, Completion]] = []

    def queue(self, op: BlockOp, completion: Completion) -> None:
        if self.hold.is_set():
            self.held.append((op, completion))
            return
        super().queue(op, completion)


def test_ublk_clean_stop_fails_the_io_a_stuck_device_holds_within_its_bound(ramdisk: RamDisk) -> None:
    device = Holding(ramdisk)
    server = UblkServer(device, queue_depth=8).start()
    fio = _busy_fio(server.path)
    try:
        _wait_for_io(server.dev_id)
        device.hold.set()
        deadline = time.monotonic() + 30
        while len(device.held) < 8:  # every tag is in the device now, none with the kernel
            assert time.monotonic() < deadline, f"only {len(device.held)} ops reached the held device"
            time.sleep(0.05)
        stopped = time.monotonic()
        server.stop()
        assert time.monotonic() - stopped < FAIL_TIMEOUT + 10
        out, _ = fio.communicate(timeout=KILL_BOUND)
        assert fio.returncode != 0 and "Input/output error" in out, out[-2000:]
        assert not os.path.exists(server.path)
        assert server.stats.aborted >= 8 and server.stats.committed == server.stats.requests
        for op, completion in device.held:  # the device answers at last: the late results are dropped
            ramdisk.queue(op, completion)
        assert server.stats.committed == server.stats.requests
    finally:
        if fio.poll() is None:
            os.kill(fio.pid, signal.SIGKILL)
            fio.wait(10)
        server.stop()


def test_ublk_server_killed_mid_io_leaves_io_errors_not_a_hang() -> None:
    serve = subprocess.Popen([sys.executable, "-m", "mmiotk.cli", "serve", "--ublk", "--ramdisk", "64M",
                              "--block-size", "4096"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    fio = None
    try:
        assert serve.stdout is not None
        path = serve.stdout.readline().strip()
        assert path.startswith("/dev/ublkb"), serve.stderr.read() if serve.stderr else path
        dev_id = int(path.removeprefix("/dev/ublkb"))
        queue = Path(f"/sys/block/ublkb{dev_id}/queue")
        assert int((queue / "discard_max_bytes").read_text()) > 0  # the CLI's RAM-disk offers TRIM
        assert (queue / "fua").read_text().strip() == "1"
        fd = os.open(path, os.O_RDWR | os.O_DIRECT)
        try:
            block = mmap.mmap(-1, 1 << 16)  # O_DIRECT wants aligned memory
            block.write(b"\xa5" * (1 << 16))
            assert os.pwritev(fd, [block], 1 << 20) == 1 << 16
            subprocess.run(["blkdiscard", "-o", str(1 << 20), "-l", str(1 << 15), path], check=True, timeout=60)
            assert os.preadv(fd, [block], 1 << 20) == 1 << 16  # DISCARD reached the RAM-disk's TRIM: zeros
            assert block[:1 << 15] == bytes(1 << 15) and block[1 << 15:] == b"\xa5" * (1 << 15)
        finally:
            os.close(fd)
        fio = _busy_fio(path)
        _wait_for_io(dev_id)
        os.kill(serve.pid, signal.SIGKILL)
        killed = time.monotonic()
        out, _ = fio.communicate(timeout=KILL_BOUND)
        assert time.monotonic() - killed < KILL_BOUND
        assert fio.returncode != 0 and "Input/output error" in out, out[-2000:]
        assert device_info(dev_id).ublksrv_pid in (-1, serve.pid)
        delete_device(dev_id)
        assert not os.path.exists(path)
    finally:
        for proc in (fio, serve):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(10)
