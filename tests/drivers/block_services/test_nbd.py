"""The NBD export against real clients (qemu-img, qemu-io, nbdinfo, nbdcopy, fio) and against a raw
client for the protocol cases those tools never produce."""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from drivers.block.filedisk import FileDisk
from drivers.block.protocol import BlockFlag
from drivers.block.ramdisk import RamDisk
from drivers.block_services import nbd_protocol as P
from drivers.block_services.nbd import NbdServer

from .block_helpers import RawNbd

MiB = 1 << 20
SIZE = 16 * MiB


def run(*cmd: str, ok: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120, cwd=cwd)
    if ok:
        assert proc.returncode == 0, f"{cmd[0]} failed ({proc.returncode}): {proc.stdout}\n{proc.stderr}"
    return proc


@pytest.fixture
def disk() -> Iterator[RamDisk]:
    d = RamDisk(SIZE, 512)
    yield d
    d.unbind()


@pytest.fixture
def server(disk: RamDisk, sockdir: Path) -> Iterator[NbdServer]:
    with NbdServer(disk, unix_path=sockdir / "nbd.sock", name="disk0", description="test ram disk") as s:
        yield s


@pytest.fixture
def raw(server: NbdServer) -> Iterator[RawNbd]:
    client = RawNbd(str(server.address))
    yield client
    client.close()


def random_image(path: Path, size: int, seed: int = 0) -> bytes:
    data = np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()
    path.write_bytes(data)
    return data


# --- real clients -----------------------------------------------------------------------------------------
def test_qemu_img_info_reports_the_export_size(server: NbdServer) -> None:
    info = json.loads(run("qemu-img", "info", "--output=json", server.uri).stdout)
    assert info["virtual-size"] == SIZE and info["format"] == "raw"


def test_qemu_img_info_works_over_loopback_tcp(disk: RamDisk) -> None:
    with NbdServer(disk, tcp=("127.0.0.1", 0)) as tcp:
        assert tcp.uri.startswith("nbd://127.0.0.1:")
        info = json.loads(run("qemu-img", "info", "--output=json", tcp.uri).stdout)
    assert info["virtual-size"] == SIZE


def test_qemu_img_convert_writes_an_image_and_compare_checks_it(server: NbdServer, disk: RamDisk,
                                                                tmp_path: Path) -> None:
    src = tmp_path / "src.img"
    data = random_image(src, SIZE, 1)
    run("qemu-img", "convert", "-n", "-f", "raw", "-O", "raw", str(src), server.uri)
    assert disk.data.tobytes() == data
    run("qemu-img", "compare", "-f", "raw", "-F", "raw", str(src), server.uri)
    disk.data[12345] ^= 0xFF
    differ = run("qemu-img", "compare", "-f", "raw", "-F", "raw", str(src), server.uri, ok=False)
    assert differ.returncode == 1 and "Content mismatch at offset 12288" in differ.stdout


def test_qemu_io_patterns_round_trip_including_unaligned_fua_zeroes_and_discard(server: NbdServer,
                                                                                disk: RamDisk) -> None:
    disk.data[:] = 0x77
    out = run("qemu-io", "-f", "raw",
              "-c", "write -P 0xa5 64k 128k", "-c", "read -P 0xa5 64k 128k",
              "-c", "write -P 0x11 3 5", "-c", "read -P 0x11 3 5",
              "-c", "write -f -P 0x22 1M 4k", "-c", "flush",
              "-c", "write -z 2M 64k", "-c", "read -P 0 2M 64k",
              "-c", "discard 4M 64k", server.uri).stdout
    assert "Pattern verification failed" not in out
    assert (disk.data[64 << 10:192 << 10] == 0xA5).all()
    assert disk.data[:8].tobytes() == b"\x77\x77\x77" + b"\x11" * 5 and disk.data[8] == 0x77
    assert (disk.data[MiB:MiB + 4096] == 0x22).all()
    assert not disk.data[2 * MiB:2 * MiB + (64 << 10)].any()


def test_qemu_io_notices_a_wrong_pattern(server: NbdServer, disk: RamDisk) -> None:
    disk.data[:4096] = 0x01
    out = run("qemu-io", "-f", "raw", "-c", "read -P 0x02 0 4k", server.uri, ok=False)
    assert "Pattern verification failed" in out.stdout + out.stderr


