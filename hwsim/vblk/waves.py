"""Waveform pictures of the block controller: capture one request as VCD and render it to PNG.

    .venv/bin/python -m hwsim.vblk.waves [--out docs/img/request.png]

captures one 512-byte read on Verilator (hwsim.vblk.tb.one_request, traced) and renders
the bus, DMA, media, engine state and interrupt around it. `read_vcd` and `render` work on any VCD.
Needs matplotlib.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CLOCK_PS = 10_000
PHASES = [
    ("avail ring + descriptor walk", {"AVF", "RING", "HEAD", "DESC", "DESC_R", "DCHK"}),
    ("header", {"PARSE", "HDR", "HDR_R", "DISPATCH"}),
    ("data: media -> host RAM", {"SEC", "CWAIT", "EVICT_W", "FLUSH", "FLUSH_W", "SYNC", "SYNC_W", "ID_W"}),
    ("status + used", {"STATUS", "USED0", "USED1", "USED2", "AVI", "DONE"}),
]


@dataclass
class WaveTrace:
    """Value changes per signal (full dotted name), times in `unit` seconds."""

    unit: float
    changes: dict[str, list[tuple[int, str]]] = field(default_factory=dict)

    def value_at(self, name: str, t: int) -> str:
        last = "x"
        for when, value in self.changes[name]:
            if when > t:
                break
            last = value
        return last


def read_vcd(path: Path, wanted: Callable[[str], bool] = lambda name: True) -> WaveTrace:
    """A small VCD reader: scalar and vector changes of the signals `wanted` accepts."""
    units = {"s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9, "ps": 1e-12, "fs": 1e-15}
    ids: dict[str, list[str]] = {}
    scope: list[str] = []
    trace = WaveTrace(unit=1e-12)
    now = 0
    tokens = iter(Path(path).read_text().split())
    for tok in tokens:
        if tok == "$timescale":
            spec = ""
            while (part := next(tokens)) != "$end":
                spec += part
            found = re.fullmatch(r"(\d+)(\w+)", spec)
            if found:
                trace.unit = int(found.group(1)) * units[found.group(2)]
        elif tok == "$scope":
            next(tokens)
            scope.append(next(tokens))
        elif tok == "$upscope":
            scope.pop()
        elif tok == "$var":
            _kind, _size, ident, ref = next(tokens), next(tokens), next(tokens), next(tokens)
            name = ".".join([*scope, ref]).removeprefix("TOP.")
            if wanted(name):
                ids.setdefault(ident, []).append(name)
                trace.changes[name] = []
        elif tok.startswith("#"):
            now = int(tok[1:])
        elif tok[0] in "bBrR":
            ident = next(tokens)
            for name in ids.get(ident, ()):
                trace.changes[name].append((now, tok[1:]))
        elif tok[0] in "01xXzZ" and len(tok) > 1:
            for name in ids.get(tok[1:], ()):
                trace.changes[name].append((now, tok[0]))
    return trace


def engine_states(rtl: Path) -> dict[int, str]:
    """State numbers of vblk_engine.v, read from its localparams."""
    text = (rtl / "vblk_engine.v").read_text()
    return {int(num): name.removeprefix("S_") for name, num in re.findall(r"(S_\w+)\s*=\s*6'd(\d+)", text)}


def render(trace: WaveTrace, start: int, end: int, out: Path, title: str, states: dict[int, str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = "tb_cosim"
    h = f"{top}.h"

    def bits(name: str) -> list[tuple[int, int]]:
        return [(t, 1 if v == "1" else 0) for t, v in trace.changes[name]]

    def both(a: str, b: str, negate_b: bool = False) -> list[tuple[int, int]]:
        times = sorted({t for t, _ in trace.changes[a]} | {t for t, _ in trace.changes[b]})
        out_ = []
        for t in times:
            va = trace.value_at(a, t) == "1"
            vb = trace.value_at(b, t) == "1"
            out_.append((t, int(va and (not vb if negate_b else vb))))
        return out_

    rows: list[tuple[str, list[tuple[int, int]]]] = [
        ("AXI-Lite write (AW/W)", bits(f"{h}.awvalid")),
        ("AXI-Lite read (AR)", bits(f"{h}.arvalid")),
        ("DMA read (host RAM)", both(f"{h}.dma_req", f"{h}.dma_we", negate_b=True)),
        ("DMA write (host RAM)", both(f"{h}.dma_req", f"{h}.dma_we")),
        ("media read", both(f"{h}.med_req", f"{h}.med_cmd", negate_b=True)),
        ("copy engine busy", bits(f"{h}.dut.u_engine.u_copy.busy")),
        ("irq", bits(f"{top}.irq")),
    ]
    per_cycle = CLOCK_PS * 1e-12 / trace.unit

    def cyc(t: int) -> float:
        return (t - start) / per_cycle

    fig, ax = plt.subplots(figsize=(13, 5.0), dpi=110)
    n = len(rows) + 1.6
    for i, (label, series) in enumerate(rows):
        y0 = n - 1.6 - i + 0.6
        xs, ys = [cyc(start)], [y0]
        level = 0
        for t, v in series:
            if t <= start:
                level = v
                ys[0] = y0 + 0.6 * level
                continue
            if t > end:
                break
            xs += [cyc(t), cyc(t)]
            ys += [y0 + 0.6 * level, y0 + 0.6 * v]
            level = v
        xs.append(cyc(end))
        ys.append(y0 + 0.6 * level)
        ax.plot(xs, ys, drawstyle="default", lw=1.2, color="tab:blue")
        ax.fill_between(xs, y0, ys, alpha=0.25, color="tab:blue", step=None)
        ax.text(cyc(start) - 2, y0 + 0.25, label, ha="right", va="center", fontsize=9)

    # engine state as labelled bands on the bottom row
    st_name = f"{h}.dut.u_engine.st"
    segs = [(t, v) for t, v in trace.changes[st_name]]
    current = trace.value_at(st_name, start)
    points = [(start, current)] + [(t, v) for t, v in segs if start < t <= end] + [(end, None)]
    palette = plt.get_cmap("tab20")
    for (t0, v0), (t1, _) in itertools.pairwise(points):
        if v0 is None or any(c in v0 for c in "xz"):
            continue
        code = int(v0, 2)
        ax.add_patch(plt.Rectangle((cyc(t0), 0), cyc(t1) - cyc(t0), 0.6, color=palette(code % 20), alpha=0.8))
        if cyc(t1) - cyc(t0) > 9:
            ax.text((cyc(t0) + cyc(t1)) / 2, 0.3, states.get(code, str(code)), ha="center", va="center",
                    fontsize=7)
    ax.text(cyc(start) - 2, 0.3, "engine state", ha="right", va="center", fontsize=9)

    # phases: runs of states grouped by what the engine is doing, labelled above the state band
    def phase(name: str) -> str:
        for label, members in PHASES:
            if name in members:
                return label
        return ""

    runs: list[list] = []
    for (t0, v0), (t1, _) in itertools.pairwise(points):
        label = "" if v0 is None or any(c in v0 for c in "xz") else phase(states.get(int(v0, 2), ""))
        if not label and runs and states.get(int(v0 or "0", 2)) in ("HACC", "HRDW"):
            label = runs[-1][2]  # a bus access belongs to the phase that made it
        if runs and runs[-1][2] == label:
            runs[-1][1] = t1
        else:
            runs.append([t0, t1, label])
    for t0, t1, label in runs:
        if label and cyc(t1) - cyc(t0) >= 9:
            ax.annotate("", xy=(cyc(t0), 0.85), xytext=(cyc(t1), 0.85),
                        arrowprops={"arrowstyle": "<->", "lw": 0.8, "color": "0.3"})
            ax.text((cyc(t0) + cyc(t1)) / 2, 0.98, label, ha="center", va="bottom", fontsize=8, color="0.2")
    ax.set_xlim(cyc(start), cyc(end))
    ax.set_ylim(-0.2, n)
    ax.set_yticks([])
    ax.set_xlabel("clock cycles (100 MHz) from the driver's first access for this request")
    ax.set_title(title, fontsize=10, loc="left")
    for side in ("top", "right", "left"):
        ax.spines[side].set_visible(False)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)


def capture(workdir: Path) -> tuple[Path, dict[str, int]]:
    """Run hwsim.vblk.tb.one_request on Verilator with tracing on; returns the VCD and the request's marks."""
    from hwsim.cosim import runner
    from hwsim.vblk import simbuild

    sys.path.insert(0, str(runner.REPO_ROOT / "tests" / "hwsim" / "vblk"))
    marks = workdir / "marks.json"
    results = runner.run(simbuild.build("verilator", waves=True), "hwsim.vblk.tb.one_request", test_dir=workdir,
                         extra_env={"WAVE_MARKS": str(marks)})
    if not all(r.passed for r in results.values()) or not results:
        raise SystemExit(f"capture failed: {results}")
    return workdir / "dump.vcd", json.loads(marks.read_text())


def main() -> None:
    from hwsim.cosim import runner
    from hwsim.vblk import simbuild

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=runner.REPO_ROOT / "docs" / "img" / "request.png")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="waves-") as tmp:
        vcd, marks = capture(Path(tmp))
        trace = read_vcd(vcd, lambda name: name.count(".") <= 5)
        ps = 1e-12 / trace.unit
        start, end = int(marks["start"] * ps), int(marks["end"] * ps)
        render(trace, start, end, args.out,
               "One 512-byte read (VIRTIO_BLK_T_IN) on the RTL, cocotb + Verilator: notify, descriptor walk,\n"
               "header, 128 words media -> host RAM, status byte, used ring, interrupt; the driver reads "
               "InterruptStatus, ACKs it, reads Status",
               engine_states(simbuild.RTL_DIR))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
