"""SimInterrupt: an RTL interrupt output as a driver's `Interrupt`, waited for in simulated time.

`wait` is an await on the line, bounded in both simulated and wall-clock time.
"""

from __future__ import annotations

import time

import cocotb.handle
from cocotb.triggers import First, RisingEdge, Timer
from cocotb.utils import get_sim_steps, get_sim_time

from mmiotk.irq import Interrupt, IrqTimeoutError

from .bridge import bridge_await


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
