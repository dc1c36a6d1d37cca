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

from ..errors import AccessError
from .access import (
    NA,
    RC,
    RO,
    RS,
    RSVDZ,
    RW,
    W0C,
    W0CRS,
    W0S,
    W0SRC,
    W0T,
    W1,
    W1C,
    W1CRS,
    W1S,
    W1SRC,
    W1T,
    WC,
    WCRS,
    WO,
    WO1,
    WOC,
    WOS,
    WRC,
    WRS,
    WS,
    WSRC,
    Access,
    FieldError,
    RegisterDefinitionError,
)
from .block import Memory, RegisterBlock
from .declaration import Field, Register
from .handle import RegisterArrayHandle, RegisterHandle
from .indirect import Indirect
from .poll import PollTimeout
from .spec import FieldSpec, RegisterSpec
from .value import RegisterValue

__all__ = [
    "NA", "RC", "RO", "RS", "RSVDZ", "RW", "W0C", "W0CRS", "W0S", "W0SRC", "W0T", "W1", "W1C", "W1CRS", "W1S",
    "W1SRC", "W1T", "WC", "WCRS", "WO", "WO1", "WOC", "WOS", "WRC", "WRS", "WS", "WSRC", "Access", "AccessError",
    "Field", "FieldError", "FieldSpec", "Indirect", "Memory", "PollTimeout", "Register", "RegisterArrayHandle",
    "RegisterBlock", "RegisterDefinitionError", "RegisterHandle", "RegisterSpec", "RegisterValue",
]
