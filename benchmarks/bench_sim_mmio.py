"""MMIO operations per second into the RTL block controller, per bus model, on Icarus and Verilator.

Measured in one run, on the same RTL:
  * synchronous driver code (MmioBuffer.read32/write32 through SimSpace and the greenlet bridge) with the
    HDL AXI4-Lite transactor: one Python await per whole bus transaction, clock generated in HDL;
  * the HDL transactor awaited natively from a coroutine (what the bridge costs on top);
  * the same synchronous code over cocotbext-axi's AxiLiteMaster (one await per clock inside the model);
  * the baseline: AxiLiteMaster awaited natively, as a cocotb test would do it, with the HDL clock and
    with the usual cocotb Clock driving clk (a second build, HDL_CLOCK=0);
  * the HDL transactor under that cocotb Clock (what the HDL clock is worth).
Operations alternate a 32-bit read (QueueNumMax) and a 32-bit write (QueueSel). The two HDL-transactor rows
(whose ratio is the bridge's cost) are the best of 5 alternating rounds each.

    .venv/bin/python benchmarks/bench_sim_mmio.py [--sims icarus,verilator] [--scale 1.0]

This file is also the cocotb test module the simulator imports (BENCH_OUT names its result file).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
QUEUE_SEL, QUEUE_NUM_MAX = 0x030, 0x034
ROUNDS = 5  # of the bridged and the native HDL-transactor loops, alternating

if "COCOTB_TEST_MODULES" in os.environ:  # imported by cocotb inside the simulator
    import cocotb

    from hwsim.vblk.env import REGS_BASE, REGS_SIZE, VblkEnv
    from mmiotk import CachePolicy

    def _record(name: str, ops: int, seconds: float) -> None:
        out = Path(os.environ["BENCH_OUT"])
        data = json.loads(out.read_text()) if out.exists() else {}
        data[name] = ops / seconds
        out.write_text(json.dumps(data))

    def _ops(kind: str) -> int:
        return int(float(os.environ.get(f"BENCH_OPS_{kind}", "1000")))

    def _sync_loop(regs, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n // 2):
            regs.read32(QUEUE_NUM_MAX)
            regs.write32(QUEUE_SEL, 0)
        return time.perf_counter() - start

    async def _native_loop(bus, n: int) -> float:
        start = time.perf_counter()
        for _ in range(n // 2):
            await bus.read32(REGS_BASE + QUEUE_NUM_MAX)
            await bus.write32(REGS_BASE + QUEUE_SEL, 0, 0xF)
        return time.perf_counter() - start

    @cocotb.test(timeout_time=10_000, timeout_unit="ms")
    async def hdl_transactor(dut):
        env = await VblkEnv.create(dut)
        regs = env.resource.create_region(REGS_BASE, REGS_SIZE, "vblk").map(CachePolicy.UNCACHED)
        n = _ops("FAST")
        queue_max = await env.hdl_bus.read32(REGS_BASE + QUEUE_NUM_MAX)
        assert queue_max > 0 and await env.run(regs.read32, QUEUE_NUM_MAX) == queue_max
        sync = native = float("inf")
        for _ in range(ROUNDS):  # interleaved, best of each: a single pair moved by ±15% on the 2-CPU VM
            sync = min(sync, await env.run(_sync_loop, regs, n))
            native = min(native, await _native_loop(env.hdl_bus, n))
        _record("sync_hdl", n, sync)
        _record("native_hdl", n, native)
        env.close()

    @cocotb.test(timeout_time=10_000, timeout_unit="ms")
    async def cocotbext_axi(dut):
        env = await VblkEnv.create(dut)
        regs = env.resource.create_region(REGS_BASE, REGS_SIZE, "vblk").map(CachePolicy.UNCACHED)
        bus = env.use_axi_master()
        n = _ops("SLOW")
        queue_max = await bus.read(REGS_BASE + QUEUE_NUM_MAX, 4)
        assert queue_max > 0 and await env.run(regs.read32, QUEUE_NUM_MAX) == queue_max
        _record("sync_axi", n, await env.run(_sync_loop, regs, n))
        start = time.perf_counter()
        for _ in range(n // 2):
            await bus.master.read_dword(QUEUE_NUM_MAX)
            await bus.master.write_dword(QUEUE_SEL, 0)
        _record("native_axi", n, time.perf_counter() - start)
        env.close()

    @cocotb.test(timeout_time=10_000, timeout_unit="ms")
    async def cocotb_clock(dut):
        """Only on the HDL_CLOCK=0 build: clk comes from cocotb's Clock (its default implementation)."""
        from cocotb.clock import Clock

        Clock(dut.clk, 10, "ns").start()
        env = await VblkEnv.create(dut)
        n = _ops("SLOW")
        start = time.perf_counter()
        for _ in range(n // 2):
            await env.hdl_bus.read32(REGS_BASE + QUEUE_NUM_MAX)
            await env.hdl_bus.write32(REGS_BASE + QUEUE_SEL, 0, 0xF)
        _record("native_hdl_pyclock", n, time.perf_counter() - start)
        bus = env.use_axi_master()
        start = time.perf_counter()
        for _ in range(n // 2):
            await bus.master.read_dword(QUEUE_NUM_MAX)
            await bus.master.write_dword(QUEUE_SEL, 0)
        _record("native_axi_pyclock", n, time.perf_counter() - start)
        env.close()


ROWS = [
    ("sync_hdl", "sync API -> SimSpace -> bridge -> HDL transactor"),
    ("native_hdl", "HDL transactor, awaited natively (no bridge)"),
    ("sync_axi", "sync API -> SimSpace -> bridge -> cocotbext-axi"),
    ("native_axi", "cocotbext-axi AxiLiteMaster, native (baseline)"),
    ("native_axi_pyclock", "  same, clk from a cocotb Clock (usual set-up)"),
    ("native_hdl_pyclock", "HDL transactor, clk from a cocotb Clock"),
]


def measure(sim: str, scale: float) -> dict[str, float]:
    from hwsim.cosim import runner
    from hwsim.vblk import simbuild

    fast = {"icarus": 20_000, "verilator": 60_000}[sim] * scale
    slow = {"icarus": 1_000, "verilator": 4_000}[sim] * scale
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="bench-mmio-") as tmp:
        out = Path(tmp) / "results.json"
        env = {"BENCH_OUT": str(out), "BENCH_OPS_FAST": str(int(fast)), "BENCH_OPS_SLOW": str(int(slow))}
        for params, cases in (({}, ["hdl_transactor", "cocotbext_axi"]), ({"HDL_CLOCK": 0}, ["cocotb_clock"])):
            built = simbuild.build(sim, parameters=params)
            results = runner.run(built, "bench_sim_mmio", test_dir=Path(tmp) / str(len(params)), testcase=cases,
                                 module_dir=Path(__file__).parent, extra_env=env)
            failed = [name for name, r in results.items() if not r.passed]
            if failed or not results:
                raise SystemExit(f"{sim}: benchmark cases failed: {failed or 'none ran'}")
        return dict(json.loads(out.read_text()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", default="icarus,verilator")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the operation counts")
    args = parser.parse_args()
    sims = args.sims.split(",")
    data = {sim: measure(sim, args.scale) for sim in sims}
    width = max(len(label) for _, label in ROWS)
    print(f"\nMMIO ops/s into the RTL (alternating 32-bit read and write), {time.strftime('%Y-%m-%d')}")
    print(f"{'':{width}}  " + "  ".join(f"{sim:>12}" for sim in sims))
    for key, label in ROWS:
        print(f"{label:{width}}  " + "  ".join(f"{data[sim][key]:12,.0f}" for sim in sims))
    print(f"{'ratio: sync API+HDL / baseline':{width}}  "
          + "  ".join(f"{data[sim]['sync_hdl'] / data[sim]['native_axi']:11.1f}x" for sim in sims))
    print(f"{'ratio: sync API+HDL / usual set-up':{width}}  "
          + "  ".join(f"{data[sim]['sync_hdl'] / data[sim]['native_axi_pyclock']:11.1f}x" for sim in sims))
    print(f"{'bridge cost (sync / native, HDL bus)':{width}}  "
          + "  ".join(f"{data[sim]['sync_hdl'] / data[sim]['native_hdl']:12.2f}" for sim in sims))


if __name__ == "__main__":
    main()
