"""Interrupts: the mock line (thread-safe trigger, ack/mask semantics, timeouts, revocation) and UIO's
read/write protocol against stand-ins for /dev/uioX (a socketpair and a FIFO)."""

from __future__ import annotations

import os
import socket
import struct
import threading
from collections.abc import Iterator

import pytest

from mmiotk.errors import MmioError, MmioValueError, RevokedError
from mmiotk.irq import (
    Interrupt,
    IrqTimeoutError,
    MockInterrupt,
    MockInterruptController,
    UioInterrupt,
    irq_factory_for,
)
from mmiotk.uio import UioSpace

EVENT = struct.Struct("=i")


@pytest.fixture
def line() -> MockInterrupt:
    return MockInterrupt("test-irq")


def test_wait_returns_events_triggered_before_it(line: MockInterrupt) -> None:
    line.trigger(3)
    assert line.wait(0) == 3
    assert line.pending == 0


def test_wait_without_any_interrupt_times_out(line: MockInterrupt) -> None:
    with pytest.raises(IrqTimeoutError, match=r"test-irq.*no interrupt within"):
        line.wait(0.01)


def test_timeout_error_is_also_a_builtin_timeout(line: MockInterrupt) -> None:
    with pytest.raises(TimeoutError):
        line.wait(0)


@pytest.mark.parametrize("timeout", [None, -1, float("inf"), float("nan"), "1", True])
def test_wait_refuses_a_missing_negative_or_infinite_timeout(line: MockInterrupt, timeout: object) -> None:
    with pytest.raises(MmioValueError, match="finite timeout"):
        line.wait(timeout)  # type: ignore[arg-type]


def test_next_interrupt_waits_for_ack_and_the_timeout_says_so(line: MockInterrupt) -> None:
    line.trigger()
    line.wait(0)
    line.trigger()
    with pytest.raises(IrqTimeoutError, match="never acked"):
        line.wait(0.01)
    line.ack()
    assert line.wait(0) == 1


def test_masked_line_holds_events_until_unmasked(line: MockInterrupt) -> None:
    line.mask()
    line.trigger(2)
    with pytest.raises(IrqTimeoutError, match="masked"):
        line.wait(0)
    line.unmask()
    assert line.wait(0) == 2


def test_trigger_from_another_thread_wakes_a_waiter(line: MockInterrupt) -> None:
    started = threading.Event()

    def fire() -> None:
        started.wait(5)
        line.trigger()

    thread = threading.Thread(target=fire)
    thread.start()
    started.set()
    try:
        assert line.wait(5) == 1
    finally:
        thread.join(5)


def test_revoke_wakes_a_blocked_waiter_with_revoked_error(line: MockInterrupt) -> None:
    errors: list[BaseException] = []
    waiting = threading.Event()

    def waiter() -> None:
        waiting.set()
        try:
            line.wait(30)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    waiting.wait(5)
    line.revoke()
    thread.join(5)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], RevokedError)


@pytest.mark.parametrize("call", ["ack", "mask", "unmask"])
def test_every_call_on_a_revoked_line_raises(line: MockInterrupt, call: str) -> None:
    line.revoke()
    with pytest.raises(RevokedError, match="test-irq"):
        getattr(line, call)()
    with pytest.raises(RevokedError):
        line.wait(0)


def test_events_on_a_revoked_line_go_nowhere(line: MockInterrupt) -> None:
    line.revoke()
    line.trigger()
    assert line.triggered == 1 and line.pending == 0


def test_trigger_refuses_a_non_positive_count(line: MockInterrupt) -> None:
    with pytest.raises(MmioValueError, match="positive"):
        line.trigger(0)


def test_controller_triggers_live_lines_by_number_and_forgets_revoked_ones() -> None:
    ctrl = MockInterruptController()
    old = ctrl(48)
    assert isinstance(old, Interrupt) and old.name == "irq48"
    old.revoke()
    new = ctrl(48)
    assert ctrl.trigger(48) == 1
    assert new.wait(0) == 1
    assert ctrl.trigger(49) == 0


