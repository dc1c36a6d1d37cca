"""`python -m hwsim.vhost_user.rtl_main --socket PATH --size BYTES --ready FILE`: build the virtio-blk RTL for
Verilator (cached) with its DMA window over guest RAM and serve it on a vhost-user socket; the simulator
process writes its PID to FILE once it listens."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hwsim.cosim import runner
from hwsim.vblk import simbuild

from .rtl_target import RTL_HOST_BASE, RTL_HOST_SIZE


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hwsim.vhost_user.rtl_main")
    parser.add_argument("--socket", required=True)
    parser.add_argument("--size", type=int, default=32 << 20, help="disk size in bytes")
    parser.add_argument("--ready", required=True)
    parser.add_argument("--sim", default="verilator")
    args = parser.parse_args(argv)
    built = simbuild.build(args.sim, parameters={"HOST_BASE": RTL_HOST_BASE, "HOST_SIZE": RTL_HOST_SIZE})
    sim_dir = Path(args.ready).with_suffix(".sim")   # the simulator's log, kept beside the ready file
    try:
        results = runner.run(built, "hwsim.vhost_user.rtl_cocotb", test_dir=sim_dir,
                             extra_env={"VHOST_SOCKET": args.socket, "VHOST_READY": args.ready,
                                        "VHOST_SECTORS": str(args.size // 512)})
    except RuntimeError as exc:            # the simulator died (a killed back end) or never started
        print(f"rtl_main: {exc}".splitlines()[0], file=sys.stderr)
        return 1
    finally:
        log = sim_dir / "hwsim.vhost_user.rtl_cocotb.log"
        if log.exists():
            sys.stderr.write(log.read_text(errors="replace")[-20000:])
    case = results.get("serve_vhost_user")
    return 0 if case is not None and case.passed else 1


if __name__ == "__main__":
    sys.exit(main())
