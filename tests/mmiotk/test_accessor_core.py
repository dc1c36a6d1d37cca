"""The accessor core: which one runs, what both refuse, and the barriers of each architecture in the machine code.

Everything here except the last two groups runs under both cores: once in this process (the compiled core,
where it is built) and once more under MMIOTK_PURE_PYTHON=1 with the other accessor test modules.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mmiotk import AlignmentError, CachePolicy, MmioValueError, OutOfRangeError, RevokedError, barrier, native
from mmiotk.mock import CallbackSpace
from mmiotk.registers import RO, RSVDZ, W1C, Field, Register, RegisterBlock

ROOT = Path(__file__).resolve().parents[2]
HEADER_DIR = ROOT / "mmiotk" / "csrc"
WIDTHS = [8, 16, 32, 64]
NUMPY_INTS = [np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64, np.intp]


def accessors(buf, bits, relaxed):
    suffix = "_relaxed" if relaxed else ""
    return getattr(buf, f"read{bits}{suffix}"), getattr(buf, f"write{bits}{suffix}")


# --- which core -----------------------------------------------------------------------------------------
def test_compiled_core_is_in_use_unless_pure_python_is_forced(regs):
    if os.environ.get(native.PURE_PYTHON_ENV):
        assert native.CORE == "python" and "MMIOTK_PURE_PYTHON" in native.CORE_DESCRIPTION
        assert not regs._core_is_direct and not barrier.FENCE_MECHANISM.startswith("compiled")
    else:  # the bootstrap installs a C compiler and builds the core: its absence is a failure here
        assert native.CORE == "compiled", native.CORE_DESCRIPTION
        assert regs._core_is_direct and barrier.FENCE_MECHANISM.startswith("compiled core")


def test_byte_swapped_buffers_take_the_python_path_and_transaction_backed_ones_call_their_window(resource):
    space = CallbackSpace(0x100, lambda off, width: 0, lambda off, width, value: None)
    bus = space.map_all()
    assert not bus._core_is_direct and bus._core_is_bus == (native.CORE == "compiled")
    big = resource.create_region(0x4000_1000, 0x100, "be").map(CachePolicy.UNCACHED, byteorder="big")
    assert not big._core_is_direct and not big._core_is_bus


@pytest.fixture
def bus():
    """A transaction-backed buffer (a view 0x10 into its window) and the log of the calls it makes."""
    calls: list[tuple] = []

    def read(off, width):
        calls.append(("read", off, width))
        return (1 << (8 * width)) - 2

    space = CallbackSpace(0x100, read, lambda off, width, value: calls.append(("write", off, width, value)))
    return space.map_all("bus").view(0x10, 0x40), calls


@pytest.mark.parametrize("relaxed", [False, True])
@pytest.mark.parametrize("bits", WIDTHS)
def test_a_transaction_backed_access_is_one_call_of_the_window_at_the_absolute_offset(bus, bits, relaxed):
    buf, calls = bus
    read, write = accessors(buf, bits, relaxed)
    width = bits // 8
    assert read(2 * width) == (1 << bits) - 2
    write(3 * width, (1 << bits) - 1)
    write(np.uint8(width), np.uint8(5))  # numpy integers go the Python way, to the same window
    assert calls == [("read", 0x10 + 2 * width, width), ("write", 0x10 + 3 * width, width, (1 << bits) - 1),
                     ("write", 0x10 + width, width, 5)]


@pytest.mark.parametrize("bits", WIDTHS)
def test_a_bad_transaction_backed_access_raises_as_before_and_calls_nothing(bus, bits):
    buf, calls = bus
    read, write = accessors(buf, bits, False)
    with pytest.raises(OutOfRangeError, match=rf"bus: read{bits} at offset 0x40, width {bits} bits"):
        read(0x40)
    with pytest.raises(MmioValueError, match=rf"value {1 << bits} does not fit in {bits} bits"):
        write(0, 1 << bits)
    with pytest.raises(TypeError, match="offset must be an int"):
        write(1.0, 1)
    if bits > 8:
        with pytest.raises(AlignmentError, match=f"not aligned to {bits // 8} bytes"):
            read(1)
    assert calls == []


def test_a_traced_or_revoked_transaction_backed_buffer_leaves_the_compiled_path(bus):
    buf, calls = bus
    on = buf._core_is_bus
    with buf.trace() as trace:
        assert not buf._core_is_bus
        buf.write32(4, 9)
    assert buf._core_is_bus == on == (native.CORE == "compiled")
    assert [(a.kind, a.offset, a.value) for a in trace] == [("write", 4, 9)]
    buf.region.revoke()
    assert not buf._core_is_bus
    with pytest.raises(RevokedError, match="region 'bus' was revoked"):
        buf.read32(0)
    assert calls == [("write", 0x14, 4, 9)]


def test_pure_python_core_passes_the_same_accessor_tests(tmp_path):
    tests = ROOT / "tests" / "mmiotk"
    env = dict(os.environ, **{native.PURE_PYTHON_ENV: "1"})
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(ROOT),
         str(tests / "test_accessors.py"), str(tests / "test_accessor_core.py"), str(tests / "test_trace.py"),
         str(tests / "test_properties.py"), str(tests / "test_memmodel.py"), str(tests / "test_registers.py"),
         "-k", "not pure_python_core_passes and not disassembly"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert re.search(r"\d+ passed", run.stdout) and "failed" not in run.stdout.splitlines()[-1]


# --- offsets: ints, numpy integers; never bools or floats --------------------------------------------------
@pytest.mark.parametrize("relaxed", [False, True], ids=["ordered", "relaxed"])
@pytest.mark.parametrize("bits", WIDTHS)
@pytest.mark.parametrize("kind", NUMPY_INTS, ids=lambda k: k.__name__)
def test_numpy_integer_offsets_are_taken_at_their_value(regs, ram, bits, relaxed, kind):
    read, write = accessors(regs, bits, relaxed)
    value = (0x8877665544332211 >> (64 - bits))
    write(kind(0x10), value)
    assert read(kind(0x10)) == value == read(0x10)
    assert bytes(ram.array[0x10:0x10 + bits // 8]) == value.to_bytes(bits // 8, "little")


@pytest.mark.parametrize("bits", WIDTHS)
@pytest.mark.parametrize("offset", [np.int64(2**55), np.uint64(2**63), np.int64(-8), np.uint64(2**64 - 8)],
                         ids=["int64-2**55", "uint64-2**63", "int64-neg", "uint64-max"])
def test_numpy_offsets_out_of_range_raise_out_of_range_not_overflow(regs, ram, bits, offset):
    read, write = accessors(regs, bits, False)
    with pytest.raises(OutOfRangeError, match=rf"regs: read{bits} at offset .*width {bits} bits, size 0x100"):
        read(offset)
    with pytest.raises(OutOfRangeError, match=f"regs: write{bits}"):
        write(offset, 1)
    assert not ram.array[:0x100].any()


@pytest.mark.parametrize("relaxed", [False, True], ids=["ordered", "relaxed"])
@pytest.mark.parametrize("bits", WIDTHS)
@pytest.mark.parametrize("offset", [True, False, 1.0, 4.0, np.float64(8), "4", None, 4 + 0j])
def test_offsets_that_are_not_ints_raise_type_error_naming_the_buffer(regs, ram, bits, relaxed, offset):
    read, write = accessors(regs, bits, relaxed)
    where = rf"regs: read{bits} at offset {re.escape(repr(offset))}, width {bits} bits, size 0x100: offset must be"
    with pytest.raises(TypeError, match=where):
        read(offset)
    with pytest.raises(TypeError, match=rf"regs: write{bits} at offset .*: offset must be an int, not "):
        write(offset, 1)
    assert not ram.array[:0x100].any()


def test_true_is_not_offset_one(regs):
    regs.write8(1, 0x5A)
    with pytest.raises(TypeError, match="not bool"):
        regs.read8(True)


# --- values: ints and numpy integers that fit; never bools or floats ---------------------------------------
@pytest.mark.parametrize("bits", WIDTHS)
@pytest.mark.parametrize("kind", [np.uint8, np.int16, np.uint32, np.int64, np.uint64], ids=lambda k: k.__name__)
def test_numpy_integer_values_that_fit_are_written(regs, bits, kind):
    value = kind(min(np.iinfo(kind).max, (1 << bits) - 1))
    _, write = accessors(regs, bits, False)
    write(0x20, value)
    assert getattr(regs, f"read{bits}")(0x20) == int(value)


@pytest.mark.parametrize("bits", WIDTHS)
@pytest.mark.parametrize("value", [True, False, 1.0, np.float32(1), np.int64(-1), "1", None],
                         ids=["True", "False", "1.0", "np.float32", "np.int64(-1)", "str", "None"])
def test_values_that_are_not_fitting_ints_raise_and_write_nothing(regs, ram, bits, value):
    ram.array[0x30:0x38] = 0x5A
    for relaxed in (False, True):
        _, write = accessors(regs, bits, relaxed)
        with pytest.raises(MmioValueError, match=rf"regs: write{bits} at offset 0x30, width {bits} bits, size "
                                                 rf"0x100: value .* does not fit in {bits} bits"):
            write(0x30, value)
    assert all(ram.array[0x30:0x38] == 0x5A)


@pytest.mark.parametrize("value", [16.0, np.float64(1), True, np.int64(-1)], ids=["16.0", "np.float64", "True",
                                                                                   "np.int64(-1)"])
def test_no_float_or_bool_reaches_a_transaction_backed_window(value):
    seen = []
    buf = CallbackSpace(0x100, lambda off, width: 0, lambda off, width, v: seen.append(v)).map_all("dev")
    with pytest.raises(MmioValueError, match=r"dev: write32 at offset 0x30, .*does not fit in 32 bits"):
        buf.write32(0x30, value)
    buf.write32(0x30, np.uint32(16))
    assert seen == [16] and type(seen[0]) is int


def test_numpy_values_on_a_byte_swapped_mapping(resource, ram):
    be = resource.create_region(0x4000_1000, 0x100, "be").map(CachePolicy.UNCACHED, byteorder="big")
    be.write32(np.int64(4), np.uint32(0x11223344))
    assert bytes(ram.array[0x1004:0x1008]) == b"\x11\x22\x33\x44"
    with pytest.raises(MmioValueError, match=r"be: write16 .*value 1\.5 does not fit in 16 bits"):
        be.write16(0, 1.5)


@pytest.mark.parametrize("mask", [True, 1.0, np.float64(1), -1, 1 << 32])
def test_modify32_refuses_masks_that_are_not_32_bit_ints(regs, mask):
    regs.write32(0, 0x1234)
    with pytest.raises(MmioValueError, match=r"regs: modify32 at offset 0x0: set_mask .* does not fit in 32 bits"):
        regs.modify32(0, 0, mask)
    assert regs.read32(0) == 0x1234


def test_modify32_takes_numpy_masks_and_offsets(regs):
    regs.write32(8, 0xFF)
    assert regs.modify32(np.int64(8), np.uint32(0xF0), np.uint8(1)) == 0x0F
    assert regs.read32(8) == 0x0F


# --- block copies ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("offset", [1.0, True, "0", np.float64(0)])
def test_block_copies_refuse_offsets_that_are_not_ints_naming_the_buffer(regs, ram, offset):
    with pytest.raises(TypeError, match="regs: read_block: offset and length must be ints"):
        regs.read_block(offset, 4)
    with pytest.raises(TypeError, match="regs: write_block: offset and length must be ints"):
        regs.write_block(offset, b"abcd")
    assert not ram.array[:0x100].any()


def test_write_block_refuses_data_that_is_not_bytes_like(regs):
    with pytest.raises(MmioValueError, match="regs: write_block at offset 0x0: data of type int"):
        regs.write_block(0, 5)


def test_write_block_takes_any_contiguous_buffer_and_refuses_strided_ones(regs, ram):
    regs.write_block(0x10, memoryview(np.arange(4, dtype=np.uint16)))
    assert regs.read_block(0x10, 8) == np.arange(4, dtype=np.uint16).tobytes()
    with pytest.raises(MmioValueError, match="not contiguous"):
        regs.write_block(0x20, np.arange(8, dtype=np.uint8)[::2])
    assert not ram.array[0x20:0x28].any()


def test_write_block_from_an_overlapping_view_of_the_same_memory(regs):
    regs.write_block(0, bytes(range(16)))
    regs.write_block(4, regs.array(np.uint8, 0, 8))
    assert regs.read_block(0, 16) == bytes([0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 12, 13, 14, 15])


@pytest.mark.parametrize("dtype", ["S0", "V0", "U0"])
def test_array_of_a_dtype_without_size_is_refused(regs, dtype):
    with pytest.raises(MmioValueError, match=r"regs: array of .* the dtype has no size"):
        regs.array(dtype)


@pytest.mark.parametrize("offset", [True, 1.0])
def test_views_and_arrays_refuse_offsets_that_are_not_ints(regs, offset):
    with pytest.raises(TypeError, match="regs: view: offset and length must be ints"):
        regs.view(offset, 8)
    with pytest.raises(TypeError, match="regs: array: offset and length must be ints"):
        regs.array(np.uint8, offset, 1)


# --- revocation, tracing, views, tiny buffers --------------------------------------------------------------
def test_revoked_buffer_refuses_every_access_with_the_region_named(resource, ram):
    region = resource.create_region(0x4000_0200, 0x100, "dev")
    buf = region.map(CachePolicy.UNCACHED)
    view = buf.view(0x40, 0x40)
    buf.write32(4, 7)
    region.revoke()
    assert not buf._core_is_direct and not view._core_is_direct
    with pytest.raises(RevokedError, match=r"region 'dev' was revoked: access at offset 0x4, width 32 bits"):
        buf.read32(4)
    with pytest.raises(RevokedError, match="region 'dev' was revoked"):
        buf.write64_relaxed(8, 1)
    with pytest.raises(RevokedError, match="region 'dev' was revoked"):
        view.write8(0, 1)
    with pytest.raises(RevokedError, match="dev: region was revoked: read_block"):
        buf.read_block(0, 4)
    with pytest.raises(RevokedError, match="dev: region was revoked: write_block"):
        buf.write_block(0, b"x")
    with pytest.raises(RevokedError):
        buf.modify32(4, 0, 1)
    assert ram.array[0x204] == 7 and not ram.array[0x208:0x210].any()


def test_tracing_sees_every_access_and_the_core_comes_back_afterwards(regs):
    direct = regs._core_is_direct
    with regs.trace() as trace:
        assert not regs._core_is_direct
        regs.write32(4, 5)
        regs.modify32(4, 0, 2)
        regs.read_block(0, 4)
    assert regs._core_is_direct == direct == (native.CORE == "compiled")
    assert [(a.kind, a.offset, a.value) for a in trace][:3] == [("write", 4, 5), ("read", 4, 5), ("write", 4, 7)]
    assert trace[3].kind == "read_block"


def test_views_access_relative_to_their_start_and_stop_at_their_end(regs, ram):
    view = regs.view(0x40, 0x10)
    view.write32(0xC, 0xA5A5A5A5)
    assert bytes(ram.array[0x4C:0x50]) == b"\xa5" * 4
    with pytest.raises(OutOfRangeError, match=r"offset 0x10, width 32 bits, size 0x10"):
        view.read32(0x10)
    with pytest.raises(OutOfRangeError, match="size 0x10"):
        view.write64(0xC, 0)
    with pytest.raises(AlignmentError):
        view.read16(3)


def test_a_buffer_smaller_than_the_width_refuses_it(resource):
    buf = resource.create_region(0x4000_3000, 2, "tiny").map(CachePolicy.UNCACHED)
    buf.write16(0, 0xBEEF)
    assert buf.read8(1) == 0xBE
    with pytest.raises(OutOfRangeError, match=r"tiny: read32 at offset 0x0, width 32 bits, size 0x2"):
        buf.read32(0)
    with pytest.raises(OutOfRangeError):
        buf.write64(0, 0)


def test_every_barrier_runs(regs):
    for fence in (barrier.mb, barrier.rmb, barrier.wmb, barrier.dma_mb, barrier.dma_rmb, barrier.dma_wmb,
                  barrier.io_ar, barrier.io_bw):
        assert fence() is None
    regs.mb()
    regs.rmb()
    regs.wmb()


# --- register handles on the core -----------------------------------------------------------------------
class Uart(RegisterBlock, name="UART0"):
    CTRL = Register(0x0, fields=[Field("EN", 0), Field("MODE", (3, 1)), Field("DONE", 8, access=W1C),
                                 Field("RES", (15, 12), access=RSVDZ)])
    STATUS = Register(0x4, access=RO, fields=[Field("RXNE", 0), Field("LEVEL", (15, 8))])
    WIDE = Register(0x8, width=64, fields=[Field("HI", (63, 32)), Field("LO", (31, 0))])
    HALF = Register(0x10, width=16, fields=[Field("B", (15, 8))])


def test_register_handles_read_write_and_modify_through_the_core(regs, ram):
    uart = Uart(regs)
    ram.array[0:4] = [0x01, 0xF1, 0, 0]             # EN=1, DONE=1 (W1C), RES=0xF (RSVDZ)
    assert uart.CTRL.modify(MODE=5) == 0x000B       # W1C and RSVDZ written 0, EN kept
    assert regs.read32(0) == 0x000B
    assert uart.CTRL.write(EN=1, MODE=2) == 0x0005 and regs.read32(0) == 0x0005
    ram.array[4:8] = [0x01, 0x2A, 0, 0]
    status = uart.STATUS.read()
    assert (status, status.RXNE, status.LEVEL) == (0x2A01, 1, 0x2A)
    ram.array[4:8] = [0x00, 0x07, 0, 0]             # the next read sees the new value, not a remembered one
    assert (uart.STATUS.read().RXNE, uart.STATUS.read().LEVEL) == (0, 7)
    assert uart.WIDE.modify(HI=0xFFFF_FFFF) == 0xFFFF_FFFF_0000_0000 and regs.read64(8) == 0xFFFF_FFFF_0000_0000
    assert uart.WIDE.read().HI == 0xFFFF_FFFF and uart.HALF.modify(B=0xAB) == 0xAB00 == regs.read16(0x10)
    with pytest.raises(AttributeError):
        status.RXNE = 0


@pytest.mark.parametrize("call", [lambda r: r.modify(MODE=8), lambda r: r.modify(EN=-1), lambda r: r.modify(EN=1.0),
                                  lambda r: r.modify(NOPE=1), lambda r: r.modify(DONE=2),
                                  lambda r: r.write(MODE=8), lambda r: r.write(EN=0.5)],
                         ids=["too-big", "negative", "float", "unknown", "w1c-too-big", "write-too-big",
                              "write-float"])
def test_register_handles_refuse_bad_field_values_before_any_access(regs, ram, call):
    uart = Uart(regs)
    ram.array[0:4] = [0x0E, 0, 0, 0]
    with regs.trace() as trace, pytest.raises((MmioValueError, AttributeError, TypeError, ValueError)):
        call(uart.CTRL)
    assert len(trace) == 0 and regs.read32(0) == 0x0E


def test_register_handles_are_traced_and_revoked_like_the_buffer(resource):
    region = resource.create_region(0x4000_0400, 0x100, "uart")
    buf = region.map(CachePolicy.UNCACHED)
    uart = Uart(buf)
    with buf.trace() as trace:
        uart.CTRL.modify(EN=1)
        uart.STATUS.read()
        uart.CTRL.write(MODE=1)
    assert [(a.kind, a.offset) for a in trace] == [("read", 0), ("write", 0), ("read", 4), ("write", 0)]
    uart.CTRL.modify(EN=1)
    region.revoke()
    for call in (lambda: uart.CTRL.modify(EN=0), lambda: uart.STATUS.read(), lambda: uart.CTRL.write(EN=1)):
        with pytest.raises(RevokedError, match="region 'uart' was revoked"):
            call()


def test_register_handles_on_a_bus_that_is_not_a_buffer():
    store = {}

    class Bus:
        def read32(self, offset):
            return store.get(offset, 0)

        def write32(self, offset, value):
            store[offset] = value

        read64 = write64 = read16 = write16 = None

    uart = Uart(Bus())
    uart.CTRL.modify(MODE=3, EN=1)
    store[4] = 0x0101
    assert store[0] == 0x7 and uart.STATUS.read().LEVEL == 1


# --- the barriers in the machine code, per architecture ------------------------------------------------------
# Each accessor of mmio_io.h is compiled on its own and disassembled. Of its instructions up to `ret`, the
# memory accesses and barriers must be exactly these, in this order (Linux's table, see the header).
_ACCESSORS = {f"{op}{bits}{rel}": (op, bits) for op in ("read", "write") for bits in WIDTHS for rel in ("", "_relaxed")}
_BARRIERS = ("mb", "rmb", "wmb", "dma_mb", "dma_rmb", "dma_wmb")
EXPECTED = {
    "x86_64": {"read": [], "write": [], "mb": ["mfence"], "rmb": ["lfence"], "wmb": ["sfence"],
               "dma_mb": ["mfence"], "dma_rmb": [], "dma_wmb": []},
    "aarch64": {"read": ["dmb oshld"], "write": ["dmb oshst"], "mb": ["dsb sy"], "rmb": ["dsb ld"],
                "wmb": ["dsb st"], "dma_mb": ["dmb osh"], "dma_rmb": ["dmb oshld"], "dma_wmb": ["dmb oshst"]},
    "riscv64": {"read": ["fence i,ir"], "write": ["fence w,o"], "mb": ["fence iorw,iorw"], "rmb": ["fence ir,ir"],
                "wmb": ["fence ow,ow"], "dma_mb": ["fence iorw,iorw"], "dma_rmb": ["fence ir,ir"],
                "dma_wmb": ["fence ow,ow"]},
}
TOOLS = {"x86_64": ("gcc", "objdump"), "aarch64": ("aarch64-linux-gnu-gcc", "aarch64-linux-gnu-objdump"),
         "riscv64": ("riscv64-linux-gnu-gcc", "riscv64-linux-gnu-objdump")}


def _expected(arch: str, name: str) -> list[str]:
    if name in _BARRIERS:
        return EXPECTED[arch][name]
    op, bits = _ACCESSORS[name]
    access = f"{'load' if op == 'read' else 'store'}{bits}"
    fence = [] if name.endswith("_relaxed") else EXPECTED[arch][op]
    return [access, *fence] if op == "read" else [*fence, access]


def _x86_register_bits(reg: str) -> int:
    name = reg.lstrip("%")
    numbered = re.fullmatch(r"r(\d+)([dwb]?)", name)
    if numbered:
        return {"": 64, "d": 32, "w": 16, "b": 8}[numbered[2]]
    if name.startswith("r"):
        return 64
    if name.startswith("e"):
        return 32
    if name.endswith(("l", "h")):
        return 8
    return 16


def _classify(arch: str, insn: str) -> str | None:
    """`load32`/`store8`/... for one memory access, the barrier text for a barrier, None for anything else."""
    mnemonic, _, operands = insn.partition(" ")
    operands = operands.replace(" ", "")
    if arch == "x86_64":
        if mnemonic in ("mfence", "lfence", "sfence"):
            return mnemonic
        if "(" not in operands or "nop" in mnemonic:
            return None
        src, _, dst = operands.partition(",")
        reg = dst if "(" in src else src
        bits = {"movzbl": 8, "movzwl": 16, "movb": 8, "movw": 16, "movl": 32, "movq": 64}.get(mnemonic)
        return f"{'load' if '(' in src else 'store'}{bits or _x86_register_bits(reg)}"
    if arch == "aarch64":
        if mnemonic in ("dmb", "dsb", "isb"):
            return f"{mnemonic} {operands}".strip()
        if mnemonic.startswith(("ld", "st")):
            assert "]!" not in operands and "],#" not in operands, f"writeback addressing: {insn}"
            kind = "load" if mnemonic.startswith("ld") else "store"
            suffix = mnemonic.lstrip("ldrstu").lstrip("s")
            bits = {"b": 8, "h": 16}.get(suffix) or (64 if operands.startswith("x") else 32)
            return f"{kind}{bits}"
        return None
    if mnemonic == "fence":  # objdump prints the full `fence iorw,iorw` as a bare `fence`
        return f"fence {operands or 'iorw,iorw'}"
    widths = {"b": 8, "h": 16, "w": 32, "d": 64}
    m = re.fullmatch(r"(?:c\.)?([ls])([bhwd])u?", mnemonic)
    if m:
        return f"{'load' if m[1] == 'l' else 'store'}{widths[m[2]]}"
    return None


def _disassemble(arch: str, tmp_path: Path) -> dict[str, list[str]]:
    cc, objdump = TOOLS[arch]
    src = tmp_path / "check.c"
    body = ['#include "mmio_io.h"']
    for name, (op, bits) in _ACCESSORS.items():
        if op == "read":
            body.append(f"uint{bits}_t chk_{name}(const volatile void *a) {{ return mmio_{name}(a); }}")
        else:
            body.append(f"void chk_{name}(volatile void *a, uint{bits}_t v) {{ mmio_{name}(a, v); }}")
    body += [f"void chk_{name}(void) {{ mmio_{name}(); }}" for name in _BARRIERS]
    src.write_text("\n".join(body) + "\n")
    obj = tmp_path / "check.o"
    subprocess.run([cc, "-O2", "-ffreestanding", "-c", "-I", str(HEADER_DIR), str(src), "-o", str(obj)],
                   check=True, capture_output=True, text=True, timeout=120)
    listing = subprocess.run([objdump, "-d", "--no-show-raw-insn", str(obj)], check=True, capture_output=True,
                             text=True, timeout=60).stdout
    functions: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in listing.splitlines():
        head = re.match(r"^[0-9a-f]+ <chk_(\w+)>:$", line)
        if head:
            current = functions.setdefault(head[1], [])
            continue
        insn = re.match(r"^\s+[0-9a-f]+:\s+(.*)$", line)
        if insn and current is not None:
            text = re.sub(r"\s+", " ", insn[1].split("#")[0].split("<")[0]).strip()
            current.append(text)
            if text.split(" ")[0] in ("ret", "c.jr", "jr"):
                current = None  # what follows is padding
    return functions


@pytest.mark.parametrize("arch", ["x86_64", "aarch64", "riscv64"])
def test_disassembly_has_exactly_linuxs_barriers_and_one_access_of_the_width(arch, tmp_path):
    functions = _disassemble(arch, tmp_path)
    assert set(functions) == set(_ACCESSORS) | set(_BARRIERS)
    for name, insns in functions.items():
        seen = [c for c in (_classify(arch, i) for i in insns) if c is not None]
        assert seen == _expected(arch, name), f"{arch} {name}: {insns}"
    if arch == "aarch64":  # readX also makes __iormb's control dependency on the value read (for udelay)
        assert all(any(i.startswith("cbnz") for i in functions[f"read{b}"]) for b in WIDTHS)


def test_disassembly_classifier_catches_a_wrong_width_and_a_missing_barrier():
    assert _classify("x86_64", "mov (%rdi),%eax") == "load32" and _classify("x86_64", "mov %sil,(%rdi)") == "store8"
    assert _classify("x86_64", "mov %si,(%rdi)") == "store16" and _classify("x86_64", "mov (%rdi),%rax") == "load64"
    assert _classify("aarch64", "ldrh w0, [x0]") == "load16" and _classify("aarch64", "str x1, [x0]") == "store64"
    assert _classify("riscv64", "lwu a0,0(a0)") == "load32" and _classify("riscv64", "sb a1,0(a0)") == "store8"
    assert _expected("aarch64", "read32") == ["load32", "dmb oshld"] != ["load32"]
    assert _expected("riscv64", "write16") == ["fence w,o", "store16"]
