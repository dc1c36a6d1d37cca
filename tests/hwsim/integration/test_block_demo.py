"""The block demo on QEMU: image written and read back byte-identical, and it says so."""

from __future__ import annotations

import io

from hwsim.integration.block_demo import run_blk_demo
from hwsim.qemu import QemuSpace


def test_block_demo_writes_and_reads_back_an_ext4_image_on_qemu() -> None:
    out = io.StringIO()
    assert run_blk_demo(QemuSpace, out, image_mib=8) == 0
    text = out.getvalue()
    assert "bind    virtio31 -> VirtioBlkDriver (31 empty virtio-mmio slots refused" in text
    assert "byte-identical to the image" in text
    assert "QEMU's disk file matches the image" in text
    assert "bytes bounced: 0" in text
    assert "unbind  virtio31 <- VirtioBlkDriver; a request after unbind completes IO_NOT_PRESENT" in text
