"""Lanes: indexable views of a window at one access width, the only thing the hot path touches.

A lane is indexed by `offset // width`. For memory-backed windows in native byte order it is a cast
memoryview (`'B'`, `'H'`, `'I'`, `'Q'`): one C-level store or load of exactly that width, no Python call.
Otherwise it is a small object that forwards to the window (one bus transaction, one qtest line) or
byte-swaps. Revocation swaps a buffer's lanes for `RevokedLane`s, so live buffers pay nothing for the check.
"""

from __future__ import annotations

import sys
from typing import Literal, Protocol

from .errors import RevokedError
from .space import Window

FORMATS: dict[int, Literal["B", "H", "I", "Q"]] = {1: "B", 2: "H", 4: "I", 8: "Q"}
NATIVE = sys.byteorder


class Lane(Protocol):
    def __getitem__(self, index: int) -> int: ...
    def __setitem__(self, index: int, value: int) -> None: ...


class BusLane:
    """Forwards each access to `window.read`/`write` at `start + index * width`."""

    __slots__ = ("_count", "_read", "_start", "_width", "_write")

    def __init__(self, window: Window, start: int, size: int, width: int) -> None:
        self._read = window.read
        self._write = window.write
        self._start = start
        self._width = width
        self._count = size // width

    def __getitem__(self, index: int) -> int:
        if not 0 <= index < self._count:
            raise IndexError(index)
        return self._read(self._start + index * self._width, self._width)

    def __setitem__(self, index: int, value: int) -> None:
        if not 0 <= index < self._count:
            raise IndexError(index)
        if not 0 <= value < 1 << (8 * self._width):
            raise ValueError(value)
        self._write(self._start + index * self._width, self._width, value)


class SwappedLane:
    """A lane in the opposite byte order to the one below it (ioread32be & co)."""

    __slots__ = ("_inner", "_width")

    def __init__(self, inner: Lane, width: int) -> None:
        self._inner = inner
        self._width = width

    def _swap(self, value: int) -> int:
        return int.from_bytes(value.to_bytes(self._width, "little"), "big")

    def __getitem__(self, index: int) -> int:
        return self._swap(self._inner[index])

    def __setitem__(self, index: int, value: int) -> None:
        if not 0 <= value < 1 << (8 * self._width):
            raise ValueError(value)
        self._inner[index] = self._swap(value)


class RevokedLane:
    """What a revoked buffer accesses through: every access raises RevokedError."""

    __slots__ = ("_region", "_width")

    def __init__(self, region: str, width: int) -> None:
        self._region = region
        self._width = width

    def _fail(self, index: int) -> RevokedError:
        return RevokedError(f"region {self._region!r} was revoked: access at offset "
                            f"{index * self._width:#x}, width {self._width * 8} bits")

    def __getitem__(self, index: int) -> int:
        raise self._fail(index)

    def __setitem__(self, index: int, value: int) -> None:
        raise self._fail(index)


def make_lanes(window: Window, start: int, size: int, byteorder: str) -> tuple[Lane, Lane, Lane, Lane]:
    """Lanes for widths 1, 2, 4, 8 over [start, start + size) of `window`."""
    lanes: list[Lane] = []
    for width in (1, 2, 4, 8):
        lane: Lane
        if window.memory is not None:
            usable = size - size % width
            lane = window.memory[start:start + usable].cast(FORMATS[width])
            if byteorder != NATIVE and width > 1:
                lane = SwappedLane(lane, width)
        else:
            lane = BusLane(window, start, size, width)
            if byteorder != "little" and width > 1:
                lane = SwappedLane(lane, width)
        lanes.append(lane)
    return lanes[0], lanes[1], lanes[2], lanes[3]
