"""QemuSpace cleans up on every exit path: close, with-block, exception, garbage, failed start, dead or
wedged QEMU — the process is gone (by PID) and so are the socket, RAM and scratch files."""

from __future__ import annotations

import gc
import os
import signal
import tempfile

import pytest

from hwsim.qemu import QemuDiedError, QemuError, QemuSpace, QemuTimeoutError
from hwsim.qemu import process as qemu_process


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


class Started:
    """Records the private directory of each QemuSpace started while patched in."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.dirs: list[str] = []
        real = tempfile.mkdtemp

        def recording_mkdtemp(*args: object, **kwargs: object) -> str:
            path = real(*args, **kwargs)  # type: ignore[call-overload]
            self.dirs.append(path)
            return path

        monkeypatch.setattr(qemu_process.tempfile, "mkdtemp", recording_mkdtemp)

    def leftovers(self) -> list[str]:
        paths = [*self.dirs, *(f"/dev/shm/{os.path.basename(d)}.ram" for d in self.dirs)]
        return [p for p in paths if os.path.exists(p)]


@pytest.fixture
def started(monkeypatch: pytest.MonkeyPatch) -> Started:
    return Started(monkeypatch)


def test_files_are_unlinked_once_qemu_holds_them(started: Started) -> None:
    with QemuSpace(ram_size=8 << 20) as qemu:
        assert qemu.alive
        assert started.dirs and started.leftovers() == []
        assert not os.path.exists(qemu.ram_path)


def test_close_stops_qemu_and_leaves_no_files(started: Started) -> None:
    qemu = QemuSpace(ram_size=8 << 20)
    pid = qemu.pid
    assert not process_gone(pid)
    qemu.close()
    assert process_gone(pid)
    assert not qemu.alive
    assert started.leftovers() == []


@pytest.mark.parametrize("exc_type", [RuntimeError, KeyboardInterrupt])
def test_exception_in_a_with_block_stops_qemu(exc_type: type[BaseException]) -> None:
    pid = -1
    with pytest.raises(exc_type), QemuSpace(ram_size=8 << 20) as qemu:
        pid = qemu.pid
        raise exc_type("boom")
    assert pid > 0 and process_gone(pid)


def test_garbage_collected_space_stops_qemu() -> None:
    qemu = QemuSpace(ram_size=8 << 20)
    pid = qemu.pid
    del qemu
    gc.collect()
    assert process_gone(pid)


def test_failed_start_reports_qemu_stderr_and_cleans_up(started: Started) -> None:
    with pytest.raises(QemuDiedError, match="no-such-device"):
        QemuSpace(ram_size=8 << 20, extra_args=("-device", "no-such-device"))
    assert len(started.dirs) == 1
    assert started.leftovers() == []


def test_killed_qemu_gives_a_clear_error_instead_of_a_hang() -> None:
    with QemuSpace(ram_size=8 << 20) as qemu:
        os.kill(qemu.pid, signal.SIGKILL)
        with pytest.raises(QemuDiedError, match="exit status -9"):
            for _ in range(100):  # the first write may still land in the socket buffer
                qemu.qtest.read(qemu.device_base, 4)


def test_wedged_qemu_times_out_and_close_falls_back_to_sigkill() -> None:
    qemu = QemuSpace(ram_size=8 << 20, command_timeout=0.2, term_timeout=0.2)
    pid = qemu.pid
    os.kill(pid, signal.SIGSTOP)                # stopped: ignores SIGTERM until continued
    with pytest.raises(QemuTimeoutError, match="no reply"):
        qemu.qtest.read(qemu.device_base, 4)
    with pytest.raises(QemuError, match="unusable: no reply"):
        qemu.qtest.read(qemu.device_base, 4)
    qemu.close()
    assert process_gone(pid)
