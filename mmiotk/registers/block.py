"""RegisterBlock: registers at offsets from a base, declared as class attributes and bound to a buffer."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, ClassVar, NamedTuple

from ..errors import MmioValueError
from .access import Access, RegisterDefinitionError
from .declaration import Register
from .handle import RegisterHandle, _bind_array_handle, _bind_handle
from .indirect import Indirect
from .spec import RegisterSpec
from .value import RegisterValue


class Memory(NamedTuple):
    """A memory region inside a block (SystemRDL `mem`): bytes, not registers."""

    offset: int
    size: int
    width: int = 32
    access: Access = Access.RW
    doc: str = ""


# --------------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------------
class RegisterBlock:
    """Registers at offsets from a base, declared as class attributes and bound to a buffer.

        class Uart(RegisterBlock, name="UART0"):   # name defaults to the class name
            CTRL = Register(0x0, fields=[...])

        uart = Uart(buffer, offset=0)                # any MmioBuffer / MmioView (or read8..write64 duck)
    """

    _block_name: ClassVar[str] = ""
    _specs: ClassVar[dict[str, RegisterSpec]] = {}
    _indirect: ClassVar[dict[str, Indirect[Any]]] = {}
    _memories: ClassVar[dict[str, Memory]] = {}
    _size: ClassVar[int] = 0

    def __init_subclass__(cls, name: str | None = None, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._block_name = name or cls.__dict__.get("_block_name") or cls.__name__
        decls: dict[str, Register] = {}
        indirect: dict[str, Indirect[Any]] = {}
        for klass in reversed(cls.__mro__):
            for attr, value in vars(klass).items():
                if isinstance(value, Register):
                    decls[attr] = value
                    indirect.pop(attr, None)
                elif isinstance(value, Indirect):
                    indirect[attr] = value
                    decls.pop(attr, None)
        specs: dict[str, RegisterSpec] = {}
        for attr, decl in sorted(decls.items(), key=lambda kv: kv[1].offset):
            if attr.startswith("_"):
                raise RegisterDefinitionError(f"block {cls._block_name}: register name {attr!r} must not "
                                              "start with '_'")
            specs[attr] = RegisterSpec(decl, cls._block_name, attr)
        _check_overlaps(cls._block_name, specs)
        for attr, ind in indirect.items():
            for role in (ind.index, ind.data):
                if role not in specs:
                    raise RegisterDefinitionError(f"block {cls._block_name}: indirect {attr} names register "
                                                  f"{role!r}, which the block does not have")
            ind._check(cls._block_name, attr, specs)
        cls._specs = specs
        cls._indirect = indirect
        cls._size = max([s.end for s in specs.values()] + [m.offset + m.size for m in cls._memories.values()],
                        default=0)

    def __init__(self, buffer: Any, offset: int = 0) -> None:
        cls = type(self)
        if cls is RegisterBlock:
            raise TypeError("RegisterBlock is abstract: declare a subclass with registers")
        size = getattr(buffer, "size", None)
        align = max((sp.nbytes for sp in cls._specs.values()), default=1)
        if not isinstance(offset, int) or offset < 0 or offset % align:
            raise MmioValueError(f"block {cls._block_name}: offset {offset!r} must be an int >= 0 and a "
                                 f"multiple of {align} (its widest register)")
        if size is not None and offset + cls._size > size:
            raise MmioValueError(f"block {cls._block_name} needs {cls._size:#x} bytes at offset {offset:#x}; "
                                 f"the buffer has {size:#x}")
        self._buffer = buffer
        self._offset = offset
        handles: dict[str, RegisterHandle] = {}
        for attr, spec in cls._specs.items():
            if spec.count > 1:
                handles[attr] = _bind_array_handle(spec, buffer, offset + spec.offset)
            else:
                handles[attr] = _bind_handle(spec, buffer, offset + spec.offset)
        self._handles = handles
        self.__dict__.update(handles)
        for attr, ind in cls._indirect.items():
            self.__dict__[attr] = ind._bind(self, attr)

    # --- introspection (never touches hardware) -------------------------------------------------------
    @classmethod
    def block_name(cls) -> str:
        return cls._block_name

    @classmethod
    def specs(cls) -> dict[str, RegisterSpec]:
        """The compiled registers, by name, in offset order."""
        return dict(cls._specs)

    @classmethod
    def size(cls) -> int:
        """Bytes from the block base to the end of its last register."""
        return cls._size

    @classmethod
    def locate(cls, offset: int) -> tuple[RegisterSpec, int | None] | None:
        """The register (and array index) covering byte `offset` from the block base, if any."""
        return cls._locate(offset)

    @classmethod
    def decode(cls, offset: int, width: int, value: int) -> tuple[str, dict[str, Any]] | None:
        """(register name, field values) for an access of `width` bits at `offset` from the block base."""
        return cls._decode(offset, width, value)

    # Underscore forms: what mmiotk itself calls, since a register may be named like a public method
    # (a register `size` shadows `size()` on its block; names starting with '_' are refused).
    @classmethod
    def _locate(cls, offset: int) -> tuple[RegisterSpec, int | None] | None:
        for spec in sorted(cls._specs.values(), key=lambda sp: sp.alternate_of is not None):
            if spec.offset <= offset < spec.end:
                rel = offset - spec.offset
                index, within = divmod(rel, spec.stride)
                if within < spec.nbytes:
                    return spec, (index if spec.count > 1 else None)
        return None

    @classmethod
    def _decode(cls, offset: int, width: int, value: int) -> tuple[str, dict[str, Any]] | None:
        found = cls._locate(offset)
        if found is None:
            return None
        spec, index = found
        name = spec.name if index is None else f"{spec.name}[{index}]"
        if width != spec.width or (offset - spec.offset) % spec.stride:
            return f"{name}+{(offset - spec.offset) % spec.stride}", {}
        return name, spec.decode(value)

    def memory(self, name: str) -> Any:
        """A memory region of the block (SystemRDL `mem`) as a view of the block's buffer."""
        mem = type(self)._memories.get(name)
        if mem is None:
            known = ", ".join(type(self)._memories) or "none"
            raise KeyError(f"block {self._block_name}: no memory named {name!r} (memories: {known})")
        return self._buffer.view(self._offset + mem.offset, mem.size)

    @property
    def buffer(self) -> Any:
        return self._buffer

    @property
    def base(self) -> int:
        return self._offset

    def __getitem__(self, name: str) -> RegisterHandle:
        """The handle of register `name` (for names that clash with attributes)."""
        try:
            return self._handles[name]
        except KeyError:
            raise KeyError(f"block {self._block_name}: no register named {name!r}") from None

    def __iter__(self) -> Iterator[RegisterHandle]:
        return iter(self._handles.values())

    if not TYPE_CHECKING:  # hidden from type checkers, so that a misspelt register is a mypy error
        def __getattr__(self, name: str) -> Any:
            # only reached for attributes that do not exist
            if name.startswith("_"):
                raise AttributeError(name)
            known = ", ".join(type(self)._specs) or "none"
            raise AttributeError(f"block {type(self)._block_name}: no register named {name!r} "
                                 f"(registers: {known})")

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self._block_name} @{self._offset:#x}, "
                f"{len(self._specs)} registers>")

    def dump(self) -> dict[str, RegisterValue | list[RegisterValue] | str]:
        """Read every register that can be read without side effects; write-only registers and those whose
        read clears, sets or notifies anything (RC, RS, swacc, precious) are skipped (listed as
        '<not read: ...>'), so a debug dump never changes state."""
        out: dict[str, RegisterValue | list[RegisterValue] | str] = {}
        for attr, spec in self._specs.items():
            handle = self._handles[attr]
            if not spec.readable:
                out[attr] = "<not read: write-only>"
            elif spec.read_effects:
                out[attr] = f"<not read: reading it {', '.join(spec.read_effect_names())}>"
            elif spec.count > 1:
                out[attr] = [handle[i].read() for i in range(spec.count)]
            else:
                out[attr] = handle.read()
        return out