def test_controller_refuses_a_negative_number() -> None:
    with pytest.raises(MmioValueError, match="interrupt number"):
        MockInterruptController()(-1)


# --- UIO -------------------------------------------------------------------------------------------
@pytest.fixture
def uio_pair() -> Iterator[tuple[UioInterrupt, socket.socket]]:
    """A UioInterrupt over one end of a socketpair; the test plays the kernel on the other end."""
    ours, kernel = socket.socketpair()
    irq = UioInterrupt(fd=ours.fileno(), name="uio0")
    ours.close()  # the interrupt holds its own duplicate
    kernel.settimeout(5)
    yield irq, kernel
    irq.close()
    kernel.close()


def test_uio_wait_reads_the_event_count_and_returns_events_since_last(
        uio_pair: tuple[UioInterrupt, socket.socket]) -> None:
    irq, kernel = uio_pair
    kernel.sendall(EVENT.pack(41))
    assert irq.wait(5) == 1
    kernel.sendall(EVENT.pack(44))
    assert irq.wait(5) == 3
    assert irq.last_count == 44


def test_uio_event_count_split_over_two_reads_is_reassembled(uio_pair: tuple[UioInterrupt, socket.socket]) -> None:
    irq, kernel = uio_pair
    data = EVENT.pack(7)
    kernel.sendall(data[:1])
    kernel.sendall(data[1:])
    assert irq.wait(5) == 1 and irq.last_count == 7


def test_uio_wait_times_out_without_an_event(uio_pair: tuple[UioInterrupt, socket.socket]) -> None:
    irq, _ = uio_pair
    with pytest.raises(IrqTimeoutError, match="uio0"):
        irq.wait(0.01)


def test_uio_ack_and_unmask_write_1_and_mask_writes_0(uio_pair: tuple[UioInterrupt, socket.socket]) -> None:
    irq, kernel = uio_pair
    irq.ack()
    irq.mask()
    irq.unmask()
    got = b""
    while len(got) < 12:
        got += kernel.recv(12 - len(got))
    assert [EVENT.unpack_from(got, i)[0] for i in (0, 4, 8)] == [1, 0, 1]


def test_uio_device_closing_is_an_error_not_a_hang(uio_pair: tuple[UioInterrupt, socket.socket]) -> None:
    irq, kernel = uio_pair
    kernel.close()
    with pytest.raises(Exception, match=r"closed|error"):
        irq.wait(5)


def test_uio_revoke_wakes_a_blocked_waiter(uio_pair: tuple[UioInterrupt, socket.socket]) -> None:
    irq, _ = uio_pair
    errors: list[BaseException] = []
    waiting = threading.Event()

    def waiter() -> None:
        waiting.set()
        try:
            irq.wait(30)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=waiter)
    thread.start()
    waiting.wait(5)
    irq.revoke()
    thread.join(5)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], RevokedError)
    with pytest.raises(RevokedError):
        irq.ack()


def test_uio_by_path_reads_events_and_writes_acks_through_the_node(tmp_path: os.PathLike[str]) -> None:
    node = os.path.join(tmp_path, "uio0")
    os.mkfifo(node)
    kernel = os.open(node, os.O_RDWR | os.O_NONBLOCK)
    irq = UioInterrupt(node)
    try:
        os.write(kernel, EVENT.pack(5))
        assert irq.wait(5) == 1
        irq.ack()
        assert EVENT.unpack(os.read(kernel, 4))[0] == 1
        with pytest.raises(IrqTimeoutError):
            irq.wait(0.01)
    finally:
        irq.close()
        os.close(kernel)


def test_uio_missing_node_is_a_clear_error(tmp_path: os.PathLike[str]) -> None:
    with pytest.raises(Exception, match=r"cannot open .*uio9"):
        UioInterrupt(os.path.join(tmp_path, "uio9"))


def test_uio_needs_a_path_or_an_fd() -> None:
    with pytest.raises(MmioValueError, match=r"a path .* or an fd"):
        UioInterrupt()


