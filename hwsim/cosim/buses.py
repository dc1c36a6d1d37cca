"""Bus models: how a `SimSpace` turns one access into transactions on the RTL's bus.

A bus model has a data width (`width`, bytes: 4 or 8) and two coroutines: `read(addr, nbytes)` and
`write(addr, nbytes, value)`, one naturally aligned access of 1, 2, 4 or 8 bytes. An access as wide as
the bus or narrower is one transaction on the word that holds it (write strobes select its bytes); an
8-byte access on a 4-byte bus is two transactions, the low word first. An error response raises
`mmiotk.errors.BusError` naming the bus, address, width and response.

Two families implement it: `hdl_buses` drives the HDL masters of `hdl/` (one Python await per whole
transaction) and `ext_buses` wraps cocotbext masters (protocol-checked, one await per clock inside).
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, Protocol

from mmiotk.errors import BusError, MmioValueError

__all__ = ["BusError", "SimBus", "check_access", "lanes", "split_halves"]


class SimBus(Protocol):
    """One access of `nbytes` at `addr`: one transaction, or two for 8 bytes on a 4-byte bus."""

    width: int

    def read(self, addr: int, nbytes: int = 4) -> Coroutine[Any, Any, int]: ...

    def write(self, addr: int, nbytes: int, value: int) -> Coroutine[Any, Any, None]: ...


def check_access(bus: str, addr: int, nbytes: int) -> None:
    """Refuse, before any transaction, an access no bus can carry."""
    if nbytes not in (1, 2, 4, 8):
        raise MmioValueError(f"{bus}: access width {nbytes} bytes at {addr:#x} is not 1, 2, 4 or 8")
    if addr < 0 or addr & (nbytes - 1):
        raise MmioValueError(f"{bus}: {nbytes}-byte access at {addr:#x} is not naturally aligned")


def lanes(addr: int, nbytes: int, width: int) -> tuple[int, int, int]:
    """(word address, byte shift, strobes) of an access no wider than the bus."""
    shift = addr & (width - 1)
    return addr - shift, shift, ((1 << nbytes) - 1) << shift


def split_halves(value: int) -> tuple[int, int]:
    """An 8-byte value as the two 4-byte values a 32-bit bus carries, low first."""
    return value & 0xFFFF_FFFF, (value >> 32) & 0xFFFF_FFFF
