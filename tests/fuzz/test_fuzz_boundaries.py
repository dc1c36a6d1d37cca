"""Fuzz every other public boundary with inputs a hostile or careless caller could produce: board files,
the block FIFO server's records and control messages, NBD requests, the model's registers, DMA pool
allocation, virtqueue chains and a device's capability indices. Each bad input gets a specific error (or an
error answer) and changes nothing; the service stays up for the next, well-behaved client."""

from __future__ import annotations

import json
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from fuzz_helpers import FUZZ, FUZZ_SLOW
from hypothesis import given
from hypothesis import strategies as st

from drivers.block.ramdisk import RamDisk
from drivers.block_services import control
from drivers.block_services import nbd_protocol as P
from drivers.block_services.client import BlockClient
from drivers.block_services.fifo import MAX_BATCH, RECORD_SIZE, Request, ZxStatus, unpack_requests
from drivers.block_services.nbd import NbdServer
from drivers.block_services.server import BlockServer
from drivers.bus.platform import BoardError, PlatformBus, load_board
from drivers.virtio import VirtioError
from hwsim.integration.block_targets import bound_virtio_blk, virtio_blk_board
from hwsim.models import ModelSpace, VirtioBlkModel
from mmiotk import RamSpace
from mmiotk.bus import DriverModelError
from mmiotk.dma import DmaPool
from mmiotk.errors import MmioError

BS = 512
BLOCKS = 256

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(1 << 70), 1 << 70), st.floats(allow_nan=True),
                    st.text(max_size=12), st.sampled_from(["0x200", "0x", "1_000", "-1", "virtio,mmio", "blk0"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=3)
                           | st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=6)
node_keys = st.sampled_from(["name", "compatible", "reg", "interrupts", "prefetchable", "parent", "properties",
                             "bogus"])
devices = st.lists(st.dictionaries(node_keys, json_values, max_size=6), max_size=4)
boards = st.fixed_dictionaries({}, optional={
    "name": json_values, "arch": st.sampled_from(["aarch64", "x86_64", "vax", "", "arm64"]) | json_values,
    "memory": st.fixed_dictionaries({}, optional={"base": json_values, "size": json_values}) | json_values,
    "dma": st.dictionaries(st.sampled_from(["base", "size", "coherent", "x"]), json_values, max_size=3),
    "devices": devices, "extra": json_values})


# --- board files ------------------------------------------------------------------------------------
def test_any_board_builds_a_bus_or_raises_a_board_error_naming_node_and_field(bad: Any) -> None:
    with RamSpace(1 << 20, base=0x4000_0000, arch="aarch64") as ram:
        @FUZZ_SLOW
        @given(boards)
        def fuzz(raw: dict[str, Any]) -> None:
            try:
                PlatformBus.from_board(raw, ram).close()
            except BoardError as exc:
                bad("board (dict)", raw)
                assert exc.problems and all(p.node and p.field and p.message for p in exc.problems)
                assert len(str(exc)) < 300 * len(exc.problems) + 200
            except DriverModelError:
                bad("board (dict)", raw)  # e.g. a bus refusing overlapping DMA: still specific

        fuzz()


yaml_text = st.one_of(
    st.builds(lambda b: yaml.safe_dump(b, default_flow_style=None), boards),
    st.text(alphabet=st.sampled_from(list("abc:{}[],&*!-|>'\"\n #0x123")), max_size=200),
    st.builds(lambda b, k: yaml.safe_dump(b) + f"{k}: 1\n{k}: 2\n", boards, st.sampled_from(["name", "arch"])),
    st.builds(lambda n: "a: &a [1, 2]\n" + "".join(f"b{i}: [*a, *a]\n" for i in range(n)), st.integers(1, 5)))


