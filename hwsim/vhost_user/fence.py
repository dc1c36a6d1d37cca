"""The fence: a stand-in that answers every request with IOERR, started where a back end died.

When a vhost-user back end dies, QEMU (7.2) stops the vhost device and, with `reconnect=` on its chardev,
connects again; until something answers, the guest's requests sit in the ring and Linux's virtio_blk
(which has no request timeout handler) waits for ever. The fence answers at that socket with the dead
device's configuration, resumes the ring where QEMU says (SET_VRING_BASE: the used index it restored) and
completes each request with VIRTIO_BLK_S_IOERR, so the guest sees I/O errors, not a hang.
"""

from __future__ import annotations

from hwsim.models.virtio_blk import S_IOERR, VirtioBlkModel
from hwsim.models.virtqueue import QueueFatal, Segment


class FencedBlk(VirtioBlkModel):
    """The virtio-blk model whose every well-formed request fails with IOERR and touches no media."""

    def handle(self, segments: list[Segment]) -> int:
        writable = [s for s in segments if s.writable]
        if not writable:
            raise QueueFatal("request has no device-writable byte for its status")
        self.failed = getattr(self, "failed", 0) + 1
        last = writable[-1]
        assert self.memory is not None
        self.memory.write(last.addr + last.length - 1, bytes((S_IOERR,)))
        return 1
