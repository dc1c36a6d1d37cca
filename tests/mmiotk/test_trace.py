"""Tracing: what is recorded, decoding, export, lanes restored, and record/replay as a mock."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mmiotk import CachePolicy, MmioResource, RamSpace, RevokedError
from mmiotk.fake import FakeDevice
from mmiotk.mock import MockMmio
from mmiotk.regmap import load
from mmiotk.trace import Trace, TraceRecord

DATA = Path(__file__).parent / "data"
UART_MAP = load(DATA / "uart.yaml")


def ram_buffer(size: int = 0x1000):
    ram = RamSpace(max(size, 0x1000))
    return MmioResource(ram, 0, ram.size).create_region(0, size, "uart0").map(CachePolicy.UNCACHED_DEVICE)


class UartDriver:
    """A small driver written once against the register map's handle API."""

    def __init__(self, buffer):
        self.regs = UART_MAP.bind(buffer)

    def start(self, parity: str = "EVEN") -> None:
        self.regs.CTRL.write(EN=0)
        self.regs.LINECTRL.modify(PARITY=parity, STOPBITS=1)
        self.regs.BAUD.write(0x1A1)
        self.regs.CTRL.modify(EN=1, RXIE=1)

    def poll(self) -> list[int]:
        """Drain the receive FIFO, acknowledge RX, return what arrived."""
        got = []
        while self.regs.STATUS.read().RXNE:
            got.append(self.regs.DATA.read().BYTE)
        if self.regs.INTSTAT.read().RX:
            self.regs.INTSTAT.clear("RX")
        return got


def uart_fake() -> FakeDevice:
    """A behavioural UART: bytes queued with `feed` show up in DATA while STATUS.RXNE says so."""
    fake = FakeDevice(UART_MAP)
    fifo: list[int] = []
    fake.fifo = fifo  # type: ignore[attr-defined]

    def status(dev, value):
        return value._replace(RXNE=1 if fifo else 0, LEVEL=len(fifo))

    def data(dev, value):
        return fifo.pop(0) if fifo else 0

    fake.on_read("STATUS", status)
    fake.on_read("DATA", data)
    return fake


def test_trace_records_kind_offset_width_value_time():
    buf = ram_buffer(0x100)
    with buf.trace() as trace:
        buf.write32(0x4, 0x5)
        buf.read32(0x4)
        buf.write8(0x18, 0xA1)
        buf.read16(0x18)
        buf.write64(0x20, 1 << 40)
        buf.read64(0x20)
    kinds = [(a.kind, a.offset, a.width, a.value) for a in trace.accesses]
    assert kinds == [("write", 0x4, 32, 5), ("read", 0x4, 32, 5), ("write", 0x18, 8, 0xA1), ("read", 0x18, 16, 0xA1),
                     ("write", 0x20, 64, 1 << 40), ("read", 0x20, 64, 1 << 40)]
    times = [a.time_ns for a in trace]
    assert times == sorted(times) and all(t >= 0 for t in times) and trace[1].time >= 0
    assert len(trace) == 6 and trace.reads[0].offset == 4 and len(trace.writes) == 3


def test_tracing_costs_nothing_outside_the_context():
    buf = ram_buffer(0x100)
    lanes = buf.lanes
    with buf.trace():
        assert buf.lanes != lanes and "read_block" in buf.__dict__
    assert buf.lanes == lanes and all(a is b for a, b in zip(buf.lanes, lanes, strict=True))
    assert "read_block" not in buf.__dict__ and "write_block" not in buf.__dict__
    with pytest.raises(ZeroDivisionError), buf.trace():
        1 / 0  # noqa: B018
    assert all(a is b for a, b in zip(buf.lanes, lanes, strict=True))


def test_nested_traces_each_see_their_span_and_revocation_ends_the_recording():
    buf = ram_buffer(0x100)
    with buf.trace() as outer:
        buf.write32(0, 1)
        with buf.trace() as inner:
            buf.write32(4, 2)
        buf.write32(8, 3)
    assert [a.offset for a in outer] == [0, 4, 8] and [a.offset for a in inner] == [4]
    with buf.trace() as t:
        buf.write32(0, 1)
        buf.region.revoke()
        with pytest.raises(RevokedError):
            buf.read32(0)
    assert len(t) == 1
    with pytest.raises(RevokedError):
        buf.read32(0)


