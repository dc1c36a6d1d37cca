"""pytest integration: tests marked `linux_guest(machine)` run inside a booted guest, reported on the host.

On the host, each marked test is replaced (after selection) by a `GuestItem` with the same node id. The first
one of a machine to run boots that machine once and runs every selected test of it in one pytest process
inside the guest (the same files, the host's .venv Python, the same root dir); the guest records each
test's outcome to a JSON-lines file in the writable share, and each GuestItem then passes, fails with the
guest's traceback, or is skipped as the guest said. Inside the guest ($MMIOTK_LINUX_GUEST set) marked tests
run as plain tests and this plugin only records results. `linux_guest_prepare(fn)` on a test has the host
call fn() before that test's machine boots (`fn=`: pytest takes a lone
callable argument of a mark for the decorated function).

Load it from a conftest with `pytest_plugins = ["hwsim.linux.pytest_plugin"]`.
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from .errors import LinuxGuestError
from .machine import GuestRun, Machine, run_in_guest

IN_GUEST = bool(os.environ.get("MMIOTK_LINUX_GUEST"))
RESULTS_ENV = "MMIOTK_LINUX_RESULTS"
GUEST_TIMEOUT = float(os.environ.get("MMIOTK_LINUX_TIMEOUT", "900"))
_GROUPS = pytest.StashKey["GuestGroups"]()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "linux_guest(machine): run inside a Linux guest booted as `machine` (hwsim.linux.Machine); "
                   "all tests of one machine share one boot")
    config.addinivalue_line(
        "markers", "linux_guest_prepare(fn=f): call f() on the host before the guest boots (once per fn and "
                   "boot), for what the guest cannot make itself, e.g. a simulator build in its read-only "
                   "view of the checkout; when fn raises, the tests that asked for it fail with its error")
    if not IN_GUEST:
        config.stash[_GROUPS] = GuestGroups(config)


def machine_of(item: pytest.Item) -> Machine | None:
    marker = item.get_closest_marker("linux_guest")
    if marker is None:
        return None
    machine = marker.kwargs.get("machine", marker.args[0] if marker.args else None)
    if not isinstance(machine, Machine):
        raise pytest.UsageError(f"{item.nodeid}: linux_guest needs a hwsim.linux.Machine, got {machine!r}")
    return machine


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    if IN_GUEST:
        return
    groups = config.stash[_GROUPS]
    for i, item in enumerate(items):
        machine = machine_of(item)
        if machine is None:
            continue
        assert item.parent is not None
        guest = GuestItem.from_parent(item.parent, name=item.name, machine=machine, groups=groups)
        guest.own_markers = list(item.own_markers)
        guest.keywords.update(item.keywords)
        guest.add_marker(pytest.mark.timeout(GUEST_TIMEOUT + 60))  # the first of a machine waits for the boot
        guest.prepare = [m.kwargs.get("fn", m.args[0] if m.args else None) for m in
                         item.iter_markers("linux_guest_prepare")]
        if not all(callable(fn) for fn in guest.prepare):
            raise pytest.UsageError(f"{item.nodeid}: linux_guest_prepare needs fn=a callable, got {guest.prepare}")
        groups.add(machine, item.nodeid, guest.prepare)
        items[i] = guest


class GuestGroups:
    """The selected guest tests per machine, and each machine's results once it has booted."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config
        self.nodeids: dict[Machine, list[str]] = {}
        self.results: dict[Machine, dict[str, dict[str, Any]] | LinuxGuestError] = {}
        self.runs: dict[Machine, GuestRun] = {}
        self.prepare: dict[Machine, list[Callable[[], object]]] = {}
        self.prepare_errors: dict[Callable[[], object], BaseException] = {}

    def add(self, machine: Machine, nodeid: str, prepare: Sequence[Callable[[], object]] = ()) -> None:
        self.nodeids.setdefault(machine, []).append(nodeid)
        steps = self.prepare.setdefault(machine, [])
        steps.extend(fn for fn in prepare if fn not in steps)

    def result(self, machine: Machine, nodeid: str) -> dict[str, Any]:
        if machine not in self.results:
            try:
                self.results[machine] = self._boot(machine)
            except LinuxGuestError as exc:
                self.results[machine] = exc
        found = self.results[machine]
        if isinstance(found, LinuxGuestError):
            raise found
        if nodeid not in found:
            run = self.runs[machine]
            raise LinuxGuestError(f"the guest ({machine.name}) reported nothing for {nodeid} (exit status "
                                  f"{run.exit_status}); console tail:\n" + "\n".join(run.console.splitlines()[-40:]))
        return found[nodeid]

    def results_of(self, machine: Machine) -> list[dict[str, Any]]:
        found = self.results.get(machine)
        return list(found.values()) if isinstance(found, dict) else []

    def _boot(self, machine: Machine) -> dict[str, dict[str, Any]]:
        for fn in self.prepare.get(machine, []):
            try:
                fn()
            except Exception as exc:  # only the tests that asked for it fail (GuestItem.runtest)
                self.prepare_errors[fn] = exc
        with tempfile.TemporaryDirectory(prefix=f"linux-guest-{machine.name}-") as tmp:
            share = Path(tmp)
            results = share / "results.jsonl"
            rootdir = str(self.config.rootpath)
            args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:hypothesispytest", "-q",
                    "--rootdir", rootdir,
                    *self.nodeids[machine]]
            env = {RESULTS_ENV: str(results), "PYTHONDONTWRITEBYTECODE": "1"}
            run = run_in_guest(machine, shlex.join(args), share, timeout=GUEST_TIMEOUT, env=env, cwd=rootdir)
            self.runs[machine] = run
            found: dict[str, dict[str, Any]] = {}
            if results.exists():
                for line in results.read_text().splitlines():
                    record = json.loads(line)
                    found[record["nodeid"]] = record
            return found


