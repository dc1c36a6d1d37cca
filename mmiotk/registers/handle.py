"""Handles: a register bound to a buffer (RegisterHandle, RegisterArrayHandle) and their bind-time fast paths."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from .. import native
from ..errors import AccessError, MmioValueError
from .access import RC, W1C, FieldError
from .fields import FieldSpec, RegisterSpec
from .value import RegisterValue

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
        self._bus = bus
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
    if native.core is not None:
        _install_compiled_fast_paths(handle, spec)
        return
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


def _install_compiled_fast_paths(handle: RegisterHandle, spec: RegisterSpec) -> None:
    """The same three fast paths, compiled (see mmiotk/csrc/registers.c): one C call per `read()` /
    `write(**fields)` / `modify(**fields)`, entering the buffer's compiled core directly when the accessor is
    its own; anything but int field values in range goes to the RegisterHandle method, as above."""
    assert native.core is not None
    bus, rd, wr, off, bits = handle._bus, handle._rd, handle._wr, handle._off, spec.width
    fields = {name: (f.lsb, f.mask, f.max) for name, f in spec.fields.items() if f.access.writable}
    make = native.core.register_op
    if spec.readable:
        handle.__dict__["read"] = make("read", bus, rd, None, off, bits, spec.value_class, 0, 0, 0, {},
                                       RegisterHandle.read.__get__(handle))
    if spec.writable:
        handle.__dict__["write"] = make("write", bus, None, wr, off, bits, None, 0, 0, spec.write_base, fields,
                                        RegisterHandle.write.__get__(handle))
    if handle._keep >= 0:
        handle.__dict__["modify"] = make("modify", bus, rd, wr, off, bits, None, spec.keep, spec.wo_reset, 0,
                                         fields, RegisterHandle.modify.__get__(handle))


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
