"""`mmiotk demo`, as `make demo` runs it: board tour, then virtio-blk on QEMU through the same bus."""

from __future__ import annotations

import subprocess
import sys


def test_mmiotk_demo_binds_virtio_blk_on_qemu_and_reads_the_image_back() -> None:
    result = subprocess.run([sys.executable, "-m", "mmiotk.cli", "demo", "--image-mib", "4"],
                            capture_output=True, text=True, timeout=240, check=False)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    out = result.stdout
    assert "virtio31   -> VirtioMmioIdent" in out
    assert "bind    virtio31 -> VirtioBlkDriver" in out
    assert "byte-identical to the image" in out
    assert "a request after unbind completes IO_NOT_PRESENT" in out


def test_mmiotk_demo_without_qemu_stops_after_the_bus_tour() -> None:
    result = subprocess.run([sys.executable, "-m", "mmiotk.cli", "demo", "--no-qemu"],
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "address map" in result.stdout
    assert "VirtioBlkDriver" not in result.stdout