def pytest_terminal_summary(terminalreporter: Any) -> None:
    groups = terminalreporter.config.stash.get(_GROUPS, None)
    if groups is None or not groups.runs:
        return
    terminalreporter.section("linux guests")
    for machine, run in groups.runs.items():
        tests = sum(record.get("duration", 0.0) for record in groups.results_of(machine))
        terminalreporter.write_line(
            f"{machine.name}: {len(groups.nodeids[machine])} tests; init reached after {run.boot_seconds:.1f} s, "
            f"power-off after {run.total_seconds:.1f} s (tests {tests:.1f} s); boots: {run.attempts}; "
            f"accel {run.accel}")


class GuestTestFailure(Exception):
    """A test failed inside the guest; the message is the guest's own report."""


class GuestItem(pytest.Item):
    """The host's stand-in for one test that ran in the guest."""

    def __init__(self, *, machine: Machine, groups: GuestGroups, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.machine = machine
        self.groups = groups
        self.prepare: list[Callable[[], object]] = []

    def runtest(self) -> None:
        record = self.groups.result(self.machine, self.nodeid)
        for fn in self.prepare:
            if fn in self.groups.prepare_errors:
                error = self.groups.prepare_errors[fn]
                raise GuestTestFailure(f"the host's preparation {getattr(fn, '__qualname__', fn)} failed: "
                                       f"{type(error).__name__}: {error}")
        if record["outcome"] == "skipped":
            pytest.skip(f"in the guest: {record['text']}")
        if record["outcome"] != "passed":
            raise GuestTestFailure(f"failed in the guest ({self.machine.name}, {record['when']}):\n{record['text']}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, (GuestTestFailure, LinuxGuestError)):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"{self.name} [linux guest {self.machine.name}]"


# --- inside the guest: record each test's outcome for the host ------------------------------------------
_RECORDS: dict[str, dict[str, Any]] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = os.environ.get(RESULTS_ENV)
    if not IN_GUEST or not path:
        return
    record = _RECORDS.setdefault(report.nodeid, {"nodeid": report.nodeid, "outcome": "passed", "when": "call",
                                                 "text": "", "duration": 0.0})
    record["duration"] += report.duration
    if report.outcome != "passed" and record["outcome"] == "passed":
        record["outcome"], record["when"] = report.outcome, report.when
        text = report.longreprtext
        if report.skipped and isinstance(report.longrepr, tuple):
            text = str(report.longrepr[2])
        for title, content in report.sections:
            text += f"\n--- {title} ---\n{content}"
        record["text"] = text
    if report.when == "teardown":
        with open(path, "a") as out:
            out.write(json.dumps(record) + "\n")
