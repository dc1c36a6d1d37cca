"""Behavioural device models: fast Python devices in a transaction-backed space with shared guest RAM.

Example::

    from mmiotk import CachePolicy, MmioResource
    from hwsim.media import BlockMedia
    from hwsim.models import ModelSpace, VirtioBlkModel

    blk = VirtioBlkModel(BlockMedia("disk.img"), writeback=True)
    with ModelSpace(blk, ram_size=16 << 20) as space:
        regs = MmioResource(space, space.device_base, 0x200).create_region(
            space.device_base, 0x200, "virtio-blk").map(CachePolicy.UNCACHED_DEVICE)
        assert regs.read32(0x008) == 2                 # DeviceID: block
        irq = space.interrupt()
    blk.media.flush()                                  # what a FLUSH request does
"""

from .guest_memory import DmaError, GuestMemory
from .space import ModelIrq, ModelSpace, ModelWindow
from .virtio_blk import VirtioBlkModel
from .virtio_mmio import VirtioMmioDevice
from .virtqueue import QueueFatal, Segment, SplitQueue

__all__ = [
    "DmaError", "GuestMemory", "ModelIrq", "ModelSpace", "ModelWindow", "QueueFatal", "Segment",
    "SplitQueue", "VirtioBlkModel", "VirtioMmioDevice",
]
