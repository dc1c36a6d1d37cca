"""Access types (UVM's access policies, plus RSVDZ), the register widths, and the declaration and field errors.

Each access type is two independent behaviours, both honoured by the handles, the fake device and the mock:
what a write does to the bits (`write_op`) and what a read does to them (`read_op`). The names are UVM's
(`uvm_reg_field` access policies), the spelling most register tools share:

| type | read | write | | type | read | write |
|---|---|---|---|---|---|---|
| `ro` | state | ignored | | `w1t` | state | 1 toggles |
| `rw` | state | value | | `w0c` / `w0s` / `w0t` | state | 0 clears / sets / toggles |
| `rc` / `rs` | state, then clear / set | ignored | | `w1src` / `w1crs` | then clear / set | 1 sets / clears |
| `wrc` / `wrs` | state, then clear / set | value | | `w0src` / `w0crs` | then clear / set | 0 sets / clears |
| `wc` / `ws` | state | any write clears / sets | | `wo` | refused | value |
| `wsrc` / `wcrs` | then clear / set | any write sets / clears | | `woc` / `wos` | refused | any write clears / sets |
| `w1c` / `w1s` | state | 1 clears / sets | | `w1` / `wo1` | state / refused | the first write after reset only |
| `rsvdz` | state | must be 0 | | `na` | refused | ignored |
"""

from __future__ import annotations

import enum

from ..errors import MmioValueError

# write_op: "value" (takes the written bits), "none" (ignored), "zero" (RSVDZ: must be 0), "1c" "1s" "1t"
# "0c" "0s" "0t" (the bits written 1 / 0 clear, set or toggle), "c" "s" (any write clears / sets).
# read_op: "" (no effect), "c" (a read clears), "s" (a read sets).
_SEMANTICS: dict[str, tuple[bool, str, str, bool]] = {
    #        readable, write_op, read_op, once
    "ro": (True, "none", "", False), "rw": (True, "value", "", False),
    "rc": (True, "none", "c", False), "rs": (True, "none", "s", False),
    "wrc": (True, "value", "c", False), "wrs": (True, "value", "s", False),
    "wc": (True, "c", "", False), "ws": (True, "s", "", False),
    "wsrc": (True, "s", "c", False), "wcrs": (True, "c", "s", False),
    "w1c": (True, "1c", "", False), "w1s": (True, "1s", "", False), "w1t": (True, "1t", "", False),
    "w0c": (True, "0c", "", False), "w0s": (True, "0s", "", False), "w0t": (True, "0t", "", False),
    "w1src": (True, "1s", "c", False), "w1crs": (True, "1c", "s", False),
    "w0src": (True, "0s", "c", False), "w0crs": (True, "0c", "s", False),
    "wo": (False, "value", "", False), "woc": (False, "c", "", False), "wos": (False, "s", "", False),
    "w1": (True, "value", "", True), "wo1": (False, "value", "", True),
    "na": (False, "none", "", False), "rsvdz": (True, "zero", "", False),
}


class Access(str, enum.Enum):
    """How software may access a register or field (see the module docstring for the table)."""

    RO = "ro"
    RW = "rw"
    RC = "rc"
    RS = "rs"
    WRC = "wrc"
    WRS = "wrs"
    WC = "wc"
    WS = "ws"
    WSRC = "wsrc"
    WCRS = "wcrs"
    W1C = "w1c"
    W1S = "w1s"
    W1T = "w1t"
    W0C = "w0c"
    W0S = "w0s"
    W0T = "w0t"
    W1SRC = "w1src"
    W1CRS = "w1crs"
    W0SRC = "w0src"
    W0CRS = "w0crs"
    WO = "wo"
    WOC = "woc"
    WOS = "wos"
    W1 = "w1"
    WO1 = "wo1"
    NA = "na"
    RSVDZ = "rsvdz"

    @classmethod
    def parse(cls, value: Access | str) -> Access:
        if isinstance(value, Access):
            return value
        found = _BY_VALUE.get(value) if isinstance(value, str) else None
        if found is not None:
            return found
        try:
            return cls(str(value).lower())
        except ValueError:
            names = ", ".join(a.value for a in cls)
            raise MmioValueError(f"unknown access type {value!r} (known: {names})") from None

    # filled in below from _SEMANTICS: plain attributes, since they are read on every register compile
    readable: bool      # a read returns the state (WO-like and NA fields are refused)
    write_op: str
    read_op: str        # '' (no effect), 'c' (reading clears the bits) or 's' (reading sets them)
    once: bool          # only the first write after reset takes effect
    writable: bool      # software may write the field (RSVDZ only takes 0; RO/RC/RS/NA writes are ignored)
    neutral: str        # what a read-modify-write writes into the field when it is not named, so that the
    #                     write changes nothing: 'keep' (the value read), 'zero', 'ones', 'reset' (write-only
    #                     value fields), or '' (none exists: any write clears or sets it)


def _neutral(readable: bool, op: str) -> str:
    if op in ("value", "none"):
        return "reset" if not readable and op == "value" else "keep"
    if op in ("1c", "1s", "1t", "zero"):
        return "zero"
    if op in ("0c", "0s", "0t"):
        return "ones"
    return ""


_BY_VALUE: dict[str, Access] = {a.value: a for a in Access}
for _member in Access:
    _readable, _op, _rop, _once = _SEMANTICS[_member.value]
    for _attr, _value in (("readable", _readable), ("write_op", _op), ("read_op", _rop), ("once", _once),
                          ("writable", _op not in ("none", "zero")), ("neutral", _neutral(_readable, _op))):
        object.__setattr__(_member, _attr, _value)


(RO, RW, RC, RS, WRC, WRS, WC, WS, WSRC, WCRS, W1C, W1S, W1T, W0C, W0S, W0T, W1SRC, W1CRS, W0SRC, W0CRS, WO,
 WOC, WOS, W1, WO1, NA, RSVDZ) = tuple(Access)
WIDTHS = (8, 16, 32, 64)


class RegisterDefinitionError(MmioValueError):
    """A register block, register or field declaration is inconsistent (overlap, width, reset, enum...)."""


class FieldError(MmioValueError):
    """An unknown field name, or a value that does not fit its field."""
