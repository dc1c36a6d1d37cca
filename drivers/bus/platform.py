"""The platform bus: devices at fixed addresses, read from a devicetree-like board description.

```yaml
name: qemu-virt
memory: {base: 0x40000000, size: 0x10000000}
dma: {base: 0x40100000, size: 0x1000000, coherent: true}   # optional carve-out; default all of memory
devices:
  - name: blk0
    compatible: virtio,mmio          # or a list, most specific first
    reg: [[0x0a003e00, 0x200]]
    interrupts: [79]
```

YAML or JSON, validated with pydantic; numbers may be ints or strings like "0x200". A bad board raises
`BoardError` naming the node and field (unknown fields, overlapping ranges, ranges outside the address
space, unknown parents, reused interrupts, an `arch` that is not the space's) and builds nothing. Files are
small and plain: at most MAX_BOARD_BYTES, MAX_DEVICES devices, no YAML anchors/aliases (a few lines of
aliases expand to gigabytes), no duplicate keys (YAML and JSON would silently keep the last one); values
quoted in messages are shortened. The bus holds the only `MmioResource` over
the register space and mints each device's regions on request; DMA comes from a pool over the board's
memory in a memory-backed space (a RamSpace, e.g. QEMU's guest RAM file).
"""

from __future__ import annotations

import json
import os
import reprlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator

from mmiotk.bus import AddressRange, Bus, Device, MapEntry
from mmiotk.dma import DmaPool
from mmiotk.errors import MmioError
from mmiotk.irq import IrqFactory, irq_factory_for
from mmiotk.policy import normalize_arch
from mmiotk.region import MmioResource, PhysicalRegion
from mmiotk.space import AddressSpace

BOARDS_DIR = Path(__file__).resolve().parent / "boards"  # the board descriptions shipped with the package
BOARD_ARCHES = frozenset({"x86_64", "x86", "aarch64", "riscv64", "ppc64le", "armv7l"})  # after normalize_arch
MAX_BOARD_BYTES = 1 << 20
MAX_DEVICES = 4096
_short = reprlib.Repr()
_short.maxstring = _short.maxother = 60
_short.maxlist = _short.maxtuple = _short.maxdict = 4
_short.maxlevel = 2


class _BoardYamlLoader(yaml.SafeLoader):
    """safe_load without aliases (expansion bombs) and without duplicate keys (silently last-one-wins)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.constructor.ConstructorError(
                None, None, f"YAML alias *{event.anchor} is not allowed in a board (write the value out)",
                event.start_mark)
        return super().compose_node(parent, index)

    def construct_mapping(self, node: Any, deep: bool = False) -> Any:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (list, dict)):
                continue  # unhashable: the base class reports it
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, f"duplicate key {_short.repr(key)}",
                    key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


def _json_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate key {_short.repr(key)}")
        out[key] = value
    return out


def _parse_int(value: Any) -> Any:
    if isinstance(value, bool):
        raise ValueError("expected an integer, not a boolean")
    if isinstance(value, str):
        try:
            return int(value.replace("_", ""), 0)
        except ValueError:
            raise ValueError(f"expected an integer like 4096 or '0x1000', got {value!r}") from None
    if isinstance(value, float):
        raise ValueError(f"expected an integer, got the float {value!r}")
    return value


Int = Annotated[int, BeforeValidator(_parse_int), Field(ge=0)]


class _Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MemoryNode(_Node):
    base: Int
    size: Int


class DmaNode(_Node):
    base: Int | None = None
    size: Int | None = None
    coherent: bool = True


class DeviceNode(_Node):
    name: str = Field(pattern=r"^[A-Za-z0-9_.,@+-]+$")
    compatible: tuple[str, ...]
    reg: tuple[tuple[Int, Int], ...] = ()
    interrupts: tuple[Int, ...] = ()
    prefetchable: bool = False
    parent: str | None = None
    properties: dict[str, Any] = Field(default_factory=dict)

    @field_validator("compatible", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("compatible")
    @classmethod
    def _not_empty(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or not all(value):
            raise ValueError("needs at least one non-empty compatible string")
        return value


class Board(_Node):
    name: str = "board"
    arch: str | None = None
    memory: MemoryNode | None = None
    dma: DmaNode | None = None
    devices: tuple[DeviceNode, ...] = ()


@dataclass(frozen=True)
class Problem:
    node: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"node {self.node!r}, field {self.field!r}: {self.message}"


class BoardError(MmioError, ValueError):
    """A board description is malformed; `problems` lists each (node, field, message); `node`/`field` are
    the first one's."""

    def __init__(self, source: str, problems: list[Problem]) -> None:
        self.source = source
        self.problems = problems
        self.node = problems[0].node if problems else ""
        self.field = problems[0].field if problems else ""
        lines = [f"board {source}: {p}" for p in problems]
        super().__init__("\n".join(lines) if lines else f"board {source}: invalid")


