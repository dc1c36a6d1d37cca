"""Errors of the Linux guest harness. All derive from MmioError, so `except MmioError` covers them."""

from __future__ import annotations

from mmiotk.errors import MmioError


class LinuxGuestError(MmioError):
    """The kernel could not be fetched or unpacked, the initramfs not built, or QEMU not started."""


class GuestBootError(LinuxGuestError):
    """The guest never reached its init (a silent boot), even after the retry."""


class GuestTimeoutError(LinuxGuestError, TimeoutError):
    """The guest's command ran past its timeout; QEMU was killed."""
