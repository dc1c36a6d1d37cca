"""RegisterValue: what `read()` returns, an int with one attribute per field (a snapshot, never an access)."""

from __future__ import annotations

import enum
from typing import TYPE_CHECKING, Any, ClassVar

from .. import native
from ..errors import AccessError

if TYPE_CHECKING:
    from .spec import FieldSpec, RegisterSpec


class RegisterValue(int):
    """What `read()` returns: an int with one attribute per field (enum fields give enum members).

    A snapshot: looking at it never touches the hardware. `_asdict()` and `_replace(**fields)` are
    named as in namedtuple so that they never clash with field names.
    """

    __slots__ = ()
    _spec: ClassVar[RegisterSpec]

    def _asdict(self) -> dict[str, Any]:
        """Field values, skipping fields that cannot be read (their read value means nothing)."""
        return {f.name: getattr(self, f.name) for f in self._spec.fields.values() if f.access.readable}

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
            if not f.access.readable:
                continue
            v = getattr(self, f.name)
            parts.append(f"{f.name}={v.name if isinstance(v, enum.Enum) else hex(v) if f.width > 3 else v}")
        inner = f"{int(self):#0{digits + 2}x}" + (": " + ", ".join(parts) if parts else "")
        return f"{spec.name}({inner})"

    __str__ = __repr__


def _field_getter(f: FieldSpec, device_view: bool = False) -> Any:
    lsb, mx = f.lsb, f.max
    if not f.access.readable and not device_view:
        qual = f.qualname

        def write_only(self: int) -> int:
            raise AccessError(f"{qual} is write-only: its read value means nothing")
        return property(write_only)
    if f.has_enum:
        def get_enum(self: int) -> Any:
            v = (self >> lsb) & mx
            return f.members.get(v, v)
        return property(get_enum)
    if native.core is not None:  # the compiled getter: (value >> lsb) & max in one C call
        return native.core.FieldGetter(f.name, lsb, mx)
    if f.width == 1:
        def get_bit(self: int) -> int:
            return (self >> lsb) & 1
        return property(get_bit)

    def get(self: int) -> int:
        return (self >> lsb) & mx
    return property(get)
