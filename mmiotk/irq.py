"""Interrupt lines as drivers see them: wait with a timeout, acknowledge, mask, unmask.

Every backend (mock, UIO, RTL simulation, QEMU) implements `Interrupt`; a driver never knows which.
A wait that times out raises `IrqTimeoutError`: nothing waits forever. After the bus revokes an
interrupt (unbind), every call raises `RevokedError`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from .errors import MmioError, RevokedError


class IrqTimeoutError(MmioError, TimeoutError):
    """No interrupt arrived within the timeout."""


class Interrupt(ABC):
    """One interrupt line handed to a driver."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._revoked = False

    def _check_live(self) -> None:
        if self._revoked:
            raise RevokedError(f"interrupt {self.name!r} was revoked")

    def wait(self, timeout: float) -> int:
        """Block until the line fires or `timeout` seconds pass; returns the number of events seen."""
        self._check_live()
        if timeout is None or timeout < 0:
            raise ValueError(f"interrupt {self.name!r}: wait needs a timeout >= 0 seconds, got {timeout!r}")
        return self._wait(timeout)

    def ack(self) -> None:
        """Acknowledge at the interrupt controller, re-arming the line."""
        self._check_live()
        self._ack()

    def mask(self) -> None:
        self._check_live()
        self._mask()

    def unmask(self) -> None:
        self._check_live()
        self._unmask()

    def revoke(self) -> None:
        """Called by the bus on unbind: every later call raises RevokedError."""
        self._revoked = True

    @property
    def revoked(self) -> bool:
        return self._revoked

    @abstractmethod
    def _wait(self, timeout: float) -> int: ...

    def _ack(self) -> None:
        return None

    @abstractmethod
    def _mask(self) -> None: ...

    @abstractmethod
    def _unmask(self) -> None: ...
