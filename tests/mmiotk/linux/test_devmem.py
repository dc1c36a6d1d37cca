"""DevMemSpace on a real kernel under STRICT_DEVMEM and IO_STRICT_DEVMEM: unclaimed MMIO (edu's BAR0) and
RAM reserved at boot map; System RAM and a page a driver claimed are refused with the cause and the fix."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from edu_regs import edu_at_reset

from hwsim.linux.machines import BACKENDS, RESERVED_BASE, RESERVED_SIZE
from mmiotk import CachePolicy, DevMemSpace, MmioError, MmioResource
from mmiotk.cli import main
from mmiotk.devmem import DevMemRefusedError
from mmiotk.iomem import overlapping, read_iomem

pytestmark = pytest.mark.linux_guest(BACKENDS)


def devmem_map(paddr: int, size: int, policy: CachePolicy, **kwargs):
    space = DevMemSpace()
    return MmioResource(space, paddr, size).create_region(paddr, size, "devmem", **kwargs).map(policy)


def bar0(address: str) -> int:
    return int(Path(f"/sys/bus/pci/devices/{address}/resource").read_text().split()[0], 16)


def test_unclaimed_mmio_maps_through_dev_mem(edu: str) -> None:
    regs = devmem_map(bar0(edu), 0x1000, CachePolicy.UNCACHED_DEVICE)
    assert "O_SYNC" in regs.mechanism
    assert regs.read32(0x00) == 0x010000ED
    regs.write32(0x04, 0)
    assert regs.read32(0x04) == 0xFFFF_FFFF


def test_regcheck_on_edu_through_dev_mem(edu: str, capsys: pytest.CaptureFixture[str]) -> None:
    base = bar0(edu)
    edu_at_reset(devmem_map(base, 0x1000, CachePolicy.UNCACHED_DEVICE))
    assert main(["regcheck", str(Path(__file__).with_name("edu.yaml")), "--mem", "/dev/mem", "--base", hex(base)]) == 0
    assert f"# EDU on /dev/mem @ {base:#x}: 6 registers checked, 0 disagreement(s)" in capsys.readouterr().err


def test_ram_reserved_at_boot_maps_and_holds_data() -> None:
    assert any(e.name == "Reserved" and e.start == RESERVED_BASE for e in read_iomem())
    mem = devmem_map(RESERVED_BASE, RESERVED_SIZE, CachePolicy.CACHED, memory=True)
    data = mem.array(np.uint64, 0, RESERVED_SIZE // 8)
    data[:] = np.arange(RESERVED_SIZE // 8, dtype=np.uint64)
    again = devmem_map(RESERVED_BASE, 0x1000, CachePolicy.CACHED, memory=True)  # a second, separate mapping
    assert again.read64(0x800) == 0x100


def test_a_second_mapping_with_another_memory_type_is_refused_saying_so() -> None:
    first = devmem_map(RESERVED_BASE + 0x10_0000, 0x1000, CachePolicy.CACHED, memory=True)
    first.write32(0, 0xC0FFEE)
    with pytest.raises(MmioError, match=r"EAGAIN.*another memory type"):
        devmem_map(RESERVED_BASE + 0x10_0000, 0x1000, CachePolicy.UNCACHED, memory=True)
    assert first.read32(0) == 0xC0FFEE


def test_system_ram_is_refused_naming_strict_devmem_and_memmap() -> None:
    ram = next(e for e in read_iomem() if e.name == "System RAM" and e.start >= 0x100000)
    with pytest.raises(DevMemRefusedError) as err:
        devmem_map(ram.start + 0x10_0000, 0x1000, CachePolicy.CACHED, memory=True)
    message = str(err.value)
    assert "System RAM" in message and "CONFIG_STRICT_DEVMEM" in message and "memmap=" in message


def test_a_page_a_driver_claimed_is_refused_naming_the_claimant_and_the_unbind() -> None:
    claim = next(e for e in read_iomem() if e.name == "virtio-pci-modern")  # the 9p root's device
    assert claim.pci_device is not None
    with pytest.raises(DevMemRefusedError) as err:
        devmem_map(claim.start, 0x1000, CachePolicy.UNCACHED_DEVICE)
    message = str(err.value)
    assert "IO_STRICT_DEVMEM" in message and "virtio-pci-modern" in message
    assert f"echo {claim.pci_device} > /sys/bus/pci/drivers/virtio-pci/unbind" in message
    assert overlapping(read_iomem(), claim.start, claim.start + 1)[0].name == "virtio-pci-modern"