def _field_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _problems_from(exc: ValidationError, raw: Any) -> list[Problem]:
    problems = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        node, rest = "(board)", loc
        if loc and loc[0] == "devices" and len(loc) > 1 and isinstance(loc[1], int):
            node = f"devices[{loc[1]}]"
            try:
                name = raw["devices"][loc[1]].get("name")
                if isinstance(name, str) and name:  # an empty name would leave the node unnamed
                    node = name
            except (KeyError, IndexError, TypeError, AttributeError):
                pass
            rest = loc[2:]
        elif loc and loc[0] in ("memory", "dma"):
            node, rest = str(loc[0]), loc[1:]
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        if err["type"] != "missing" and "input" in err:
            message += f" (got {_short.repr(err['input'])})"
        problems.append(Problem(node, _field_path(rest), message))
    return problems


def load_board(source: str | os.PathLike[str] | Mapping[str, Any]) -> tuple[Board, str]:
    """Parse and validate a board (a YAML/JSON file or a dict); returns it and a label for messages."""
    if isinstance(source, Mapping):
        raw: Any = dict(source)
        label = "<dict>"
    else:
        path = Path(source)
        label = str(path)
        try:
            with path.open("rb") as f:
                data = f.read(MAX_BOARD_BYTES + 1)
        except OSError as exc:
            raise BoardError(label, [Problem("(file)", "(file)", f"cannot read: {exc.strerror}")]) from None
        if len(data) > MAX_BOARD_BYTES:
            raise BoardError(label, [Problem("(file)", "(file)", f"larger than {MAX_BOARD_BYTES} bytes: not a "
                                             "board description")])
        try:
            text = data.decode("utf-8")
            if path.suffix == ".json":
                raw = json.loads(text, object_pairs_hook=_json_object)
            else:
                raw = yaml.load(text, Loader=_BoardYamlLoader)  # a SafeLoader, stricter still
        except (ValueError, yaml.YAMLError, RecursionError) as exc:  # JSONDecodeError, UnicodeError are ValueErrors
            message = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).replace("\n", " ")
            raise BoardError(label, [Problem("(file)", "(syntax)", message[:300])]) from None
    if not isinstance(raw, Mapping):
        raise BoardError(label, [Problem("(board)", "(top level)", f"expected a mapping, got {type(raw).__name__}")])
    devices = raw.get("devices")
    if isinstance(devices, (list, tuple)) and len(devices) > MAX_DEVICES:
        raise BoardError(label, [Problem("(board)", "devices", f"{len(devices)} devices; at most {MAX_DEVICES}")])
    try:
        return Board.model_validate(raw), label
    except ValidationError as exc:
        raise BoardError(label, _problems_from(exc, raw)) from None


