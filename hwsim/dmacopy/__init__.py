"""dmacopy: a small DMA copy engine written for the bring-your-own-RTL example (docs/byod.md).

Registers from a SystemRDL file (rtl/dmacopy_regs.rdl) through PeakRDL-regblock, an AXI4 master port for
its copies; `simbuild` builds it under Verilator with the generic HDL AXI4-Lite master on its registers
and the generic AXI4 memory slave on its DMA port.
"""
