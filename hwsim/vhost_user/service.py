"""The vhost-user-blk back end as a Linux guest's host service: a separate process serving the device on a
socket in the run's share, with QEMU's vhost-user-blk-pci connected to it.

The back end's log goes to `<name>-backend.log` in the share. A guest test can have the back end killed
(SIGKILL) by creating `<name>.kill` in the share: a watcher thread kills it by PID, starts the fence
(hwsim.vhost_user.fence) on the same socket so that QEMU's reconnect finds a device that fails every request,
and writes `<name>.killed`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from hwsim.linux.errors import LinuxGuestError
from hwsim.linux.machine import Machine
from hwsim.linux.service import HostService, RunningService

KILL_POLL = 0.2   # seconds between looks for the kill request


@dataclass(frozen=True)
class VhostUserBlkService(HostService):
    """A vhost-user-blk back end (`device`: "model", or "rtl" for the RTL under Verilator) of `size` bytes."""

    name: str = "vblk"
    device: str = "model"
    size: int = 32 << 20
    start_timeout: float = 120.0
    reconnect: int = 1          # seconds between QEMU's reconnect attempts

    def command(self, socket_path: Path, ready: Path) -> list[str]:
        module = "hwsim.vhost_user" if self.device in ("model", "fence") else "hwsim.vhost_user.rtl_main"
        return [sys.executable, "-m", module, *([self.device] if module == "hwsim.vhost_user" else []),
                "--socket", str(socket_path), "--size", str(self.size), "--ready", str(ready)]

    def start(self, share: Path, attempt: int) -> RunningService:
        return RunningBackend(self, share, attempt)


class RunningBackend(RunningService):
    def __init__(self, service: VhostUserBlkService, share: Path, attempt: int) -> None:
        self.service = service
        self.share = share
        self.socket_path = share / f"{service.name}.sock"
        self.log_path = share / f"{service.name}-backend.log"
        self.procs: list[subprocess.Popen[bytes]] = []
        # launcher PID -> PID of the process that holds the socket (the launcher itself, or its simulator)
        self.serving: dict[int, int] = {}
        self.proc = self._spawn(service, attempt)
        self.qemu_args = ["-chardev", f"socket,id={service.name},path={self.socket_path},"
                                      f"reconnect={service.reconnect}",
                          "-device", f"vhost-user-blk-pci,chardev={service.name},num-queues=1"]
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch, name=f"{service.name}-kill-watch", daemon=True)
        self._watcher.start()

    def _spawn(self, service: VhostUserBlkService, attempt: int) -> subprocess.Popen[bytes]:
        ready = self.share / f"{service.name}.ready"
        ready.unlink(missing_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"--- attempt {attempt}: {service.device} ---\n".encode())
            log.flush()
            proc = subprocess.Popen(service.command(self.socket_path, ready), stdin=subprocess.DEVNULL,
                                    stdout=log, stderr=log, start_new_session=True)
        self.procs.append(proc)
        deadline = time.monotonic() + service.start_timeout
        while not ready.exists() or not ready.read_text().strip():
            if proc.poll() is not None or time.monotonic() > deadline:
                self._kill_all()
                raise LinuxGuestError(f"vhost-user back end {service.device!r} did not start listening within "
                                      f"{service.start_timeout:g} s (exit {proc.poll()}); log:\n"
                                      f"{self.log_path.read_text(errors='replace')[-3000:]}")
            time.sleep(0.05)
        self.serving[proc.pid] = int(ready.read_text().split()[0])
        return proc

    def _watch(self) -> None:
        request = self.share / f"{self.service.name}.kill"
        while not self._done.wait(KILL_POLL):
            if not request.exists():
                continue
            request.unlink()
            victim = self.serving[self.proc.pid]
            if self.proc.poll() is None:   # the launcher is alive, so its simulator's PID is still its child's
                _kill_pid(victim)
            try:                       # the RTL's launcher ends once its simulator is gone
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                _kill_pid(self.proc.pid)
                self.proc.wait(timeout=30)
            fence = VhostUserBlkService(self.service.name, "fence", self.service.size)
            self.proc = self._spawn(fence, 0)
            (self.share / f"{self.service.name}.killed").write_text(f"{victim}\n")

    def _kill_all(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:     # the launcher's own session: it and the simulator it started
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=30)

    def stop(self) -> None:
        self._done.set()
        if self._watcher.is_alive():
            self._watcher.join(timeout=30)
        for proc in self.procs:        # QEMU is gone: each back end sees the socket close and exits
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self._kill_all()


def _kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def vhost_blk_machine(name: str, service: VhostUserBlkService, memory_mib: int = 512) -> Machine:
    """A guest whose RAM is a shared memfd (vhost-user needs it) with `service`'s disk as its virtio-blk."""
    return Machine(name, board="q35,memory-backend=guest-ram", memory_mib=memory_mib,
                   devices=("-object", f"memory-backend-memfd,id=guest-ram,size={memory_mib}M,share=on"),
                   services=(service,))
