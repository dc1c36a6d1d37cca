"""The corpus of real vendor files (tests/data/svd, tests/data/rdl): every file loads, and every register
matches an independent parser — cmsis-svd for SVD, systemrdl-compiler's own model for SystemRDL — in
address, size, access, reset, field bits and enums. Lenient repairs are exactly the registers warned about.
"""

from __future__ import annotations

import gzip
import re
import warnings
from pathlib import Path

import pytest

from mmiotk.regmap import RegmapError, RegmapWarning, load
from mmiotk.regmap.checks import spell_member

DATA = Path(__file__).parents[1] / "data"
SVDS = sorted((DATA / "svd").glob("*.svd*"))
SVD_VENDORS = {line.split(" | ")[0]: line.split(" | ")[1]
               for line in (DATA / "svd" / "SOURCES").read_text().splitlines() if not line.startswith("#")}

# What lenient loading repairs in each vendor file (the warnings name each one); strict refuses these files.
SVD_WARNINGS = {"ATSAMD51J19A.svd.gz": 12, "CMSDK_CM3.svd": 0, "GD32VF103.svd.gz": 7, "MK22F25612.svd.gz": 5,
                "MSP432P401R.svd.gz": 1,
                "XMC4800.svd.gz": 3, "e310x.svd": 7, "esp32.svd.gz": 108, "nrf52840.svd.gz": 56,
                "nrf5340_application.svd.gz": 20}

# SVD access x modifiedWriteValues x readAction -> mmiotk access: the table of docs/registers.md
_W = {None: "", "modify": "", "oneToClear": "w1c", "oneToSet": "w1s", "oneToToggle": "w1t", "zeroToClear": "w0c",
      "zeroToSet": "w0s", "zeroToToggle": "w0t", "clear": "wc", "set": "ws"}
_RW = {("", None): "rw", ("", "clear"): "wrc", ("", "set"): "wrs", ("wc", "set"): "wcrs", ("ws", "clear"): "wsrc",
       ("w1c", "set"): "w1crs", ("w1s", "clear"): "w1src", ("w0c", "set"): "w0crs", ("w0s", "clear"): "w0src"}


def expected_access(access: str | None, mwv: str | None, read_action: str | None) -> str:
    access = {"read-writeonce": "read-writeOnce", "writeonce": "writeOnce", "write": "write-only"}.get(
        (access or "read-write").lower(), access or "read-write")
    ra = read_action if read_action in ("clear", "set") else None
    if access == "read-only":
        return {None: "ro", "clear": "rc", "set": "rs"}[ra]
    if access == "writeOnce":
        return "wo1"
    if access == "read-writeOnce":
        return "w1"
    w = _W[mwv]
    if access == "write-only" and w in ("", "wc", "ws"):
        return {"": "wo", "wc": "woc", "ws": "wos"}[w]
    return _RW.get((w, ra), w or "rw")


def _read(path: Path) -> bytes:
    if path.name.endswith(".gz"):
        with gzip.open(path) as fh:
            return fh.read()
    return path.read_bytes()


def _v(x):
    return getattr(x, "value", x)


