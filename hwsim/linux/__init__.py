"""The Linux guest target: Debian's kernel booted under QEMU with the host's root shared read-only, so the
hardware backends (/dev/mem, UIO, PCI sysfs) meet a real kernel in tests. See docs/linux.md."""

from .errors import GuestBootError, GuestTimeoutError, LinuxGuestError
from .kernel import Kernel, cache_dir, fetch_kernel
from .machine import GuestDisk, GuestRun, Machine, pick_accel, run_in_guest

__all__ = ["GuestBootError", "GuestDisk", "GuestRun", "GuestTimeoutError", "Kernel", "LinuxGuestError", "Machine",
           "cache_dir", "fetch_kernel", "pick_accel", "run_in_guest"]
