"""REG.poll(): read until a condition holds, with a timeout on the target's own clock (readx_poll_timeout).

The clock comes from the address space behind the buffer, so that mmiotk never imports a simulator:
a space that offers `now()` (seconds) and `sleep(seconds)` is polled on that clock; a simulated space that
offers only `sleep()` (SimSpace) is polled by counting the simulated time it was asked to let pass; any
other space on wall time (`time.monotonic`, `time.sleep`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from ..errors import MmioError

if TYPE_CHECKING:
    from .handle import RegisterHandle
    from .value import RegisterValue


class PollTimeout(MmioError, TimeoutError):
    """poll() gave up: the message names the register, the condition and the last value read."""


def _space_of(bus: Any) -> Any:
    while bus is not None:
        space = getattr(bus, "_space", None) or getattr(bus, "space", None)
        if space is not None:
            return space
        bus = getattr(bus, "parent", None)
    return None


class _Clock:
    """now()/sleep() of the target: the space's own, counted simulated time, or wall time."""

    def __init__(self, space: Any) -> None:
        now, sleep = getattr(space, "now", None), getattr(space, "sleep", None)
        self.simulated = bool(getattr(space, "simulated", False))
        self._elapsed = 0.0
        if callable(now) and callable(sleep):
            self.now, self._sleep = now, sleep
        elif callable(sleep) and self.simulated:
            self.now, self._sleep = self._counted, sleep
        else:
            self.now, self._sleep = time.monotonic, time.sleep

    def _counted(self) -> float:
        return self._elapsed

    def sleep(self, seconds: float) -> None:
        self._sleep(seconds)
        self._elapsed += seconds


def poll_register(handle: RegisterHandle, until: Callable[[RegisterValue], Any] | None, timeout: float,
                  interval: float | None, fields: Mapping[str, Any]) -> RegisterValue:
    spec = handle.spec
    if until is not None and fields:
        raise TypeError(f"poll {handle.name}: give a condition or field values, not both")
    if until is None and not fields:
        raise TypeError(f"poll {handle.name}: give a condition (a callable) or field values to wait for")
    if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout < 0:
        raise ValueError(f"poll {handle.name}: timeout {timeout!r} must be a number of seconds >= 0")
    if spec.read_effects:
        raise MmioError(f"poll {handle.name}: reading it changes state "
                        f"({', '.join(spec.read_effect_names())}); poll a register without read side effects")
    wanted = {name: spec.field(name, "poll").coerce(v, "poll") for name, v in fields.items()}

    def done(value: RegisterValue) -> bool:
        if until is not None:
            return bool(until(value))
        return all((int(value) >> spec.fields[n].lsb) & spec.fields[n].max == v for n, v in wanted.items())

    clock = _Clock(_space_of(handle._bus))
    step = interval if interval is not None else (timeout / 100 if clock.simulated else min(timeout / 100, 1e-3))
    deadline = clock.now() + timeout
    while True:
        value = handle.read()
        if done(value):
            return value
        if clock.now() >= deadline:
            what = "the condition" if until is not None else ", ".join(f"{n}={v}" for n, v in wanted.items())
            raise PollTimeout(f"poll {handle.name}: {what} not met within {timeout} s "
                              f"({'simulated' if clock.simulated else 'wall'} time); last read {value!r}")
        clock.sleep(step)
