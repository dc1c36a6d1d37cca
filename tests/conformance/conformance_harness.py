"""The conformance runner: which targets exist and how a case is run on each."""

from __future__ import annotations

from pathlib import Path
from typing import Any

TARGETS = ("model", "qemu", "qemu-pci", "icarus", "verilator", "linux-mmio", "linux-pci")


class Conformance:
    """Runs case `case_id` on a target: in this process (model, qemu, qemu-pci; linux-mmio and linux-pci in the
    process inside their guest) or looks up the result of the target's single simulation run (icarus,
    verilator)."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self._targets: dict[str, Any] = {}
        self._rtl: dict[str, Any] = {}

    def target(self, name: str) -> Any:
        if name not in self._targets:
            from conformance_targets import ModelTarget, QemuPciTarget, QemuTarget

            factories: dict[str, Any] = {"model": ModelTarget, "qemu": QemuTarget, "qemu-pci": QemuPciTarget}
            if name.startswith("linux-"):
                from conformance_linux import GUEST_TARGETS

                factories.update({target: cls for target, (cls, _) in GUEST_TARGETS.items()})
            factory = factories[name]
            self._targets[name] = factory(self.workdir / name)
            (self.workdir / name).mkdir(parents=True, exist_ok=True)
        return self._targets[name]

    def run(self, target: str, case_id: str) -> None:
        if target in ("icarus", "verilator"):
            from conformance_rtl import rtl_results

            if target not in self._rtl:
                self._rtl[target] = rtl_results(target, self.workdir / target)
            result = self._rtl[target].get(case_id)
            assert result is not None, f"{target}: case {case_id} did not run in the simulation"
            assert result.passed, f"{target}: {case_id} failed in simulation:\n{result.message}"
            return
        from conformance_cases import run_case

        run_case(case_id, self.target(target), self.workdir / target / case_id)

    def close(self) -> None:
        for target in self._targets.values():
            close = getattr(target, "close", None)
            if close is not None:
                close()
