"""What a test running inside the guest uses: kernel modules, PCI devices found by id, binding drivers.

Modules come from the kernel package unpacked in the host's cache, which the guest sees through the shared
root ($MMIOTK_LINUX_MODULES); the host's own kmod loads them (`modprobe -d`). Binding goes through
`driver_override`, so exactly the device named gets the driver, and `unbind` undoes it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from mmiotk.sysfs import PciDrivers, SysfsError

from .errors import LinuxGuestError

PCI_DEVICES = Path("/sys/bus/pci/devices")


def in_guest() -> bool:
    return bool(os.environ.get("MMIOTK_LINUX_GUEST"))


def load_module(name: str) -> None:
    """modprobe `name` (and what it needs) from the guest kernel's own module tree."""
    root = os.environ.get("MMIOTK_LINUX_MODULES")
    if not root:
        raise LinuxGuestError("MMIOTK_LINUX_MODULES is unset: load_module runs only inside a guest")
    done = subprocess.run(["modprobe", "-d", root, name], capture_output=True, text=True, timeout=60, check=False)
    if done.returncode != 0:
        raise LinuxGuestError(f"modprobe {name} failed ({done.returncode}): {done.stderr.strip()}")


def pci_find(vendor: int, device: int) -> list[str]:
    """Addresses (0000:00:04.0) of every PCI function with this vendor and device id."""
    found = []
    for entry in sorted(PCI_DEVICES.iterdir()):
        if (int((entry / "vendor").read_text(), 16), int((entry / "device").read_text(), 16)) == (vendor, device):
            found.append(entry.name)
    return found


def pci_one(vendor: int, device: int) -> str:
    found = pci_find(vendor, device)
    if len(found) != 1:
        raise LinuxGuestError(f"expected one PCI function {vendor:04x}:{device:04x}, found {found}")
    return found[0]


def pci_driver(address: str) -> str | None:
    try:
        return os.path.basename(os.readlink(PCI_DEVICES / address / "driver"))
    except OSError:
        return None


def pci_bind(address: str, driver: str) -> None:
    """Bind `driver` (its module loaded first) to the function at `address`, unbinding any other; every sysfs
    write is bounded (mmiotk.sysfs)."""
    load_module(driver)
    try:
        PciDrivers().bind(address, driver)
    except SysfsError as exc:
        raise LinuxGuestError(f"binding {driver} to {address} failed: {exc}") from None


def pci_unbind(address: str) -> None:
    """Unbind whatever driver holds `address` and clear the override, leaving the device unclaimed."""
    try:
        PciDrivers().release(address, reprobe=False)
    except SysfsError as exc:
        raise LinuxGuestError(f"unbinding {address} failed: {exc}") from None


def guest_disk(name: str) -> Path:
    """The raw file behind the machine's GuestDisk `name`, as the guest sees it (in the share)."""
    share = os.environ.get("MMIOTK_LINUX_SHARE")
    if not share:
        raise LinuxGuestError("MMIOTK_LINUX_SHARE is unset: guest_disk works only inside a guest")
    path = Path(share) / f"disk-{name}.img"
    if not path.exists():
        raise LinuxGuestError(f"the machine has no disk {name!r} ({path} does not exist)")
    return path


def uio_of(address: str) -> str:
    """The uioN name of the UIO device a PCI function was bound as."""
    names = sorted(p.name for p in (PCI_DEVICES / address / "uio").iterdir())
    if len(names) != 1:
        raise LinuxGuestError(f"PCI {address}: expected one UIO device, found {names}")
    return names[0]
