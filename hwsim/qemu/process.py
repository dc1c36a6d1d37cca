"""Launching QEMU for qtest, and taking it down again on every exit path.

`QemuOptions` is the validated description of one machine; `build_command` turns it into the command line
(see docs/qemu.md). `QemuProcess` owns everything a run creates — the process, the listening sockets, the
/dev/shm file that is guest RAM, a scratch disk image, a private temporary directory — and `cleanup()`
removes all of it: SIGTERM by PID, SIGKILL after a timeout, then files. It holds no reference to the space
that uses it, so a `weakref.finalize` can run it when that space is garbage or the interpreter exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mmiotk.errors import MmioValueError

from .errors import QemuDiedError, QemuError

MiB = 1 << 20
CACHE_MODES = ("writeback", "writethrough", "none", "directsync", "unsafe")
TRANSPORTS = ("mmio", "pci")
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class QemuOptions:
    """One `-M virt` machine with one virtio-blk device. Checked when made; bad values raise MmioValueError.

`transport="mmio"` puts it in a virtio-mmio slot (`virtio-blk-device`); `transport="pci"` makes it a modern-only
`virtio-blk-pci` (`disable-legacy=on`) on the machine's PCIe host bridge, with `highmem=off` so the ECAM
config space sits below 4 GiB (at 0x3f000000) instead of at 256 GiB.

    `image=None` makes a sparse scratch raw image of `disk_size` bytes that lives as long as the target.
    `config_wce` sets virtio-blk's `config-wce` property (VIRTIO_BLK_F_CONFIG_WCE offered or not); `cache`
    is the `-drive cache=` mode, which is what the device reports as its initial write-cache state:
    writethrough by default, as on every target (the ACRN back end the controller is after makes it the
    default); `cache=None` leaves QEMU's own default (writeback). `image_range` = (offset, size) in bytes
    makes the disk that part of the image (the raw driver's offset/size). `physical_block_size` is
    virtio-blk's topology (physical_block_exp) when it differs from the logical block size.
    `reply_spin` is how long (seconds) the qtest client busy-polls its socket for a reply before it sleeps
    in `recv`: a polling driver on its own CPU then sees each register access complete without the wake-up
    of a sleeping thread (on the 2-CPU VM, QD1 reads went from ~23k to ~29k req/s); 0, the default, sleeps
    at once, which is kinder to a machine where QEMU shares the driver's CPU.
    """

    image: str | os.PathLike[str] | None = None
    image_format: str = "raw"
    disk_size: int = 16 * MiB
    readonly: bool = False
    ram_size: int = 128 * MiB
    qemu_binary: str = "qemu-system-aarch64"
    modern: bool = True
    logical_block_size: int | None = None
    physical_block_size: int | None = None
    image_range: tuple[int, int] | None = None
    cache: str | None = "writethrough"
    config_wce: bool | None = None
    transport: str = "mmio"
    startup_timeout: float = 30.0
    command_timeout: float = 10.0
    reply_spin: float = 0.0
    term_timeout: float = 5.0
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.image is not None:
            path = Path(self.image)
            if not path.is_file():
                raise MmioValueError(f"QEMU disk image {str(path)!r} does not exist or is not a regular file")
        elif not isinstance(self.disk_size, int) or self.disk_size <= 0 or self.disk_size % 512:
            raise MmioValueError(f"disk_size must be a positive multiple of 512 bytes, got {self.disk_size!r}")
        if not self.image_format or not self.image_format.replace("-", "").isalnum():
            raise MmioValueError(f"image_format must be a QEMU format name such as 'raw', got "
                                 f"{self.image_format!r}")
        if not isinstance(self.ram_size, int) or self.ram_size < 2 * MiB or self.ram_size % MiB:
            raise MmioValueError(f"ram_size must be a whole number of MiB, at least 2 MiB, got {self.ram_size!r}")
        if shutil.which(self.qemu_binary) is None:
            raise MmioValueError(f"QEMU binary {self.qemu_binary!r} not found on PATH "
                                 "(Debian: apt-get install qemu-system-arm)")
        lbs = self.logical_block_size
        if lbs is not None and (not isinstance(lbs, int) or lbs < 512 or lbs > 32768 or lbs & (lbs - 1)):
            raise MmioValueError(f"logical_block_size must be a power of two in 512..32768, got {lbs!r}")
        if self.transport not in TRANSPORTS:
            raise MmioValueError(f"transport must be one of {', '.join(TRANSPORTS)}, got {self.transport!r}")
        pbs = self.physical_block_size
        if pbs is not None and (not isinstance(pbs, int) or pbs < (lbs or 512) or pbs > 32768 or pbs & (pbs - 1)):
            raise MmioValueError(f"physical_block_size must be a power of two from the logical block size to "
                                 f"32768, got {pbs!r}")
        if self.image_range is not None:
            start, length = self.image_range
            if self.image_format != "raw" or start < 0 or start % 512 or length <= 0 or length % 512:
                raise MmioValueError(f"image_range {self.image_range!r}: needs a raw image and a non-empty, "
                                     "512-byte aligned (offset, size)")
        if self.cache is not None and self.cache not in CACHE_MODES:
            raise MmioValueError(f"cache must be one of {', '.join(CACHE_MODES)}, got {self.cache!r}")
        for label in ("startup_timeout", "command_timeout", "term_timeout"):
            value = getattr(self, label)
            if not isinstance(value, (int, float)) or value <= 0:
                raise MmioValueError(f"{label} must be > 0 seconds, got {value!r}")
        spin = self.reply_spin
        if isinstance(spin, bool) or not isinstance(spin, (int, float)) or not 0 <= spin <= self.command_timeout:
            raise MmioValueError(f"reply_spin must be 0..command_timeout ({self.command_timeout}) seconds, "
                                 f"got {spin!r}")
        if not all(isinstance(arg, str) for arg in self.extra_args):
            raise MmioValueError(f"extra_args must be strings, got {self.extra_args!r}")


def _opt(value: str | os.PathLike[str]) -> str:
    """A value inside a QEMU `key=value,...` option: commas are doubled."""
    return os.fspath(value).replace(",", ",,")


def build_command(options: QemuOptions, *, image: str, ram_path: str, qtest_sock: str,
                  qmp_sock: str) -> list[str]:
    """The command line for `options` (see docs/qemu.md for what each part is for)."""
    ram = f"{options.ram_size // MiB}M"
    drive = f"if=none,id=disk0,file={_opt(image)},format={options.image_format}"
    if options.readonly:
        drive += ",readonly=on"
    if options.cache is not None:
        drive += f",cache={options.cache}"
    if options.image_range is not None:
        drive += f",offset={options.image_range[0]},size={options.image_range[1]}"
    pci = options.transport == "pci"
    device = "virtio-blk-pci,drive=disk0,disable-legacy=on" if pci else "virtio-blk-device,drive=disk0"
    if options.logical_block_size is not None:
        size = options.logical_block_size
        device += f",logical_block_size={size},physical_block_size={options.physical_block_size or size}"
    elif options.physical_block_size is not None:
        device += f",physical_block_size={options.physical_block_size}"
    if options.config_wce is not None:
        device += f",config-wce={'on' if options.config_wce else 'off'}"
    return [
        options.qemu_binary,
        "-M", "virt,memory-backend=guest-ram" + (",highmem=off" if pci else ""), "-cpu", "cortex-a57", "-m", ram,
        "-accel", "tcg", "-S", "-display", "none", "-nodefaults", "-no-user-config",
        "-object", f"memory-backend-file,id=guest-ram,size={ram},mem-path={_opt(ram_path)},share=on",
        "-drive", drive, "-device", device,
        "-global", f"virtio-mmio.force-legacy={'false' if options.modern else 'true'}",
        "-qtest", f"unix:{qtest_sock}", "-qtest-log", "/dev/null",
        "-qmp", f"unix:{qmp_sock}",
        *options.extra_args,
    ]


_prctl: Callable[..., int] | None
try:  # looked up here, not in the forked child, where loading libraries is unsafe
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _die_with_parent() -> None:
    """Run in the child before exec: QEMU gets SIGKILL if the thread that started it dies."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


class QemuProcess:
    """The QEMU process of one target and every file it needs, with one idempotent `cleanup()`."""

    def __init__(self, options: QemuOptions) -> None:
        self.options = options
        self.proc: subprocess.Popen[bytes] | None = None
        self.tmpdir = tempfile.mkdtemp(prefix="mmiotk-qemu-")
        self.ram_path = os.path.join("/dev/shm", os.path.basename(self.tmpdir) + ".ram")
        self.qtest_path = os.path.join(self.tmpdir, "qtest.sock")
        self.qmp_path = os.path.join(self.tmpdir, "qmp.sock")
        self.scratch_image: str | None = None
        self._listeners: list[socket.socket] = []
        # an unlinked file, not a pipe: QEMU never blocks on a full pipe, and nothing is left behind
        self._stderr = tempfile.TemporaryFile(prefix="mmiotk-qemu-stderr-")  # noqa: SIM115
        self.command: list[str] = []

    def _listen(self, path: str) -> socket.socket:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listeners.append(sock)
        sock.bind(path)
        sock.listen(1)
        return sock

    def start(self) -> tuple[socket.socket, socket.socket]:
        """Create the scratch image if any, listen, launch; the accepted (qtest, qmp) connections.

        The caller creates the RAM file at `ram_path` first. Raises QemuDiedError with QEMU's stderr tail
        when QEMU exits before connecting, QemuError after `startup_timeout`.
        """
        image = self.options.image
        if image is None:
            self.scratch_image = os.path.join(self.tmpdir, "scratch.img")
            with open(self.scratch_image, "wb") as f:
                f.truncate(self.options.disk_size)
            image = self.scratch_image
        qtest_listener = self._listen(self.qtest_path)
        qmp_listener = self._listen(self.qmp_path)
        self.command = build_command(self.options, image=os.fspath(image), ram_path=self.ram_path,
                                     qtest_sock=self.qtest_path, qmp_sock=self.qmp_path)
        self.proc = subprocess.Popen(self.command, stdin=subprocess.DEVNULL, stdout=self._stderr,
                                     stderr=self._stderr, start_new_session=True,
                                     preexec_fn=_die_with_parent)
        deadline = time.monotonic() + self.options.startup_timeout
        qtest = self._accept(qtest_listener, deadline, "qtest")
        qmp = self._accept(qmp_listener, deadline, "QMP")
        for sock in self._listeners:
            sock.close()
        self._listeners.clear()
        for path in (self.qtest_path, self.qmp_path):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        return qtest, qmp

    def _accept(self, listener: socket.socket, deadline: float, what: str) -> socket.socket:
        assert self.proc is not None
        while True:
            if self.proc.poll() is not None:
                raise QemuDiedError(f"QEMU exited before connecting its {what} socket: {self.describe()}")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QemuError(f"QEMU did not connect its {what} socket within "
                                f"{self.options.startup_timeout} s: {self.describe()}")
            listener.settimeout(min(remaining, 0.05))
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            conn.setblocking(True)
            return conn

    def stderr_tail(self, limit: int = 2000) -> str:
        """The last `limit` characters QEMU wrote to stdout/stderr."""
        try:
            size = self._stderr.seek(0, os.SEEK_END)
            self._stderr.seek(max(0, size - limit))
            return self._stderr.read().decode(errors="replace").strip()
        except (OSError, ValueError):
            return ""

    def describe(self, settle: float = 0.0) -> str:
        """Exit status (if any) and stderr tail, for error messages. `settle` seconds are given to a process
        whose socket just closed to finish exiting, so the status is known."""
        parts = []
        if self.proc is not None:
            code = self.proc.poll()
            if code is None and settle > 0:
                try:
                    code = self.proc.wait(timeout=settle)
                except subprocess.TimeoutExpired:
                    code = None
            parts.append(f"pid {self.proc.pid} " + ("still running" if code is None else f"exit status {code}"))
        tail = self.stderr_tail()
        parts.append(f"stderr: {tail}" if tail else "no stderr output")
        return "; ".join(parts)

    def unlink_files(self) -> None:
        """Remove the RAM file, scratch image and temporary directory (QEMU keeps its open handles)."""
        for path in (self.ram_path, self.scratch_image):
            if path is not None:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def cleanup(self) -> None:
        """Stop QEMU (SIGTERM, SIGKILL after `term_timeout`) and remove every file. Idempotent."""
        for sock in self._listeners:
            with contextlib.suppress(OSError):
                sock.close()
        self._listeners.clear()
        proc = self.proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.options.term_timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                proc.wait(timeout=self.options.term_timeout)
        self.unlink_files()
        with contextlib.suppress(OSError):
            self._stderr.close()
