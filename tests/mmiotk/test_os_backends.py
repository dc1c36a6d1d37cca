"""/dev/mem, UIO and PCI sysfs backends, against a fake tree of regular files."""

from __future__ import annotations

import mmap
from pathlib import Path

import pytest

from mmiotk import CachePolicy, DevMemSpace, MmioError, MmioResource, PciSysfsSpace, PolicyError, UioSpace

PAGE = mmap.PAGESIZE


def test_devmem_maps_a_physical_offset_with_o_sync(tmp_path):
    mem = tmp_path / "mem"
    mem.write_bytes(bytes(4 * PAGE))
    space = DevMemSpace(mem)
    region = MmioResource(space, 0, 4 * PAGE).create_region(2 * PAGE + 0x10, 0x40, "dev")
    buf = region.map(CachePolicy.UNCACHED)
    buf.write32(4, 0xA5A5_0001)
    assert mem.read_bytes()[2 * PAGE + 0x14:2 * PAGE + 0x18] == (0xA5A5_0001).to_bytes(4, "little")
    assert "O_SYNC" in buf.mechanism


def test_devmem_cached_mapping_opens_without_o_sync(tmp_path):
    mem = tmp_path / "mem"
    mem.write_bytes(bytes(PAGE))
    region = MmioResource(DevMemSpace(mem), 0, PAGE).create_region(0, 64, coherent=True, memory=True)
    assert "cached" in region.map(CachePolicy.CACHED).mechanism


def make_uio(root: Path, maps: list[tuple[int, int, int]]) -> Path:
    """A fake /sys/class/uio/uio0 with `maps` (addr, size, offset) and a /dev/uio0 file."""
    for i, (addr, size, offset) in enumerate(maps):
        d = root / "sys" / "class" / "uio" / "uio0" / "maps" / f"map{i}"
        d.mkdir(parents=True)
        (d / "addr").write_text(f"{addr:#x}\n")
        (d / "size").write_text(f"{size:#x}\n")
        (d / "offset").write_text(f"{offset:#x}\n")
        (d / "name").write_text(f"regs{i}\n")
    dev = root / "dev"
    dev.mkdir()
    (dev / "uio0").write_bytes(bytes(PAGE * (len(maps) + 1)))
    return dev / "uio0"


def test_uio_map_n_is_mmapped_at_n_pages(tmp_path):
    node = make_uio(tmp_path, [(0xFE00_0000, 0x100, 0), (0xFE01_0040, 0x40, 0x40)])
    space = UioSpace("uio0", sysfs_root=tmp_path / "sys", dev_root=tmp_path / "dev")
    assert [(m.index, m.name, m.addr) for m in space.maps] == [(0, "regs0", 0xFE00_0000),
                                                                (1, "regs1", 0xFE01_0040)]
    resource = MmioResource(space, 0xFE01_0040, 0x40)
    buf = resource.create_region(0xFE01_0040, 0x40, "map1").map(CachePolicy.UNCACHED_DEVICE)
    buf.write32(8, 0xDEAD_BEEF)
    data = node.read_bytes()
    assert data[PAGE + 0x40 + 8:PAGE + 0x40 + 12] == (0xDEAD_BEEF).to_bytes(4, "little")
    assert space.irq_path == node


def test_uio_offers_only_uncached_maps(tmp_path):
    make_uio(tmp_path, [(0xFE00_0000, 0x100, 0)])
    space = UioSpace("uio0", sysfs_root=tmp_path / "sys", dev_root=tmp_path / "dev")
    region = MmioResource(space, 0xFE00_0000, 0x100).create_region(0xFE00_0000, 0x100, prefetchable=True)
    with pytest.raises(PolicyError, match="uncached"):
        region.map(CachePolicy.WRITE_COMBINING)


def test_uio_without_maps_is_a_clear_error(tmp_path):
    (tmp_path / "sys" / "class" / "uio" / "uio0" / "maps").mkdir(parents=True)
    with pytest.raises(MmioError, match="lists no maps"):
        UioSpace("uio0", sysfs_root=tmp_path / "sys", dev_root=tmp_path / "dev")


