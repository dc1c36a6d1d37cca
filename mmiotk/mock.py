"""Mock MMIO: a buffer whose every access is checked against expectations, at the call site.

    mock = MockMmio(0x100)
    mock.expect_read32(0x04, 0x1)           # the read at 0x04 returns 0x1
    mock.expect_write32(0x00, 0x3)          # the next access must be this write
    driver = MyDriver(mock.buffer)          # a real MmioBuffer, made through the real core path
    driver.start()                          # a wrong offset, width or value raises AssertionError here
    mock.verify()                           # AssertionError listing what was expected and never happened

Expectations are met in one global order by default; `MockMmio(ordered=False)` keeps one queue per
register instead (accesses to different registers may interleave freely). `MockMmio.from_trace(trace)`
turns a recording made against RTL, QEMU or hardware into expectations.

The buffer is built the way a driver's is: a `CallbackSpace` (an AddressSpace whose transaction-backed
windows call Python functions), an `MmioResource`, `create_region`, `map`.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .policy import CachePolicy
from .region import MmioResource
from .space import AddressSpace, Window

if TYPE_CHECKING:
    from .buffer import MmioBuffer
    from .registers import RegisterHandle
    from .trace import Trace

__all__ = ["ANY", "CallbackSpace", "CallbackWindow", "Expectation", "MockMmio"]


class _Any:
    def __repr__(self) -> str:
        return "ANY"


ANY: Any = _Any()
"""Matches any written value: `mock.expect_write32(0x10, ANY)`."""

ReadFn = Callable[[int, int], int]
WriteFn = Callable[[int, int, int], None]


# --------------------------------------------------------------------------------------------------
# A space whose accesses are Python calls (mocks, behavioural fakes, models)
# --------------------------------------------------------------------------------------------------
class CallbackWindow(Window):
    """A transaction-backed window: `read(offset, width)` and `write(offset, width, value)` call the
    functions given, with offsets relative to the start of the space. Block copies call `read_block` /
    `write_block` when given, else go byte by byte through `read`/`write`."""

    def __init__(self, paddr: int, size: int, start: int, read: ReadFn, write: WriteFn, mechanism: str,
                 read_block: Callable[[int, int], bytes] | None = None,
                 write_block: Callable[[int, bytes], None] | None = None) -> None:
        super().__init__(paddr, size)
        self.mechanism = mechanism
        self._start = start
        self._read = read
        self._write = write
        self._read_block = read_block
        self._write_block = write_block

    def read(self, offset: int, width: int) -> int:
        return self._read(self._start + offset, width)

    def write(self, offset: int, width: int, value: int) -> None:
        self._write(self._start + offset, width, value)

    def read_block(self, offset: int, n: int) -> bytes:
        if self._read_block is not None:
            return self._read_block(self._start + offset, n)
        return super().read_block(offset, n)

    def write_block(self, offset: int, data: bytes | bytearray | memoryview) -> None:
        if self._write_block is not None:
            self._write_block(self._start + offset, bytes(data))
            return
        super().write_block(offset, data)


class CallbackSpace(AddressSpace):
    """An address space of `size` bytes at `base` where every access is a call to `read`/`write`."""

    def __init__(self, size: int, read: ReadFn, write: WriteFn, *, base: int = 0, name: str = "callback",
                 mechanism: str = "python callbacks", read_block: Callable[[int, int], bytes] | None = None,
                 write_block: Callable[[int, bytes], None] | None = None, arch: str | None = None) -> None:
        super().__init__(base, size, name=name, arch=arch)
        self._read, self._write = read, write
        self._read_block, self._write_block = read_block, write_block
        self._mechanism = mechanism

    def open(self, paddr: int, size: int, policy: CachePolicy) -> Window:
        self.check_range(paddr, size)
        return CallbackWindow(paddr, size, paddr - self.base, self._read, self._write, self._mechanism,
                              self._read_block, self._write_block)

    def map_all(self, name: str | None = None) -> MmioBuffer:
        """The whole space as one device region, mapped UNCACHED_DEVICE, through the real core path."""
        resource = MmioResource(self, self.base, self.size)
        region = resource.create_region(self.base, self.size, name or self.name)
        return region.map(CachePolicy.UNCACHED_DEVICE)


# --------------------------------------------------------------------------------------------------
# Expectations
# --------------------------------------------------------------------------------------------------
@dataclass
class Expectation:
    """One expected access. For reads `value` is what the read returns; for writes what must be written
    (compared under `mask`; ANY matches anything). `times` counts how often it is still expected."""

    kind: str            # "read" | "write" | "read_block" | "write_block"
    offset: int
    width: int           # bytes (block: length)
    value: Any
    mask: int | None = None
    times: int = 1
    where: str = ""
    label: str = ""
    met: int = field(default=0, compare=False)

    def describe(self) -> str:
        if self.kind.endswith("_block"):
            data = self.value if isinstance(self.value, bytes) else b""
            text = f"{self.kind} {self.offset:#x} ({self.width} bytes{': ' + data[:16].hex() if data else ''})"
        elif self.kind == "read":
            text = f"read{self.width * 8} {self.offset:#x} -> {self.value:#x}"
        else:
            shown = "ANY" if self.value is ANY else f"{self.value:#x}"
            if self.mask is not None:
                shown += f" (mask {self.mask:#x})"
            text = f"write{self.width * 8} {self.offset:#x} <- {shown}"
        if self.label:
            text += f" [{self.label}]"
        if self.times > 1:
            text += f" x{self.times - self.met} more"
        return text + (f"  (expected at {self.where})" if self.where else "")

    def matches_value(self, value: Any) -> bool:
        if self.value is ANY:
            return True
        if self.kind == "write_block":
            return bool(value == self.value)
        mask = self.mask
        return bool((value & mask) == (self.value & mask)) if mask is not None else value == self.value


def _caller() -> str:
    """file:line of the test code that declared an expectation (the first frame outside this module)."""
    frame = sys._getframe(1)
    here = __file__
    while frame is not None and frame.f_code.co_filename == here:
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return ""
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


class MockMmio:
    """A mock device of `size` bytes: `.buffer` is a real MmioBuffer whose accesses are checked.

    `ordered=True` (default): every access must be the next expectation, in one global order.
    `ordered=False`: one queue per offset; registers may interleave, each register's accesses keep order.
    """

    def __init__(self, size: int = 0x1000, *, ordered: bool = True, base: int = 0, name: str = "mock") -> None:
        self.ordered = ordered
        self.name = name
        self.space = CallbackSpace(size, self._on_read, self._on_write, base=base, name=name,
                                   mechanism="mock (expectations)", read_block=self._on_read_block,
                                   write_block=self._on_write_block)
        self.buffer: MmioBuffer = self.space.map_all(name)
        self._queue: deque[Expectation] = deque()            # ordered
        self._by_offset: dict[int, deque[Expectation]] = {}  # unordered
        self._declared: list[Expectation] = []
        self.accesses: list[tuple[str, int, int, Any]] = []  # what really happened: kind, offset, width, value
        self.failures: list[str] = []

    def __repr__(self) -> str:
        return f"<MockMmio {self.name!r} size={self.space.size:#x} {len(self.pending)} pending>"

    def __enter__(self) -> MockMmio:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.verify()

    # --- declaring ------------------------------------------------------------------------------------
    def _add(self, exp: Expectation) -> Expectation:
        size = self.space.size
        if not isinstance(exp.offset, int) or exp.offset < 0 or exp.offset + exp.width > size:
            raise ValueError(f"{self.name}: expectation {exp.describe()} is outside the mock (size {size:#x})")
        if exp.kind in ("read", "write") and exp.offset % exp.width:
            raise ValueError(f"{self.name}: expectation {exp.describe()} is not aligned to its width")
        if exp.kind == "read" and not (isinstance(exp.value, int) and 0 <= exp.value < 1 << (8 * exp.width)):
            raise ValueError(f"{self.name}: read value {exp.value!r} does not fit in {exp.width * 8} bits")
        if exp.times < 1:
            raise ValueError(f"{self.name}: times must be >= 1")
        self._declared.append(exp)
        if self.ordered:
            self._queue.append(exp)
        else:
            self._by_offset.setdefault(exp.offset, deque()).append(exp)
        return exp

    def _expect(self, kind: str, offset: int, width: int, value: Any, mask: int | None = None,
                times: int = 1, label: str = "") -> Expectation:
        return self._add(Expectation(kind, offset, width, value, mask, times, _caller(), label))

    def expect_read8(self, offset: int, value: int, *, times: int = 1) -> Expectation:
        return self._expect("read", offset, 1, value, times=times)

    def expect_read16(self, offset: int, value: int, *, times: int = 1) -> Expectation:
        return self._expect("read", offset, 2, value, times=times)

    def expect_read32(self, offset: int, value: int, *, times: int = 1) -> Expectation:
        """The next read (of 32 bits at `offset`) returns `value`; `times` repeats it (polling loops)."""
        return self._expect("read", offset, 4, value, times=times)

    def expect_read64(self, offset: int, value: int, *, times: int = 1) -> Expectation:
        return self._expect("read", offset, 8, value, times=times)

    def expect_write8(self, offset: int, value: Any, *, mask: int | None = None, times: int = 1) -> Expectation:
        return self._expect("write", offset, 1, value, mask, times)

    def expect_write16(self, offset: int, value: Any, *, mask: int | None = None, times: int = 1) -> Expectation:
        return self._expect("write", offset, 2, value, mask, times)

    def expect_write32(self, offset: int, value: Any, *, mask: int | None = None, times: int = 1) -> Expectation:
        """The next access is a 32-bit write of `value` at `offset` (only bits in `mask`, if given;
        `ANY` accepts any value)."""
        return self._expect("write", offset, 4, value, mask, times)

    def expect_write64(self, offset: int, value: Any, *, mask: int | None = None, times: int = 1) -> Expectation:
        return self._expect("write", offset, 8, value, mask, times)

    def expect_read_block(self, offset: int, data: bytes) -> Expectation:
        return self._expect("read_block", offset, len(data), bytes(data))

    def expect_write_block(self, offset: int, data: bytes) -> Expectation:
        """A block copy of exactly `data` to `offset`."""
        return self._expect("write_block", offset, len(data), bytes(data))

    # register-aware forms: a bound register handle gives offset and width; fields give the value
    def expect_read(self, register: RegisterHandle, value: int | None = None, *, times: int = 1,
                    **fields: Any) -> Expectation:
        """The next read of `register` (a handle bound to this mock's buffer) returns `value` or the
        register's reset value with `fields` set. A register with an accesswidth below its width expects
        one read per piece, in ascending address order (what the handle does); the last is returned."""
        raw = int(register.value(value, **fields))
        pieces = register.spec.pieces
        if len(pieces) == 1:
            return self._expect("read", register.offset, register.width // 8, raw, times=times,
                                label=register.name)
        exp = None
        for _ in range(times):
            for boff, shift, pmask in pieces:
                exp = self._expect("read", register.offset + boff, register.spec.accesswidth // 8,
                                   (raw & pmask) >> shift, label=register.name)
        assert exp is not None
        return exp

    def expect_write(self, register: RegisterHandle, value: int | None = None, *, times: int = 1,
                     **fields: Any) -> Expectation:
        """The next write of `register` is `value`, or, with `fields`, has those field values (other bits
        are not compared). A register with an accesswidth below its width expects one write per piece
        holding a compared bit, in ascending address order."""
        if value is not None and fields:
            raise TypeError("expect_write: give a value or fields, not both")
        spec = register.spec
        if value is not None:
            raw, mask = int(register.value(value)), spec.all
        elif not fields:
            raw, mask = 0, -1
        else:
            mask = 0
            raw = 0
            for name, v in fields.items():
                f = spec.field(name, "expect_write")
                mask |= f.mask
                raw |= f.coerce(v, "expect_write") << f.lsb
        if len(spec.pieces) == 1:
            if mask == -1:
                return self._expect("write", register.offset, spec.nbytes, ANY, None, times, label=register.name)
            return self._expect("write", register.offset, spec.nbytes, raw, None if mask == spec.all else mask,
                                times, label=register.name)
        exp = None
        for _ in range(times):
            for boff, shift, pmask in spec.pieces:
                if not (mask & pmask):
                    continue
                width = spec.accesswidth // 8
                if mask == -1:
                    exp = self._expect("write", register.offset + boff, width, ANY, None, label=register.name)
                elif mask == spec.all:
                    exp = self._expect("write", register.offset + boff, width, (raw & pmask) >> shift,
                                       label=register.name)
                else:
                    exp = self._expect("write", register.offset + boff, width, (raw & pmask) >> shift,
                                       (mask & pmask) >> shift, label=register.name)
        assert exp is not None
        return exp

    @classmethod
    def from_trace(cls, trace: Trace | str | os.PathLike[str], *, size: int | None = None,
                   ordered: bool = True, name: str | None = None) -> MockMmio:
        """A mock expecting exactly the accesses of a recording (a Trace or a JSON-lines file): reads
        return what they returned then, writes must write what was written then."""
        from .trace import Trace

        if not isinstance(trace, Trace):
            trace = Trace.load(trace)
        accesses = trace.accesses
        if size is None:
            size = trace.size or max((a.offset + max(a.width // 8, 1) for a in accesses), default=8)
            size = (size + 7) & ~7
        mock = cls(size, ordered=ordered, name=name or trace.name or "replay")
        for number, a in enumerate(accesses, 1):
            where = f"trace access #{number}"
            label = a.register or ""
            if a.kind in ("read", "write"):
                mock._add(Expectation(a.kind, a.offset, a.width // 8, a.value, None, 1, where, label))
            else:
                data = bytes(a.value) if isinstance(a.value, bytes) else b""
                mock._add(Expectation(a.kind, a.offset, len(data), data, None, 1, where, label))
        return mock

    # --- checking -------------------------------------------------------------------------------------
    @property
    def pending(self) -> list[Expectation]:
        """Expectations not (fully) met yet, in declaration order."""
        return [e for e in self._declared if e.met < e.times]

    def verify(self) -> None:
        """Raise AssertionError if an access failed earlier or an expectation never happened."""
        problems = []
        if self.failures:
            problems.append(f"{len(self.failures)} access(es) failed (and may have been swallowed):")
            problems += [f"  {f.splitlines()[0]}" for f in self.failures]
        pending = self.pending
        if pending:
            problems.append(f"{len(pending)} expected access(es) never happened:")
            problems += [f"  {e.describe()}" for e in pending]
        if problems:
            raise AssertionError(f"{self.name}: " + "\n".join(problems))

    def reset(self) -> None:
        """Forget every expectation, access and failure."""
        self._queue.clear()
        self._by_offset.clear()
        self._declared.clear()
        self.accesses.clear()
        self.failures.clear()

    def _fail(self, message: str) -> AssertionError:
        recent = self.accesses[-6:-1]
        if recent:
            message += "\n  recent accesses: " + "; ".join(_show(*a) for a in recent)
        self.failures.append(message)
        return AssertionError(f"{self.name}: {message}")

    def _next(self, kind: str, offset: int, width: int, value: Any) -> Expectation:
        self.accesses.append((kind, offset, width, value))
        actual = _show(kind, offset, width, value)
        if self.ordered:
            if not self._queue:
                raise self._fail(f"unexpected {actual}: no more accesses were expected")
            exp = self._queue[0]
        else:
            queue = self._by_offset.get(offset)
            if not queue:
                others = ", ".join(f"{o:#x}" for o, q in self._by_offset.items() if q) or "none"
                raise self._fail(f"unexpected {actual}: nothing expected at {offset:#x} "
                                 f"(offsets with pending expectations: {others})")
            exp = queue[0]
        if exp.kind != kind or exp.offset != offset or exp.width != width:
            what = ("offset" if exp.offset != offset else "width" if exp.width != width else "kind")
            raise self._fail(f"wrong {what}: got {actual}, expected {exp.describe()}")
        if kind in ("write", "write_block") and not exp.matches_value(value):
            raise self._fail(f"wrong value: got {actual}, expected {exp.describe()}")
        exp.met += 1
        if exp.met >= exp.times:
            (self._queue if self.ordered else self._by_offset[offset]).popleft()
        return exp

    def _on_read(self, offset: int, width: int) -> int:
        return int(self._next("read", offset, width, None).value)

    def _on_write(self, offset: int, width: int, value: int) -> None:
        self._next("write", offset, width, value)

    def _on_read_block(self, offset: int, n: int) -> bytes:
        return bytes(self._next("read_block", offset, n, None).value)

    def _on_write_block(self, offset: int, data: bytes) -> None:
        self._next("write_block", offset, len(data), data)


def _show(kind: str, offset: int, width: int, value: Any) -> str:
    if kind.endswith("_block"):
        return f"{kind} {offset:#x} ({width} bytes)"
    if kind == "read":
        return f"read{width * 8} {offset:#x}"
    return f"write{width * 8} {offset:#x} <- {value:#x}"
