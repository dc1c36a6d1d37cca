"""The vhost-user back end against a front end of our own over a real UNIX socket, guest RAM in a memfd: the
messages QEMU's vhost-user-blk sends, requests through the behavioural model, and messages it must refuse."""

from __future__ import annotations

import os
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # frontend, the tests' helper (importlib mode)

from frontend import FrontEnd

from hwsim.models.virtio_blk import S_IOERR, S_OK, T_IN, T_OUT, VirtioBlkModel
from hwsim.vhost_user import VhostUserBackend, VhostUserError, listen
from hwsim.vhost_user.fence import FencedBlk
from hwsim.vhost_user.messages import U64, VRING_ADDR, VRING_STATE
from hwsim.vhost_user.messages import VhostUserRequest as R
from hwsim.vhost_user.model_target import ModelTarget

F_VERSION_1, F_PROTOCOL, F_FLUSH, F_BLK_SIZE = 1 << 32, 1 << 30, 1 << 9, 1 << 6


class Served:
    """A back end serving `model` in a thread, and the front end connected to it."""

    def __init__(self, tmp: Path, model: VirtioBlkModel) -> None:
        path = str(tmp / "vu.sock")
        listener = listen(path)
        self.backend = VhostUserBackend(ModelTarget(model), path)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._serve, args=(listener,), daemon=True)
        self.thread.start()
        self.front = FrontEnd(path)

    def _serve(self, listener: object) -> None:
        try:
            self.backend.serve(listener)  # type: ignore[arg-type]
        except BaseException as exc:  # the test asserts on it
            self.error = exc

    def finish(self) -> BaseException | None:
        """Close the front end's side; the back end's exception, if it ended with one."""
        self.front.close()
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the back end did not end when the front end disconnected"
        return self.error


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    s = Served(tmp_path, VirtioBlkModel(size=1 << 20))
    yield s
    s.finish()


def test_features_protocol_features_queue_num_and_config(served: Served) -> None:
    front = served.front
    features = U64.unpack(front.ask(R.GET_FEATURES))[0]
    wanted = F_VERSION_1 | F_PROTOCOL | F_FLUSH | F_BLK_SIZE
    assert features & wanted == wanted
    assert U64.unpack(front.ask(R.GET_PROTOCOL_FEATURES))[0] == 1 << 9 | 1 << 3 | 1   # CONFIG, REPLY_ACK, MQ
    assert U64.unpack(front.ask(R.GET_QUEUE_NUM))[0] == 1
    config = front.config()
    assert struct.unpack_from("<Q", config, 0)[0] == (1 << 20) // 512      # capacity in sectors
    assert struct.unpack_from("<I", config, 0x14)[0] == 512                # blk_size
    assert len(front.config(0x48)) == 0x48                                 # a newer, longer layout: zero padded


def test_write_then_read_back_through_kick_and_call(served: Served) -> None:
    front = served.front
    front.setup(F_VERSION_1 | F_FLUSH | F_BLK_SIZE | F_PROTOCOL)
    data = os.urandom(4096)
    out = front.request(T_OUT, 8, data=data)
    front.notify()
    front.wait_call()
    assert front.used_idx() == 1 and front.status_of(out) == S_OK
    assert served.backend.target.model.media.sector(8, 8) == data  # type: ignore[attr-defined]
    back = front.request(T_IN, 8, read_len=4096)
    front.notify()
    front.wait_call()
    assert front.used_idx() == 2 and front.status_of(back) == S_OK
    assert front.used_elem(1) == (back[0], 4097)
    assert bytes(front.ram[back[1]:back[1] + 4096]) == data
    assert VRING_STATE.unpack(front.ask(R.GET_VRING_BASE, VRING_STATE.pack(0, 0))) == (0, 2)


def test_requests_queued_before_the_ring_starts_complete_at_start(served: Served) -> None:
    front = served.front
    front.request(T_IN, 0, read_len=512)               # made available before kick fd and enable arrive
    front.setup(F_VERSION_1 | F_PROTOCOL)
    front.avail_idx = 1
    front.wait_call()
    assert front.used_idx() == 1


def test_fence_resumes_at_the_base_and_fails_every_request(tmp_path: Path) -> None:
    s = Served(tmp_path, FencedBlk(size=1 << 20))
    front = s.front
    front.avail_idx = front.next_desc = 5              # the dead back end completed five requests
    struct.pack_into("<H", front.ram, 0x3002, 5)
    pending = [front.request(T_IN, 0, read_len=512), front.request(T_OUT, 0, data=bytes(512))]
    front.setup(F_VERSION_1 | F_PROTOCOL, base=5)
    front.avail_idx = 7
    front.wait_call()
    assert front.used_idx() == 7
    assert [front.status_of(p) for p in pending] == [S_IOERR, S_IOERR]
    assert front.used_elem(5)[1] == 1 and s.backend.target.model.media.sector(0) == bytes(512)  # type: ignore[attr-defined]
    assert s.finish() is None


@pytest.mark.parametrize(("request_", "payload", "message"), [
    (R.SET_VRING_NUM, VRING_STATE.pack(0, 3), "SET_VRING_NUM 3: not a power of two"),
    (R.SET_VRING_NUM, VRING_STATE.pack(1, 8), "vring 1, but the device has one queue"),
    (R.SET_FEATURES, U64.pack(1 << 63), "bits the device does not offer"),
    (R.SET_VRING_ADDR, bytes(40), "SET_VRING_ADDR before SET_MEM_TABLE"),
    (R.GET_INFLIGHT_FD, b"", "GET_INFLIGHT_FD is not supported"),
    (R.SET_FEATURES, b"\0\0", "SET_FEATURES: payload of 2 bytes, 8 expected"),
])
def test_bad_messages_end_the_session_with_an_error_naming_them(tmp_path: Path, request_: int, payload: bytes,
                                                               message: str) -> None:
    s = Served(tmp_path, VirtioBlkModel(size=1 << 20))
    s.front.send(request_, payload)
    s.thread.join(timeout=10)
    error = s.finish()
    assert isinstance(error, VhostUserError) and message in str(error)


def test_ring_address_outside_guest_ram_is_refused(tmp_path: Path) -> None:
    s = Served(tmp_path, VirtioBlkModel(size=1 << 20))
    front = s.front
    front.setup(F_VERSION_1 | F_PROTOCOL)
    front.send(R.SET_VRING_ADDR, VRING_ADDR.pack(0, 0, 0x1000, 0x2000, 0x3000, 0))
    s.thread.join(timeout=10)
    error = s.finish()
    assert isinstance(error, VhostUserError) and "descriptor table at front-end address 0x1000" in str(error)