def test_nbdinfo_describes_the_export(server: NbdServer) -> None:
    info = json.loads(run("nbdinfo", "--json", server.uri).stdout)
    (export,) = info["exports"]
    assert export["export-name"] == "disk0" and export["export-size"] == SIZE
    assert export["block_size_minimum"] == 512 and export["block_size_maximum"] == P.MAX_PAYLOAD
    for flag in ("can_flush", "can_fua", "can_trim", "can_zero", "can_multi_conn"):
        assert export[flag] is True, flag
    assert export["is_read_only"] is False
    listing = run("nbdinfo", "--list", server.uri).stdout
    assert "disk0" in listing and "test ram disk" in listing


def test_nbdinfo_sees_a_read_only_export(disk: RamDisk, sockdir: Path) -> None:
    with NbdServer(disk, unix_path=sockdir / "ro.sock", read_only=True) as ro:
        export = json.loads(run("nbdinfo", "--json", ro.uri).stdout)["exports"][0]
        assert export["is_read_only"] is True
        out = run("qemu-io", "-f", "raw", "-c", "write -P 1 0 4k", ro.uri, ok=False)
    assert "Operation not permitted" in out.stdout + out.stderr or out.returncode != 0
    assert not disk.data[:4096].any()


def test_nbdcopy_copies_out_of_and_into_the_export(server: NbdServer, disk: RamDisk, tmp_path: Path) -> None:
    disk.data[:] = np.random.default_rng(2).integers(0, 256, SIZE, dtype=np.uint8)
    out = tmp_path / "out.img"
    run("nbdcopy", server.uri, str(out))
    assert out.read_bytes() == disk.data.tobytes()
    src = tmp_path / "in.img"
    data = random_image(src, SIZE, 3)
    run("nbdcopy", str(src), server.uri)
    assert disk.data.tobytes() == data


def test_fio_nbd_engine_verifies_what_it_wrote(server: NbdServer, tmp_path: Path) -> None:
    result = tmp_path / "fio.json"
    run("fio", "--name=verify", "--ioengine=nbd", f"--uri={server.uri}", "--rw=randwrite", "--bs=4k",
        "--size=4M", "--iodepth=8", "--verify=crc32c", "--do_verify=1", "--verify_state_save=0",
        "--output-format=json", f"--output={result}", cwd=tmp_path)
    (job,) = json.loads(result.read_text())["jobs"]
    assert job["error"] == 0
    assert job["write"]["io_bytes"] == 4 * MiB and job["read"]["io_bytes"] == 4 * MiB  # every block verified


def test_an_image_file_export_round_trips_through_qemu_io(tmp_path: Path, sockdir: Path) -> None:
    image = tmp_path / "disk.img"
    random_image(image, 4 * MiB, 4)
    with FileDisk(image) as fdisk, NbdServer(fdisk, unix_path=sockdir / "f.sock") as srv:
        run("qemu-io", "-f", "raw", "-c", "write -f -P 0x5c 8k 8k", "-c", "discard 1M 4k", srv.uri)
    data = image.read_bytes()
    assert data[8192:16384] == b"\x5c" * 8192
    assert data[MiB:MiB + 4096] == bytes(4096)  # a punched hole reads as zeroes


# --- the handshake, raw -----------------------------------------------------------------------------------
def test_handshake_offers_fixed_newstyle_and_no_zeroes(raw: RawNbd) -> None:
    assert raw.greet() == P.FLAG_FIXED_NEWSTYLE | P.FLAG_NO_ZEROES


def test_list_names_the_export_then_abort_is_acknowledged(raw: RawNbd) -> None:
    raw.greet()
    raw.option(P.OPT_LIST)
    option, kind, data = raw.reply()
    assert (option, kind) == (P.OPT_LIST, P.REP_SERVER)
    assert data[4:4 + int.from_bytes(data[:4], "big")] == b"disk0"
    assert raw.reply()[1] == P.REP_ACK
    raw.option(P.OPT_ABORT)
    assert raw.reply()[1] == P.REP_ACK
    assert raw.closed()


