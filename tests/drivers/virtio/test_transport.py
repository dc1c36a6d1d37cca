"""The virtio-mmio transport and the split virtqueue, against the strict behavioural model (any register
misuse raises there) and devices that misbehave on purpose."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from drivers.virtio import VirtioError
from drivers.virtio.mmio import Feature, Status, VirtioMmio, bit
from drivers.virtio.virtqueue import DESC_F_WRITE, USED_F_NO_NOTIFY, Virtqueue, VirtqueueFull, ring_layout
from hwsim.models import ModelSpace, VirtioBlkModel
from mmiotk import CachePolicy, MmioBuffer, MmioResource, RamSpace
from mmiotk.dma import DmaPool

F_FLUSH = 9


class Device:
    """A model in its space, the register window mapped, and a DMA pool over guest RAM."""

    def __init__(self, model: VirtioBlkModel) -> None:
        self.model = model
        self.space = ModelSpace(model, ram_size=4 << 20)
        resource = MmioResource(self.space, self.space.device_base, 0x200)
        self.regs = resource.create_region(self.space.device_base, 0x200, "vblk").map(CachePolicy.UNCACHED_DEVICE)
        self.pool = DmaPool.from_space(self.space, self.space.dma_base, self.space.dma_size)

    def transport(self) -> VirtioMmio:
        return VirtioMmio(self.regs)

    def close(self) -> None:
        self.pool.close()
        self.space.close()


@pytest.fixture
def device() -> Iterator[Device]:
    d = Device(VirtioBlkModel(size=1 << 20))
    yield d
    d.close()


def ready(dev: VirtioMmio, wanted: int = 0) -> None:
    dev.reset()
    dev.regs.STATUS.write(Status.ACKNOWLEDGE | Status.DRIVER)
    dev.negotiate(wanted)


# --- identification and status -------------------------------------------------------------------------
def test_identifies_a_modern_block_device(device: Device) -> None:
    dev = device.transport()
    assert (dev.version, dev.device_id, dev.vendor_id) == (2, 2, 0x4B544D4D)


def test_a_window_without_the_magic_value_is_refused() -> None:
    with RamSpace(1 << 16, name="zeros") as ram:
        regs = MmioResource(ram, 0, 0x200).create_region(0, 0x200, "nothing").map(CachePolicy.UNCACHED)
        with pytest.raises(VirtioError, match=r"MagicValue is 0x00000000.*not a virtio-mmio device"):
            VirtioMmio(regs)


def test_an_unknown_version_is_refused_naming_it_and_a_legacy_one_is_accepted() -> None:
    with RamSpace(1 << 16, name="legacy") as ram:
        regs = MmioResource(ram, 0, 0x200).create_region(0, 0x200, "old").map(CachePolicy.UNCACHED)
        regs.write32(0x000, 0x7472_6976)
        regs.write32(0x004, 3)
        with pytest.raises(VirtioError, match=r"Version 3; Version 2 \(modern\) and 1 \(legacy\) are supported"):
            VirtioMmio(regs)
        regs.write32(0x004, 1)
        assert VirtioMmio(regs).legacy


def test_a_window_too_small_for_the_registers_is_refused() -> None:
    with RamSpace(1 << 16) as ram:
        regs = MmioResource(ram, 0, 0x80).create_region(0, 0x80, "tiny").map(CachePolicy.UNCACHED)
        with pytest.raises(VirtioError, match="at least 0x100 bytes"):
            VirtioMmio(regs)


def test_reset_clears_status_and_negotiation(device: Device) -> None:
    dev = device.transport()
    ready(dev)
    assert dev.status & Status.FEATURES_OK
    dev.reset()
    assert dev.status == 0 and dev.features == 0


class SlowReset(VirtioBlkModel):
    """Status keeps reading non-zero for `lag` reads after a reset."""

    def __init__(self, lag: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lag = 0
        self.lag_after_reset = lag

    def reset(self) -> None:
        super().reset()
        self.lag = self.lag_after_reset

    def read(self, offset: int, width: int) -> int:
        if offset == 0x70 and self.lag > 0:
            self.lag -= 1
            return Status.ACKNOWLEDGE
        return super().read(offset, width)


def test_reset_waits_until_status_reads_zero() -> None:
    d = Device(SlowReset(5, size=1 << 20))
    try:
        d.transport().reset()
        assert d.model.lag == 0
    finally:
        d.close()


def test_reset_that_never_completes_times_out_naming_the_register() -> None:
    d = Device(SlowReset(10**9, size=1 << 20))
    try:
        dev = VirtioMmio(d.regs, reset_timeout=0.05)
        with pytest.raises(VirtioError, match=r"Status did not read 0 within 0.05 s"):
            dev.reset()
    finally:
        d.close()


# --- feature negotiation -------------------------------------------------------------------------------
def test_negotiation_accepts_only_what_both_sides_want(device: Device) -> None:
    dev = device.transport()
    ready(dev, bit(F_FLUSH) | bit(Feature.RING_PACKED))
    assert dev.has(Feature.VERSION_1) and dev.has(F_FLUSH)
    assert not dev.has(Feature.RING_PACKED)  # wanted, but the model does not offer it
    assert device.model.features == dev.features


class NoVersion1(VirtioBlkModel):
    def offered_features(self) -> int:
        return super().offered_features() & ~bit(Feature.VERSION_1)


def test_a_device_without_version_1_fails_naming_the_bit() -> None:
    d = Device(NoVersion1(size=1 << 20))
    try:
        dev = d.transport()
        dev.reset()
        with pytest.raises(VirtioError, match=r"lacks required feature bits \{32\}"):
            dev.negotiate(0)
        assert dev.status & Status.FAILED
    finally:
        d.close()


class Fickle(VirtioBlkModel):
    """Offers FLUSH when asked, then refuses it at FEATURES_OK (FEATURES_OK does not stick)."""

    reads = 0

    def offered_features(self) -> int:
        self.reads += 1
        bits = super().offered_features()
        return bits if self.reads <= 2 else bits & ~bit(F_FLUSH)


def test_features_ok_that_does_not_stick_fails_the_device() -> None:
    d = Device(Fickle(size=1 << 20))
    try:
        dev = d.transport()
        dev.reset()
        with pytest.raises(VirtioError, match="FEATURES_OK did not stick"):
            dev.negotiate(bit(F_FLUSH))
        assert dev.status & Status.FAILED and not dev.status & Status.FEATURES_OK
        assert dev.features == 0
    finally:
        d.close()


# --- configuration generation --------------------------------------------------------------------------
class ChangingConfig(VirtioBlkModel):
    """ConfigGeneration changes on each of the first `changes` reads."""

    def __init__(self, changes: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.changes = changes
        self.generation_reads = 0

    def read(self, offset: int, width: int) -> int:
        if offset == 0xFC:
            self.generation_reads += 1
            if self.changes > 0:
                self.changes -= 1
                return self.generation_reads
        return super().read(offset, width)


def test_config_reads_repeat_until_the_generation_is_stable() -> None:
    d = Device(ChangingConfig(3, size=1 << 20))
    try:
        dev = d.transport()
        calls = []
        assert dev.read_config(lambda: calls.append(1) or dev.window.read32(0x100)) == 2048
        assert len(calls) == 3 and d.model.generation_reads == 6  # 1!=2, 3!=0, then 0==0
    finally:
        d.close()


def test_config_that_never_settles_raises() -> None:
    d = Device(ChangingConfig(10**6, size=1 << 20))
    try:
        dev = d.transport()
        with pytest.raises(VirtioError, match="ConfigGeneration kept changing over 5 reads"):
            dev.read_config(lambda: 0, attempts=5)
    finally:
        d.close()


# --- queue set-up ----------------------------------------------------------------------------------------
def test_queue_size_must_be_within_queue_num_max(device: Device) -> None:
    dev = device.transport()
    ready(dev)
    with pytest.raises(VirtioError, match=r"size 512 outside 1..QueueNumMax 256"):
        dev.setup_queue(0, 512, 0x4010_0000, 0x4010_1000, 0x4010_2000)


@pytest.mark.parametrize("size", [0, 3, 100, 65536])
def test_virtqueue_size_must_be_a_power_of_two(device: Device, size: int) -> None:
    dev = device.transport()
    ready(dev)
    mem = device.pool.alloc(8192, align=4096)
    with pytest.raises(VirtioError, match="must be a power of two"):
        Virtqueue(dev, 0, size, mem)


def test_ring_layout_matches_the_split_queue_sizes() -> None:
    avail, used, total = ring_layout(256)
    assert avail == 16 * 256
    assert used % 4 == 0 and used >= avail + 6 + 2 * 256
    assert total == used + 6 + 8 * 256


@pytest.fixture
def queue(device: Device) -> tuple[Device, Virtqueue]:
    dev = device.transport()
    ready(dev)
    size = 8
    vq = Virtqueue(dev, 0, size, device.pool.alloc(ring_layout(size)[2], align=4096))
    dev.driver_ok()
    return device, vq


def flush_chain(device: Device) -> list[tuple[int, int, int]]:
    """A FLUSH request: 16-byte header (type 4) and a status byte."""
    mem = device.pool.alloc(64)
    mem[:4] = np.frombuffer((4).to_bytes(4, "little"), dtype=np.uint8)
    mem[16] = 0xFF
    return [(mem.dma_addr, 16, 0), (mem.dma_addr + 16, 1, DESC_F_WRITE)]


def test_added_chains_are_published_by_one_kick_and_returned_with_their_tokens(
        queue: tuple[Device, Virtqueue]) -> None:
    device, vq = queue
    for token in ("a", "b", "c"):
        vq.add(flush_chain(device), token)
    assert vq.num_free == 2 and vq.pop_used() == []
    assert vq.kick() and vq.notifications == 1
    assert sorted(t for t, _ in vq.pop_used()) == ["a", "b", "c"]
    assert vq.num_free == 8 and vq.in_flight == 0


def test_a_chain_longer_than_the_free_list_raises_and_changes_nothing(
        queue: tuple[Device, Virtqueue]) -> None:
    device, vq = queue
    for i in range(4):
        vq.add(flush_chain(device), i)
    with pytest.raises(VirtqueueFull, match="2 descriptors needed, 0 free"):
        vq.add(flush_chain(device), "x")
    assert vq.num_free == 0 and vq.in_flight == 4


def test_kick_skips_the_doorbell_when_the_device_asks_for_no_notifications(
        queue: tuple[Device, Virtqueue]) -> None:
    device, vq = queue
    vq._used16[0] = USED_F_NO_NOTIFY  # what a busy device writes into used->flags
    vq.add(flush_chain(device), "quiet")
    assert not vq.kick() and vq.notifications == 0
    assert vq._avail[1] == 1  # still published: the device will find it when it looks
    assert not vq.kick()  # nothing new: no second publish


def test_a_used_element_naming_no_chain_in_flight_raises(queue: tuple[Device, Virtqueue]) -> None:
    device, vq = queue
    vq.add(flush_chain(device), "real")
    vq.kick()
    vq._used32[0] = 7  # corrupt the id the device returned
    with pytest.raises(VirtioError, match="returned descriptor 7, which is not the head of a chain in flight"):
        vq.pop_used()


def test_detach_all_returns_every_token_and_frees_every_descriptor(
        queue: tuple[Device, Virtqueue]) -> None:
    device, vq = queue
    vq.add(flush_chain(device), 1)
    vq.add(flush_chain(device), 2)
    assert sorted(vq.detach_all()) == [1, 2]
    assert vq.num_free == 8


def test_a_reserved_chain_goes_on_the_ring_again_and_again_and_keeps_its_descriptors(
        queue: tuple[Device, Virtqueue]) -> None:
    device, vq = queue
    hdr, status = flush_chain(device)
    chain = vq.reserve([hdr, status], 1)
    assert vq.num_free == 6 and len(chain.ids) == 2
    for round_ in range(10):  # QueueNum 8: the ring indices wrap
        vq.add_reserved(chain, status[0], 1, DESC_F_WRITE, f"r{round_}")
        assert vq.kick()
        assert vq.pop_used() == [(f"r{round_}", 1)]
        assert device.model.requests[4] == round_ + 1  # a FLUSH each time: header and links as reserved
        assert vq.num_free == 6 and vq.in_flight == 0
    vq.add(flush_chain(device), "other")  # free-list chains still work beside it
    vq.kick()
    assert vq.pop_used() == [("other", 1)]


def test_a_reserved_chain_in_flight_cannot_be_added_again(queue: tuple[Device, Virtqueue]) -> None:
    device, vq = queue
    hdr, status = flush_chain(device)
    chain = vq.reserve([hdr, status], 1)
    vq.add_reserved(chain, *status, "first")
    with pytest.raises(VirtioError, match=f"reserved chain {chain.head} is already in flight"):
        vq.add_reserved(chain, *status, "second")
    vq.kick()
    assert vq.pop_used() == [("first", 1)]


def test_reserving_more_than_is_free_raises_and_changes_nothing(queue: tuple[Device, Virtqueue]) -> None:
    device, vq = queue
    vq.reserve(flush_chain(device) * 3, 0)
    with pytest.raises(VirtqueueFull, match="cannot reserve 4 descriptors"):
        vq.reserve(flush_chain(device) * 2, 0)
    assert vq.num_free == 2


def test_detach_all_keeps_reserved_descriptors_off_the_free_list(queue: tuple[Device, Virtqueue]) -> None:
    device, vq = queue
    chain = vq.reserve(flush_chain(device), 1)
    vq.add_reserved(chain, *flush_chain(device)[1], "held")
    vq.add(flush_chain(device), "plain")
    assert sorted(vq.detach_all()) == ["held", "plain"]
    assert vq.num_free == 6 and not set(chain.ids) & set(vq._free)


def test_ring_memory_must_be_page_aligned_and_large_enough(device: Device) -> None:
    dev = device.transport()
    ready(dev)
    with pytest.raises(VirtioError, match="smaller than the"):
        Virtqueue(dev, 0, 64, device.pool.alloc(1024, align=4096))
    big = device.pool.alloc(3 * 4096, align=4096)
    with pytest.raises(VirtioError, match="not page aligned"):
        Virtqueue(dev, 0, 8, big[64:])


def test_the_transport_reaches_its_registers_through_an_mmio_buffer(device: Device) -> None:
    assert isinstance(device.transport().window, MmioBuffer)


# --- barriers where virtio puts them -------------------------------------------------------------------
class Recorder:
    """A ring view that logs each access into a shared event list."""

    def __init__(self, inner: Any, name: str, log: list[str]) -> None:
        self.inner, self.name, self.log = inner, name, log

    def __getitem__(self, i: int) -> Any:
        self.log.append(f"read {self.name}[{i}]")
        return self.inner[i]

    def __setitem__(self, i: int, value: int) -> None:
        self.log.append(f"write {self.name}[{i}]")
        self.inner[i] = value


def test_kick_orders_ring_writes_barrier_index_barrier_doorbell(
        queue: tuple[Device, Virtqueue], monkeypatch: pytest.MonkeyPatch) -> None:
    device, vq = queue
    log: list[str] = []
    import drivers.virtio.virtqueue as vqmod

    monkeypatch.setattr(vqmod.barrier, "wmb", lambda: log.append("wmb"))
    monkeypatch.setattr(vqmod.barrier, "mb", lambda: log.append("mb"))
    monkeypatch.setattr(vq, "_avail", Recorder(vq._avail, "avail", log))
    monkeypatch.setattr(vq.transport, "notify", lambda index: log.append("notify"))
    vq.add(flush_chain(device), "t")
    vq.kick()
    ring_entry, idx = "write avail[2]", "write avail[1]"  # ring[0] is at index 2 of the avail view; idx at 1
    assert log == [ring_entry, "wmb", idx, "mb", "notify"]


def test_pop_used_reads_the_index_then_a_read_barrier_then_the_entries(
        queue: tuple[Device, Virtqueue], monkeypatch: pytest.MonkeyPatch) -> None:
    device, vq = queue
    vq.add(flush_chain(device), "t")
    vq.kick()
    log: list[str] = []
    import drivers.virtio.virtqueue as vqmod

    monkeypatch.setattr(vqmod.barrier, "rmb", lambda: log.append("rmb"))
    monkeypatch.setattr(vq, "_used16", Recorder(vq._used16, "used", log))
    monkeypatch.setattr(vq, "_used32", Recorder(vq._used32, "used.ring", log))
    assert [t for t, _ in vq.pop_used()] == ["t"]
    assert log == ["read used[1]", "rmb", "read used.ring[0]", "read used.ring[1]"]
