"""Linux's own virtio_blk driver on our virtio-blk device, through QEMU's vhost-user-blk-pci and our vhost-user
back end on the host: the behavioural model, and the RTL under Verilator. One boot per back end; the tests
of a boot run in this order, the back end's death last."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from hwsim.linux.guest import load_module
from hwsim.vhost_user.machines import DISK_SIZE, VHOST_MODEL, VHOST_RTL

pytestmark = pytest.mark.parametrize("backend", [
    pytest.param("model", marks=pytest.mark.linux_guest(VHOST_MODEL), id="model"),
    pytest.param("rtl", marks=pytest.mark.linux_guest(VHOST_RTL), id="rtl"),
])
DISK = "/dev/vda"
SERIALS = {"model": "mmiotk-virtio-blk", "rtl": "mmiotk-vblk-rtl-0001"}


def sh(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{args} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.fixture
def vda(backend: str) -> str:
    """/dev/vda once virtio_blk has probed our device (the module is loaded on first use)."""
    load_module("virtio_blk")
    deadline = time.monotonic() + 30
    while not Path(DISK).exists():
        assert time.monotonic() < deadline, "virtio_blk gave no /dev/vda within 30 s"
        time.sleep(0.1)
    return DISK


@pytest.fixture
def mountpoint(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "mnt"
    where.mkdir()
    yield where
    subprocess.run(["umount", str(where)], capture_output=True, check=False)


def test_virtio_blk_binds_and_reads_our_config(backend: str, vda: str) -> None:
    block = Path("/sys/block/vda")
    assert os.path.basename(os.readlink(block / "device" / "driver")) == "virtio_blk"
    assert int((block / "size").read_text()) * 512 == DISK_SIZE
    assert (block / "serial").read_text().strip() == SERIALS[backend]
    # FLUSH and CONFIG_WCE offered, writethrough the device's default: Linux reads the cache mode from config
    assert (block / "queue" / "write_cache").read_text().strip() == "write through"


def test_mkfs_fsck_mount_and_data_survive_a_remount(backend: str, vda: str, mountpoint: Path) -> None:
    load_module("ext4")
    sh("mkfs.ext4", "-q", "-F", "-E", "nodiscard", vda)
    sh("fsck.ext4", "-f", "-n", vda)
    sh("mount", "-t", "ext4", vda, str(mountpoint))
    payload = os.urandom(1 << 20)
    (mountpoint / "payload").write_bytes(payload)
    (mountpoint / "dir").mkdir()
    (mountpoint / "dir" / "small").write_text("written through Linux's virtio_blk\n")
    sh("umount", str(mountpoint))
    sh("fsck.ext4", "-f", "-n", vda)
    with open(vda, "rb") as dev:     # drop the guest's page cache: the remount reads the device again
        os.posix_fadvise(dev.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")
    sh("mount", "-t", "ext4", "-o", "ro", vda, str(mountpoint))
    assert hashlib.sha256((mountpoint / "payload").read_bytes()).digest() == hashlib.sha256(payload).digest()
    assert (mountpoint / "dir" / "small").read_text() == "written through Linux's virtio_blk\n"


def test_fio_verify(backend: str, vda: str, tmp_path: Path) -> None:
    size = "8M" if backend == "model" else "2M"
    done = sh("fio", "--name=verify", f"--filename={vda}", "--direct=1", "--ioengine=libaio", "--iodepth=8",
              "--rw=randwrite", "--bs=4k", f"--size={size}", "--offset=16M", "--verify=crc32c",
              "--verify_fatal=1", "--do_verify=1", "--output-format=terse", "--terse-version=3", timeout=600)
    fields = done.stdout.strip().splitlines()[-1].split(";")
    assert fields[4] == "0", f"fio reports error {fields[4]}"


def test_backend_killed_leaves_io_errors_not_a_hang(backend: str, vda: str) -> None:
    share = Path(os.environ["MMIOTK_LINUX_SHARE"])
    (share / "vblk.kill").write_text("")
    deadline = time.monotonic() + 60
    while not (share / "vblk.killed").exists():
        assert time.monotonic() < deadline, "the host did not kill the back end within 60 s"
        time.sleep(0.1)
    started = time.monotonic()
    read = subprocess.run(["dd", f"if={vda}", "of=/dev/null", "bs=4k", "count=1", "skip=1000", "iflag=direct"],
                          capture_output=True, text=True, timeout=120, check=False)
    write = subprocess.run(["dd", "if=/dev/zero", f"of={vda}", "bs=4k", "count=1", "seek=1000", "oflag=direct"],
                           capture_output=True, text=True, timeout=120, check=False)
    assert read.returncode != 0 and "Input/output error" in read.stderr, read.stderr
    assert write.returncode != 0 and "Input/output error" in write.stderr, write.stderr
    assert time.monotonic() - started < 60
