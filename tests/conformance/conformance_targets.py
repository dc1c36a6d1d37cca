"""The targets of the conformance suite. Each boots a virtio-blk device, describes it as a board and binds
the very same `VirtioBlkDriver` through `PlatformBus`; only the address space behind the board differs.

- `model`: hwsim.models.VirtioBlkModel in a ModelSpace (strict: any register misuse raises), in-process.
- `qemu`: QEMU's own virtio-blk-device via qtest (QemuSpace). One QEMU is shared while the disk it needs
  stays the same (a scratch disk); a case that needs its own image or a read-only disk gets its own QEMU.
- `qemu-pci`: the same with QEMU's virtio-blk-pci (modern only) on the virt machine's PCIe host bridge,
  found by the ECAM bus driver (`EcamPciBus`: BARs sized and assigned, MSI-X through the GICv2m frame) and
  bound through the virtio-pci transport.
- `icarus`/`verilator`: see rtl_target.py (the cases run inside one cocotb simulation per simulator).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import Any

from conformance_cases import MiB, Target

from drivers.virtio.blk import VirtioBlk
from hwsim.integration.block_targets import bound_virtio_blk, bound_virtio_blk_pci, virtio_blk_board


class ModelTarget(Target):
    name = "model"

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir

    @contextmanager
    def device(self, *, image: Path | None = None, disk_size: int = 4 * MiB, readonly: bool = False,
               media_range: tuple[int, int] | None = None, legacy: bool = False,
               **options: Any) -> Iterator[VirtioBlk]:
        from hwsim.models import ModelSpace, VirtioBlkModel

        kw: dict[str, Any] = {"readonly": readonly, "media_range": media_range, "legacy": legacy,
                              "physical_block_exp": 3, "min_io_size": 8}
        model = VirtioBlkModel(image=image, **kw) if image is not None else VirtioBlkModel(size=disk_size, **kw)
        with ModelSpace(model, ram_size=32 * MiB) as space, \
                bound_virtio_blk(virtio_blk_board(space, "model-virt"), space, space.interrupt, **options) as blk:
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

        return QemuSpace(ram_size=64 * MiB, physical_block_size=4096, **kwargs)

    def _bind(self, space: Any, **options: Any) -> AbstractContextManager[VirtioBlk]:
        return bound_virtio_blk(virtio_blk_board(space, "qemu-virt"), space, space.irq_factory, **options)

    @contextmanager
    def device(self, *, image: Path | None = None, disk_size: int = 4 * MiB, readonly: bool = False,
               media_range: tuple[int, int] | None = None, legacy: bool = False,
               **options: Any) -> Iterator[VirtioBlk]:
        with ExitStack() as stack:
            if legacy:
                space = stack.enter_context(self._space(disk_size=disk_size, modern=False))
            elif media_range is not None:
                space = stack.enter_context(self._space(image=image, readonly=readonly, image_range=media_range))
            elif image is None and not readonly and disk_size == 4 * MiB:
                if self._shared is None:
                    self._shared = self._stack.enter_context(self._space(disk_size=disk_size))
                space = self._shared
            else:
                space = stack.enter_context(self._space(image=image, readonly=readonly) if image is not None
                                            else self._space(disk_size=disk_size, readonly=readonly))
            with self._bind(space, **options) as blk:
                yield blk


class QemuPciTarget(QemuTarget):
    name = "qemu-pci"
    offers_legacy_mmio = False  # virtio-blk-pci, modern only

    def _space(self, **kwargs: Any) -> Any:
        return super()._space(transport="pci", **kwargs)

    def _bind(self, space: Any, **options: Any) -> AbstractContextManager[VirtioBlk]:
        return bound_virtio_blk_pci(space, **options)
