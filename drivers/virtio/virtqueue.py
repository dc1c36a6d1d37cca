"""The split virtqueue (virtio 1.2 §2.7): descriptor table, available ring, used ring.

The rings live in one DMA buffer; the driver reaches them directly (one little-endian `struct.pack_into`
per descriptor, memoryview casts of ~40 ns a store for ring entries and indices) rather than through
register accessors, because they are memory both sides share, not registers. Order is what the spec asks
(§2.7.13): fill the descriptors and the avail ring entry, write barrier, publish avail->idx, full barrier,
then notify unless the device set VRING_USED_F_NO_NOTIFY. After reading used->idx, a read barrier before
reading the entries it covers.

`add()` only writes descriptors and ring entries; `kick()` publishes everything added since the last kick
with one idx store and at most one notification, so a caller submitting a batch pays for one doorbell.

Descriptors come from a free list (a stack of indices); each chain remembers its indices and the caller's
token in shadow lists, so completion never trusts descriptor memory the device could have scribbled on.
A driver whose requests have a fixed shape can also `reserve()` a chain for good and put it on the ring
again and again with `add_reserved()`, which rewrites one descriptor (virtio-blk: each request slot's
header, data, status); the device only reads the table, so links written once stay valid.

With VIRTIO_F_RING_INDIRECT_DESC (`indirect`: a DMA buffer of one table per ring entry), a chain longer than
`indirect_threshold` segments takes one ring descriptor pointing at its own table (§2.7.5.3). With
VIRTIO_F_EVENT_IDX (`event_idx`) the driver rings only when the device's avail_event asks for it and asks for
interrupts through used_event instead of the NO_INTERRUPT flag (§2.7.7, §2.7.10).

Not thread-safe: the owner serialises calls (virtio-blk holds one lock around add/kick/pop_used).
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Sequence
from typing import Any, cast

import numpy as np

from mmiotk import barrier
from mmiotk.dma import DmaBuffer

from . import VirtioError
from .transport import VirtioTransport

# Deliberate duplication: the virtio constants here are written out again, on purpose, in the device
# model (hwsim/models/) and in the RTL test driver (tests/hwsim/vblk/vblk_driver.py), so that device and
# drivers stay independent readings of the spec and a misreading in one is caught by the other.
DESC_F_NEXT = 1
DESC_F_WRITE = 2  # the device writes this buffer
DESC_F_INDIRECT = 4
AVAIL_F_NO_INTERRUPT = 1
USED_F_NO_NOTIFY = 1
DESC_SIZE = 16
_DESC = struct.Struct("<QIHH")  # addr, len, flags, next
_pack_desc = _DESC.pack_into
MAX_QUEUE_SIZE = 32768


class ReservedChain:
    """Descriptors `Virtqueue.reserve` linked into a chain for good. A slotted class, not a NamedTuple:
    `add_reserved` reads four of its fields per request, and slot reads are the cheaper attribute access."""

    __slots__ = ("addr", "flags", "head", "ids", "length", "link", "next", "offset")

    def __init__(self, head: int, offset: int, link: int, next: int, ids: tuple[int, ...],
                 variable: tuple[int, int, int]) -> None:
        self.head = head
        self.offset = offset  # of the variable descriptor in the table
        self.link = link      # DESC_F_NEXT unless the variable descriptor is the last
        self.next = next      # the descriptor after it (0 for the last)
        self.ids = ids
        self.addr, self.length, self.flags = variable  # what the variable descriptor holds now

    def __repr__(self) -> str:
        return f"<ReservedChain head {self.head}, descriptors {list(self.ids)}>"


class VirtqueueFull(VirtioError):
    """Not enough free descriptors for a chain; wait for completions and try again."""


def ring_layout(size: int) -> tuple[int, int, int]:
    """(avail offset, used offset, total bytes) of a queue of `size` entries laid out in one buffer."""
    avail = DESC_SIZE * size
    used = (avail + 6 + 2 * size + 63) & ~63  # its own cache line; the spec needs 4-byte alignment
    return avail, used, used + 6 + 8 * size


def le_view(buf: np.ndarray, start: int, nbytes: int, fmt: str) -> Any:
    """An int-indexable little-endian view: a memoryview cast on little-endian hosts, numpy elsewhere."""
    raw: Any = buf[start:start + nbytes]
    if sys.byteorder == "little":
        view: Any = memoryview(raw).cast("B")
        return view.cast(fmt)
    return raw.view(np.dtype(fmt).newbyteorder("<"))


class Virtqueue:
    """Queue `index` of `transport`, `size` entries (a power of two), rings in the DMA buffer `memory`.

    On a non-coherent pool the rings are synced explicitly: written descriptors and the avail ring before
    they are published, the used ring before it is read.
    """

    def __init__(self, transport: VirtioTransport, index: int, size: int, memory: DmaBuffer, *,
                 indirect: DmaBuffer | None = None, indirect_threshold: int = 3, event_idx: bool = False) -> None:
        if not isinstance(size, int) or not 0 < size <= MAX_QUEUE_SIZE or size & (size - 1):
            raise VirtioError(f"queue {index}: size {size!r} must be a power of two in 1..{MAX_QUEUE_SIZE}")
        avail_off, used_off, total = ring_layout(size)
        arr = cast(DmaBuffer, memory.view(np.uint8))
        if arr.size < total:
            raise VirtioError(f"queue {index}: ring memory of {arr.size} bytes is smaller than the {total} a "
                              f"{size}-entry queue needs")
        if memory.dma_addr % 4096:
            raise VirtioError(f"queue {index}: ring memory at {memory.dma_addr:#x} is not page aligned")
        self.transport = transport
        self.index = index
        self.size = size
        self.memory = memory
        self._mask = size - 1
        self._coherent = memory.pool.coherent
        self._driver_area = cast(DmaBuffer, arr[:used_off])  # descriptors + avail ring: the driver's
        self._avail_header = cast(DmaBuffer, arr[avail_off:avail_off + 4])  # avail flags + idx
        self._device_area = cast(DmaBuffer, arr[used_off:total])  # used ring: the device writes it
        arr[:total] = 0
        memory.sync_for_device()
        self._table = memoryview(cast(Any, arr[:avail_off])).cast("B")  # desc i at 16i: struct _DESC
        self._avail = le_view(arr, avail_off, 6 + 2 * size, "H")  # flags [0], idx [1], ring [2 + i]
        self._used16 = le_view(arr, used_off, 4, "H")      # flags [0], idx [1]
        self._used32 = le_view(arr, used_off + 4, 8 * size, "I")  # id [2i], len [2i + 1]
        self._free: list[int] = list(range(size - 1, -1, -1))
        self._reserved: set[int] = set()  # descriptors of reserved chains: never on the free list again
        self._chains: list[Sequence[int] | None] = [None] * size  # () for a reserved chain in flight
        self._tokens: list[Any] = [None] * size
        self._avail_event = le_view(arr, used_off + 4 + 8 * size, 2, "H")  # EVENT_IDX: the device's avail_event
        self.event_idx = event_idx
        self._irq_off = False
        self._ind = indirect
        self._ind_entries = 0
        if indirect is not None:
            self._ind_entries = indirect.size // (DESC_SIZE * size)
            if self._ind_entries < 2 or indirect.dma_addr % DESC_SIZE:
                raise VirtioError(f"queue {index}: indirect table memory of {indirect.size} bytes at "
                                  f"{indirect.dma_addr:#x} holds fewer than two 16-byte-aligned entries per ring entry")
            self._ind_table = memoryview(cast(Any, indirect.view(np.uint8))).cast("B")
        self.indirect_threshold = indirect_threshold
        self.indirect_chains = 0  # chains that went through an indirect table
        self._avail_idx = 0      # next avail index to fill (free-running, mod 2**16)
        self._published = 0      # avail->idx as the device sees it
        self._last_used = 0
        self.notifications = 0   # doorbells rung, for batching statistics
        base = memory.dma_addr
        transport.setup_queue(index, size, base, base + avail_off, base + used_off)

    def __repr__(self) -> str:
        return f"<Virtqueue {self.index} size {self.size}, {len(self._free)} descriptors free>"

    @property
    def num_free(self) -> int:
        return len(self._free)

    @property
    def in_flight(self) -> int:
        return sum(c is not None for c in self._chains)

    @property
    def last_used(self) -> int:
        """The used ring index the driver will look at next (free-running, mod 2**16)."""
        return self._last_used

    @property
    def avail_published(self) -> int:
        """avail->idx as the device sees it (free-running, mod 2**16)."""
        return self._published

    @property
    def avail_event(self) -> int:
        """EVENT_IDX: the avail ring index the device asked to be notified for (used->avail_event)."""
        if not self._coherent:
            self._device_area.sync_for_cpu()
        return int(self._avail_event[0])

    def set_used_event(self, index: int) -> None:
        """EVENT_IDX: ask for the next used-buffer interrupt when the device fills used ring entry `index`
        (avail->used_event; what Linux's virtqueue_enable_cb_delayed writes). Without EVENT_IDX there is
        no such field: VirtioError."""
        if not self.event_idx:
            raise VirtioError(f"queue {self.index}: used_event needs VIRTIO_F_EVENT_IDX, which was not negotiated")
        self._avail[2 + self.size] = index & 0xFFFF
        if not self._coherent:
            self._driver_area.sync_for_device()

    def suppress_interrupts(self, suppress: bool) -> None:
        """Ask the device not to interrupt on used buffers (a hint, §2.7.7), for polling drivers. With
        EVENT_IDX: used_event half the index space away (off), or the next used entry (on)."""
        self._irq_off = suppress
        if self.event_idx:
            self._avail[2 + self.size] = (self._last_used + (0x8000 if suppress else 0)) & 0xFFFF
            if not self._coherent:
                self._driver_area.sync_for_device()
            return
        self._avail[0] = AVAIL_F_NO_INTERRUPT if suppress else 0
        if not self._coherent:
            self._avail_header.sync_for_device()

    def add(self, segments: Sequence[tuple[int, int, int]], token: Any) -> int:
        """Chain `segments` ((dma address, length, 0 or DESC_F_WRITE), device-readable ones first) and put
        the chain in the avail ring, unpublished until `kick()`. Returns the head descriptor index.
        Raises VirtqueueFull (changing nothing) when the free list is too short, VirtioError (changing
        nothing) when a segment does not pack."""
        n = len(segments)
        free = self._free
        if not 0 < n <= len(free):
            if n == 0:
                raise VirtioError(f"queue {self.index}: a chain needs at least one segment")
            raise VirtqueueFull(f"queue {self.index}: {n} descriptors needed, {len(free)} free")
        if n > self.indirect_threshold and self._ind is not None and n <= self._ind_entries:
            return self._add_indirect(segments, token)
        ids = free[-n:]
        pack, table = _DESC.pack_into, self._table
        try:
            for i, nxt, (addr, length, flags) in zip(ids[:-1], ids[1:], segments[:-1], strict=True):  # to the next
                pack(table, 16 * i, addr, length, flags | DESC_F_NEXT, nxt)
            addr, length, flags = segments[-1]
            pack(table, 16 * ids[-1], addr, length, flags, 0)
        except (struct.error, TypeError, ValueError) as exc:
            # the descriptors stay on the free list: unpublished, they are just scratch memory
            raise VirtioError(f"queue {self.index}: segments {list(segments)!r:.200} are not (address, length, "
                              f"flags) integers in range: {exc}") from None
        del free[-n:]
        head = ids[0]
        self._chains[head] = ids
        self._tokens[head] = token
        self._avail[2 + (self._avail_idx & self._mask)] = head
        self._avail_idx = (self._avail_idx + 1) & 0xFFFF
        return head

    def reserve(self, segments: Sequence[tuple[int, int, int]], variable: int) -> ReservedChain:
        """Take descriptors off the free list for good and write `segments` into them as one chain, once:
        a chain the owner puts on the ring again and again with `add_reserved`, which rewrites only
        descriptor `variable` of it (an in-order driver's per-request slot: virtio-blk's header, data and
        status). Raises VirtqueueFull (changing nothing) when too few descriptors are free."""
        n = len(segments)
        if not 0 <= variable < n <= len(self._free):
            raise VirtqueueFull(f"queue {self.index}: cannot reserve {n} descriptors ({len(self._free)} free) with "
                                f"descriptor {variable} variable")
        ids = self._free[-n:]
        nexts = [*ids[1:], 0]
        for k, (addr, length, flags) in enumerate(segments):
            _DESC.pack_into(self._table, DESC_SIZE * ids[k], addr, length, flags | DESC_F_NEXT if k < n - 1 else flags,
                            nexts[k])
        del self._free[-n:]
        self._reserved.update(ids)
        if not self._coherent:
            self._driver_area.sync_for_device()
        return ReservedChain(ids[0], DESC_SIZE * ids[variable], DESC_F_NEXT if variable < n - 1 else 0,
                             nexts[variable], tuple(ids), segments[variable])

    def add_reserved(self, chain: ReservedChain, addr: int, length: int, flags: int, token: Any) -> int:
        """Put reserved `chain` in the avail ring, unpublished until `kick()`, with its variable descriptor
        now (addr, length, flags); the other descriptors and every link stay as `reserve` wrote them (the
        device never writes the table). A descriptor that already holds these values is not written again:
        a buffer that comes back to the same chain costs the device's cache line nothing. Returns the head.
        VirtioError (changing nothing) when the chain is already in flight or the values do not pack."""
        head = chain.head
        chains = self._chains
        if chains[head] is not None:
            raise VirtioError(f"queue {self.index}: reserved chain {head} is already in flight")
        if addr != chain.addr or length != chain.length or flags != chain.flags:
            try:
                _pack_desc(self._table, chain.offset, addr, length, flags | chain.link, chain.next)
            except (struct.error, TypeError, ValueError) as exc:
                raise VirtioError(f"queue {self.index}: descriptor ({addr!r}, {length!r}, {flags!r}) does not "
                                  f"pack: {exc}") from None
            chain.addr, chain.length, chain.flags = addr, length, flags
        chains[head] = ()
        self._tokens[head] = token
        idx = self._avail_idx
        self._avail[2 + (idx & self._mask)] = head
        self._avail_idx = (idx + 1) & 0xFFFF
        return head

    def _add_indirect(self, segments: Sequence[tuple[int, int, int]], token: Any) -> int:
        """One ring descriptor, INDIRECT, pointing at ring entry head's own table holding the chain."""
        head = self._free.pop()
        n = len(segments)
        ind = self._ind
        assert ind is not None
        base = head * self._ind_entries * DESC_SIZE
        pack, table = _DESC.pack_into, self._ind_table
        for k, (addr, length, flags) in enumerate(segments):
            pack(table, base + DESC_SIZE * k, addr, length, flags if k == n - 1 else flags | DESC_F_NEXT, k + 1)
        if not self._coherent:
            cast(DmaBuffer, ind[base:base + DESC_SIZE * n]).sync_for_device()
        _DESC.pack_into(self._table, DESC_SIZE * head, ind.dma_addr + base, DESC_SIZE * n, DESC_F_INDIRECT, 0)
        self._chains[head] = [head]
        self._tokens[head] = token
        self._avail[2 + (self._avail_idx & self._mask)] = head
        self._avail_idx = (self._avail_idx + 1) & 0xFFFF
        self.indirect_chains += 1
        return head

    def kick(self) -> bool:
        """Publish every chain added since the last kick; notify the device unless it asked not to be.
        Returns whether the doorbell was rung."""
        if self._avail_idx == self._published:
            return False
        if not self._coherent:
            self._driver_area.sync_for_device()
        barrier.wmb()                      # descriptors and ring entries before the index
        old, new = self._published, self._avail_idx
        self._avail[1] = new
        self._published = new
        if not self._coherent:
            self._avail_header.sync_for_device()
            self._device_area.sync_for_cpu()
        barrier.mb()                       # the index before reading used->flags (avail_event) and ringing
        if self.event_idx:
            # vring_need_event: ring only if avail_event lies in [old, new)
            if (new - self._avail_event[0] - 1) & 0xFFFF >= (new - old) & 0xFFFF:
                return False
        elif self._used16[0] & USED_F_NO_NOTIFY:
            return False
        self.transport.notify(self.index)
        self.notifications += 1
        return True

    def has_used(self) -> bool:
        if not self._coherent:
            self._device_area.sync_for_cpu()
        return self._used16[1] != self._last_used

    def pop_used(self) -> list[tuple[Any, int]]:
        """(token, bytes the device wrote) of every chain the device returned since the last call."""
        if not self._coherent:
            self._device_area.sync_for_cpu()
        end = self._used16[1]
        last = self._last_used
        if end == last:
            return []
        used32, chains, tokens, free, mask, size = \
            self._used32, self._chains, self._tokens, self._free, self._mask, self.size
        out = []
        while True:
            barrier.rmb()                  # the index before the entries it covers
            while last != end:
                slot = 2 * (last & mask)
                head = used32[slot]
                ids = chains[head] if head < size else None
                if ids is None:
                    self._last_used = last
                    raise VirtioError(f"queue {self.index}: device returned descriptor {head}, which is not the "
                                      "head of a chain in flight")
                chains[head] = None
                if ids:  # () for a reserved chain: its descriptors stay with it
                    free.extend(ids)
                out.append((tokens[head], used32[slot + 1]))
                tokens[head] = None
                last = (last + 1) & 0xFFFF
            self._last_used = last
            if not self.event_idx or self._irq_off:
                return out
            # interrupt at the next used entry, then look again: one may have come in meanwhile
            self._avail[2 + self.size] = last
            if not self._coherent:
                self._driver_area.sync_for_device()
            barrier.mb()
            if not self._coherent:
                self._device_area.sync_for_cpu()
            end = self._used16[1]
            if end == last:
                return out

    def detach_all(self) -> list[Any]:
        """Forget every chain in flight (after a device reset) and return their tokens."""
        tokens = [t for c, t in zip(self._chains, self._tokens, strict=True) if c is not None]
        self._chains = [None] * self.size
        self._tokens = [None] * self.size
        self._free = [i for i in range(self.size - 1, -1, -1) if i not in self._reserved]
        return tokens
