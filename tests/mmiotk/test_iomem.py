"""Reading /proc/iomem to explain /dev/mem refusals, on a copy of what a q35 guest's kernel printed."""

from __future__ import annotations

import os
from pathlib import Path

from mmiotk.iomem import explain_devmem_refusal, overlapping, pci_driver, read_iomem

IOMEM = """\
00000000-00000fff : Reserved
00001000-0009fbff : System RAM
00100000-07ffffff : System RAM
  01000000-01ffffff : Kernel code
08000000-08ffffff : Reserved
09000000-3ffdffff : System RAM
80000000-afffffff : PCI Bus 0000:00
  fe800000-fe8fffff : 0000:00:04.0
  fe900000-fe900fff : 0000:00:01.0
  feb00000-feb03fff : 0000:00:01.0
    feb00000-feb03fff : virtio-pci-modern
fec00000-fec003ff : IOAPIC 0
"""


def tree(tmp_path: Path) -> tuple[Path, Path]:
    iomem = tmp_path / "iomem"
    iomem.write_text(IOMEM)
    sysfs = tmp_path / "sys"
    dev = sysfs / "bus" / "pci" / "devices" / "0000:00:01.0"
    drv = sysfs / "bus" / "pci" / "drivers" / "virtio-pci"
    dev.mkdir(parents=True)
    drv.mkdir(parents=True)
    os.symlink(drv, dev / "driver")
    return iomem, sysfs


def test_entries_nest_by_indentation_and_know_their_pci_device(tmp_path: Path) -> None:
    iomem, _ = tree(tmp_path)
    entries = read_iomem(iomem)
    claim = next(e for e in entries if e.name == "virtio-pci-modern")
    assert (claim.start, claim.end, claim.depth) == (0xFEB00000, 0xFEB03FFF, 2)
    assert claim.parent is not None and claim.parent.name == "0000:00:01.0"
    assert claim.pci_device == "0000:00:01.0"
    assert overlapping(entries, 0xFEB01000, 0xFEB01004)[0].name == "virtio-pci-modern"


def test_system_ram_refusal_says_strict_devmem_and_how_to_reserve(tmp_path: Path) -> None:
    iomem, sysfs = tree(tmp_path)
    why = explain_devmem_refusal(0x200_0000, 0x1000, iomem=iomem, sysfs_root=sysfs)
    assert "System RAM" in why and "CONFIG_STRICT_DEVMEM" in why and "memmap=16M$0x8000000" in why


def test_claimed_page_refusal_names_claimant_driver_and_unbind_command(tmp_path: Path) -> None:
    iomem, sysfs = tree(tmp_path)
    assert pci_driver("0000:00:01.0", sysfs) == "virtio-pci"
    why = explain_devmem_refusal(0xFEB00010, 4, iomem=iomem, sysfs_root=sysfs)
    assert "IO_STRICT_DEVMEM" in why and "'virtio-pci-modern'" in why
    assert "echo 0000:00:01.0 > /sys/bus/pci/drivers/virtio-pci/unbind" in why
    assert "[0xfeb00000, 0xfeb01000)" in why  # the whole page counts


def test_unreadable_or_hidden_iomem_still_gives_the_rules(tmp_path: Path) -> None:
    hidden = tmp_path / "iomem"
    hidden.write_text("00000000-00000000 : System RAM\n00000000-00000000 : Reserved\n")
    assert read_iomem(hidden) == []
    why = explain_devmem_refusal(0x1000, 4, iomem=tmp_path / "missing")
    assert "CONFIG_STRICT_DEVMEM" in why and "not readable" in why