def test_any_board_file_loads_or_raises_a_board_error(bad: Any) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "board.yaml"
        jpath = Path(tmp) / "board.json"

        @FUZZ_SLOW
        @given(yaml_text, st.booleans())
        def fuzz(text: str, as_json: bool) -> None:
            target = path
            if as_json:
                try:
                    obj = yaml.safe_load(text)
                    text = json.dumps(obj) if not isinstance(obj, str) else text
                except (yaml.YAMLError, ValueError):
                    pass
                target = jpath
            target.write_text(text)
            try:
                load_board(target)
            except BoardError as exc:
                bad("board file (YAML/JSON)", (as_json, text))
                assert len(str(exc)) < 300 * len(exc.problems) + 200

        fuzz()


# --- the block FIFO server --------------------------------------------------------------------------
@pytest.fixture
def fifo_server() -> Iterator[tuple[BlockServer, RamDisk]]:
    disk = RamDisk(BLOCKS * BS, BS, worker=True)
    sockdir = Path(tempfile.mkdtemp(prefix="fz", dir="/tmp"))
    server = BlockServer(disk, sockdir / "f.sock").start()
    yield server, disk
    with BlockClient(server.path, timeout=5) as other:  # a well-behaved client is still served
        buf = other.attach(BS)
        buf.array[:] = 0x77
        other.write(buf, BLOCKS - 1, 1)
        buf.array[:] = 0
        other.read(buf, BLOCKS - 1, 1)
        assert (buf.array == 0x77).all()
    server.stop()
    disk.unbind()
    sockdir.rmdir()


records = st.builds(
    Request, opcode=st.integers(0, 8), flags=st.sampled_from([0, 1, 2, 3, 4, 7, 0x80, 0xFFFFFFFF]),
    reqid=st.integers(0, (1 << 32) - 1), group=st.sampled_from([0, 1, 7, 8, 0xFFFF]),
    vmoid=st.sampled_from([0, 1, 2, 999, 0xFFFF]), length=st.sampled_from([0, 1, 2, 8, BLOCKS, 1 << 31, (1 << 32) - 1]),
    vmo_offset=st.sampled_from([0, 1, 7, 8, 1 << 40, (1 << 64) - 1]),
    dev_offset=st.sampled_from([0, 1, BLOCKS - 1, BLOCKS, 1 << 40, (1 << 64) - 1]), trace_flow_id=st.just(0))
messages = st.one_of(st.lists(records, min_size=1, max_size=3).map(lambda rs: b"".join(r.pack() for r in rs)),
                     st.binary(max_size=3 * RECORD_SIZE + 5))


def test_any_fifo_message_is_answered_or_refused_and_the_server_stays_up(fifo_server: Any, bad: Any) -> None:
    server, _disk = fifo_server
    with BlockClient(server.path, timeout=2) as blk:
        blk.attach(8 * BS)  # vmoid 1: some records name it

        @FUZZ
        @given(messages)
        def fuzz(data: bytes) -> None:
            blk.send_raw(data)
            whole = bool(data) and len(data) % RECORD_SIZE == 0 and len(data) <= MAX_BATCH * RECORD_SIZE
            answered = not whole or any(r.answered for r in unpack_requests(data))
            try:
                responses = blk.recv() if data and answered else []
            except TimeoutError:
                responses = []  # a group item's error may wait for its group's last item
            if not data or len(data) % RECORD_SIZE or any(r.status != ZxStatus.OK for r in responses):
                bad("block FIFO records", data)

        fuzz()


control_messages = st.one_of(
    st.builds(lambda o: json.dumps(o).encode(), st.dictionaries(
        st.sampled_from(["op", "version", "size", "vmoid", "x"]),
        st.sampled_from(["hello", "get_fifo", "attach_vmo", "alloc_vmo", "detach_vmo", "stats", "nope"])
        | scalars, max_size=3)),
    st.binary(max_size=64), st.builds(lambda n: b"[" * n + b"]" * n, st.integers(1, 3000)))


