"""Tracing: record every access a buffer makes, decode it with register names, save it, replay it.

    with buf.trace(regmap) as trace:       # regmap: a RegisterMap, a RegisterBlock class or bound block
        driver.init()
    print(trace.to_text())                 # readable, with register and field names
    trace.save("init.jsonl")               # JSON lines
    mock = MockMmio.from_trace(Trace.load("init.jsonl"))   # a millisecond unit test from a recording

Tracing wraps the buffer's four width lanes (and its block copies) for the duration of the context and
puts the originals back afterwards: a buffer that is not being traced runs exactly the code it ran before.
Only accesses through `buf` itself are seen, not those through views made from it (trace the view).
"""

from __future__ import annotations

import enum
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .buffer import MmioBuffer
    from .lanes import Lane

KINDS = ("read", "write", "read_block", "write_block")
Decoder = Callable[[int, int, int], "tuple[str, dict[str, Any]] | None"]


@dataclass(frozen=True)
class TraceRecord:
    """One access: `kind` ("read", "write", or "read_block"/"write_block" for block copies), `offset` in
    bytes from the buffer start, `width` in bits (8 * length for blocks), `value` (an int; bytes for
    blocks), `time_ns` on a monotonic clock from the start of the trace, and when a register map was
    given, the `register` name and decoded `fields`."""

    kind: str
    offset: int
    width: int
    value: int | bytes
    time_ns: int = 0
    register: str | None = None
    fields: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def time(self) -> float:
        """Seconds since the trace started (monotonic)."""
        return self.time_ns / 1e9

    @property
    def is_block(self) -> bool:
        return self.kind.endswith("_block")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "offset": self.offset, "width": self.width}
        out["value"] = self.value.hex() if isinstance(self.value, bytes) else self.value
        out["time_ns"] = self.time_ns
        if self.register is not None:
            out["register"] = self.register
        if self.fields:
            out["fields"] = {k: (v.name if isinstance(v, enum.Enum) else v) for k, v in self.fields.items()}
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TraceRecord:
        kind = data["kind"]
        if kind not in KINDS:
            raise ValueError(f"unknown access kind {kind!r}")
        value = data["value"]
        if kind.endswith("_block"):
            value = bytes.fromhex(value)
        return cls(kind, int(data["offset"]), int(data["width"]), value, int(data.get("time_ns", 0)),
                   data.get("register"), data.get("fields"))

    def describe(self) -> str:
        """`read32 0x0004 -> 0x00000005` / `write32 0x0004 <- 0x00000001`, with names when decoded."""
        if isinstance(self.value, bytes):
            shown = self.value[:16].hex() + ("..." if len(self.value) > 16 else "")
            head = f"{self.kind} {self.offset:#06x} {'->' if self.kind == 'read_block' else '<-'} " \
                   f"{len(self.value)} bytes {shown}"
        else:
            arrow = "->" if self.kind == "read" else "<-"
            head = f"{self.kind}{self.width} {self.offset:#06x} {arrow} {self.value:#0{self.width // 4 + 2}x}"
        if self.register is None:
            return head
        fields = " ".join(f"{k}={v.name if isinstance(v, enum.Enum) else v}" for k, v in (self.fields or {}).items())
        return f"{head}  {self.register}" + (f" {fields}" if fields else "")


class Trace:
    """The accesses of one tracing context, in order. `accesses` is a list of `TraceRecord`."""

    def __init__(self, name: str = "", size: int | None = None, decoder: Decoder | None = None) -> None:
        self.name = name
        self.size = size
        self._decoder = decoder
        self._raw: list[tuple[str, int, int, Any, int]] = []
        self._done: list[TraceRecord] = []
        self._t0 = time.perf_counter_ns()

    # --- recording (hot) ------------------------------------------------------------------------------
    def _record(self, kind: str, offset: int, width: int, value: Any) -> None:
        self._raw.append((kind, offset, width, value, time.perf_counter_ns() - self._t0))

    # --- reading --------------------------------------------------------------------------------------
    @property
    def accesses(self) -> list[TraceRecord]:
        if self._raw:
            decode = self._decoder
            for kind, offset, width, value, t in self._raw:
                register, fields = None, None
                if decode is not None and not isinstance(value, bytes):
                    found = decode(offset, width, value)
                    if found is not None:
                        register, fields = found
                self._done.append(TraceRecord(kind, offset, width, value, t, register, fields))
            self._raw.clear()
        return self._done

    def __len__(self) -> int:
        return len(self._done) + len(self._raw)

    def __iter__(self) -> Iterator[TraceRecord]:
        return iter(self.accesses)

    def __getitem__(self, index: int) -> TraceRecord:
        return self.accesses[index]

    def __repr__(self) -> str:
        return f"<Trace {self.name!r}: {len(self)} accesses>"

    @property
    def reads(self) -> list[TraceRecord]:
        return [a for a in self.accesses if a.kind == "read"]

    @property
    def writes(self) -> list[TraceRecord]:
        return [a for a in self.accesses if a.kind == "write"]

    # --- export ---------------------------------------------------------------------------------------
    def to_text(self) -> str:
        """One line per access: time, access, and register/field names when decoded."""
        lines = [f"# trace of {self.name or 'buffer'}: {len(self)} accesses"]
        for a in self.accesses:
            lines.append(f"{a.time_ns / 1e3:12.3f} us  {a.describe()}")
        return "\n".join(lines) + "\n"

    __str__ = to_text

    def to_jsonl(self, file: IO[str] | None = None) -> str:
        """JSON lines: a header line ({"mmiotk_trace": 1, ...}) then one object per access."""
        header = {"mmiotk_trace": 1, "name": self.name, "size": self.size}
        text = "\n".join([json.dumps(header)] + [json.dumps(a.to_json()) for a in self.accesses]) + "\n"
        if file is not None:
            file.write(text)
        return text

    def save(self, path: str | os.PathLike[str]) -> None:
        with open(path, "w", encoding="utf-8") as f:
            self.to_jsonl(f)

    @classmethod
    def from_jsonl(cls, text: str) -> Trace:
        """The trace a `to_jsonl()` wrote (the header line is optional)."""
        trace = cls()
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                if "mmiotk_trace" in data:
                    trace.name = data.get("name") or ""
                    trace.size = data.get("size")
                    continue
                trace._done.append(TraceRecord.from_json(data))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"trace line {number}: {exc}: {line[:80]!r}") from None
        return trace

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Trace:
        with open(path, encoding="utf-8") as f:
            try:
                return cls.from_jsonl(f.read())
            except ValueError as exc:
                raise ValueError(f"{os.fspath(path)}: {exc}") from None


