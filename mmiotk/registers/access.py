"""Access types (RO, WO, RW, W1C, W1S, RC, RSVDZ), the register widths, and the declaration and field errors."""

from __future__ import annotations

import enum

from ..errors import MmioValueError


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
