"""VirtioDevice: what every virtio driver with one request queue does around its requests, on any transport.

Bring-up to FEATURES_OK and DRIVER_OK in spec order (§3.1.1), one lock around the ring, doorbells batched,
completions delivered, teardown. A device driver (virtio_blk) subclasses it and supplies the requests:
`_complete(token, written, done)` for each returned chain and `_restart()` to refill the ring.

Completion model. `queue()`-style submitters may run on any thread; the lock guards the ring. Completions are
delivered either
- by `poll(timeout)` on the caller's thread (completions="poll"): no threads at all, which is what a
  simulator bridge needs and the fastest path. The device's interrupts stay off (avail NO_INTERRUPT) while
  poll() spins on the used ring for `spin` s; then they go on, the ring is checked once more, and poll()
  sleeps on the interrupt, or, without one, reads InterruptStatus (a register access, which is what lets a
  simulated device make progress);
- by an IRQ thread (completions="thread") that waits on the interrupt (or polls the used ring every
  `poll_interval` s without one) and calls completions from that thread.
Completions run outside the lock and may submit more work; whatever they, or a `with dev.batch():` block,
submit is published with one doorbell at the end.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, ClassVar

from mmiotk import barrier
from mmiotk.dma import DmaBuffer, DmaPool
from mmiotk.errors import RevokedError
from mmiotk.irq import Interrupt, IrqTimeoutError

from . import VirtioError
from .mmio import Feature, Status, VirtioMmio
from .transport import VirtioTransport
from .virtqueue import Virtqueue, ring_layout

Done = list[tuple[Callable[[Any, Any], None], Any, Any]]  # (callback, a, b): called as callback(a, b)


class VirtioDevice:
    """Steps 1-3 of §3.1.1 happen here; the subclass negotiates, reads its config, calls `setup_queue`
    and `start`. `regs` is a transport (`VirtioTransport`: virtio-mmio or virtio-pci), or a mapped
    virtio-mmio register window, which is wrapped in `VirtioMmio`."""

    device_id: ClassVar[int] = 0
    device_kind: ClassVar[str] = "virtio device"

    def __init__(self, regs: Any, pool: DmaPool, irq: Interrupt | None, *, completions: str = "thread",
                 spin: float = 50e-6, poll_interval: float = 1e-3) -> None:
        if completions not in ("thread", "poll"):
            raise ValueError(f"virtio: completions must be 'thread' or 'poll', not {completions!r}")
        self.pool, self.irq, self.spin, self.poll_interval = pool, irq, spin, poll_interval
        self.completions = completions
        self._lock = threading.Lock()
        self._plug = 0
        self._dead = False
        self._thread: threading.Thread | None = None
        self._rings: DmaBuffer | None = None
        self._indirect: DmaBuffer | None = None
        dev = self.dev = regs if isinstance(regs, VirtioTransport) else VirtioMmio(regs)
        if dev.device_id != self.device_id:
            raise VirtioError(f"{dev.name}: device id {dev.device_id} is not a {self.device_kind} "
                              f"({self.device_id})")
        dev.reset()
        dev.set_status(Status.ACKNOWLEDGE)
        dev.set_status(Status.ACKNOWLEDGE | Status.DRIVER)

    # --- bring-up (subclass __init__) ---------------------------------------------------------------
    def setup_queue(self, wanted_size: int, *, indirect_entries: int = 0, indirect_threshold: int = 3) -> Virtqueue:
        """Queue 0 with min(wanted, QueueNumMax) entries rounded down to a power of two, rings in DMA; with
        RING_INDIRECT_DESC negotiated and `indirect_entries`, an indirect table of that many entries per ring
        entry (used by chains longer than `indirect_threshold`); EVENT_IDX when negotiated."""
        qmax = self.dev.queue_max(0)
        size = 1 << (max(1, min(wanted_size, qmax)).bit_length() - 1)
        if size < 4:
            raise VirtioError(f"{self.dev.name}: queue 0 has QueueNumMax {qmax}; at least 4 entries are needed")
        self._rings = self.pool.alloc(ring_layout(size)[2], align=4096, name="vq0")
        if indirect_entries and self.dev.has(Feature.RING_INDIRECT_DESC):
            self._indirect = self.pool.alloc(16 * indirect_entries * size, align=4096, name="vq0-indirect")
        self.vq = Virtqueue(self.dev, 0, size, self._rings, indirect=self._indirect,
                            indirect_threshold=indirect_threshold, event_idx=self.dev.has(Feature.RING_EVENT_IDX))
        if self.completions == "poll":
            self.vq.suppress_interrupts(True)  # on only while poll() sleeps on the interrupt
        return self.vq

    def start(self) -> None:
        """DRIVER_OK (step 8): the device is live; start the IRQ thread in thread mode."""
        self.dev.driver_ok()
        if self.completions == "thread":
            self._thread = threading.Thread(target=self._irq_loop, name=f"{self.dev.name}-irq", daemon=True)
            self._thread.start()

    # --- subclass hooks (called under the lock) -----------------------------------------------------
    def _complete(self, token: Any, written: int, done: Done) -> None:
        raise NotImplementedError

    def _restart(self) -> None:
        """Put waiting work on the ring after completions freed room."""

    def _detach(self) -> Done:
        """After the device was reset at unbind: the callbacks that fail everything still pending."""
        return []

    # --- doorbells ----------------------------------------------------------------------------------
    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Work submitted inside shares one doorbell, rung on exit."""
        with self._lock:
            self._plug += 1
        try:
            yield
        finally:
            with self._lock:
                self._plug -= 1
                if not self._plug and not self._dead:
                    self.vq.kick()

    # --- completions --------------------------------------------------------------------------------
    def _reap(self) -> int:
        """Deliver every chain the device returned; returns how many callbacks ran."""
        done: Done = []
        with self._lock:
            if self._dead:
                return 0
            for token, written in self.vq.pop_used():
                self._complete(token, written, done)
            self._restart()
            self._plug += 1  # work the callbacks submit shares one doorbell
        try:
            for callback, a, b in done:
                callback(a, b)
        finally:
            with self._lock:
                self._plug -= 1
                if not self._plug and not self._dead:
                    self.vq.kick()
        return len(done)

    def poll(self, timeout: float = 0.0) -> int:
        """Deliver completions on this thread, waiting up to `timeout` s for at least one; returns how many."""
        n = self._reap()
        if n or timeout <= 0:
            return n
        now = time.monotonic()
        deadline, spin_end = now + timeout, now + self.spin
        vq = self.vq
        while not self._dead:
            if vq.has_used():
                n = self._reap()
                if n:
                    return n
            now = time.monotonic()
            if now >= deadline:
                return 0
            if now >= spin_end:
                self._wait_device(min(deadline - now, 0.05))
        return 0

    def wait_for(self, done: threading.Event, timeout: float) -> bool:
        """Wait for `done`, delivering completions meanwhile when nobody else does (poll mode)."""
        if self._thread is not None:
            return done.wait(timeout)
        deadline = time.monotonic() + timeout
        while not done.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self.poll(remaining)
        return True

    def _wait_device(self, timeout: float) -> None:
        """Sleep on the interrupt (or look at InterruptStatus), then acknowledge at device and controller."""
        irq, vq, polling = self.irq, self.vq, self._thread is None
        if irq is not None:
            if polling:
                vq.suppress_interrupts(False)
                barrier.mb()
                if vq.has_used():  # it completed before the device could see interrupts were on
                    vq.suppress_interrupts(True)
                    return
            try:
                irq.wait(timeout)
            except IrqTimeoutError:
                return
            finally:
                if polling:
                    vq.suppress_interrupts(True)
        self.dev.ack_interrupt(self.dev.interrupt_status())
        if irq is not None:
            irq.ack()

    def _irq_loop(self) -> None:
        while not self._dead:
            try:
                if self.irq is not None:
                    self._wait_device(0.1)
                else:
                    time.sleep(self.poll_interval)
                self._reap()
            except RevokedError:
                return  # unbind revoked the registers or the line; unbind() fails what is left

    # --- teardown -----------------------------------------------------------------------------------
    @property
    def dead(self) -> bool:
        return self._dead

    def unbind(self, timeout: float = 2.0) -> None:
        """Reset the device (it stops using rings and buffers), stop the IRQ thread, fail what is pending."""
        with self._lock:
            if self._dead:
                return
            self._dead = True
            with contextlib.suppress(RevokedError):
                self.dev.reset()
            pending = self._detach()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        for callback, a, b in pending:
            callback(a, b)

    def _free(self, *buffers: DmaBuffer | None) -> None:
        for buf in buffers:
            if buf is not None and not buf.freed and not self.pool.closed:
                buf.free()

    def release(self) -> None:
        """Free the rings (after unbind); subclasses free their own buffers too."""
        self._free(self._rings, self._indirect)