class _TracingLane:
    """A lane that records what passes through it; the store or load itself is the inner lane's."""

    __slots__ = ("_bits", "_inner", "_record", "_width")

    def __init__(self, inner: Lane, width: int, record: Callable[[str, int, int, Any], None]) -> None:
        self._inner = inner
        self._width = width
        self._bits = width * 8
        self._record = record

    def __getitem__(self, index: int) -> int:
        value = self._inner[index]
        self._record("read", index * self._width, self._bits, value)
        return value

    def __setitem__(self, index: int, value: int) -> None:
        self._inner[index] = value
        self._record("write", index * self._width, self._bits, value)


def _decoder_for(regmap: Any) -> Decoder | None:
    """A decoder for a RegisterMap, a RegisterBlock class, or a bound RegisterBlock (offsets from its base)."""
    if regmap is None:
        return None
    from .registers import RegisterBlock

    if isinstance(regmap, RegisterBlock):
        base, cls = regmap.base, type(regmap)

        def decode(offset: int, width: int, value: int) -> tuple[str, dict[str, Any]] | None:
            return cls._decode(offset - base, width, value)
        return decode
    if isinstance(regmap, type) and issubclass(regmap, RegisterBlock):
        return regmap._decode
    decode_fn = getattr(regmap, "decode", None)
    if not callable(decode_fn):
        raise TypeError(f"trace(regmap=...): {regmap!r} is not a RegisterMap, RegisterBlock class or bound "
                        "block")
    return decode_fn


class _Tracer:
    def __init__(self, buf: MmioBuffer, regmap: Any) -> None:
        self._buf = buf
        self.trace = Trace(buf.name, buf.size, _decoder_for(regmap))
        self._saved: tuple[Lane, Lane, Lane, Lane] | None = None
        self._saved_blocks: dict[str, Any] = {}

    def __enter__(self) -> Trace:
        buf, record = self._buf, self.trace._record
        self._saved = buf.lanes
        buf.replace_lanes(tuple(_TracingLane(lane, w, record)  # type: ignore[arg-type]
                             for lane, w in zip(self._saved, (1, 2, 4, 8), strict=True)))
        # block copies: shadow the two methods on the instance for the duration
        for attr in ("read_block", "write_block"):
            self._saved_blocks[attr] = buf.__dict__.get(attr)
        read_block, write_block = buf.read_block, buf.write_block

        def traced_read_block(offset: int, n: int) -> bytes:
            data = read_block(offset, n)
            record("read_block", offset, 8 * n, bytes(data))
            return data

        def traced_write_block(offset: int, data: Any) -> None:
            write_block(offset, data)
            raw = bytes(memoryview(data).cast("B"))
            record("write_block", offset, 8 * len(raw), raw)

        buf.__dict__["read_block"] = traced_read_block
        buf.__dict__["write_block"] = traced_write_block
        return self.trace

    def __exit__(self, *exc: object) -> None:
        buf = self._buf
        if self._saved is not None:
            buf.replace_lanes(self._saved)  # ignored when the region was revoked meanwhile
        for attr, previous in self._saved_blocks.items():
            if previous is None:
                buf.__dict__.pop(attr, None)
            else:
                buf.__dict__[attr] = previous
        self.trace.accesses  # decode now, while the register map is at hand  # noqa: B018


def trace_buffer(buf: MmioBuffer, regmap: Any = None) -> _Tracer:
    """What `MmioBuffer.trace(regmap)` returns: a context manager yielding a `Trace`."""
    return _Tracer(buf, regmap)
