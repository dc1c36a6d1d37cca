"""Run ordinary synchronous driver code against RTL under cocotb.

The driver runs in a greenlet started by `Bridge.run`. Every access it makes through a `SimSpace`
switches to the cocotb task, which awaits one bus transaction and switches back with the result (or
throws the exception into the driver). No threads, no per-access handoff between threads, and the driver
never knows it is simulated. `SimInterrupt.wait` is an await on the RTL interrupt line, bounded in both
simulated and wall-clock time.

Bus models implement two coroutines, `read32(addr)` and `write32(addr, data, strobes)`:
`HdlAxiLiteBus` drives the HDL transactor in tb_harness.v (one Python await per whole transaction);
`AxiLiteMasterBus` wraps cocotbext-axi's AxiLiteMaster (one await per clock inside the model).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

import cocotb.handle
from cocotb.triggers import First, ReadOnly, RisingEdge, Timer
from cocotb.utils import get_sim_steps, get_sim_time
from greenlet import greenlet

from mmiotk.errors import MmioError
from mmiotk.irq import Interrupt, IrqTimeoutError
from mmiotk.policy import CachePolicy
from mmiotk.space import AddressSpace, Window

T = TypeVar("T")

_NO_DELAY = 3  # cocotb's GPI action for an immediate deposit (cocotb.handle.Immediate)


class BusError(MmioError):
    """The simulated bus answered SLVERR or DECERR."""


class NotBridgedError(MmioError, RuntimeError):
    """A simulated access was made outside `Bridge.run`, where there is no cocotb task to await it."""


class _DriverGreenlet(greenlet):
    """The greenlet a bridged driver runs in (the type is how accesses know they may switch)."""


def bridge_await(awaitable: Awaitable[T]) -> T:
    """From synchronous code running under `Bridge.run`: await `awaitable` in the cocotb task.

    Returns its result, or raises what it raised.
    """
    current = greenlet.getcurrent()
    if not isinstance(current, _DriverGreenlet):
        if hasattr(awaitable, "close"):
            awaitable.close()  # a coroutine that will never run
        raise NotBridgedError("a simulated access needs the driver to run under hwsim.cosim.Bridge.run()")
    return current.parent.switch(awaitable)


class Bridge:
    """Runs synchronous functions inside a cocotb test."""

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call `fn(*args, **kwargs)` in a driver greenlet; its simulated accesses await here."""
        driver = _DriverGreenlet(fn, parent=greenlet.getcurrent())
        request = driver.switch(*args, **kwargs)
        try:
            while not driver.dead:
                try:
                    value = await request
                except BaseException as exc:
                    request = driver.throw(exc)
                else:
                    request = driver.switch(value)
        finally:
            if not driver.dead:
                driver.throw()  # GreenletExit unwinds the driver's stack (its finally blocks run)
        return request


class SimBus(Protocol):
    """One 32-bit bus transaction per call."""

    def read32(self, addr: int) -> Coroutine[Any, Any, int]: ...

    def write32(self, addr: int, data: int, strobes: int) -> Coroutine[Any, Any, None]: ...


class HdlAxiLiteBus:
    """The HDL AXI4-Lite transactor of tb_harness: write the command, flip a bit, await the answer.

    Uses raw GPI handles with immediate writes: three or four signal accesses and one await per
    transaction (a second one only for a slave that answers later than the cycle after it accepts),
    nothing per clock.
    """

    def __init__(self, top: Any) -> None:
        self._addr = top.cmd_addr._handle
        self._wdata = top.cmd_wdata._handle
        self._wstrb = top.cmd_wstrb._handle
        self._tgl_h = top.cmd_tgl._handle
        self._rdata = top.rsp_rdata._handle
        self._resp = top.rsp_resp._handle
        self._valid = top.rsp_valid
        self._done = top.rsp_tgl.value_change
        self._tgl = int(top.cmd_tgl.value)
        self.transactions = 0

    async def _late_response(self) -> None:
        await RisingEdge(self._valid)
        await ReadOnly()  # let every register of that edge settle before reading the response

    async def read32(self, addr: int) -> int:
        self._addr.set_signal_val_int(_NO_DELAY, addr & 0xFFFF_FFFF)
        self._wstrb.set_signal_val_int(_NO_DELAY, 0)
        self._tgl ^= 1
        self._tgl_h.set_signal_val_int(_NO_DELAY, self._tgl)
        self.transactions += 1
        await self._done
        if self._valid._handle.get_signal_val_binstr() != "1":
            await self._late_response()
        if self._resp.get_signal_val_long():
            raise BusError(f"AXI4-Lite read at {addr:#x}: response {self._resp.get_signal_val_long():#x}")
        return self._rdata.get_signal_val_long() & 0xFFFF_FFFF

    async def write32(self, addr: int, data: int, strobes: int = 0xF) -> None:
        if not 0 < strobes <= 0xF:
            raise ValueError(f"write strobes {strobes:#x} must be 1..0xf")
        self._addr.set_signal_val_int(_NO_DELAY, addr & 0xFFFF_FFFF)
        self._wdata.set_signal_val_int(_NO_DELAY, data & 0xFFFF_FFFF)
        self._wstrb.set_signal_val_int(_NO_DELAY, strobes)
        self._tgl ^= 1
        self._tgl_h.set_signal_val_int(_NO_DELAY, self._tgl)
        self.transactions += 1
        await self._done
        if self._valid._handle.get_signal_val_binstr() != "1":
            await self._late_response()
        if self._resp.get_signal_val_long():
            raise BusError(f"AXI4-Lite write at {addr:#x}: response {self._resp.get_signal_val_long():#x}")