def test_any_control_message_gets_a_reply_and_the_session_survives(fifo_server: Any, bad: Any) -> None:
    server, _disk = fifo_server
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    sock.settimeout(5)
    sock.connect(server.path)
    kept: list[int] = []  # a FIFO handed out stays open: closing it would end the session, by design
    try:
        @FUZZ
        @given(control_messages)
        def fuzz(data: bytes) -> None:
            sock.send(data)
            reply, fds = control.recv_msg(sock)
            kept.extend(fds)
            if not reply.get("ok"):
                bad("block server control messages", data)
                assert isinstance(reply.get("error"), str) and reply["error"]

        fuzz()
    finally:
        sock.close()
        control.close_fds(kept)


# --- NBD ------------------------------------------------------------------------------------------------
def nbd_connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(5)
    sock.connect(path)
    sock.recv(P.HANDSHAKE.size)
    sock.sendall((3).to_bytes(4, "big"))
    sock.sendall(P.OPTION.pack(P.IHAVEOPT, P.OPT_GO, 6) + bytes(6))
    while True:
        _, _, kind, length = P.OPT_REPLY.unpack(recv_exact(sock, P.OPT_REPLY.size))
        recv_exact(sock, length)
        if kind == P.REP_ACK:
            return sock


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise EOFError
        buf += chunk
    return buf


nbd_requests = st.tuples(st.sampled_from([0, 1, 2, 3, 4, 5, 6, 7, 0xFFFF]),
                         st.sampled_from([0, 1, 2, 4, 0x8000, 0xFFFF]),
                         st.sampled_from([0, 1, 511, 512, BLOCKS * BS - 512, BLOCKS * BS, 1 << 40, (1 << 64) - 1]),
                         st.sampled_from([0, 1, 512, 4096, 33 << 20, (1 << 32) - 1]))


def test_any_nbd_request_is_answered_or_ends_only_its_connection(bad: Any) -> None:
    disk = RamDisk(BLOCKS * BS, BS, worker=True)
    sockdir = Path(tempfile.mkdtemp(prefix="fz", dir="/tmp"))
    server = NbdServer(disk, unix_path=sockdir / "n.sock").start()
    state: dict[str, socket.socket] = {"sock": nbd_connect(str(server.unix_path))}
    try:
        @FUZZ
        @given(nbd_requests)
        def fuzz(req: tuple[int, int, int, int]) -> None:
            kind, flags, offset, length = req
            if kind == P.CMD_DISC:
                return
            sock = state["sock"]
            payload = b"\x5a" * length if kind == P.CMD_WRITE and length <= 4096 else b""
            if kind == P.CMD_WRITE and length > 4096:
                bad("NBD requests", req)  # too long to send: the header alone must end the connection
                sock.sendall(P.REQUEST.pack(P.REQUEST_MAGIC, flags, kind, 1, offset, length))
                if length > P.MAX_PAYLOAD:  # its payload cannot be skipped: the server hangs up
                    try:
                        assert sock.recv(1) == b""
                    except ConnectionResetError:
                        pass
                sock.close()
                state["sock"] = nbd_connect(str(server.unix_path))
                return
            sock.sendall(P.REQUEST.pack(P.REQUEST_MAGIC, flags, kind, 1, offset, length) + payload)
            try:
                magic, error, handle = P.SIMPLE_REPLY.unpack(recv_exact(sock, P.SIMPLE_REPLY.size))
            except EOFError:
                bad("NBD requests", req)
                state["sock"] = nbd_connect(str(server.unix_path))
                return
            assert magic == P.SIMPLE_REPLY_MAGIC and handle == 1
            if error:
                bad("NBD requests", req)
            elif kind == P.CMD_READ:
                recv_exact(sock, length)

        fuzz()
        other = nbd_connect(str(server.unix_path))  # a new client is served
        other.sendall(P.REQUEST.pack(P.REQUEST_MAGIC, 0, P.CMD_READ, 9, 0, BS))
        assert P.SIMPLE_REPLY.unpack(recv_exact(other, P.SIMPLE_REPLY.size))[1:] == (0, 9)
        other.close()
    finally:
        state["sock"].close()
        server.stop()
        disk.unbind()
        sockdir.rmdir()


