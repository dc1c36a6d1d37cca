"""ublk over our virtio-blk driver on the RTL controller: /dev/ublkbN served from Verilator.

The driver bound to the RTL lives in the simulator process (cocotb is single-threaded; the ublk server's
queue thread reaches it only through a PostedBlockDevice), so the ublk server runs in that process too, and
the simulation runs on the machine whose kernel has ublk_drv (inside the Linux guest, for the tests).
`serve_rtl(image, workdir)` starts the simulation (ublk_rtl_cocotb) on a thread of the caller, waits until
the disk exists and yields a `ServedRtl` with its path; on exit it asks the simulator to stop the server and
end, and fills in what the server and the device counted. `build()` makes (or finds) the Verilator build: a
guest sees the checkout read-only, so the build is made on the host before the boot.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hwsim.cosim import runner
from hwsim.vblk import simbuild

MODULE = "hwsim.integration.ublk_rtl_cocotb"
SIM = "verilator"
START_TIMEOUT = 300.0   # wall-clock seconds from the simulator's launch to the disk's appearance
STOP_TIMEOUT = 120.0    # wall-clock seconds from the stop request to the simulator's end


def build() -> runner.SimBuild:
    """The controller for Verilator under cocotb (the default tb_cosim build, cached)."""
    try:
        return simbuild.build(SIM)
    except OSError as exc:
        if exc.errno != errno.EROFS:
            raise
        raise RuntimeError(f"no finished Verilator build of the controller in the read-only {runner.build_root()} "
                           "(a Linux guest's view of the checkout): call hwsim.integration.ublk_rtl.build() on "
                           "the host first (the guest tests' linux_guest_prepare does)") from exc


@dataclass
class ServedRtl:
    """The ublk disk the simulator serves; `result` (the server's stats, the device's op counts, cycles) is
    filled in once the simulation has ended."""

    path: str
    dev_id: int
    pid: int
    result: dict[str, Any] = field(default_factory=dict)


@contextmanager
def serve_rtl(image: str | Path, workdir: str | Path, *, queue_depth: int = 16,
              serve_timeout: float = 1200.0) -> Iterator[ServedRtl]:
    """The RTL controller with `image` as its media, under a UblkServer of `queue_depth`, as /dev/ublkbN."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    ready, stop, result = workdir / "ublk.ready", workdir / "ublk.stop", workdir / "ublk.result"
    for path in (ready, stop, result):
        path.unlink(missing_ok=True)
    built = build()
    env = {"UBLK_RTL_IMAGE": str(Path(image).resolve()), "UBLK_RTL_READY": str(ready),
           "UBLK_RTL_STOP": str(stop), "UBLK_RTL_RESULT": str(result), "UBLK_RTL_DEPTH": str(queue_depth),
           "UBLK_RTL_TIMEOUT": str(serve_timeout),
           # cocotb would rewrite the asserts of every module imported after it (numpy's too) and, in a
           # read-only checkout, recompile them at each start; the serving module asserts nothing
           "COCOTB_REWRITE_ASSERTION_FILES": ""}
    outcome: dict[str, Any] = {}
    sim_dir = workdir / "sim"

    def simulate() -> None:
        try:
            outcome["results"] = runner.run(built, MODULE, test_dir=sim_dir, extra_env=env,
                                            timeout=serve_timeout + STOP_TIMEOUT + START_TIMEOUT)
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=simulate, name="ublk-rtl-sim", daemon=True)
    thread.start()
    served: ServedRtl | None = None
    wedged = False
    try:
        served = _wait_ready(ready, thread, sim_dir, outcome)
        yield served
    finally:
        stop.write_text("stop\n")
        thread.join(STOP_TIMEOUT)
        if thread.is_alive() and served is not None:  # wedged: end it (the runner then reaps it)
            wedged = True
            with contextlib.suppress(ProcessLookupError):
                os.kill(served.pid, signal.SIGKILL)
            thread.join(30)
    if wedged:
        raise RuntimeError(f"the RTL simulation did not end within {STOP_TIMEOUT:g} s of the stop (killed it); "
                           f"log tail:\n{_log_tail(sim_dir)}")
    _check(outcome, sim_dir)
    served.result = json.loads(result.read_text())


def _wait_ready(ready: Path, thread: threading.Thread, sim_dir: Path, outcome: dict[str, Any]) -> ServedRtl:
    deadline = time.monotonic() + START_TIMEOUT
    while not ready.exists():
        if not thread.is_alive():
            _check(outcome, sim_dir)
            raise RuntimeError(f"the RTL simulation ended before serving; log tail:\n{_log_tail(sim_dir)}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the RTL simulation served no ublk disk within {START_TIMEOUT:g} s; log tail:\n"
                               f"{_log_tail(sim_dir)}")
        time.sleep(0.1)
    record = json.loads(ready.read_text())
    if "error" in record:
        raise RuntimeError(f"the ublk server over the RTL did not start: {record['error']}; log tail:\n"
                           f"{_log_tail(sim_dir)}")
    return ServedRtl(record["path"], int(record["dev_id"]), int(record["pid"]))


def _check(outcome: dict[str, Any], sim_dir: Path) -> None:
    if "error" in outcome:
        raise RuntimeError(f"the RTL simulation failed: {outcome['error']}") from outcome["error"]
    case = outcome.get("results", {}).get("serve_ublk")
    if case is None or not case.passed:
        raise RuntimeError(f"the RTL simulation's serve_ublk {'failed' if case else 'gave no result'}: "
                           f"{case.message if case else ''}\nlog tail:\n{_log_tail(sim_dir)}")


def _log_tail(sim_dir: Path, size: int = 4000) -> str:
    log = sim_dir / f"{MODULE}.log"
    return log.read_text(errors="replace")[-size:] if log.exists() else "(no simulator log)"
