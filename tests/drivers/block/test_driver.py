"""BlockDriver: what every block bus driver does before it is bound, the same for each of them."""

from __future__ import annotations

import numpy as np
import pytest

from drivers.block.driver import BlockDriver
from drivers.block.protocol import BlockCommand, BlockOp, BlockStatus, Extent, ExtentFlag, Vmo, run_op
from drivers.block.ramdisk import RamDisk, RamDiskDriver
from drivers.virtio.blk import VirtioBlkDriver
from mmiotk.bus import DeviceGoneError


@pytest.mark.parametrize("driver_class", [RamDiskDriver, VirtioBlkDriver])
def test_a_driver_never_bound_completes_ops_io_not_present_and_refuses_query(
        driver_class: type[BlockDriver]) -> None:
    driver = driver_class()
    assert driver.block is None
    op = BlockOp(BlockCommand.READ, 1, 0, 0, Vmo(np.zeros(512, dtype=np.uint8)))
    assert run_op(driver, op, timeout=1.0) is BlockStatus.IO_NOT_PRESENT
    with pytest.raises(DeviceGoneError, match="not bound"):
        driver.query()


def test_a_bound_driver_answers_extents_with_its_devices_and_an_unbound_one_refuses() -> None:
    driver = RamDiskDriver()
    with pytest.raises(DeviceGoneError, match="not bound"):
        driver.extents(0, 1)
    driver.block = RamDisk(4096, 512)
    assert driver.extents(0, 8) == [Extent(0, 8, ExtentFlag.HOLE | ExtentFlag.ZERO)]


@pytest.mark.parametrize("driver_class", [RamDiskDriver, VirtioBlkDriver])
def test_queue_many_on_a_driver_never_bound_completes_each_op_io_not_present(
        driver_class: type[BlockDriver]) -> None:
    vmo = Vmo(np.zeros(512, dtype=np.uint8))
    ops = [BlockOp(BlockCommand.READ, 1, 0, 0, vmo) for _ in range(3)]
    seen: list[tuple[BlockStatus, BlockOp]] = []
    driver_class().queue_many(ops, lambda status, op: seen.append((status, op)))
    assert seen == [(BlockStatus.IO_NOT_PRESENT, op) for op in ops]


def test_queue_many_of_a_bound_driver_is_its_devices_one_op_after_another() -> None:
    driver = RamDiskDriver()
    driver.block = RamDisk(4096, 512)
    vmo = Vmo(np.arange(1024, dtype=np.uint16).view(np.uint8).copy())
    writes = [BlockOp(BlockCommand.WRITE, 1, b, b, vmo) for b in range(2)]
    seen: list[tuple[BlockStatus, BlockOp]] = []
    driver.queue_many([*writes, BlockOp(BlockCommand.WRITE, 1, 8, 0, vmo)], lambda s, op: seen.append((s, op)))
    assert [s for s, _ in seen] == [BlockStatus.OK, BlockStatus.OK, BlockStatus.OUT_OF_RANGE]
    assert [op for _, op in seen[:2]] == writes
    assert bytes(driver.block.data[:1024]) == vmo.array[:1024].tobytes()
