"""What proves a block device under the guest's kernel works: a file system on it and fio's verify job.

`check_block_device(device, workdir)` runs, on a device node such as /dev/nbd0 or /dev/ublkb0: fio writing
random blocks with checksums at queue depth 16 and reading them back (`fio_verify`), then mkfs.ext4, fsck,
mount, files written, unmount, mount again, the files read back and compared, unmount, fsck again
(`check_filesystem`); the page cache is dropped before the second mount, so the read-back comes from the
device. Every step has a timeout and raises `LinuxGuestError` with the tool's output; the
report says what each step found. It runs inside the guest (root, the host's tools on the shared root).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import LinuxGuestError
from .guest import load_module

STEP_TIMEOUT = 300.0  # seconds for one tool run (TCG is slow; a hang still ends)


@dataclass
class FioResult:
    """What fio's verify job did: bytes written and verified, I/O errors, the time it took."""

    written: int
    read: int
    errors: int
    seconds: float


@dataclass
class FilesystemResult:
    """The files written before the remount and found again after it, by name and SHA-256."""

    files: dict[str, str] = field(default_factory=dict)
    fsck_before: str = ""
    fsck_after: str = ""
    seconds: float = 0.0


@dataclass
class BlockCheckReport:
    device: str
    fio: FioResult
    filesystem: FilesystemResult


def run(*cmd: str, timeout: float = STEP_TIMEOUT) -> str:
    """Run a tool; its stdout, or LinuxGuestError naming the command, its status and output."""
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise LinuxGuestError(f"{' '.join(cmd)} did not finish within {timeout} s: {exc.stdout!r}") from None
    if done.returncode != 0:
        raise LinuxGuestError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def drop_caches(device: str) -> None:
    """Forget the device's cached blocks, so what is read next comes from the device itself."""
    run("blockdev", "--flushbufs", device)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def fio_verify(device: str, *, size: str = "4M", block_size: str = "4k", iodepth: int = 16,
               timeout: float = STEP_TIMEOUT) -> FioResult:
    """fio's verify job on the raw device: random writes with crc32c headers, then every block read back and
    checked (direct I/O, libaio). Destroys what the device held."""
    started = time.monotonic()
    out = run("fio", "--name=verify", f"--filename={device}", "--rw=randwrite", f"--bs={block_size}",
              f"--size={size}", "--direct=1", "--ioengine=libaio", f"--iodepth={iodepth}", "--verify=crc32c",
              "--do_verify=1", "--verify_fatal=1", "--output-format=json", timeout=timeout)
    job = _fio_job(out)
    result = FioResult(written=int(job["write"]["io_bytes"]), read=int(job["read"]["io_bytes"]),
                       errors=int(job.get("error", 0)), seconds=time.monotonic() - started)
    if result.errors or result.written == 0 or result.read < result.written:
        raise LinuxGuestError(f"fio verify on {device}: {result}")
    return result


def _fio_job(out: str) -> dict[str, Any]:
    start = out.find("{")  # fio may print notes before its JSON
    try:
        job: dict[str, Any] = json.loads(out[start:])["jobs"][0]
    except (ValueError, KeyError, IndexError):
        raise LinuxGuestError(f"fio printed no JSON result:\n{out}") from None
    return job


def check_filesystem(device: str, workdir: Path, *, files: int = 8, file_size: int = 256 << 10) -> FilesystemResult:
    """mkfs.ext4, fsck, mount, write `files` random files, unmount, mount again, compare them, unmount,
    fsck. Raises LinuxGuestError on any failure or difference."""
    started = time.monotonic()
    result = FilesystemResult()
    mnt = workdir / "mnt"
    mnt.mkdir(parents=True, exist_ok=True)
    if "\text4\n" not in Path("/proc/filesystems").read_text():
        load_module("ext4")  # a module in Debian's kernel
    run("mkfs.ext4", "-F", "-q", device)
    result.fsck_before = run("e2fsck", "-f", "-n", device)
    run("mount", "-t", "ext4", device, str(mnt))
    try:
        for i in range(files):
            data = os.urandom(file_size)
            (mnt / f"file{i}.bin").write_bytes(data)
            result.files[f"file{i}.bin"] = hashlib.sha256(data).hexdigest()
        os.sync()
    finally:
        run("umount", str(mnt))
    drop_caches(device)
    run("mount", "-t", "ext4", device, str(mnt))
    try:
        found = {name: hashlib.sha256((mnt / name).read_bytes()).hexdigest() for name in result.files}
    finally:
        run("umount", str(mnt))
    if found != result.files:
        bad = sorted(name for name in result.files if found.get(name) != result.files[name])
        raise LinuxGuestError(f"{device}: after the remount {bad} differ from what was written")
    result.fsck_after = run("e2fsck", "-f", "-n", device)
    result.seconds = time.monotonic() - started
    return result


def check_block_device(device: str, workdir: Path, *, fio_size: str = "4M") -> BlockCheckReport:
    """fio verify, then the file system round trip, on `device`."""
    fio = fio_verify(device, size=fio_size)
    return BlockCheckReport(device, fio, check_filesystem(device, workdir))
