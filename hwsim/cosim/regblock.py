"""SystemRDL → PeakRDL-regblock SystemVerilog, for designs whose registers come from an RDL file.

`generate` compiles the RDL with systemrdl-compiler and exports a register block with the chosen CPU
interface (flattened ports, `s_<bus>_*`), reusing an earlier export when nothing that goes into it
changed. The output is SystemVerilog with unpacked structs: build it with Verilator (Icarus 11 cannot
compile it).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .runner import _locked

CPUIFS = ("apb3", "apb4", "axi4-lite", "avalon-mm", "wishbone")


def _cpuif_class(cpuif: str) -> Any:
    from peakrdl_regblock.cpuif.apb3 import APB3_Cpuif_flattened
    from peakrdl_regblock.cpuif.apb4 import APB4_Cpuif_flattened
    from peakrdl_regblock.cpuif.avalon import Avalon_Cpuif_flattened
    from peakrdl_regblock.cpuif.axi4lite import AXI4Lite_Cpuif_flattened
    from peakrdl_regblock.cpuif.wishbone import Wishbone_Cpuif_flattened

    classes = {"apb3": APB3_Cpuif_flattened, "apb4": APB4_Cpuif_flattened, "axi4-lite": AXI4Lite_Cpuif_flattened,
               "avalon-mm": Avalon_Cpuif_flattened, "wishbone": Wishbone_Cpuif_flattened}
    if cpuif not in classes:
        raise ValueError(f"cpuif {cpuif!r}: PeakRDL-regblock flattened interfaces here are {', '.join(CPUIFS)}")
    return classes[cpuif]


def generate(rdl: str | Path | Sequence[str | Path], out_dir: str | Path, *, cpuif: str = "axi4-lite",
             module_name: str | None = None, top: str | None = None, address_width: int | None = None,
             err_if_bad_addr: bool = True, err_if_bad_rw: bool = True,
             retime_read_response: bool = False) -> list[Path]:
    """Export the register block of `rdl` into `out_dir`; returns [package, module] to build in that order.

    `err_if_bad_*` make the block answer an error response (SLVERR, PSLVERR, ERR_O) for an unmapped
    address or a write to a read-only (read of a write-only) register, rather than ignoring it.
    `retime_read_response` registers the read answer (one cycle later; regblock's Avalon-MM interface
    otherwise raises readdatavalid in the cycle of the request, which cocotbext-avalon does not expect).
    """
    files = [Path(rdl)] if isinstance(rdl, (str, Path)) else [Path(f) for f in rdl]
    out = Path(out_dir)
    settings = {"cpuif": cpuif, "module": module_name, "top": top, "address_width": address_width,
                "bad_addr": err_if_bad_addr, "bad_rw": err_if_bad_rw, "retime": retime_read_response,
                "rdl": [hashlib.sha1(f.read_bytes()).hexdigest() for f in files]}
    cls = _cpuif_class(cpuif)
    with _locked(out):
        stamp = out / "regblock.stamp"
        listing = out / "regblock.files"
        if stamp.exists() and stamp.read_text() == json.dumps(settings) and listing.exists():
            return [out / name for name in listing.read_text().split()]
        from peakrdl_regblock import RegblockExporter
        from peakrdl_regblock.udps import ALL_UDPS
        from systemrdl import RDLCompiler

        compiler = RDLCompiler()
        for udp in ALL_UDPS:
            compiler.register_udp(udp)
        for f in files:
            compiler.compile_file(str(f))
        root = compiler.elaborate(top_def_name=top)
        name = module_name or root.top.inst_name
        options: dict[str, Any] = {"cpuif_cls": cls, "module_name": name, "package_name": f"{name}_pkg",
                                   "err_if_bad_addr": err_if_bad_addr, "err_if_bad_rw": err_if_bad_rw,
                                   "retime_read_response": retime_read_response}
        if address_width is not None:
            options["address_width"] = address_width
        RegblockExporter().export(root, str(out), **options)
        names = [f"{name}_pkg.sv", f"{name}.sv"]
        listing.write_text(" ".join(names))
        stamp.write_text(json.dumps(settings))
    return [out / n for n in names]
