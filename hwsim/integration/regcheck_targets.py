"""`mmiotk regcheck` on the simulated targets: QEMU's device models through qtest (`--qemu virt`) and the
user's RTL under cocotb (`--rtl SOURCES --top TOP --master PATH --bus KIND`).

Registered in the entry-point group `mmiotk.regcheck_targets` (see mmiotk.regcheck_targets); QEMU, the
simulators and cocotb are imported only when the target is chosen, so every other `mmiotk` command stays
quick. The QEMU target checks the block in this process through a QemuSpace. The RTL target builds the
design with hwsim.cosim.runner (Verilator by default: PeakRDL-regblock's SystemVerilog needs it) and runs
`hwsim.integration.regcheck_cocotb` in the simulator, which resets the design, runs `check_block` through
the bridge on a SimSpace over the test bench's HDL master, and writes the disagreements to a JSON file
read back here.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from mmiotk.errors import MmioError
from mmiotk.regcheck_targets import RegcheckJob, RegcheckResult, RegcheckUsageError, check_in
from mmiotk.regmap.regcheck import Mismatch

JOB_ENV = "MMIOTK_REGCHECK_JOB"
"""The environment variable that hands the job (JSON) to the cocotb module in the simulator."""
BUS_MASTERS = {"axi4-lite": "hwsim_axil_master.v", "apb4": "hwsim_apb_master.v", "apb3": "hwsim_apb_master.v",
               "wishbone": "hwsim_wb_master.v", "avalon": "hwsim_avmm_master.v"}
"""`--bus` kinds and the HDL master of hwsim/cosim/hdl the test bench instantiates for each."""


class QemuTarget:
    """A register block of QEMU's `-M virt` (qemu-system-aarch64, TCG, vCPU stopped) reached through qtest."""

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--qemu", choices=("virt",), metavar="MACHINE",
                           help="QEMU's device models through qtest, on its one machine so far, `virt` "
                                "(qemu-system-aarch64 -M virt: its PL011 at 0x09000000, virtio-mmio slots from "
                                "0x0a000000 with a virtio-blk in slot 31, ...); the block at --base (default: "
                                "the map's)")
        group.add_argument("--qemu-arg", action="append", default=[], metavar="ARG",
                           help="with --qemu: one more QEMU argument, e.g. --qemu-arg=-device "
                                "--qemu-arg=virtio-rng-device (repeat as needed)")

    def chosen(self, args: argparse.Namespace) -> bool:
        return args.qemu is not None

    def run(self, args: argparse.Namespace, job: RegcheckJob) -> RegcheckResult:
        from hwsim.qemu import QemuSpace

        with QemuSpace(extra_args=tuple(args.qemu_arg)) as space:
            return check_in(space, job, job.address(), f"qemu {args.qemu}")


class RtlTarget:
    """The user's RTL under cocotb: a test bench (TOP) whose HDL master (PATH) drives the block's bus."""

    def add_arguments(self, group: argparse._ArgumentGroup) -> None:
        group.add_argument("--rtl", nargs="+", metavar="SOURCE",
                           help="RTL under cocotb: the design's and test bench's .v/.sv files (the HDL master of "
                                "--bus is added); with --top, --master, --bus")
        group.add_argument("--top", metavar="MODULE", help="with --rtl: the test bench's top-level module")
        group.add_argument("--master", metavar="PATH",
                           help="with --rtl: the HDL master instance under the top (e.g. m_axil or h.m_axil)")
        group.add_argument("--bus", choices=sorted(BUS_MASTERS), default="axi4-lite",
                           help="with --rtl: the master's bus (default axi4-lite)")
        group.add_argument("--sim", choices=("verilator", "icarus"), default="verilator",
                           help="with --rtl: the simulator (default verilator)")
        reset = group.add_mutually_exclusive_group()
        reset.add_argument("--reset", metavar="SIGNAL", help="with --rtl: an active-high reset to pulse first")
        reset.add_argument("--reset-n", metavar="SIGNAL", help="with --rtl: an active-low reset to pulse first")
        group.add_argument("--include", action="append", default=[], metavar="DIR",
                           help="with --rtl: an include directory (repeat as needed)")
        group.add_argument("--sim-timeout", type=float, default=600.0, metavar="SECONDS",
                           help="with --rtl: wall-clock limit of the simulation run (default 600)")

    def chosen(self, args: argparse.Namespace) -> bool:
        return args.rtl is not None

    def run(self, args: argparse.Namespace, job: RegcheckJob) -> RegcheckResult:
        missing = [opt for opt, value in (("--top", args.top), ("--master", args.master)) if not value]
        if missing:
            raise RegcheckUsageError(f"--rtl needs {' and '.join(missing)}")
        from hwsim.cosim import runner

        sources = [Path(s) for s in args.rtl]
        for source in sources:
            if not source.is_file():
                raise MmioError(f"--rtl {source}: no such file")
        master = runner.hdl_source(BUS_MASTERS[args.bus])
        if master.name not in {s.name for s in sources}:
            sources.append(master)
        built = runner.build(args.sim, sources, args.top, includes=args.include)
        reset = ({"signal": args.reset, "active": 1} if args.reset else
                 {"signal": args.reset_n, "active": 0} if args.reset_n else None)
        with tempfile.TemporaryDirectory(prefix="mmiotk-regcheck-") as tmp:
            out = Path(tmp) / "mismatches.json"
            spec = {"map": os.path.abspath(job.map_path), "strict": job.strict, "block": job.block,
                    "base": job.address(), "size": job.size, "master": args.master, "bus": args.bus,
                    "reset": reset, "out": str(out)}
            results = runner.run(built, "hwsim.integration.regcheck_cocotb", test_dir=Path(tmp) / "run",
                                 extra_env={JOB_ENV: json.dumps(spec)}, timeout=args.sim_timeout)
            failed = [r for r in results.values() if not r.passed]
            if failed or not out.exists():
                detail = failed[0].message if failed else "no report written"
                raise MmioError(f"regcheck in the {args.sim} simulation of {args.top} did not finish: {detail}")
            found = json.loads(out.read_text())
        where = f"rtl {args.top} ({args.sim}) {args.master} @ {job.address():#x}"
        return RegcheckResult(where, [Mismatch(**m) for m in found])
