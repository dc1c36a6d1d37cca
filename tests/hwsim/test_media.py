"""BlockMedia: media versus write cache (the split the model's durability tests rest on), and the one
shared mapping the RTL environment hands to the simulator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hwsim.media import BlockMedia
from mmiotk import MmioValueError


@pytest.fixture
def media(tmp_path: Path) -> BlockMedia:
    path = tmp_path / "m.img"
    path.write_bytes(b"\x01" * 4096)
    return BlockMedia(path)


def read(media: BlockMedia, sector: int, n: int) -> bytes:
    out = memoryview(bytearray(n))
    media.read_into(sector, out)
    return bytes(out)


def test_reads_see_cached_writes_before_the_media_does(media: BlockMedia) -> None:
    media.write(1, memoryview(b"\x02" * 512), writeback=True)
    assert read(media, 0, 1024) == b"\x01" * 512 + b"\x02" * 512
    assert media.sector(1) == b"\x01" * 512
    assert media.flush() == 1
    assert media.sector(1) == b"\x02" * 512


def test_writethrough_write_replaces_a_cached_copy(media: BlockMedia) -> None:
    media.write(0, memoryview(b"\x03" * 512), writeback=True)
    media.write(0, memoryview(b"\x04" * 512), writeback=False)
    assert media.dirty_sectors == 0
    assert read(media, 0, 512) == media.sector(0) == b"\x04" * 512
    assert media.power_loss() == 0


def test_anonymous_media_and_read_only_media_refuse_misuse(tmp_path: Path) -> None:
    anon = BlockMedia(size=2048)
    assert anon.sectors == 4 and anon.path is None
    with pytest.raises(MmioValueError, match="positive multiple of 512"):
        BlockMedia(size=1000)
    path = tmp_path / "ro.img"
    path.write_bytes(bytes(1024))
    ro = BlockMedia(path, readonly=True)
    with pytest.raises(MmioValueError, match="read-only"):
        ro.write(0, memoryview(bytes(512)), writeback=False)
    ro.close()


def test_array_is_the_shared_mapping_of_the_image_file(tmp_path: Path) -> None:
    path = tmp_path / "shared.img"
    path.write_bytes(bytes(4 * 512))
    media = BlockMedia(path)
    assert media.array.dtype == np.uint8 and media.array.size == 4 * 512 and media.array.flags.c_contiguous
    media.array[512:1024] = 7                      # what the RTL's media port does through the shim
    assert media.sector(1) == b"\x07" * 512
    media.fill(2, b"\x09" * 512)
    assert path.read_bytes()[1024:1536] == b"\x09" * 512   # the file itself, not a copy
    media.close()
    media.close()
    assert media.closed and media.array.size == 0
