"""4 KiB reads per second through the RTL block controller, and simulated cycles per wall-clock second,
under cocotb (synchronous driver in the greenlet bridge) and under a pure-Verilog test bench, on Icarus and
Verilator.

Both runs do the same work: initialise the device, then read 4 KiB at queue depth 1, each request one
notify, wait for the interrupt, read InterruptStatus, ACK, read Status. The cocotb run uses the test
driver (tests/hwsim/vblk/vblk_driver.py) over MmioBuffer/SimSpace; the Verilog run is tb_bench.v. For the
Verilog bench, time is taken as the difference between a short and a long run, so process start-up
cancels out.

    .venv/bin/python benchmarks/bench_sim_blockio.py [--sims icarus,verilator] [--scale 1.0]

This file is also the cocotb test module the simulator imports (BENCH_OUT names its result file).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECTORS_4K = 8

if "COCOTB_TEST_MODULES" in os.environ:  # imported by cocotb inside the simulator
    import cocotb
    from vblk_driver import MiniBlk

    from hwsim.vblk.env import REGS_BASE, REGS_SIZE, VblkEnv
    from mmiotk import CachePolicy

    @cocotb.test(timeout_time=60_000, timeout_unit="ms")
    async def reads_4k(dut):
        env = await VblkEnv.create(dut)
        regs = env.resource.create_region(REGS_BASE, REGS_SIZE, "vblk").map(CachePolicy.UNCACHED)
        drv = MiniBlk(regs, env.host, env.alloc, env.irq)
        n = int(os.environ["BENCH_REQUESTS"])

        def work() -> tuple[float, int]:
            drv.init()
            drv.read(0, SECTORS_4K)                  # warm up
            cycles = env.cycles
            start = time.perf_counter()
            for i in range(n):
                drv.read((i * SECTORS_4K) % (env.media.sectors - SECTORS_4K), SECTORS_4K)
            return time.perf_counter() - start, env.cycles - cycles

        seconds, cycles = await env.run(work)
        Path(os.environ["BENCH_OUT"]).write_text(json.dumps(
            {"cocotb_req_s": n / seconds, "cocotb_cycles_s": cycles / seconds, "cocotb_cycles_req": cycles / n}))
        env.close()


def run_verilog(cmd: list[str], n: int) -> tuple[float, int]:
    start = time.perf_counter()
    done = subprocess.run([*cmd, f"+n={n}"], capture_output=True, text=True, timeout=1800, check=True)
    seconds = time.perf_counter() - start
    found = re.search(r"BENCH cycles=(\d+) requests=(\d+) errors=(\d+)", done.stdout)
    if not found or int(found.group(3)):
        raise SystemExit(f"pure-Verilog bench failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    return seconds, int(found.group(1))


def measure(sim: str, scale: float) -> dict[str, float]:
    from hwsim.cosim import runner
    from hwsim.vblk import simbuild

    n = max(10, int({"icarus": 200, "verilator": 3000}[sim] * scale))
    sys.path.insert(0, str(REPO))
    with tempfile.TemporaryDirectory(prefix="bench-blockio-") as tmp:
        out = Path(tmp) / "results.json"
        results = runner.run(simbuild.build(sim), "bench_sim_blockio", test_dir=Path(tmp),
                             module_dir=Path(__file__).parent,
                             extra_env={"BENCH_OUT": str(out), "BENCH_REQUESTS": str(n)})
        if not results or not all(r.passed for r in results.values()):
            raise SystemExit(f"{sim}: {[(k, r.message) for k, r in results.items()]}")
        data = dict(json.loads(out.read_text()))
    cmd = simbuild.build_standalone(sim)
    small, big = max(2, n // 10), n + max(2, n // 10)
    t_small, c_small = run_verilog(cmd, small)
    t_big, c_big = run_verilog(cmd, big)
    data["verilog_req_s"] = (big - small) / (t_big - t_small)
    data["verilog_cycles_s"] = (c_big - c_small) / (t_big - t_small)
    data["verilog_cycles_req"] = (c_big - c_small) / (big - small)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", default="icarus,verilator")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the request counts")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests" / "hwsim" / "vblk"))  # the test driver, for the simulator's PYTHONPATH
    sims = args.sims.split(",")
    data = {sim: measure(sim, args.scale) for sim in sims}
    rows = [
        ("cocotb_req_s", "4 KiB reads/s, cocotb + sync driver (bridge)", "{:12,.0f}"),
        ("verilog_req_s", "4 KiB reads/s, pure-Verilog test bench", "{:12,.0f}"),
        ("cocotb_cycles_s", "simulated cycles/s, cocotb run", "{:12,.0f}"),
        ("verilog_cycles_s", "simulated cycles/s, pure-Verilog run", "{:12,.0f}"),
        ("cocotb_cycles_req", "clock cycles per request, cocotb run", "{:12,.0f}"),
        ("verilog_cycles_req", "clock cycles per request, Verilog run", "{:12,.0f}"),
    ]
    width = max(len(label) for _, label, _ in rows)
    print(f"\n4 KiB reads at queue depth 1 through the RTL, {time.strftime('%Y-%m-%d')}")
    print(f"{'':{width}}  " + "  ".join(f"{sim:>12}" for sim in sims))
    for key, label, fmt in rows:
        print(f"{label:{width}}  " + "  ".join(fmt.format(data[sim][key]) for sim in sims))
    print(f"{'ratio cycles/s: cocotb / pure Verilog':{width}}  "
          + "  ".join(f"{data[sim]['cocotb_cycles_s'] / data[sim]['verilog_cycles_s']:12.2f}" for sim in sims))


if __name__ == "__main__":
    main()
