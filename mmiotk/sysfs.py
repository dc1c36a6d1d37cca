"""Writes to sysfs with a deadline, and binding a PCI function to a kernel driver by name.

A sysfs write can block in the kernel for as long as the kernel likes: unbinding vfio-pci waits until every
file and mapping of the device is gone, for ever if one leaks. So every write here runs in a helper thread
and the caller waits at most `timeout` seconds; past that, `SysfsTimeoutError` names the file, the value and
what usually holds it up (the thread stays blocked in the kernel, daemonic, until the kernel lets go).

Binding goes through `driver_override` then `drivers_probe` (Linux Documentation/ABI/testing/sysfs-bus-pci),
so exactly the function named gets the driver; `new_id` would bind every function with that id.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from .errors import MmioError

SYSFS_TIMEOUT = 10.0  # seconds a bind, unbind or probe write may take (a TCG guest takes ~0.3 s)


class SysfsError(MmioError):
    """A sysfs write failed; the message names the file, the value and the kernel's reason."""


class SysfsTimeoutError(SysfsError, TimeoutError):
    """A sysfs write did not return within its deadline: the kernel is waiting for something."""


def sysfs_write(path: str | os.PathLike[str], value: str, *, timeout: float = SYSFS_TIMEOUT,
                why: str = "") -> None:
    """Write `value` to the sysfs attribute `path`, waiting at most `timeout` s for the kernel."""
    failure: list[OSError] = []

    def write() -> None:
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as exc:
            failure.append(exc)

    worker = threading.Thread(target=write, name=f"sysfs write {path}", daemon=True)
    worker.start()
    worker.join(timeout)
    hint = f" ({why})" if why else ""
    if worker.is_alive():
        raise SysfsTimeoutError(f"writing {value.strip()!r} to {path} did not return within {timeout:g} s{hint}: "
                                "the kernel is waiting, usually for a file or mapping of the device that is "
                                "still open (close it; the write completes once it is gone)")
    if failure:
        exc = failure[0]
        raise SysfsError(f"writing {value.strip()!r} to {path} failed: {exc.strerror} (errno {exc.errno}){hint}")


class PciDrivers:
    """The kernel's PCI drivers under `sysfs_root`/bus/pci, by function address (0000:00:04.0)."""

    def __init__(self, sysfs_root: str | os.PathLike[str] = "/sys", *, timeout: float = SYSFS_TIMEOUT) -> None:
        self.bus = Path(sysfs_root) / "bus" / "pci"
        self.timeout = timeout

    def function(self, address: str) -> Path:
        return self.bus / "devices" / address

    def driver_of(self, address: str) -> str | None:
        """The kernel driver bound to `address`, or None."""
        try:
            return os.path.basename(os.readlink(self.function(address) / "driver"))
        except OSError:
            return None

    def loaded(self, driver: str) -> bool:
        return (self.bus / "drivers" / driver).is_dir()

    def unbind(self, address: str) -> str | None:
        """Unbind whatever kernel driver holds `address` (bounded); returns its name, or None if there was none."""
        driver = self.driver_of(address)
        if driver is not None:
            sysfs_write(self.bus / "drivers" / driver / "unbind", address, timeout=self.timeout,
                        why=f"unbinding {driver} from {address}")
        return driver

    def bind(self, address: str, driver: str) -> None:
        """Bind kernel driver `driver` (already loaded) to `address` alone, unbinding any other first."""
        if self.driver_of(address) == driver:
            return
        if not self.loaded(driver):
            raise SysfsError(f"PCI {address}: kernel driver {driver} is not loaded ({self.bus / 'drivers'} has no "
                             f"{driver}; modprobe {driver})")
        self.unbind(address)
        sysfs_write(self.function(address) / "driver_override", driver, timeout=self.timeout,
                    why=f"overriding the driver of {address}")
        sysfs_write(self.bus / "drivers_probe", address, timeout=self.timeout, why=f"probing {driver} for {address}")
        bound = self.driver_of(address)
        if bound != driver:
            raise SysfsError(f"PCI {address}: {driver} did not bind (bound now: {bound or 'nothing'}; see dmesg)")

    def release(self, address: str, *, reprobe: bool = True) -> str | None:
        """Unbind the driver, clear the override and (with `reprobe`) let the kernel pick the function's own
        driver again; returns the driver bound afterwards."""
        self.unbind(address)
        sysfs_write(self.function(address) / "driver_override", "\n", timeout=self.timeout,
                    why=f"clearing the driver override of {address}")
        if reprobe:
            sysfs_write(self.bus / "drivers_probe", address, timeout=self.timeout,
                        why=f"probing the kernel's own driver for {address}")
        return self.driver_of(address)
