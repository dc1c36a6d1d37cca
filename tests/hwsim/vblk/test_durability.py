"""Writeback vs writethrough: end the simulation right after an acknowledged write, then read the image.

Only a write that was stable when acknowledged (writethrough) or flushed afterwards may be in the image;
a writeback write that was never flushed dies with the controller's buffer.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from rtl_cases import HERE, simulators

from hwsim.cosim import runner
from hwsim.vblk import simbuild

SECTOR, LBA = 512, 7


def expected_pattern() -> bytes:  # rtl_helpers.pattern(SECTOR, 42) without importing cocotb here
    return bytes((i * 7 + 42 * 13 + (i >> 9) * 31) & 0xFF for i in range(SECTOR))


@pytest.mark.parametrize("mode", ["writeback", "writethrough", "flushed"])
@pytest.mark.parametrize("sim", simulators())
def test_only_a_writethrough_or_flushed_write_is_in_the_image_after_the_end(sim: str, mode: str,
                                                                           tmp_path: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(64 * SECTOR))
    built = simbuild.build(sim)
    results = runner.run(built, "cocotb_durability", test_dir=tmp_path / "run", module_dir=HERE,
                         extra_env={"HWSIM_IMAGE": str(image), "HWSIM_MODE": mode})
    case = "acknowledged_write_reads_back_then_the_simulation_ends"
    assert results[case].passed, results[case].message
    on_disk = image.read_bytes()[LBA * SECTOR:(LBA + 1) * SECTOR]
    if mode == "writeback":
        assert on_disk == bytes(SECTOR), "an unflushed writeback write must not be in the image"
    else:
        assert on_disk == expected_pattern()
    assert image.stat().st_size == 64 * SECTOR
