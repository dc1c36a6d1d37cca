"""BlockDriver: a bus driver whose bound driver is itself the BlockDevice, delegating to the one it made.

`bind` builds the device (a RamDisk from board properties, a VirtioBlk over the mapped registers) and sets
`self.block`; the rest is the same for every block driver and lives here: `query` needs a bound device;
`queue` (and `queue_many`) on a driver that is not bound (never, or no longer) completes IO_NOT_PRESENT;
`extents` is the bound device's; `unbind` unbinds the block device (which completes whatever it still
holds) before the bus revokes the regions.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Generic, Protocol, TypeVar

from mmiotk.bus import DeviceGoneError, Driver

from .protocol import BlockDevice, BlockInfo, BlockOp, BlockStatus, Completion, Extent


class UnbindableBlockDevice(Protocol):
    """What a BlockDriver delegates to: the block protocol, and an unbind that completes everything."""

    def query(self) -> BlockInfo: ...
    def queue(self, op: BlockOp, completion: Completion) -> None: ...
    def queue_many(self, ops: Sequence[BlockOp], completion: Completion) -> None: ...
    def wait_for(self, done: threading.Event, timeout: float) -> bool: ...
    def extents(self, offset: int, length: int) -> list[Extent]: ...
    def unbind(self) -> None: ...


BlockT = TypeVar("BlockT", bound=UnbindableBlockDevice)


class BlockDriver(Driver, BlockDevice, Generic[BlockT]):
    """Subclass, declare `compatible`, and set `self.block` in `bind`."""

    def __init__(self) -> None:
        super().__init__()
        self.block: BlockT | None = None

    def unbind(self) -> None:
        if self.block is not None:
            self.block.unbind()
        super().unbind()

    def query(self) -> BlockInfo:
        if self.block is None:
            raise DeviceGoneError(f"{self.name}: not bound to a device")
        return self.block.query()

    def queue(self, op: BlockOp, completion: Completion) -> None:
        if self.block is None:
            completion(BlockStatus.IO_NOT_PRESENT, op)
            return
        self.block.queue(op, completion)

    def queue_many(self, ops: Sequence[BlockOp], completion: Completion) -> None:
        if self.block is None:
            for op in ops:
                completion(BlockStatus.IO_NOT_PRESENT, op)
            return
        self.block.queue_many(ops, completion)

    def wait_for(self, done: threading.Event, timeout: float) -> bool:
        """The bound device's wait (a polled device polls while it waits); unbound, ops have completed."""
        if self.block is None:
            return done.wait(timeout)
        return self.block.wait_for(done, timeout)

    def extents(self, offset: int, length: int) -> list[Extent]:
        if self.block is None:
            raise DeviceGoneError(f"{self.name}: not bound to a device")
        return self.block.extents(offset, length)
