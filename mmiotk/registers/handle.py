"""Handles: a register bound to a buffer (RegisterHandle, RegisterArrayHandle) and their bind-time fast paths."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, cast

from .. import native
from ..errors import AccessError, MmioValueError
from .access import FieldError
from .spec import FieldSpec, RegisterSpec
from .value import RegisterValue

# --------------------------------------------------------------------------------------------------
# Handles: a register bound to a buffer
# --------------------------------------------------------------------------------------------------
_READERS = {8: "read8", 16: "read16", 32: "read32", 64: "read64"}
_WRITERS = {8: "write8", 16: "write16", 32: "write32", 64: "write64"}


class RegisterHandle:
    """One register of a bound block: `read()`, `write(...)`, `modify(...)`, `clear(...)`, `poll(...)`.

    Nothing here touches the hardware except those methods; `repr()` never reads.
    """

    def __init__(self, spec: RegisterSpec, bus: Any, offset: int, index: int | None = None) -> None:
        self._spec = spec
        self._name = spec.name if index is None else f"{spec.name}[{index}]"
        self.index = index
        self.offset = offset
        self._off = offset
        self._bus = bus
        aw = spec.accesswidth
        self._prd: Callable[[int], int] = getattr(bus, _READERS[aw])
        self._pwr: Callable[[int, int], None] = getattr(bus, _WRITERS[aw])
        if len(spec.pieces) == 1:
            self._rd, self._wr = self._prd, self._pwr
        else:
            self._rd, self._wr = self._read_pieces, self._write_pieces
        self._vcls = spec.value_class
        self._wfields = spec.wfields

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

    # --- the accesses -----------------------------------------------------------------------------------
    def read(self) -> RegisterValue:
        """One read of the register (one per accesswidth piece). Reading RC/RS fields clears/sets them."""
        if not self._spec.readable:
            raise self._refuse("read")
        return self._vcls(self._rd(self._off))

    def write(self, value: int | None = None, **fields: Any) -> int:
        """One write: `value` (default: the reset value with every write-1/write-0 effect neutral and
        RSVDZ bits 0) with `fields` set.

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
        """Read, change only the named fields, write back, semantics-aware: every field not named gets the
        value that leaves it unchanged (W1x and RSVDZ bits 0, W0x bits 1, WO fields their reset value,
        RW/RO and undeclared bits the value read).

        At most one read and one write (of the accesswidth pieces holding the named fields, when the
        register has several). The read is skipped when no bit needs its value preserved. Refused
        (AccessError, nothing accessed) on RO/WO registers, when the read would have a side effect (RC, RS,
        swacc, precious fields), and when the write would clear or set a field not named (WC/WS).
        Returns the value written.
        """
        clear = 0
        setv = 0
        s = self._spec
        if not s.writable:
            raise self._refuse("modify")
        for name, v in fields.items():
            wf = self._wfields.get(name)
            if wf is not None and v.__class__ is int and 0 <= v <= wf[2]:
                clear |= wf[1]
                setv |= v << wf[0]
            else:
                clear |= s.field(name, "modify").mask
                setv |= s.write_value(name, v, "modify")
        return self._rmw("modify", clear, setv)

    def clear(self, *names: str, **fields: Any) -> int:
        """Acknowledge events: clear exactly the named fields of a write-to-clear kind — W1C (writes 1),
        W0C (writes 0), WC (any write) — `clear("TXDONE")` (whole field) or `clear(ERR=0b10)` (those bits).

        Other fields get the value that leaves them unchanged, as in `modify()`; the register is read first
        only when it holds bits whose value must be preserved (RW fields). Returns the value written.
        """
        s = self._spec
        mask = 0
        setv = 0
        for name, v in [(n, None) for n in names] + list(fields.items()):
            f = self._clearable_field(name)
            bits = f.mask if v is None else f.coerce(v, "clear") << f.lsb
            mask |= f.mask
            op = f.access.write_op
            setv |= bits if op == "1c" else (f.mask & ~bits) if op == "0c" else 0
        if not s.writable:
            raise self._refuse("clear")
        if not mask:
            raise FieldError(f"clear {self._name}: name at least one W1C, W0C or WC field")
        return self._rmw("clear", mask, setv)

    def poll(self, until: Callable[[RegisterValue], Any] | None = None, *, timeout: float = 1.0,
             interval: float | None = None, **fields: Any) -> RegisterValue:
        """Read until `until(value)` is true or every named field has the given value (after Linux's
        readx_poll_timeout); returns the last value read. The timeout follows the target's clock: when the
        buffer's space offers `now()`/`sleep(s)` (simulated time under cocotb), those; wall time otherwise.
        Raises PollTimeout (a TimeoutError naming the register and the last value) after `timeout` seconds.
        """
        from .poll import poll_register

        return poll_register(self, until, timeout, interval, fields)

    # --- the engine behind modify() and clear() ---------------------------------------------------------
    def _rmw(self, op: str, clear: int, setv: int) -> int:
        s = self._spec
        if not s.writable:
            raise self._refuse(op)
        touched = s.pieces if len(s.pieces) == 1 or not clear else tuple(p for p in s.pieces if p[2] & clear)
        span = 0
        for p in touched:
            span |= p[2]
        forced = s.m_forced & span & ~clear
        if forced:
            names = [f"{f.name} ({f.access.value.upper()})" for f in s.fields.values() if f.mask & forced]
            raise AccessError(f"{op} {self._name}: any write of the register changes {', '.join(names)}; "
                              "name it or use write()")
        keep = s.keep & span & ~clear
        const = (s.wo_reset | s.m_ones) & span & ~clear
        if s.m_preserve & keep:
            if not s.readable:
                raise self._refuse(op)
            effects = s.m_read_effect & span
            if effects or (not s.fields and s.read_effects):
                raise AccessError(f"{op} {self._name}: reading it {', '.join(s.read_effect_names(span))}; a "
                                  "read-modify-write would lose that state. read() it explicitly, then write()")
            if len(touched) == len(s.pieces):
                old = self._rd(self._off)
            else:
                old = 0
                for boff, shift, _ in touched:
                    old |= self._prd(self._off + boff) << shift
        else:
            old = s.reset
        new = (old & keep) | const | setv
        if len(touched) == len(s.pieces):
            self._wr(self._off, new)
        else:
            for boff, shift, pmask in touched:
                self._pwr(self._off + boff, (new & pmask) >> shift)
        return new

    def _read_pieces(self, offset: int) -> int:
        value = 0
        for boff, shift, _ in self._spec.pieces:
            value |= self._prd(offset + boff) << shift
        return value

    def _write_pieces(self, offset: int, value: int) -> None:
        for boff, shift, pmask in self._spec.pieces:
            self._pwr(offset + boff, (value & pmask) >> shift)

    # --- cold path ------------------------------------------------------------------------------------
    def _clearable_field(self, name: str) -> FieldSpec:
        f = self._spec.field(name, "clear")
        if name not in self._spec.clearable:
            raise AccessError(f"clear {f.qualname}: field is {f.access.value.upper()}, clear() is for W1C, W0C "
                              "and WC fields; use write() or modify()")
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
        return AccessError(f"{op} {self._name}: refused")


