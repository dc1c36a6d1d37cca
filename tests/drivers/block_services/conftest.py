"""Fixtures for the block FIFO server, the NBD export and their devices."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.block.protocol import BlockDevice
from drivers.block.ramdisk import RamDisk
from drivers.block_services.server import BlockServer

from .block_helpers import BLOCKS, BS, Procs


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short directory for unix sockets (their paths must stay under 108 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="blk", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def ramdisk() -> Iterator[RamDisk]:
    disk = RamDisk(BLOCKS * BS, BS)
    yield disk
    disk.unbind()


@pytest.fixture
def serve(sockdir: Path) -> Iterator[Callable[..., BlockServer]]:
    """serve(device, **kw) starts a BlockServer on a fresh socket; all are stopped afterwards."""
    servers: list[BlockServer] = []

    def start(device: BlockDevice, **kw: object) -> BlockServer:
        server = BlockServer(device, sockdir / f"s{len(servers)}.sock", **kw)  # type: ignore[arg-type]
        servers.append(server.start())
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def procs() -> Iterator[Procs]:
    p = Procs()
    yield p
    p.cleanup()
