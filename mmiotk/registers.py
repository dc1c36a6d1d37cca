"""Registers and fields with real access semantics, declared as Python classes and bound to any MmioBuffer.

    class Uart(RegisterBlock, name="UART0"):
        CTRL = Register(0x00, fields=[Field("EN", 0), Field("MODE", (3, 1), enum={"A": 0, "B": 1})])
        STATUS = Register(0x04, access=RO, fields=[Field("RXNE", 0), Field("TXDONE", 1, access=W1C)])

    uart = Uart(buffer)               # or Uart(buffer, offset=0x100); a RegisterMap builds the same classes
    uart.CTRL.modify(EN=1)            # one read, one write: W1C/W1S/RSVDZ bits written 0, the rest kept
    uart.STATUS.read().RXNE           # a value: int(v), one attribute per field, enums as members
    uart.STATUS.clear("TXDONE")       # writes 1 to exactly that W1C bit

Access types: RO, WO, RW, W1C (write 1 to clear), W1S (write 1 to set), RC (reading clears: a read is an
explicit act, never a side effect of a repr, a dump or a read-modify-write), RSVDZ (reserved, write as
zero). Undeclared bits are preserved by `modify`/`clear` and taken from the reset value by `write`.

Masks, constants and the value class are computed once per register when the block class is created; a
bound handle keeps the buffer's accessor methods, so `modify` is a small loop, one read and one write.
"""

from __future__ import annotations

import enum
import keyword
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Generic, TypeVar, overload

from .errors import AccessError, MmioValueError

__all__ = [
    "RC", "RO", "RSVDZ", "RW", "W1C", "W1S", "WO", "Access", "AccessError", "Field", "FieldError",
    "FieldSpec", "Indirect", "Register", "RegisterArrayHandle", "RegisterBlock", "RegisterDefinitionError",
    "RegisterHandle", "RegisterSpec", "RegisterValue",
]


class Access(str, enum.Enum):
    """How software may access a register or field."""

    RO = "ro"        # read only; writes are ignored by hardware and refused here
    WO = "wo"        # write only; reads return nothing meaningful and are refused here
    RW = "rw"
    W1C = "w1c"      # reads the state; writing 1 clears a bit, 0 leaves it
    W1S = "w1s"      # reads the state; writing 1 sets a bit, 0 leaves it
    RC = "rc"        # read only; reading returns the state and clears it
    RSVDZ = "rsvdz"  # reserved: must be written as zero

    @classmethod
    def parse(cls, value: Access | str) -> Access:
        if isinstance(value, Access):
            return value
        try:
            return cls(str(value).lower())
        except ValueError:
            names = ", ".join(a.value for a in cls)
            raise MmioValueError(f"unknown access type {value!r} (known: {names})") from None

    @property
    def readable(self) -> bool:
        return self is not Access.WO

    @property
    def writable(self) -> bool:
        """Software may write a chosen value (RSVDZ only takes 0)."""
        return self in (Access.WO, Access.RW, Access.W1C, Access.W1S)


RO, WO, RW, W1C, W1S, RC, RSVDZ = (Access.RO, Access.WO, Access.RW, Access.W1C, Access.W1S, Access.RC,
                                   Access.RSVDZ)
WIDTHS = (8, 16, 32, 64)


class RegisterDefinitionError(MmioValueError):
    """A register block, register or field declaration is inconsistent (overlap, width, reset, enum...)."""


class FieldError(MmioValueError):
    """An unknown field name, or a value that does not fit its field."""


