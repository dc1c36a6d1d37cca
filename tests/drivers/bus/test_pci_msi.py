"""MSI-X table programming against plain memory laid out as a function's config space and table BAR."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from drivers.bus.pci_config import PciConfig
from drivers.bus.pci_msi import find_msix, msix_disable, msix_enable
from mmiotk import CachePolicy, MmioBuffer, MmioResource, RamSpace
from mmiotk.bus import NoResourceError

CAP = 0x98


@pytest.fixture
def function() -> Iterator[tuple[PciConfig, MmioBuffer]]:
    with RamSpace(0x2000, name="fn") as space:
        resource = MmioResource(space, 0, 0x2000)
        config = resource.create_region(0, 0x1000, "fn config").map(CachePolicy.UNCACHED_DEVICE)
        table = resource.create_region(0x1000, 0x1000, "fn.bar1").map(CachePolicy.UNCACHED_DEVICE)
        config.write16(0x06, 0x0010)                    # capabilities list
        config.write8(0x34, CAP)
        config.write_block(CAP, bytes([0x11, 0x00]))   # MSI-X, last in the list
        config.write16(CAP + 2, 0x0001)                 # table size 2
        config.write32(CAP + 4, 0x0000_0201)            # BIR 1, offset 0x200
        for entry in range(2):
            table.write32(0x200 + 16 * entry + 12, 1)   # entries come out of reset masked
        yield PciConfig(config), table


def test_entries_get_the_messages_and_msix_goes_on_with_intx_off(function: tuple[PciConfig, MmioBuffer]) -> None:
    config, table = function
    cap = find_msix(config)
    assert (cap.at, cap.table_size, cap.table_bar, cap.table_offset) == (CAP, 2, 1, 0x200)
    msix_enable(config, cap, table, [(0x1_0802_0040, 80), (0x0802_0040, 81)])
    assert [table.read32(0x200 + o) for o in (0, 4, 8, 12, 16, 20, 24, 28)] == \
        [0x0802_0040, 1, 80, 0, 0x0802_0040, 0, 81, 0]
    assert config.read16(CAP + 2) & 0xC000 == 0x8000   # enabled, function mask lifted
    assert config.read16(0x04) & 0x0400                # INTx disabled
    msix_disable(config, cap, table, 2)
    assert config.read16(CAP + 2) & 0xC000 == 0 and not config.read16(0x04) & 0x0400
    assert table.read32(0x20C) & 1 and table.read32(0x21C) & 1  # masked again


def test_more_vectors_than_the_table_holds_changes_nothing(function: tuple[PciConfig, MmioBuffer]) -> None:
    config, table = function
    with pytest.raises(NoResourceError, match="3 MSI-X vectors asked for, the table has 2"):
        msix_enable(config, find_msix(config), table, [(0, 80), (0, 81), (0, 82)])
    assert config.read16(CAP + 2) == 0x0001 and table.read32(0x208) == 0


def test_a_function_without_msix_says_so(function: tuple[PciConfig, MmioBuffer]) -> None:
    config, _ = function
    config.write8(CAP, 0x05)  # now an MSI capability, not MSI-X
    with pytest.raises(NoResourceError, match="fn config: the function has no MSI-X capability"):
        find_msix(config)
