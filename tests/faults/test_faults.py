"""The fault suite (issue 16): QEMU killed (SIGKILL) and stopped (SIGSTOP) mid-I/O, the behavioural
model's device stalled, the RTL simulator stopped (SIGSTOP; the RTL stalling under its driver is
tests/hwsim/vblk/cocotb_stall.py), a FIFO or NBD client killed mid-request, completion callbacks that raise. Each ends
in clear errors for the requests it touched, within a bound (timeouts that fail the test), with the other
requests and clients unaffected, and every process and file cleaned up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from drivers.block.protocol import BlockCommand, BlockOp, BlockStatus, Vmo, read_blocks, write_blocks
from drivers.block.ramdisk import RamDisk
from drivers.block_services.client import BlockClient
from drivers.block_services.nbd import NbdServer
from drivers.block_services.server import BlockServer
from drivers.virtio.blk import VirtioBlk
from hwsim.cosim import runner
from hwsim.integration.block_targets import bound_virtio_blk, virtio_blk_board
from hwsim.models import ModelSpace, VirtioBlkModel
from hwsim.qemu import QemuSpace

BS = 512
BOUND = 30.0  # seconds any fault may take to end every request it touched


class Ledger:
    """Every op submitted and every completion seen: each op must complete exactly once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.submitted: list[BlockOp] = []
        self.completions: dict[int, list[BlockStatus]] = {}
        self.changed = threading.Condition(self.lock)

    def submit(self, device: Any, op: BlockOp) -> None:
        with self.lock:
            self.submitted.append(op)
        device.queue(op, self)

    def __call__(self, status: BlockStatus, op: BlockOp) -> None:
        with self.lock:
            self.completions.setdefault(id(op), []).append(BlockStatus(status))
            self.changed.notify_all()

    def wait_all(self, timeout: float = BOUND) -> None:
        deadline = time.monotonic() + timeout
        with self.lock:
            while len(self.completions) < len(self.submitted):
                left = deadline - time.monotonic()
                assert left > 0, (f"{len(self.submitted) - len(self.completions)} of {len(self.submitted)} "
                                  f"requests never completed within {timeout} s")
                self.changed.wait(min(left, 0.1))

    def statuses(self) -> list[BlockStatus]:
        with self.lock:
            assert all(len(self.completions.get(id(op), [])) == 1 for op in self.submitted), \
                "a request completed more than once"
            return [self.completions[id(op)][0] for op in self.submitted]


def keep_busy(device: Any, ledger: Ledger, stop: threading.Event, depth: int = 32) -> threading.Thread:
    """A thread that keeps `depth` reads in flight until `stop` or the device answers other than OK."""

    def run() -> None:
        vmos = [Vmo(np.zeros(64 * 1024, dtype=np.uint8)) for _ in range(depth)]
        sem = threading.Semaphore(depth)
        failed = threading.Event()

        def done(status: BlockStatus, op: BlockOp) -> None:
            ledger(status, op)
            if status is not BlockStatus.OK:
                failed.set()
            sem.release()

        i = 0
        while not stop.is_set() and not failed.is_set():
            if not sem.acquire(timeout=0.1):
                continue
            op = BlockOp(BlockCommand.READ, 128, (i * 128) % 8192, 0, vmos[i % depth])
            with ledger.lock:
                ledger.submitted.append(op)
            device.queue(op, done)
            i += 1

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.05)
    return False



def qemu_blk(tmp_path: Path, **options: Any) -> tuple[QemuSpace, Any]:
    """QEMU with a 4 MiB disk, and a context manager binding virtio-blk (IRQ-thread completions) on it."""
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(4 << 20))
    space = QemuSpace(image=str(image), ram_size=64 << 20, command_timeout=options.pop("command_timeout", 10.0))
    board = virtio_blk_board(space, "qemu-virt")
    return space, bound_virtio_blk(board, space, space.irq_factory, completions="thread", **options)


