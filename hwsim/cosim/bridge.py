"""The bridge: ordinary synchronous driver code, run inside a cocotb test.

The driver runs in a greenlet started by `Bridge.run`. Every access it makes through a `SimSpace`
switches to the cocotb task, which awaits one bus transaction and switches back with the result (or
throws the exception into the driver). No threads, no per-access handoff between threads, and the driver
never knows it is simulated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from greenlet import greenlet

from mmiotk.errors import MmioError

T = TypeVar("T")


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


def bridged_task() -> greenlet:
    """The cocotb task's greenlet, for synchronous code that starts a transaction itself and then awaits
    its trigger with `.switch(trigger)`; raises NotBridgedError (before anything is started) outside
    `Bridge.run`."""
    current = greenlet.getcurrent()
    if not isinstance(current, _DriverGreenlet):
        raise NotBridgedError("a simulated access needs the driver to run under hwsim.cosim.Bridge.run()")
    return current.parent


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
