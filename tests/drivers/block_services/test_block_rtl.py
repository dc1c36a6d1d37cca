"""The block FIFO server over virtio-blk on the RTL controller (Icarus, or $SIM): client processes each
verify their own data; the image holds what they wrote."""

from __future__ import annotations

import json
from pathlib import Path

from hwsim.cosim import runner
from hwsim.vblk import simbuild

HERE = Path(__file__).resolve().parent


def test_client_processes_verify_their_data_through_the_rtl_controller(tmp_path: Path, sockdir: Path) -> None:
    image = tmp_path / "disk.img"
    image.write_bytes(bytes(256 * 512))
    result = tmp_path / "result.json"
    built = simbuild.build(runner.default_simulator())
    outcome = runner.run(built, "cocotb_block_server", test_dir=tmp_path / "run", module_dir=HERE,
                         extra_env={"BLOCK_IMAGE": str(image), "BLOCK_SOCKET": str(sockdir / "rtl.sock"),
                                    "BLOCK_WORKER": str(HERE / "fifo_worker.py"), "BLOCK_RESULT": str(result)})
    case = "client_processes_verify_their_data_through_the_rtl"
    assert outcome[case].passed, outcome[case].message
    *clients, server = json.loads(result.read_text())
    assert [c["ident"] for c in clients] == [0, 1] and all(c["checked"] == 2 * 8 * 512 for c in clients)
    assert server["errors"] == 0 and server["requests"] > 0
    data = image.read_bytes()
    assert any(data[:16 * 512]) and any(data[16 * 512:32 * 512])  # both clients' blocks reached the media
