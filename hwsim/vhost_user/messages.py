"""The vhost-user messages (QEMU docs/interop/vhost-user.rst): request numbers, header flags, feature bits
and the payload layouts a block back end needs, packed and unpacked little-endian.

Every message is a 12-byte header {u32 request, u32 flags, u32 size} and `size` payload bytes; file
descriptors travel beside it as SCM_RIGHTS ancillary data.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass, field

from mmiotk.errors import MmioError


class VhostUserError(MmioError):
    """The front end sent something the back end cannot accept (the message names what)."""


class VhostUserRequest(enum.IntEnum):
    """Front-end requests (the front end is QEMU)."""

    GET_FEATURES = 1
    SET_FEATURES = 2
    SET_OWNER = 3
    RESET_OWNER = 4
    SET_MEM_TABLE = 5
    SET_LOG_BASE = 6
    SET_LOG_FD = 7
    SET_VRING_NUM = 8
    SET_VRING_ADDR = 9
    SET_VRING_BASE = 10
    GET_VRING_BASE = 11
    SET_VRING_KICK = 12
    SET_VRING_CALL = 13
    SET_VRING_ERR = 14
    GET_PROTOCOL_FEATURES = 15
    SET_PROTOCOL_FEATURES = 16
    GET_QUEUE_NUM = 17
    SET_VRING_ENABLE = 18
    SEND_RARP = 19
    NET_SET_MTU = 20
    SET_BACKEND_REQ_FD = 21
    IOTLB_MSG = 22
    SET_VRING_ENDIAN = 23
    GET_CONFIG = 24
    SET_CONFIG = 25
    GET_INFLIGHT_FD = 31
    SET_INFLIGHT_FD = 32
    RESET_DEVICE = 34
    GET_MAX_MEM_SLOTS = 36
    ADD_MEM_REG = 37
    REM_MEM_REG = 38
    SET_STATUS = 39
    GET_STATUS = 40


# Header flags: bits 0-1 the version (always 1), bit 2 a reply, bit 3 the front end wants a reply (REPLY_ACK).
VERSION = 0x1
FLAG_REPLY = 1 << 2
FLAG_NEED_REPLY = 1 << 3

# Virtio feature bit 30 in GET_FEATURES/SET_FEATURES: the back end speaks protocol features.
F_PROTOCOL_FEATURES = 30


class ProtocolFeature(enum.IntEnum):
    """VHOST_USER_PROTOCOL_F_* bits (GET_PROTOCOL_FEATURES)."""

    MQ = 0
    LOG_SHMFD = 1
    RARP = 2
    REPLY_ACK = 3
    MTU = 4
    BACKEND_REQ = 5
    CROSS_ENDIAN = 6
    CRYPTO_SESSION = 7
    PAGEFAULT = 8
    CONFIG = 9
    BACKEND_SEND_FD = 10
    HOST_NOTIFIER = 11
    INFLIGHT_SHMFD = 12
    RESET_DEVICE = 13
    INBAND_NOTIFICATIONS = 14
    CONFIGURE_MEM_SLOTS = 15
    STATUS = 16


HEADER = struct.Struct("<III")
U64 = struct.Struct("<Q")
VRING_STATE = struct.Struct("<II")          # index, num
VRING_ADDR = struct.Struct("<IIQQQQ")       # index, flags, descriptor, used, available, log
MEMORY_HEADER = struct.Struct("<II")        # regions, padding
MEMORY_REGION = struct.Struct("<QQQQ")      # guest address, size, user address, mmap offset
CONFIG_HEADER = struct.Struct("<III")       # offset, size, flags
MAX_REGIONS = 8                             # SET_MEM_TABLE without CONFIGURE_MEM_SLOTS
MAX_PAYLOAD = 4096
VRING_INDEX_MASK = 0xFF                     # SET_VRING_KICK/CALL/ERR: index in bits 0-7 ...
VRING_NOFD = 1 << 8                         # ... and bit 8: no file descriptor (polling)


@dataclass
class Message:
    """One message as received: the request, flags, payload and any descriptors that came with it."""

    request: int
    flags: int
    payload: bytes
    fds: list[int] = field(default_factory=list)

    @property
    def name(self) -> str:
        try:
            return VhostUserRequest(self.request).name
        except ValueError:
            return f"request {self.request}"

    @property
    def need_reply(self) -> bool:
        return bool(self.flags & FLAG_NEED_REPLY)

    def unpack(self, layout: struct.Struct) -> tuple[int, ...]:
        """The payload as `layout`, or VhostUserError naming the message and both sizes."""
        if len(self.payload) < layout.size:
            raise VhostUserError(f"{self.name}: payload of {len(self.payload)} bytes, {layout.size} expected")
        return layout.unpack_from(self.payload)

    def u64(self) -> int:
        return int(self.unpack(U64)[0])


@dataclass(frozen=True)
class MemoryRegion:
    """One region of a SET_MEM_TABLE: `size` bytes at guest physical `guest_addr`, which the front end maps
    at `user_addr` and the back end finds at `mmap_offset` in the region's file."""

    guest_addr: int
    size: int
    user_addr: int
    mmap_offset: int


def unpack_mem_table(msg: Message) -> list[MemoryRegion]:
    count, _pad = msg.unpack(MEMORY_HEADER)
    if not 1 <= count <= MAX_REGIONS:
        raise VhostUserError(f"SET_MEM_TABLE: {count} regions, 1..{MAX_REGIONS} allowed")
    need = MEMORY_HEADER.size + count * MEMORY_REGION.size
    if len(msg.payload) < need:
        raise VhostUserError(f"SET_MEM_TABLE: {count} regions need {need} payload bytes, got {len(msg.payload)}")
    if len(msg.fds) != count:
        raise VhostUserError(f"SET_MEM_TABLE: {count} regions came with {len(msg.fds)} file descriptors")
    return [MemoryRegion(*MEMORY_REGION.unpack_from(msg.payload, MEMORY_HEADER.size + i * MEMORY_REGION.size))
            for i in range(count)]


def pack_reply(request: int, payload: bytes) -> bytes:
    return HEADER.pack(request, VERSION | FLAG_REPLY, len(payload)) + payload
