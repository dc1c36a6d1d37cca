"""Declarations: `Field` and `Register`, what a block class is written with (compiled once per class in spec.py).

Why apart from the specs: a declaration only records what was written, checked later; spec.py turns it
into positions, masks and write bases, the form every access uses.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, overload

from .access import Access, RegisterDefinitionError

if TYPE_CHECKING:
    from .handle import RegisterHandle


class Field:
    """A bit field: `Field("EN", 0)` (bit 0), `Field("MODE", (3, 1))` (bits 3..1, msb first, as in
    datasheets) or `Field("MODE", lsb=1, width=3)`.

    `access` defaults to the register's; `reset` (the field's own value) overrides the register reset's
    bits;
    `enum` is an `IntEnum` subclass or a mapping name -> value (an IntEnum is made from it; a value may
    also be a binary pattern with don't-care bits, "0b1x", which names every value it matches);
    `write_enum` names the values a write takes when they differ from what a read returns (SVD's
    separate read and write enumerations).

    Side effects beyond the access type: `precious` (a read has an effect the map does not describe,
    e.g. SVD readAction modify), `swacc` (hardware sees every read), `swmod` (hardware sees every write of
    the field's bytes), `singlepulse` (a 1 written fires once and reads back 0). Registers with read
    side effects are never read by `dump()` or by a `modify()` that can do without the read.
    """

    __slots__ = ("access", "bits", "doc", "enum", "lsb", "name", "precious", "reset", "singlepulse", "swacc",
                 "swmod", "width", "write_enum")

    def __init__(self, name: str, bits: int | tuple[int, int] | None = None, *, lsb: int | None = None,
                 width: int | None = None, access: Access | str | None = None, reset: int | None = None,
                 enum: type[enum.IntEnum] | Mapping[str, int | str] | None = None,
                 write_enum: type[enum.IntEnum] | Mapping[str, int | str] | None = None, doc: str = "",
                 precious: bool = False, swacc: bool = False, swmod: bool = False,
                 singlepulse: bool = False) -> None:
        self.name = name
        self.bits = bits
        self.lsb = lsb
        self.width = width
        self.access = None if access is None else Access.parse(access)
        self.reset = reset
        self.enum = enum
        self.write_enum = write_enum
        self.doc = doc
        self.precious = precious
        self.swacc = swacc
        self.swmod = swmod
        self.singlepulse = singlepulse

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
    `accesswidth` (bits, default the width) splits every access into pieces of that width, in ascending
    address order (a 64-bit register with accesswidth 32 is read and written as two 32-bit halves, low
    first); `modify()` then reads and writes only the pieces holding the fields it names.
    `reset_mask` (default: every bit) marks the bits whose reset value the declaration defines: a
    hardware-driven field (SystemRDL without `reset`, SVD outside `resetMask`) has none, and a
    conformance check does not compare it.
    """

    def __init__(self, offset: int, width: int = 32, *, access: Access | str = Access.RW,
                 reset: int | None = None, fields: Iterable[Field] = (), count: int = 1,
                 stride: int | None = None, doc: str = "", name: str | None = None,
                 alternate_of: str | None = None, accesswidth: int | None = None,
                 reset_mask: int | None = None) -> None:
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
        self.accesswidth = accesswidth
        self.reset_mask = reset_mask

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
