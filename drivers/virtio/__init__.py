"""virtio: the transports (`mmio`, `pci`, on `transport`) and the split virtqueue (`virtqueue`) that device
drivers build on."""

from __future__ import annotations

from mmiotk.errors import MmioError


class VirtioError(MmioError):
    """The device broke the virtio contract, refused the driver, or is not what the driver expects."""
