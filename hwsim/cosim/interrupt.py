"""SimInterrupt: any RTL signal as a driver's `Interrupt`, waited for in simulated time.

A line is one signal, or one bit of a vector (`bit=`; `SimInterrupt.lines` makes one per bit), active
high or low, level- or edge-triggered. `wait` is an await on the signal's value changes, bounded in both
simulated and wall-clock time; nothing runs per clock. A bridged driver's wait on a level line parks its
greenlet on two raw simulator callbacks (the line's value change, the poll timer) instead of awaiting a
`First` in the cocotb task, which would start and cancel a task per trigger on every wait (bridge.py).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

import cocotb
import cocotb.handle
from cocotb import simulator
from cocotb.triggers import Event, First, Timer
from cocotb.utils import get_sim_steps, get_sim_time

from mmiotk.irq import Interrupt, IrqTimeoutError

from .bridge import CAN_PARK, bridge_await, current_driver


class SimInterrupt(Interrupt):
    """An interrupt output of the RTL.

    Level (the default): `wait(timeout)` returns as soon as the line is at its active level; ACK is the
    device's business (clearing its status register drops the line), so `ack()` does nothing here.
    Edge (`edge=True`): every change to the active level is latched, even while nobody waits or the line
    is masked, as an interrupt controller latches edges; `wait` returns the number latched since the last
    wait and consumes them. `timeout` is simulated time; the wait also gives up after
    max(timeout, min_wall_timeout) seconds of wall-clock time, so a simulation that crawls cannot hang a
    test. Masking keeps the line from being seen. The wall clock is checked every `poll_interval` of
    simulated time (100 us: 10,000 clocks at 100 MHz, milliseconds of wall-clock time under either
    simulator), rarely enough that a wait on a device with a realistic latency rarely wakes for it.
    """

    def __init__(self, line: cocotb.handle.LogicObject | Any, name: str = "irq", *, edge: bool = False,
                 active_low: bool = False, bit: int | None = None, min_wall_timeout: float = 10.0,
                 poll_interval: float = 100e-6) -> None:
        super().__init__(name)
        self.line = line
        self.edge = edge
        self.bit = bit
        self._active = "0" if active_low else "1"
        if bit is not None and not 0 <= bit < len(line):
            raise ValueError(f"interrupt {name!r}: bit {bit} of the {len(line)}-bit signal {line._path}")
        self.min_wall_timeout = min_wall_timeout
        self.poll_interval = poll_interval
        self.masked = False
        self.events = 0
        self.latched = 0
        self._change = line.value_change
        self._latch = Event()
        self._watcher = cocotb.start_soon(self._watch()) if edge else None

    @classmethod
    def lines(cls, signal: Any, name: str = "irq", **kwargs: Any) -> list[SimInterrupt]:
        """One interrupt per bit of `signal` (bit 0 first), each named `<name><bit>`."""
        return [cls(signal, f"{name}{i}", bit=i, **kwargs) for i in range(len(signal))]

    def _level(self) -> bool:
        value = self.line._handle.get_signal_val_binstr()
        return (value[-1 - self.bit] if self.bit is not None else value) == self._active

    async def _watch(self) -> None:
        before = self._level()
        while True:
            await self._change
            now = self._level()
            if now and not before:
                self.latched += 1
                self._latch.set()
            before = now

    def _take(self) -> int:
        if self.masked:
            return 0
        if self.edge:
            n, self.latched = self.latched, 0
            self._latch.clear()
        else:
            n = int(self._level())
        self.events += n
        return n

    def _bounds(self, timeout: float) -> tuple[int, float, int]:
        """A wait's simulated end (steps), its wall-clock end, and the poll timer's period (steps)."""
        end = get_sim_time("step") + max(1, get_sim_steps(timeout, "sec", round_mode="ceil"))
        wall_end = time.monotonic() + max(timeout, self.min_wall_timeout)
        return end, wall_end, max(1, get_sim_steps(self.poll_interval, "sec", round_mode="ceil"))

    def _timed_out(self, seconds: float, clock: str) -> IrqTimeoutError:
        return IrqTimeoutError(f"interrupt {self.name!r}: none within {seconds} s of {clock} time")

    async def wait_async(self, timeout: float) -> int:
        """The awaitable behind `wait`, for cocotb code."""
        n = self._take()
        if n:
            return n
        end, wall_end, chunk = self._bounds(timeout)
        while True:
            remaining = end - get_sim_time("step")
            if remaining <= 0:
                raise self._timed_out(timeout, "simulated")
            wake = self._latch.wait() if self.edge else self._change
            await First(wake, Timer(min(chunk, remaining), "step"))
            n = self._take()
            if n:
                return n
            if time.monotonic() > wall_end:
                raise self._timed_out(max(timeout, self.min_wall_timeout), "wall-clock")

    def _wait(self, timeout: float) -> int:
        if self.edge or not CAN_PARK:
            return bridge_await(self.wait_async(timeout))
        return self._wait_parked(current_driver(), timeout)

    def _wait_parked(self, driver: Any, timeout: float) -> int:
        """`wait_async`'s loop, run in the driver's greenlet: parked on the line's value change or the
        poll timer, whichever fires first (the other is deregistered before anything else runs)."""
        n = self._take()
        if n:
            return n
        end, wall_end, chunk = self._bounds(timeout)
        handle = self.line._handle
        armed = _Armed()

        def register(resume: Callable[[], None]) -> _Armed:
            armed.arm(resume,
                      lambda cb: simulator.register_value_change_callback(handle, cb, simulator.VALUE_CHANGE),
                      lambda cb: simulator.register_timed_callback(min(chunk, remaining), cb))
            return armed

        while True:
            remaining = end - get_sim_time("step")
            if remaining <= 0:
                raise self._timed_out(timeout, "simulated")
            try:
                driver.park(register)
            finally:
                armed.deregister()   # the one that did not fire (both, if the driver is being unwound)
            n = self._take()
            if n:
                return n
            if time.monotonic() > wall_end:
                raise self._timed_out(max(timeout, self.min_wall_timeout), "wall-clock")

    def _mask(self) -> None:
        self.masked = True

    def _unmask(self) -> None:
        self.masked = False

    def close(self) -> None:
        """Stop watching the line (edge mode)."""
        if self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None



class _Armed:
    """The callbacks of one parked wait as one handle: the first to fire resumes the driver, and
    `deregister` removes those still pending (never one that fired: a fired callback is gone)."""

    def __init__(self) -> None:
        self.pending: list[Any] = []

    def arm(self, resume: Callable[[], None], *registers: Callable[[Callable[[], None]], Any]) -> None:
        def fired(slot: list[Any]) -> None:
            if slot in self.pending:
                self.pending.remove(slot)
            resume()

        for register in registers:
            slot: list[Any] = []
            slot.append(register(functools.partial(fired, slot)))
            self.pending.append(slot)

    def deregister(self) -> None:
        while self.pending:
            self.pending.pop()[0].deregister()
