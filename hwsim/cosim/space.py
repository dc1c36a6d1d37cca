"""SimSpace: physical addresses served by a simulated bus, mapped like any other address space."""

from __future__ import annotations

from cocotb.triggers import Timer
from cocotb.utils import get_sim_steps

from mmiotk.policy import CachePolicy
from mmiotk.space import AddressSpace, Window

from .bridge import bridge_await
from .buses import SimBus


class SimWindow(Window):
    """A window whose every access is one transaction on its space's bus (two for 64 bits on a 32-bit
    bus, low word first).

    The bus is looked up per access, so a test can swap bus models under live mappings.
    """

    mechanism = "simulated bus (cocotb)"

    def __init__(self, paddr: int, size: int, space: SimSpace) -> None:
        super().__init__(paddr, size)
        self._space = space

    def read(self, offset: int, width: int) -> int:
        return bridge_await(self._space.bus.read(self.paddr + offset, width))

    def write(self, offset: int, width: int, value: int) -> None:
        bridge_await(self._space.bus.write(self.paddr + offset, width, value))


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
