"""The RTL controller (hwsim/vblk under cocotb) as a vhost-user back end's device.

The back end's register writes are bus transactions on the controller's AXI4-Lite port (through the
greenlet bridge, so the back end stays synchronous code); the controller's DMA master reaches guest RAM
through the memory shim, whose host space is attached to the back end's own mapping of the guest's memfd:
the RTL reads descriptors and writes data in the guest's pages, no copy in between. The controller is built
with its DMA window over guest physical memory (HOST_BASE 0, `RTL_HOST_SIZE`), so descriptor addresses need
no translation.
"""

from __future__ import annotations

import numpy as np

from hwsim.cosim.bridge import bridge_await
from hwsim.cosim.shm import ShmLib
from hwsim.vblk.env import REGS_BASE, REGS_SIZE, VblkEnv
from mmiotk.irq import IrqTimeoutError
from mmiotk.policy import CachePolicy

from .target import CONFIG, MmioTarget

RTL_HOST_BASE = 0
RTL_HOST_SIZE = 1 << 32          # guest RAM below 4 GiB (q35's low memory)
CONFIG_SIZE = 0x3C
ADVANCE = 20e-6                  # simulated seconds per advance() while requests are in flight


class RtlTarget(MmioTarget):
    name = "virtio-blk RTL (Verilator)"

    def __init__(self, env: VblkEnv) -> None:
        self.env = env
        self.regs = env.resource.create_region(REGS_BASE, REGS_SIZE, "vblk").map(CachePolicy.UNCACHED)

    def read32(self, offset: int) -> int:
        return int(self.regs.read32(offset))

    def write32(self, offset: int, value: int) -> None:
        self.regs.write32(offset, value)

    def write_byte(self, offset: int, value: int) -> None:
        self.regs.write8(offset, value)

    def config(self) -> bytes:
        return b"".join(self.read32(CONFIG + off).to_bytes(4, "little") for off in range(0, CONFIG_SIZE, 4))

    def attach(self, ram: np.ndarray, base: int) -> None:
        self.env.shm.attach(ShmLib.HOST, ram, base)

    def detach(self) -> None:
        self.env.shm.detach(ShmLib.HOST)

    def irq_line(self) -> bool:
        return bool(int(self.env.dut.irq.value))

    def advance(self) -> None:
        try:
            bridge_await(self.env.irq.wait_async(ADVANCE))
        except IrqTimeoutError:
            pass
