"""NBD structured replies and metadata contexts: the chunks a connection sends once a client negotiated
NBD_OPT_STRUCTURED_REPLY, and the queries of NBD_OPT_LIST_META_CONTEXT / NBD_OPT_SET_META_CONTEXT.

The one context served is `base:allocation` (holes and zeroes, from `BlockDevice.extents`). Reads send
OFFSET_DATA for data and OFFSET_HOLE for aligned 4 KiB runs of zeroes found in what the device returned
(asking the device instead costs a file system walk per read on tmpfs: SEEK_HOLE scans to the end of the
file); one OFFSET_DATA when the client set DF. Errors go out as an ERROR chunk carrying a message; the last
chunk of a reply carries REPLY_FLAG_DONE.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from drivers.block.protocol import ExtentFlag

from . import nbd_protocol as P

MAX_QUERIES = 64  # queries in one LIST/SET_META_CONTEXT option; more is NBD_REP_ERR_TOO_BIG
MAX_DESCRIPTORS = 4096  # extents in one BLOCK_STATUS chunk; the client asks again for the rest
ALLOCATION_ID = 1  # the context id SET_META_CONTEXT gives base:allocation (any nonzero id would do)
HOLE_UNIT = 4096  # a read sends OFFSET_HOLE for aligned runs of this many zero bytes

Parts = tuple[bytes | memoryview, ...]
ByteExtents = list[tuple[int, ExtentFlag]]  # consecutive (length in bytes, flags) from a request's offset


class QueryError(Exception):
    """A LIST/SET_META_CONTEXT option that gets an error reply; `reply` is the NBD_REP_ERR_* to send."""

    def __init__(self, reply: int, message: str) -> None:
        super().__init__(message)
        self.reply = reply


@dataclass(frozen=True)
class MetaQuery:
    """The data of a LIST/SET_META_CONTEXT option: the export's name and the query strings."""

    export: bytes
    queries: tuple[str, ...]


def parse_meta_query(data: bytes) -> MetaQuery:
    """Decode the option's data exactly; anything that does not add up is NBD_REP_ERR_INVALID."""
    def u32(at: int, what: str) -> int:
        if at + 4 > len(data):
            raise QueryError(P.REP_ERR_INVALID, f"option data ends inside the {what}")
        return int.from_bytes(data[at:at + 4], "big")

    namelen = u32(0, "export name length")
    if 4 + namelen > len(data):
        raise QueryError(P.REP_ERR_INVALID, "export name length exceeds the option data")
    pos = 4 + namelen
    count = u32(pos, "number of queries")
    pos += 4
    if count > MAX_QUERIES:
        raise QueryError(P.REP_ERR_TOO_BIG, f"{count} queries; this server takes at most {MAX_QUERIES}")
    queries = []
    for i in range(count):
        length = u32(pos, f"length of query {i}")
        pos += 4
        if length > P.MAX_STRING or pos + length > len(data):
            raise QueryError(P.REP_ERR_INVALID, f"query {i} ({length} bytes) exceeds the option data")
        try:
            query = data[pos:pos + length].decode()
        except UnicodeDecodeError:
            raise QueryError(P.REP_ERR_INVALID, f"query {i} is not UTF-8") from None
        if ":" not in query:
            raise QueryError(P.REP_ERR_INVALID, f"query {query!r} has no namespace (namespace:leaf)")
        queries.append(query)
        pos += length
    if pos != len(data):
        raise QueryError(P.REP_ERR_INVALID, f"{len(data) - pos} bytes after the last query")
    return MetaQuery(data[4:4 + namelen], tuple(queries))


def matching_contexts(queries: tuple[str, ...], *, listing: bool) -> list[str]:
    """The contexts the queries name. LIST: no query or `base:` lists base:allocation; SET: only its full
    name selects it. Unknown namespaces and leaves are ignored, as the protocol requires."""
    if listing and not queries:
        return [P.BASE_ALLOCATION]
    wanted = {P.BASE_ALLOCATION, "base:"} if listing else {P.BASE_ALLOCATION}
    return [P.BASE_ALLOCATION] if any(q in wanted for q in queries) else []


def meta_context_reply(context_id: int, name: str) -> bytes:
    """The payload of one NBD_REP_META_CONTEXT."""
    return context_id.to_bytes(4, "big") + name.encode()


