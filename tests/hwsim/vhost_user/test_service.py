"""The back end as a host service of the Linux harness, without a guest: started listening, killed by PID on
request with the fence taking its socket, and every process it started gone after stop()."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from hwsim.vhost_user.machines import VHOST_MODEL
from hwsim.vhost_user.service import RunningBackend, VhostUserBlkService


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _connects(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        try:
            s.connect(str(path))
        except OSError:
            return False
        return True


def test_service_listens_is_killed_on_request_and_the_fence_takes_over(tmp_path: Path) -> None:
    running = VhostUserBlkService("vblk", "model", 1 << 20).start(tmp_path, 1)
    assert isinstance(running, RunningBackend)
    try:
        first = running.serving[running.proc.pid]
        assert first == running.proc.pid and _alive(first)
        assert f"path={tmp_path / 'vblk.sock'}" in " ".join(running.qemu_args)
        (tmp_path / "vblk.kill").write_text("")
        deadline = time.monotonic() + 30
        while not (tmp_path / "vblk.killed").exists():
            assert time.monotonic() < deadline, "no kill within 30 s"
            time.sleep(0.05)
        assert int((tmp_path / "vblk.killed").read_text()) == first
        assert not _alive(first) and running.procs[0].returncode == -9
        fence = running.proc
        assert fence.pid != first and fence.poll() is None
        assert _connects(tmp_path / "vblk.sock")       # the fence accepts (and ends when this side closes)
    finally:
        running.stop()
    assert all(proc.poll() is not None for proc in running.procs)
    assert "fence" in (tmp_path / "vblk-backend.log").read_text()


def test_guest_ram_is_a_shared_memfd_the_back_end_can_map() -> None:
    args = " ".join(VHOST_MODEL.devices)
    assert "memory-backend-memfd" in args and "share=on" in args
    assert VHOST_MODEL.board.endswith("memory-backend=guest-ram") and f"size={VHOST_MODEL.memory_mib}M" in args
