"""The targets of the conformance suite. Each boots a virtio-blk device, describes it as a board and binds
the very same `VirtioBlkDriver` through `PlatformBus`; only the address space behind the board differs.

- `model`: hwsim.models.VirtioBlkModel in a ModelSpace (strict: any register misuse raises), in-process.
- `qemu`: QEMU's own virtio-blk-device via qtest (QemuSpace). One QEMU is shared while the disk it needs
  stays the same (a scratch disk); a case that needs its own image or a read-only disk gets its own QEMU.
- `icarus`/`verilator`: see rtl_target.py (the cases run inside one cocotb simulation per simulator).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from conformance_cases import MiB, Target

from drivers.platform_bus import PlatformBus
from drivers.virtio_blk import VirtioBlk, VirtioBlkDriver
from mmiotk.irq import IrqFactory
from mmiotk.space import AddressSpace


def board_for(space: Any, name: str) -> dict[str, Any]:
    """The board description of a space that has one virtio-blk device (QemuSpace and ModelSpace agree)."""
    return {"name": name, "memory": {"base": space.ram_base, "size": space.ram_size},
            "dma": {"base": space.dma_base, "size": space.dma_size},
            "devices": [{"name": "blk0", "compatible": "virtio,mmio", "reg": [[space.device_base, 0x200]],
                         "interrupts": [space.irq_number]}]}


@contextmanager
def bound(board: dict[str, Any], space: AddressSpace, irq_factory: IrqFactory, memory: AddressSpace | None = None,
          **options: Any) -> Iterator[VirtioBlk]:
    """Bind VirtioBlkDriver to blk0 through a PlatformBus; unbind (bus.close) on exit."""
    bus = PlatformBus.from_board(board, space, memory=memory, irq_factory=irq_factory)
    bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(completions="poll", **options))
    try:
        driver = bus.bind("blk0")
        assert isinstance(driver, VirtioBlkDriver) and driver.blk is not None
        yield driver.blk
    finally:
        bus.close()


class ModelTarget(Target):
    name = "model"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    @contextmanager
    def device(self, *, image: Path | None = None, disk_size: int = 4 * MiB, readonly: bool = False,
               **options: Any) -> Iterator[VirtioBlk]:
        from hwsim.models import ModelSpace, VirtioBlkModel

        model = VirtioBlkModel(image=image, readonly=readonly) if image is not None else \
            VirtioBlkModel(size=disk_size, readonly=readonly)
        with ModelSpace(model, ram_size=32 * MiB) as space, \
                bound(board_for(space, "model-virt"), space, space.interrupt, **options) as blk:
            yield blk


class QemuTarget(Target):
    name = "qemu"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._stack = ExitStack()
        self._shared: Any = None

    def close(self) -> None:
        self._stack.close()

    def _space(self, **kwargs: Any) -> Any:
        from hwsim.qemu import QemuSpace

        return QemuSpace(ram_size=64 * MiB, **kwargs)

    @contextmanager
    def device(self, *, image: Path | None = None, disk_size: int = 4 * MiB, readonly: bool = False,
               **options: Any) -> Iterator[VirtioBlk]:
        with ExitStack() as stack:
            if image is None and not readonly and disk_size == 4 * MiB:
                if self._shared is None:
                    self._shared = self._stack.enter_context(self._space(disk_size=disk_size))
                space = self._shared
            else:
                space = stack.enter_context(self._space(image=image, readonly=readonly) if image is not None
                                            else self._space(disk_size=disk_size, readonly=readonly))
            with bound(board_for(space, "qemu-virt"), space, space.irq_factory, **options) as blk:
                yield blk