def test_accesses_are_decoded_with_the_register_and_field_names_of_a_map():
    buf = ram_buffer(0x100)
    drv = UartDriver(buf)
    with buf.trace(UART_MAP) as trace:
        drv.start()
    names = [a.register for a in trace]
    assert names == ["UART0.CTRL", "UART0.LINECTRL", "UART0.LINECTRL", "UART0.BAUD", "UART0.CTRL", "UART0.CTRL"]
    assert trace[2].fields["PARITY"].name == "EVEN" and trace[2].fields["STOPBITS"] == 1
    text = trace.to_text()
    assert "write32 0x0004 <- 0x00000006  UART0.LINECTRL PARITY=EVEN STOPBITS=1" in text
    assert "write16 0x0018 <- 0x01a1  UART0.BAUD" in text
    # a bound block (offsets from its base) or a block class decode too
    big = ram_buffer(0x200)
    block = UART_MAP.bind(big, offset=0x100)
    with big.trace(block) as t2:
        block.SCRATCH[2].write(7)
    assert t2[0].register == "UART0.SCRATCH[2]" and t2[0].offset == 0x128
    with buf.trace(UART_MAP.block_class()) as t3:
        buf.read32(0x8)
    assert t3[0].register == "UART0.STATUS"
    with pytest.raises(TypeError, match="not a RegisterMap"), buf.trace(42):
        pass


def test_block_ops_are_recorded():
    buf = ram_buffer(0x100)
    with buf.trace() as trace:
        buf.write_block(0x40, b"hello")
        assert buf.read_block(0x40, 5) == b"hello"
    assert [(a.kind, a.offset, a.width, a.value) for a in trace] == [
        ("write_block", 0x40, 40, b"hello"), ("read_block", 0x40, 40, b"hello")]
    assert "write_block 0x0040 <- 5 bytes 68656c6c6f" in trace.to_text()


def test_a_saved_trace_loads_back_equal_and_a_bad_line_is_named(tmp_path):
    buf = ram_buffer(0x100)
    with buf.trace(UART_MAP) as trace:
        UartDriver(buf).start()
        buf.write_block(0x40, b"\x00\xff")
    path = tmp_path / "start.jsonl"
    trace.save(path)
    lines = path.read_text().splitlines()
    assert json.loads(lines[0]) == {"mmiotk_trace": 1, "name": "uart0", "size": 0x100}
    first = json.loads(lines[1])
    assert first == {"kind": "write", "offset": 0, "width": 32, "value": 0, "time_ns": first["time_ns"],
                     "register": "UART0.CTRL", "fields": {"EN": 0, "RXIE": 0, "TXIE": 0, "LOOP": 0, "RESERVED": 0}}
    again = Trace.load(path)
    assert [a for a in again] == [a for a in trace] and again.size == 0x100
    assert again[2].fields["PARITY"] == "EVEN"  # enum members are saved by name
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"kind": "poke", "offset": 0, "width": 32, "value": 0}\n')
    with pytest.raises(ValueError, match=r"bad\.jsonl: trace line 1: unknown access kind 'poke'"):
        Trace.load(bad)


def test_a_recording_replays_as_a_mock_that_fails_at_the_first_changed_access():
    buf = ram_buffer(0x100)
    with buf.trace(UART_MAP) as trace:
        UartDriver(buf).start()
    mock = MockMmio.from_trace(trace)
    UartDriver(mock.buffer).start()
    mock.verify()
    # a driver that changed behaviour fails at the first differing access
    mock = MockMmio.from_trace(trace)
    with pytest.raises(AssertionError, match=r"wrong value: got write32 0x4 <- 0x5, expected write32 0x4 <- 0x6 "
                                             r"\[UART0\.LINECTRL\]"):
        UartDriver(mock.buffer).start(parity="ODD")


def test_a_recording_saved_to_a_file_replays_the_same_driver_run(tmp_path):
    fake = uart_fake()
    driver = UartDriver(fake.buffer)
    fake.fifo += [0x41, 0x42]
    fake.poke("INTSTAT", RX=1)
    with fake.buffer.trace(UART_MAP) as trace:
        driver.start()
        assert driver.poll() == [0x41, 0x42]
    assert fake.peek("INTSTAT").RX == 0
    path = tmp_path / "uart.jsonl"
    trace.save(path)
    # the millisecond unit test: the same driver code against the recording
    mock = MockMmio.from_trace(path)
    replayed = UartDriver(mock.buffer)
    replayed.start()
    assert replayed.poll() == [0x41, 0x42]
    mock.verify()
    assert isinstance(trace[0], TraceRecord)


def test_an_unordered_replay_accepts_registers_in_another_order():
    buf = ram_buffer(0x100)
    with buf.trace() as trace:
        buf.write32(0x0, 1)
        buf.write32(0x4, 2)
    mock = MockMmio.from_trace(trace, ordered=False)
    mock.buffer.write32(0x4, 2)
    mock.buffer.write32(0x0, 1)
    mock.verify()
