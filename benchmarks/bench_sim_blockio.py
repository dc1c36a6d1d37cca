"""4 KiB reads per second through the RTL block controller, and simulated cycles per wall-clock second,
under cocotb (synchronous driver in the greenlet bridge) and under a pure-Verilog test bench, on Icarus and
Verilator.

The QD1 runs do the same work: initialise the device, then read 4 KiB at queue depth 1, each request one
notify, wait for the interrupt, read InterruptStatus, ACK, read Status. The cocotb run uses the test
driver (tests/hwsim/vblk/vblk_driver.py) over MmioBuffer/SimSpace; the Verilog run is tb_bench.v. For the
Verilog bench, time is taken as the difference between a short and a long run, so process start-up
cancels out. The QD16 run (cocotb only) keeps 16 reads in the ring: one notify per batch, one interrupt
wait, InterruptStatus and ACK per batch of completions, each completed slot made available again.
`--latency N` gives the media an access time of N clocks per request (in every run), as a real medium
has; the controller's several requests in flight overlap it. The default, 4,000 clocks, is 40 us at the
simulated 100 MHz clock: a flash read (NAND page read times are 25-90 us; an SSD's 4 KiB read at QD1 takes
about 40-100 us). `--latency 0` (a medium that answers in the next clock) leaves nothing for queue depth to
overlap: one host port carries every data word at one word per clock, so QD16 can gain only the
descriptor fetch over QD1 there (docs/performance.md). `--data-width 64` builds the controller with its
64-bit datapath (both runs).

Rates are taken in CPU seconds of the simulating process (`time.process_time` inside the cocotb run, the
child's rusage for the Verilog bench), best of `--rounds`: on a shared machine wall-clock rates of two runs
minutes apart say more about the other load than about the simulators (wall-clock rates are printed too).
Each round runs the cocotb simulation once and then the Verilog bench, so the two sides of a round see
about the same load; the lowest and highest ratio of a round's own pair are printed beside the best/best
ratio.
Where QD1 time goes: the cocotb run also measures its simulator loop alone (a Timer await, no Python
running) in cycles per CPU second; a request's cost is then its clocks at that speed plus what Python adds
per request (the driver's code, four bus transactions through the bridge, one interrupt wait).

    .venv/bin/python benchmarks/bench_sim_blockio.py [--sims icarus,verilator] [--scale 1.0] [--latency 4000]
        [--data-width 32] [--rounds 3]

This file is also the cocotb test module the simulator imports (BENCH_OUT names its result file).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SECTORS_4K = 8

if "COCOTB_TEST_MODULES" in os.environ:  # imported by cocotb inside the simulator
    import cocotb
    from vblk_driver import INTERRUPT_ACK, INTERRUPT_STATUS, NEXT, QUEUE_NOTIFY, WRITE, MiniBlk

    from hwsim.vblk.env import REGS_BASE, REGS_SIZE, VblkEnv
    from mmiotk import CachePolicy

    @cocotb.test(timeout_time=600_000, timeout_unit="ms")
    async def reads_4k(dut):
        from cocotb.triggers import Timer

        env = await VblkEnv.create(dut)
        env.set_media_latency(int(os.environ["BENCH_LATENCY"]))
        rounds = int(os.environ.get("BENCH_ROUNDS", "1"))
        regs = env.resource.create_region(REGS_BASE, REGS_SIZE, "vblk").map(CachePolicy.UNCACHED)
        drv = MiniBlk(regs, env.host, env.alloc, env.irq, qsize=64)
        n = int(os.environ["BENCH_REQUESTS"])
        span = env.media.sectors - SECTORS_4K

        def qd1() -> tuple[float, float, int]:
            drv.init()
            drv.read(0, SECTORS_4K)                  # warm up
            cycles = env.cycles
            start, cpu = time.perf_counter(), time.process_time()
            for i in range(n):
                drv.read((i * SECTORS_4K) % span, SECTORS_4K)
            return time.perf_counter() - start, time.process_time() - cpu, env.cycles - cycles

        def qd16() -> tuple[float, float, int]:
            depth = 16
            drv.init()
            slots = []
            for s in range(depth):                   # header | status | 4 KiB data, descriptors 3s..3s+2
                base = drv.alloc(64 + 4096, 64)
                drv.put_desc(3 * s, base, 16, NEXT, 3 * s + 1)
                drv.put_desc(3 * s + 1, base + 64, 4096, NEXT | WRITE, 3 * s + 2)
                drv.put_desc(3 * s + 2, base + 16, 1, WRITE)
                slots.append(drv.mem(base, 16).view("<u4"))
            used = drv.used[4:4 + 8 * drv.qsize].view("<u4")
            issued = done = 0

            def submit(s: int) -> None:
                nonlocal issued
                hdr = slots[s]
                hdr[0], hdr[2] = 0, (issued * SECTORS_4K) % span
                drv.avail[2 + drv.avail_idx % drv.qsize] = 3 * s
                drv.avail_idx = (drv.avail_idx + 1) & 0xFFFF
                issued += 1

            cycles = env.cycles
            start, cpu = time.perf_counter(), time.process_time()
            for s in range(depth):
                submit(s)
            drv.avail[1] = drv.avail_idx
            drv.regs.write32(QUEUE_NOTIFY, 0)
            while done < n:
                drv.irq.wait(0.1)
                drv.regs.write32(INTERRUPT_ACK, drv.regs.read32(INTERRUPT_STATUS))
                end = drv.used_idx()
                while drv.used_seen != end:
                    head = int(used[2 * (drv.used_seen % drv.qsize)])
                    drv.used_seen = (drv.used_seen + 1) & 0xFFFF
                    done += 1
                    if issued < n:
                        submit(head // 3)
                drv.avail[1] = drv.avail_idx
                if issued > done:
                    drv.regs.write32(QUEUE_NOTIFY, 0)
            return time.perf_counter() - start, time.process_time() - cpu, env.cycles - cycles

        best: dict[str, tuple[float, float, int]] = {}
        idle_cpu, idle_cycles = float("inf"), 1
        for _ in range(rounds):
            for name, fn in (("qd1", qd1), ("qd16", qd16)):
                got = await env.run(fn)
                if name not in best or got[1] < best[name][1]:
                    best[name] = got
            cycles, cpu = env.cycles, time.process_time()
            await Timer(5, "ms")                     # the simulator loop alone: no Python runs meanwhile
            if time.process_time() - cpu < idle_cpu:
                idle_cpu, idle_cycles = time.process_time() - cpu, env.cycles - cycles
        (wall, cpu, cycles), (wall16, cpu16, cycles16) = best["qd1"], best["qd16"]
        Path(os.environ["BENCH_OUT"]).write_text(json.dumps(
            {"cocotb_req_s": n / cpu, "cocotb_wall_req_s": n / wall, "cocotb_cycles_s": cycles / cpu,
             "cocotb_cycles_req": cycles / n, "qd16_req_s": n / cpu16, "qd16_wall_req_s": n / wall16,
             "qd16_cycles_req": cycles16 / n, "idle_cycles_s": idle_cycles / idle_cpu}))
        env.close()


def run_verilog(cmd: list[str], n: int, latency: int) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, cycles) of one pure-Verilog bench run of `n` requests."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run([*cmd, f"+n={n}", f"+latency={latency}"], capture_output=True, text=True, timeout=1800,
                          check=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    found = re.search(r"BENCH cycles=(\d+) requests=(\d+) errors=(\d+)", done.stdout)
    if not found or int(found.group(3)):
        raise SystemExit(f"pure-Verilog bench failed: {done.stdout[-2000:]} {done.stderr[-2000:]}")
    return seconds, cpu, int(found.group(1))


def measure(sim: str, scale: float, latency: int, width: int, rounds: int) -> dict[str, float]:
    from hwsim.cosim import runner
    from hwsim.vblk import simbuild

    n = max(10, int({"icarus": 200, "verilator": 3000}[sim] * scale))
    sys.path.insert(0, str(REPO))
    built = simbuild.build(sim, parameters={"DATA_W": width} if width != 32 else None)
    cmd = simbuild.build_standalone(sim) if width == 32 else \
        simbuild.build_standalone(sim, "tb_bench_w64", sources=("tb_bench.v",))
    small, big = max(2, n // 10), n + max(2, n // 10)
    data: dict[str, float] = {}
    best = None
    paired = []
    for _ in range(rounds):  # each round one cocotb run, then the Verilog bench: the load changes slowly
        with tempfile.TemporaryDirectory(prefix="bench-blockio-") as tmp:
            out = Path(tmp) / "results.json"
            results = runner.run(built, "bench_sim_blockio", test_dir=Path(tmp),
                                 module_dir=Path(__file__).parent,
                                 extra_env={"BENCH_OUT": str(out), "BENCH_REQUESTS": str(n),
                                            "BENCH_LATENCY": str(latency), "BENCH_ROUNDS": "1"})
            if not results or not all(r.passed for r in results.values()):
                raise SystemExit(f"{sim}: {[(k, r.message) for k, r in results.items()]}")
            got_cocotb = dict(json.loads(out.read_text()))
        for keys in (("cocotb_req_s", "cocotb_wall_req_s", "cocotb_cycles_s", "cocotb_cycles_req"),
                     ("qd16_req_s", "qd16_wall_req_s", "qd16_cycles_req"), ("idle_cycles_s",)):
            if keys[0] not in data or got_cocotb[keys[0]] > data[keys[0]]:
                data.update({k: got_cocotb[k] for k in keys})
        # the difference of a short and a long run: start-up cancels
        t_small, cpu_small, c_small = run_verilog(cmd, small, latency)
        t_big, cpu_big, c_big = run_verilog(cmd, big, latency)
        got = (t_big - t_small, max(cpu_big - cpu_small, 1e-6), c_big - c_small)
        paired.append(got_cocotb["cocotb_req_s"] / ((big - small) / got[1]))
        if best is None or got[1] < best[1]:
            best = got
    assert best is not None
    data["paired_min"], data["paired_max"] = min(paired), max(paired)
    wall, cpu, cycles = best
    data["verilog_req_s"] = (big - small) / cpu
    data["verilog_wall_req_s"] = (big - small) / wall
    data["verilog_cycles_s"] = cycles / cpu
    data["verilog_cycles_req"] = cycles / (big - small)
    # where a cocotb QD1 request's CPU time goes: its clocks at the simulator loop's own speed, and the rest
    per_req = 1e6 / data["cocotb_req_s"]
    data["us_req"] = per_req
    data["us_req_sim"] = 1e6 * data["cocotb_cycles_req"] / data["idle_cycles_s"]
    data["us_req_python"] = per_req - data["us_req_sim"]
    data["clocks_req_python"] = data["us_req_python"] * data["idle_cycles_s"] / 1e6
    data["us_req_verilog"] = 1e6 / data["verilog_req_s"]
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", default="icarus,verilator")
    parser.add_argument("--scale", type=float, default=1.0, help="multiply the request counts")
    parser.add_argument("--latency", type=int, default=4000,
                        help="media access time per request, in clocks (4000: 40 us at 100 MHz)")
    parser.add_argument("--data-width", type=int, choices=(32, 64), default=32, help="the controller's datapath")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many rounds")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "tests" / "hwsim" / "vblk"))  # the test driver, for the simulator's PYTHONPATH
    sims = args.sims.split(",")
    data = {sim: measure(sim, args.scale, args.latency, args.data_width, args.rounds) for sim in sims}
    for sim in sims:
        data[sim]["qd16_ratio"] = data[sim]["qd16_req_s"] / data[sim]["cocotb_req_s"]
        data[sim]["qd1_vs_verilog"] = data[sim]["cocotb_req_s"] / data[sim]["verilog_req_s"]
    rows = [
        ("cocotb_req_s", "4 KiB reads/CPU-s, cocotb + sync driver (bridge)", "{:12,.0f}"),
        ("qd16_req_s", "4 KiB reads/CPU-s at QD16, cocotb + sync driver", "{:12,.0f}"),
        ("qd16_ratio", "QD16 / QD1 (cocotb)", "{:12.2f}"),
        ("verilog_req_s", "4 KiB reads/CPU-s, pure-Verilog test bench", "{:12,.0f}"),
        ("qd1_vs_verilog", "QD1 reads/s, cocotb / pure Verilog", "{:12.2f}"),
        ("paired_min", "  same, lowest of the rounds (each round's own pair)", "{:12.2f}"),
        ("paired_max", "  same, highest of the rounds", "{:12.2f}"),
        ("cocotb_wall_req_s", "wall-clock reads/s: cocotb QD1", "{:12,.0f}"),
        ("qd16_wall_req_s", "wall-clock reads/s: cocotb QD16", "{:12,.0f}"),
        ("verilog_wall_req_s", "wall-clock reads/s: pure Verilog", "{:12,.0f}"),
        ("cocotb_cycles_s", "simulated cycles/CPU-s, cocotb QD1 run", "{:12,.0f}"),
        ("idle_cycles_s", "simulated cycles/CPU-s, cocotb loop, no Python", "{:12,.0f}"),
        ("verilog_cycles_s", "simulated cycles/CPU-s, pure-Verilog run", "{:12,.0f}"),
        ("cocotb_cycles_req", "clock cycles per request, cocotb QD1 run", "{:12,.0f}"),
        ("verilog_cycles_req", "clock cycles per request, Verilog run", "{:12,.0f}"),
        ("qd16_cycles_req", "clock cycles per request, QD16 run", "{:12,.0f}"),
        ("us_req", "QD1 us/request, cocotb", "{:12.1f}"),
        ("us_req_sim", "  of which its clocks at the cocotb loop's speed", "{:12.1f}"),
        ("us_req_python", "  of which Python (driver, bridge, 4 MMIO, irq wait)", "{:12.1f}"),
        ("clocks_req_python", "  Python's share in clocks at the cocotb loop's speed", "{:12,.0f}"),
        ("us_req_verilog", "QD1 us/request, pure Verilog", "{:12.1f}"),
    ]
    width = max(len(label) for _, label, _ in rows)
    print(f"\n4 KiB reads at queue depth 1 and 16 through the RTL ({args.data_width}-bit datapath), media latency "
          f"{args.latency} clocks, best of {args.rounds}, {time.strftime('%Y-%m-%d %H:%M')}, load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    print(f"{'':{width}}  " + "  ".join(f"{sim:>12}" for sim in sims))
    for key, label, fmt in rows:
        print(f"{label:{width}}  " + "  ".join(fmt.format(data[sim][key]) for sim in sims))
    print(f"{'ratio cycles/CPU-s: cocotb loop / pure Verilog':{width}}  "
          + "  ".join(f"{data[sim]['idle_cycles_s'] / data[sim]['verilog_cycles_s']:12.2f}" for sim in sims))
    print("blockio: " + ", ".join(
        f"{sim} QD16/QD1 {data[sim]['qd16_ratio']:.2f}x (target 4x), QD1 {data[sim]['qd1_vs_verilog']:.2f} of "
        "pure Verilog (target 0.80)" for sim in sims)
        + f"; {args.data_width}-bit, media latency {args.latency} clocks")


if __name__ == "__main__":
    main()
