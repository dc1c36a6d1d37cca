"""virtio-blk block devices on simulated targets, for `mmiotk nbd` / `mmiotk serve` and tests.

`open_model(image)` runs the behavioural model in-process; `open_qemu(image)` runs QEMU's own
virtio-blk-device through qtest. Both bind the same `VirtioBlkDriver` through a `PlatformBus` (interrupt-
thread completions, so any server can queue from any thread) and yield the bound `VirtioBlk`. Guest RAM is
a /dev/shm file (`space.ram_path`), so a block server can hand clients DMA buffers from `blk.pool` that the
device reaches without a copy. They are registered in the entry-point group `mmiotk.block_targets`
(`--virtio-model IMAGE`, `--qemu IMAGE`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from drivers.bus.pci_ecam import EcamPciBus
from drivers.bus.pci_msi import MsiController
from drivers.bus.platform import PlatformBus
from drivers.virtio.blk import VirtioBlk, VirtioBlkDriver
from mmiotk.dma import DmaPool

MiB = 1 << 20


def virtio_blk_board(space: Any, name: str, *, coherent: bool = True,
                     properties: dict[str, Any] | None = None) -> dict[str, Any]:
    """The board description of a target space with one virtio-blk device as `blk0` (QemuSpace and
    ModelSpace name their RAM, DMA window, device and interrupt alike)."""
    device: dict[str, Any] = {"name": "blk0", "compatible": "virtio,mmio", "reg": [[space.device_base, 0x200]],
                              "interrupts": [space.irq_number]}
    if properties:
        device["properties"] = properties
    return {"name": name, "memory": {"base": space.ram_base, "size": space.ram_size},
            "dma": {"base": space.dma_base, "size": space.dma_size, "coherent": coherent},
            "devices": [device]}


@contextmanager
def bound_virtio_blk(board: dict[str, Any], space: Any, irq_factory: Any, *, memory: Any = None,
                     completions: str = "poll", **options: Any) -> Iterator[VirtioBlk]:
    """`VirtioBlkDriver` bound to `blk0` of `board` through a PlatformBus; unbound (bus closed) on exit."""
    bus = PlatformBus.from_board(board, space, memory=memory, irq_factory=irq_factory)
    bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(completions=completions, **options))
    try:
        driver = bus.bind("blk0")
        assert isinstance(driver, VirtioBlkDriver) and driver.block is not None
        yield driver.block
    finally:
        bus.close()


@contextmanager
def bound_virtio_blk_pci(space: Any, *, msi: bool = True, completions: str = "poll",
                         **options: Any) -> Iterator[VirtioBlk]:
    """`VirtioBlkDriver` bound to the virtio-blk-pci function of a QemuSpace made with transport="pci": the
    host bridge enumerated through ECAM (BARs assigned in the PCI MMIO window); interrupts by MSI-X through
    the GICv2m frame, or (msi=False) INTx through the GIC."""
    dma = DmaPool.from_space(space, space.dma_base, space.dma_size, coherent=True, name="pcie0-dma")
    first, count = space.msi_intids
    controller = MsiController(space.msi_doorbell, first, count, space.msi_interrupt) if msi else None
    bus = EcamPciBus(space, ecam=(space.ecam_base, space.ecam_size), mem_window=space.pci_mmio_window,
                     intx=space.pci_intx, msi=controller, irq_factory=space.irq_factory, dma=dma)
    try:
        functions = bus.scan()
        bus.register_driver(VirtioBlkDriver, lambda: VirtioBlkDriver(completions=completions, **options))
        blk = [f for f in functions if (f.vendor_id, f.device_id) in VirtioBlkDriver.ids]
        if not blk:
            raise LookupError(f"no virtio-blk-pci function on {bus.name}: found "
                              f"{[(f.name, f'{f.vendor_id:04x}:{f.device_id:04x}') for f in functions]}")
        driver = bus.bind(blk[0].name)
        assert isinstance(driver, VirtioBlkDriver) and driver.block is not None
        yield driver.block
    finally:
        bus.close()


def _shm_path(tag: str) -> str:
    shm = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()
    return os.path.join(shm, f"mmiotk-{tag}-{os.getpid()}-{os.urandom(4).hex()}")


@contextmanager
def open_model(image: str | os.PathLike[str], read_only: bool = False, *, ram_size: int = 64 * MiB,
               **options: Any) -> Iterator[VirtioBlk]:
    """virtio-blk on the behavioural model, its disk the raw `image` (written back on close)."""
    from hwsim.models import ModelSpace, VirtioBlkModel

    if not Path(image).is_file():
        raise FileNotFoundError(f"disk image {os.fspath(image)!r} does not exist")
    ram_path = _shm_path("model-ram")
    model = VirtioBlkModel(image=image, readonly=read_only)
    with ModelSpace(model, ram_size=ram_size, ram_path=ram_path) as space:
        if getattr(space, "ram_path", None) is None:
            space.ram_path = ram_path  # type: ignore[attr-defined]  # as QemuSpace names it
        with bound_virtio_blk(virtio_blk_board(space, "model-virt"), space, space.interrupt,
                              completions="thread", readonly=read_only, **options) as blk:
            yield blk


@contextmanager
def open_qemu(image: str | os.PathLike[str], read_only: bool = False, *, ram_size: int = 64 * MiB,
              **options: Any) -> Iterator[VirtioBlk]:
    """virtio-blk on QEMU's own device model (qtest), its disk the raw `image`."""
    from hwsim.qemu import QemuSpace

    with QemuSpace(image=os.fspath(image), readonly=read_only, ram_size=ram_size) as space:
        opened = None
        if getattr(space, "ram_fd", None) is None:  # QemuSpace unlinks its RAM file once QEMU has it open
            opened = space.ram_fd = _qemu_ram_fd(space)  # type: ignore[attr-defined]
        try:
            with bound_virtio_blk(virtio_blk_board(space, "qemu-virt"), space, space.irq_factory,
                                  completions="thread", readonly=read_only, **options) as blk:
                yield blk
        finally:
            if opened is not None:
                os.close(opened)


def _qemu_ram_fd(space: Any) -> int | None:
    """A descriptor for QEMU's guest RAM file, through QEMU's own (same user, our child), or None."""
    target = f"{space.ram_path} (deleted)"
    fd_dir = f"/proc/{space.pid}/fd"
    try:
        for name in os.listdir(fd_dir):
            link = os.path.join(fd_dir, name)
            with contextlib.suppress(OSError):
                if os.readlink(link) in (target, space.ram_path):
                    return os.open(link, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        pass
    return None