def assert_cleaned_up(space: QemuSpace, pid: int, tmpdir: str) -> None:
    space.close()
    assert gone(pid), f"QEMU pid {pid} still runs"
    assert not os.path.exists(space.ram_path) and not os.path.exists(tmpdir)


# --- QEMU ---------------------------------------------------------------------------------------------
def test_qemu_killed_mid_io_fails_every_request_in_flight_at_once(tmp_path: Path) -> None:
    space, binding = qemu_blk(tmp_path)
    pid, tmpdir = space.pid, space._process.tmpdir
    try:
        with binding as blk:
            ledger, stop = Ledger(), threading.Event()
            busy = keep_busy(blk, ledger, stop)
            time.sleep(0.3)
            os.kill(pid, signal.SIGKILL)
            busy.join(BOUND)
            assert not busy.is_alive()
            ledger.wait_all()  # today: the IRQ thread dies on QemuError and 32 of 32 never complete
            statuses = ledger.statuses()
            assert BlockStatus.IO_NOT_PRESENT in statuses
            assert set(statuses) <= {BlockStatus.OK, BlockStatus.IO_NOT_PRESENT}
            assert blk.failed and "QEMU" in f"{type(blk.failure).__name__} {blk.failure}"
            late = Ledger()
            late.submit(blk, BlockOp(BlockCommand.FLUSH))
            late.wait_all(5)
            assert late.statuses() == [BlockStatus.IO_NOT_PRESENT]
    finally:
        assert_cleaned_up(space, pid, tmpdir)


def test_qemu_stopped_mid_io_fails_its_requests_after_the_request_timeout(tmp_path: Path) -> None:
    space, binding = qemu_blk(tmp_path, command_timeout=2.0, request_timeout=2.0)
    pid, tmpdir = space.pid, space._process.tmpdir
    try:
        with binding as blk:
            ledger = Ledger()
            os.kill(pid, signal.SIGSTOP)
            for i in range(16):
                ledger.submit(blk, BlockOp(BlockCommand.READ, 8, 8 * i, 0, Vmo(np.zeros(4096, dtype=np.uint8))))
            ledger.wait_all()  # request_timeout + the reset's command_timeout, well inside the bound
            assert ledger.statuses() == [BlockStatus.IO_NOT_PRESENT] * 16
            # the doorbell times out (qtest has no answer), or the stall clock runs out: either names it
            assert blk.failed and ("no reply" in str(blk.failure) or "no request completed" in str(blk.failure))
    finally:
        os.kill(pid, signal.SIGKILL)
        assert_cleaned_up(space, pid, tmpdir)


def test_unbind_after_qemu_died_answers_everything_and_cleans_up(tmp_path: Path) -> None:
    space, binding = qemu_blk(tmp_path)
    pid, tmpdir = space.pid, space._process.tmpdir
    try:
        with binding as blk:
            write_blocks(blk, 0, b"\x42" * BS, timeout=10)
            assert read_blocks(blk, 0, 1, timeout=10) == b"\x42" * BS
            os.kill(pid, signal.SIGKILL)
            assert gone_or_zombie(pid)
        # bus.close() unbound it: no exception escaped, and the device is dead
        assert blk.dead
    finally:
        assert_cleaned_up(space, pid, tmpdir)


