"""linux_guest_prepare on the host side: each function runs once per boot, before it, even when several tests
of the machine name it; one that raises is recorded for the tests that asked for it, and the boot still
happens. The boot itself is left out here (run_in_guest replaced); the ublk-over-RTL guest test uses the
marker for real."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from hwsim.linux import Machine
from hwsim.linux import pytest_plugin as plugin

MACHINE = Machine("prepare-check", memory_mib=512)


class Host:
    """The host side of one run: its GuestGroups, the prepare functions' calls, and boots that record what
    had been called by then (and report every test passed)."""

    def __init__(self) -> None:
        self.groups = plugin.GuestGroups(SimpleNamespace(rootpath=Path.cwd()))  # type: ignore[arg-type]
        self.calls: list[str] = []
        self.boots: list[list[str]] = []

    def run_in_guest(self, machine: Machine, command: str, share: Path, **kwargs: Any) -> Any:
        self.boots.append(["boot", *self.calls])
        with open(kwargs["env"][plugin.RESULTS_ENV], "w") as out:
            for nodeid in self.groups.nodeids[machine]:
                out.write(json.dumps({"nodeid": nodeid, "outcome": "passed"}) + "\n")
        return SimpleNamespace(exit_status=0)

    def build(self) -> None:
        self.calls.append("build")

    def broken(self) -> None:
        self.calls.append("broken")
        raise RuntimeError("no compiler")


@pytest.fixture
def host(monkeypatch: pytest.MonkeyPatch) -> Host:
    host = Host()
    monkeypatch.setattr(plugin, "run_in_guest", host.run_in_guest)
    return host


def test_a_prepare_function_runs_once_before_the_boot(host: Host) -> None:
    groups = host.groups
    groups.add(MACHINE, "a.py::one", [host.build])
    groups.add(MACHINE, "a.py::two", [host.build])
    groups.add(MACHINE, "a.py::three")
    assert groups.result(MACHINE, "a.py::one")["outcome"] == "passed"
    assert groups.result(MACHINE, "a.py::three")["outcome"] == "passed"
    assert host.boots == [["boot", "build"]]  # once, and before the boot
    assert not groups.prepare_errors


def test_a_failing_prepare_function_is_kept_for_its_tests_and_the_boot_goes_on(host: Host) -> None:
    groups = host.groups
    groups.add(MACHINE, "a.py::needs_it", [host.broken])
    groups.add(MACHINE, "a.py::other")
    assert groups.result(MACHINE, "a.py::other")["outcome"] == "passed"
    assert host.boots == [["boot", "broken"]]
    assert isinstance(groups.prepare_errors[host.broken], RuntimeError)
