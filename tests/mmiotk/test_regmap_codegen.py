"""`mmiotk regmap codegen`: typed RegisterBlock modules that mypy and ruff accept and that drive the same."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from mmiotk.cli import main
from mmiotk.fake import FakeDevice
from mmiotk.regmap import load

ROOT = Path(__file__).parents[2]
DATA = Path(__file__).parent / "data"
VENV = Path(sys.executable).parent


@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    out = tmp_path_factory.mktemp("codegen")
    paths = {}
    for name, src, extra in (("uart_regs", DATA / "uart.yaml", []),
                             ("nrf51_regs", ROOT / "tests/data/svd/nrf51.svd.gz", ["--lenient"]),
                             ("aes_regs", ROOT / "tests/data/rdl/caliptra/aes/data/aes.rdl", [])):
        assert main(["regmap", "codegen", str(src), "-o", str(out / f"{name}.py"), *extra]) == 0
        paths[name] = out / f"{name}.py"
    return out, paths


def _import(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generated_modules_pass_ruff_and_mypy(generated):
    out, paths = generated
    files = [str(p) for p in paths.values()]
    ruff = subprocess.run([str(VENV / "ruff"), "check", "--isolated", "--line-length", "120", "--select",
                           "E,F,W,I,B,UP", *files], capture_output=True, text=True, timeout=120)
    assert ruff.returncode == 0, ruff.stdout + ruff.stderr
    mypy = subprocess.run([str(VENV / "mypy"), "--no-incremental", "--cache-dir", str(out / ".mypy"), *files],
                          capture_output=True, text=True, timeout=300, cwd=out,
                          env={**os.environ, "MYPYPATH": str(ROOT)})
    assert mypy.returncode == 0, mypy.stdout + mypy.stderr


def test_a_typo_in_driver_code_is_a_mypy_error(generated):
    out, _paths = generated
    driver = out / "driver.py"
    driver.write_text("from uart_regs import UART0\n\n\ndef start(regs: UART0) -> None:\n"
                      "    regs.LINECTRL.modify(PARITY=2)\n    regs.LINECTLR.modify(PARITY=2)\n")
    mypy = subprocess.run([str(VENV / "mypy"), "--no-incremental", "--cache-dir", str(out / ".mypy"),
                           str(driver)], capture_output=True, text=True, timeout=300, cwd=out,
                          env={**os.environ, "MYPYPATH": f"{ROOT}{os.pathsep}{out}"})
    assert mypy.returncode == 1 and '"UART0" has no attribute "LINECTLR"' in mypy.stdout, mypy.stdout


def test_generated_classes_are_the_map(generated):
    _, paths = generated
    module = _import(paths["uart_regs"])
    original = load(DATA / "uart.yaml").block_class()
    gen = module.BLOCKS["UART0"]
    assert module.BASES == {"UART0": 0x40001000}
    for name, spec in original.specs().items():
        other = gen.specs()[name]
        assert (other.offset, other.width, other.reset, other.access) == (spec.offset, spec.width, spec.reset,
                                                                          spec.access)
        assert [(f.name, f.lsb, f.width, f.access) for f in other.fields.values()] == \
            [(f.name, f.lsb, f.width, f.access) for f in spec.fields.values()]
    fake = FakeDevice(gen)
    regs = fake.bind()
    regs.LINECTRL.modify(PARITY=module.UART0_LINECTRL_PARITY.EVEN)
    assert fake.peek("LINECTRL").PARITY == 2


def test_generated_classes_keep_the_bits_without_a_reset(generated):
    """An RDL field the hardware drives has no reset: the generated class leaves it out of reset_mask."""
    _, paths = generated
    module = _import(paths["aes_regs"])
    original = load(ROOT / "tests/data/rdl/caliptra/aes/data/aes.rdl")
    masks = {name: spec.reset_mask for cls in original.blocks.values() for name, spec in cls.specs().items()}
    generated_masks = {name: spec.reset_mask for cls in module.BLOCKS.values() for name, spec in cls.specs().items()}
    assert generated_masks == masks
    assert any(spec.reset_mask != spec.all for cls in original.blocks.values() for spec in cls.specs().values())
