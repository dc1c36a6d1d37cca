"""One conformance suite, the same virtio-blk driver, every target. Test ids name the target first:
`test_random_io[qemu-qd16]`. The cases themselves live in cases.py."""

from __future__ import annotations

import pytest
from conformance_harness import TARGETS, Conformance

on_every_target = pytest.mark.parametrize("target", TARGETS)


@on_every_target
def test_feature_negotiation(conformance: Conformance, target: str) -> None:
    conformance.run(target, "feature_negotiation")


@on_every_target
def test_read_write_flush(conformance: Conformance, target: str) -> None:
    conformance.run(target, "read_write_flush")


@pytest.mark.parametrize("depth", [1, 4, 16, 64], ids=lambda d: f"qd{d}")
@on_every_target
def test_random_io(conformance: Conformance, target: str, depth: int) -> None:
    conformance.run(target, f"random_io-qd{depth}")


@on_every_target
def test_readonly_device_rejects_writes(conformance: Conformance, target: str) -> None:
    conformance.run(target, "readonly_device")


@on_every_target
def test_out_of_range_requests(conformance: Conformance, target: str) -> None:
    conformance.run(target, "out_of_range")


@on_every_target
def test_range_option_exposes_part_of_the_disk(conformance: Conformance, target: str) -> None:
    conformance.run(target, "range_option")


@pytest.mark.parametrize("fs", ["ext4", "vfat"])
@on_every_target
def test_tool_made_image_reads_back_identical(conformance: Conformance, target: str, fs: str) -> None:
    conformance.run(target, f"tool_image-{fs}")


@on_every_target
def test_bounce_buffers_count_copies(conformance: Conformance, target: str) -> None:
    conformance.run(target, "bounce_counts_copies")


@on_every_target
def test_writethrough_option(conformance: Conformance, target: str) -> None:
    conformance.run(target, "writethrough_option")


@on_every_target
def test_trim_zeroes_or_is_not_supported(conformance: Conformance, target: str) -> None:
    conformance.run(target, "trim")


@on_every_target
def test_unbind_fails_every_op(conformance: Conformance, target: str) -> None:
    conformance.run(target, "unbind_fails_everything")