# --------------------------------------------------------------------------------------------------
# Declarations
# --------------------------------------------------------------------------------------------------
class Field:
    """A bit field: `Field("EN", 0)` (bit 0), `Field("MODE", (3, 1))` (bits 3..1, msb first, as in
    datasheets) or `Field("MODE", lsb=1, width=3)`.

    `access` defaults to the register's; `reset` (the field's own value) overrides the register reset's
    bits;
    `enum` is an `IntEnum` subclass or a mapping name -> value (an IntEnum is made from it).
    """

    __slots__ = ("access", "bits", "doc", "enum", "lsb", "name", "reset", "width")

    def __init__(self, name: str, bits: int | tuple[int, int] | None = None, *, lsb: int | None = None,
                 width: int | None = None, access: Access | str | None = None, reset: int | None = None,
                 enum: type[enum.IntEnum] | Mapping[str, int] | None = None, doc: str = "") -> None:
        self.name = name
        self.bits = bits
        self.lsb = lsb
        self.width = width
        self.access = None if access is None else Access.parse(access)
        self.reset = reset
        self.enum = enum
        self.doc = doc

    def __repr__(self) -> str:
        return f"Field({self.name!r}, lsb={self.lsb}, width={self.width})"

    def _range(self, where: str) -> tuple[int, int]:
        """(lsb, width) from whichever form was given."""
        bits, lsb, width = self.bits, self.lsb, self.width
        if bits is not None:
            if lsb is not None or width is not None:
                raise RegisterDefinitionError(f"{where}: give either bits or lsb/width, not both")
            if isinstance(bits, bool):
                raise RegisterDefinitionError(f"{where}: bits must be an int or (msb, lsb), not {bits!r}")
            if isinstance(bits, int):
                lsb, width = bits, 1
            elif (isinstance(bits, tuple) and len(bits) == 2 and all(isinstance(b, int) for b in bits)):
                msb, lsb = bits
                if msb < lsb:
                    raise RegisterDefinitionError(f"{where}: bits ({msb}, {lsb}) must be (msb, lsb) with "
                                                  "msb >= lsb")
                width = msb - lsb + 1
            else:
                raise RegisterDefinitionError(f"{where}: bits must be an int or (msb, lsb), not {bits!r}")
        else:
            if lsb is None:
                raise RegisterDefinitionError(f"{where}: no bit position (give bits= or lsb=)")
            width = 1 if width is None else width
        if not isinstance(lsb, int) or isinstance(lsb, bool) or lsb < 0:
            raise RegisterDefinitionError(f"{where}: lsb must be an int >= 0, not {lsb!r}")
        if not isinstance(width, int) or isinstance(width, bool) or width < 1:
            raise RegisterDefinitionError(f"{where}: width must be an int >= 1, not {width!r}")
        return lsb, width


class Register:
    """A register declaration: offset in bytes, width in bits, access, reset value, fields.

    `count`/`stride` declare an array (`block.REG[i]`); `stride` defaults to the register's size.
    In a block class the attribute name is the register's name. `alternate_of` names a register whose
    bytes this one deliberately shares (another view of the same address, as SVD's alternateRegister).
    """

    def __init__(self, offset: int, width: int = 32, *, access: Access | str = Access.RW,
                 reset: int | None = None, fields: Iterable[Field] = (), count: int = 1,
                 stride: int | None = None, doc: str = "", name: str | None = None,
                 alternate_of: str | None = None) -> None:
        self.offset = offset
        self.width = width
        self.access = Access.parse(access)
        self.reset = reset
        self.fields = tuple(fields)
        self.count = count
        self.stride = stride
        self.doc = doc
        self.name = name
        self.alternate_of = alternate_of

    def __set_name__(self, owner: type, name: str) -> None:
        if self.name is None:
            self.name = name

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Register: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> RegisterHandle: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Register | RegisterHandle:
        # Instances keep their handles in __dict__, which wins over this non-data descriptor; this is
        # reached only on the class (the declaration) or for a block whose __init__ did not run.
        if obj is None:
            return self
        raise AttributeError(f"register {self.name}: the block was not bound to a buffer")

    def __repr__(self) -> str:
        return f"Register({self.name!r}, offset={self.offset:#x}, width={self.width}, access={self.access.value})"


class FieldSpec:
    """A compiled field: position, masks, access, reset and enum."""

    __slots__ = ("access", "doc", "enum", "lsb", "mask", "max", "members", "msb", "name", "qualname", "reset",
                 "width")

    def __init__(self, name: str, qualname: str, lsb: int, width: int, access: Access, reset: int,
                 enum_cls: type[enum.IntEnum] | None, doc: str) -> None:
        self.name = name
        self.qualname = qualname
        self.lsb = lsb
        self.width = width
        self.msb = lsb + width - 1
        self.max = (1 << width) - 1
        self.mask = self.max << lsb
        self.access = access
        self.reset = reset
        self.enum = enum_cls
        self.members: dict[int, enum.IntEnum] = {int(m): m for m in enum_cls} if enum_cls else {}
        self.doc = doc

    def __repr__(self) -> str:
        return f"<FieldSpec {self.qualname} [{self.msb}:{self.lsb}] {self.access.value}>"

    def coerce(self, value: Any, op: str) -> int:
        """The int for `value` (int, bool, enum member or enum member name), checked against the width."""
        raw: Any = value
        if isinstance(value, str):
            member = self.enum.__members__.get(value) if self.enum is not None else None
            if member is None:
                known = f" (one of {', '.join(self.enum.__members__)})" if self.enum is not None else ""
                raise FieldError(f"{op} {self.qualname}: {value!r} is not a value of this field{known}")
            raw = int(member)
        elif isinstance(value, enum.Enum):
            if self.enum is not None and not isinstance(value, self.enum):
                raise FieldError(f"{op} {self.qualname}: {value!r} is not a member of {self.enum.__name__}")
            raw = value.value
        if not isinstance(raw, int):
            raise FieldError(f"{op} {self.qualname}: value {value!r} is not an int")
        raw = int(raw)
        if not 0 <= raw <= self.max:
            raise FieldError(f"{op} {self.qualname}: value {value!r} does not fit in {self.width} bit"
                             f"{'s' if self.width > 1 else ''} (0..{self.max:#x})")
        return raw


