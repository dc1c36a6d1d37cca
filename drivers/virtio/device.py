"""VirtioDevice: what every virtio driver with one request queue does around its requests, on any transport.

Bring-up to FEATURES_OK and DRIVER_OK in spec order (§3.1.1), one lock around the ring, doorbells batched,
completions delivered, teardown. A device driver (virtio_blk) subclasses it and supplies the requests:
`_complete(token, written, done)` for each returned chain and `_restart(done)` to refill the ring.

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
submit is published with one doorbell at the end. A completion that raises is logged and the others still run.

Failure. Any error from the device side other than revocation (QEMU killed: QemuError; a descriptor the
device should not have returned: VirtioError) marks the device failed (`failed`, `failure`): it is reset if it
still answers, and every request in flight or waiting completes IO_NOT_PRESENT at once, as do later ones.
So does a device that completes nothing for `request_timeout` s while requests are in flight (a stopped
QEMU, a stalled simulator), like Linux's block-layer timeout; the clock is kept where poll() and the IRQ
thread wait (`_check_stall`), never per request. `unbind()` fails what is left even when the
reset itself fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
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
DEFAULT_REQUEST_TIMEOUT = 30.0  # seconds without a completion while requests are in flight (Linux: 30 s)
log = logging.getLogger(__name__)


def deliver(done: Done, who: str) -> int:
    """Call every callback; one that raises is logged and does not keep the others from running."""
    for callback, a, b in done:
        try:
            callback(a, b)
        except Exception:
            log.exception("%s: a completion callback raised", who)
    return len(done)


class _Plug:
    """What `VirtioDevice.batch()` returns: a plug on the doorbell, one object per device (it nests)."""

    __slots__ = ("_dev",)

    def __init__(self, dev: VirtioDevice) -> None:
        self._dev = dev

    def __enter__(self) -> None:
        dev = self._dev
        dev._acquire()
        dev._plug += 1
        dev._release()

    def __exit__(self, *exc: object) -> None:
        self._dev._unplug()


class VirtioDevice:
    """Steps 1-3 of §3.1.1 happen here; the subclass negotiates, reads its config, calls `setup_queue`
    and `start`. `regs` is a transport (`VirtioTransport`: virtio-mmio or virtio-pci), or a mapped
    virtio-mmio register window, which is wrapped in `VirtioMmio`."""

    device_id: ClassVar[int] = 0
    device_kind: ClassVar[str] = "virtio device"

    def __init__(self, regs: Any, pool: DmaPool, irq: Interrupt | None, *, completions: str = "thread",
                 spin: float = 50e-6, poll_interval: float = 1e-3,
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT) -> None:
        if completions not in ("thread", "poll"):
            raise ValueError(f"virtio: completions must be 'thread' or 'poll', not {completions!r}")
        if isinstance(request_timeout, bool) or not isinstance(request_timeout, (int, float)) \
                or not request_timeout > 0:
            raise ValueError(f"virtio: request_timeout must be a positive number of seconds, "
                             f"not {request_timeout!r}")
        self.pool, self.irq, self.spin, self.poll_interval = pool, irq, spin, poll_interval
        self.completions = completions
        self.request_timeout = float(request_timeout)
        self.failure: BaseException | None = None  # why the device was marked failed, if it was
        self._lock = threading.Lock()
        # the hot paths take it with acquire/release in try/finally: half the cost of `with` here (3.11)
        self._acquire, self._release = self._lock.acquire, self._lock.release
        self._plug = 0
        self._batch = _Plug(self)
        self._dead = False
        self._progress_at = time.monotonic()  # when _check_stall last saw progress (or an idle ring)
        self._stall_busy = False              # ... and whether the ring was busy then
        self._stall_used = 0                  # ... and the used index it saw
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

    def _complete_used(self, used: list[tuple[Any, int]], done: Done) -> None:
        """`_complete` each returned chain; one that raises completes with an error (`_complete_error`) and
        the others still complete. A subclass may do its common case inline, the rest through this."""
        complete = self._complete
        for token, written in used:
            try:
                complete(token, written, done)
            except Exception:
                log.exception("%s: completing a request failed; it completes with an error", self.dev.name)
                self._complete_error(token, done)

    def _restart(self, done: Done) -> None:
        """Put waiting work on the ring after completions freed room (failing, into `done`, what cannot go)."""

    def _detach(self) -> Done:
        """After the device was reset at unbind: the callbacks that fail everything still pending."""
        return []

    def _complete_error(self, token: Any, done: Done) -> None:
        """`_complete` raised for `token`: add the callback that fails it (the ring no longer holds it)."""

    # --- doorbells ---------------------------------------------------------------------------------
    def batch(self) -> _Plug:
        """`with dev.batch():` work submitted inside shares one doorbell, rung on exit (nests)."""
        return self._batch

    def _unplug(self) -> None:
        error = None
        self._acquire()
        try:
            self._plug -= 1
            if not self._plug and not self._dead:
                # publish what was added and ring the doorbell. A device that cannot be reached is failed
                # after the lock is released, not raised into a submitter whose request is already queued.
                try:
                    self.vq.kick()
                except Exception as exc:
                    error = exc
        finally:
            self._release()
        if error is not None:
            self._fail(error)

    # --- completions --------------------------------------------------------------------------------
    def _reap(self) -> int:
        """Deliver every chain the device returned; returns how many callbacks ran."""
        done: Done = []
        self._acquire()
        try:
            if self._dead:
                return 0
            used = self.vq.pop_used()
            if not used:
                return 0  # nothing freed room, so nothing waiting can start either
            self._complete_used(used, done)
            self._restart(done)
            self._plug += 1  # work the callbacks submit shares one doorbell
        finally:
            self._release()
        try:
            deliver(done, self.dev.name)
        finally:
            self._unplug()
        return len(done)

    def _check_stall(self) -> int:
        """Fail the device when it has had requests published to it and completed none for `request_timeout` s.

        The clock is kept here, off the hot path: it restarts whenever a check finds the ring idle, finds it
        busy after it was idle, or finds completions since the previous check. So a stall is reported
        `request_timeout` s after the first check that saw it, and callers check whenever they wait."""
        vq, now = self.vq, time.monotonic()
        used = vq.last_used
        busy = vq.avail_published != used
        if not (busy and self._stall_busy) or used != self._stall_used:
            self._progress_at, self._stall_busy, self._stall_used = now, busy, used
            return 0
        if now - self._progress_at <= self.request_timeout:
            return 0
        return self._fail(VirtioError(
            f"{self.dev.name}: no request completed for {self.request_timeout} s with "
            f"{vq.in_flight} chains in flight; the device is marked failed"))

    def _fail(self, exc: BaseException) -> int:
        """Mark the device failed: reset it if it still answers, complete everything IO_NOT_PRESENT."""
        with self._lock:
            if self._dead:
                return 0
            self._dead = True
            self.failure = exc
            log.error("%s: device failed: %s", self.dev.name, exc)
            with contextlib.suppress(Exception):  # a dead device cannot be reset; a stalled one may time out
                self.dev.reset()
            pending = self._detach()
        return deliver(pending, self.dev.name)

    @property
    def failed(self) -> bool:
        return self.failure is not None

    def poll(self, timeout: float = 0.0) -> int:
        """Deliver completions on this thread, waiting up to `timeout` s for at least one; returns how many."""
        try:
            if not self._dead and self.vq.has_used():  # a failed device's rings are not looked at
                n = self._reap()
                if n:
                    return n
            return self._poll(timeout)
        except RevokedError:
            raise
        except Exception as exc:  # the device side failed (QEMU died, the device broke the ring)
            return self._fail(exc)

    def _poll(self, timeout: float) -> int:
        """Nothing was there: spin on the used ring, then sleep on the interrupt, until `timeout`."""
        if timeout <= 0:
            return self._check_stall()
        now = time.monotonic()
        deadline, spin_end = now + timeout, now + self.spin
        vq, relax, spins = self.vq, os.sched_yield, 0
        while not self._dead:
            if vq.has_used():
                n = self._reap()
                if n:
                    return n
            # Every 8th look, let whatever else is runnable on this CPU go first (Linux's cond_resched in a
            # poll loop): a device thread woken here (QEMU's, a simulator's) would otherwise wait out the
            # spinner's time slice, ~1 ms a request (QEMU QD1 reads on a shared CPU: ~1k req/s without, ~13k
            # with). Not every look: the system call would then slow the spin itself.
            spins += 1
            if not spins & 7:
                relax()
            now = time.monotonic()
            if now >= deadline:
                return self._check_stall()
            if now >= spin_end:
                self._wait_device(min(deadline - now, 0.05))
                n = self._check_stall()
                if n:
                    return n
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
            if self._dead:  # nothing left to poll: whatever completes, completes on another thread
                return done.wait(remaining)
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
        """The IRQ thread. It ends only when the device is dead: unbound, or failed by it here."""
        while not self._dead:
            try:
                if self.irq is not None:
                    self._wait_device(0.1)
                else:
                    time.sleep(self.poll_interval)
                self._reap()
                self._check_stall()
            except Exception as exc:  # revoked under us, QEMU died, the ring is broken: never silently
                self._fail(exc)
                return

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
            try:
                self.dev.reset()
            except RevokedError:
                pass
            except Exception as exc:  # QEMU gone, the bus broken: the requests still get their answer
                log.warning("%s: reset at unbind failed: %s", self.dev.name, exc)
            pending = self._detach()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        deliver(pending, self.dev.name)

    def _free(self, *buffers: DmaBuffer | None) -> None:
        for buf in buffers:
            if buf is not None and not buf.freed and not self.pool.closed:
                buf.free()

    def release(self) -> None:
        """Free the rings (after unbind); subclasses free their own buffers too."""
        self._free(self._rings, self._indirect)
