"""RAM-disk defects of issue 16: plain-int commands, a worker that survives faults, strict board booleans,
numpy offsets that must not wrap."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

from drivers.block.protocol import BlockCommand, BlockFlag, BlockOp, BlockStatus, Vmo, run_op, write_blocks
from drivers.block.ramdisk import RamDisk, ramdisk_from_properties

BS = 512
BLOCKS = 64


@pytest.fixture(params=["sync", "worker"])
def disk(request: pytest.FixtureRequest) -> Iterator[RamDisk]:
    d = RamDisk(BLOCKS * BS, BS, worker=request.param == "worker")
    yield d
    d.unbind()


def test_a_plain_int_read_command_reads_and_never_writes_a_readonly_disk() -> None:
    d = RamDisk(BLOCKS * BS, BS, BlockFlag.READONLY)
    d.data[:BS] = 7
    vmo = Vmo(np.full(BS, 0xAA, dtype=np.uint8))
    assert run_op(d, BlockOp(1, 1, 0, 0, vmo), timeout=5) is BlockStatus.OK  # type: ignore[arg-type]
    assert (d.data[:BS] == 7).all() and (vmo.array == 7).all()  # read into the Vmo, disk unchanged


def test_a_command_rewritten_to_a_plain_int_is_not_executed(disk: RamDisk) -> None:
    op = BlockOp(BlockCommand.READ, 1, 0, 0, Vmo(np.full(BS, 0xAA, dtype=np.uint8)))
    op.command = 2  # type: ignore[assignment]
    assert run_op(disk, op, timeout=5) is BlockStatus.NOT_SUPPORTED
    assert not disk.data.any()


def test_a_numpy_vmo_offset_that_would_wrap_is_out_of_range(disk: RamDisk) -> None:
    vmo = Vmo(np.full(BS, 0xAA, dtype=np.uint8))
    op = BlockOp(BlockCommand.WRITE, 1, 0, np.int64(2**55), vmo)  # type: ignore[arg-type]
    assert run_op(disk, op, timeout=5) is BlockStatus.OUT_OF_RANGE
    assert not disk.data.any()


@pytest.mark.parametrize("field", ["length", "offset_dev", "offset_vmo"])
@pytest.mark.parametrize("value", [1.0, True, "1", None])
def test_non_integer_lengths_and_offsets_are_invalid_args(disk: RamDisk, field: str, value: object) -> None:
    op = BlockOp(BlockCommand.WRITE, 1, 0, 0, Vmo(np.full(BS, 0xAA, dtype=np.uint8)))
    setattr(op, field, value)
    assert run_op(disk, op, timeout=5) is BlockStatus.INVALID_ARGS
    assert not disk.data.any()


def test_the_worker_survives_a_completion_that_raises() -> None:
    d = RamDisk(BLOCKS * BS, BS, worker=True)
    try:
        done = threading.Event()

        def bad(_status: BlockStatus, _op: BlockOp) -> None:
            done.set()
            raise RuntimeError("a caller's bug")

        d.queue(BlockOp(BlockCommand.FLUSH), bad)
        assert done.wait(5)
        write_blocks(d, 0, b"\x01" * BS, timeout=5)  # hangs on today's code: the worker died
        assert (d.data[:BS] == 1).all()
    finally:
        d.unbind()


def test_the_worker_survives_an_op_that_fails_unexpectedly() -> None:
    class Exploding(Vmo):
        @property
        def size(self) -> int:
            raise RuntimeError("a Vmo that cannot say its size")

    d = RamDisk(BLOCKS * BS, BS, worker=True)
    try:
        bad = Exploding(np.zeros(BS, dtype=np.uint8))
        assert run_op(d, BlockOp(BlockCommand.READ, 1, 0, 0, bad), timeout=5) is BlockStatus.IO
        write_blocks(d, 0, b"\x02" * BS, timeout=5)
        assert (d.data[:BS] == 2).all()
    finally:
        d.unbind()


@pytest.mark.parametrize("value", ["false", "no", 0, 1, None])
def test_a_board_boolean_that_is_not_a_boolean_is_an_error_naming_the_property(value: object) -> None:
    with pytest.raises(ValueError, match="'readonly' must be true or false"):
        ramdisk_from_properties({"size": BLOCKS * BS, "readonly": value})


def test_readonly_false_leaves_the_disk_writable() -> None:
    d = ramdisk_from_properties({"size": BLOCKS * BS, "readonly": False})
    assert not d.query().flags & BlockFlag.READONLY