def reference_svd(path: Path) -> tuple[dict[int, list[tuple]], dict[int, set[str]]]:
    """address -> [(size, reset, fields)] from cmsis-svd, its clusters and arrays walked here. Three of its
    bugs are worked around, each against the SVD schema: a cluster's <size> is not passed to its registers;
    a derivedFrom enumeratedValues is copied wrongly (it ends up with no values) and enum values written
    0b... are not parsed: such enums are not compared (`None` matches anything; test_regmap_loaders.py covers
    both on files written there)."""
    from cmsis_svd.parser import SVDParser
    from lxml import etree

    data = _read(path)
    device = SVDParser(etree.ElementTree(etree.fromstring(data))).get_device(xml_validation=False)
    out: dict[int, list[tuple]] = {}
    owners: dict[int, set[str]] = {}
    current: list = ["", None]   # the peripheral walked and its register size

    def values_of(group, width):
        values = {}
        for ev in group.enumerated_values:
            if ev.value is None and not ev.is_default:
                return None
            if ev.is_default or ev.value >= 1 << width:
                continue
            values.setdefault(spell_member(ev.name), ev.value)
        return values

    def add(r, address, size):
        fields = []
        for f in r.fields:
            for g in (f.fields if hasattr(f, "meta_field") else [f]):
                access = expected_access(_v(g.access) or _v(r.access), _v(g.modified_write_values)
                                         or _v(r.modified_write_values), _v(g.read_action) or _v(r.read_action))
                enums: dict[str, dict | None] = {"read": {}, "write": {}}
                for group in g.enumerated_values or []:
                    usage = _v(group.usage) or "read-write"
                    values = values_of(group, g.bit_width) if group.enumerated_values else None
                    for side in (("read", "write") if usage == "read-write" else (usage,)):
                        enums[side] = enums[side] if enums[side] or enums[side] is None else values
                write = enums["write"] if enums["write"] != enums["read"] else {}
                fields.append((g.bit_offset, g.bit_width, access, enums["read"], write))
        mask = r.reset_mask if r.reset_mask is not None else -1
        own = r.size if size is None or r.size != current[1] else size   # cmsis-svd fills in the default
        out.setdefault(address, []).append((own, (r.reset_value or 0) & mask, fields))
        owners.setdefault(address, set()).add(current[0])

    def walk(base, items, acc, size):
        for it in items or []:
            kind = type(it).__name__
            regs = [it] if kind == "SVDRegister" else it.registers if kind == "SVDRegisterArray" else []
            for r in regs:
                add(r, base + acc + r.address_offset, size)
            for c in (it.clusters if kind == "SVDRegisterClusterArray" else [it] if kind == "SVDRegisterCluster"
                      else []):
                cluster(base, c, acc, size)

    def cluster(base, c, acc, size):
        size = c.size if c.size is not None and c.size != current[1] else size
        # cmsis-svd adds a cluster's offset to its own registers only, not to those of nested clusters
        walk(base, c.registers, acc, size)
        for sub in c.clusters:
            for s in (sub.clusters if type(sub).__name__ == "SVDRegisterClusterArray" else [sub]):
                cluster(base, s, acc + c.address_offset, size)

    for p in device.peripherals:
        for q in (p.peripherals if hasattr(p, "meta_peripheral") else [p]):
            current[0], current[1] = q.name, q.size or device.size or 32
            walk(q.base_address, q.registers, 0, None)
    return out, owners


def _same(ref: list[tuple], mine: list[tuple]) -> bool:
    """Registers at one address agree; a reference enum of None (not parsed by cmsis-svd) matches any."""
    def match(a, b):
        if (a[0], a[1]) != (b[0], b[1]) or len(a[2]) != len(b[2]):
            return False
        fa, fb = sorted(a[2], key=lambda f: f[:3]), sorted(b[2], key=lambda f: f[:3])
        return all(x[:3] == y[:3] and all(e is None or e == o for e, o in zip(x[3:], y[3:], strict=True))
                   for x, y in zip(fa, fb, strict=True))
    left = list(mine)
    if len(ref) != len(left):
        return False
    for r in ref:
        hit = next((m for m in left if match(r, m)), None)
        if hit is None:
            return False
        left.remove(hit)
    return True


def ours(regmap) -> tuple[dict[int, list[tuple]], dict[int, str]]:
    out: dict[int, list[tuple]] = {}
    where: dict[int, str] = {}
    for bname, cls in regmap.blocks.items():
        base = regmap.bases[bname]
        for spec in cls._specs.values():
            fields = []
            for f in spec.fields.values():
                read = {m.name: int(m) for m in f.enum} if f.enum else {}
                write = {m.name: int(m) for m in f.write_enum} if f.write_enum else {}
                fields.append((f.lsb, f.width, f.access.value, read, write))
            for i in range(spec.count):
                address = base + spec.offset + i * spec.stride
                out.setdefault(address, []).append((spec.width, spec.reset, fields))
                where[address] = f"{bname}.{spec.short}"
    return out, where


def test_the_svd_corpus_is_twenty_files_from_eight_vendors_one_over_3mb():
    assert len(SVDS) >= 20
    assert len(set(SVD_VENDORS.values())) >= 8
    sizes = [len(_read(p)) for p in SVDS]
    assert max(sizes) > 3 << 20


@pytest.mark.parametrize("path", SVDS, ids=[p.name for p in SVDS])
def test_svd_file_matches_cmsis_svd_register_by_register(path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RegmapWarning)
        regmap = load(path, strict=False)
    assert len(regmap.warnings) == SVD_WARNINGS.get(path.name, 0), regmap.warnings
    assert len([w for w in caught if issubclass(w.category, RegmapWarning)]) == len(regmap.warnings)
    if regmap.warnings:
        with pytest.raises(RegmapError, match="strict=False"):
            load(path)
    # what the warnings name: whole blocks (a block-level repair) or single registers
    blocks, registers = set(), set()
    for w in regmap.warnings:
        m = re.search(r": block (\w+)(?:, register (\w+))?", w)
        assert m, w
        if m.group(2) is None or "dropped the register" in w:
            blocks.add(m.group(1))
        else:
            registers.add(f"{m.group(1)}.{spell_member(m.group(2)).rstrip('_')}")
    mine, names = ours(regmap)
    ref, owners = reference_svd(path)
    checked = 0
    for address in sorted(set(ref) | set(mine)):
        a = ref.get(address, [])
        b = mine.get(address, [])
        if _same(a, b):
            checked += len(a)
            continue
        name = names.get(address, "")
        owner = next((bn for bn in regmap.blocks if regmap.bases[bn] <= address <
                      regmap.bases[bn] + max(regmap.blocks[bn]._size, 0x1000)), "")
        excused = owner in blocks or name.split(".")[0] in blocks or any(name.startswith(r) for r in registers) \
            or bool(owners.get(address, set()) & blocks)
        assert excused, f"{path.name} @ {address:#x} ({name}): cmsis-svd {a} != mmiotk {b}"
    assert checked > 0.9 * sum(map(len, ref.values()))