def _bind_handle(spec: RegisterSpec, bus: Any, offset: int, index: int | None = None) -> RegisterHandle:
    handle = (_COMPILED_HANDLE or RegisterHandle)(spec, bus, offset, index)
    _install_fast_paths(handle, spec)
    return handle


def _bind_array_handle(spec: RegisterSpec, bus: Any, offset: int) -> RegisterArrayHandle:
    handle = (_COMPILED_ARRAY_HANDLE or RegisterArrayHandle)(spec, bus, offset)
    if native.core is not None:  # an array is indexed, never read itself: the type methods refuse
        _bind_core(handle, RegisterArrayHandle)
    return handle


def _bind_core(handle: RegisterHandle, reference: type[RegisterHandle]) -> None:
    """Point a compiled handle's type methods at the reference methods of `reference`."""
    core = cast(Any, handle)
    core._read_fn = reference.read.__get__(handle)
    core._write_fn = reference.write.__get__(handle)
    core._modify_fn = reference.modify.__get__(handle)


def _install_fast_paths(handle: RegisterHandle, spec: RegisterSpec) -> None:
    """Per-handle closures for the hot calls — `read()`, `write(**fields)`, `modify(**fields)` with int
    values — with the offset, masks and accessor methods bound in, for registers of one piece whose
    read-modify-write has no side effects to refuse. Anything else (enum members, names, errors,
    refusals, pieces) falls back to the methods of RegisterHandle, which are the reference behaviour.
    The accessors stay the buffer's own methods, so tracing and revocation see every access."""
    if native.core is not None:
        _bind_core(handle, RegisterHandle)
        if len(spec.pieces) == 1:
            _install_compiled_fast_paths(handle, spec)
        return
    if len(spec.pieces) != 1:
        return
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

    if spec.readable and spec.writable and not spec.read_effects and not spec.m_forced:
        generic_modify = RegisterHandle.modify.__get__(handle)
        keep, const, preserve, reset = spec.keep, spec.wo_reset | spec.m_ones, spec.m_preserve, spec.reset
        # one field: (bits kept from the read, constant bits, shift, max, whether the read is needed)
        single = {name: (keep & c[0], (const & c[0]) | (0 if preserve & c[0] else reset & keep & c[0]), c[1],
                         c[2], bool(preserve & c[0])) for name, c in table.items()}

        def modify(**fields: Any) -> int:
            for name, v in fields.items():  # one field: looked at once, then out (the common case)
                c1 = single.get(name)
                if c1 is not None and v.__class__ is int and 0 <= v <= c1[3] and len(fields) == 1:
                    new = ((rd(off) & c1[0]) if c1[4] else 0) | c1[1] | (v << c1[2])
                    wr(off, new)
                    return new
                break
            m, setv = -1, 0
            for name, v in fields.items():
                c = table.get(name)
                if c is None or v.__class__ is not int or not 0 <= v <= c[2]:
                    return generic_modify(**fields)
                m &= c[0]
                setv |= v << c[1]
            k = keep & m
            new = ((rd(off) if preserve & k else reset) & k) | (const & m) | setv
            wr(off, new)
            return new
        modify.__doc__ = RegisterHandle.modify.__doc__
        handle.__dict__["modify"] = modify


