"""UIO on a real kernel: edu bound to uio_pci_generic, its BAR as map0, and its INTx interrupt through
UioInterrupt — which, uio_pci_generic having no irqcontrol, re-enables the line through PCI config space."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from edu_regs import EDU_ID, IRQ_ACK, IRQ_RAISE, IRQ_STATUS, edu_at_reset

from hwsim.linux.guest import pci_bind, uio_of
from hwsim.linux.machines import BACKENDS
from mmiotk import CachePolicy, MmioError, MmioResource, UioSpace
from mmiotk.cli import main
from mmiotk.irq import IrqTimeoutError, UioInterrupt, uio_irq_factory
from mmiotk.pci import PCI_COMMAND, PCI_COMMAND_INTX_DISABLE

pytestmark = pytest.mark.linux_guest(BACKENDS)



@pytest.fixture
def uio_edu(edu: str) -> Iterator[UioSpace]:
    pci_bind(edu, "uio_pci_generic")
    yield UioSpace(uio_of(edu))


@pytest.fixture
def regs(uio_edu: UioSpace):
    m = uio_edu.maps[0]
    return MmioResource(uio_edu, m.addr, m.size).create_region(m.addr, m.size, "edu").map(CachePolicy.UNCACHED_DEVICE)


@pytest.fixture
def irq(uio_edu: UioSpace) -> Iterator[UioInterrupt]:
    line = uio_irq_factory(uio_edu)(0)
    yield line
    line.close()


def test_uio_pci_generic_exposes_the_bar_as_map0(uio_edu: UioSpace, edu: str, regs) -> None:
    assert uio_edu.driver == "uio_pci_generic"
    assert uio_edu.maps[0].name == edu
    assert regs.read32(0x00) == EDU_ID


def test_regcheck_on_edu_through_uio_map0(uio_edu: UioSpace, regs, capsys: pytest.CaptureFixture[str]) -> None:
    edu_at_reset(regs)
    assert main(["regcheck", str(Path(__file__).with_name("edu.yaml")), "--uio", uio_edu.device]) == 0
    assert f"# EDU on {uio_edu.device} map0 @ {uio_edu.maps[0].addr:#x}: 6 registers checked, 0 disagreement(s)" \
        in capsys.readouterr().err


def test_interrupt_arrives_and_is_re_armed_through_config_space(uio_edu: UioSpace, regs, irq: UioInterrupt) -> None:
    config = uio_edu.pci_config
    assert config is not None
    for round_ in range(3):
        regs.write32(IRQ_RAISE, 1 << round_)
        assert irq.wait(5.0) == 1
        assert regs.read32(IRQ_STATUS) == 1 << round_
        assert config.read16(PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE  # the kernel masked the line
        regs.write32(IRQ_ACK, 1 << round_)  # the device drops its line
        irq.ack()
        assert irq.through_config  # write(1) was ENOSYS: no irqcontrol in uio_pci_generic
        assert not config.read16(PCI_COMMAND) & PCI_COMMAND_INTX_DISABLE


def test_without_ack_the_next_interrupt_stays_masked(regs, irq: UioInterrupt) -> None:
    regs.write32(IRQ_RAISE, 1)
    irq.wait(5.0)
    regs.write32(IRQ_ACK, 1)
    regs.write32(IRQ_RAISE, 2)
    with pytest.raises(IrqTimeoutError):
        irq.wait(0.3)
    irq.ack()  # the line is still high: clearing INTx-disable delivers it at once
    assert irq.wait(5.0) == 1
    regs.write32(IRQ_ACK, 2)
    irq.ack()


def test_mask_holds_an_interrupt_back_until_unmask(regs, irq: UioInterrupt) -> None:
    irq.mask()
    regs.write32(IRQ_RAISE, 4)
    with pytest.raises(IrqTimeoutError):
        irq.wait(0.3)
    irq.unmask()
    assert irq.wait(5.0) == 1
    regs.write32(IRQ_ACK, 4)
    irq.ack()


def test_without_config_space_the_enosys_is_an_error_that_says_what_is_missing(uio_edu: UioSpace, regs) -> None:
    line = UioInterrupt(uio_edu.irq_path, name="bare")
    try:
        regs.write32(IRQ_RAISE, 8)
        line.wait(5.0)
        regs.write32(IRQ_ACK, 8)
        with pytest.raises(MmioError, match=r"no irqcontrol.*pci_config"):
            line.ack()
    finally:
        line.close()
        config = uio_edu.pci_config
        assert config is not None
        config.set_intx_disabled(False)