# --- SystemRDL ------------------------------------------------------------------------------------------
RDL = DATA / "rdl"
# (file, files compiled before it, needs PeakRDL-regblock's user-defined properties)
_CALIPTRA_DEFS = ["caliptra/keyvault/rtl/kv_def.rdl"]
RDL_TOPS = [p.relative_to(RDL).as_posix() for p in sorted(RDL.rglob("*.rdl"))
            if p.name not in {"kv_def.rdl", "pv_def.rdl", "pci_bar.rdl", "pci_enums.rdl", "sata_constants.rdl",
                              "preprocessor_incl.rdl", "preprocessor_incl2.rdl", "all.rdl", "caliptra_reg.rdl",
                              "caliptra_top_reg.rdl", "sha512_acc_csr_properties.rdl",
                              "sha512_acc_external_csr.rdl", "soc_ifc_reg_properties.rdl",
                              "soc_ifc_external_reg.rdl", "soc_ifc_fuse_reg.rdl", "soc_ifc_internal_reg.rdl",
                              "soc_ifc_subsystem_reg.rdl"}]
# files that need others compiled before them (several files, one elaborated top)
RDL_MULTI = {
    "caliptra/soc_ifc/rtl/caliptra_top_reg.rdl": [
        "caliptra/keyvault/rtl/kv_def.rdl", "caliptra/soc_ifc/rtl/mbox_csr.rdl",
        "caliptra/soc_ifc/rtl/soc_ifc_reg.rdl"],
    "systemrdl-compiler/accellera-examples/all.rdl": [
        f"systemrdl-compiler/accellera-examples/{p}" for p in (
            "generic_rdl/generic_example.rdl", "hier_intrpt/interrupt.rdl", "incr_cntr_test/counter_example.rdl",
            "Leon2/ahbstatMaster.rdl", "Leon2/ahbstatMirroredMaster.rdl", "Leon2/ahbstatMirroredSlave.rdl",
            "Leon2/ahbstatSlave.rdl", "Leon2/cgu.rdl", "Leon2/dma.rdl", "Leon2/gpio.rdl", "Leon2/i2c_gpio_addr.rdl",
            "Leon2/irqctrl.rdl", "Leon2/irqctrlvec.rdl", "Leon2/rgu.rdl", "Leon2/timers.rdl", "Leon2/uart.rdl",
            "Leon2/uartSpirit.rdl", "lock_and_key/lock_and_key.rdl", "pci_example/pci.rdl",
            "sata_ahci/sata_ahci_example.rdl")],
}


def _rdl_case(rel: str) -> dict:
    udps = []
    also = RDL_MULTI.get(rel, [])
    if rel.startswith("caliptra/"):
        from peakrdl_regblock.udps import ALL_UDPS

        udps = ALL_UDPS
        also = also or _CALIPTRA_DEFS
    return {"also": [RDL / a for a in also], "udps": udps,
            "include_paths": [RDL / "systemrdl-compiler/rdl_src/incdir"]}


def reference_rdl(rel: str) -> tuple[dict[int, list[tuple]], list[tuple[int, int]]]:
    """address -> [(size, reset, fields)] from systemrdl-compiler's own elaborated model."""
    from systemrdl import RDLCompiler
    from systemrdl.node import MemNode, RegNode

    case = _rdl_case(rel)
    compiler = RDLCompiler()
    for udp in case["udps"]:
        compiler.register_udp(udp)
    for f in [*case["also"], RDL / rel]:
        compiler.compile_file(str(f), incl_search_paths=[str(f.parent), *map(str, case["include_paths"])])
    root = compiler.elaborate()
    out: dict[int, list[tuple]] = {}
    mems: list[tuple[int, int]] = []
    for node in root.descendants(unroll=True):
        if isinstance(node, MemNode):
            mems.append((node.absolute_address, int(node.size)))
        if not isinstance(node, RegNode) or node.is_virtual:   # a mem's virtual registers: memory, not registers
            continue
        fields = []
        reset = 0
        for f in node.fields():
            r = f.get_property("reset")
            if isinstance(r, int):
                reset |= r << f.low
            sw, onr, onw = (f.get_property(k) for k in ("sw", "onread", "onwrite"))
            enc = f.get_property("encode")
            fields.append((f.low, f.width, sw.name, onr.name if onr else "", onw.name if onw else "",
                           {spell_member(m.name): int(m.value) for m in enc} if enc else {},
                           bool(f.get_property("swacc")), bool(f.get_property("swmod")),
                           bool(f.get_property("singlepulse"))))
        out.setdefault(node.absolute_address, []).append(
            (int(node.get_property("regwidth")), int(node.get_property("accesswidth")), reset,
             sorted(fields, key=str)))
    return out, sorted(mems)


