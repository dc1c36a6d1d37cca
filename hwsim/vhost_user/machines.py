"""The guests that run Linux's own virtio_blk against our device: one per back end, a 32 MiB disk each (the
RTL runs under Verilator while the guest runs under TCG: a small disk keeps mkfs and fio short)."""

from __future__ import annotations

from .service import VhostUserBlkService, vhost_blk_machine

DISK_SIZE = 32 << 20
VHOST_MODEL = vhost_blk_machine("vhost-model", VhostUserBlkService("vblk", "model", DISK_SIZE))
VHOST_RTL = vhost_blk_machine("vhost-rtl", VhostUserBlkService("vblk", "rtl", DISK_SIZE, start_timeout=600.0))