class RegisterValue(int):
    """What `read()` returns: an int with one attribute per field (enum fields give enum members).

    A snapshot: looking at it never touches the hardware. `_asdict()` and `_replace(**fields)` are
    named as in namedtuple so that they never clash with field names.
    """

    __slots__ = ()
    _spec: ClassVar[RegisterSpec]

    def _asdict(self) -> dict[str, Any]:
        """Field values, skipping write-only fields (their read value means nothing)."""
        return {f.name: getattr(self, f.name) for f in self._spec.fields.values() if f.access is not WO}

    def _replace(self, **fields: Any) -> RegisterValue:
        """A copy with the named fields changed (a value, not a write)."""
        spec = self._spec
        value = int(self)
        for name, v in fields.items():
            f = spec.field(name, "replace")
            value = (value & ~f.mask) | (f.coerce(v, "replace") << f.lsb)
        return type(self)(value)

    def __repr__(self) -> str:
        spec = self._spec
        digits = spec.width // 4
        parts = []
        for f in spec.fields.values():
            if f.access is WO:
                continue
            v = getattr(self, f.name)
            parts.append(f"{f.name}={v.name if isinstance(v, enum.Enum) else hex(v) if f.width > 3 else v}")
        inner = f"{int(self):#0{digits + 2}x}" + (": " + ", ".join(parts) if parts else "")
        return f"{spec.name}({inner})"

    __str__ = __repr__


def _field_getter(f: FieldSpec, device_view: bool = False) -> property:
    lsb, mx = f.lsb, f.max
    if f.access is WO and not device_view:
        qual = f.qualname

        def write_only(self: int) -> int:
            raise AccessError(f"{qual} is write-only: its read value means nothing")
        return property(write_only)
    if f.enum is not None:
        members = f.members

        def get_enum(self: int) -> Any:
            v = (self >> lsb) & mx
            return members.get(v, v)
        return property(get_enum)
    if f.width == 1:
        def get_bit(self: int) -> int:
            return (self >> lsb) & 1
        return property(get_bit)

    def get(self: int) -> int:
        return (self >> lsb) & mx
    return property(get)


