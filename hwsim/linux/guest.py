"""What a test running inside the guest uses: kernel modules, PCI devices found by id, binding drivers.

Modules come from the kernel package unpacked in the host's cache, which the guest sees through the shared
root ($MMIOTK_LINUX_MODULES); the host's own kmod loads them (`modprobe -d`). Binding goes through
`driver_override`, so exactly the device named gets the driver, and `unbind` undoes it.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

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
    """Bind `driver` (its module loaded first) to the function at `address`, unbinding any other."""
    load_module(driver)
    current = pci_driver(address)
    if current == driver:
        return
    if current is not None:
        pci_unbind(address)
    (PCI_DEVICES / address / "driver_override").write_text(driver)
    try:
        Path("/sys/bus/pci/drivers_probe").write_text(address)
    except OSError as exc:
        raise LinuxGuestError(f"binding {driver} to {address} failed: {exc.strerror}") from None
    if pci_driver(address) != driver:
        raise LinuxGuestError(f"{driver} did not bind to {address} (bound: {pci_driver(address)})")


def pci_unbind(address: str) -> None:
    """Unbind whatever driver holds `address` and clear the override, leaving the device unclaimed."""
    driver = pci_driver(address)
    if driver is not None:
        (PCI_DEVICES / address / "driver" / "unbind").write_text(address)
    (PCI_DEVICES / address / "driver_override").write_text("\n")


def uio_of(address: str) -> str:
    """The uioN name of the UIO device a PCI function was bound as."""
    names = sorted(p.name for p in (PCI_DEVICES / address / "uio").iterdir())
    if len(names) != 1:
        raise LinuxGuestError(f"PCI {address}: expected one UIO device, found {names}")
    return names[0]