def test_list_with_data_is_invalid(raw: RawNbd) -> None:
    raw.greet()
    raw.option(P.OPT_LIST, b"x")
    assert raw.reply()[1] == P.REP_ERR_INVALID


@pytest.mark.parametrize("option", [11, 4242])  # 11: NBD_OPT_EXTENDED_HEADERS, not offered
def test_an_unsupported_option_is_refused_and_negotiation_goes_on(raw: RawNbd, option: int) -> None:
    raw.greet()
    raw.option(option, b"\0" * 8 if option == 4242 else b"")
    assert raw.reply()[1] == P.REP_ERR_UNSUP
    infos = dict(raw.go(b"disk0"))
    assert P.EXPORT_INFO.unpack(P.INFO_EXPORT.to_bytes(2, "big") + infos[P.INFO_EXPORT])[1] == SIZE


def test_info_and_go_answer_the_requested_information(raw: RawNbd, server: NbdServer) -> None:
    raw.greet()
    infos = dict(raw.go(b"", (P.INFO_NAME, P.INFO_DESCRIPTION, P.INFO_BLOCK_SIZE)))
    _, size, flags = P.EXPORT_INFO.unpack(P.INFO_EXPORT.to_bytes(2, "big") + infos[P.INFO_EXPORT])
    assert size == SIZE and flags == server.transmission_flags
    assert infos[P.INFO_NAME] == b"disk0" and infos[P.INFO_DESCRIPTION] == b"test ram disk"
    assert P.BLOCK_SIZE_INFO.unpack(P.INFO_BLOCK_SIZE.to_bytes(2, "big") + infos[P.INFO_BLOCK_SIZE])[1:] == \
        (512, 4096, P.MAX_PAYLOAD)


def test_go_to_an_unknown_export_is_an_error_reply(raw: RawNbd) -> None:
    raw.greet()
    with pytest.raises(AssertionError, match=f"{P.REP_ERR_UNKNOWN:#x}"):
        raw.go(b"nope")
    assert raw.go(b"disk0")  # still negotiating


@pytest.mark.parametrize("data", [b"", b"\0\0\0\x09disk0\0\0", b"\0\0\0\x05disk0\0\x01"])
def test_malformed_info_data_is_invalid(raw: RawNbd, data: bytes) -> None:
    raw.greet()
    raw.option(P.OPT_INFO, data)
    assert raw.reply()[1] == P.REP_ERR_INVALID


@pytest.mark.parametrize("no_zeroes", [True, False])
def test_export_name_enters_transmission_with_or_without_zero_padding(raw: RawNbd, no_zeroes: bool) -> None:
    raw.greet(3 if no_zeroes else 1)
    raw.option(P.OPT_EXPORT_NAME, b"disk0")
    assert int.from_bytes(raw.recv(8), "big") == SIZE
    raw.recv(2)
    if not no_zeroes:
        assert raw.recv(124) == bytes(124)
    raw.request(P.CMD_READ, 0, 512, handle=99)
    assert raw.simple_reply(512)[:2] == (0, 99)


def test_export_name_of_an_unknown_export_closes_the_connection(raw: RawNbd) -> None:
    raw.greet()
    raw.option(P.OPT_EXPORT_NAME, b"nope")
    assert raw.closed()


def test_unknown_client_flags_close_the_connection(raw: RawNbd) -> None:
    raw.greet(client_flags=0x80)
    assert raw.closed()


# --- transmission, raw ------------------------------------------------------------------------------------
@pytest.fixture
def live(raw: RawNbd) -> RawNbd:
    raw.greet()
    raw.go()
    return raw


def test_out_of_range_requests_get_errors_and_the_connection_survives(live: RawNbd, disk: RamDisk) -> None:
    live.request(P.CMD_READ, SIZE - 512, 1024, handle=1)
    assert live.simple_reply(1024)[:2] == (P.EINVAL, 1)
    live.request(P.CMD_WRITE, SIZE, 512, handle=2, payload=b"\xff" * 512)
    assert live.simple_reply()[:2] == (P.ENOSPC, 2)
    live.request(P.CMD_TRIM, SIZE, 512, handle=3)
    assert live.simple_reply()[:2] == (P.EINVAL, 3)
    assert not disk.data.any()
    live.request(P.CMD_WRITE, 0, 4, handle=4, payload=b"abcd")
    assert live.simple_reply()[:2] == (0, 4)
    assert disk.data[:4].tobytes() == b"abcd"


