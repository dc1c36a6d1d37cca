"""FileDisk: a raw image file as a BlockDevice."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from drivers.block.filedisk import FileDisk
from drivers.block.protocol import (
    BlockCommand,
    BlockError,
    BlockOp,
    BlockStatus,
    Extent,
    ExtentFlag,
    OpFlag,
    Vmo,
    flush,
    read_blocks,
    run_op,
    write_blocks,
)


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.img"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 64 * 512, dtype=np.uint8).tobytes())
    return path


def test_geometry_and_capabilities_come_from_the_file(image: Path) -> None:
    with FileDisk(image) as disk:
        info = disk.query()
    assert (info.block_count, info.block_size) == (64, 512)
    assert info.fua_supported and info.trim_supported


def test_reads_and_writes_reach_the_file(image: Path) -> None:
    original = image.read_bytes()
    with FileDisk(image) as disk:
        assert read_blocks(disk, 3, 2) == original[3 * 512:5 * 512]
        write_blocks(disk, 10, b"\xab" * 1024, flags=OpFlag.FORCE_ACCESS)
        flush(disk)
    assert image.read_bytes()[10 * 512:12 * 512] == b"\xab" * 1024


def test_an_op_uses_the_vmo_offset(image: Path) -> None:
    buf = np.zeros(4 * 512, dtype=np.uint8)
    with FileDisk(image) as disk:
        assert run_op(disk, BlockOp(BlockCommand.READ, 1, 5, 2, Vmo(buf))) is BlockStatus.OK
    assert buf[2 * 512:3 * 512].tobytes() == image.read_bytes()[5 * 512:6 * 512] and not buf[:1024].any()


def test_trim_reads_back_as_zeroes(image: Path) -> None:
    with FileDisk(image) as disk:
        assert run_op(disk, BlockOp(BlockCommand.TRIM, 8, 8)) is BlockStatus.OK
    assert image.read_bytes()[8 * 512:16 * 512] == bytes(8 * 512)


def test_out_of_range_and_read_only_are_refused_without_touching_the_file(image: Path) -> None:
    original = image.read_bytes()
    with FileDisk(image) as disk, pytest.raises(BlockError, match="OUT_OF_RANGE"):
        write_blocks(disk, 63, b"\1" * 1024)
    with FileDisk(image, read_only=True) as ro, pytest.raises(BlockError, match="ACCESS_DENIED"):
        write_blocks(ro, 0, b"\1" * 512)
    assert image.read_bytes() == original


def test_size_creates_a_sparse_image(tmp_path: Path) -> None:
    with FileDisk(tmp_path / "new.img", size=1 << 20) as disk:
        assert disk.query().block_count == 2048
        assert read_blocks(disk, 2047, 1) == bytes(512)


def test_a_partial_last_block_is_an_error_naming_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "odd.img"
    bad.write_bytes(b"\0" * 1000)
    with pytest.raises(ValueError, match=r"odd\.img: 1000 bytes is not a positive whole number of 512-byte"):
        FileDisk(bad)


def test_a_missing_file_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(OSError, match=r"cannot open .*missing\.img"):
        FileDisk(tmp_path / "missing.img")


def test_ops_after_close_are_io_not_present(image: Path) -> None:
    disk = FileDisk(image)
    disk.close()
    assert run_op(disk, BlockOp(BlockCommand.FLUSH)) is BlockStatus.IO_NOT_PRESENT


def test_extents_follow_the_files_holes_at_its_file_systems_granularity(tmp_path: Path) -> None:
    hole = ExtentFlag.HOLE | ExtentFlag.ZERO
    with FileDisk(tmp_path / "sparse.img", size=1 << 20) as disk:
        assert disk.extents(0, 2048) == [Extent(0, 2048, hole)]
        write_blocks(disk, 64, b"\1" * 8192)
        assert run_op(disk, BlockOp(BlockCommand.TRIM, 8, 64)) is BlockStatus.OK  # the first 4 KiB again
        assert disk.extents(0, 2048) == [Extent(0, 72, hole), Extent(72, 8), Extent(80, 2048 - 80, hole)]
        assert disk.extents(75, 10) == [Extent(75, 5), Extent(80, 5, hole)]
        with pytest.raises(ValueError, match="outside the 2048-block device"):
            disk.extents(2040, 9)

