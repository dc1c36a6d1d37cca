"""Fuzz the block protocol boundary: whatever op a caller hands any BlockDevice, it completes exactly once,
within a bound, with a BlockStatus; a refused op changes neither the disk nor the caller's buffer; and the
device still serves valid requests afterwards (RAM-disk with and without its worker, the file disk,
virtio-blk on the behavioural model in both completion modes, virtio-blk on QEMU)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import numpy as np
import pytest
from fuzz_helpers import FUZZ, FUZZ_SLOW
from hypothesis import given
from hypothesis import strategies as st

from drivers.block.protocol import BlockCommand, BlockOp, BlockStatus, OpFlag, Vmo, read_blocks, write_blocks
from drivers.block.ramdisk import RamDisk
from hwsim.integration.block_targets import bound_virtio_blk, virtio_blk_board
from hwsim.models import ModelSpace, VirtioBlkModel

BS = 512
BLOCKS = 128
BOUND = 10.0

ints = st.sampled_from([-(1 << 63), -2, -1, 0, 1, 2, 3, 7, BLOCKS - 1, BLOCKS, BLOCKS + 1, 255, 256,
                        1 << 31, (1 << 32) - 1, 1 << 32, 1 << 55, (1 << 64) - 1, 1 << 64]) | st.integers(-4, 200)
numpy_ints = st.builds(lambda v, t: t(v), st.integers(-(1 << 15), (1 << 15) - 1),
                       st.sampled_from([np.int64, np.int32, np.int16])) | st.sampled_from(
    [np.int64(1 << 55), np.int64(-(1 << 63)), np.uint64((1 << 64) - 1), np.uint32(BLOCKS)])
odd = st.sampled_from([None, True, False, 1.0, 0.5, float("nan"), float("inf"), "1", b"\x01", [1], object()])
field = st.one_of(ints, numpy_ints, odd)
commands = st.one_of(st.sampled_from(list(BlockCommand)), st.integers(-1, 8), odd,
                     st.sampled_from([np.int64(1), np.uint8(2)]))
flags = st.one_of(st.sampled_from([OpFlag.NONE, OpFlag.FORCE_ACCESS]), st.integers(-1, 1 << 33), odd)


@st.composite
def vmos(draw: Any) -> Any:
    kind = draw(st.sampled_from(["vmo", "vmo", "vmo", "none", "bytes", "tiny"]))
    if kind == "none":
        return None
    if kind == "bytes":
        return b"\x00" * BS
    size = draw(st.sampled_from([0, 1, BS - 1, BS, 4 * BS, 16 * BS + 3])) if kind == "vmo" else 1
    if size == 0:
        return Vmo(np.zeros(0, dtype=np.uint8))
    return Vmo(np.full(size, 0xA5, dtype=np.uint8))


ops = st.builds(BlockOp, command=commands, length=field, offset_dev=field, offset_vmo=field, vmo=vmos(),
                flags=flags)


class Target:
    """A device, how to snapshot its disk, and whether it completes only when polled."""

    def __init__(self, device: Any, snapshot: Callable[[], bytes]) -> None:
        self.device, self.snapshot = device, snapshot


def ramdisk_target(stack: ExitStack, worker: bool) -> Target:
    disk = RamDisk(BLOCKS * BS, BS, worker=worker)
    stack.callback(disk.unbind)
    return Target(disk, lambda: disk.data.tobytes())


def filedisk_target(stack: ExitStack) -> Target:
    import tempfile
    from pathlib import Path

    from drivers.block.filedisk import FileDisk

    path = Path(stack.enter_context(tempfile.TemporaryDirectory())) / "disk.img"
    disk = stack.enter_context(FileDisk(path, BS, size=BLOCKS * BS))
    return Target(disk, path.read_bytes)


def model_target(stack: ExitStack, completions: str) -> Target:
    model = VirtioBlkModel(size=BLOCKS * BS)
    space = stack.enter_context(ModelSpace(model, ram_size=16 << 20))
    blk = stack.enter_context(bound_virtio_blk(virtio_blk_board(space, "fuzz"), space, space.interrupt,
                                               completions=completions, writeback=False))

    def snapshot() -> bytes:
        out = bytearray(BLOCKS * BS)
        model.media.read_into(0, memoryview(out))
        return bytes(out)

    return Target(blk, snapshot)


def qemu_target(stack: ExitStack) -> Target:
    import tempfile
    from pathlib import Path

    from hwsim.qemu import QemuSpace

    tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
    image = tmp / "disk.img"
    image.write_bytes(bytes(BLOCKS * BS))
    space = stack.enter_context(QemuSpace(image=str(image), ram_size=64 << 20, cache="writethrough"))
    blk = stack.enter_context(bound_virtio_blk(virtio_blk_board(space, "qemu-virt"), space, space.irq_factory,
                                               completions="thread"))
    return Target(blk, lambda: read_blocks(blk, 0, BLOCKS, timeout=BOUND))


TARGETS = {"ramdisk": lambda s: ramdisk_target(s, False), "ramdisk-worker": lambda s: ramdisk_target(s, True),
           "filedisk": filedisk_target,
           "virtio-model-poll": lambda s: model_target(s, "poll"),
           "virtio-model-thread": lambda s: model_target(s, "thread"), "virtio-qemu": qemu_target}


@pytest.fixture(params=list(TARGETS))
def target(request: pytest.FixtureRequest) -> Iterator[Target]:
    with ExitStack() as stack:
        t = TARGETS[request.param](stack)
        yield t
        # whatever was thrown at it, it still serves a valid request
        write_blocks(t.device, 5, b"\x3c" * BS, timeout=BOUND)
        assert read_blocks(t.device, 5, 1, timeout=BOUND) == b"\x3c" * BS


def run_once(device: Any, op: BlockOp) -> BlockStatus:
    """Queue `op`; assert exactly one completion, within the bound, with a BlockStatus."""
    done = threading.Event()
    got: list[Any] = []

    def completion(status: Any, op_back: Any) -> None:
        got.append((status, op_back))
        done.set()

    device.queue(op, completion)
    assert device.wait_for(done, BOUND), f"{op!r} did not complete within {BOUND} s"
    done.wait(0.01)  # a second completion would land here
    assert len(got) == 1, f"{op!r} completed {len(got)} times"
    status, op_back = got[0]
    assert isinstance(status, BlockStatus) and op_back is op
    return status


def check(target: Target, op: BlockOp, bad: Callable[[str, object], None], boundary: str) -> None:
    before = target.snapshot()
    vmo = op.vmo if isinstance(op.vmo, Vmo) else None
    vmo_before = vmo.array.tobytes() if vmo is not None else b""
    status = run_once(target.device, op)
    if status is BlockStatus.OK:
        if op.command == BlockCommand.READ:  # a read never writes the disk, whatever type says READ
            assert target.snapshot() == before, f"{op!r} completed OK as a read but changed the disk"
        return
    bad(boundary, (op.command, op.length, op.offset_dev, op.offset_vmo, op.vmo, op.flags))
    assert target.snapshot() == before, f"refused {op!r} ({status.name}) changed the disk"
    if vmo is not None and status is not BlockStatus.IO:
        assert vmo.array.tobytes() == vmo_before, f"refused {op!r} ({status.name}) changed the buffer"


def test_every_op_completes_once_and_a_refused_one_changes_nothing(target: Target, bad: Any,
                                                                    request: pytest.FixtureRequest) -> None:
    name = request.node.callspec.params["target"]
    settings = FUZZ_SLOW if name == "virtio-qemu" else FUZZ

    @settings
    @given(ops)
    def fuzz(op: BlockOp) -> None:
        check(target, op, bad, f"block device ({name})")

    fuzz()
