"""Errors of the QEMU target. All derive from MmioError, so a driver's `except MmioError` covers them."""

from __future__ import annotations

from mmiotk.errors import MmioError


class QemuError(MmioError):
    """QEMU could not be started, answered FAIL, or the target was used after close()."""


class QemuDiedError(QemuError):
    """The QEMU process exited (or closed its qtest socket); the message carries its stderr tail."""


class QemuTimeoutError(QemuError, TimeoutError):
    """QEMU did not answer within the timeout; the connection is unusable afterwards."""
