"""The device side of a split virtqueue (virtio 1.2, 2.7): take chains from the avail ring, walk them into
segments, return them through the used ring.

Anything that makes a chain impossible to walk raises `QueueFatal` with the reason; the transport turns
that into DEVICE_NEEDS_RESET (see virtio_blk's module docstring for the full list). Walking is bounded by
the table size, so a looping chain ends in QueueFatal, never in a hang.
"""

from __future__ import annotations

from typing import NamedTuple

from .guest_memory import DmaError, GuestMemory

# Deliberate duplication: the virtio constants here are written out again, on purpose, in the driver
# (drivers/virtio/) and in the RTL test driver (tests/hwsim/vblk/vblk_driver.py), so that device and
# drivers stay independent readings of the spec and a misreading in one is caught by the other.
DESC_F_NEXT = 1
DESC_F_WRITE = 2
DESC_F_INDIRECT = 4
AVAIL_F_NO_INTERRUPT = 1
DESC_SIZE = 16


class QueueFatal(Exception):
    """The queue cannot be processed any further; the device needs a reset."""


class Segment(NamedTuple):
    addr: int
    length: int
    writable: bool


class SplitQueue:
    """One enabled split virtqueue of `size` entries whose rings live in `mem`."""

    def __init__(self, mem: GuestMemory, size: int, desc: int, avail: int, used: int, *,
                 indirect: bool, event_idx: bool = False) -> None:
        self.mem = mem
        self.size = size
        self.desc = desc
        self.avail = avail
        self.used = used
        self.indirect = indirect
        self.event_idx = event_idx  # VIRTIO_F_EVENT_IDX: used_event / avail_event instead of the flags
        self.last_avail = 0       # next avail ring index the device will take (free-running u16)
        self.used_idx = 0         # next used ring index the device will fill (free-running u16)
        self.avail_event = -1     # what the device last wrote to avail_event (-1: nothing yet)

    @staticmethod
    def layout_problem(mem: GuestMemory, size: int, max_size: int, desc: int, avail: int,
                       used: int) -> str | None:
        """Why these settings cannot be enabled, or None when they can."""
        if not 1 <= size <= max_size or size & (size - 1):
            return f"QueueNum {size} is not a power of two in 1..{max_size}"
        areas = (("descriptor table", desc, 16, DESC_SIZE * size),
                 ("driver area (avail ring)", avail, 2, 6 + 2 * size),
                 ("device area (used ring)", used, 4, 6 + 8 * size))
        for name, addr, align, length in areas:
            if addr % align:
                return f"{name} at {addr:#x} is not {align}-byte aligned"
            if not mem.contains(addr, length):
                return f"{name} [{addr:#x}, {addr + length:#x}) is outside guest RAM"
        return None

    def avail_flags(self) -> int:
        return self.mem.read_u16(self.avail)

    def pending(self) -> int:
        """Chains the driver has made available and the device has not taken yet."""
        count = (self.mem.read_u16(self.avail + 2) - self.last_avail) & 0xFFFF
        if count > self.size:
            raise QueueFatal(f"avail.idx ran {count} entries ahead of the device, more than the "
                             f"queue size {self.size}")
        return count

    def pop(self) -> int:
        """The head descriptor index of the next available chain."""
        head = self.mem.read_u16(self.avail + 4 + 2 * (self.last_avail % self.size))
        self.last_avail = (self.last_avail + 1) & 0xFFFF
        if head >= self.size:
            raise QueueFatal(f"avail ring names head descriptor {head}, outside the table of {self.size}")
        return head

    def walk(self, head: int) -> list[Segment]:
        """The chain starting at `head` as segments, following NEXT and INDIRECT (which may end a chain of
        direct descriptors, virtio 1.2 2.7.5.3.2: the walk goes on at entry 0 of the indirect table)."""
        mem = self.mem
        table, entries, index = self.desc, self.size, head
        in_indirect = False
        segments: list[Segment] = []
        steps = 0
        while True:
            if index >= entries:
                where = "indirect table" if in_indirect else "descriptor table"
                raise QueueFatal(f"chain from head {head}: next index {index} is outside the {where} "
                                 f"of {entries} entries")
            steps += 1
            if steps > entries:
                raise QueueFatal(f"chain from head {head} is longer than its table of {entries} "
                                 "descriptors (a loop)")
            try:
                addr, length, flags, nxt = mem.read_desc(table + DESC_SIZE * index)
            except DmaError as exc:
                raise QueueFatal(f"chain from head {head}: {exc}") from None
            if flags & DESC_F_INDIRECT:
                table, entries = self._indirect(head, addr, length, flags, in_indirect)
                index, steps, in_indirect = 0, 0, True
                continue
            if length == 0:
                raise QueueFatal(f"chain from head {head}: descriptor {index} has length 0")
            if not mem.contains(addr, length):
                raise QueueFatal(f"chain from head {head}: buffer [{addr:#x}, {addr + length:#x}) is "
                                 "outside guest RAM")
            writable = bool(flags & DESC_F_WRITE)
            if not writable and segments and segments[-1].writable:
                raise QueueFatal(f"chain from head {head}: a device-readable descriptor follows a "
                                 "device-writable one")
            segments.append(Segment(addr, length, writable))
            if not flags & DESC_F_NEXT:
                return segments
            index = nxt

    def _indirect(self, head: int, addr: int, length: int, flags: int, in_indirect: bool) -> tuple[int, int]:
        """Check an INDIRECT descriptor; the (address, entries) of its table."""
        why = None
        if not self.indirect:
            why = "VIRTIO_F_RING_INDIRECT_DESC was not negotiated"
        elif in_indirect:
            why = "an indirect table may not contain INDIRECT descriptors"
        elif flags & DESC_F_NEXT:
            why = "INDIRECT and NEXT are both set"
        elif length == 0 or length % DESC_SIZE:
            why = f"indirect table length {length} is not a positive multiple of 16"
        elif not self.mem.contains(addr, length):
            why = f"indirect table [{addr:#x}, {addr + length:#x}) is outside guest RAM"
        if why is not None:
            raise QueueFatal(f"chain from head {head}: {why}")
        return addr, length // DESC_SIZE

    def push_used(self, head: int, written: int) -> None:
        """Put one used element in the ring (not yet visible: see publish)."""
        slot = self.used + 4 + 8 * (self.used_idx % self.size)
        self.mem.write_u32(slot, head)
        self.mem.write_u32(slot + 4, written)
        self.used_idx = (self.used_idx + 1) & 0xFFFF

    def publish(self) -> None:
        """Make every pushed element visible: used.idx is written after the elements."""
        self.mem.write_u16(self.used + 2, self.used_idx)

    def needs_interrupt(self, old: int) -> bool:
        """After publishing the elements from used index `old` to `used_idx`: does the driver want a
        used-buffer notification? Without EVENT_IDX, unless avail.flags has NO_INTERRUPT; with it, the flags
        are ignored and the answer is whether one of those elements went into the entry used_event names
        (virtio 1.2, 2.7.7.2; Linux's vring_need_event)."""
        if not self.event_idx:
            return not self.avail_flags() & AVAIL_F_NO_INTERRUPT
        used_event = self.mem.read_u16(self.avail + 4 + 2 * self.size)
        return (self.used_idx - used_event - 1) & 0xFFFF < (self.used_idx - old) & 0xFFFF

    def ask_notify(self) -> None:
        """EVENT_IDX: the device is about to go idle, so it asks to be notified when the driver makes the
        next entry (index `last_avail`) available, by writing avail_event (virtio 1.2, 2.7.10). Only when
        the value changes, so a busy device does not rewrite it for every chain."""
        if self.event_idx and self.avail_event != self.last_avail:
            self.mem.write_u16(self.used + 4 + 8 * self.size, self.last_avail)
            self.avail_event = self.last_avail
