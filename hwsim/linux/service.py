"""Host services: processes a guest's devices need on the host side, started before QEMU and stopped after it.

A vhost-user back end is one: QEMU connects to its socket at start-up, so it must listen first, and it lives
outside the guest. A `HostService` is part of a `Machine` (frozen and hashable, so tests sharing the machine
share one boot); `run_in_guest` starts each before every boot attempt, passes the QEMU arguments it returns,
and stops it, by PID, when QEMU is gone.
"""

from __future__ import annotations

import abc
from pathlib import Path


class RunningService(abc.ABC):
    """A started service: the QEMU arguments that reach it, and how to stop it."""

    qemu_args: list[str]

    @abc.abstractmethod
    def stop(self) -> None:
        """Stop it (idempotent); raise nothing that hides the guest's own result."""


class HostService(abc.ABC):
    """What a machine needs on the host (subclasses are frozen dataclasses)."""

    @abc.abstractmethod
    def start(self, share: Path, attempt: int) -> RunningService:
        """Start it for one boot attempt; `share` is the run's writable directory (the guest sees it at the same
        path)."""
