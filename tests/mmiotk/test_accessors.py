"""Every accessor is one access of its exact width, in range, aligned, with a value that fits."""

from __future__ import annotations

import numpy as np
import pytest

from mmiotk import (
    AlignmentError,
    CachePolicy,
    MmioBuffer,
    MmioError,
    MmioResource,
    MmioValueError,
    OutOfRangeError,
    RamSpace,
)

WIDTHS = [8, 16, 32, 64]


def accessors(buf: MmioBuffer, bits: int, relaxed: bool):
    suffix = "_relaxed" if relaxed else ""
    return getattr(buf, f"read{bits}{suffix}"), getattr(buf, f"write{bits}{suffix}")


@pytest.mark.parametrize("relaxed", [False, True], ids=["ordered", "relaxed"])
@pytest.mark.parametrize("bits", WIDTHS)
def test_write_then_read_returns_value_little_endian(regs, ram, bits, relaxed):
    read, write = accessors(regs, bits, relaxed)
    value = (0x0102030405060708 >> (64 - bits))
    write(0x10, value)
    assert read(0x10) == value
    assert bytes(ram.array[0x10:0x10 + bits // 8]) == value.to_bytes(bits // 8, "little")


@pytest.mark.parametrize("bits", WIDTHS)
def test_write_touches_exactly_its_width(regs, ram, bits):
    ram.array[0x20:0x40] = 0xAA
    getattr(regs, f"write{bits}")(0x28, 0)
    width = bits // 8
    assert all(ram.array[0x28:0x28 + width] == 0)
    assert all(ram.array[0x20:0x28] == 0xAA)
    assert all(ram.array[0x28 + width:0x40] == 0xAA)


@pytest.mark.parametrize("bits", [16, 32, 64])
def test_misaligned_access_raises_alignment_error_naming_offset(regs, bits):
    read, write = accessors(regs, bits, False)
    with pytest.raises(AlignmentError, match=rf"offset 0x1.*width {bits} bits") as info:
        write(0x1, 0)
    assert isinstance(info.value, ValueError) and isinstance(info.value, MmioError)
    with pytest.raises(AlignmentError):
        read(0x1)


@pytest.mark.parametrize("bits", WIDTHS)
@pytest.mark.parametrize("offset", [-8, 0x100, 0x1000, 1 << 50])
def test_out_of_range_access_raises_index_error(regs, bits, offset):
    read, write = accessors(regs, bits, True)
    with pytest.raises(OutOfRangeError, match="size 0x100") as info:
        read(offset)
    assert isinstance(info.value, IndexError)
    with pytest.raises(OutOfRangeError):
        write(offset, 0)


@pytest.mark.parametrize("bits", WIDTHS)
def test_access_straddling_the_end_raises(regs, bits):
    width = bits // 8
    read, _ = accessors(regs, bits, False)
    assert read(0x100 - width) == 0
    if width > 1:
        with pytest.raises((OutOfRangeError, AlignmentError)):
            read(0x100 - width // 2)


@pytest.mark.parametrize("bits", WIDTHS)
@pytest.mark.parametrize("bad", ["too-big", -1, "str", 1.5])
def test_value_that_does_not_fit_raises_and_writes_nothing(regs, ram, bits, bad):
    value = {"too-big": 1 << bits, "str": "7"}.get(bad, bad) if isinstance(bad, str) else bad
    ram.array[0x30:0x38] = 0x5A
    _, write = accessors(regs, bits, False)
    with pytest.raises(MmioValueError, match=f"does not fit in {bits} bits"):
        write(0x30, value)
    assert all(ram.array[0x30:0x38] == 0x5A)


def test_modify32_clears_then_sets(regs):
    regs.write32(0, 0xF0F0_F0F0)
    assert regs.modify32(0, 0xFF00_0000, 0x0000_000F) == 0x00F0_F0FF
    assert regs.read32(0) == 0x00F0_F0FF
    regs.set_bits32(0, 0x8000_0000)
    regs.clear_bits32(0, 0x0000_00FF)
    assert regs.read32(0) == 0x80F0_F000


def test_modify32_with_bad_mask_raises_before_touching_the_register(regs, ram):
    regs.write32(0, 0x1234)
    with pytest.raises(MmioValueError, match="set_mask"):
        regs.modify32(0, 0, 1 << 32)
    with pytest.raises(MmioValueError, match="clear_mask"):
        regs.modify32(0, -1, 0)
    assert regs.read32(0) == 0x1234


def test_read_block_and_write_block_copy_bytes(regs, ram):
    regs.write_block(0x40, b"hello world")
    assert regs.read_block(0x40, 11) == b"hello world"
    assert bytes(ram.array[0x40:0x4B]) == b"hello world"
    regs.write_block(0x80, np.arange(4, dtype=np.uint32))
    assert regs.read32(0x8C) == 3


def test_write_block_past_the_end_writes_nothing(regs, ram):
    with pytest.raises(OutOfRangeError, match="write_block of 32 bytes"):
        regs.write_block(0xF0, bytes(range(32)))
    assert not ram.array[0xF0:0x100].any()
    with pytest.raises(OutOfRangeError):
        regs.read_block(0xF0, 0x11)


def test_array_is_a_live_numpy_view(regs, ram):
    words = regs.array(np.uint32, 0x10, 4)
    words[2] = 0xCAFEF00D
    assert regs.read32(0x18) == 0xCAFEF00D
    assert words.dtype == np.uint32 and words.shape == (4,)


def test_array_checks_range_and_alignment(regs):
    with pytest.raises(OutOfRangeError):
        regs.array(np.uint32, 0xF8, 4)
    with pytest.raises(AlignmentError):
        regs.array(np.uint32, 2, 1)


def test_big_endian_mapping_swaps_bytes(resource, ram):
    be = resource.create_region(0x4000_1000, 0x100, "be").map(CachePolicy.UNCACHED, byteorder="big")
    be.write32(0, 0x11223344)
    assert bytes(ram.array[0x1000:0x1004]) == b"\x11\x22\x33\x44"
    assert be.read32(0) == 0x11223344
    be.write16(4, 0xABCD)
    assert bytes(ram.array[0x1004:0x1006]) == b"\xab\xcd"


def test_barriers_are_callable_on_every_buffer(regs):
    regs.mb()
    regs.rmb()
    regs.wmb()


def test_unknown_byteorder_is_refused(resource):
    region = resource.create_region(0x4000_2000, 0x100, "x")
    with pytest.raises(MmioValueError, match="byteorder"):
        region.map(CachePolicy.UNCACHED, byteorder="middle")


def test_file_backed_ram_is_shared_with_a_second_mapping(tmp_path):
    path = tmp_path / "shm"
    with RamSpace(1 << 16, base=0x1000_0000, path=path) as ram:
        buf = MmioResource(ram, 0x1000_0000, 1 << 16).create_region(0x1000_0000, 64).map(CachePolicy.UNCACHED)
        buf.write64(8, 0x1122334455667788)
        assert path.read_bytes()[8:16] == (0x1122334455667788).to_bytes(8, "little")
    assert not path.exists()


@pytest.mark.parametrize("mask", [1.5, "1", None])
def test_modify32_with_non_integer_mask_raises_before_reading(regs, mask):
    with pytest.raises(MmioValueError, match="clear_mask"):
        regs.modify32(0, mask, 0)
