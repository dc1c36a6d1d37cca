"""vhost-user back ends: our virtio-blk device (the behavioural model, or the RTL under a simulator) served
to QEMU's vhost-user-blk-pci, so that a Linux guest's own virtio_blk driver runs against it."""

from .backend import VhostUserBackend, listen
from .messages import VhostUserError, VhostUserRequest
from .target import MmioTarget

__all__ = ["MmioTarget", "VhostUserBackend", "VhostUserError", "VhostUserRequest", "listen"]
