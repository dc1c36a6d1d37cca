"""The block FIFO wire format: field offsets, sizes, malformed messages, status mapping."""

from __future__ import annotations

import struct

import pytest

from drivers.block.protocol import BlockStatus
from drivers.block_services.fifo import (
    MAX_BATCH,
    RECORD_SIZE,
    FifoFlag,
    FifoOp,
    MalformedRecord,
    Request,
    Response,
    ZxStatus,
    pack_requests,
    unpack_requests,
    unpack_responses,
    zx_from_block,
)


def test_request_fields_sit_at_the_documented_offsets() -> None:
    raw = Request(FifoOp.WRITE, 0x4, 0x11223344, 7, 0x55AA, 0x99, 0x0102030405, 0x0A0B0C0D0E, 0xFEED).pack()
    assert len(raw) == RECORD_SIZE
    assert raw[0] == FifoOp.WRITE and raw[1:4] == b"\0\0\0"
    assert struct.unpack_from("<IIHHI", raw, 4) == (0x4, 0x11223344, 7, 0x55AA, 0x99)
    assert raw[20:24] == b"\0" * 4
    assert struct.unpack_from("<QQQ", raw, 24) == (0x0102030405, 0x0A0B0C0D0E, 0xFEED)


def test_response_fields_sit_at_the_documented_offsets() -> None:
    raw = Response(ZxStatus.OUT_OF_RANGE, 9, 3, 4).pack()
    assert len(raw) == RECORD_SIZE
    assert struct.unpack_from("<iIHHI", raw, 0) == (-14, 9, 3, 0, 4)
    assert raw[16:] == b"\0" * 32
    assert unpack_responses(raw) == [Response(-14, 9, 3, 4)]


def test_a_batch_of_requests_round_trips() -> None:
    reqs = [Request(FifoOp.READ, 0, i, 0, 1, 2, 3, i) for i in range(MAX_BATCH)]
    assert unpack_requests(pack_requests(reqs)) == reqs


@pytest.mark.parametrize("size", [0, 1, 47, 49, RECORD_SIZE * (MAX_BATCH + 1)])
def test_a_message_that_is_not_whole_records_is_malformed(size: int) -> None:
    data = bytes(8) + (1234).to_bytes(4, "little") + bytes(max(0, size - 12))
    with pytest.raises(MalformedRecord, match=f"{size} bytes") as info:
        unpack_requests(data[:size])
    assert info.value.reqid == (1234 if size >= 12 else 0)


def test_a_field_out_of_range_is_refused_when_packing() -> None:
    with pytest.raises(ValueError, match="48-byte record"):
        Request(FifoOp.READ, vmoid=1 << 16).pack()


def test_group_items_are_answered_only_by_their_last() -> None:
    assert Request(FifoOp.READ).answered
    assert not Request(FifoOp.READ, FifoFlag.GROUP_ITEM).answered
    assert Request(FifoOp.READ, FifoFlag.GROUP_ITEM | FifoFlag.GROUP_LAST).answered


def test_block_statuses_map_to_zircon_values() -> None:
    assert zx_from_block(BlockStatus.OK) == 0
    assert zx_from_block(BlockStatus.OUT_OF_RANGE) == -14
    assert zx_from_block(BlockStatus.IO_NOT_PRESENT) == -44
    assert zx_from_block(BlockStatus.ACCESS_DENIED) == -30
    assert zx_from_block(99) == ZxStatus.IO
