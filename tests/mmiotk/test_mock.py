"""MockMmio: expectations checked at the call site, ordered and per-register modes, verify(), the plugin."""

from __future__ import annotations

import pytest

from mmiotk import AccessError, MmioBuffer, OutOfRangeError, RevokedError
from mmiotk.mock import ANY, CallbackSpace, MockMmio
from mmiotk.registers import RC, RO, W1C, WO, Field, Register, RegisterBlock

pytest_plugins = ["pytester"]


class Uart(RegisterBlock, name="UART0"):
    CTRL = Register(0x0, fields=[Field("EN", 0), Field("MODE", (2, 1)), Field("IRQ", 8, access=W1C)])
    STATUS = Register(0x4, access=RO, fields=[Field("RXNE", 0), Field("LEVEL", (15, 8))])
    DATA = Register(0x8, access=WO)
    ERR = Register(0xC, access=RC)
    WIDE = Register(0x10, width=64)
    HALF = Register(0x18, width=16)
    BYTE = Register(0x1A, width=8)


def test_buffer_is_a_real_mmio_buffer_made_through_the_core():
    mock = MockMmio(0x100)
    assert isinstance(mock.buffer, MmioBuffer) and isinstance(mock.space, CallbackSpace)
    assert mock.buffer.size == 0x100 and mock.buffer._space is mock.space
    assert "mock" in mock.buffer.mechanism
    with pytest.raises(OutOfRangeError):  # the core's own checks still apply, before the mock sees anything
        mock.buffer.read32(0x100)
    assert mock.accesses == []


def test_reads_return_values_and_writes_are_checked_in_order():
    mock = MockMmio()
    mock.expect_read8(0x1A, 0x5A)
    mock.expect_read16(0x18, 0x1234)
    mock.expect_read32(0x4, 0x0301)
    mock.expect_read64(0x10, 1 << 40)
    mock.expect_write8(0x1A, 1)
    mock.expect_write16(0x18, 2)
    mock.expect_write32(0x0, 3)
    mock.expect_write64(0x10, 4)
    buf = mock.buffer
    assert buf.read8(0x1A) == 0x5A and buf.read16(0x18) == 0x1234
    assert buf.read32(0x4) == 0x0301 and buf.read64(0x10) == 1 << 40
    buf.write8(0x1A, 1)
    buf.write16(0x18, 2)
    buf.write32(0x0, 3)
    buf.write64(0x10, 4)
    mock.verify()


@pytest.mark.parametrize(("call", "message"), [
    (lambda b: b.read32(0x8), r"wrong offset: got read32 0x8, expected write32 0x0 <- 0x1"),
    (lambda b: b.write16(0x0, 1), r"wrong width: got write16 0x0 <- 0x1, expected write32 0x0 <- 0x1"),
    (lambda b: b.write32(0x0, 2), r"wrong value: got write32 0x0 <- 0x2, expected write32 0x0 <- 0x1"),
    (lambda b: b.read32(0x0), r"wrong kind: got read32 0x0, expected write32 0x0 <- 0x1"),
])
def test_wrong_access_fails_at_the_call_site(call, message):
    mock = MockMmio()
    mock.expect_write32(0x0, 1)
    with pytest.raises(AssertionError, match=message) as info:
        call(mock.buffer)
    assert "test_mock.py" in str(info.value)  # where the expectation was declared
    # a failure swallowed by driver code still fails verify()
    with pytest.raises(AssertionError, match=r"1 access\(es\) failed"):
        mock.verify()


def test_an_unexpected_access_fails_and_verify_lists_what_never_happened():
    mock = MockMmio()
    with pytest.raises(AssertionError, match="unexpected read32 0x4: no more accesses were expected"):
        mock.buffer.read32(0x4)
    mock.reset()
    mock.expect_write32(0x0, 1)
    mock.expect_read32(0x4, 7, times=2)
    mock.buffer.write32(0x0, 1)
    mock.buffer.read32(0x4)
    with pytest.raises(AssertionError,
                       match=r"(?s)1 expected access\(es\) never happened:\n  read32 0x4 -> 0x7 x1 more"):
        mock.verify()
    mock.buffer.read32(0x4)
    mock.verify()
    assert mock.pending == []


def test_unordered_mock_lets_registers_interleave_but_keeps_each_registers_order():
    mock = MockMmio(ordered=False)
    mock.expect_write32(0x0, 1)
    mock.expect_write32(0x0, 2)
    mock.expect_read32(0x4, 9)
    buf = mock.buffer
    assert buf.read32(0x4) == 9          # another register first: fine
    buf.write32(0x0, 1)
    with pytest.raises(AssertionError, match=r"nothing expected at 0x8 \(offsets with pending expectations: 0x0\)"):
        buf.write32(0x8, 2)
    with pytest.raises(AssertionError, match="wrong value: got write32 0x0 <- 0x3, expected write32 0x0 <- 0x2"):
        buf.write32(0x0, 3)               # per register, order still holds
    buf.write32(0x0, 2)
    assert mock.pending == []


def test_any_accepts_every_value_and_a_mask_compares_only_its_bits():
    mock = MockMmio()
    mock.expect_write32(0x0, ANY)
    mock.expect_write32(0x0, 0x1, mask=0x1)
    mock.buffer.write32(0x0, 0xDEAD)
    mock.buffer.write32(0x0, 0xF1)
    with pytest.raises(AssertionError, match=r"mask 0x1"):
        mock.expect_write32(0x0, 0x1, mask=0x1)
        mock.buffer.write32(0x0, 0xF0)


