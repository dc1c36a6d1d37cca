"""BlockMedia: media versus write cache, the split the durability tests of the model rest on."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.models import BlockMedia
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
    assert media.media_bytes(512, 512) == b"\x01" * 512
    assert media.flush() == 1
    assert media.media_bytes(512, 512) == b"\x02" * 512


def test_writethrough_write_replaces_a_cached_copy(media: BlockMedia) -> None:
    media.write(0, memoryview(b"\x03" * 512), writeback=True)
    media.write(0, memoryview(b"\x04" * 512), writeback=False)
    assert media.dirty_sectors == 0
    assert read(media, 0, 512) == media.media_bytes(0, 512) == b"\x04" * 512
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
