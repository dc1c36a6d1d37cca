"""SimSpace: physical addresses served by a simulated bus, mapped like any other address space."""

from __future__ import annotations

from collections.abc import Callable

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
        return self._space.read_bridged(self.paddr + offset, width)

    def write(self, offset: int, width: int, value: int) -> None:
        self._space.write_bridged(self.paddr + offset, width, value)


class SimSpace(AddressSpace):
    """Physical addresses served by a simulated bus: map regions of it like any other space."""

    simulated = True

    def __init__(self, bus: SimBus, base: int, size: int, *, name: str = "sim", arch: str | None = None):
        super().__init__(base, size, name=name, arch=arch)
        self.bus = bus

    @property
    def bus(self) -> SimBus:
        """The bus model every access goes to; assigning another one swaps it under live mappings."""
        return self._bus

    @bus.setter
    def bus(self, bus: SimBus) -> None:
        self._bus = bus
        # a bus with synchronous bridged accesses (the HDL masters) is called directly; any other bus's
        # coroutines are awaited through the bridge
        self.read_bridged: Callable[[int, int], int] = getattr(bus, "read_bridged", None) or \
            (lambda addr, nbytes: bridge_await(bus.read(addr, nbytes)))
        self.write_bridged: Callable[[int, int, int], None] = getattr(bus, "write_bridged", None) or \
            (lambda addr, nbytes, value: bridge_await(bus.write(addr, nbytes, value)))

    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        self.check_range(paddr, size)
        return SimWindow(paddr, size, self)

    def sleep(self, seconds: float) -> None:
        """Let `seconds` of simulated time pass (for code that polls DMA memory instead of the bus)."""
        bridge_await(Timer(max(1, get_sim_steps(seconds, "sec", round_mode="ceil")), "step"))
