"""One conformance suite, the same virtio-blk driver, every target. Test ids name the target first:
`test_random_io_matches_a_shadow_copy[qemu-qd16]`. The cases themselves live in conformance_cases.py;
each test is named after its case."""

from __future__ import annotations

import pytest
from conformance_harness import TARGETS, Conformance

on_every_target = pytest.mark.parametrize("target", TARGETS)


@on_every_target
def test_negotiation_accepts_only_offered_features(conformance: Conformance, target: str) -> None:
    conformance.run(target, "negotiation_accepts_only_offered_features")


@on_every_target
def test_written_blocks_read_back_and_flushes_complete(conformance: Conformance, target: str) -> None:
    conformance.run(target, "written_blocks_read_back_and_flushes_complete")


@pytest.mark.parametrize("depth", [1, 4, 16, 64], ids=lambda d: f"qd{d}")
@on_every_target
def test_random_io_matches_a_shadow_copy(conformance: Conformance, target: str, depth: int) -> None:
    conformance.run(target, f"random_io_matches_a_shadow_copy-qd{depth}")


@on_every_target
def test_readonly_device_rejects_writes(conformance: Conformance, target: str) -> None:
    conformance.run(target, "readonly_device_rejects_writes")


@on_every_target
def test_out_of_range_ops_complete_out_of_range_and_change_nothing(conformance: Conformance, target: str) -> None:
    conformance.run(target, "out_of_range_ops_complete_out_of_range_and_change_nothing")


@on_every_target
def test_range_option_exposes_part_of_the_disk(conformance: Conformance, target: str) -> None:
    conformance.run(target, "range_option_exposes_part_of_the_disk")


@on_every_target
def test_device_is_part_of_its_backing_file(conformance: Conformance, target: str) -> None:
    conformance.run(target, "device_is_part_of_its_backing_file")


@on_every_target
def test_writethrough_is_the_default(conformance: Conformance, target: str) -> None:
    conformance.run(target, "writethrough_is_the_default")


@on_every_target
def test_long_chains_go_through_indirect_tables(conformance: Conformance, target: str) -> None:
    conformance.run(target, "long_chains_go_through_indirect_tables")


@on_every_target
def test_event_idx_is_used_where_offered(conformance: Conformance, target: str) -> None:
    conformance.run(target, "event_idx_is_used_where_offered")


@on_every_target
def test_event_idx_interrupts_at_used_event_and_avail_event_follows_the_ring(conformance: Conformance,
                                                                            target: str) -> None:
    conformance.run(target, "event_idx_interrupts_at_used_event_and_avail_event_follows_the_ring")


@on_every_target
def test_topology_reaches_block_info(conformance: Conformance, target: str) -> None:
    conformance.run(target, "topology_reaches_block_info")


@on_every_target
def test_legacy_interface_binds_and_serves_io(conformance: Conformance, target: str) -> None:
    conformance.run(target, "legacy_interface_binds_and_serves_io")


@pytest.mark.parametrize("fs", ["ext4", "vfat"])
@on_every_target
def test_tool_made_image_reads_back_identical(conformance: Conformance, target: str, fs: str) -> None:
    conformance.run(target, f"tool_made_image_reads_back_identical-{fs}")


@on_every_target
def test_unreachable_buffers_are_bounced_and_counted(conformance: Conformance, target: str) -> None:
    conformance.run(target, "unreachable_buffers_are_bounced_and_counted")


@on_every_target
def test_writethrough_option_turns_the_cache_off_or_flushes_every_write(conformance: Conformance,
                                                                         target: str) -> None:
    conformance.run(target, "writethrough_option_turns_the_cache_off_or_flushes_every_write")


@on_every_target
def test_trim_zeroes_or_is_not_supported(conformance: Conformance, target: str) -> None:
    conformance.run(target, "trim_zeroes_or_is_not_supported")


@on_every_target
def test_unbind_completes_every_op_io_not_present(conformance: Conformance, target: str) -> None:
    conformance.run(target, "unbind_completes_every_op_io_not_present")
