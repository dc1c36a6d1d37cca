"""Fixtures of the backend tests that run inside the Linux guest (machine `BACKENDS`): the QEMU devices by
PCI address, unclaimed at the start of each test and unbound again after it."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # edu_regs, the tests' helper (importlib mode)

from hwsim.linux.guest import in_guest, pci_one, pci_unbind
from hwsim.linux.machines import EDU, IVSHMEM


def _unclaimed(ids: tuple[int, int]) -> Iterator[str]:
    if not in_guest():
        raise RuntimeError("this fixture runs only inside the Linux guest (tests marked linux_guest)")
    address = pci_one(*ids)
    pci_unbind(address)
    yield address
    pci_unbind(address)


@pytest.fixture
def edu() -> Iterator[str]:
    """QEMU's edu device (BAR0: ID, liveness, factorial, interrupt raise/ack, DMA), with no driver bound."""
    yield from _unclaimed(EDU)


@pytest.fixture
def ivshmem() -> Iterator[str]:
    """ivshmem-plain: BAR0 registers, BAR2 1 MiB of prefetchable shared memory; no driver bound."""
    yield from _unclaimed(IVSHMEM)
