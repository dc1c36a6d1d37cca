"""The launcher on real boots: exit status and files come back, a silent boot is killed and retried once,
a command past its timeout is killed. Each test here costs a boot (a few seconds under TCG)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hwsim.linux import GuestBootError, GuestTimeoutError, LinuxGuestError, Machine, run_in_guest

TINY = Machine("tiny", memory_mib=512)


def gone(pidfile: Path) -> bool:
    """The QEMU that wrote `pidfile` no longer runs (QEMU removes the file itself only on a clean exit)."""
    if not pidfile.exists():
        return True
    return not Path(f"/proc/{int(pidfile.read_text())}").exists()


def test_exit_status_and_files_in_the_share_come_back(tmp_path: Path) -> None:
    run = run_in_guest(TINY, 'uname -r > "$OUT"/release; cat /proc/cmdline > "$OUT"/cmdline; exit 7', tmp_path,
                       env={"OUT": str(tmp_path)})
    assert run.exit_status == 7
    assert (tmp_path / "release").read_text().strip().endswith("-amd64")
    assert f"mmiotk.share={tmp_path}" in (tmp_path / "cmdline").read_text()
    assert 0 < run.boot_seconds < run.total_seconds


def test_a_silent_boot_is_killed_and_retried_once_then_reported(tmp_path: Path) -> None:
    with pytest.raises(GuestBootError, match="twice"):
        run_in_guest(Machine("silent", memory_mib=512, boot_timeout=0.5), "true", tmp_path)
    assert (tmp_path / "console-1.log").exists() and (tmp_path / "console-2.log").exists()
    assert gone(tmp_path / "qemu-1.pid") and gone(tmp_path / "qemu-2.pid")  # both were killed


def test_a_command_past_its_timeout_is_killed(tmp_path: Path) -> None:
    with pytest.raises(GuestTimeoutError, match="still running"):
        run_in_guest(TINY, "sleep 600", tmp_path, timeout=1.0)
    assert gone(tmp_path / "qemu-1.pid")
    assert not os.path.exists(tmp_path / "exit-status")


def test_a_qemu_that_exits_before_the_boot_is_retried_once_then_reported(tmp_path: Path) -> None:
    """A kernel panic before init (the IO-APIC timer check under load did that) ends QEMU early: one retry."""
    with pytest.raises(LinuxGuestError, match="QEMU exited 1 before the guest booted"):
        run_in_guest(Machine("no-such-board", board="no-such-board"), "true", tmp_path)
    assert (tmp_path / "qemu-1.stderr").exists() and (tmp_path / "qemu-2.stderr").exists()
