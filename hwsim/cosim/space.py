"""SimSpace: physical addresses served by a simulated bus, mapped like any other address space."""

from __future__ import annotations

from cocotb.triggers import Timer
from cocotb.utils import get_sim_steps

from mmiotk.policy import CachePolicy
from mmiotk.space import AddressSpace, Window

from .bridge import bridge_await
from .buses import SimBus


class SimWindow(Window):
    """A window whose every access is one transaction on its space's bus (two for 64-bit).

    The bus is looked up per access, so a test can swap bus models under live mappings.
    """

    mechanism = "simulated bus (cocotb)"

    def __init__(self, paddr: int, size: int, space: SimSpace) -> None:
        super().__init__(paddr, size)
        self._space = space

    def read(self, offset: int, width: int) -> int:
        addr = self.paddr + offset
        bus = self._space.bus
        if width == 8:
            low = bridge_await(bus.read32(addr))
            return low | bridge_await(bus.read32(addr + 4)) << 32
        shift = 8 * (addr & 3)
        word = bridge_await(bus.read32(addr & ~3))
        return (word >> shift) & ((1 << (8 * width)) - 1)

    def write(self, offset: int, width: int, value: int) -> None:
        addr = self.paddr + offset
        bus = self._space.bus
        if width == 8:
            bridge_await(bus.write32(addr, value & 0xFFFF_FFFF, 0xF))
            bridge_await(bus.write32(addr + 4, value >> 32, 0xF))
            return
        shift = 8 * (addr & 3)
        strobes = ((1 << width) - 1) << (addr & 3)
        bridge_await(bus.write32(addr & ~3, value << shift, strobes))


class SimSpace(AddressSpace):
    """Physical addresses served by a simulated bus: map regions of it like any other space."""

    simulated = True

    def __init__(self, bus: SimBus, base: int, size: int, *, name: str = "sim", arch: str | None = None):
        super().__init__(base, size, name=name, arch=arch)
        self.bus = bus

    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        self.check_range(paddr, size)
        return SimWindow(paddr, size, self)

    def sleep(self, seconds: float) -> None:
        """Let `seconds` of simulated time pass (for code that polls DMA memory instead of the bus)."""
        bridge_await(Timer(max(1, get_sim_steps(seconds, "sec", round_mode="ceil")), "step"))