def _check_overlaps(block: str, specs: Mapping[str, RegisterSpec]) -> None:
    """Every byte of the block belongs to at most one register (arrays included), except for registers
    declared `alternate_of` another. Spans are swept in address order and only registers whose spans
    meet are compared element by element, so a big array costs nothing unless something sits inside it."""
    items: list[tuple[int, int, str, RegisterSpec]] = []
    for name, spec in specs.items():
        if spec.alternate_of is not None:
            if spec.alternate_of not in specs:
                raise RegisterDefinitionError(f"block {block}, register {name}: alternate_of names register "
                                              f"{spec.alternate_of!r}, which the block does not have")
            continue
        items.append((spec.offset, spec.end, name, spec))
    items.sort(key=lambda t: (t[0], t[1]))
    active: list[tuple[int, int, str, RegisterSpec]] = []
    for item in items:
        start = item[0]
        active = [a for a in active if a[1] > start]
        for other in active:
            if _complementary_registers(other[3], item[3]):
                continue   # a read-only and a write-only register may share an address (SystemRDL allows it)
            clash = first_clash(other[3], item[3])
            if clash is not None:
                i, j, byte = clash
                label = item[2] if item[3].count == 1 else f"{item[2]}[{j}]"
                olabel = other[2] if other[3].count == 1 else f"{other[2]}[{i}]"
                at = item[3].offset + j * item[3].stride
                raise RegisterDefinitionError(f"block {block}, register {label} at {at:#x} overlaps "
                                              f"register {olabel} (byte {byte:#x})")
        active.append(item)


def _complementary_registers(a: RegisterSpec, b: RegisterSpec) -> bool:
    return (not a.writable and not b.readable) or (not a.readable and not b.writable)


def first_clash(a: Any, b: Any) -> tuple[int, int, int] | None:
    """(element of a, element of b, first shared byte) for two registers (arrays) whose spans meet."""
    lo, hi = max(a.offset, b.offset), min(a.end, b.end)
    if lo >= hi:
        return None
    if a.count > b.count:
        found = first_clash(b, a)
        return None if found is None else (found[1], found[0], found[2])
    first = max(0, (lo - a.offset - a.nbytes) // a.stride)
    for i in range(first, a.count):
        x = a.offset + i * a.stride
        if x >= hi:
            break
        # elements of b meeting [x, x + a.nbytes)
        j0 = max(0, (x - b.offset - b.nbytes) // b.stride + 1)
        for j in range(j0, b.count):
            y = b.offset + j * b.stride
            if y >= x + a.nbytes:
                break
            if y + b.nbytes > x:
                return i, j, max(x, y)
    return None
