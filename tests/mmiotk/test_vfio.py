"""VfioDevice's refusals before any ioctl, on a fake sysfs tree (the real thing runs in tests/mmiotk/linux)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from mmiotk.vfio import VFIO_DEVICE_SET_IRQS, VFIO_IOMMU_MAP_DMA, VfioDevice, VfioError


def fake_device(root: Path, *, group: str | None, driver: str | None) -> Path:
    dev = root / "bus" / "pci" / "devices" / "0000:00:04.0"
    dev.mkdir(parents=True)
    if group is not None:
        (root / "kernel" / "iommu_groups" / group).mkdir(parents=True)
        os.symlink(root / "kernel" / "iommu_groups" / group, dev / "iommu_group")
    if driver is not None:
        (root / "bus" / "pci" / "drivers" / driver).mkdir(parents=True)
        os.symlink(root / "bus" / "pci" / "drivers" / driver, dev / "driver")
    return root


def test_no_iommu_group_says_the_machine_needs_an_iommu(tmp_path: Path) -> None:
    with pytest.raises(VfioError, match=r"no iommu_group.*intel_iommu=on"):
        VfioDevice("0000:00:04.0", sysfs_root=fake_device(tmp_path, group=None, driver=None))


def test_a_device_on_another_driver_is_refused_with_the_bind_commands(tmp_path: Path) -> None:
    with pytest.raises(VfioError, match=r"bound to uio_pci_generic, not vfio-pci.*driver_override"):
        VfioDevice("0000:00:04.0", sysfs_root=fake_device(tmp_path, group="7", driver="uio_pci_generic"))


def test_ioctl_numbers_are_linux_vfio_h() -> None:
    assert VFIO_DEVICE_SET_IRQS == 0x3B6E and VFIO_IOMMU_MAP_DMA == 0x3B71