# --- transmission chunks --------------------------------------------------------------------------------
def chunk(handle: int, kind: int, length: int, done: bool) -> bytes:
    return P.CHUNK.pack(P.STRUCTURED_REPLY_MAGIC, P.REPLY_FLAG_DONE if done else 0, kind, handle, length)


def error_chunk(handle: int, error: int, message: str) -> bytes:
    """The final ERROR chunk: the NBD errno and a message for the human at the client."""
    text = message.encode()[:P.MAX_STRING]
    payload = P.ERROR_HEAD.pack(error, len(text)) + text
    return chunk(handle, P.REPLY_TYPE_ERROR, len(payload), True) + payload


def none_chunk(handle: int) -> bytes:
    return chunk(handle, P.REPLY_TYPE_NONE, 0, True)


def zero_runs(offset: int, data: np.ndarray, unit: int = HOLE_UNIT) -> ByteExtents:
    """`data` (read at `offset`) as consecutive (bytes, flags) spans, ZERO for the aligned `unit`s that are
    all zeroes. A unit whose first 8 bytes are not zero is data at once, so data costs one word per unit."""
    n = data.size
    head = min(-offset % unit, n)
    count = (n - head) // unit
    if count == 0:
        return [(n, ExtentFlag.NONE)]
    words = data[head:head + count * unit].view(np.uint64).reshape(count, unit // 8)
    if np.count_nonzero(words[:, 0]) == count:  # the usual answer for data, and the cheapest test
        return [(n, ExtentFlag.NONE)]
    zero = words[:, 0] == 0
    candidates = np.flatnonzero(zero)
    zero[candidates] = ~words[candidates].any(axis=1)
    spans: ByteExtents = []

    def add(length: int, flags: ExtentFlag) -> None:
        if spans and spans[-1][1] == flags:
            spans[-1] = (spans[-1][0] + length, flags)
        elif length:
            spans.append((length, flags))

    add(head, ExtentFlag.NONE)
    edges = np.flatnonzero(zero[1:] != zero[:-1]) + 1
    for a, b in zip(np.concatenate(([0], edges)), np.concatenate((edges, [count])), strict=True):
        add(int(b - a) * unit, ExtentFlag.ZERO if zero[a] else ExtentFlag.NONE)
    add(n - head - count * unit, ExtentFlag.NONE)
    return spans


def read_chunks(handle: int, offset: int, data: np.ndarray, holes: bool) -> Parts:
    """A successful READ of `data` at `offset`: OFFSET_DATA chunks, and OFFSET_HOLE for the aligned 4 KiB
    units that read as zeroes when `holes` (not under DF: then one OFFSET_DATA for everything)."""
    if data.size == 0:
        return (none_chunk(handle),)
    spans = zero_runs(offset, data) if holes else []
    if len(spans) <= 1 and (not spans or spans[0][1] is ExtentFlag.NONE):  # all data: one chunk
        return (chunk(handle, P.REPLY_TYPE_OFFSET_DATA, 8 + data.size, True) + offset.to_bytes(8, "big"),
                data.data)
    parts: list[bytes | memoryview] = []
    pos = 0
    for i, (length, flags) in enumerate(spans):
        last = i == len(spans) - 1
        if flags is ExtentFlag.ZERO:
            hole = P.OFFSET_HOLE.pack(offset + pos, length)
            parts.append(chunk(handle, P.REPLY_TYPE_OFFSET_HOLE, len(hole), last) + hole)
        else:
            head = chunk(handle, P.REPLY_TYPE_OFFSET_DATA, 8 + length, last)
            parts.append(head + (offset + pos).to_bytes(8, "big"))
            parts.append(data[pos:pos + length].data)
        pos += length
    return tuple(parts)


def block_status_chunk(handle: int, extents: ByteExtents, req_one: bool) -> bytes:
    """The one BLOCK_STATUS chunk (for base:allocation): at least one descriptor, at most MAX_DESCRIPTORS,
    exactly one under REQ_ONE."""
    spans = extents[:1] if req_one else extents[:MAX_DESCRIPTORS]
    body = ALLOCATION_ID.to_bytes(4, "big") + b"".join(
        P.DESCRIPTOR.pack(length, int(flags) & (P.STATE_HOLE | P.STATE_ZERO)) for length, flags in spans)
    return chunk(handle, P.REPLY_TYPE_BLOCK_STATUS, len(body), True) + body
