"""A synchronous driver for dmacopy, written against mmiotk only: registers by name from the same RDL file
the RTL was generated from, buffers from a DmaPool, completion by interrupt (or by polling STATUS)."""

from __future__ import annotations

from pathlib import Path

from mmiotk import DmaBuffer, Interrupt, MmioBuffer, MmioError, regmap

RDL = Path(__file__).resolve().parent / "rtl" / "dmacopy_regs.rdl"


class DmaCopyError(MmioError):
    """The engine refused or failed a copy (STATUS.ERR)."""


class DmaCopy:
    def __init__(self, regs: MmioBuffer, irq: Interrupt | None = None) -> None:
        self.regs = regmap.load(RDL).bind(regs)
        self.irq = irq
        if int(self.regs.IDENT.read().ID) != 0x444D_4131:
            raise DmaCopyError(f"no dmacopy engine here (IDENT {int(self.regs.IDENT.read().ID):#x})")
        self.regs.CTRL.write(IRQ_EN=1 if irq is not None else 0)

    def start(self, dst: DmaBuffer, src: DmaBuffer, nbytes: int | None = None) -> None:
        n = src.nbytes if nbytes is None else nbytes
        if n > min(src.nbytes, dst.nbytes):
            raise ValueError(f"copy of {n} bytes: the buffers hold {src.nbytes} and {dst.nbytes}")
        r = self.regs
        r.SRC_LO.write(ADDR=src.dma_addr & 0xFFFF_FFFF)
        r.SRC_HI.write(ADDR=src.dma_addr >> 32)
        r.DST_LO.write(ADDR=dst.dma_addr & 0xFFFF_FFFF)
        r.DST_HI.write(ADDR=dst.dma_addr >> 32)
        r.LEN.write(BYTES=n)
        r.CMD.write(GO=1)

    def wait(self, timeout: float = 1e-3) -> None:
        """Until the copy is done: the interrupt, else STATUS.DONE polled. Raises DmaCopyError on ERR."""
        if self.irq is not None:
            self.irq.wait(timeout)
        else:
            while not self.regs.STATUS.read().DONE:
                pass
        status = self.regs.STATUS.read()
        self.regs.STATUS.write(DONE=1, ERR=1)          # W1C: acknowledge (the interrupt line drops)
        if status.ERR:
            raise DmaCopyError("dmacopy: the copy failed (an error response, or a misaligned request)")

    def copy(self, dst: DmaBuffer, src: DmaBuffer, nbytes: int | None = None, timeout: float = 1e-3) -> None:
        self.start(dst, src, nbytes)
        self.wait(timeout)
