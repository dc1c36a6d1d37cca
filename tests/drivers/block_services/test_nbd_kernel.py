"""The Linux kernel's own NBD client (`nbd-client`, /dev/nbdN) on the project's NBD export, inside the guest:
a file system and fio's verify job on a RAM-disk and on virtio-blk over the behavioural model (our driver,
under the kernel's block layer, all the way down). One boot with the other `BACKENDS` guest tests."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from drivers.block.protocol import BlockFlag, Extent, ExtentFlag
from drivers.block.ramdisk import RamDisk
from drivers.block_services.nbd import NbdServer
from hwsim.integration.kernel_nbd import kernel_nbd
from hwsim.linux.blockcheck import BlockCheckReport, check_block_device, run
from hwsim.linux.machines import BACKENDS

pytestmark = pytest.mark.linux_guest(BACKENDS)

MiB = 1 << 20
SIZE = 32 * MiB


def assert_checked(report: BlockCheckReport, server: NbdServer) -> None:
    assert report.fio.errors == 0 and report.fio.read >= report.fio.written == 4 * MiB
    assert len(report.filesystem.files) == 8
    used = re.search(r"(\d+)/\d+ files", report.filesystem.fsck_after)  # e2fsck exited 0: clean
    assert used is not None and int(used.group(1)) >= 11 + 8  # ext4's reserved inodes and the 8 files
    assert server.stats.errors == 0
    assert server.stats.bytes_written >= 4 * MiB + 8 * (256 << 10)  # it all went through the export
    assert server.stats.bytes_read >= 4 * MiB + 8 * (256 << 10)


def test_kernel_nbd_client_sees_the_exports_size_and_flags(tmp_path: Path) -> None:
    ram = RamDisk(SIZE, 512, BlockFlag.TRIM_SUPPORT | BlockFlag.FUA_SUPPORT)
    with kernel_nbd(ram, tmp_path, "nbd0") as nbd:
        assert nbd.size == SIZE
        assert int(Path("/sys/block/nbd0/queue/discard_max_bytes").read_text()) > 0  # TRIM offered
        assert Path("/sys/block/nbd0/queue/write_cache").read_text().strip() == "write back"  # FLUSH offered
        run("dd", "if=/dev/urandom", f"of={nbd.path}", "bs=64k", "count=4", "oflag=direct")
        assert ram.extents(0, 512)[0].flags == 0  # written through the kernel
        run("blkdiscard", "-o", "0", "-l", str(256 << 10), nbd.path)
        assert not ram.data[:256 << 10].any()
        assert ram.extents(0, 512) == [Extent(0, 512, ExtentFlag.HOLE | ExtentFlag.ZERO)]  # trimmed: a hole
    assert nbd.size == 0  # detached
    ram.unbind()


def test_kernel_nbd_on_a_ramdisk_holds_ext4_and_fio_verify(tmp_path: Path) -> None:
    ram = RamDisk(SIZE, 512, BlockFlag.TRIM_SUPPORT | BlockFlag.FUA_SUPPORT)
    with kernel_nbd(ram, tmp_path, "nbd1") as nbd:
        report = check_block_device(nbd.path, tmp_path)
    assert_checked(report, nbd.server)
    ram.unbind()


def test_kernel_nbd_on_virtio_blk_over_the_model_holds_ext4_and_fio_verify(tmp_path: Path) -> None:
    from hwsim.integration.block_targets import open_model

    image = tmp_path / "disk.img"
    with open(image, "wb") as f:
        f.truncate(SIZE)
    with open_model(image) as blk, kernel_nbd(blk, tmp_path, "nbd2") as nbd:
        report = check_block_device(nbd.path, tmp_path)
    assert_checked(report, nbd.server)