@pytest.mark.parametrize(("kind", "flags"), [(P.CMD_CACHE, 0), (P.CMD_BLOCK_STATUS, 0), (99, 0),
                                             (P.CMD_READ, P.CMD_FLAG_DF), (P.CMD_WRITE_ZEROES, P.CMD_FLAG_FAST_ZERO),
                                             (P.CMD_READ, 1 << 9)])
def test_unknown_commands_and_flags_are_einval(live: RawNbd, kind: int, flags: int) -> None:
    live.request(kind, 0, 512, flags=flags, handle=7)
    assert live.simple_reply()[:2] == (P.EINVAL, 7)
    live.request(P.CMD_FLUSH, handle=8)
    assert live.simple_reply()[:2] == (0, 8)


def test_writes_to_a_read_only_export_are_eperm(disk: RamDisk, sockdir: Path) -> None:
    with NbdServer(disk, unix_path=sockdir / "ro.sock", read_only=True) as ro:
        c = RawNbd(str(ro.address))
        try:
            c.greet()
            c.go()
            for handle, kind in enumerate((P.CMD_WRITE, P.CMD_TRIM, P.CMD_WRITE_ZEROES)):
                c.request(kind, 0, 512, handle=handle, payload=b"\1" * 512 if kind == P.CMD_WRITE else b"")
                assert c.simple_reply()[:2] == (P.EPERM, handle)
        finally:
            c.close()
    assert not disk.data.any()


def test_a_device_error_becomes_eio(disk: RamDisk, live: RawNbd) -> None:
    disk.inject_io_error(8, 1)
    live.request(P.CMD_READ, 8 * 512, 512, handle=5)
    assert live.simple_reply(512)[:2] == (P.EIO, 5)


def test_a_bad_request_magic_disconnects(live: RawNbd) -> None:
    live.sock.sendall(b"\0" * P.REQUEST.size)
    assert live.closed()


def test_disc_ends_the_connection(live: RawNbd, server: NbdServer) -> None:
    live.request(P.CMD_DISC)
    assert live.closed()


def test_two_connections_write_their_own_regions(server: NbdServer, disk: RamDisk) -> None:
    a, b = RawNbd(str(server.address)), RawNbd(str(server.address))
    try:
        for c in (a, b):
            c.greet()
            c.go()
        for i in range(16):
            a.request(P.CMD_WRITE, i * 4096, 4096, handle=i, payload=b"A" * 4096)
            b.request(P.CMD_WRITE, MiB + i * 4096, 4096, handle=i, payload=b"B" * 4096)
        assert sorted(a.simple_reply()[1] for _ in range(16)) == list(range(16))
        assert sorted(b.simple_reply()[1] for _ in range(16)) == list(range(16))
    finally:
        a.close()
        b.close()
    assert (disk.data[:64 << 10] == ord("A")).all() and (disk.data[MiB:MiB + (64 << 10)] == ord("B")).all()


def test_stop_ends_idle_connections_and_removes_the_socket(disk: RamDisk, sockdir: Path) -> None:
    srv = NbdServer(disk, unix_path=sockdir / "stop.sock").start()
    c = RawNbd(str(srv.address))
    c.greet()
    c.go()
    srv.stop()
    assert c.closed()
    c.close()
    assert not (sockdir / "stop.sock").exists()
    with pytest.raises(OSError):
        socket.socket(socket.AF_UNIX).connect(str(sockdir / "stop.sock"))


def test_server_needs_exactly_one_listen_address(disk: RamDisk) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        NbdServer(disk)


def test_a_device_flagged_read_only_exports_read_only(sockdir: Path) -> None:
    ro_disk = RamDisk(MiB, 512, BlockFlag.READONLY)
    with NbdServer(ro_disk, unix_path=sockdir / "r.sock") as srv:
        assert srv.transmission_flags & P.FLAG_READ_ONLY
