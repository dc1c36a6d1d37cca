"""What the RTL pytest wrappers need without importing cocotb: case discovery and build variants."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

from hwsim.cosim import runner

HERE = Path(__file__).resolve().parent

# The other build: the legacy interface (virtio-mmio Version 1), the 64-bit datapath, no FLUSH, no CONFIG_WCE.
VARIANT = {"LEGACY": 1, "DATA_W": 64, "F_FLUSH": 0, "F_CONFIG_WCE": 0}


def simulators() -> tuple[str, ...]:
    """The simulators to run the RTL tests on: both, or only $SIM when it is set."""
    return (runner.default_simulator(),) if os.environ.get("SIM") else runner.SIMULATORS


RunModule = Callable[[str, str, Mapping[str, int]], dict[str, runner.CaseResult]]


def cocotb_cases(module: str) -> list[str]:
    """Names of the @cocotb.test functions in tests/hwsim/vblk/<module>.py, read without importing cocotb."""
    return runner.cocotb_cases(HERE / f"{module}.py")
