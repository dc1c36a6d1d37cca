"""A behavioural fake device driven by a register map: register state with real access semantics.

    dev = FakeDevice(Uart)                     # a RegisterBlock class, or a RegisterMap (+ block=...)
    dev.poke("STATUS", RXNE=1)                 # the device side changes state, no semantics applied
    @dev.on_write("CTRL")
    def started(dev, value):                   # called after each write of CTRL (semantics applied)
        if value.EN:
            dev.poke("STATUS", READY=1)
    uart = Uart(dev.buffer)                    # the driver sees a real MmioBuffer
    uart.CTRL.modify(EN=1)

What the fake honours, bit by bit, for every access type of `mmiotk.registers.Access`: written values
(RW, WO, and W1/WO1 only on the first write after reset), writes ignored (RO, RC, RS, NA), write-1 and
write-0 clear/set/toggle, any-write clear/set, read-clear and read-set (after the read returns the state),
unreadable bits read as 0, RSVDZ bits written non-zero fail with AssertionError (as does an access that
hits no register, or with the wrong width, when `strict`). Where a read-only and a write-only field share
bits, reads show the state and writes go to a separate write side (`peek_written`). `singlepulse` bits
read back 0 after the write hooks ran; writes of `swmod` fields and reads of `swacc` fields are logged as
"swmod"/"swacc" events. A register with an accesswidth below its width also takes accesses of that
width at each piece, with the semantics applied to that piece's bits only. Undeclared bits behave as the
register's own access type says.

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

from .registers import RSVDZ, RegisterBlock, RegisterSpec, RegisterValue

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
    masks: dict[str, int]      # write op / read op / flag -> bits (see _make_reg)
    written: int = 0           # the write side of bits shared by a read-only and a write-only field
    once_done: int = 0         # write-once bits already written since reset


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
        self._pieces: dict[int, tuple[_Reg, int, int]] = {}
        self._by_name: dict[str, _Reg] = {}
        for spec in self.block_class._specs.values():
            for i in range(spec.count):
                name_i = spec.short if spec.count == 1 else f"{spec.short}[{i}]"
                reg = _make_reg(spec, name_i, spec.offset + i * spec.stride)
                self._regs[reg.offset] = reg
                self._by_name[name_i] = reg
                if len(spec.pieces) > 1:
                    for boff, shift, pmask in spec.pieces:
                        self._pieces[reg.offset + boff] = (reg, shift, pmask)
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

    def _locate(self, offset: int, width: int) -> tuple[_Reg, int, int] | None:
        """(register, piece shift, piece mask) for an access, or None when it fits no register."""
        reg = self._regs.get(offset)
        if reg is not None and reg.spec.nbytes == width:
            return reg, 0, reg.spec.all
        piece = self._pieces.get(offset)
        if piece is not None and piece[0].spec.accesswidth == width * 8:
            return piece
        return None

    def _read(self, offset: int, width: int) -> int:
        self._last_read = None
        found = self._locate(offset, width)
        if found is None:
            return self._stray("read", offset, width)
        reg, shift, pm = found
        spec, m = reg.spec, reg.masks
        value = reg.value & ~m["unreadable"] & pm
        for hook in self._read_hooks.get(reg.name, ()):
            result = hook(self, spec.state_class(value))
            if result is not None:
                value = int(result) & pm
        if self.rmw_garbage:
            injected = ((m["zero"] & ~value) | (m["ones"] & value) | m["reset"]) & pm
            garbage = injected & ~(m["ones"] | spec.wo_reset)
            value = (value & ~injected) | garbage
            self._last_read = (offset, injected, garbage)
        reg.value = (reg.value & ~(m["rc"] & pm)) | (m["rs"] & pm)
        self.log.append(DeviceEvent("read", reg.name, value >> shift))
        for f in spec.fields.values():
            if f.swacc and f.mask & pm:
                self.log.append(DeviceEvent("swacc", f"{reg.name}.{f.name}", (value >> f.lsb) & f.max))
        return value >> shift

    def _write(self, offset: int, width: int, value: int) -> None:
        last, self._last_read = self._last_read, None
        found = self._locate(offset, width)
        if found is None:
            self._stray("write", offset, width, value)
            return
        reg, shift, pm = found
        spec, m = reg.spec, reg.masks
        value = (value << shift) & pm
        if last is not None and last[0] == offset and last[1] and (value & last[1]) == last[2]:
            names = [f.name for f in spec.fields.values() if f.mask & last[1]] or ["(undeclared bits)"]
            raise AssertionError(
                f"fake {self.name}: read-modify-write of {reg.name} wrote back the garbage its read returned "
                f"in {', '.join(names)} (W1C/W1S/WO/RSVDZ bits; value {value:#x}); a W1C echo acknowledges "
                "events nobody handled")
        if value & m["rsvdz"] and self.strict:
            names = [f.name for f in spec.fields.values() if f.access is RSVDZ and value & f.mask]
            raise AssertionError(f"fake {self.name}: write of {value:#x} to {reg.name} sets reserved (RSVDZ) "
                                 f"bits in {', '.join(names) or 'the register'}")
        takes = m["value"] & pm & ~reg.once_done
        reg.once_done |= m["once"] & pm
        new = reg.value
        shared = m["shared"]
        reg.written = (reg.written & ~(takes & shared)) | (value & takes & shared)
        takes &= ~shared
        new = (new & ~takes) | (value & takes)
        inv = ~value & pm
        new &= ~((value & m["1c"]) | (inv & m["0c"]) | (m["c"] & pm))
        new |= (value & m["1s"]) | (inv & m["0s"]) | (m["s"] & pm)
        new ^= (value & m["1t"]) | (inv & m["0t"])
        reg.value = new & spec.all
        self.log.append(DeviceEvent("write", reg.name, value >> shift))
        for f in spec.fields.values():
            if f.swmod and f.mask & pm:
                self.log.append(DeviceEvent("swmod", f"{reg.name}.{f.name}", (value >> f.lsb) & f.max))
        for hook in self._write_hooks.get(reg.name, ()):
            hook(self, spec.state_class(value | (reg.value & ~pm)))
        reg.value &= ~(m["pulse"] & pm)

    def reset(self) -> None:
        """Every register back to its reset value (write-once fields writable again); the log is kept."""
        for reg in self._regs.values():
            reg.value, reg.written, reg.once_done = reg.spec.reset, 0, 0

    def peek_written(self, name: str) -> int:
        """What was last written to bits a write-only field shares with a read-only one."""
        return self._reg(name).written


def _make_reg(spec: RegisterSpec, name: str, offset: int) -> _Reg:
    undeclared = spec.undeclared
    own = spec.access
    m: dict[str, int] = {}

    def bits(pred: Any) -> int:
        return sum(f.mask for f in spec.fields.values() if pred(f.access)) | (undeclared if pred(own) else 0)

    for op in ("value", "1c", "1s", "1t", "0c", "0s", "0t", "c", "s"):
        m[op] = bits(lambda a, op=op: a.write_op == op)
    m["rsvdz"] = bits(lambda a: a is RSVDZ)
    m["rc"] = bits(lambda a: a.read_op == "c")
    m["rs"] = bits(lambda a: a.read_op == "s")
    m["once"] = bits(lambda a: a.once)
    readable = bits(lambda a: a.readable)
    m["unreadable"] = spec.all & ~readable
    m["shared"] = readable & sum(f.mask for f in spec.fields.values() if not f.access.readable)
    m["pulse"] = sum(f.mask for f in spec.fields.values() if f.singlepulse)
    # what a correct read-modify-write writes into the bits it leaves alone (garbage is the complement)
    m["zero"] = bits(lambda a: a.neutral == "zero") | m["pulse"]
    m["ones"] = bits(lambda a: a.neutral == "ones")
    m["reset"] = bits(lambda a: a.neutral == "reset")
    return _Reg(spec=spec, name=name, offset=offset, value=spec.reset, masks=m)