def gone_or_zombie(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(")")[-1].split()[0] in ("Z", "X"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


# --- the behavioural model ----------------------------------------------------------------------------
@pytest.fixture
def stalled_model() -> Iterator[tuple[VirtioBlkModel, VirtioBlk]]:
    model = VirtioBlkModel(size=1 << 20, deferred=True)
    with ModelSpace(model, ram_size=16 << 20) as space, \
            bound_virtio_blk(virtio_blk_board(space, "faults"), space, space.interrupt, completions="thread",
                             request_timeout=1.0) as blk:
        yield model, blk


def test_a_stalled_model_fails_its_requests_and_nothing_else(stalled_model: Any) -> None:
    model, blk = stalled_model
    write_blocks(blk, 0, b"\x01" * BS, timeout=10)  # it works before the stall
    model.run_queue = lambda: None  # the device stops processing its queue
    ledger = Ledger()
    for i in range(8):
        ledger.submit(blk, BlockOp(BlockCommand.READ, 1, i, 0, Vmo(np.zeros(BS, dtype=np.uint8))))
    ledger.wait_all()
    assert ledger.statuses() == [BlockStatus.IO_NOT_PRESENT] * 8


# --- the RTL simulator stopped -------------------------------------------------------------------------
def test_a_stopped_simulator_is_killed_and_named_within_its_run_timeout(tmp_path: Path) -> None:
    """SIGSTOP the simulator mid-run: runner.run kills it after its wall-clock bound and raises
    SimulationTimeout naming the module and the bound (cocotb's runner alone would wait for ever)."""
    rtl = Path(__file__).resolve().parents[1] / "hwsim" / "cosim" / "rtl"
    masters = ("hwsim_axil_master.v", "hwsim_apb_master.v", "hwsim_wb_master.v", "hwsim_avmm_master.v")
    built = runner.build("icarus", [*(runner.hdl_source(m) for m in masters), rtl / "tb_slow.v"], "tb_slow")
    pid_file = tmp_path / "sim.pid"
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            runner.run(built, "cocotb_stopped", test_dir=tmp_path / "run", module_dir=Path(__file__).parent,
                       extra_env={"STOPPED_PID_FILE": str(pid_file)}, timeout=15)
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + BOUND
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and thread.is_alive(), f"the simulation never started: {outcome}"
        time.sleep(0.05)
    pid = int(pid_file.read_text())
    os.kill(pid, signal.SIGSTOP)
    thread.join(BOUND)
    assert not thread.is_alive(), "runner.run still waits on a stopped simulator"
    assert len(outcome) == 1 and isinstance(outcome[0], runner.SimulationTimeout), outcome
    assert "cocotb_stopped: icarus: vvp did not finish within 15 s of wall-clock time" in str(outcome[0])
    assert gone(pid), f"simulator pid {pid} still runs"


# --- completion callbacks that raise ------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["ramdisk-worker", "virtio-thread", "virtio-poll"])
def test_completion_callbacks_that_raise_cost_nothing_but_themselves(kind: str) -> None:
    with device_of(kind) as dev:
        calls = []

        def bad(status: BlockStatus, op: BlockOp) -> None:
            calls.append(status)
            raise RuntimeError("a caller's bug")

        for i in range(16):
            try:
                dev.queue(BlockOp(BlockCommand.WRITE, 1, i, 0, Vmo(np.full(BS, i, dtype=np.uint8))), bad)
            except RuntimeError:
                pass  # a synchronous completion raises on the caller's own thread: its bug, its stack
        write_blocks(dev, 100, b"\x07" * BS, timeout=10)
        assert read_blocks(dev, 100, 1, timeout=10) == b"\x07" * BS
        assert len(calls) == 16 and set(calls) == {BlockStatus.OK}
        assert read_blocks(dev, 5, 1, timeout=10) == bytes([5]) * BS


class device_of:
    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._stack: list[Any] = []

    def __enter__(self) -> Any:
        if self.kind.startswith("ramdisk"):
            self.disk = RamDisk(1 << 20, BS, worker=self.kind.endswith("worker"))
            return self.disk
        space = ModelSpace(VirtioBlkModel(size=1 << 20), ram_size=16 << 20)
        self._stack.append(space)
        space.__enter__()
        binding = bound_virtio_blk(virtio_blk_board(space, "faults"), space, space.interrupt,
                                   completions=self.kind.split("-")[1])
        self._stack.append(binding)
        return binding.__enter__()

    def __exit__(self, *exc: object) -> None:
        if self.kind.startswith("ramdisk"):
            self.disk.unbind()
        for ctx in reversed(self._stack):
            ctx.__exit__(None, None, None)


# --- clients killed mid-request -----------------------------------------------------------------------
FIFO_VICTIM = """
import sys
from drivers.block_services.client import BlockClient
from drivers.block_services.fifo import FifoOp, Request
blk = BlockClient(sys.argv[1])
buf = blk.attach(64 * 512)
blk.send([Request(FifoOp.READ, reqid=blk.next_reqid(), vmoid=buf.vmoid, length=64, dev_offset=64 * (i % 16))
          for i in range(64)])
print("sent", flush=True)
import time; time.sleep(60)
"""


def test_a_fifo_client_killed_mid_request_costs_the_others_nothing(tmp_path: Path) -> None:
    disk = RamDisk(2048 * BS, BS, worker=True)
    hold = threading.Event()
    real_queue = disk.queue
    held: list[Any] = []

    def slow_queue(op: BlockOp, completion: Any) -> None:
        if not hold.is_set():
            held.append((op, completion))  # in flight at the device while the client dies
            return
        real_queue(op, completion)

    disk.queue = slow_queue  # type: ignore[method-assign]
    server = BlockServer(disk, tmp_path / "fifo.sock").start()
    victim = subprocess.Popen([sys.executable, "-c", FIFO_VICTIM, server.path], stdout=subprocess.PIPE, text=True)
    try:
        assert victim.stdout is not None and victim.stdout.readline().strip() == "sent"
        wait(lambda: len(held) >= 8)
        victim.kill()
        victim.wait(10)
        hold.set()
        for op, completion in held:  # the device finishes what the dead client asked for
            real_queue(op, completion)
        with BlockClient(server.path, timeout=10) as other:
            buf = other.attach(BS)
            buf.array[:] = 0x3C
            other.write(buf, 2000, 1)
            buf.array[:] = 0
            other.read(buf, 2000, 1)
            assert (buf.array == 0x3C).all()
        wait(lambda: len(server.session_vmos()) == 0)  # the victim's session and buffers are gone
    finally:
        if victim.poll() is None:
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
        server.stop()
        disk.unbind()
    assert not os.path.exists(tmp_path / "fifo.sock")


def test_an_nbd_client_killed_mid_request_on_virtio_costs_the_others_nothing(tmp_path: Path) -> None:
    with device_of("virtio-thread") as blk:
        server = NbdServer(blk, unix_path=tmp_path / "nbd.sock").start()
        victim = subprocess.Popen([sys.executable, "-c", NBD_VICTIM, str(server.unix_path)],
                                  stdout=subprocess.PIPE, text=True)
        try:
            assert victim.stdout is not None and victim.stdout.readline().strip() == "sent"
            os.kill(victim.pid, signal.SIGKILL)
            victim.wait(10)
            out = subprocess.run(["qemu-io", "-f", "raw", "-c", "write -P 0x5a 0 4k", "-c", "read -P 0x5a 0 4k",
                                  server.uri], capture_output=True, text=True, timeout=60)
            assert out.returncode == 0 and "Pattern verification failed" not in out.stdout, out.stderr
            wait(lambda: server.stats.active == 0)
        finally:
            if victim.poll() is None:
                os.kill(victim.pid, signal.SIGKILL)
                victim.wait(10)
            server.stop()
    assert not os.path.exists(tmp_path / "nbd.sock")


NBD_VICTIM = """
import socket, struct, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.recv(18); s.sendall(struct.pack(">I", 3))
s.sendall(struct.pack(">QII", 0x49484156454F5054, 7, 6) + bytes(6))
for handle in range(64):
    s.sendall(struct.pack(">IHHQQI", 0x25609513, 0, 0, handle, 0, 256 * 1024))
print("sent", flush=True)
import time; time.sleep(60)
"""


def wait(condition: Callable[[], bool], timeout: float = BOUND) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not reached within the bound"
        time.sleep(0.02)
