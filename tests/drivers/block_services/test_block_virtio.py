"""The block FIFO server and the NBD export over virtio-blk on the behavioural model and on QEMU: data
reaches the disk image, several client processes at once, and DMA-able buffers are never copied."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pytest

from drivers.block_services.client import BlockClient
from drivers.block_services.nbd import NbdServer
from drivers.block_services.server import BlockServer
from drivers.virtio.blk import VirtioBlk
from hwsim.integration.block_targets import open_model, open_qemu

from .block_helpers import Procs

MiB = 1 << 20
OPENERS: dict[str, Callable[..., AbstractContextManager[VirtioBlk]]] = {"model": open_model, "qemu": open_qemu}


@pytest.fixture
def image(tmp_path: Path) -> Path:
    path = tmp_path / "disk.img"
    path.write_bytes(np.random.default_rng(9).integers(0, 256, 4 * MiB, dtype=np.uint8).tobytes())
    return path


@pytest.fixture(params=["model", "qemu"])
def target(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def blk(target: str, image: Path) -> Iterator[VirtioBlk]:
    with OPENERS[target](image) as device:
        yield device


def test_dma_buffers_go_to_the_device_in_place_and_memfds_are_bounced(blk: VirtioBlk, sockdir: Path) -> None:
    with BlockServer(blk, sockdir / "v.sock", dma=blk.pool) as server, BlockClient(server.path) as client:
        dma = client.alloc_dma(64 * 1024)
        assert dma.dma_addr is not None and dma.vmoid == 1
        dma.array[:32 * 1024] = np.arange(32 * 1024) % 253
        client.write(dma, 100, 64)
        client.read(dma, 100, 64, vmo_offset=64)
        assert np.array_equal(dma.array[32 * 1024:], dma.array[:32 * 1024])
        stats = client.stats()
        assert stats["bytes_dma"] == 64 * 1024 and stats["device_bytes_copied"] == 0
        assert server.bytes_copied == 0 and blk.bytes_copied == 0  # zero-copy, end to end

        mem = client.attach(32 * 1024)
        mem.array[:] = 0x5A
        client.write(mem, 200, 64)
        assert blk.bytes_copied == 32 * 1024  # not DMA memory: the driver bounced it, and says so


def test_several_client_processes_verify_their_data_on_virtio(blk: VirtioBlk, sockdir: Path, procs: Procs) -> None:
    with BlockServer(blk, sockdir / "v.sock", dma=blk.pool) as server:
        workers = [procs.worker("verify", server.path, str(i), str(i * 64), "32", "3", str(i % 2))
                   for i in range(3)]
        results = []
        for proc in workers:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            results.append(json.loads(out))
    assert all(r["ok"] for r in results), results
    assert [r["dma_addr"] is not None for r in results] == [False, True, False]


def test_the_disk_image_holds_what_clients_wrote(target: str, image: Path, sockdir: Path) -> None:
    with OPENERS[target](image) as device, BlockServer(device, sockdir / "v.sock") as server, \
            BlockClient(server.path) as client:
        buf = client.attach(4096)
        buf.array[:] = 0xC3
        client.write(buf, 16, 8, force_access=True)
        client.flush()
    assert image.read_bytes()[16 * 512:24 * 512] == b"\xc3" * 4096


def test_nbd_export_of_virtio_blk_passes_qemu_img_compare(blk: VirtioBlk, sockdir: Path, tmp_path: Path) -> None:
    src = tmp_path / "src.img"
    src.write_bytes(np.random.default_rng(5).integers(0, 256, 4 * MiB, dtype=np.uint8).tobytes())
    with NbdServer(blk, unix_path=sockdir / "n.sock") as nbd:
        for cmd in (["qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(src), nbd.uri],
                    ["qemu-img", "compare", "-f", "raw", "-F", "raw", str(src), nbd.uri],
                    ["qemu-io", "-f", "raw", "-c", "write -P 0x6b 1M 64k", "-c", "read -P 0x6b 1M 64k", nbd.uri]):
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            assert "Pattern verification failed" not in proc.stdout
