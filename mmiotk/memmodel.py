"""The policy-faithful memory model for simulated spaces.

Real hardware punishes missing barriers and cache maintenance only sometimes; a simulation that is always
coherent and in order never does. In spaces marked `simulated`, mmiotk therefore gives:

- WRITE_COMBINING: stores are held in a few line-sized buffers and merged, and reach memory only on a
  write barrier (`wmb()`/`mb()` on any buffer of the space), a read through the same mapping, or when the
  buffers fill up. Drained lines land newest first, so a missing barrier shows up as reordering.
  An ordered `writeX` elsewhere does NOT drain them (as on x86, where writel carries no sfence).
- CACHED on non-coherent memory: a write-back cache of 64-byte lines. Reads hit the cache and can be
  stale after the device wrote memory; writes stay in the cache until cleaned. `cache_clean()` writes dirty
  lines back; `cache_invalidate()` writes back and drops them (like arm64 `dc civac`).
"""

from __future__ import annotations

from collections import OrderedDict

from .policy import CachePolicy
from .space import AddressSpace, Window

LINE = 64


def wrap_for_policy(space: AddressSpace, window: Window, policy: CachePolicy, coherent: bool) -> Window:
    """The window a mapping really uses: the raw one, or the raw one behind the model of its policy
    (`coherent`: whether the mapped memory is snooped by the device, so a CPU cache in front is harmless)."""
    if not space.simulated:
        return window
    if policy is CachePolicy.WRITE_COMBINING:
        return WriteCombiningWindow(window, space)
    if policy is CachePolicy.CACHED and not coherent:
        return CachedWindow(window)
    return window


class WriteCombiningWindow(Window):
    """Stores merge in `buffers` line buffers until drained."""

    def __init__(self, inner: Window, space: AddressSpace, buffers: int = 4) -> None:
        super().__init__(inner.paddr, inner.size)
        self.inner = inner
        self.mechanism = f"{inner.mechanism} + write-combining model"
        self._space = space
        self._buffers = buffers
        self._lines: OrderedDict[int, dict[int, int]] = OrderedDict()
        space.add_wc_window(self)

    @property
    def pending(self) -> int:
        """Bytes written but not yet visible in memory."""
        return sum(len(line) for line in self._lines.values())

    def _store(self, offset: int, data: bytes) -> None:
        for i, byte in enumerate(data):
            pos = offset + i
            self._lines.setdefault(pos // LINE, {})[pos] = byte
            while len(self._lines) > self._buffers:
                self._flush_line(*self._lines.popitem(last=False))

    def _flush_line(self, _line: int, content: dict[int, int]) -> None:
        run_start, run = -1, bytearray()
        for pos in sorted(content):
            if run and pos != run_start + len(run):
                self.inner.write_block(run_start, bytes(run))
                run = bytearray()
            if not run:
                run_start = pos
            run.append(content[pos])
        if run:
            self.inner.write_block(run_start, bytes(run))

    def drain(self) -> None:
        while self._lines:
            self._flush_line(*self._lines.popitem(last=True))  # newest first: exposes missing barriers

    def read(self, offset: int, width: int) -> int:
        self.drain()
        return self.inner.read(offset, width)

    def write(self, offset: int, width: int, value: int) -> None:
        self._store(offset, value.to_bytes(width, "little"))

    def read_block(self, offset: int, n: int) -> bytes:
        self.drain()
        return self.inner.read_block(offset, n)

    def write_block(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        self._store(offset, bytes(data))

    def close(self) -> None:
        self.drain()
        self._space.remove_wc_window(self)
        self.inner.close()


class CachedWindow(Window):
    """A write-back, write-allocate cache of `capacity` 64-byte lines in front of non-coherent memory."""

    def __init__(self, inner: Window, capacity: int = 512) -> None:
        super().__init__(inner.paddr, inner.size)
        self.inner = inner
        self.mechanism = f"{inner.mechanism} + non-coherent cache model"
        self._capacity = capacity
        self._lines: OrderedDict[int, bytearray] = OrderedDict()
        self._dirty: set[int] = set()

    def _line(self, index: int) -> bytearray:
        line = self._lines.get(index)
        if line is None:
            start = index * LINE
            line = bytearray(self.inner.read_block(start, min(LINE, self.size - start)))
            self._lines[index] = line
            while len(self._lines) > self._capacity:
                self._evict(next(iter(self._lines)))
        else:
            self._lines.move_to_end(index)
        return line

    def _evict(self, index: int) -> None:
        self._write_back(index)
        del self._lines[index]

    def _write_back(self, index: int) -> None:
        if index in self._dirty:
            self.inner.write_block(index * LINE, bytes(self._lines[index]))
            self._dirty.discard(index)

    def _span(self, offset: int, n: int) -> range:
        return range(offset // LINE, (offset + max(n, 1) - 1) // LINE + 1)

    def read_block(self, offset: int, n: int) -> bytes:
        out = bytearray()
        for index in self._span(offset, n):
            line = self._line(index)
            lo = max(offset, index * LINE) - index * LINE
            hi = min(offset + n, index * LINE + len(line)) - index * LINE
            out += line[lo:hi]
        return bytes(out)

    def write_block(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        for index in self._span(offset, len(data)):
            line = self._line(index)
            lo = max(offset, index * LINE)
            hi = min(offset + len(data), index * LINE + len(line))
            line[lo - index * LINE:hi - index * LINE] = data[lo - offset:hi - offset]
            self._dirty.add(index)

    def read(self, offset: int, width: int) -> int:
        return int.from_bytes(self.read_block(offset, width), "little")

    def write(self, offset: int, width: int, value: int) -> None:
        self.write_block(offset, value.to_bytes(width, "little"))

    def cache_clean(self, offset: int, size: int) -> None:
        for index in self._span(offset, size):
            if index in self._lines:
                self._write_back(index)

    def cache_invalidate(self, offset: int, size: int) -> None:
        for index in self._span(offset, size):
            if index in self._lines:
                self._evict(index)

    def close(self) -> None:
        for index in list(self._lines):
            self._evict(index)
        self.inner.close()
