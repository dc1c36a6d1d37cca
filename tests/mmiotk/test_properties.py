"""Properties: reads return what writes stored, at every width and aligned offset; views stay inside."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mmiotk import CachePolicy, MmioResource, OutOfRangeError, RamSpace

SIZE = 0x200
_ram = RamSpace(1 << 16)
_resource = MmioResource(_ram, 0, 1 << 16)
_buf = _resource.create_region(0x1000, SIZE, "prop").map(CachePolicy.UNCACHED)
_big = _resource.create_region(0x2000, SIZE, "prop-be").map(CachePolicy.UNCACHED, byteorder="big")


@st.composite
def aligned_access(draw):
    bits = draw(st.sampled_from([8, 16, 32, 64]))
    width = bits // 8
    offset = draw(st.integers(0, SIZE // width - 1)) * width
    value = draw(st.integers(0, (1 << bits) - 1))
    relaxed = draw(st.booleans())
    return bits, offset, value, relaxed


@given(st.lists(aligned_access(), min_size=1, max_size=20), st.sampled_from(["little", "big"]))
def test_reads_return_what_writes_stored(accesses, order):
    buf = _buf if order == "little" else _big
    for bits, offset, value, relaxed in accesses:
        suffix = "_relaxed" if relaxed else ""
        getattr(buf, f"write{bits}{suffix}")(offset, value)
        assert getattr(buf, f"read{bits}{suffix}")(offset) == value
        assert int.from_bytes(buf.read_block(offset, bits // 8), order) == value


@given(st.integers(0, SIZE // 8 - 1), st.integers(1, SIZE), st.integers(-16, SIZE + 16),
       st.sampled_from([8, 16, 32, 64]))
def test_views_never_reach_outside_their_parent(slot, size, offset, bits):
    start = slot * 8
    if start + size > SIZE:
        with pytest.raises(OutOfRangeError):
            _buf.view(start, size)
        return
    view = _buf.view(start, size)
    width = bits // 8
    inside = offset >= 0 and offset + width <= size and offset % width == 0
    try:
        getattr(view, f"write{bits}")(offset, 0)
    except (OutOfRangeError, ValueError):
        assert not inside
    else:
        assert inside
        assert start + offset + width <= SIZE