class AxiLiteMasterBus:
    """cocotbext-axi's AxiLiteMaster as a SimBus (the reference bus model; slower, protocol-checked)."""

    def __init__(self, master: Any, offset_mask: int = 0xFFF) -> None:
        self.master = master
        self._mask = offset_mask
        self.transactions = 0

    async def read32(self, addr: int) -> int:
        self.transactions += 1
        data = await self.master.read_dword(addr & self._mask & ~3)
        return int(data)

    async def write32(self, addr: int, data: int, strobes: int = 0xF) -> None:
        self.transactions += 1
        if strobes == 0xF:
            await self.master.write_dword(addr & self._mask & ~3, data)
            return
        lanes = [i for i in range(4) if strobes >> i & 1]
        first, last = lanes[0], lanes[-1]
        if lanes != list(range(first, last + 1)):
            raise ValueError(f"strobes {strobes:#x} are not contiguous")
        raw = (data & 0xFFFF_FFFF).to_bytes(4, "little")[first:last + 1]
        await self.master.write((addr & self._mask & ~3) + first, raw)


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


class SimInterrupt(Interrupt):
    """A level interrupt output of the RTL.

    `wait(timeout)` returns as soon as the line is high. `timeout` is simulated time; the wait also
    gives up after max(timeout, min_wall_timeout) seconds of wall-clock time, so a simulation that
    crawls cannot hang a test. Masking keeps the line from being seen. ACK is the device's business
    (InterruptACK), so `ack()` does nothing at this "controller".
    """

    def __init__(self, line: cocotb.handle.LogicObject, name: str = "irq", *,
                 min_wall_timeout: float = 10.0, poll_interval: float = 20e-6) -> None:
        super().__init__(name)
        self.line = line
        self.min_wall_timeout = min_wall_timeout
        self.poll_interval = poll_interval
        self.masked = False
        self.events = 0

    def _high(self) -> bool:
        return not self.masked and self.line._handle.get_signal_val_binstr() == "1"

    async def wait_async(self, timeout: float) -> int:
        """The awaitable behind `wait`, for cocotb code."""
        if self._high():
            self.events += 1
            return 1
        end = get_sim_time("step") + max(1, get_sim_steps(timeout, "sec", round_mode="ceil"))
        wall_end = time.monotonic() + max(timeout, self.min_wall_timeout)
        chunk = max(1, get_sim_steps(self.poll_interval, "sec", round_mode="ceil"))
        edge = RisingEdge(self.line)
        while True:
            remaining = end - get_sim_time("step")
            if remaining <= 0:
                raise IrqTimeoutError(f"interrupt {self.name!r}: none within {timeout} s of simulated time")
            await First(edge, Timer(min(chunk, remaining), "step"))
            if self._high():
                self.events += 1
                return 1
            if time.monotonic() > wall_end:
                raise IrqTimeoutError(f"interrupt {self.name!r}: none within "
                                      f"{max(timeout, self.min_wall_timeout)} s of wall-clock time")

    def _wait(self, timeout: float) -> int:
        return bridge_await(self.wait_async(timeout))

    def _mask(self) -> None:
        self.masked = True

    def _unmask(self) -> None:
        self.masked = False
