"""The queue handling of the virtio-mmio transport: queue 0 set up from its registers (QueueReady, or the
legacy QueuePFN), notifications, and processing its chains into the device's `handle`.

Apart from the register file (`virtio_mmio`): this is where guest memory is read and written, where a
broken ring becomes DEVICE_NEEDS_RESET, and where a deferred device does its work when the driver waits.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from .guest_memory import GuestMemory
from .virtio_mmio_regs import (
    DEVICE_NEEDS_RESET,
    DRIVER_OK,
    F_RING_EVENT_IDX,
    F_RING_INDIRECT_DESC,
    FAILED,
    FEATURES_OK,
    INT_VRING,
)
from .virtqueue import QueueFatal, SplitQueue

if TYPE_CHECKING:
    from .virtqueue import Segment


class QueueHandling:
    """Queue 0 of a `VirtioMmioDevice` (its base): set-up, notification, processing, under the device's lock."""

    # the transport state this reads and sets (VirtioMmioDevice owns it; see its _reset_state)
    lock: threading.RLock
    memory: GuestMemory | None
    deferred: bool
    status: int
    queue: SplitQueue | None
    queue_size_max: int
    queue_num: int
    queue_addr: dict[str, int]
    queue_pfn: int
    queue_align: int
    guest_page_size: int
    notify_pending: bool
    last_error: str | None

    if TYPE_CHECKING:  # what the transport provides
        def handle(self, segments: list[Segment]) -> int: ...
        def has_feature(self, bit: int) -> bool: ...
        def needs_reset(self, reason: str) -> None: ...
        def _raise(self, bits: int) -> None: ...

    # --- set-up --------------------------------------------------------------------------------------
    def _set_queue_ready(self, value: int) -> None:
        if not value:
            self.queue = None
            return
        if self.queue is not None:
            return
        problem = None
        if not self.status & FEATURES_OK:
            problem = "QueueReady=1 before FEATURES_OK"
        elif self.memory is None:
            problem = "the device has no guest memory attached"
        else:
            problem = SplitQueue.layout_problem(self.memory, self.queue_num, self.queue_size_max,
                                                self.queue_addr["desc"], self.queue_addr["avail"],
                                                self.queue_addr["used"])
        if problem is not None:
            self.last_error = f"queue 0 not enabled: {problem}"
            return                                             # QueueReady reads back 0
        assert self.memory is not None
        self.queue = SplitQueue(self.memory, self.queue_num, self.queue_addr["desc"], self.queue_addr["avail"],
                                self.queue_addr["used"], indirect=self.has_feature(F_RING_INDIRECT_DESC),
                                event_idx=self.has_feature(F_RING_EVENT_IDX))

    def _set_queue_pfn(self, pfn: int) -> None:
        """Legacy queue set-up: descriptors at pfn * GuestPageSize, the avail ring right after them, the used
        ring at the next QueueAlign boundary (virtio 1.2, 2.7.2 legacy layout); 0 disables the queue."""
        self.queue_pfn = pfn
        if not pfn:
            self.queue = None
            return
        align, page = self.queue_align, self.guest_page_size
        problem = None
        if not align or align & (align - 1) or not page or page & (page - 1):
            problem = f"QueueAlign {align} and GuestPageSize {page} must be powers of two"
        elif self.memory is None:
            problem = "the device has no guest memory attached"
        else:
            desc = pfn * page
            avail = desc + 16 * self.queue_num
            used = (avail + 6 + 2 * self.queue_num + align - 1) & ~(align - 1)
            problem = SplitQueue.layout_problem(self.memory, self.queue_num, self.queue_size_max, desc, avail,
                                                used)
        if problem is not None:
            self.queue_pfn = 0
            self.last_error = f"queue 0 not enabled: {problem}"
            return
        assert self.memory is not None
        self.queue = SplitQueue(self.memory, self.queue_num, desc, avail, used,
                                indirect=self.has_feature(F_RING_INDIRECT_DESC),
                                event_idx=self.has_feature(F_RING_EVENT_IDX))

    # --- processing ----------------------------------------------------------------------------------
    def _notify(self, index: int) -> None:
        if index != 0 or self.queue is None or not self.status & DRIVER_OK \
                or self.status & (DEVICE_NEEDS_RESET | FAILED):
            return
        if self.deferred:
            self.notify_pending = True
        else:
            self.run_queue()

    def run_queue(self) -> int:
        """Process every available chain; the number completed. Deferred devices run this when their
        interrupt is waited on or InterruptStatus is read."""
        with self.lock:
            self.notify_pending = False
            queue = self.queue
            if queue is None or not self.status & DRIVER_OK or self.status & (DEVICE_NEEDS_RESET | FAILED):
                return 0
            done = 0
            fatal = None
            old = queue.used_idx
            try:
                while True:
                    while queue.pending():
                        head = queue.pop()
                        written = self.handle(queue.walk(head))
                        queue.push_used(head, written)
                        done += 1
                    # EVENT_IDX: ask for the next notification, then look once more (the driver may have
                    # added a chain and read the old avail_event meanwhile: 2.7.10)
                    queue.ask_notify()
                    if not queue.pending():
                        break
            except QueueFatal as exc:
                fatal = str(exc)
            if done:
                queue.publish()
                if queue.needs_interrupt(old):
                    self._raise(INT_VRING)
            if fatal is not None:
                self.needs_reset(fatal)
            return done
