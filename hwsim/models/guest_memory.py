"""GuestMemory: what a model's DMA engine sees — one range of guest RAM, bounds-checked on every access.

A device model never touches memory outside [base, base + size): an address outside raises `DmaError`,
which the device turns into its defined error behaviour (never a Python crash inside the driver's write).
"""

from __future__ import annotations

import struct

from mmiotk.errors import MmioError, MmioValueError


class DmaError(MmioError):
    """A device access to guest memory outside RAM."""


_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_DESC = struct.Struct("<QIHH")


class GuestMemory:
    """Little-endian DMA access to a writable byte memoryview that stands at guest address `base`."""

    def __init__(self, memory: memoryview, base: int) -> None:
        if memory.readonly or memory.format != "B" or memory.ndim != 1:
            raise MmioValueError("GuestMemory needs a writable, one-dimensional byte memoryview")
        self.memory = memory
        self.base = base
        self.size = len(memory)

    def contains(self, addr: int, n: int) -> bool:
        """True when [addr, addr + n) lies inside RAM (n == 0 counts as inside at any RAM address)."""
        return self.base <= addr and n >= 0 and addr + n <= self.base + self.size

    def _offset(self, addr: int, n: int) -> int:
        if not self.contains(addr, n):
            raise DmaError(f"DMA of {n} bytes at {addr:#x} is outside guest RAM "
                           f"[{self.base:#x}, {self.base + self.size:#x})")
        return addr - self.base

    def read(self, addr: int, n: int) -> memoryview:
        """A view (not a copy) of [addr, addr + n)."""
        off = self._offset(addr, n)
        return self.memory[off:off + n]

    def write(self, addr: int, data: bytes | bytearray | memoryview) -> None:
        off = self._offset(addr, len(data))
        self.memory[off:off + len(data)] = data

    def read_u16(self, addr: int) -> int:
        return int(_U16.unpack_from(self.memory, self._offset(addr, 2))[0])

    def write_u16(self, addr: int, value: int) -> None:
        _U16.pack_into(self.memory, self._offset(addr, 2), value)

    def write_u32(self, addr: int, value: int) -> None:
        _U32.pack_into(self.memory, self._offset(addr, 4), value)

    def read_desc(self, addr: int) -> tuple[int, int, int, int]:
        """One 16-byte split-queue descriptor: (addr, len, flags, next)."""
        fields: tuple[int, int, int, int] = _DESC.unpack_from(self.memory, self._offset(addr, 16))
        return fields
