"""Fixtures shared by every test package."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mmiotk import CachePolicy, MmioBuffer, MmioResource, RamSpace

pytest_plugins = ["hwsim.linux.pytest_plugin"]  # tests marked linux_guest run inside a booted Linux guest

RAM_BASE = 0x4000_0000


@pytest.fixture
def ram() -> Iterator[RamSpace]:
    """1 MiB of anonymous simulated memory at RAM_BASE."""
    space = RamSpace(1 << 20, base=RAM_BASE)
    yield space
    space.close()


@pytest.fixture
def resource(ram: RamSpace) -> MmioResource:
    return MmioResource(ram, RAM_BASE, 1 << 20)


@pytest.fixture
def regs(resource: MmioResource) -> MmioBuffer:
    """A 256-byte uncached register window at the start of RAM."""
    return resource.create_region(RAM_BASE, 0x100, "regs").map(CachePolicy.UNCACHED)
