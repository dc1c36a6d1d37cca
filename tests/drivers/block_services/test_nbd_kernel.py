"""The Linux kernel's own NBD client (`nbd-client`, /dev/nbdN) on the project's NBD export, inside the guest:
a file system and fio's verify job on a RAM-disk and on virtio-blk over the behavioural model (our driver,
under the kernel's block layer, all the way down). One boot with the other `BACKENDS` guest tests."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from drivers.block.protocol import BlockDevice, BlockFlag
from drivers.block.ramdisk import RamDisk
from drivers.block_services.nbd import NbdServer
from hwsim.linux.blockcheck import BlockCheckReport, check_block_device, run
from hwsim.linux.guest import load_module
from hwsim.linux.machines import BACKENDS

pytestmark = pytest.mark.linux_guest(BACKENDS)

MiB = 1 << 20
SIZE = 32 * MiB


def _size_of(nbd: str) -> int:
    return int(Path(f"/sys/block/{nbd}/size").read_text()) * 512


@contextmanager
def kernel_nbd(device: BlockDevice, workdir: Path, nbd: str) -> Iterator[tuple[str, NbdServer]]:
    """Serve `device` on a unix socket and attach the kernel's NBD client to it as /dev/`nbd`."""
    load_module("nbd")
    with NbdServer(device, unix_path=workdir / "nbd.sock", name="disk0") as server:
        run("nbd-client", "-N", "disk0", "-u", str(workdir / "nbd.sock"), f"/dev/{nbd}", "-t", "60",
            "-b", "512", timeout=60)
        try:
            deadline = time.monotonic() + 30
            while _size_of(nbd) == 0:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"/dev/{nbd} did not get a size within 30 s")
                time.sleep(0.1)
            yield f"/dev/{nbd}", server
        finally:
            subprocess.run(["nbd-client", "-d", f"/dev/{nbd}"], capture_output=True, timeout=60, check=False)
            deadline = time.monotonic() + 30
            while _size_of(nbd) and time.monotonic() < deadline:
                time.sleep(0.1)


def assert_checked(report: BlockCheckReport, server: NbdServer) -> None:
    assert report.fio.errors == 0 and report.fio.read >= report.fio.written == 4 * MiB
    assert len(report.filesystem.files) == 8
    assert "clean" in report.filesystem.fsck_after or "files" in report.filesystem.fsck_after
    assert server.stats.errors == 0
    assert server.stats.bytes_written >= 4 * MiB + 8 * (256 << 10)  # it all went through the export
    assert server.stats.bytes_read >= 4 * MiB + 8 * (256 << 10)


def test_kernel_nbd_client_sees_the_exports_size_and_flags(tmp_path: Path) -> None:
    ram = RamDisk(SIZE, 512, BlockFlag.TRIM_SUPPORT | BlockFlag.FUA_SUPPORT)
    with kernel_nbd(ram, tmp_path, "nbd0") as (dev, server):
        assert _size_of("nbd0") == SIZE
        assert int(Path("/sys/block/nbd0/queue/discard_max_bytes").read_text()) > 0  # TRIM offered
        assert Path("/sys/block/nbd0/queue/write_cache").read_text().strip() == "write back"  # FLUSH offered
        run("blkdiscard", dev)
        assert server.stats.requests > 0
    ram.unbind()


def test_kernel_nbd_on_a_ramdisk_holds_ext4_and_fio_verify(tmp_path: Path) -> None:
    ram = RamDisk(SIZE, 512, BlockFlag.TRIM_SUPPORT | BlockFlag.FUA_SUPPORT)
    with kernel_nbd(ram, tmp_path, "nbd1") as (dev, server):
        report = check_block_device(dev, tmp_path)
    assert_checked(report, server)
    ram.unbind()


def test_kernel_nbd_on_virtio_blk_over_the_model_holds_ext4_and_fio_verify(tmp_path: Path) -> None:
    from hwsim.integration.block_targets import open_model

    image = tmp_path / "disk.img"
    with open(image, "wb") as f:
        f.truncate(SIZE)
    with open_model(image) as blk, kernel_nbd(blk, tmp_path, "nbd2") as (dev, server):
        report = check_block_device(dev, tmp_path)
    assert_checked(report, server)