def _modify_always_reads(spec: RegisterSpec) -> bool:
    """A read-modify-write of any one field needs the read (the compiled modify always reads)."""
    return all(spec.m_preserve & ~f.mask for f in spec.fields.values() if f.access.writable) \
        and bool(spec.m_preserve)


def _install_compiled_fast_paths(handle: RegisterHandle, spec: RegisterSpec) -> None:
    """The same three fast paths, compiled (see mmiotk/csrc/registers.c): one C call per `read()` /
    `write(**fields)` / `modify(**fields)`, entering the buffer's compiled core directly when the accessor is
    its own; anything but int field values in range goes to the RegisterHandle method, as above. The
    compiled modify always reads, so it is used only where the read is needed and free of side effects."""
    assert native.core is not None
    bus, rd, wr, off, bits = handle._bus, handle._rd, handle._wr, handle._off, spec.width
    fields = {name: (f.lsb, f.mask, f.max) for name, f in spec.fields.items() if f.access.writable}
    make, core = native.core.register_op, cast(Any, handle)
    if spec.readable:
        core._read_fn = make("read", bus, rd, None, off, bits, spec.value_class, 0, 0, 0, {},
                                       RegisterHandle.read.__get__(handle))
    if spec.writable:
        core._write_fn = make("write", bus, None, wr, off, bits, None, 0, 0, spec.write_base, fields,
                                        RegisterHandle.write.__get__(handle))
    if spec.readable and spec.writable and not spec.read_effects and not spec.m_forced \
            and _modify_always_reads(spec):
        core._modify_fn = make("modify", bus, rd, wr, off, bits, None, spec.keep,
                                         spec.wo_reset | spec.m_ones, 0, fields,
                                         RegisterHandle.modify.__get__(handle))


class RegisterArrayHandle(RegisterHandle):
    """An array of registers (`count`, `stride`): index it, `len()` it, iterate it."""

    def __init__(self, spec: RegisterSpec, bus: Any, offset: int) -> None:
        super().__init__(spec, bus, offset)
        self._items: dict[int, RegisterHandle] = {}   # bound on first use: a big array costs nothing

    def __repr__(self) -> str:
        s = self._spec
        return (f"<register array {self._name}[{s.count}] @{self.offset:#x} stride {s.stride:#x} "
                f"{s.width}-bit {s.access.value}>")

    def __getitem__(self, index: int) -> RegisterHandle:
        s = self._spec
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < s.count:
            raise IndexError(f"{self._name}: index {index!r} out of range 0..{s.count - 1}")
        handle = self._items.get(index)
        if handle is None:
            handle = self._items[index] = _bind_handle(s, self._bus, self.offset + index * s.stride, index)
        return handle

    def __len__(self) -> int:
        return self._spec.count

    def __iter__(self) -> Iterator[RegisterHandle]:
        return (self[i] for i in range(self._spec.count))

    def _not_single(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(f"{self._name} is an array of {self._spec.count} registers: index it, "
                        f"e.g. {self._name}[0]")

    read = write = modify = clear = poll = _not_single


def _compiled(cls: type[RegisterHandle]) -> type[RegisterHandle] | None:
    """`cls` behind the compiled RegisterCore: `read`/`write`/`modify` are then methods of the type, which
    CPython looks up through its type cache, instead of callables in each handle's __dict__."""
    if native.core is None:
        return None
    return cast(type[RegisterHandle], type(cls.__name__, (native.core.RegisterCore, cls),
                                           {"__module__": cls.__module__, "__doc__": cls.__doc__}))


_COMPILED_HANDLE = _compiled(RegisterHandle)
_COMPILED_ARRAY_HANDLE = cast("type[RegisterArrayHandle] | None", _compiled(RegisterArrayHandle))
