"""The behavioural model (hwsim.models.VirtioBlkModel) as a vhost-user back end's device: its registers are
method calls, its DMA goes to the guest RAM the back end mapped, and it completes requests synchronously
inside the QueueNotify write."""

from __future__ import annotations

import numpy as np

from hwsim.models.guest_memory import GuestMemory
from hwsim.models.virtio_blk import VirtioBlkModel

from .target import MmioTarget


class ModelTarget(MmioTarget):
    def __init__(self, model: VirtioBlkModel) -> None:
        self.model = model
        self.name = model.name

    def read32(self, offset: int) -> int:
        return self.model.read(offset, 4)

    def write32(self, offset: int, value: int) -> None:
        self.model.write(offset, 4, value)

    def write_byte(self, offset: int, value: int) -> None:
        self.model.write(offset, 1, value)

    def config(self) -> bytes:
        return self.model.config_bytes()

    def attach(self, ram: np.ndarray, base: int) -> None:
        self.model.attach(GuestMemory(ram.data, base))

    def detach(self) -> None:
        self.model.memory = None

    def resume_at(self, base: int) -> None:
        queue = self.model.queue
        assert queue is not None
        queue.last_avail = queue.used_idx = base & 0xFFFF

    def irq_line(self) -> bool:
        return bool(self.model.irq_level)