def test_bad_expectations_are_refused():
    mock = MockMmio(0x20)
    with pytest.raises(ValueError, match="outside the mock"):
        mock.expect_read32(0x20, 0)
    with pytest.raises(ValueError, match="not aligned"):
        mock.expect_write32(0x2, 0)
    with pytest.raises(ValueError, match="does not fit in 8 bits"):
        mock.expect_read8(0x0, 0x100)


def test_register_expectations_take_offset_width_and_value_from_the_handle():
    mock = MockMmio()
    uart = Uart(mock.buffer)
    mock.expect_read(uart.CTRL, IRQ=1, MODE=2)           # a pending W1C bit in the read
    mock.expect_write(uart.CTRL, 0x5)                     # the exact value: EN set, IRQ written as 0
    mock.expect_read(uart.STATUS, RXNE=1, LEVEL=3)
    mock.expect_write(uart.CTRL, EN=0)                    # only the named field is compared
    mock.expect_write(uart.DATA)                          # any value
    uart.CTRL.modify(EN=1)
    status = uart.STATUS.read()
    assert status.RXNE == 1 and status.LEVEL == 3
    uart.CTRL.write(MODE=3)
    uart.DATA.write(0x1234)
    mock.verify()
    assert mock.pending == []


def test_refused_accesses_touch_nothing():
    mock = MockMmio()  # no expectations: any access would fail
    uart = Uart(mock.buffer)
    for call in (lambda: uart.STATUS.write(0), lambda: uart.STATUS.modify(RXNE=0), lambda: uart.DATA.read(),
                 lambda: uart.DATA.modify(), lambda: uart.ERR.modify(), lambda: uart.ERR.write(0),
                 lambda: uart.CTRL.clear("EN"), lambda: uart.CTRL.modify(NOPE=1)):
        with pytest.raises((AccessError, ValueError)):
            call()
    assert mock.accesses == [] and mock.failures == []
    assert "ERR" in repr(uart.ERR) and "UART0" in repr(uart) and "ERR" in str(Uart.specs())  # looking never reads
    assert mock.accesses == []


def test_dump_reads_every_register_except_rc_and_wo_ones():
    mock = MockMmio()
    uart = Uart(mock.buffer)
    for offset in (0x0, 0x4):
        mock.expect_read32(offset, 0)
    mock.expect_read64(0x10, 0)
    mock.expect_read16(0x18, 0)
    mock.expect_read8(0x1A, 0)
    dump = uart.dump()  # ERR (RC) and DATA (WO) are not read
    mock.verify()
    assert set(dump) == {"CTRL", "STATUS", "DATA", "ERR", "WIDE", "HALF", "BYTE"}


def test_block_copies_are_checked_against_their_expected_bytes():
    mock = MockMmio()
    mock.expect_write_block(0x20, b"abc")
    mock.expect_read_block(0x20, b"xyz")
    mock.buffer.write_block(0x20, b"abc")
    assert mock.buffer.read_block(0x20, 3) == b"xyz"
    mock.expect_write_block(0x20, b"abc")
    with pytest.raises(AssertionError, match="wrong value"):
        mock.buffer.write_block(0x20, b"abd")


def test_leaving_the_context_verifies_the_mock():
    with pytest.raises(AssertionError, match="never happened"), MockMmio() as mock:
        mock.expect_read32(0, 1)
    with MockMmio() as mock:
        mock.expect_read32(0, 1)
        mock.buffer.read32(0)


def test_a_revoked_mock_buffer_raises_revoked():
    mock = MockMmio()
    mock.buffer.region.revoke()
    with pytest.raises(RevokedError):
        mock.buffer.read32(0)


# --- the pytest plugin ----------------------------------------------------------------------------------
def test_plugin_fixtures_verify_at_teardown_unless_the_test_already_failed(pytester):
    pytester.makepyfile("""
        import pytest
        from mmiotk.mock import MockMmio

        def test_passes(mock_mmio):
            assert isinstance(mock_mmio, MockMmio) and mock_mmio.buffer.size == 0x1000
            mock_mmio.expect_write32(0x4, 1)
            mock_mmio.buffer.write32(0x4, 1)

        def test_unmet_fails_at_teardown(mock_mmio):
            mock_mmio.expect_write32(0x4, 1)

        def test_failing_test_is_not_buried(mock_mmio):
            mock_mmio.expect_write32(0x4, 1)
            assert False, "the test's own failure"

        @pytest.mark.mock_mmio(size=0x40, ordered=False)
        def test_marker(mock_mmio):
            assert mock_mmio.buffer.size == 0x40 and not mock_mmio.ordered

        def test_factory(mock_mmio_factory):
            a, b = mock_mmio_factory(0x10), mock_mmio_factory(0x20)
            b.expect_read32(0, 5)
            assert b.buffer.read32(0) == 5 and a.buffer.size == 0x10
    """)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4, failed=1, errors=1)
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_unmet_fails_at_teardown*",
                                 "*1 expected access(es) never happened*"])
    result.stdout.no_fnmatch_line("*ERROR at teardown of test_failing_test_is_not_buried*")