def test_triggers_from_many_threads_are_all_delivered(line: MockInterrupt) -> None:
    def fire() -> None:
        for _ in range(200):
            line.trigger()

    threads = [threading.Thread(target=fire) for _ in range(4)]
    for t in threads:
        t.start()
    seen = 0
    while seen < 800:
        seen += line.wait(5)
        line.ack()
    for t in threads:
        t.join(5)
    assert seen == 800 and line.pending == 0


# --- which interrupts a target offers ----------------------------------------------------------------
def test_a_space_that_offers_interrupts_supplies_the_factory() -> None:
    class TargetSpace:
        def irq_factory(self, number: int) -> Interrupt:
            return MockInterrupt(f"gic-{number}")

    assert irq_factory_for(TargetSpace())(7).name == "gic-7"


def test_a_uio_space_supplies_its_device_node(tmp_path: os.PathLike[str]) -> None:
    root = os.fspath(tmp_path)
    map0 = os.path.join(root, "sys", "class", "uio", "uio3", "maps", "map0")
    os.makedirs(map0)
    for name, value in (("addr", "0x10000000"), ("size", "0x1000"), ("offset", "0")):
        with open(os.path.join(map0, name), "w") as f:
            f.write(value)
    os.makedirs(os.path.join(root, "dev"))
    os.mkfifo(os.path.join(root, "dev", "uio3"))
    space = UioSpace("uio3", sysfs_root=os.path.join(root, "sys"), dev_root=os.path.join(root, "dev"))
    irq = irq_factory_for(space)(42)
    try:
        assert isinstance(irq, UioInterrupt) and irq.name == "uio3.irq42"
        assert irq.path == os.path.join(root, "dev", "uio3")
    finally:
        irq.revoke()


def test_other_spaces_get_mock_lines() -> None:
    assert isinstance(irq_factory_for(object()), MockInterruptController)


def test_uio_without_irqcontrol_acks_through_pci_config(tmp_path, monkeypatch) -> None:
    """uio_pci_generic answers write(1) with ENOSYS; ack/unmask then clear INTx-disable, mask sets it."""
    import errno

    from mmiotk import irq as irq_module
    from mmiotk.pci import PCI_COMMAND_INTX_DISABLE, PciConfig

    config = tmp_path / "config"
    config.write_bytes(bytes(4) + (0x0403).to_bytes(2, "little") + bytes(58))  # INTx-disable set by the kernel
    ours, kernel = socket.socketpair()
    line = UioInterrupt(fd=ours.fileno(), name="uio0", pci_config=PciConfig(config))
    ours.close()
    real_write = os.write

    def enosys(fd: int, data: bytes) -> int:
        if fd == line._fd:
            raise OSError(errno.ENOSYS, "Function not implemented")
        return real_write(fd, data)

    monkeypatch.setattr(irq_module.os, "write", enosys)
    try:
        line.ack()
        assert line.through_config
        assert PciConfig(config).read16(4) == 0x0003
        line.mask()
        assert PciConfig(config).read16(4) == 0x0003 | PCI_COMMAND_INTX_DISABLE
        line.unmask()
        assert PciConfig(config).read16(4) == 0x0003
    finally:
        monkeypatch.undo()
        line.close()
        kernel.close()


def test_uio_enosys_without_pci_config_names_what_is_missing(monkeypatch) -> None:
    import errno

    from mmiotk import irq as irq_module

    ours, kernel = socket.socketpair()
    line = UioInterrupt(fd=ours.fileno(), name="uio0")
    ours.close()

    def enosys(fd: int, data: bytes) -> int:
        raise OSError(errno.ENOSYS, "Function not implemented")

    monkeypatch.setattr(irq_module.os, "write", enosys)
    try:
        with pytest.raises(MmioError, match=r"no irqcontrol .*pci_config"):
            line.ack()
    finally:
        monkeypatch.undo()
        line.close()
        kernel.close()
