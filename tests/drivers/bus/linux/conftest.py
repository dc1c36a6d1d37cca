"""Fixtures of the PCI bus tests that run inside a Linux guest: QEMU's edu device, unclaimed, and the
kernel's stub drivers loaded."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # edu_driver (importlib mode)
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "mmiotk" / "linux"))  # edu_regs

from hwsim.linux.guest import in_guest, load_module, pci_one, pci_unbind
from hwsim.linux.machines import EDU


@pytest.fixture
def edu() -> Iterator[str]:
    """edu's PCI address, with no driver bound; vfio-pci and uio_pci_generic loaded."""
    if not in_guest():
        raise RuntimeError("this fixture runs only inside the Linux guest (tests marked linux_guest)")
    address = pci_one(*EDU)
    pci_unbind(address)
    yield address
    pci_unbind(address)


@pytest.fixture(scope="module", autouse=True)
def stub_drivers() -> None:
    if in_guest():
        load_module("vfio-pci")
        load_module("vfio_iommu_type1")
        load_module("uio_pci_generic")