# what lenient loading repairs in the RDL corpus (strict refuses these files)
RDL_WARNINGS = {"systemrdl-compiler/rdl_src/overlaps.rdl": [
    "block top, register r1_wo: offset 0x11 is not aligned to its accesswidth (4 bytes); dropped the register"]}

# mmiotk access -> (sw, onread, onwrite) as SystemRDL spells it: the table of docs/registers.md
_RDL = {"ro": ("r", "", ""), "rc": ("r", "rclr", ""), "rs": ("r", "rset", ""), "wo": ("w", "", ""),
        "woc": ("w", "", "wclr"), "wos": ("w", "", "wset"), "wo1": ("w1", "", ""), "w1": ("rw1", "", ""),
        "na": ("na", "", ""), "rw": ("rw", "", ""), "wrc": ("rw", "rclr", ""), "wrs": ("rw", "rset", ""),
        "wc": ("rw", "", "wclr"), "ws": ("rw", "", "wset"), "wcrs": ("rw", "rset", "wclr"),
        "wsrc": ("rw", "rclr", "wset"), "w1c": ("rw", "", "woclr"), "w1s": ("rw", "", "woset"),
        "w1t": ("rw", "", "wot"), "w0c": ("rw", "", "wzc"), "w0s": ("rw", "", "wzs"), "w0t": ("rw", "", "wzt"),
        "w1crs": ("rw", "rset", "woclr"), "w1src": ("rw", "rclr", "woset"), "w0crs": ("rw", "rset", "wzc"),
        "w0src": ("rw", "rclr", "wzs")}


def test_the_rdl_corpus_is_at_least_twenty_files():
    assert len(RDL_TOPS) + len(RDL_MULTI) >= 20
    assert len(list(RDL.rglob("*.rdl"))) >= 20


@pytest.mark.parametrize("rel", RDL_TOPS + list(RDL_MULTI), ids=RDL_TOPS + list(RDL_MULTI))
def test_rdl_file_matches_systemrdl_compiler_register_by_register(rel):
    case = _rdl_case(rel)
    lenient = rel in RDL_WARNINGS
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RegmapWarning)
        regmap = load(RDL / rel, strict=not lenient, **case)
    assert len(caught) == len(regmap.warnings)
    assert [re.sub(r"^.*?: ", "", w) for w in regmap.warnings] == RDL_WARNINGS.get(rel, [])
    mine: dict[int, list[tuple]] = {}
    for bname, cls in regmap.blocks.items():
        base = regmap.bases[bname]
        for spec in cls._specs.values():
            fields = []
            for f in spec.fields.values():
                sw, onr, onw = _RDL[f.access.value]
                fields.append((f.lsb, f.width, sw, onr, onw, {m.name: int(m) for m in f.enum} if f.enum else {},
                               f.swacc, f.swmod, f.singlepulse))
            for i in range(spec.count):
                mine.setdefault(base + spec.offset + i * spec.stride, []).append(
                    (spec.width, spec.accesswidth, spec.reset, sorted(fields, key=str)))
    ref, mems = reference_rdl(rel)
    assert sorted((regmap.bases[b] + m.offset, m.size) for b, c in regmap.blocks.items()
                  for m in c._memories.values()) == mems
    dropped = {int(m.group(1), 16) for w in regmap.warnings if (m := re.search(r"offset (0x[0-9a-f]+) .*dropped", w))}
    assert sorted(set(mine) - dropped) == sorted(set(ref) - dropped)
    for address, regs in ref.items():
        if address in dropped:
            continue
        norm = [(w, aw, reset, [(lsb, wd, "rw" if sw == "w" and onw not in ("", "wclr", "wset") else sw, onr,
                                 "" if sw == "r" else onw, *rest) for lsb, wd, sw, onr, onw, *rest in fields])
                for w, aw, reset, fields in regs]
        assert sorted(mine[address], key=str) == sorted(norm, key=str), f"{rel} @ {address:#x}"
