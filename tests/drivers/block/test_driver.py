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
