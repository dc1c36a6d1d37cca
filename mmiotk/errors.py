"""Every error mmiotk raises derives from MmioError, so callers can catch the whole family at once."""

from __future__ import annotations


class MmioError(Exception):
    """Base of all mmiotk errors."""


class OutOfRangeError(MmioError, IndexError):
    """An access, region or view reaches outside what it was given."""


class AlignmentError(MmioError, ValueError):
    """An access is not naturally aligned for its width."""


class MmioValueError(MmioError, ValueError):
    """A value does not fit the width it is written with, or an argument is malformed."""


class RevokedError(MmioError):
    """The region behind a mapping was revoked (its device was unbound or removed)."""


class BadStateError(MmioError):
    """The object is in a state that forbids the operation (e.g. remapping with another cache policy)."""


class PolicyError(MmioError, ValueError):
    """A cache policy is not allowed for this region on this architecture or backend."""


class AccessError(MmioError):
    """A register access its access type forbids (writing RO, reading WO)."""


class BusError(MmioError):
    """A bus transaction ended with an error response (AXI SLVERR/DECERR, APB PSLVERR, Wishbone ERR_O,
    Avalon-MM SLVERR/DECODEERROR): the device itself refused the access."""

    def __init__(self, bus: str, op: str, addr: int, width_bytes: int, response: str) -> None:
        self.bus = bus
        self.op = op
        self.addr = addr
        self.width_bytes = width_bytes
        self.response = response
        super().__init__(f"{bus} {op} at {addr:#x}, width {width_bytes * 8} bits: {response}")

    def __reduce__(self) -> tuple[type, tuple[str, str, int, int, str]]:
        return type(self), (self.bus, self.op, self.addr, self.width_bytes, self.response)


def describe(offset: int, width_bytes: int, size: int) -> str:
    """The common wording of an access: which offset, how wide, inside what."""
    return f"offset {offset:#x}, width {width_bytes * 8} bits, size {size:#x}"