def make_pci(root: Path, prefetch_wc: bool = True) -> Path:
    d = root / "bus" / "pci" / "devices" / "0000:00:02.0"
    d.mkdir(parents=True)
    lines = [
        f"{0xFE00_0000:#018x} {0xFE00_0FFF:#018x} {0x40200:#018x}",   # BAR0: 4 KiB MMIO
        f"{0:#018x} {0:#018x} {0:#018x}",                               # BAR1: unused
        f"{0xE000_0000:#018x} {0xE000_FFFF:#018x} {0x42208:#018x}",   # BAR2: 64 KiB prefetchable
    ]
    (d / "resource").write_text("\n".join(lines) + "\n")
    (d / "resource0").write_bytes(bytes(0x1000))
    (d / "resource2").write_bytes(bytes(0x10000))
    if prefetch_wc:
        (d / "resource2_wc").write_bytes(bytes(0x10000))
    return d


def test_pci_bars_are_parsed_from_sysfs(tmp_path):
    make_pci(tmp_path)
    space = PciSysfsSpace("0000:00:02.0", sysfs_root=tmp_path)
    assert [(b.index, b.start, b.size, b.prefetchable) for b in space.bars] == [
        (0, 0xFE00_0000, 0x1000, False), (2, 0xE000_0000, 0x10000, True)]


def test_pci_uncached_bar_maps_resource_n(tmp_path):
    d = make_pci(tmp_path)
    space = PciSysfsSpace("0000:00:02.0", sysfs_root=tmp_path)
    buf = MmioResource(space, 0xFE00_0000, 0x1000).create_region(0xFE00_0100, 0x100).map(CachePolicy.UNCACHED)
    buf.write16(2, 0xBEEF)
    assert (d / "resource0").read_bytes()[0x102:0x104] == b"\xef\xbe"
    assert buf.mechanism == "pci resource0"


def test_pci_write_combining_maps_resource_n_wc(tmp_path):
    d = make_pci(tmp_path)
    space = PciSysfsSpace("0000:00:02.0", sysfs_root=tmp_path)
    region = MmioResource(space, 0xE000_0000, 0x10000).create_region(0xE000_2000, 0x1000, prefetchable=True)
    buf = region.map(CachePolicy.WRITE_COMBINING)
    buf.write64(0, 42)
    assert buf.mechanism == "pci resource2_wc"
    assert (d / "resource2_wc").read_bytes()[0x2000] == 42


def test_pci_write_combining_without_resource_wc_is_refused(tmp_path):
    make_pci(tmp_path, prefetch_wc=False)
    space = PciSysfsSpace("0000:00:02.0", sysfs_root=tmp_path)
    region = MmioResource(space, 0xE000_0000, 0x10000).create_region(0xE000_0000, 0x100, prefetchable=True)
    with pytest.raises(PolicyError, match="resource2_wc"):
        region.map(CachePolicy.WRITE_COMBINING)


def test_pci_malformed_resource_file_names_the_line(tmp_path):
    d = tmp_path / "bus" / "pci" / "devices" / "0000:00:03.0"
    d.mkdir(parents=True)
    (d / "resource").write_text("0x0 zz 0x0\n")
    with pytest.raises(MmioError, match="line 1"):
        PciSysfsSpace("0000:00:03.0", sysfs_root=tmp_path)


def test_pci_config_intx_disable_flips_only_command_bit_10(tmp_path):
    from mmiotk.pci import PCI_COMMAND_INTX_DISABLE, PciConfig

    config = tmp_path / "config"
    config.write_bytes(bytes([0xF4, 0x1A, 0x10, 0x11, 0x07, 0x01, 0x10, 0x00]) + bytes(56))
    pci = PciConfig(config)
    pci.set_intx_disabled(True)
    assert pci.read16(4) == 0x0107 | PCI_COMMAND_INTX_DISABLE
    pci.set_intx_disabled(False)
    assert pci.read16(4) == 0x0107
    assert config.read_bytes()[:4] == bytes([0xF4, 0x1A, 0x10, 0x11])


def test_pci_config_short_read_is_an_error_naming_the_file(tmp_path):
    from mmiotk.pci import PciConfig

    (tmp_path / "config").write_bytes(bytes(4))
    with pytest.raises(MmioError, match="config: short read"):
        PciConfig(tmp_path / "config").read16(4)
