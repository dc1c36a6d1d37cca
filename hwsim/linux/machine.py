"""Booting a guest: one QEMU machine, the host root shared read-only, one command run inside, power-off.

`Machine` describes the virtual machine (board, memory, extra devices, kernel command line); `run_in_guest`
boots it with the cached kernel and initramfs, runs a shell command in the host root (chrooted, so the
host's .venv Python works unchanged) and returns a `GuestRun` with the exit status and the console log.
The command's files go to a writable `share` directory, mounted in the guest at the same path.

Every wait has a deadline: a boot that prints nothing from init within `boot_timeout` is killed (by PID)
and retried once (about one boot in 35 hangs silently under TCG); a command that outlives `timeout` is
killed and raises GuestTimeoutError with the console tail.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import GuestBootError, GuestTimeoutError, LinuxGuestError
from .initramfs import BOOT_MARKER, build_initramfs
from .kernel import Kernel, cache_dir, fetch_kernel
from .service import HostService, RunningService

QEMU = "qemu-system-x86_64"
PROJECT_ROOT = Path(__file__).resolve().parents[2]  # the checkout the guest runs the tests from
KVM_PVM = Path("/sys/module/kvm_pvm")


def pick_accel() -> str:
    """'kvm' where it runs stock kernels, else 'tcg'; $MMIOTK_LINUX_ACCEL overrides.

    /dev/kvm is not enough: on these machines it is kvm_pvm, which runs only PVM-aware guests (a Debian
    kernel hangs at its first C code under it).
    """
    forced = os.environ.get("MMIOTK_LINUX_ACCEL")
    if forced:
        if forced not in ("kvm", "tcg"):
            raise LinuxGuestError(f"MMIOTK_LINUX_ACCEL must be 'kvm' or 'tcg', got {forced!r}")
        return forced
    if KVM_PVM.exists() or not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "tcg"
    if Path("/sys/module/kvm_intel").exists() or Path("/sys/module/kvm_amd").exists():
        return "kvm"
    return "tcg"


@dataclass(frozen=True)
class GuestDisk:
    """A raw disk file in the run's share behind one virtio-blk device of the machine. The guest finds the
    file at the same path (`hwsim.linux.guest.guest_disk(name)`), so a test can fill it before binding a
    driver to the device and read it back after: QEMU reads through the host's page cache
    (cache=writethrough), and the share is mounted without a guest cache.

    `device` is the QEMU device and its properties (`virtio-blk-pci,addr=10.0`); `window` = (offset, size)
    makes the device that part of the file (the raw driver's offset/size)."""

    name: str
    size: int
    device: str
    readonly: bool = False
    window: tuple[int, int] | None = None

    def file(self, share: Path) -> Path:
        return share / f"disk-{self.name}.img"

    def qemu_args(self, share: Path) -> list[str]:
        drive = f"if=none,id=disk-{self.name},file={self.file(share)},format=raw,cache=writethrough"
        if self.readonly:
            drive += ",readonly=on"
        if self.window is not None:
            drive += f",offset={self.window[0]},size={self.window[1]}"
        return ["-drive", drive, "-device", f"{self.device},drive=disk-{self.name}"]


@dataclass(frozen=True)
class Machine:
    """One virtual machine configuration; hashable, so tests needing the same machine share one boot."""

    name: str
    board: str = "q35"
    memory_mib: int = 1024
    cpus: int = 1
    devices: tuple[str, ...] = ()  # extra QEMU arguments: -device, -object, ...
    cmdline: tuple[str, ...] = ()  # extra kernel parameters
    boot_timeout: float = 60.0
    services: tuple[HostService, ...] = ()  # started on the host before each boot, stopped after it
    disks: tuple[GuestDisk, ...] = ()  # zeroed raw files in the share, each behind its device

    def create_disks(self, share: Path) -> None:
        for disk in self.disks:
            with open(disk.file(share), "wb") as f:
                f.truncate(disk.size)

    def qemu_args(self, kernel: Kernel, initramfs: Path, share: Path, console: Path, accel: str,
                  project: Path = PROJECT_ROOT, service_args: tuple[str, ...] = ()) -> list[str]:
        # no_timer_check: the kernel's IO-APIC timer check fails now and then under loaded TCG (a panic)
        append = ["console=ttyS0", "panic=-1", "quiet", "no_timer_check", "rdinit=/init", f"mmiotk.share={share}",
                  f"mmiotk.project={project}", *self.cmdline]
        return [
            QEMU, "-M", self.board, "-accel", accel, "-cpu", "host" if accel == "kvm" else "max",
            "-m", f"{self.memory_mib}M", "-smp", str(self.cpus),
            "-nodefaults", "-display", "none", "-no-reboot", "-monitor", "none",
            "-serial", f"file:{console}",
            "-kernel", str(kernel.vmlinux), "-initrd", str(initramfs), "-append", " ".join(append),
            *self.devices,  # first: an IOMMU must exist before the devices behind it
            *service_args,
            *(arg for disk in self.disks for arg in disk.qemu_args(share)),
            "-fsdev", "local,id=hostroot,path=/,security_model=none,readonly=on,multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=hostroot,mount_tag=root",
            "-fsdev", f"local,id=share,path={share},security_model=none,multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=share,mount_tag=share",
            # The project (and its .venv) once more, mounted over the guest's own /tmp and /run when it
            # lives there, as a clean clone in a temporary directory does.
            "-fsdev", f"local,id=project,path={project},security_model=none,readonly=on,multidevs=remap",
            "-device", "virtio-9p-pci,fsdev=project,mount_tag=project",
        ]


@dataclass
class GuestRun:
    """What one boot produced."""

    machine: Machine
    exit_status: int
    console: str
    boot_seconds: float  # launch to init's marker
    total_seconds: float  # launch to QEMU's exit
    attempts: int = 1
    accel: str = "tcg"
    command: list[str] = field(default_factory=list)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _tail(text: str, lines: int = 40) -> str:
    return "\n".join(text.splitlines()[-lines:])


def run_in_guest(machine: Machine, command: str, share: Path, *, timeout: float = 600.0,
                 env: dict[str, str] | None = None, kernel: Kernel | None = None,
                 cwd: str | os.PathLike[str] | None = None) -> GuestRun:
    """Boot `machine`, run `command` (a shell command line) in the host root with `share` writable, in `cwd`
    (default: the current directory, which the guest sees at the same path)."""
    share = Path(share).resolve()
    share.mkdir(parents=True, exist_ok=True)
    kernel = kernel or fetch_kernel()
    initramfs = build_initramfs(kernel, cache_dir())
    machine.create_disks(share)
    exports = {"MMIOTK_LINUX_GUEST": "1", "MMIOTK_LINUX_MODULES": str(kernel.root), "HOME": "/tmp",
               "MMIOTK_LINUX_SHARE": str(share),
               "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", **(env or {})}
    script = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in exports.items())
    script += f"cd {shlex.quote(os.fspath(cwd or os.getcwd()))}\n{command}\n"
    (share / "run.sh").write_text(script)
    accel = pick_accel()
    for attempt in (1, 2):
        (share / "exit-status").unlink(missing_ok=True)
        console = share / f"console-{attempt}.log"
        console.write_bytes(b"")
        services: list[RunningService] = []
        try:
            for service in machine.services:
                services.append(service.start(share, attempt))
        except BaseException:
            _stop(services)
            raise
        service_args = tuple(arg for running in services for arg in running.qemu_args)
        args = [*machine.qemu_args(kernel, initramfs, share, console, accel, service_args=service_args),
                "-pidfile", str(share / f"qemu-{attempt}.pid")]
        stderr_path = share / f"qemu-{attempt}.stderr"
        started = time.monotonic()
        try:
            with open(stderr_path, "wb") as stderr:
                proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=stderr, stderr=stderr)
        except BaseException:
            _stop(services)
            raise
        try:
            boot = _await_boot(proc, console, started, machine.boot_timeout)
            if boot is None:
                if proc.poll() is not None and attempt == 2:
                    raise LinuxGuestError(f"guest {machine.name!r}: QEMU exited {proc.returncode} before the "
                                          f"guest booted: {stderr_path.read_text(errors='replace')[-2000:]}\n"
                                          f"console:\n{_tail(console.read_text(errors='replace'))}")
                _kill(proc)
                if attempt == 2:
                    raise GuestBootError(f"guest {machine.name!r}: no output from init within "
                                         f"{machine.boot_timeout:g} s, twice; console:\n"
                                         f"{_tail(console.read_text(errors='replace'))}")
                continue
            try:
                proc.wait(timeout=max(1.0, timeout - (time.monotonic() - started)))
            except subprocess.TimeoutExpired:
                _kill(proc)
                raise GuestTimeoutError(f"guest {machine.name!r}: {command!r} still running after {timeout:g} s; "
                                        f"QEMU killed; console:\n{_tail(console.read_text(errors='replace'))}"
                                        ) from None
            total = time.monotonic() - started
            text = console.read_text(errors="replace")
            status_file = share / "exit-status"
            if not status_file.exists():
                raise LinuxGuestError(f"guest {machine.name!r}: the guest stopped without finishing the command "
                                      f"(QEMU exit {proc.returncode}); console:\n{_tail(text)}")
            return GuestRun(machine, int(status_file.read_text().strip() or -1), text, boot, total, attempt, accel,
                            args)
        finally:
            _kill(proc)
            _stop(services)
    raise AssertionError("unreachable")


def _stop(services: list[RunningService]) -> None:
    for running in reversed(services):
        running.stop()


def _await_boot(proc: subprocess.Popen[bytes], console: Path, started: float, limit: float) -> float | None:
    """Seconds from launch until init printed its marker; None if QEMU exited or `limit` passed first."""
    marker = BOOT_MARKER.encode()
    while time.monotonic() - started < limit:
        if marker in console.read_bytes():
            return time.monotonic() - started
        if proc.poll() is not None:
            return None
        time.sleep(0.05)
    return None
