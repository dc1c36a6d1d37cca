"""Register conformance from the map: does an implementation behave as its map says?

    problems = check_block(regmap.bind(buffer))     # any target: fake, RTL under cocotb, QEMU, hardware
    mmiotk regcheck MAP --mem /dev/mem --base 0x40001000

A suite generated from the map, per register (element 0 of arrays): the reset value on every readable bit
whose reset the map defines (`reset_mask`; registers whose read has no side effect); RW bits written with two
complementary patterns and read back; RO bits unchanged by a write of their complement; W1C/W0C bits left
alone by their neutral write; W1S/W0S set and W1T/W0T toggled by their active write; RC/RS bits cleared/set by
a read. Every write keeps the other fields neutral (Access.neutral), and each register is written back to its
reset value afterwards. Write-only, write-once and any-write (WC/WS) registers are not written. Each
disagreement is a `Mismatch` naming the register, the check, and the bits expected and read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..registers import RegisterHandle, RegisterSpec


@dataclass(frozen=True)
class Mismatch:
    register: str
    check: str
    mask: int
    expected: int
    got: int

    def __str__(self) -> str:
        return (f"{self.register}: {self.check}: expected {self.expected & self.mask:#x}, read "
                f"{self.got & self.mask:#x} (bits {self.mask:#x})")


def _bits(spec: RegisterSpec, pred: Any) -> int:
    """The bits whose access type satisfies `pred` (undeclared bits take the register's own type)."""
    return sum(f.mask for f in spec.fields.values() if pred(f.access)) | (spec.undeclared if pred(spec.access)
                                                                          else 0)


def _neutral_write(spec: RegisterSpec, state: int) -> int:
    """A raw value that changes nothing: state for kept bits, 0/1 for write-1/write-0 effects, WO resets."""
    return (state & spec.keep) | spec.m_ones | spec.wo_reset


def check_register(handle: RegisterHandle) -> list[Mismatch]:
    spec = handle.spec
    name = handle.name
    out: list[Mismatch] = []
    if not spec.readable or (spec.count > 1 and handle.index is None):
        return out
    readable = _bits(spec, lambda a: a.readable)
    known = readable & spec.reset_mask   # hardware-driven bits have no reset to compare
    side_effects = spec.read_effects
    rd = handle._rd
    wr = handle._wr
    off = handle._off

    def read() -> int:
        return int(rd(off))

    if not side_effects:
        got = read()
        if (got ^ spec.reset) & known:
            out.append(Mismatch(name, "reset value", known, spec.reset, got))
    else:   # reading clears/sets bits: check that it does (RC/RS), after the first read
        rc = _bits(spec, lambda a: a.read_op == "c")
        rs = _bits(spec, lambda a: a.read_op == "s")
        if not (spec.m_read_effect & ~(rc | rs)):   # only rc/rs effects (no precious/swacc): safe to read
            first = read()
            if (first ^ spec.reset) & known & ~(rc | rs):
                out.append(Mismatch(name, "reset value", known & ~(rc | rs), spec.reset, first))
            after = read()
            if after & rc:
                out.append(Mismatch(name, "RC bits clear on read", rc, 0, after))
            if ~after & rs:
                out.append(Mismatch(name, "RS bits set on read", rs, rs, after))
        return out
    if not spec.writable or spec.m_forced or _bits(spec, lambda a: a.once):
        return out
    state = read()
    software = _bits(spec, lambda a: a.readable and a.write_op not in ("none", "zero"))
    wr(off, _neutral_write(spec, state) & spec.all)
    got = read()
    if (got ^ state) & software:
        out.append(Mismatch(name, "a neutral write changes nothing", software, state, got))
    state = got
    rw = _bits(spec, lambda a: a.write_op == "value" and a.readable)
    for pattern in (0x5555_5555_5555_5555, 0xAAAA_AAAA_AAAA_AAAA):
        if rw:
            value = (_neutral_write(spec, state) & ~rw) | (pattern & rw)
            wr(off, value & spec.all)
            got = read()
            if (got ^ pattern) & rw:
                out.append(Mismatch(name, f"RW bits read back {pattern & rw:#x}", rw, pattern, got))
            state = got
    ro = _bits(spec, lambda a: a.write_op == "none" and a.readable and not a.read_op)
    if ro:
        before = read()
        wr(off, ((_neutral_write(spec, before) & ~ro) | (~before & ro)) & spec.all)
        got = read()
        if (got ^ before) & ro:
            out.append(Mismatch(name, "RO bits unchanged by a write", ro, before, got))
    for ops, label, active_one in ((("1c", "0c"), "W1C/W0C bits unchanged by their neutral write", None),
                                   (("1s",), "W1S bits set by writing 1", True), (("0s",), "W0S bits set by writing 0",
                                                                                  False)):
        bits = _bits(spec, lambda a, ops=ops: a.write_op in ops)
        if not bits:
            continue
        before = read()
        neutral = _neutral_write(spec, before)
        if active_one is None:
            wr(off, neutral & spec.all)
            expected = before
        else:
            wr(off, ((neutral & ~bits) | (bits if active_one else 0)) & spec.all)
            expected = before | bits
        got = read()
        if (got ^ expected) & bits:
            out.append(Mismatch(name, label, bits, expected, got))
    for op, active_one in (("1t", True), ("0t", False)):
        bits = _bits(spec, lambda a, op=op: a.write_op == op)
        if not bits:
            continue
        before = read()
        wr(off, ((_neutral_write(spec, before) & ~bits) | (bits if active_one else 0)) & spec.all)
        got = read()
        if (got ^ ~before) & bits:
            out.append(Mismatch(name, f"W{'1' if active_one else '0'}T bits toggled", bits, ~before, got))
    # back to the reset value for what software can set (W1C events and the like stay as they are)
    wr(off, ((spec.reset & rw) | (_neutral_write(spec, read()) & ~rw)) & spec.all)
    return out


def check_block(block: Any) -> list[Mismatch]:
    """Run the suite on every register of a bound block; returns the disagreements (empty: conformant)."""
    out: list[Mismatch] = []
    for handle in block:
        if handle.spec.count > 1:
            handle = handle[0]
        out += check_register(handle)
    return out