def check_board(board: Board, space: AddressSpace, memory: AddressSpace | None, label: str) -> None:
    """Cross-node checks pydantic cannot do alone; raises one BoardError listing every problem."""
    problems: list[Problem] = []
    ranges: list[tuple[int, int, str, str]] = []  # base, end, node, field
    if board.arch is not None:
        arch = normalize_arch(board.arch)
        if arch not in BOARD_ARCHES:
            problems.append(Problem("(board)", "arch", f"unknown architecture {_short.repr(board.arch)} "
                                    f"(known: {', '.join(sorted(BOARD_ARCHES))})"))
        else:
            for what, where in (("register", space), ("memory", memory)):
                if where is not None and where.arch != arch:
                    problems.append(Problem("(board)", "arch", f"the board is {arch}, but its {what} space "
                                            f"{where.name!r} follows {where.arch} rules (create the space with "
                                            f"arch={arch!r})"))
    if board.memory is not None:
        mem = board.memory
        if mem.size == 0:
            problems.append(Problem("memory", "size", "must be > 0"))
        ranges.append((mem.base, mem.base + mem.size, "memory", "base"))
        if memory is not None and mem.size and not memory.contains(mem.base, mem.size):
            problems.append(Problem("memory", "base", f"[{mem.base:#x}, {mem.base + mem.size:#x}) is outside the "
                                    f"memory space {memory.name!r} [{memory.base:#x}, {memory.base + memory.size:#x})"))
    if board.dma is not None:
        if board.memory is None:
            problems.append(Problem("dma", "(node)", "a DMA carve-out needs a memory node"))
        else:
            mem = board.memory
            base = mem.base if board.dma.base is None else board.dma.base
            size = mem.base + mem.size - base if board.dma.size is None else board.dma.size
            if size <= 0 or base < mem.base or base + size > mem.base + mem.size:
                problems.append(Problem("dma", "base" if board.dma.base is not None else "size",
                                        f"[{base:#x}, {base + size:#x}) is not inside memory "
                                        f"[{mem.base:#x}, {mem.base + mem.size:#x})"))
    names: dict[str, int] = {}
    irqs: dict[int, tuple[str, str]] = {}
    for i, node in enumerate(board.devices):
        if node.name in names:
            problems.append(Problem(node.name, "name", f"duplicate: devices[{names[node.name]}] has the same name"))
        names.setdefault(node.name, i)
        for j, (base, size) in enumerate(node.reg):
            field = f"reg[{j}]"
            if size == 0:
                problems.append(Problem(node.name, field, "size must be > 0"))
                continue
            if base % 8:
                problems.append(Problem(node.name, field, f"base {base:#x} must be 8-byte aligned"))
            if not space.contains(base, size):
                problems.append(Problem(node.name, field, f"[{base:#x}, {base + size:#x}) is outside the address "
                                        f"space {space.name!r} [{space.base:#x}, {space.base + space.size:#x})"))
            ranges.append((base, base + size, node.name, field))
        for j, number in enumerate(node.interrupts):
            if number in irqs:
                other_node, other_field = irqs[number]
                problems.append(Problem(node.name, f"interrupts[{j}]", f"interrupt {number} is already used by "
                                        f"node {other_node!r} field {other_field!r}"))
            irqs.setdefault(number, (node.name, f"interrupts[{j}]"))
    for node in board.devices:
        if node.parent is not None and (node.parent not in names or node.parent == node.name):
            problems.append(Problem(node.name, "parent", f"names no other node: {node.parent!r}"))
    ranges.sort()
    widest: tuple[int, int, str, str] | None = None  # of the ranges seen so far, the one reaching furthest
    for b2, e2, n2, f2 in ranges:
        if widest is not None and b2 < widest[1]:
            b1, e1, n1, f1 = widest
            problems.append(Problem(n2, f2, f"[{b2:#x}, {e2:#x}) overlaps node {n1!r} field {f1!r} [{b1:#x}, {e1:#x})"))
        if widest is None or e2 > widest[1]:
            widest = (b2, e2, n2, f2)
    if problems:
        raise BoardError(label, problems)


class PlatformBus(Bus):
    """Devices from a board description, in `space` (registers) and `memory` (RAM for DMA)."""

    def __init__(self, board: Board, space: AddressSpace, *, memory: AddressSpace | None = None,
                 irq_factory: IrqFactory | None = None, label: str = "<board>") -> None:
        mem_space = memory
        if mem_space is None and board.memory is not None and space.contains(board.memory.base, board.memory.size):
            mem_space = space
        check_board(board, space, mem_space, label)
        dma = None
        if board.memory is not None and mem_space is not None:
            mem = board.memory
            carve = board.dma or DmaNode()
            base = mem.base if carve.base is None else carve.base
            size = mem.base + mem.size - base if carve.size is None else carve.size
            dma = DmaPool.from_space(mem_space, base, size, coherent=carve.coherent, name=f"{board.name}-dma")
        super().__init__(board.name, irq_factory=irq_factory if irq_factory is not None else irq_factory_for(space),
                         dma=dma)
        self.board = board
        self.space = space
        self.memory_space = mem_space
        self.resource = MmioResource(space, space.base, space.size)
        for node in board.devices:
            ranges = [AddressRange(b, s, node.prefetchable) for b, s in node.reg]
            self.add_device(Device(self, node.name, compatible=node.compatible, mmio_ranges=ranges,
                                   irqs=node.interrupts, parent=node.parent, properties=node.properties), probe=False)

    @classmethod
    def from_board(cls, source: str | os.PathLike[str] | Mapping[str, Any], space: AddressSpace, *,
                   memory: AddressSpace | None = None, irq_factory: IrqFactory | None = None) -> PlatformBus:
        """Build the bus from a YAML/JSON file or a dict; `irq_factory(number)` defaults to mock lines."""
        board, label = load_board(source)
        return cls(board, space, memory=memory, irq_factory=irq_factory, label=label)

    def region_for(self, device: Device, index: int, reg: AddressRange) -> PhysicalRegion:
        return self.resource.create_region(reg.paddr, reg.size, f"{device.name}.reg{index}",
                                           prefetchable=reg.prefetchable)

    def address_map(self) -> list[MapEntry]:
        entries = super().address_map()
        if self.board.memory is not None:
            mem = self.board.memory
            where = self.memory_space.name if self.memory_space is not None else "no memory space: no DMA"
            entries.append(MapEntry(mem.base, mem.size, "memory", "ram", where))
        if self.dma is not None:
            kind = "coherent" if self.dma.coherent else "non-coherent"
            entries.append(MapEntry(self.dma.base, self.dma.size, "dma", self.dma.name, f"{kind} pool"))
        return entries
