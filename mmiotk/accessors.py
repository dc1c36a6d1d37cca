"""The accessors of MmioBuffer: the pure-Python reference core, and the compiled core laid over it.

Every accessor call is one access of exactly its width, naturally aligned, inside the mapping, on a live
region, with an int value that fits; otherwise it raises (OutOfRangeError, AlignmentError, MmioValueError,
RevokedError, TypeError for an offset that is not an int) naming the buffer, operation, offset, width and
size, and nothing is accessed. Offsets and values are ints; numpy integers are taken at their value;
`True`/`False` and floats are refused.

`PyAccessors` is the reference: a mask test and one store or load through a lane (see `lanes`), with the
reason for a failure worked out only after the fact. Where the compiled core is built (see `native`),
`AccessorBase` puts its C methods in front of these: a memory-backed, native-order, untraced, live buffer
then never runs Python per access, and everything else (and every error) comes back here, so both cores
word their errors in one place.

Ordering follows Linux: `readX`/`writeX` are ordered against other MMIO and DMA memory, `*_relaxed` only
against each other. On TSO hosts (x86) the two are the same code, as in Linux, where neither needs a fence.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

import numpy as np

from . import barrier, native
from .errors import AlignmentError, MmioError, MmioValueError, OutOfRangeError, RevokedError, describe

if TYPE_CHECKING:
    from .lanes import Lane
    from .space import Window

# An offset fails the mask test when it is negative (Python ints carry infinite sign bits), absurdly
# large, or not a multiple of the width: one AND and one truth test on the hot path.
_NEG = ~((1 << 48) - 1)
_BAD8, _BAD16, _BAD32, _BAD64 = _NEG, _NEG | 1, _NEG | 3, _NEG | 7
_NOT32 = ~0xFFFF_FFFF
_WRITE_ERRORS = (IndexError, ValueError, TypeError, OverflowError)


_NO_VALUE: Any = object()  # what _fault gets for a read, where there is no value to blame


def _shown(offset: object) -> str:
    return f"{offset:#x}" if type(offset) is int else repr(offset)


class PyAccessors:
    """The pure-Python accessors; MmioBuffer provides the state they read."""

    size: int
    _revoked: bool
    _l8: Lane
    _l16: Lane
    _l32: Lane
    _l64: Lane
    _mem: memoryview | None
    _window: Window
    _start: int

    @property
    def name(self) -> str:
        raise NotImplementedError

    # --- hooks of the compiled core (no-ops here) ------------------------------------------------------
    def _core_attach(self, memory: memoryview) -> None:
        """Access `memory` directly (the compiled core only)."""

    def _core_attach_bus(self, read: Any, write: Any, start: int, size: int) -> None:
        """Call a transaction-backed window's `read`/`write` at `start` + offset (the compiled core only)."""

    def _core_direct(self, on: bool) -> bool:
        """Turn the compiled path on or off; returns whether it is on (never, here)."""
        return False

    def _core_detach(self) -> None:
        """Release the memory taken by `_core_attach`."""

    @property
    def _core_is_direct(self) -> bool:
        return False

    @property
    def _core_is_bus(self) -> bool:
        return False

    # --- failure diagnosis (cold path) ----------------------------------------------------------------
    def _fault(self, offset: int, width: int, value: Any = _NO_VALUE, exc: BaseException | None = None,
               op: str = "access") -> BaseException:
        if self._revoked:
            return RevokedError(f"{self.name}: region was revoked: {op} at {describe(offset, width, self.size)}")
        where = f"{self.name}: {op} at {describe(offset, width, self.size)}"
        if offset < 0 or offset + width > self.size:
            return OutOfRangeError(f"{where}: out of range")
        if offset % width:
            return AlignmentError(f"{where}: not aligned to {width} bytes")
        if value is not _NO_VALUE and (type(value) is not int or not 0 <= value < 1 << (8 * width)):
            return MmioValueError(f"{where}: value {value!r} does not fit in {width * 8} bits")
        return exc if exc is not None else MmioError(where)

    def _offset(self, offset: Any, width: int, op: str) -> int:
        """An offset that is not a plain int: a numpy (or other) integer's value, else TypeError."""
        if not isinstance(offset, bool):
            try:
                return operator.index(offset)
            except TypeError:
                pass
        raise TypeError(f"{self.name}: {op} at offset {offset!r}, width {width * 8} bits, size {self.size:#x}: "
                        f"offset must be an int, not {type(offset).__name__}")

    def _value(self, offset: int, value: Any, width: int, op: str) -> int:
        """A value that is not a plain int: a numpy (or other) integer's value, else MmioValueError."""
        if not isinstance(value, bool):
            try:
                return operator.index(value)
            except TypeError:
                pass
        raise self._fault(offset, width, value, op=op)

    # --- relaxed accessors: ordered only against each other --------------------------------------------
    def read8_relaxed(self, offset: int) -> int:
        if offset.__class__ is not int:
            offset = self._offset(offset, 1, "read8")
        if offset & _BAD8:
            raise self._fault(offset, 1, op="read8")
        try:
            return self._l8[offset]
        except IndexError as exc:
            raise self._fault(offset, 1, _NO_VALUE, exc, "read8") from None

    def read16_relaxed(self, offset: int) -> int:
        if offset.__class__ is not int:
            offset = self._offset(offset, 2, "read16")
        if offset & _BAD16:
            raise self._fault(offset, 2, op="read16")
        try:
            return self._l16[offset >> 1]
        except IndexError as exc:
            raise self._fault(offset, 2, _NO_VALUE, exc, "read16") from None

    def read32_relaxed(self, offset: int) -> int:
        if offset.__class__ is not int:
            offset = self._offset(offset, 4, "read32")
        if offset & _BAD32:
            raise self._fault(offset, 4, op="read32")
        try:
            return self._l32[offset >> 2]
        except IndexError as exc:
            raise self._fault(offset, 4, _NO_VALUE, exc, "read32") from None

    def read64_relaxed(self, offset: int) -> int:
        if offset.__class__ is not int:
            offset = self._offset(offset, 8, "read64")
        if offset & _BAD64:
            raise self._fault(offset, 8, op="read64")
        try:
            return self._l64[offset >> 3]
        except IndexError as exc:
            raise self._fault(offset, 8, _NO_VALUE, exc, "read64") from None

    def write8_relaxed(self, offset: int, value: int) -> None:
        if offset.__class__ is not int:
            offset = self._offset(offset, 1, "write8")
        if offset & _BAD8:
            raise self._fault(offset, 1, value, op="write8")
        if value.__class__ is not int:
            value = self._value(offset, value, 1, "write8")
        try:
            self._l8[offset] = value
        except _WRITE_ERRORS as exc:
            raise self._fault(offset, 1, value, exc, "write8") from None

    def write16_relaxed(self, offset: int, value: int) -> None:
        if offset.__class__ is not int:
            offset = self._offset(offset, 2, "write16")
        if offset & _BAD16:
            raise self._fault(offset, 2, value, op="write16")
        if value.__class__ is not int:
            value = self._value(offset, value, 2, "write16")
        try:
            self._l16[offset >> 1] = value
        except _WRITE_ERRORS as exc:
            raise self._fault(offset, 2, value, exc, "write16") from None

    def write32_relaxed(self, offset: int, value: int) -> None:
        if offset.__class__ is not int:
            offset = self._offset(offset, 4, "write32")
        if offset & _BAD32:
            raise self._fault(offset, 4, value, op="write32")
        if value.__class__ is not int:
            value = self._value(offset, value, 4, "write32")
        try:
            self._l32[offset >> 2] = value
        except _WRITE_ERRORS as exc:
            raise self._fault(offset, 4, value, exc, "write32") from None

    def write64_relaxed(self, offset: int, value: int) -> None:
        if offset.__class__ is not int:
            offset = self._offset(offset, 8, "write64")
        if offset & _BAD64:
            raise self._fault(offset, 8, value, op="write64")
        if value.__class__ is not int:
            value = self._value(offset, value, 8, "write64")
        try:
            self._l64[offset >> 3] = value
        except _WRITE_ERRORS as exc:
            raise self._fault(offset, 8, value, exc, "write64") from None

    # --- ordered accessors (Linux readX/writeX) --------------------------------------------------------
    if barrier.ORDERED_ACCESS_NEEDS_FENCE:
        def read8(self, offset: int) -> int:
            value = self.read8_relaxed(offset)
            barrier.io_ar()
            return value

        def read16(self, offset: int) -> int:
            value = self.read16_relaxed(offset)
            barrier.io_ar()
            return value

        def read32(self, offset: int) -> int:
            value = self.read32_relaxed(offset)
            barrier.io_ar()
            return value

        def read64(self, offset: int) -> int:
            value = self.read64_relaxed(offset)
            barrier.io_ar()
            return value

        def write8(self, offset: int, value: int) -> None:
            barrier.io_bw()
            self.write8_relaxed(offset, value)

        def write16(self, offset: int, value: int) -> None:
            barrier.io_bw()
            self.write16_relaxed(offset, value)

        def write32(self, offset: int, value: int) -> None:
            barrier.io_bw()
            self.write32_relaxed(offset, value)

        def write64(self, offset: int, value: int) -> None:
            barrier.io_bw()
            self.write64_relaxed(offset, value)
    else:
        # TSO: uncached accesses are already ordered; Linux's x86 readl/writel carry no fence either.
        read8, read16, read32, read64 = read8_relaxed, read16_relaxed, read32_relaxed, read64_relaxed
        write8, write16, write32, write64 = write8_relaxed, write16_relaxed, write32_relaxed, write64_relaxed

    # --- read-modify-write (Linux clrsetbits) ----------------------------------------------------------
    def modify32(self, offset: int, clear_mask: int, set_mask: int) -> int:
        """Write `(old & ~clear_mask) | set_mask`; returns the value written. Masks are checked first."""
        if clear_mask.__class__ is not int or set_mask.__class__ is not int or (clear_mask | set_mask) & _NOT32:
            clear_mask = self._mask(offset, "clear_mask", clear_mask)
            set_mask = self._mask(offset, "set_mask", set_mask)
        new = (self.read32(offset) & ~clear_mask) | set_mask
        self.write32(offset, new)
        return new

    def _mask(self, offset: Any, label: str, mask: Any) -> int:
        if not isinstance(mask, bool):
            try:
                value = operator.index(mask)
            except TypeError:
                pass
            else:
                if 0 <= value <= 0xFFFF_FFFF:
                    return value
        raise MmioValueError(f"{self.name}: modify32 at offset {_shown(offset)}: {label} {mask!r} "
                             "does not fit in 32 bits")

    def set_bits32(self, offset: int, mask: int) -> int:
        return self.modify32(offset, 0, mask)

    def clear_bits32(self, offset: int, mask: int) -> int:
        return self.modify32(offset, mask, 0)

    # --- block copies ----------------------------------------------------------------------------------
    def _check_span(self, offset: int, n: int, op: str) -> None:
        if self._revoked:
            raise RevokedError(f"{self.name}: region was revoked: {op} at offset {_shown(offset)}")
        if type(offset) is not int or type(n) is not int:
            raise TypeError(f"{self.name}: {op}: offset and length must be ints, not {offset!r} and {n!r}")
        if offset < 0 or n < 0 or offset + n > self.size:
            raise OutOfRangeError(f"{self.name}: {op} of {n} bytes at offset {offset:#x} is outside "
                                  f"size {self.size:#x}")

    def read_block(self, offset: int, n: int) -> bytes:
        """Copy `n` bytes out (a block copy, not a sequence of register accesses)."""
        mem = self._mem
        if mem is not None and offset.__class__ is int and n.__class__ is int and 0 <= offset and 0 <= n \
                and offset + n <= self.size:
            return mem[offset:offset + n].tobytes()
        self._check_span(offset, n, "read_block")
        return self._window.read_block(self._start + offset, n)

    def write_block(self, offset: int, data: bytes | bytearray | memoryview | np.ndarray) -> None:
        """Copy `data` in; checked whole before any byte is written."""
        mem = self._mem
        if mem is not None and type(data) in (bytes, bytearray) and offset.__class__ is int and 0 <= offset \
                and offset + len(data) <= self.size:
            mem[offset:offset + len(data)] = data  # type: ignore[assignment]  # bytes/bytearray here
            return
        try:
            view = memoryview(data)  # type: ignore[arg-type]  # ndarray exports the buffer protocol
        except TypeError:
            raise MmioValueError(f"{self.name}: write_block at offset {_shown(offset)}: data of type "
                                 f"{type(data).__name__} is not a bytes-like object") from None
        if not view.contiguous:
            raise MmioValueError(f"{self.name}: write_block at offset {_shown(offset)}: data is not contiguous")
        view = view.cast("B")
        self._check_span(offset, view.nbytes, "write_block")
        self._window.write_block(self._start + offset, view)


if TYPE_CHECKING:
    AccessorBase = PyAccessors
elif native.core is not None:
    class AccessorBase(native.core.Core, PyAccessors):
        """The compiled accessors in front of the pure-Python ones (which they fall back to)."""

    native.core.set_fallbacks({name: getattr(PyAccessors, name) for name in (
        "read8", "read16", "read32", "read64", "read8_relaxed", "read16_relaxed", "read32_relaxed",
        "read64_relaxed", "write8", "write16", "write32", "write64", "write8_relaxed", "write16_relaxed",
        "write32_relaxed", "write64_relaxed", "modify32", "read_block", "write_block")})
else:
    AccessorBase = PyAccessors
