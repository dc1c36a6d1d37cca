"""Shared pieces of the block tests: a recording/holding device wrapper and a subprocess tracker."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

from drivers.block.protocol import BlockDevice, BlockInfo, BlockOp, Completion

BS = 512
BLOCKS = 2048  # 1 MiB
HERE = Path(__file__).parent


class Recorder(BlockDevice):
    """Wraps a device and records every op it was handed (and, optionally, holds them until released)."""

    def __init__(self, inner: BlockDevice, info: BlockInfo | None = None) -> None:
        self.inner = inner
        self._info = info
        self.ops: list[BlockOp] = []
        self.gate: threading.Event | None = None
        self.held: list[tuple[BlockOp, Completion]] = []
        self._lock = threading.Lock()

    def query(self) -> BlockInfo:
        return self._info or self.inner.query()

    def queue(self, op: BlockOp, completion: Completion) -> None:
        with self._lock:
            self.ops.append(op)
            if self.gate is not None and not self.gate.is_set():
                self.held.append((op, completion))
                return
        self.inner.queue(op, completion)

    def hold(self) -> None:
        self.gate = threading.Event()

    def release(self) -> None:
        """Run the held ops from another thread, as an asynchronous device completes them."""
        assert self.gate is not None
        with self._lock:
            self.gate.set()
            held, self.held = self.held, []

        def run() -> None:
            for op, completion in held:
                self.inner.queue(op, completion)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join(10)


class Procs:
    """Subprocesses a test starts; each is killed by PID at teardown if still running."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, *args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([sys.executable, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        self.procs.append(proc)
        return proc

    def worker(self, *args: str) -> subprocess.Popen[str]:
        return self.start(str(HERE / "fifo_worker.py"), *args)

    def cleanup(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                os.kill(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=10)
