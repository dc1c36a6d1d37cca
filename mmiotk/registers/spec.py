"""Specs: what `Field` and `Register` declarations compile to once per block class (FieldSpec, RegisterSpec).

Why once per class: positions, masks by access class and the values a read-modify-write starts from are
computed here, so a bound handle's `modify` is one read, a few mask operations and one write.
"""

from __future__ import annotations

import enum
import keyword
from enum import IntEnum
from typing import Any

from ..errors import AccessError, MmioValueError
from .access import RC, RO, RSVDZ, RW, W1C, W1S, WIDTHS, WO, Access, FieldError, RegisterDefinitionError
from .declaration import Register
from .enums import EnumSource, build_enum, check_enum, enum_members
from .value import RegisterValue, _field_getter


class FieldSpec:
    """A compiled field: position, masks, access, reset and enum."""

    __slots__ = ("_enum", "_enum_src", "_members", "_wenum", "_wenum_src", "_wmembers", "access", "doc", "lsb",
                 "mask", "max", "msb", "name", "precious", "qualname", "reset", "singlepulse", "swacc", "swmod",
                 "width")

    def __init__(self, name: str, qualname: str, lsb: int, width: int, access: Access, reset: int,
                 enum_cls: EnumSource, doc: str, *, write_enum: EnumSource = None, precious: bool = False,
                 swacc: bool = False, swmod: bool = False, singlepulse: bool = False) -> None:
        self.name = name
        self.qualname = qualname
        self.lsb = lsb
        self.width = width
        self.msb = lsb + width - 1
        self.max = (1 << width) - 1
        self.mask = self.max << lsb
        self.access = access
        self.reset = reset
        # enums are built on first use: IntEnum costs ~0.7 ms a class, and vendor files hold thousands
        self._enum_src, self._wenum_src = enum_cls, write_enum
        self._enum: type[IntEnum] | None = None
        self._wenum: type[IntEnum] | None = None
        self._members: dict[int, IntEnum] | None = None
        self._wmembers: dict[int, IntEnum] | None = None
        self.doc = doc
        self.precious, self.swacc, self.swmod, self.singlepulse = precious, swacc, swmod, singlepulse

    @property
    def has_enum(self) -> bool:
        return self._enum_src is not None

    @property
    def enum(self) -> type[IntEnum] | None:
        if self._enum is None and self._enum_src is not None:
            self._enum = build_enum(self._enum_src)
        return self._enum

    @property
    def write_enum(self) -> type[IntEnum] | None:
        if self._wenum is None and self._wenum_src is not None:
            self._wenum = build_enum(self._wenum_src)
        return self._wenum

    @property
    def members(self) -> dict[int, IntEnum]:
        """Read value -> enum member (every value a don't-care pattern matches included)."""
        if self._members is None:
            self._members = enum_members(self._enum_src, self.enum)
        return self._members

    @property
    def write_members(self) -> dict[int, IntEnum]:
        if self._wmembers is None:
            self._wmembers = enum_members(self._wenum_src, self.write_enum)
        return self._wmembers

    @property
    def read_effect(self) -> bool:
        """A read of this field changes something (clears or sets it, or notifies the hardware)."""
        return bool(self.access.read_op) or self.precious or self.swacc

    def __repr__(self) -> str:
        return f"<FieldSpec {self.qualname} [{self.msb}:{self.lsb}] {self.access.value}>"

    def coerce(self, value: Any, op: str) -> int:
        """The int for `value` (int, bool, enum member or enum member name), checked against the width."""
        raw: Any = value
        enums = [e for e in (self.write_enum, self.enum) if e is not None]
        if isinstance(value, str):
            member = next((e.__members__[value] for e in enums if value in e.__members__), None)
            if member is None:
                known = f" (one of {', '.join(n for e in enums for n in e.__members__)})" if enums else ""
                raise FieldError(f"{op} {self.qualname}: {value!r} is not a value of this field{known}")
            raw = int(member)
        elif isinstance(value, enum.Enum):
            if enums and not any(isinstance(value, e) for e in enums):
                raise FieldError(f"{op} {self.qualname}: {value!r} is not a member of {enums[0].__name__}")
            raw = value.value
        if not isinstance(raw, int):
            raise FieldError(f"{op} {self.qualname}: value {value!r} is not an int")
        raw = int(raw)
        if not 0 <= raw <= self.max:
            raise FieldError(f"{op} {self.qualname}: value {value!r} does not fit in {self.width} bit"
                             f"{'s' if self.width > 1 else ''} (0..{self.max:#x})")
        return raw


