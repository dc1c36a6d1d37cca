"""Structured replies and BLOCK_STATUS (base:allocation) of the NBD export: holes seen by qemu-img map,
qemu-img convert and nbdinfo exactly where the device was never written or was trimmed, and the protocol's
errors (never a dropped connection) for what real clients never send."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from drivers.block.filedisk import FileDisk
from drivers.block.protocol import (
    BlockCommand,
    BlockDevice,
    BlockFlag,
    BlockInfo,
    BlockOp,
    Completion,
    ExtentFlag,
    run_op,
    write_blocks,
)
from drivers.block.ramdisk import RamDisk
from drivers.block_services import nbd_protocol as P
from drivers.block_services import nbd_structured as S
from drivers.block_services.nbd import NbdServer

from .block_helpers import RawNbd

KiB, MiB = 1 << 10, 1 << 20
SIZE = 8 * MiB
HOLE = P.STATE_HOLE | P.STATE_ZERO
ZERO = ExtentFlag.ZERO


def run(*cmd: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{cmd[0]} failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}"
    return proc.stdout


def trim(device: BlockDevice, offset: int, length: int) -> None:
    """Trim bytes [offset, +length) (512-byte blocks)."""
    assert run_op(device, BlockOp(BlockCommand.TRIM, length // 512, offset // 512)) == 0


def pattern(offset: int, length: int) -> bytes:
    return np.random.default_rng(offset).integers(1, 256, length, dtype=np.uint8).tobytes()


def fill(device: BlockDevice) -> list[tuple[int, int, bool]]:
    """Write 0-256 KiB and 1-2 MiB, trim 1 MiB+64 KiB..+128 KiB; the expected map as (start, length, data)."""
    write_blocks(device, 0, pattern(0, 256 * KiB))
    write_blocks(device, MiB // 512, pattern(MiB, MiB))
    trim(device, MiB + 64 * KiB, 128 * KiB)
    return [(0, 256 * KiB, True), (256 * KiB, 768 * KiB, False), (MiB, 64 * KiB, True),
            (MiB + 64 * KiB, 128 * KiB, False), (MiB + 192 * KiB, 832 * KiB, True), (2 * MiB, SIZE - 2 * MiB, False)]


@pytest.fixture(params=["ramdisk", "filedisk"])
def disk(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlockDevice]:
    if request.param == "ramdisk":
        ram = RamDisk(SIZE, 512, BlockFlag.TRIM_SUPPORT)
        yield ram
        ram.unbind()
    else:
        with FileDisk(tmp_path / "disk.img", size=SIZE) as file:
            yield file


@pytest.fixture
def server(disk: BlockDevice, sockdir: Path) -> Iterator[NbdServer]:
    with NbdServer(disk, unix_path=sockdir / "nbd.sock", name="disk0") as s:
        yield s


# --- real clients ------------------------------------------------------------------------------------------
def test_qemu_img_map_sees_holes_exactly_where_unwritten_or_trimmed(disk: BlockDevice, server: NbdServer) -> None:
    expected = fill(disk)
    found = json.loads(run("qemu-img", "map", "--output=json", server.uri))
    assert [(e["start"], e["length"], e["data"]) for e in found] == expected
    assert all(e["zero"] is not e["data"] for e in found)


def test_nbdinfo_map_reports_hole_and_zero_states(disk: BlockDevice, server: NbdServer) -> None:
    expected = fill(disk)
    found = json.loads(run("nbdinfo", "--map", "--json", server.uri))
    assert [(e["offset"], e["length"], e["type"]) for e in found] == \
        [(start, length, 0 if data else HOLE) for start, length, data in expected]
    totals = run("nbdinfo", "--map", "--totals", server.uri)
    assert f"{1152 * KiB}" in totals.split("\n")[0] and "data" in totals


def test_qemu_img_convert_writes_a_sparse_identical_copy(disk: BlockDevice, server: NbdServer,
                                                         tmp_path: Path) -> None:
    fill(disk)
    out = tmp_path / "copy.raw"
    run("qemu-img", "convert", "-O", "raw", server.uri, str(out))
    run("qemu-img", "compare", "-f", "raw", "-F", "raw", server.uri, str(out))
    allocated = os.stat(out).st_blocks * 512
    assert out.stat().st_size == SIZE
    assert 1152 * KiB <= allocated <= 1152 * KiB + 256 * KiB  # the data, not the 8 MiB


def test_nbdinfo_lists_base_allocation_and_structured_replies(server: NbdServer) -> None:
    info = json.loads(run("nbdinfo", "--json", server.uri))
    assert info["structured"] is True
    assert info["exports"][0]["contexts"] == ["base:allocation"] and info["exports"][0]["can_df"] is True


def test_a_device_that_cannot_tell_reports_everything_allocated(sockdir: Path) -> None:
    class Opaque(BlockDevice):  # the protocol's default extents(), as virtio-blk has
        def __init__(self) -> None:
            self.inner = RamDisk(SIZE, 512)

        def query(self) -> BlockInfo:
            return self.inner.query()

        def queue(self, op: BlockOp, completion: Completion) -> None:
            self.inner.queue(op, completion)

    with NbdServer(Opaque(), unix_path=sockdir / "o.sock") as s:
        found = json.loads(run("qemu-img", "map", "--output=json", s.uri))
    assert [(e["start"], e["length"], e["data"]) for e in found] == [(0, SIZE, True)]


def test_qemu_io_reads_data_and_holes_through_structured_replies(disk: BlockDevice, server: NbdServer) -> None:
    fill(disk)
    run("qemu-io", "-f", "raw", "-c", f"read -P 0 {256 * KiB} {512 * KiB}", "-c",
        f"read -P 0 {MiB + 64 * KiB} {128 * KiB}", server.uri)
    out = subprocess.run(["qemu-io", "-f", "raw", "-c", f"read -P 0 {MiB} {128 * KiB}", server.uri],
                         capture_output=True, text=True, timeout=60)
    assert "Pattern verification failed" in out.stdout + out.stderr  # the data before the trimmed part


def test_a_device_error_under_structured_replies_fails_the_read(sockdir: Path) -> None:
    ram = RamDisk(SIZE, 512)
    ram.inject_io_error(16, 1)
    with NbdServer(ram, unix_path=sockdir / "e.sock") as s:
        out = subprocess.run(["qemu-io", "-f", "raw", "-c", "read 0 16384", "-c", "read 0 4096", s.uri],
                             capture_output=True, text=True, timeout=60)
    assert "read failed: Input/output error" in out.stdout
    assert "read 4096/4096 bytes" in out.stdout  # the connection lived on


# --- raw protocol -----------------------------------------------------------------------------------------
@pytest.fixture
def ram() -> Iterator[RamDisk]:
    d = RamDisk(SIZE, 512, BlockFlag.TRIM_SUPPORT)
    yield d
    d.unbind()


@pytest.fixture
def raw(ram: RamDisk, sockdir: Path) -> Iterator[RawNbd]:
    with NbdServer(ram, unix_path=sockdir / "raw.sock", name="disk0") as s:
        client = RawNbd(str(s.address))
        client.greet()
        yield client
        client.close()


def structured(raw: RawNbd, *contexts: str) -> None:
    raw.option(P.OPT_STRUCTURED_REPLY)
    assert raw.reply()[1] == P.REP_ACK
    if contexts:
        raw.meta(P.OPT_SET_META_CONTEXT, contexts)
    raw.go(b"disk0")


def test_structured_reply_with_data_is_invalid_then_negotiates(raw: RawNbd) -> None:
    raw.option(P.OPT_STRUCTURED_REPLY, b"x")
    assert raw.reply()[1] == P.REP_ERR_INVALID
    raw.option(P.OPT_STRUCTURED_REPLY)
    assert raw.reply()[1] == P.REP_ACK
    infos = dict(raw.go(b"disk0"))
    flags = P.EXPORT_INFO.unpack(P.INFO_EXPORT.to_bytes(2, "big") + infos[P.INFO_EXPORT])[2]
    assert flags & P.FLAG_SEND_DF


@pytest.mark.parametrize("option", [P.OPT_LIST_META_CONTEXT, P.OPT_SET_META_CONTEXT])
def test_meta_context_before_structured_replies_is_invalid(raw: RawNbd, option: int) -> None:
    assert [r[0] for r in raw.meta(option, (P.BASE_ALLOCATION,))] == [P.REP_ERR_INVALID]
    raw.go(b"disk0")  # negotiation went on
    raw.request(P.CMD_BLOCK_STATUS, 0, 4096, handle=3)
    assert raw.simple_reply()[:2] == (P.EINVAL, 3)


@pytest.mark.parametrize(("queries", "names"), [((), [P.BASE_ALLOCATION]), (("base:",), [P.BASE_ALLOCATION]),
                                                 ((P.BASE_ALLOCATION,), [P.BASE_ALLOCATION]),
                                                 (("x-other:thing", "base:dirty"), [])])
def test_list_meta_context_names_what_the_queries_match(raw: RawNbd, queries: tuple[str, ...],
                                                        names: list[str]) -> None:
    raw.option(P.OPT_STRUCTURED_REPLY)
    raw.reply()
    got = raw.meta(P.OPT_LIST_META_CONTEXT, queries, b"disk0")
    assert got[-1][0] == P.REP_ACK
    assert [(kind, cid, name.decode()) for kind, cid, name in got[:-1]] == \
        [(P.REP_META_CONTEXT, 0, n) for n in names]


@pytest.mark.parametrize(("data", "error"), [
    (b"\0\0\0\x09disk0", P.REP_ERR_INVALID),  # name length past the data
    (b"\0\0\0\0\0\0\0\x01\0\0\0\x10base", P.REP_ERR_INVALID),  # query past the data
    (b"\0\0\0\0\0\0\0\x01\0\0\0\x04base", P.REP_ERR_INVALID),  # no namespace colon
    (b"\0\0\0\0\0\0\0\0extra", P.REP_ERR_INVALID),  # bytes after the queries
    (b"\0\0\0\0\0\0\x10\0", P.REP_ERR_TOO_BIG),  # 4096 queries
    (b"\0\0\0\x04nope\0\0\0\0", P.REP_ERR_UNKNOWN),
])
def test_malformed_set_meta_context_is_an_error_reply(raw: RawNbd, data: bytes, error: int) -> None:
    raw.option(P.OPT_STRUCTURED_REPLY)
    raw.reply()
    raw.option(P.OPT_SET_META_CONTEXT, data)
    assert raw.reply()[1] == error
    assert raw.meta(P.OPT_SET_META_CONTEXT, (P.BASE_ALLOCATION,))[0][0] == P.REP_META_CONTEXT  # still talking


def test_an_unknown_context_selects_nothing_and_block_status_is_einval(raw: RawNbd) -> None:
    raw.option(P.OPT_STRUCTURED_REPLY)
    raw.reply()
    assert [r[0] for r in raw.meta(P.OPT_SET_META_CONTEXT, ("qemu:dirty-bitmap:x", "base:"))] == [P.REP_ACK]
    raw.go(b"disk0")
    raw.request(P.CMD_BLOCK_STATUS, 0, 4096, handle=5)
    (flags, kind, handle, payload), = raw.chunks()
    error, msglen = P.ERROR_HEAD.unpack(payload[:6])
    assert (kind, handle, error, flags) == (P.REPLY_TYPE_ERROR, 5, P.EINVAL, P.REPLY_FLAG_DONE)
    assert b"SET_META_CONTEXT" in payload[6:6 + msglen]
    raw.request(P.CMD_FLUSH, handle=6)
    assert raw.simple_reply()[:2] == (0, 6)


def test_set_meta_context_selects_base_allocation_with_an_id(raw: RawNbd) -> None:
    raw.option(P.OPT_STRUCTURED_REPLY)
    raw.reply()
    (kind, cid, name), ack = raw.meta(P.OPT_SET_META_CONTEXT, (P.BASE_ALLOCATION, "x-y:z"), b"disk0")
    assert (kind, name.decode(), ack[0]) == (P.REP_META_CONTEXT, P.BASE_ALLOCATION, P.REP_ACK) and cid != 0


def descriptors(payload: bytes) -> list[tuple[int, int]]:
    return [P.DESCRIPTOR.unpack_from(payload, i) for i in range(4, len(payload), P.DESCRIPTOR.size)]


def test_block_status_describes_the_range_and_req_one_one_extent(raw: RawNbd, ram: RamDisk) -> None:
    write_blocks(ram, 8, b"\1" * 4096)
    structured(raw, P.BASE_ALLOCATION)
    raw.request(P.CMD_BLOCK_STATUS, 0, 64 * KiB, handle=1)
    (flags, kind, handle, payload), = raw.chunks()
    assert (kind, handle, flags) == (P.REPLY_TYPE_BLOCK_STATUS, 1, P.REPLY_FLAG_DONE)
    assert descriptors(payload) == [(4096, HOLE), (4096, 0), (56 * KiB, HOLE)]
    raw.request(P.CMD_BLOCK_STATUS, 1024, 64 * KiB, flags=P.CMD_FLAG_REQ_ONE, handle=2)
    assert descriptors(raw.chunks()[0][3]) == [(3072, HOLE)]
    trim(ram, 4096, 4096)
    raw.request(P.CMD_BLOCK_STATUS, 0, 64 * KiB, handle=3)
    assert descriptors(raw.chunks()[0][3]) == [(64 * KiB, HOLE)]


@pytest.mark.parametrize(("offset", "length", "flags"), [(SIZE - 512, 1024, 0), (SIZE, 512, 0), (0, 0, 0),
                                                         (0, 512, P.CMD_FLAG_DF)])
def test_bad_block_status_gets_einval_and_the_connection_survives(raw: RawNbd, offset: int, length: int,
                                                                  flags: int) -> None:
    structured(raw, P.BASE_ALLOCATION)
    raw.request(P.CMD_BLOCK_STATUS, offset, length, flags=flags, handle=9)
    (cflags, kind, handle, payload), = raw.chunks()
    assert (kind, handle, P.ERROR_HEAD.unpack(payload[:6])[0]) == (P.REPLY_TYPE_ERROR, 9, P.EINVAL)
    assert cflags & P.REPLY_FLAG_DONE
    raw.request(P.CMD_BLOCK_STATUS, 0, 512, handle=10)
    assert raw.chunks()[0][1] == P.REPLY_TYPE_BLOCK_STATUS


def test_structured_read_sends_data_and_hole_chunks_and_df_one_chunk(raw: RawNbd, ram: RamDisk) -> None:
    data = pattern(0, 4096)
    write_blocks(ram, 16, data)
    structured(raw)
    raw.request(P.CMD_READ, 4096, 12288, handle=4)
    got = raw.chunks()
    assert [(k, h) for _, k, h, _ in got] == [(P.REPLY_TYPE_OFFSET_HOLE, 4), (P.REPLY_TYPE_OFFSET_DATA, 4),
                                            (P.REPLY_TYPE_OFFSET_HOLE, 4)]
    assert P.OFFSET_HOLE.unpack(got[0][3]) == (4096, 4096) and P.OFFSET_HOLE.unpack(got[2][3]) == (12288, 4096)
    assert got[1][3] == (8192).to_bytes(8, "big") + data
    assert [f & P.REPLY_FLAG_DONE for f, *_ in got] == [0, 0, P.REPLY_FLAG_DONE]
    raw.request(P.CMD_READ, 4096, 12288, flags=P.CMD_FLAG_DF, handle=5)
    (flags, kind, handle, payload), = raw.chunks()
    assert (kind, handle, flags) == (P.REPLY_TYPE_OFFSET_DATA, 5, P.REPLY_FLAG_DONE)
    assert payload == (4096).to_bytes(8, "big") + bytes(4096) + data + \
        bytes(4096)


def test_structured_read_errors_are_error_chunks_with_a_message(raw: RawNbd, ram: RamDisk) -> None:
    ram.inject_io_error(2, 1)
    structured(raw)
    raw.request(P.CMD_READ, 0, 4096, handle=6)
    (flags, kind, handle, payload), = raw.chunks()
    error, msglen = P.ERROR_HEAD.unpack(payload[:6])
    assert (kind, handle, error, flags) == (P.REPLY_TYPE_ERROR, 6, P.EIO, P.REPLY_FLAG_DONE)
    assert payload[6:6 + msglen] == b"READ of 4096 bytes at byte 0: the device says IO"
    raw.request(P.CMD_READ, SIZE, 512, handle=7)  # past the end: structured too, never a simple reply
    (_, kind, handle, payload), = raw.chunks()
    assert (kind, handle, P.ERROR_HEAD.unpack(payload[:6])[0]) == (P.REPLY_TYPE_ERROR, 7, P.EINVAL)
    raw.request(P.CMD_READ, 0, 0, handle=8)
    assert [(k, h) for _, k, h, _ in raw.chunks()] == [(P.REPLY_TYPE_NONE, 8)]


def test_without_structured_replies_reads_stay_simple(raw: RawNbd, ram: RamDisk) -> None:
    write_blocks(ram, 0, b"\7" * 512)
    raw.go(b"disk0")
    raw.request(P.CMD_READ, 0, 1024, handle=11)
    assert raw.simple_reply(1024) == (0, 11, b"\7" * 512 + bytes(512))
    raw.request(P.CMD_READ, 0, 512, flags=P.CMD_FLAG_DF, handle=12)
    assert raw.simple_reply()[:2] == (P.EINVAL, 12)


def encode(export: bytes, queries: list[bytes]) -> bytes:
    return (len(export).to_bytes(4, "big") + export + len(queries).to_bytes(4, "big")
            + b"".join(len(q).to_bytes(4, "big") + q for q in queries))


@given(st.binary(max_size=64) | st.builds(encode, st.binary(max_size=8), st.lists(st.binary(max_size=12), max_size=4)))
def test_any_meta_context_data_decodes_exactly_or_is_an_error_reply(data: bytes) -> None:
    try:
        query = S.parse_meta_query(data)
    except S.QueryError as exc:
        assert exc.reply in (P.REP_ERR_INVALID, P.REP_ERR_TOO_BIG) and str(exc)
    else:
        assert encode(query.export, [q.encode() for q in query.queries]) == data
        assert all(":" in q for q in query.queries)


@pytest.mark.parametrize(("offset", "zeros", "expected"), [
    (0, [], [(16384, 0)]),
    (0, [(4096, 8192)], [(4096, 0), (8192, ZERO), (4096, 0)]),
    (512, [(0, 16384)], [(3584, 0), (12288, ZERO), (512, 0)]),  # only whole aligned units become holes
    (0, [(0, 16384)], [(16384, ZERO)]),
    (0, [(4096, 4088)], [(16384, 0)]),  # the unit's last 8 bytes are data: not a hole
])
def test_zero_runs_are_whole_aligned_units(offset: int, zeros: list[tuple[int, int]],
                                           expected: list[tuple[int, int]]) -> None:
    data = np.full(16384, 0xAA, dtype=np.uint8)
    for a, n in zeros:
        data[a:a + n] = 0
    assert S.zero_runs(offset, data) == expected
