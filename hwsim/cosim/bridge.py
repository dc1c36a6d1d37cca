"""The bridge: ordinary synchronous driver code, run inside a cocotb test.

The driver runs in a greenlet started by `Bridge.run`. An access through a `SimSpace` either switches to
the cocotb task, which awaits the bus transaction and switches back with the result (or throws the
exception into the driver), or — for the HDL masters — parks the driver on the master's completion
callback (`park`): the simulator's callback switches straight back into the driver, with no cocotb task,
trigger or scheduler pass per access; the task awaits only the driver's end (or its next ordinary
await). No threads, and the driver never knows it is simulated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from cocotb.triggers import Event
from greenlet import greenlet

from mmiotk.errors import MmioError

T = TypeVar("T")

PARKED = object()  # what a parked driver hands its parent: "resume me from the callback, not from here"

try:  # the two cocotb internals a callback that resumes Python code must keep right (cocotb 2.x)
    from cocotb import _event_loop, _gpi_triggers

    CAN_PARK = hasattr(_event_loop, "_inst") and hasattr(_gpi_triggers, "_current_gpi_trigger")
except ImportError:  # pragma: no cover - another cocotb: accesses take the ordinary await path
    CAN_PARK = False


class NotBridgedError(MmioError, RuntimeError):
    """A simulated access was made outside `Bridge.run`, where there is no cocotb task to await it."""


class DriverGreenlet(greenlet):
    """The greenlet a bridged driver runs in (the type is how accesses know they may switch)."""

    wake: Event
    outcome: tuple[str, Any] | None = None
    callback: Any = None   # the simulator callback a parked driver waits on
    phase: Any = None      # the trigger cocotb's phase checks see while the driver runs from a callback

    def __init__(self, run: Callable[..., Any], parent: greenlet) -> None:
        super().__init__(run, parent)
        self.resume = self._resume   # bound once: a parked access hands it to the simulator as its callback

    def park(self, register: Callable[[Callable[[], None]], Any]) -> None:
        """Wait, in the driver, for the callback `register(resume)` arranges; returns when it fired. (The
        HDL masters' accesses do the same two steps inline.)"""
        self.callback = register(self.resume)
        self.parent.switch(PARKED)

    def _resume(self) -> None:
        """The simulator callback: run the driver on until it parks again, ends or awaits normally."""
        self.callback = None
        if self.phase is None:
            from cocotb.triggers import Timer

            self.phase = Timer(1, "step")   # an ordinary, writable phase of the time step
        _gpi_triggers._current_gpi_trigger = self.phase
        try:
            request = self.switch()
        except BaseException as exc:
            self.outcome = ("raise", exc)
        else:
            if request is not PARKED:
                self.outcome = ("return", request) if self.dead else ("await", request)
        if self.outcome is not None:
            self.wake.set()
        loop = _event_loop._inst  # what cocotb does after every callback: run the tasks it woke (if any)
        if loop._callbacks:
            loop.run()

    def unpark(self) -> None:
        if self.callback is not None:
            self.callback.deregister()
            self.callback = None


def current_driver() -> DriverGreenlet:
    """The bridged driver calling this, or NotBridgedError."""
    current = greenlet.getcurrent()
    if not isinstance(current, DriverGreenlet):
        raise NotBridgedError("a simulated access needs the driver to run under hwsim.cosim.Bridge.run()")
    return current


def bridge_await(awaitable: Awaitable[T]) -> T:
    """From synchronous code running under `Bridge.run`: await `awaitable` in the cocotb task.

    Returns its result, or raises what it raised.
    """
    current = greenlet.getcurrent()
    if not isinstance(current, DriverGreenlet):
        if hasattr(awaitable, "close"):
            awaitable.close()  # a coroutine that will never run
        raise NotBridgedError("a simulated access needs the driver to run under hwsim.cosim.Bridge.run()")
    return current.parent.switch(awaitable)


class Bridge:
    """Runs synchronous functions inside a cocotb test."""

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call `fn(*args, **kwargs)` in a driver greenlet; its simulated accesses await here (or park on
        their bus's callback, see `DriverGreenlet.park`)."""
        driver = DriverGreenlet(fn, parent=greenlet.getcurrent())
        driver.wake = Event()
        request = driver.switch(*args, **kwargs)
        try:
            while not driver.dead:
                if request is PARKED:
                    await driver.wake.wait()
                    driver.wake.clear()
                    assert driver.outcome is not None
                    (kind, value), driver.outcome = driver.outcome, None
                    if kind == "raise":
                        raise value
                    request = value
                    continue
                try:
                    value = await request
                except BaseException as exc:
                    request = driver.throw(exc)
                else:
                    request = driver.switch(value)
        finally:
            if not driver.dead:
                driver.unpark()
                driver.throw()  # GreenletExit unwinds the driver's stack (its finally blocks run)
        return request