class RegisterSpec:
    """A compiled register: everything the handles need, computed once per block class."""

    def __init__(self, decl: Register, block: str, name: str) -> None:
        self.name = f"{block}.{name}" if block else name
        self.short = name
        self.block = block
        where = f"block {block}, register {name}" if block else f"register {name}"
        self._place(decl, where)
        self.access = decl.access
        self.doc = decl.doc
        self.alternate_of = decl.alternate_of
        self.all = (1 << self.width) - 1
        self.fields = _compile_fields(decl, self.name, self.width, where)
        self.declared = sum(f.mask for f in self.fields.values())
        self.reset = self._lay_reset(decl, where)
        mask = decl.reset_mask
        if mask is not None and (not isinstance(mask, int) or isinstance(mask, bool) or not 0 <= mask <= self.all):
            raise RegisterDefinitionError(f"{where}: reset_mask {mask!r} does not fit in {self.width} bits")
        self.reset_mask = self.all if mask is None else mask
        self._derive_masks(decl)

    def _place(self, decl: Register, where: str) -> None:
        """Offset, width, count and stride, checked; the byte span they cover."""
        offset, width, count = decl.offset, decl.width, decl.count
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
            raise RegisterDefinitionError(f"{where}: offset must be an int >= 0, not {offset!r}")
        if width not in WIDTHS:
            raise RegisterDefinitionError(f"{where}: width must be one of 8, 16, 32, 64, not {width!r}")
        aw = width if decl.accesswidth is None else decl.accesswidth
        if aw not in WIDTHS or aw > width:
            raise RegisterDefinitionError(f"{where}: accesswidth {aw!r} must be one of 8, 16, 32, 64 and at "
                                          f"most the width ({width})")
        if offset % (aw // 8):
            raise RegisterDefinitionError(f"{where}: offset {offset:#x} is not aligned to its "
                                          f"{'width' if aw == width else 'accesswidth'} ({aw // 8} bytes)")
        if not isinstance(count, int) or count < 1:
            raise RegisterDefinitionError(f"{where}: count must be an int >= 1, not {count!r}")
        stride = width // 8 if decl.stride is None else decl.stride
        if count > 1 and (not isinstance(stride, int) or stride < width // 8 or stride % (aw // 8)):
            raise RegisterDefinitionError(f"{where}: stride {stride!r} must be a multiple of the register "
                                          f"size ({width // 8} bytes) and at least that")
        self.offset, self.width, self.count, self.stride = offset, width, count, stride
        self.nbytes = width // 8
        self.end = offset + (count - 1) * stride + self.nbytes
        self.accesswidth = aw

    def _lay_reset(self, decl: Register, where: str) -> int:
        """The register's reset with the fields' own resets laid over it; each field learns its reset."""
        reset = decl.reset
        if reset is not None and (not isinstance(reset, int) or isinstance(reset, bool)
                                  or not 0 <= reset <= self.all):
            raise RegisterDefinitionError(f"{where}: reset {reset!r} does not fit in {self.width} bits")
        value = reset or 0
        for fd, f in zip(decl.fields, self.fields.values(), strict=True):
            if fd.reset is None:
                f.reset = (value >> f.lsb) & f.max
            else:
                value = (value & ~f.mask) | (fd.reset << f.lsb)
        for f in self.fields.values():
            if f.access is RSVDZ and f.reset:
                raise RegisterDefinitionError(f"{where}, field {f.name}: a RSVDZ field must reset to 0")
        return value

    def _derive_masks(self, decl: Register) -> None:
        """Masks by access class and what modify/clear/write start from (one pass over the fields)."""
        fields = self.fields
        by_access: dict[Access, int] = {}
        by_neutral = {"keep": 0, "zero": 0, "ones": 0, "reset": 0, "": 0}
        pulse = value_writable = read_effect = 0
        readable = writable = False
        self.clearable, self.w1c_fields, self.swmod_fields = {}, {}, {}
        self.wfields: dict[str, tuple[int, int, int] | None] = {}
        for n, f in fields.items():
            a, m = f.access, f.mask
            by_access[a] = by_access.get(a, 0) | m
            by_neutral[a.neutral] |= m
            if f.singlepulse:
                pulse |= m
            if a.write_op == "value" and a.readable:
                value_writable |= m
            if f.read_effect:
                read_effect |= m
            readable = readable or a.readable
            writable = writable or a.writable
            if a.write_op in ("1c", "0c", "c"):
                self.clearable[n] = f
            if a is W1C:
                self.w1c_fields[n] = f
            if f.swmod:
                self.swmod_fields[n] = f
            # per-field write data for the hot path: (lsb, mask, max); None when the field refuses writes
            self.wfields[n] = (f.lsb, m, f.max) if a.writable else None
        undeclared = self.all & ~self.declared
        self.undeclared = undeclared
        self.m_rw, self.m_ro, self.m_wo = (by_access.get(k, 0) for k in (RW, RO, WO))
        self.m_w1c, self.m_w1s, self.m_rc, self.m_rsvdz = (by_access.get(k, 0) for k in (W1C, W1S, RC, RSVDZ))
        # What a read-modify-write writes into the bits it was not asked to change (see Access.neutral).
        # Where a read-only and a write-only field share bits, the write-only one decides the write.
        self.m_ones = by_neutral["ones"] & ~pulse
        self.m_forced = by_neutral[""] & ~pulse  # no neutral value: any write acts
        reset_bits = by_neutral["reset"] & ~pulse
        zero = by_neutral["zero"] | pulse
        self.keep = (by_neutral["keep"] | undeclared) & ~(self.m_ones | self.m_forced | reset_bits | zero)
        # bits whose read value matters to a read-modify-write (a written value that must be preserved)
        self.m_preserve = (value_writable | (undeclared if decl.access.write_op == "value" else 0)) & self.keep
        self.wo_reset = self.reset & reset_bits
        # write: starts from the reset value, without write effects and reserved bits
        self.write_base = (self.reset & ~(zero | self.m_ones | self.m_forced)) | self.m_ones
        if fields:  # the fields' own access types decide (the register's is their default)
            self.readable, self.writable = readable, writable
        else:
            self.readable = decl.access.readable
            self.writable = decl.access.writable
        self.m_read_effect = read_effect
        self.read_effects = bool(read_effect) or (not fields and bool(decl.access.read_op))
        self.has_rc = self.read_effects  # the old name: a read is not free of side effects
        # accesswidth pieces: (byte offset within the register, bit shift, mask)
        aw = self.accesswidth
        self.pieces = tuple((k * aw // 8, k * aw, ((1 << aw) - 1) << (k * aw)) for k in range(self.width // aw))

    def __repr__(self) -> str:
        return f"<RegisterSpec {self.name} @{self.offset:#x} {self.width}-bit {self.access.value}>"

    @property
    def value_class(self) -> type[RegisterValue]:
        """The class of what `read()` returns; made on first use (a vendor file has thousands of registers,
        and a program binds a few blocks)."""
        cls = self.__dict__.get("_value_class")
        if cls is None:
            getters = {n: _field_getter(f) for n, f in self.fields.items()}
            cls = type(f"{self.short}Value", (RegisterValue,), {"__slots__": (), "_spec": self, **getters})
            self.__dict__["_value_class"] = cls
        return cls

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

    def read_effect_names(self, mask: int | None = None) -> list[str]:
        """What a read does (within `mask`), per field: "clears HITS (RC)", "notifies the hardware of
        STAT (swacc)"."""
        out = []
        verbs = {"c": "clears", "s": "sets"}
        for f in self.fields.values():
            if f.read_effect and (mask is None or f.mask & mask):
                if f.access.read_op:
                    out.append(f"{verbs[f.access.read_op]} {f.name} ({f.access.value.upper()})")
                else:
                    out.append(f"notifies the hardware of {f.name} ({'swacc' if f.swacc else 'precious'})")
        if not self.fields and self.access.read_op:
            out.append(f"{verbs[self.access.read_op]} it ({self.access.value.upper()})")
        return out

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


def _compile_fields(decl: Register, qual: str, width: int, where: str) -> dict[str, FieldSpec]:
    """The fields of `decl`, checked (names, positions within `width`, no overlaps, enums, resets)."""
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
        access = fd.access or decl.access
        if used & mask:
            for other in (f for f in fields.values() if f.mask & mask):
                # a read-only and a write-only field may share bits (a read sees one, a write the other)
                if not _complementary_fields(access, other.access):
                    raise RegisterDefinitionError(f"{fwhere}: bits [{lsb + fwidth - 1}:{lsb}] overlap field "
                                                  f"{other.name} [{other.msb}:{other.lsb}]")
        used |= mask
        enum_cls = check_enum(fd.enum, fname, fwidth, fwhere)
        write_enum = check_enum(fd.write_enum, f"{fname}_W", fwidth, fwhere)
        fields[fname] = FieldSpec(fname, f"{qual}.{fname}", lsb, fwidth, access,
                                  0 if fd.reset is None else fd.reset, enum_cls, fd.doc, write_enum=write_enum,
                                  precious=fd.precious, swacc=fd.swacc, swmod=fd.swmod,
                                  singlepulse=fd.singlepulse)
        if fd.reset is not None and (not isinstance(fd.reset, int) or not 0 <= fd.reset < 1 << fwidth):
            raise RegisterDefinitionError(f"{fwhere}: reset {fd.reset!r} does not fit in {fwidth} bits")
    return fields


def _complementary_fields(a: Access, b: Access) -> bool:
    """One field only read (writes ignored), the other only written (reads refused)."""
    return ((a.write_op == "none" and a.readable and not b.readable and b.write_op != "none")
            or (b.write_op == "none" and b.readable and not a.readable and a.write_op != "none"))
