"""What the guest tests do to a block device the kernel sees (/dev/ublkbN, /dev/nbdN): a file system made,
checked, mounted, written, remounted and read back, and fio's verify job on the raw device."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from drivers.block.protocol import BlockDevice, BlockInfo, BlockOp, Completion


def run(*cmd: str, timeout: float = 300) -> str:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def ext4_round_trip(dev: str, mnt: Path) -> None:
    """mkfs.ext4, fsck, mount, write files, unmount, fsck, mount again and read them back."""
    run("mkfs.ext4", "-F", "-q", dev)
    run("e2fsck", "-f", "-n", dev)
    mnt.mkdir(exist_ok=True)
    files = {"big.bin": os.urandom(1 << 20), "small.txt": b"mmiotk\n" * 100, "sub/odd.bin": os.urandom(12345)}
    run("mount", "-t", "ext4", dev, str(mnt))
    try:
        for name, data in files.items():
            (mnt / name).parent.mkdir(exist_ok=True)
            (mnt / name).write_bytes(data)
        run("sync")
    finally:
        run("umount", str(mnt))
    run("blockdev", "--flushbufs", dev)  # nothing of the files left in the page cache
    run("e2fsck", "-f", "-n", dev)
    run("mount", "-t", "ext4", "-o", "ro", dev, str(mnt))
    try:
        for name, data in files.items():
            assert (mnt / name).read_bytes() == data, f"{name} read back differently after the remount"
    finally:
        run("umount", str(mnt))


def fio_verify(dev: str, size: str, iodepth: int = 16) -> dict:
    """fio writes `size` of the device in random 4 KiB blocks with crc32c headers, then reads and checks them."""
    out = run("fio", "--name=verify", f"--filename={dev}", "--rw=randwrite", "--bs=4k", f"--size={size}",
              "--ioengine=libaio", f"--iodepth={iodepth}", "--direct=1", "--verify=crc32c", "--do_verify=1",
              "--verify_fatal=1", "--output-format=json", timeout=600)
    job = json.loads(out[out.index("{"):])["jobs"][0]
    assert job["error"] == 0, job
    assert job["read"]["io_bytes"] > 0 and job["write"]["io_bytes"] > 0, job  # it wrote, then verified
    return job


class Counting(BlockDevice):
    """Passes every op through and counts them by command, so a test sees FLUSH and TRIM arrive."""

    def __init__(self, inner: BlockDevice) -> None:
        self.inner = inner
        self.counts: dict[str, int] = {}
        self.pool = getattr(inner, "pool", None)  # the DMA pool the server's buffers come from

    def query(self) -> BlockInfo:
        return self.inner.query()

    def queue(self, op: BlockOp, completion: Completion) -> None:
        self.counts[op.command.name] = self.counts.get(op.command.name, 0) + 1
        self.inner.queue(op, completion)

    @property
    def bytes_copied(self) -> int:
        """The driver's own bounce copies (virtio-blk counts them; a RAM disk has none)."""
        return int(getattr(self.inner, "bytes_copied", 0) or 0)
