"""One ublk hardware queue: the thread that owns its io_uring on /dev/ublkcN, and its tags.

The thread submits FETCH_REQ for every tag; for each request the kernel hands over it asks the server to
start the device op (`UblkServer.handle`), and commits each result with COMMIT_AND_FETCH_REQ (which also
fetches the tag's next request). The kernel insists that one task issues all of a queue's commands, so
results arriving on the device's threads come through a deque and an eventfd the ring reads. Each tag is
owned by the server from its fetch to its commit, and is committed once: a second result is dropped (and
logged). During a clean stop (`UblkServer.failing_since` set) every result is committed as EIO.
"""

from __future__ import annotations

import collections
import ctypes
import errno
import logging
import mmap
import os
import struct
import threading
import time
from typing import TYPE_CHECKING

from . import ublk_cmd as U
from .io_uring import Ring

if TYPE_CHECKING:
    from .ublk import UblkServer

log = logging.getLogger(__name__)

_EVENT = 1 << 32  # user_data of the eventfd read; tags are below 2**16
DRAIN_TIMEOUT = 30.0  # seconds a stopping queue waits for the device's outstanding ops
FAIL_TIMEOUT = 5.0  # seconds a clean stop waits for ops the device holds before the ring's close fails them


class UblkQueue:
    """One hardware queue: its thread, its ring on /dev/ublkcN, its request descriptors and tag buffers."""

    def __init__(self, server: UblkServer, q_id: int, cdev: int) -> None:
        self.server, self.q_id, self.cdev = server, q_id, cdev
        depth = server.queue_depth
        size = -(-depth * ctypes.sizeof(U.IoDesc) // mmap.PAGESIZE) * mmap.PAGESIZE
        self.descs = mmap.mmap(cdev, size, mmap.MAP_SHARED | mmap.MAP_POPULATE, mmap.PROT_READ,
                               offset=U.io_desc_offset(q_id))
        self.vmos = [server.tag_buffer() for _ in range(depth)]
        self.ring = Ring(2 * depth + 2)
        self.event = os.eventfd(0, os.EFD_CLOEXEC)
        self._close_lock = threading.Lock()
        self._event_buf = ctypes.c_uint64()
        self.done: collections.deque[tuple[int, int]] = collections.deque()
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.fetching = 0  # tags with a FETCH or COMMIT_AND_FETCH in the kernel
        self.owned = bytearray(depth)  # 1 while the server holds the tag's request (fetched, not committed)
        self.abandoned = False  # the device kept ops past a clean stop's bound: its buffers must stay
        self._tid = 0
        self.thread = threading.Thread(target=self._run, name=f"ublk{server.dev_id}-q{q_id}", daemon=True)

    # --- the queue thread ------------------------------------------------------------------------------
    def _run(self) -> None:
        self._tid = threading.get_ident()
        try:
            self._serve()
        except BaseException as exc:
            self.error = exc
            log.exception("ublk queue %d of device %d failed", self.q_id, self.server.dev_id)
            self.ready.set()
            self.ring.close()  # the kernel cancels our tags and fails the disk's I/O rather than hang it

    def _serve(self) -> None:
        for tag in range(self.server.queue_depth):
            self._io_cmd(U.IO_FETCH_REQ, tag, 0)
        self._arm_event()
        self.ring.submit_and_wait(0)
        self.ready.set()
        stopping_since = 0.0
        while True:
            self.ring.submit_and_wait(1)
            for cqe in self.ring.completions():
                if cqe.user_data == _EVENT:
                    self._arm_event()
                    continue
                self.fetching -= 1
                if cqe.res == U.IO_RES_OK:
                    self._start(cqe.user_data)
                elif cqe.res != U.IO_RES_ABORT:  # ABORT: the queue is going away, do not fetch again
                    log.warning("ublk device %d queue %d tag %d: fetch failed: %s", self.server.dev_id,
                                self.q_id, cqe.user_data, os.strerror(-cqe.res))
            self._commit_done()
            failing_since = self.server.failing_since
            if failing_since and self.in_device and time.monotonic() - failing_since > FAIL_TIMEOUT:
                self._abandon()
            if self.server.stopping.is_set():
                stopping_since = stopping_since or time.monotonic()
                if self.in_device == 0 or time.monotonic() - stopping_since > DRAIN_TIMEOUT:
                    return
                # let the device finish: wake again when it completes (the eventfd) or after a while
            if self.fetching == 0 and self.in_device == 0:
                return  # the kernel aborted every tag: the device is gone

    @property
    def in_device(self) -> int:
        """Tags the server holds: after `_commit_done`, those whose op the device has not completed."""
        return self.owned.count(1)

    def _abandon(self) -> None:
        """A clean stop past FAIL_TIMEOUT: fail the requests whose ops the device still holds. Their tag
        buffers stay the device's (a tag fetched again fails at once without touching its buffer), and their
        late results are dropped."""
        log.error("ublk device %d: the device still holds %d ops %g s into the stop; failing them",
                  self.server.dev_id, self.in_device, FAIL_TIMEOUT)
        self.abandoned = True
        for tag, owned in enumerate(self.owned):
            if owned:
                self.owned[tag] = 0
                self.server.count_abort()
                self._io_cmd(U.IO_COMMIT_AND_FETCH_REQ, tag, -errno.EIO)
                self.server.stats.committed += 1

    def _arm_event(self) -> None:
        self.ring.prep_read(self.event, ctypes.addressof(self._event_buf), 8, _EVENT)

    def _io_cmd(self, op: int, tag: int, result: int) -> None:
        self.ring.prep_uring_cmd(self.cdev, op, bytes(U.IoCmd(q_id=self.q_id, tag=tag, result=result)), tag)
        self.fetching += 1

    def _commit_done(self) -> None:
        server = self.server
        while self.done:
            tag, result = self.done.popleft()
            if not self.owned[tag]:
                (log.info if self.abandoned else log.error)(
                    "ublk device %d queue %d tag %d: a second result (%d) dropped", server.dev_id, self.q_id,
                    tag, result)
                continue
            self.owned[tag] = 0
            if server.stopping.is_set() and server.aborting:
                continue  # no refetch: the ring's close cancels the tag
            if server.failing_since and result >= 0:  # a clean stop fails what it has not answered yet
                result = -errno.EIO
                server.count_abort()
            self._io_cmd(U.IO_COMMIT_AND_FETCH_REQ, tag, result)
            server.stats.committed += 1  # the queue thread alone counts this

    def _start(self, tag: int) -> None:
        op_flags, nr_sectors, start_sector = struct.unpack_from("<IIQ", self.descs, tag * ctypes.sizeof(U.IoDesc))
        self.owned[tag] = 1
        self.server.handle(self, tag, op_flags, nr_sectors, start_sector)

    # --- any thread ------------------------------------------------------------------------------------
    def complete(self, tag: int, result: int) -> None:
        """Hand the result of `tag` to the queue thread (which commits it)."""
        self.done.append((tag, result))
        if threading.get_ident() != self._tid:
            self.wake()

    def wake(self) -> None:
        with self._close_lock:
            if self.event >= 0:  # a device completing after the queue closed: nobody left to tell
                os.eventfd_write(self.event, 1)

    def close(self) -> None:
        self.ring.close()
        with self._close_lock:
            if self.event >= 0:
                os.close(self.event)
                self.event = -1
        self.descs.close()