# --- the model's registers, DMA pools, virtqueues, capability indices ----------------------------------
values = st.one_of(st.integers(-(1 << 65), 1 << 65), st.floats(allow_nan=True), st.booleans(), st.none(),
                   st.text(max_size=3), st.builds(np.int64, st.integers(-(1 << 63), (1 << 63) - 1)))


def test_the_model_takes_only_fitting_integers_at_its_registers(bad: Any) -> None:
    model = VirtioBlkModel(size=1 << 20, strict=True)

    @FUZZ
    @given(st.integers(0, 0x200).map(lambda o: o & ~3), st.sampled_from([1, 2, 4, 8]), values)
    def fuzz(offset: int, width: int, value: Any) -> None:
        try:
            model.write(offset, width, value)
        except MmioError as exc:
            bad("virtio-mmio model registers", (offset, width, value))
            assert "offset" in str(exc) or "+0x" in str(exc) or " write " in str(exc), str(exc)  # names where
        else:
            assert type(value) is not float

    fuzz()


def test_a_dma_allocation_succeeds_or_raises_and_the_pool_is_unchanged(bad: Any) -> None:
    with RamSpace(1 << 20, base=0x4000_0000) as ram:
        pool = DmaPool.from_space(ram)

        @FUZZ
        @given(st.one_of(st.integers(-2, 1 << 21), values), st.one_of(st.sampled_from([1, 3, 64, 4096, 1 << 30]),
                                                                      values),
               st.sampled_from([np.uint8, np.uint32, "S0", "V0", object, "f8", "S3"]))
        def fuzz(size: Any, align: Any, dtype: Any) -> None:
            free = pool.free_bytes
            try:
                buf = pool.alloc(size, align, dtype=dtype)
            except MmioError:
                bad("DMA pool alloc", (size, align, dtype))
                assert pool.free_bytes == free and pool.buffers == 0
            else:
                buf.free()

        fuzz()


@pytest.fixture
def model_blk() -> Iterator[Any]:
    with ModelSpace(VirtioBlkModel(size=1 << 20), ram_size=16 << 20) as space, \
            bound_virtio_blk(virtio_blk_board(space, "fuzz"), space, space.interrupt, completions="poll") as blk:
        yield blk


segments = st.lists(st.tuples(st.one_of(st.integers(-1, 1 << 65), values), st.one_of(st.integers(-1, 1 << 33),
                                                                                   values),
                              st.sampled_from([0, 1, 2, 3, -1, 1 << 16])), min_size=0, max_size=4)


def test_a_chain_that_does_not_pack_changes_no_virtqueue_state(model_blk: Any, bad: Any) -> None:
    vq = model_blk.vq

    @FUZZ
    @given(segments)
    def fuzz(segs: list[Any]) -> None:
        free = vq.num_free
        with model_blk._lock:
            try:
                vq.add(segs, token=None)
            except VirtioError:
                bad("virtqueue chains", segs)
                assert vq.num_free == free
            else:
                vq.detach_all()  # never published: forget it

    fuzz()


def test_capability_indices_are_checked_by_name(bad: Any) -> None:
    from mmiotk.bus import Device

    board = {"name": "b", "devices": [{"name": "d", "compatible": "x", "reg": [[0x4000_0000, 0x100]],
                                       "interrupts": [1]}]}
    with RamSpace(1 << 20, base=0x4000_0000) as ram:
        bus = PlatformBus.from_board(board, ram)
        device: Device = bus.devices["d"]

        @FUZZ
        @given(values, st.sampled_from(["mmio", "irq"]))
        def fuzz(index: Any, what: str) -> None:
            try:
                getattr(device, what)(index)
            except MmioError as exc:
                bad("device capability indices", (what, index))
                assert "d" in str(exc)
            else:
                assert index == 0

        fuzz()
        bus.close()
