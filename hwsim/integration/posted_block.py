"""PostedBlockDevice: a block device bound inside the simulator, queued from any thread.

A driver bound to the RTL under cocotb runs in the bridge's greenlet, on the simulator's one thread: a
server's own threads (the ublk queue thread) must never call into it. `queue()` here only posts the op and
wakes the simulator side; `pump()`, run in the driver's greenlet, queues what was posted on the real device
(one doorbell per batch), lets the simulation advance while anything is in flight (the driver's own
`poll`: its interrupt wait, bounded in simulated time) and so runs the completions on the simulator's
thread. A completion must therefore accept being called from a thread other than the submitter's (the
ublk server's hand the result to their queue thread).

Each op completes exactly once: by the device, or IO (the device raised), or IO_NOT_PRESENT (posted after
`close()`, or still in the device when the pump gave up on it; the caller's unbind then fails those).
When idle, the pump sleeps on a wall-clock event, so an idle simulation costs nothing and advances no time.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from drivers.block.protocol import BlockDevice, BlockInfo, BlockOp, BlockStatus, Completion

log = logging.getLogger(__name__)

ADVANCE = 20e-6      # the pump's poll of the device while requests are in flight (simulated seconds)
IDLE_WAIT = 0.05     # wall-clock seconds an idle pump sleeps before it looks at `until` again
DRAIN_TIMEOUT = 30.0  # wall-clock seconds the pump waits, once `until` says stop, for ops still in flight


class PostedBlockDevice(BlockDevice):
    """`device` (a driver bound in the simulator, completions="poll") as a BlockDevice any thread may queue
    on; `pump` delivers. Shows the device's DMA pool and bounce count, so a server's buffers are the device's
    own DMA memory as with the device itself."""

    def __init__(self, device: Any, *, advance: float = ADVANCE) -> None:
        self.device = device
        self.info: BlockInfo = device.query()
        self.pool = getattr(device, "pool", None)
        self.advance = advance
        self.posted = 0      # ops queued here
        self.completed = 0   # completions delivered (each op's exactly once)
        self.counts: dict[str, int] = {}  # ops the device took, by command
        self._posted: collections.deque[tuple[BlockOp, Completion]] = collections.deque()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._closed = False
        self._in_flight = 0  # the pump's thread alone changes it

    def query(self) -> BlockInfo:
        return self.info

    @property
    def bytes_copied(self) -> int:
        return int(getattr(self.device, "bytes_copied", 0) or 0)

    def queue(self, op: BlockOp, completion: Completion) -> None:
        with self._lock:
            closed = self._closed
            if not closed:
                self.posted += 1
                self._posted.append((op, completion))
        if closed:
            completion(BlockStatus.IO_NOT_PRESENT, op)
            return
        self._wake.set()

    # --- the simulator side (the driver's greenlet) -------------------------------------------------------
    def pump(self, until: Callable[[], bool], *, idle: float = IDLE_WAIT, drain: float = DRAIN_TIMEOUT) -> None:
        """Serve posted ops until `until()` is true and nothing is in flight (or `drain` s after `until()`
        first was, with ops still in the device: `close()` and the caller's unbind fail those)."""
        stopping_since = 0.0
        while True:
            if self._posted:
                self._start_posted()
            if self._in_flight:
                self.device.poll(self.advance)
                if stopping_since and time.monotonic() - stopping_since > drain:
                    log.error("%d ops still in the device %g s after the stop; leaving them to the unbind",
                              self._in_flight, drain)
                    return
                if not stopping_since and until():
                    stopping_since = time.monotonic()
                continue
            if self._posted:
                continue
            if until():
                return
            self._wake.clear()
            if not self._posted:
                self._wake.wait(idle)

    def _start_posted(self) -> None:
        batch = getattr(self.device, "batch", None)
        with batch() if batch is not None else contextlib.nullcontext():
            while self._posted:
                op, completion = self._posted.popleft()
                self.counts[op.command.name] = self.counts.get(op.command.name, 0) + 1
                done = self._finisher(completion)
                self._in_flight += 1
                try:
                    self.device.queue(op, done)
                except Exception:
                    log.exception("the device raised on %s", op.command.name)
                    done(BlockStatus.IO, op)

    def _finisher(self, completion: Completion) -> Completion:
        finished = False

        def done(status: BlockStatus, op: BlockOp) -> None:
            nonlocal finished
            if finished:
                log.error("a second completion of a %s (%s) dropped", op.command.name, BlockStatus(status).name)
                return
            finished = True
            self._in_flight -= 1
            self.completed += 1
            completion(status, op)
        return done

    def close(self) -> None:
        """No more ops: what is still posted, and everything queued from now on, completes IO_NOT_PRESENT."""
        with self._lock:
            self._closed = True
            left = list(self._posted)
            self._posted.clear()
        for op, completion in left:
            self.completed += 1
            completion(BlockStatus.IO_NOT_PRESENT, op)
