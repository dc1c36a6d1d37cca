"""The block FIFO wire format (after Fuchsia's block FIFO): 48-byte requests and responses that name
blocks in buffers the client attached once, so no bulk data ever crosses the FIFO.

Records are little-endian. A request is {u8 opcode, u8 pad[3], u32 flags, u32 reqid, u16 group, u16 vmoid,
u32 length, u32 pad, u64 vmo_offset, u64 dev_offset, u64 trace_flow_id}; a response is {i32 status,
u32 reqid, u16 group, u16 pad, u32 count, u64 pad[4]}. Lengths and offsets count blocks. Statuses are
Zircon's `zx_status_t` values, so a response reads the same as on Fuchsia.

Transport (see `server` and `client`): one SOCK_SEQPACKET unix socket per client carries the FIFO. A
message holds 1..MAX_BATCH whole records, so the kernel keeps record boundaries, a batch costs one system
call each way (as zx_fifo_read/zx_fifo_write move several entries per call), and a dead peer shows up as
EOF. A shared-memory ring would save the system call but needs a cross-process wake-up Python has no cheap
primitive for (futexes); polling it would burn one of the machine's two cores.
"""

from __future__ import annotations

import enum
import itertools
import struct
from collections.abc import Iterable
from typing import NamedTuple

from drivers.block.protocol import BlockStatus

RECORD_SIZE = 48
MAX_TXN_GROUP_COUNT = 8  # groups 0..7, as in Fuchsia
VMOID_INVALID = 0
FIFO_MAX_DEPTH = 4096 // RECORD_SIZE  # Fuchsia's depth: records a client may have outstanding (85)
MAX_BATCH = 64  # records per message, both directions

REQUEST = struct.Struct("<B3xIIHHI4xQQQ")  # opcode, flags, reqid, group, vmoid, length, vmo_offset, ...
RESPONSE = struct.Struct("<iIH2xI32x")  # status, reqid, group, count
assert REQUEST.size == RECORD_SIZE and RESPONSE.size == RECORD_SIZE


class FifoOp(enum.IntEnum):
    READ = 1
    WRITE = 2
    FLUSH = 3
    TRIM = 4
    CLOSE_VMO = 5


class FifoFlag(enum.IntFlag):
    NONE = 0
    GROUP_ITEM = 0x1
    GROUP_LAST = 0x2  # with GROUP_ITEM: answer once, after this and every earlier item completed
    FORCE_ACCESS = 0x4  # READ/WRITE: served by the medium, not a volatile cache (FUA, or emulated by a flush)
    PRE_BARRIER = 0x8  # WRITE: every earlier request is complete and flushed before this write starts


KNOWN_FLAGS = int(FifoFlag.GROUP_ITEM | FifoFlag.GROUP_LAST | FifoFlag.FORCE_ACCESS | FifoFlag.PRE_BARRIER)


class ZxStatus(enum.IntEnum):
    """The Zircon status values responses carry (zircon/errors.h)."""

    OK = 0
    INTERNAL = -1
    NOT_SUPPORTED = -2
    NO_RESOURCES = -3
    INVALID_ARGS = -10
    BAD_HANDLE = -11
    OUT_OF_RANGE = -14
    BAD_STATE = -20
    TIMED_OUT = -21
    PEER_CLOSED = -24
    ACCESS_DENIED = -30
    IO = -40
    IO_NOT_PRESENT = -44


_FROM_BLOCK = {
    BlockStatus.OK: ZxStatus.OK,
    BlockStatus.OUT_OF_RANGE: ZxStatus.OUT_OF_RANGE,
    BlockStatus.NOT_SUPPORTED: ZxStatus.NOT_SUPPORTED,
    BlockStatus.IO_NOT_PRESENT: ZxStatus.IO_NOT_PRESENT,
    BlockStatus.IO: ZxStatus.IO,
    BlockStatus.ACCESS_DENIED: ZxStatus.ACCESS_DENIED,
    BlockStatus.INVALID_ARGS: ZxStatus.INVALID_ARGS,
}


def zx_from_block(status: BlockStatus | int) -> ZxStatus:
    """The FIFO status for a block-protocol status (unknown ones read as IO)."""
    try:
        return _FROM_BLOCK[BlockStatus(status)]
    except (ValueError, KeyError):
        return ZxStatus.IO


def status_name(status: int) -> str:
    try:
        return ZxStatus(status).name
    except ValueError:
        return f"status {status}"


class MalformedRecord(ValueError):
    """A FIFO message is not a whole number (1..MAX_BATCH) of 48-byte records."""

    def __init__(self, message: str, reqid: int = 0) -> None:
        super().__init__(message)
        self.reqid = reqid


class Request(NamedTuple):
    opcode: int
    flags: int = 0
    reqid: int = 0
    group: int = 0
    vmoid: int = VMOID_INVALID
    length: int = 0
    vmo_offset: int = 0
    dev_offset: int = 0
    trace_flow_id: int = 0

    def pack(self) -> bytes:
        try:
            return REQUEST.pack(*self)
        except struct.error as exc:
            raise ValueError(f"request {self!r} does not fit the 48-byte record: {exc}") from None

    @property
    def answered(self) -> bool:
        """Whether the server sends a response for this record (group items answer only at GROUP_LAST)."""
        return not (self.flags & FifoFlag.GROUP_ITEM) or bool(self.flags & FifoFlag.GROUP_LAST)


class Response(NamedTuple):
    status: int
    reqid: int
    group: int = 0
    count: int = 0  # type: ignore[assignment]  # records it completes: 1, or all its group received

    def pack(self) -> bytes:
        return RESPONSE.pack(int(self.status), self.reqid, self.group, self.count)

    @property
    def ok(self) -> bool:
        return self.status == ZxStatus.OK


def _check_size(data: bytes | bytearray | memoryview, what: str) -> int:
    n = len(data)
    if n == 0 or n % RECORD_SIZE or n > MAX_BATCH * RECORD_SIZE:
        reqid = int.from_bytes(bytes(data[8:12]), "little") if n >= 12 else 0
        raise MalformedRecord(f"{what} message of {n} bytes: expected 1..{MAX_BATCH} whole "
                              f"{RECORD_SIZE}-byte records", reqid)
    return n // RECORD_SIZE


# tuple.__new__(Record, fields) makes the NamedTuple without running its Python-level __new__ (a third of
# the cost of unpacking a message); the fields come from the struct, so they are complete and in order.
def unpack_requests(data: bytes | bytearray | memoryview) -> list[Request]:
    """The requests in one FIFO message; MalformedRecord if it is not whole records."""
    _check_size(data, "request")
    return list(map(tuple.__new__, itertools.repeat(Request), REQUEST.iter_unpack(data)))


def unpack_responses(data: bytes | bytearray | memoryview) -> list[Response]:
    _check_size(data, "response")
    return list(map(tuple.__new__, itertools.repeat(Response), RESPONSE.iter_unpack(data)))


def pack_requests(requests: Iterable[Request]) -> bytes:
    records = requests if isinstance(requests, (list, tuple)) else list(requests)
    pack = REQUEST.pack
    try:
        return b"".join([pack(*r) for r in records])
    except struct.error:
        for r in records:
            r.pack()  # raises the ValueError naming the record that does not fit
        raise

