"""Address spaces: where physical addresses resolve.

An `AddressSpace` opens a `Window` on [paddr, paddr + size) for one mapping. A window is either
*memory-backed* (`window.memory` is a writable byte memoryview over exactly that range, so accessors can
store through a cast memoryview with no Python call in between) or *transaction-backed* (`memory` is None
and every access is one `read`/`write` call: a simulated bus transaction, a qtest line). The buffer picks
its accessor path once, at map time.

Spaces that only simulate memory (`simulated = True`: RAM, simulators, QEMU) get the policy-faithful memory
model: write-combining buffers and stale caches behave the way hardware would (see `memmodel`).
"""

from __future__ import annotations

import contextlib
import mmap
from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, TypeVar

from .errors import OutOfRangeError
from .policy import CachePolicy, normalize_arch

if TYPE_CHECKING:
    from .memmodel import WriteCombiningWindow

PAGE_SIZE = mmap.PAGESIZE
_Space = TypeVar("_Space", bound="AddressSpace")


def page_span(paddr: int, size: int) -> tuple[int, int]:
    """The page-aligned start and length covering [paddr, paddr + size)."""
    start = paddr & ~(PAGE_SIZE - 1)
    end = (paddr + size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
    return start, end - start


class Window(ABC):
    """One mapping's view of [paddr, paddr + size) in a space. Offsets are relative to `paddr`.

    `read`/`write` perform exactly one access of `width` bytes (1, 2, 4 or 8), little-endian values;
    callers have already checked range, alignment and value.
    """

    memory: memoryview | None = None
    mechanism: str = ""

    def __init__(self, paddr: int, size: int) -> None:
        self.paddr = paddr
        self.size = size

    @abstractmethod
    def read(self, offset: int, width: int) -> int: ...

    @abstractmethod
    def write(self, offset: int, width: int, value: int) -> None: ...

    def read_block(self, offset: int, n: int) -> bytes:
        if self.memory is not None:
            return bytes(self.memory[offset:offset + n])
        return b"".join(self.read(offset + i, 1).to_bytes(1, "little") for i in range(n))

    def write_block(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        if self.memory is not None:
            self.memory[offset:offset + len(data)] = data
            return
        for i, byte in enumerate(bytes(data)):
            self.write(offset + i, 1, byte)

    def close(self) -> None:
        """Release what the window holds; safe to call twice."""


class MemoryWindow(Window):
    """A window over a byte memoryview (a slice of an mmap)."""

    def __init__(self, paddr: int, memory: memoryview, mechanism: str,
                 owner: mmap.mmap | None = None) -> None:
        super().__init__(paddr, len(memory))
        self.memory = memory
        self.mechanism = mechanism
        self._owner = owner

    def read(self, offset: int, width: int) -> int:
        assert self.memory is not None
        return int.from_bytes(self.memory[offset:offset + width], "little")

    def write(self, offset: int, width: int, value: int) -> None:
        assert self.memory is not None
        self.memory[offset:offset + width] = value.to_bytes(width, "little")

    def close(self) -> None:
        mem, self.memory = self.memory, None
        if mem is not None:
            try:
                mem.release()
            except BufferError:
                return  # a numpy view still uses it; the mmap goes when that does
        if self._owner is not None:
            with contextlib.suppress(BufferError):
                self._owner.close()
            self._owner = None


class AddressSpace(ABC):
    """A physical address range and the way to reach it.

    `arch` is the architecture whose mapping rules apply (the target's: QEMU's aarch64 virt board is
    aarch64 even on an x86 host). `simulated` spaces get the policy-faithful memory model.
    """

    simulated: bool = False
    coherent: bool = True

    def __init__(self, base: int, size: int, *, name: str, arch: str | None = None) -> None:
        self.base = base
        self.size = size
        self.name = name
        self.arch = normalize_arch(arch)
        self._wc_windows: list[WriteCombiningWindow] = []

    def contains(self, paddr: int, size: int) -> bool:
        return size > 0 and self.base <= paddr and paddr + size <= self.base + self.size

    def check_range(self, paddr: int, size: int) -> None:
        if not self.contains(paddr, size):
            raise OutOfRangeError(
                f"[{paddr:#x}, {paddr + size:#x}) is outside space {self.name!r} "
                f"[{self.base:#x}, {self.base + self.size:#x})")

    @abstractmethod
    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        """A window on [paddr, paddr + size) using the real mechanism for `policy` where there is one."""

    def add_wc_window(self, window: WriteCombiningWindow) -> None:
        """Have barriers on this space drain `window`'s write-combining buffers (the memory model calls it)."""
        self._wc_windows.append(window)

    def remove_wc_window(self, window: WriteCombiningWindow) -> None:
        """Forget a closed write-combining window; one never added is ignored."""
        if window in self._wc_windows:
            self._wc_windows.remove(window)

    def drain_write_buffers(self) -> None:
        """Make every write-combined store visible (what a CPU barrier does to WC buffers)."""
        for window in list(self._wc_windows):
            window.drain()

    def close(self) -> None:
        """Release the space's resources; safe to call twice."""

    def __enter__(self: _Space) -> _Space:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
