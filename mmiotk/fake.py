"""A behavioural fake device driven by a register map: register state with real access semantics.

    dev = FakeDevice(Uart)                     # a RegisterBlock class, or a RegisterMap (+ block=...)
    dev.poke("STATUS", RXNE=1)                 # the device side changes state, no semantics applied
    @dev.on_write("CTRL")
    def started(dev, value):                   # called after each write of CTRL (semantics applied)
        if value.EN:
            dev.poke("STATUS", READY=1)
    uart = Uart(dev.buffer)                    # the driver sees a real MmioBuffer
    uart.CTRL.modify(EN=1)

What the fake honours, bit by bit: RO and RC bits ignore writes; RC bits clear when read; W1C bits clear
where 1 is written; W1S bits set where 1 is written; WO bits read as 0; RSVDZ bits written non-zero fail
with AssertionError (as does an access that hits no register, or with the wrong width, when `strict`).
Undeclared bits behave as the register's own access type says.

`rmw_garbage=True` exposes read-modify-write bugs: every read returns garbage in the bits whose read value a
correct read-modify-write must not write back (W1C and W1S bits that are not set, WO and RSVDZ bits: the
complement of what a correct RMW writes there), and a write that directly follows a read of the same
register and writes that garbage back fails with AssertionError naming the fields. (A deliberate write of
exactly those bits right after reading the register — e.g. clearing the one idle W1C bit of a register —
looks the same; don't use the mode for such a test.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from .registers import RC, RO, RSVDZ, RW, W1C, W1S, WO, RegisterBlock, RegisterSpec, RegisterValue

if TYPE_CHECKING:
    from .buffer import MmioBuffer

__all__ = ["DeviceEvent", "FakeDevice"]

Hook = Callable[["FakeDevice", RegisterValue], Any]


class DeviceEvent(NamedTuple):
    kind: str        # "read" | "write"
    register: str
    value: int


@dataclass
class _Reg:
    spec: RegisterSpec
    name: str
    offset: int
    value: int
    rw: int        # bits that take the written value (RW, WO)
    ro: int        # bits writes ignore (RO, RC)
    rc: int
    w1c: int
    w1s: int
    wo: int
    rsvdz: int


def _resolve_block(regs: Any, block: str | None) -> type[RegisterBlock]:
    if isinstance(regs, type) and issubclass(regs, RegisterBlock):
        return regs
    if isinstance(regs, RegisterBlock):
        return type(regs)
    block_class = getattr(regs, "block_class", None)
    if callable(block_class):
        return block_class(block)
    raise TypeError(f"FakeDevice needs a RegisterBlock class or a RegisterMap, not {regs!r}")


class FakeDevice:
    """Register state behind a real `MmioBuffer` (`.buffer`), with access semantics and hooks."""

    def __init__(self, regs: Any, *, block: str | None = None, size: int | None = None, base: int = 0,
                 rmw_garbage: bool = False, strict: bool = True, name: str | None = None) -> None:
        from .mock import CallbackSpace

        self.block_class = _resolve_block(regs, block)
        self.name = name or self.block_class._block_name
        need = max(self.block_class._size, 8)
        self.size = size if size is not None else (need + 7) & ~7
        if self.size < need:
            raise ValueError(f"fake {self.name}: size {self.size:#x} is smaller than the block ({need:#x})")
        self.rmw_garbage = rmw_garbage
        self.strict = strict
        self.log: list[DeviceEvent] = []
        self._regs: dict[int, _Reg] = {}
        self._by_name: dict[str, _Reg] = {}
        for spec in self.block_class._specs.values():
            for i in range(spec.count):
                name_i = spec.short if spec.count == 1 else f"{spec.short}[{i}]"
                reg = _make_reg(spec, name_i, spec.offset + i * spec.stride)
                self._regs[reg.offset] = reg
                self._by_name[name_i] = reg
        self._read_hooks: dict[str, list[Hook]] = {}
        self._write_hooks: dict[str, list[Hook]] = {}
        self._last_read: tuple[int, int, int] | None = None   # offset, injected mask, garbage
        self._memory = bytearray(self.size)                    # what strays hit when not strict
        self.space = CallbackSpace(self.size, self._read, self._write, base=base, name=self.name,
                                   mechanism=f"fake device {self.name}")
        self.buffer: MmioBuffer = self.space.map_all(self.name)

    def __repr__(self) -> str:
        return f"<FakeDevice {self.name} {len(self._regs)} registers{' rmw_garbage' if self.rmw_garbage else ''}>"

    def bind(self) -> Any:
        """The block class bound to this fake's buffer (what a driver would hold)."""
        return self.block_class(self.buffer)

    # --- the device side: state, no semantics --------------------------------------------------------
    def _reg(self, name: str) -> _Reg:
        reg = self._by_name.get(name)
        if reg is None:
            raise KeyError(f"fake {self.name}: no register {name!r} (registers: {', '.join(self._by_name)})")
        return reg

    def peek(self, name: str) -> RegisterValue:
        """The register's state (write-only bits included), without any read side effect."""
        reg = self._reg(name)
        return reg.spec.state_class(reg.value)

    def poke(self, name: str, value: int | None = None, **fields: Any) -> RegisterValue:
        """Set state as the hardware would (raise an interrupt bit, load a FIFO level): `value`, then the
        named fields, with no access semantics. Returns the new state."""
        reg = self._reg(name)
        spec = reg.spec
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or not 0 <= value <= spec.all):
            raise ValueError(f"poke {reg.name}: value {value!r} does not fit in {spec.width} bits")
        new = reg.value if value is None else value
        for fname, fv in fields.items():
            f = spec.field(fname, "poke")
            new = (new & ~f.mask) | (f.coerce(fv, "poke") << f.lsb)
        reg.value = new
        return spec.state_class(new)

    def __getitem__(self, name: str) -> RegisterValue:
        return self.peek(name)

    def on_read(self, name: str, hook: Hook | None = None) -> Any:
        """Call `hook(dev, value)` on every read of register `name`, before RC bits clear; a non-None
        return is what the read returns. Usable as a decorator."""
        return self._add_hook(self._read_hooks, name, hook)

    def on_write(self, name: str, hook: Hook | None = None) -> Any:
        """Call `hook(dev, written)` after every write of register `name` (state already updated); the
        written value shows write-only fields too. Usable as a decorator."""
        return self._add_hook(self._write_hooks, name, hook)

    def _add_hook(self, table: dict[str, list[Hook]], name: str, hook: Hook | None) -> Any:
        self._reg(name)
        if hook is None:
            def decorator(fn: Hook) -> Hook:
                table.setdefault(name, []).append(fn)
                return fn
            return decorator
        table.setdefault(name, []).append(hook)
        return hook

    # --- the bus side: what the driver's accesses do -------------------------------------------------
    def _stray(self, kind: str, offset: int, width: int, value: int = 0) -> int:
        if self.strict:
            inside = next((r for r in self._regs.values() if r.offset <= offset < r.offset + r.spec.nbytes), None)
            if inside is not None:
                raise AssertionError(f"fake {self.name}: {kind}{width * 8} at {offset:#x} does not match "
                                     f"register {inside.name} ({inside.spec.width} bits at {inside.offset:#x})")
            raise AssertionError(f"fake {self.name}: {kind}{width * 8} at {offset:#x} hits no register")
        if kind == "read":
            return int.from_bytes(self._memory[offset:offset + width], "little")
        self._memory[offset:offset + width] = value.to_bytes(width, "little")
        return 0

    def _read(self, offset: int, width: int) -> int:
        self._last_read = None
        reg = self._regs.get(offset)
        if reg is None or reg.spec.nbytes != width:
            return self._stray("read", offset, width)
        spec = reg.spec
        value = reg.value & ~reg.wo
        for hook in self._read_hooks.get(reg.name, ()):
            result = hook(self, spec.state_class(value))
            if result is not None:
                value = int(result) & spec.all
        if self.rmw_garbage:
            injected = (reg.w1c & ~value) | (reg.w1s & ~value) | reg.wo | reg.rsvdz
            garbage = injected & ~spec.wo_reset
            value = (value & ~injected) | garbage
            self._last_read = (offset, injected, garbage)
        if reg.rc:
            reg.value &= ~reg.rc
        self.log.append(DeviceEvent("read", reg.name, value))
        return value

    def _write(self, offset: int, width: int, value: int) -> None:
        last, self._last_read = self._last_read, None
        reg = self._regs.get(offset)
        if reg is None or reg.spec.nbytes != width:
            self._stray("write", offset, width, value)
            return
        spec = reg.spec
        if last is not None and last[0] == offset and last[2] and (value & last[1]) == last[2]:
            names = [f.name for f in spec.fields.values() if f.mask & last[1]] or ["(undeclared bits)"]
            raise AssertionError(
                f"fake {self.name}: read-modify-write of {reg.name} wrote back the garbage its read returned "
                f"in {', '.join(names)} (W1C/W1S/WO/RSVDZ bits; value {value:#x}); a W1C echo acknowledges "
                "events nobody handled")
        if value & reg.rsvdz and self.strict:
            names = [f.name for f in spec.fields.values() if f.access is RSVDZ and value & f.mask]
            raise AssertionError(f"fake {self.name}: write of {value:#x} to {reg.name} sets reserved (RSVDZ) "
                                 f"bits in {', '.join(names) or 'the register'}")
        new = (reg.value & ~reg.rw) | (value & reg.rw)
        new &= ~(value & reg.w1c)
        new |= value & reg.w1s
        reg.value = new
        self.log.append(DeviceEvent("write", reg.name, value))
        for hook in self._write_hooks.get(reg.name, ()):
            hook(self, spec.state_class(value))


def _make_reg(spec: RegisterSpec, name: str, offset: int) -> _Reg:
    undeclared = spec.undeclared
    access = spec.access

    def bits(*kinds: Any) -> int:
        own = sum(f.mask for f in spec.fields.values() if f.access in kinds)
        return own | (undeclared if access in kinds else 0)

    return _Reg(spec=spec, name=name, offset=offset, value=spec.reset, rw=bits(RW, WO), ro=bits(RO, RC),
                rc=bits(RC), w1c=bits(W1C), w1s=bits(W1S), wo=bits(WO), rsvdz=bits(RSVDZ))