class RegisterSpec:
    """A compiled register: everything the handles need, computed once per block class."""

    def __init__(self, decl: Register, block: str, name: str) -> None:
        self.name = f"{block}.{name}" if block else name
        self.short = name
        self.block = block
        where = f"block {block}, register {name}" if block else f"register {name}"
        offset, width, count = decl.offset, decl.width, decl.count
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise RegisterDefinitionError(f"{where}: offset must be an int >= 0, not {offset!r}")
        if width not in WIDTHS:
            raise RegisterDefinitionError(f"{where}: width must be one of 8, 16, 32, 64, not {width!r}")
        if offset % (width // 8):
            raise RegisterDefinitionError(f"{where}: offset {offset:#x} is not aligned to its width "
                                          f"({width // 8} bytes)")
        if not isinstance(count, int) or count < 1:
            raise RegisterDefinitionError(f"{where}: count must be an int >= 1, not {count!r}")
        stride = width // 8 if decl.stride is None else decl.stride
        if count > 1 and (not isinstance(stride, int) or stride < width // 8 or stride % (width // 8)):
            raise RegisterDefinitionError(f"{where}: stride {stride!r} must be a multiple of the register "
                                          f"size ({width // 8} bytes) and at least that")
        self.offset, self.width, self.count, self.stride = offset, width, count, stride
        self.nbytes = width // 8
        self.end = offset + (count - 1) * stride + self.nbytes
        self.access = decl.access
        self.doc = decl.doc
        self.alternate_of = decl.alternate_of
        self.all = (1 << width) - 1

        # fields
        fields: dict[str, FieldSpec] = {}
        used = 0
        for fd in decl.fields:
            fname = fd.name
            fwhere = f"{where}, field {fname}"
            if not isinstance(fname, str) or not fname.isidentifier() or keyword.iskeyword(fname) \
                    or fname.startswith("_"):
                raise RegisterDefinitionError(f"{where}: field name {fname!r} is not a usable identifier")
            if fname in fields:
                raise RegisterDefinitionError(f"{fwhere}: declared twice")
            lsb, fwidth = fd._range(fwhere)
            if lsb + fwidth > width:
                raise RegisterDefinitionError(f"{fwhere}: bits [{lsb + fwidth - 1}:{lsb}] go beyond the "
                                              f"register width ({width} bits)")
            mask = ((1 << fwidth) - 1) << lsb
            if used & mask:
                other = next(f for f in fields.values() if f.mask & mask)
                raise RegisterDefinitionError(f"{fwhere}: bits [{lsb + fwidth - 1}:{lsb}] overlap field "
                                              f"{other.name} [{other.msb}:{other.lsb}]")
            used |= mask
            enum_cls = _make_enum(fd.enum, fname, fwidth, fwhere)
            access = fd.access or decl.access
            fields[fname] = FieldSpec(fname, f"{self.name}.{fname}", lsb, fwidth, access,
                                      0 if fd.reset is None else fd.reset, enum_cls, fd.doc)
            if fd.reset is not None and (not isinstance(fd.reset, int) or not 0 <= fd.reset < 1 << fwidth):
                raise RegisterDefinitionError(f"{fwhere}: reset {fd.reset!r} does not fit in {fwidth} bits")
        self.fields = fields
        self.declared = used

        # reset: the register's, with the fields' own resets laid over it
        reset = decl.reset
        if reset is not None and (not isinstance(reset, int) or isinstance(reset, bool)
                                  or not 0 <= reset <= self.all):
            raise RegisterDefinitionError(f"{where}: reset {reset!r} does not fit in {width} bits")
        value = reset or 0
        for fd, f in zip(decl.fields, fields.values(), strict=True):
            if fd.reset is None:
                f.reset = (value >> f.lsb) & f.max
            else:
                value = (value & ~f.mask) | (fd.reset << f.lsb)
        self.reset = value
        for f in fields.values():
            if f.access is RSVDZ and f.reset:
                raise RegisterDefinitionError(f"{where}, field {f.name}: a RSVDZ field must reset to 0")

        # masks by access class
        def bits(*kinds: Access) -> int:
            return sum(f.mask for f in fields.values() if f.access in kinds)
        undeclared = self.all & ~used
        self.undeclared = undeclared
        self.m_rw, self.m_ro, self.m_wo = bits(RW), bits(RO), bits(WO)
        self.m_w1c, self.m_w1s, self.m_rc, self.m_rsvdz = bits(W1C), bits(W1S), bits(RC), bits(RSVDZ)
        # modify/clear: bits kept from the read (RW, RO, undeclared); WO fields get their reset; the rest 0
        self.keep = self.m_rw | self.m_ro | undeclared
        self.wo_reset = self.reset & self.m_wo
        # write: starts from the reset value, without write-1 effects and reserved bits
        self.write_base = self.reset & ~(self.m_w1c | self.m_w1s | self.m_rsvdz)
        if fields:  # the fields' own access types decide (the register's is their default)
            self.readable = any(f.access.readable for f in fields.values())
            self.writable = any(f.access.writable for f in fields.values())
        else:
            self.readable = decl.access.readable
            self.writable = decl.access.writable
        self.has_rc = bool(self.m_rc) or (not fields and decl.access is RC)
        self.w1c_fields = {n: f for n, f in fields.items() if f.access is W1C}
        # per-field write data for the hot path: name -> (lsb, mask, max); None when the field refuses writes
        self.wfields: dict[str, tuple[int, int, int] | None] = {
            n: ((f.lsb, f.mask, f.max) if f.access.writable else None) for n, f in fields.items()}
        self.value_class: type[RegisterValue] = type(
            f"{self.short}Value", (RegisterValue,),
            {"__slots__": (), "_spec": self, **{n: _field_getter(f) for n, f in fields.items()}})

    def __repr__(self) -> str:
        return f"<RegisterSpec {self.name} @{self.offset:#x} {self.width}-bit {self.access.value}>"

    @property
    def state_class(self) -> type[RegisterValue]:
        """Like `value_class`, but write-only fields read too: the device side's view (fakes, models)."""
        cls = self.__dict__.get("_state_class")
        if cls is None:
            getters = {n: _field_getter(f, device_view=True) for n, f in self.fields.items()}
            cls = type(f"{self.short}State", (RegisterValue,), {"__slots__": (), "_spec": self, **getters})
            self.__dict__["_state_class"] = cls
        return cls

    # --- cold-path helpers (error messages) -----------------------------------------------------------
    def field(self, name: str, op: str) -> FieldSpec:
        f = self.fields.get(name)
        if f is None:
            known = ", ".join(self.fields) or "none"
            raise FieldError(f"{op} {self.name}: no field named {name!r} (fields: {known})")
        return f

    def write_value(self, name: str, value: Any, op: str) -> int:
        """Checked field bits (shifted into place) for an explicit write of `name`."""
        f = self.field(name, op)
        if f.access is RSVDZ:
            raw = f.coerce(value, op)
            if raw:
                raise AccessError(f"{op} {f.qualname}: reserved field (RSVDZ) must be written 0, not {value!r}")
            return 0
        if not f.access.writable:
            raise AccessError(f"{op} {f.qualname}: field is {f.access.value.upper()}; it cannot be written")
        return f.coerce(value, op) << f.lsb

    def check_raw(self, value: Any, op: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= self.all:
            raise MmioValueError(f"{op} {self.name}: value {value!r} does not fit in {self.width} bits")
        if value & self.m_rsvdz:
            names = [f.name for f in self.fields.values() if f.access is RSVDZ and value & f.mask]
            raise AccessError(f"{op} {self.name}: reserved field{'s' if len(names) > 1 else ''} "
                              f"{', '.join(names)} (RSVDZ) must be written 0; value {value:#x}")
        return int(value)

    def decode(self, value: int) -> dict[str, Any]:
        """Field values of a raw value (no hardware access), write-only fields included as raw bits."""
        out: dict[str, Any] = {}
        for f in self.fields.values():
            v = (value >> f.lsb) & f.max
            out[f.name] = f.members.get(v, v)
        return out


def _make_enum(spec: Any, fname: str, fwidth: int, where: str) -> type[enum.IntEnum] | None:
    if spec is None:
        return None
    cls: type[enum.IntEnum]
    if isinstance(spec, type) and issubclass(spec, enum.IntEnum):
        cls = spec
    elif isinstance(spec, Mapping):
        try:
            made: Any = enum.IntEnum(fname, dict(spec))  # type: ignore[misc]
            cls = made
        except (TypeError, ValueError) as exc:
            raise RegisterDefinitionError(f"{where}: bad enum {dict(spec)!r}: {exc}") from None
    else:
        raise RegisterDefinitionError(f"{where}: enum must be an IntEnum subclass or a mapping name -> value")
    for member in cls:
        if not 0 <= int(member) < 1 << fwidth:
            raise RegisterDefinitionError(f"{where}: enum value {member.name}={int(member)} does not fit in "
                                          f"{fwidth} bit{'s' if fwidth > 1 else ''}")
    return cls


# --------------------------------------------------------------------------------------------------
# Handles: a register bound to a buffer
# --------------------------------------------------------------------------------------------------
_READERS = {8: "read8", 16: "read16", 32: "read32", 64: "read64"}
_WRITERS = {8: "write8", 16: "write16", 32: "write32", 64: "write64"}


class RegisterHandle:
    """One register of a bound block: `read()`, `write(...)`, `modify(...)`, `clear(...)`.

    Nothing here touches the hardware except those four methods; `repr()` never reads.
    """

    def __init__(self, spec: RegisterSpec, bus: Any, offset: int, index: int | None = None) -> None:
        self._spec = spec
        self._name = spec.name if index is None else f"{spec.name}[{index}]"
        self.index = index
        self.offset = offset
        self._off = offset
        self._rd: Callable[[int], int] = getattr(bus, _READERS[spec.width])
        self._wr: Callable[[int, int], None] = getattr(bus, _WRITERS[spec.width])
        self._vcls = spec.value_class
        self._wfields = spec.wfields
        self._keep = spec.keep
        self._wo_reset = spec.wo_reset

    # --- description (never touches hardware) ---------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def spec(self) -> RegisterSpec:
        return self._spec

    @property
    def fields(self) -> dict[str, FieldSpec]:
        return self._spec.fields

    @property
    def reset(self) -> int:
        return self._spec.reset

    @property
    def width(self) -> int:
        return self._spec.width

    def __repr__(self) -> str:
        s = self._spec
        return f"<register {self._name} @{self.offset:#x} {s.width}-bit {s.access.value}>"

    def __getitem__(self, index: int) -> RegisterHandle:
        raise TypeError(f"{self._name} is a single register, not an array")

    def __len__(self) -> int:
        raise TypeError(f"{self._name} is a single register, not an array")

    def value(self, raw: int | None = None, **fields: Any) -> RegisterValue:
        """A value of this register built offline (reset value unless `raw`), with fields set: no access."""
        s = self._spec
        if raw is not None and (isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= s.all):
            raise MmioValueError(f"value {s.name}: {raw!r} does not fit in {s.width} bits")
        v = s.reset if raw is None else int(raw)
        for name, fv in fields.items():
            f = s.field(name, "value")
            v = (v & ~f.mask) | (f.coerce(fv, "value") << f.lsb)
        return self._vcls(v)

    # --- the four accesses ------------------------------------------------------------------------------
    def read(self) -> RegisterValue:
        """One read of the register. Reading an RC register (or one with RC fields) clears them."""
        return self._vcls(self._rd(self._off))

    def write(self, value: int | None = None, **fields: Any) -> int:
        """One write: `value` (default: the reset value without W1C/W1S/RSVDZ bits) with `fields` set.

        Naming an RO/RC field raises AccessError; W1C/W1S fields named are written as given.
        Returns the value written.
        """
        s = self._spec
        if not s.writable:
            raise self._refuse("write")
        v = s.write_base if value is None else s.check_raw(value, "write")
        for name, fv in fields.items():
            wf = self._wfields.get(name)
            if wf is not None and fv.__class__ is int and 0 <= fv <= wf[2]:
                v = (v & ~wf[1]) | (fv << wf[0])
            else:
                v = (v & ~s.field(name, "write").mask) | s.write_value(name, fv, "write")
        self._wr(self._off, v)
        return v

    def modify(self, **fields: Any) -> int:
        """Read, change only the named fields, write back, semantics-aware: W1C/W1S/RSVDZ bits not named
        are written 0, WO fields not named get their reset value, RW/RO and undeclared bits are kept.

        Exactly one read and one write. Refused (AccessError, nothing accessed) on RO/WO registers and on
        registers with RC fields (the read would clear them). Returns the value written.
        """
        if self._keep < 0:  # the register refuses read-modify-write (see _bind_handle)
            raise self._refuse("modify")
        clear = 0
        setv = 0
        wfields = self._wfields
        for name, v in fields.items():
            wf = wfields.get(name)
            if wf is not None and v.__class__ is int and 0 <= v <= wf[2]:
                clear |= wf[1]
                setv |= v << wf[0]
            else:
                s = self._spec
                clear |= s.field(name, "modify").mask
                setv |= s.write_value(name, v, "modify")
        off = self._off
        new = (self._rd(off) & self._keep & ~clear) | (self._wo_reset & ~clear) | setv
        self._wr(off, new)
        return new

    def clear(self, *names: str, **fields: Any) -> int:
        """Write 1 to exactly the named W1C bits: `clear("TXDONE")` (whole field) or `clear(ERR=0b10)`.

        When the register has RW fields, it is read first and RW, RO and undeclared bits are written back
        as read; otherwise there is no read and they take their reset values. Other W1C/W1S bits are
        written 0, WO fields their reset value. Returns the value written.
        """
        s = self._spec
        bits = 0
        for name in names:
            bits |= self._w1c_field(name).mask
        for name, v in fields.items():
            f = self._w1c_field(name)
            bits |= f.coerce(v, "clear") << f.lsb
        if not s.writable:
            raise self._refuse("clear")
        if not bits:
            raise FieldError(f"clear {self._name}: name at least one W1C field")
        if s.m_rw:
            if not s.readable or s.has_rc:
                raise self._refuse("clear")
            new = (self._rd(self._off) & s.keep) | s.wo_reset | bits
        else:
            new = (s.reset & s.keep) | s.wo_reset | bits
        self._wr(self._off, new)
        return new

    # --- cold path ------------------------------------------------------------------------------------
    def _w1c_field(self, name: str) -> FieldSpec:
        f = self._spec.field(name, "clear")
        if f.access is not W1C:
            raise AccessError(f"clear {f.qualname}: field is {f.access.value.upper()}, clear() is for W1C "
                              "fields; use write() or modify()")
        return f

    def _refuse(self, op: str) -> AccessError:
        s = self._spec
        if op == "read":
            return AccessError(f"read {self._name}: register is write-only; reading it is refused")
        if not s.writable:
            return AccessError(f"{op} {self._name}: register is read-only ({s.access.value.upper()} or no "
                               "writable field); writing it is refused")
        if not s.readable:
            return AccessError(f"{op} {self._name}: register is write-only; a read-modify-write would read "
                               "it. Use write()")
        if s.has_rc:
            rc = ", ".join(f.name for f in s.fields.values() if f.access is RC) or "the register"
            return AccessError(f"{op} {self._name}: reading it clears {rc} (RC); a read-modify-write would "
                               "lose that state. read() it explicitly, then write()")
        return AccessError(f"{op} {self._name}: refused")


def _bind_handle(spec: RegisterSpec, bus: Any, offset: int, index: int | None = None) -> RegisterHandle:
    handle = RegisterHandle(spec, bus, offset, index)
    if not spec.readable:
        error = handle._refuse("read")

        def refuse_read(offset: int) -> int:
            raise error
        handle._rd = refuse_read
    if not spec.readable or not spec.writable or spec.has_rc:
        handle._keep = -1  # modify refuses before accessing anything
    _install_fast_paths(handle, spec)
    return handle


def _install_fast_paths(handle: RegisterHandle, spec: RegisterSpec) -> None:
    """Per-handle closures for the hot calls — `read()`, `write(**fields)`, `modify(**fields)` with int
    values — with the offset, masks and accessor methods bound in. Anything else (enum members, names,
    errors, refusals) falls back to the methods of RegisterHandle, which are the reference behaviour.
    The accessors stay the buffer's own methods, so tracing and revocation see every access."""
    rd, wr, off, vcls = handle._rd, handle._wr, handle._off, spec.value_class
    # name -> (mask to keep everything else, shift, max): only fields that take written values
    table = {name: (~f.mask, f.lsb, f.max) for name, f in spec.fields.items() if f.access.writable}

    if spec.readable:
        def read() -> RegisterValue:
            return vcls(rd(off))
        read.__doc__ = RegisterHandle.read.__doc__
        handle.__dict__["read"] = read

    if spec.writable:
        generic_write = RegisterHandle.write.__get__(handle)
        base = spec.write_base

        def write(value: int | None = None, **fields: Any) -> int:
            if value is None:
                v = base
                for name, fv in fields.items():
                    c = table.get(name)
                    if c is None or fv.__class__ is not int or not 0 <= fv <= c[2]:
                        return generic_write(None, **fields)
                    v = (v & c[0]) | (fv << c[1])
                wr(off, v)
                return v
            return generic_write(value, **fields)
        write.__doc__ = RegisterHandle.write.__doc__
        handle.__dict__["write"] = write

    if handle._keep >= 0:
        generic_modify = RegisterHandle.modify.__get__(handle)
        keep, wo_reset = spec.keep, spec.wo_reset
        single = {name: (keep & c[0], wo_reset & c[0], c[1], c[2]) for name, c in table.items()}

        def modify(**fields: Any) -> int:
            for name, v in fields.items():  # one field: looked at once, then out (the common case)
                c1 = single.get(name)
                if c1 is not None and v.__class__ is int and 0 <= v <= c1[3] and len(fields) == 1:
                    new = (rd(off) & c1[0]) | c1[1] | (v << c1[2])
                    wr(off, new)
                    return new
                break
            k, w, setv = keep, wo_reset, 0
            for name, v in fields.items():
                c = table.get(name)
                if c is None or v.__class__ is not int or not 0 <= v <= c[2]:
                    return generic_modify(**fields)
                k &= c[0]
                w &= c[0]
                setv |= v << c[1]
            new = (rd(off) & k) | w | setv
            wr(off, new)
            return new
        modify.__doc__ = RegisterHandle.modify.__doc__
        handle.__dict__["modify"] = modify


class RegisterArrayHandle(RegisterHandle):
    """An array of registers (`count`, `stride`): index it, `len()` it, iterate it."""

    def __init__(self, spec: RegisterSpec, bus: Any, offset: int) -> None:
        super().__init__(spec, bus, offset)
        self._items = tuple(_bind_handle(spec, bus, offset + i * spec.stride, i) for i in range(spec.count))

    def __repr__(self) -> str:
        s = self._spec
        return (f"<register array {self._name}[{s.count}] @{self.offset:#x} stride {s.stride:#x} "
                f"{s.width}-bit {s.access.value}>")

    def __getitem__(self, index: int) -> RegisterHandle:
        try:
            if index < 0:
                raise IndexError
            return self._items[index]
        except (IndexError, TypeError):
            raise IndexError(f"{self._name}: index {index!r} out of range 0..{len(self._items) - 1}") from None

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[RegisterHandle]:
        return iter(self._items)

    def _not_single(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{self._name} is an array of {len(self._items)} registers: index it, "
                        f"e.g. {self._name}[0]")

    read = write = modify = clear = _not_single


# --------------------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------------------
B = TypeVar("B", bound="RegisterBlock")


class RegisterBlock:
    """Registers at offsets from a base, declared as class attributes and bound to a buffer.

        class Uart(RegisterBlock, name="UART0"):   # name defaults to the class name
            CTRL = Register(0x0, fields=[...])

        uart = Uart(buffer, offset=0)                # any MmioBuffer / MmioView (or read8..write64 duck)
    """

    _block_name: ClassVar[str] = ""
    _specs: ClassVar[dict[str, RegisterSpec]] = {}
    _indirect: ClassVar[dict[str, Indirect[Any]]] = {}
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
        cls._size = max((s.end for s in specs.values()), default=0)

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
                handles[attr] = RegisterArrayHandle(spec, buffer, offset + spec.offset)
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

    def __getattr__(self, name: str) -> Any:
        # only reached for attributes that do not exist
        if name.startswith("_"):
            raise AttributeError(name)
        known = ", ".join(type(self)._specs) or "none"
        raise AttributeError(f"block {type(self)._block_name}: no register named {name!r} (registers: {known})")

    def __repr__(self) -> str:
        return (f"<{type(self).__name__} {self._block_name} @{self._offset:#x}, "
                f"{len(self._specs)} registers>")

    def dump(self) -> dict[str, RegisterValue | list[RegisterValue] | str]:
        """Read every register that can be read without side effects; RC and WO registers are skipped
        (listed as '<not read: ...>'), so a debug dump never clears state."""
        out: dict[str, RegisterValue | list[RegisterValue] | str] = {}
        for attr, spec in self._specs.items():
            handle = self._handles[attr]
            if not spec.readable:
                out[attr] = "<not read: write-only>"
            elif spec.has_rc:
                out[attr] = "<not read: reading clears it (RC)>"
            elif spec.count > 1:
                out[attr] = [handle[i].read() for i in range(spec.count)]
            else:
                out[attr] = handle.read()
        return out


def _check_overlaps(block: str, specs: Mapping[str, RegisterSpec]) -> None:
    """Every byte of the block belongs to at most one register (arrays included), except for registers
    declared `alternate_of` another."""
    owner: dict[int, str] = {}
    for name, spec in specs.items():
        if spec.alternate_of is not None:
            if spec.alternate_of not in specs:
                raise RegisterDefinitionError(f"block {block}, register {name}: alternate_of names register "
                                              f"{spec.alternate_of!r}, which the block does not have")
            continue
        for i in range(spec.count):
            start = spec.offset + i * spec.stride
            label = name if spec.count == 1 else f"{name}[{i}]"
            for byte in range(start, start + spec.nbytes):
                other = owner.get(byte)
                if other is not None:
                    raise RegisterDefinitionError(f"block {block}, register {label} at {start:#x} overlaps "
                                                  f"register {other} (byte {byte:#x})")
                owner[byte] = label


# --------------------------------------------------------------------------------------------------
# Indirect (index/data) register pairs
# --------------------------------------------------------------------------------------------------
class _IndirectBus:
    """read8..write64 over an index/data pair: select by writing the index register, then access data."""

    def __init__(self, name: str, index: RegisterHandle, data: RegisterHandle, index_field: str | None,
                 unit: int, size: int) -> None:
        self.name = name
        self.size = size
        self._index = index
        self._data = data
        self._field = index_field
        self._unit = unit
        for bits in WIDTHS:
            mask = (1 << bits) - 1
            setattr(self, f"read{bits}", self._reader(mask))
            setattr(self, f"write{bits}", self._write)

    def _select(self, offset: int) -> None:
        idx = offset // self._unit
        if self._field is None:
            self._index.write(idx)
        else:
            self._index.write(**{self._field: idx})

    def _reader(self, mask: int) -> Callable[[int], int]:
        def read(offset: int) -> int:
            self._select(offset)
            return int(self._data.read()) & mask
        return read

    def _write(self, offset: int, value: int) -> None:
        self._select(offset)
        self._data.write(value)


class Indirect(Generic[B]):
    """Registers reached through an index/data pair of the enclosing block:

        class Phy(RegisterBlock):            # offsets are bytes; index = offset // unit
            BMCR = Register(0x0, width=16, fields=[...])
        class Mac(RegisterBlock):
            MDIO_IDX = Register(0x10)
            MDIO_DATA = Register(0x14)
            PHY = Indirect(Phy, index="MDIO_IDX", data="MDIO_DATA", unit=2)

        mac.PHY.BMCR.modify(RESET=1)        # the same handle API; each access selects, then reads/writes data

    `unit` (bytes per index step) defaults to the data register's size; `index_field` names the field of
    the index register that takes the index (default: the whole register).
    """

    def __init__(self, block: type[B], *, index: str, data: str, index_field: str | None = None,
                 unit: int | None = None) -> None:
        self.block = block
        self.index = index
        self.data = data
        self.index_field = index_field
        self.unit = unit

    @overload
    def __get__(self, obj: None, owner: type | None = None) -> Indirect[B]: ...
    @overload
    def __get__(self, obj: object, owner: type | None = None) -> B: ...

    def __get__(self, obj: object | None, owner: type | None = None) -> Indirect[B] | B:
        if obj is None:
            return self
        raise AttributeError("the block was not bound to a buffer")

    def _check(self, block: str, attr: str, specs: Mapping[str, RegisterSpec]) -> None:
        data = specs[self.data]
        for spec in self.block._specs.values():
            if spec.width > data.width:
                raise RegisterDefinitionError(f"block {block}: indirect {attr}: register {spec.name} is wider "
                                              f"({spec.width} bits) than data register {self.data} "
                                              f"({data.width} bits)")
        if self.index_field is not None and self.index_field not in specs[self.index].fields:
            raise RegisterDefinitionError(f"block {block}: indirect {attr}: index register {self.index} has "
                                          f"no field named {self.index_field!r}")

    def _bind(self, owner: RegisterBlock, attr: str) -> B:
        data = owner[self.data]
        unit = self.unit or data.spec.nbytes
        bus = _IndirectBus(f"{owner._block_name}.{attr}", owner[self.index], data, self.index_field, unit,
                           self.block._size)
        return self.block(bus)

