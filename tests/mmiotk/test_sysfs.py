"""Bounded sysfs writes and driver_override binding, against trees of regular files (and a FIFO, whose open
for writing blocks until a reader comes, as a sysfs write blocks while the kernel waits)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from mmiotk.sysfs import PciDrivers, SysfsError, SysfsTimeoutError, sysfs_write

ADDRESS = "0000:00:04.0"


def _tree(root: Path, bound: str | None) -> Path:
    bus = root / "bus" / "pci"
    function = bus / "devices" / ADDRESS
    function.mkdir(parents=True)
    (function / "driver_override").write_text("")
    (bus / "drivers_probe").write_text("")
    for name in ("virtio-pci", "vfio-pci"):
        (bus / "drivers" / name).mkdir(parents=True)
        (bus / "drivers" / name / "unbind").write_text("")
    if bound:
        (function / "driver").symlink_to(bus / "drivers" / bound)
    return bus


def test_a_write_that_blocks_times_out_naming_the_file_and_completes_later(tmp_path: Path) -> None:
    fifo = tmp_path / "unbind"
    os.mkfifo(fifo)
    with pytest.raises(SysfsTimeoutError, match=rf"writing '{ADDRESS}' to {fifo} did not return within 0.2 s"):
        sysfs_write(fifo, ADDRESS, timeout=0.2, why="unbinding")
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    reader.join(10)
    assert got == [ADDRESS.encode()], "the blocked write did not complete once the other side let go"


def test_a_refused_write_names_the_file_the_value_and_the_reason(tmp_path: Path) -> None:
    with pytest.raises(SysfsError, match=r"missing/attr failed: No such file or directory \(errno 2\)"):
        sysfs_write(tmp_path / "missing" / "attr", "x")


def test_bind_unbinds_the_old_driver_then_overrides_and_probes(tmp_path: Path) -> None:
    bus = _tree(tmp_path, "virtio-pci")
    drivers = PciDrivers(tmp_path)
    assert drivers.driver_of(ADDRESS) == "virtio-pci"
    with pytest.raises(SysfsError, match="vfio-pci did not bind"):  # nothing here moves the symlink
        drivers.bind(ADDRESS, "vfio-pci")
    assert (bus / "drivers" / "virtio-pci" / "unbind").read_text() == ADDRESS
    assert (bus / "devices" / ADDRESS / "driver_override").read_text() == "vfio-pci"
    assert (bus / "drivers_probe").read_text() == ADDRESS


def test_binding_a_driver_that_is_not_loaded_says_to_load_it(tmp_path: Path) -> None:
    _tree(tmp_path, None)
    with pytest.raises(SysfsError, match=r"uio_pci_generic is not loaded .*modprobe uio_pci_generic"):
        PciDrivers(tmp_path).bind(ADDRESS, "uio_pci_generic")
