"""The QEMU target: QEMU's own virtio-blk device model behind an mmiotk AddressSpace.

`QemuSpace` launches `qemu-system-aarch64 -M virt` (vCPU stopped, `-accel tcg -S`) with one
virtio-blk-device, drives its registers through the qtest protocol over a unix socket and shares guest RAM
through a /dev/shm file, so DMA buffers are numpy views. `QemuSpace(transport="pci")` makes the device a
modern virtio-blk-pci on the machine's PCIe host bridge instead (ECAM at `ecam_base`; drivers.bus.pci_ecam
enumerates it). QEMU and its files go away on close(), at the end
of a `with` block, when the space is garbage, at interpreter exit, or (SIGKILL) when the thread that
started it dies. See docs/qemu.md.

Example::

    from mmiotk import CachePolicy, MmioResource
    from hwsim.qemu import QemuSpace

    with QemuSpace(image="disk.img", ram_size=64 << 20) as qemu:
        bus = MmioResource(qemu, qemu.device_base, 0x200)          # the device's registers
        regs = bus.create_region(qemu.device_base, 0x200, "virtio-blk").map(CachePolicy.UNCACHED_DEVICE)
        assert regs.read32(0x000) == 0x74726976                   # MagicValue "virt", one qtest readl
        dma = MmioResource(qemu, qemu.dma_base, 1 << 20)           # guest RAM above the DTB
        pool = dma.create_region(qemu.dma_base, 1 << 20, "dma", memory=True).map(CachePolicy.CACHED)
        ring = pool.array("u2", 0, 64)                             # a numpy view QEMU's DMA sees
        irq = qemu.interrupt()                                     # the device slot's GIC interrupt
        irq.wait(1.0)                                              # IrqTimeoutError when nothing fires
"""

from .errors import QemuDiedError, QemuError, QemuTimeoutError
from .process import QemuOptions, build_command
from .qmp import QmpClient
from .qtest import QtestClient
from .space import QemuEdgeIrq, QemuIrq, QemuSpace, QemuWindow

__all__ = [
    "QemuDiedError", "QemuEdgeIrq", "QemuError", "QemuIrq", "QemuOptions", "QemuSpace", "QemuTimeoutError",
    "QemuWindow", "QmpClient", "QtestClient", "build_command",
]
