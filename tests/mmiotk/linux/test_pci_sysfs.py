"""PciSysfsSpace on a real kernel: QEMU's edu BAR0 through resource0, ivshmem's prefetchable BAR2
write-combined through resource2_wc, and a BAR a driver holds refused with the driver named."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from edu_regs import EDU_ID, edu_at_reset

from hwsim.linux.machines import BACKENDS
from mmiotk import CachePolicy, MmioResource, PciSysfsSpace
from mmiotk.cli import REGCHECK_DISAGREES, main
from mmiotk.pci import BarClaimedError

pytestmark = pytest.mark.linux_guest(BACKENDS)



def map_bar(space: PciSysfsSpace, index: int, policy: CachePolicy, *, prefetchable: bool = False):
    bar = space.bar(index)
    region = MmioResource(space, bar.start, bar.size).create_region(bar.start, bar.size, f"bar{index}",
                                                                      prefetchable=prefetchable)
    return region.map(policy)


def test_edu_bar0_answers_through_resource0(edu: str) -> None:
    space = PciSysfsSpace(edu)
    regs = map_bar(space, 0, CachePolicy.UNCACHED_DEVICE)
    assert "resource0" in regs.mechanism
    assert regs.read32(0x00) == EDU_ID
    regs.write32(0x04, 0x1234_5678)
    assert regs.read32(0x04) == 0xEDCB_A987  # the liveness register returns the complement


def test_regcheck_on_edu_bar0_through_resource0(edu: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    edu_map = Path(__file__).with_name("edu.yaml")
    edu_at_reset(map_bar(PciSysfsSpace(edu), 0, CachePolicy.UNCACHED_DEVICE))
    assert main(["regcheck", str(edu_map), "--pci", edu, "--bar", "0"]) == 0
    assert "6 registers checked, 0 disagreement(s)" in capsys.readouterr().err
    wrong = tmp_path / "edu.yaml"   # the ID of another revision; COMPUTING said to be writable
    wrong.write_text(edu_map.read_text().replace("reset: 0x010000ed", "reset: 0x020000ed")
                     .replace("{name: COMPUTING, lsb: 0, access: ro}", "{name: COMPUTING, lsb: 0, access: rw}"))
    assert main(["regcheck", str(wrong), "--pci", edu, "--bar", "0"]) == REGCHECK_DISAGREES
    assert capsys.readouterr().out.splitlines() == [
        "EDU.ID: reset value: expected 0x20000ed, read 0x10000ed (bits 0xffffffff)",
        "EDU.STATUS: RW bits read back 0x1: expected 0x1, read 0x0 (bits 0x81)"]


def test_edu_factorial_runs_on_the_device(edu: str) -> None:
    regs = map_bar(PciSysfsSpace(edu), 0, CachePolicy.UNCACHED_DEVICE)
    regs.write32(0x08, 10)
    deadline = time.monotonic() + 10  # a QEMU thread computes it; on a loaded host that takes a while
    while regs.read32(0x20) & 1:  # status bit 0: computing
        assert time.monotonic() < deadline, "edu still computing after 10 s"
        time.sleep(0.001)
    assert regs.read32(0x08) == 3628800


def _pat_lines(start: int) -> list[str]:
    debugfs = Path("/sys/kernel/debug")
    if not (debugfs / "x86").exists():
        subprocess.run(["mount", "-t", "debugfs", "debugfs", str(debugfs)], check=True)
    return [line for line in (debugfs / "x86" / "pat_memtype_list").read_text().splitlines()
            if f"{start:016x}" in line]


def test_ivshmem_bar2_maps_write_combining_through_resource2_wc(ivshmem: str) -> None:
    space = PciSysfsSpace(ivshmem)
    bar = space.bar(2)
    assert bar.prefetchable
    shm = map_bar(space, 2, CachePolicy.WRITE_COMBINING, prefetchable=True)
    assert "resource2_wc" in shm.mechanism
    assert any("write-combining" in line for line in _pat_lines(bar.start)), _pat_lines(bar.start)
    pattern = np.arange(1024, dtype=np.uint32) * 0x9E3779B1
    for i in range(0, 1024, 64):
        for j, value in enumerate(pattern[i:i + 64]):
            shm.write32_relaxed(4 * (i + j), int(value))
    shm.wmb()
    assert [shm.read32(4 * i) for i in range(1024)] == [int(v) for v in pattern]


def test_ivshmem_bar2_uncached_is_uncached_minus_in_pat(ivshmem: str) -> None:
    space = PciSysfsSpace(ivshmem)
    shm = map_bar(space, 2, CachePolicy.UNCACHED)
    shm.write64(0x100, 0x0123_4567_89AB_CDEF)
    assert shm.read64(0x100) == 0x0123_4567_89AB_CDEF
    assert any("uncached-minus" in line for line in _pat_lines(space.bar(2).start))


def test_a_bar_held_by_a_driver_is_refused_naming_the_driver_and_the_unbind() -> None:
    # the 9p device this guest's root comes over is a virtio-pci function its driver holds
    root_9p = next(p.name for p in Path("/sys/bus/pci/drivers/virtio-pci").iterdir() if ":" in p.name)
    space = PciSysfsSpace(root_9p)
    modern = max(space.bars, key=lambda b: b.index)  # the modern virtio BAR (BAR4)
    with pytest.raises(BarClaimedError) as err:
        map_bar(space, modern.index, CachePolicy.UNCACHED_DEVICE)
    message = str(err.value)
    assert "virtio-pci" in message and "EINVAL" in message
    assert f"echo {root_9p} > /sys/bus/pci/drivers/virtio-pci/unbind" in message
    assert os.path.exists(f"/sys/bus/pci/devices/{root_9p}/driver")  # nothing was unbound by trying
