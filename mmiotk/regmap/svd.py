"""CMSIS-SVD import with the standard library's XML parser, into the schema form.

Why not the `cmsis-svd` package: the part of SVD a register map needs is small, parsing it here keeps a
dependency out of mmiotk's requirements, lets every error name the file, peripheral (block), register and
field, and is several times faster (benchmarks/bench_regmap.py). The tests compare every register of the
corpus in tests/data/svd against `cmsis-svd`.

Mapping: each peripheral (each element of a peripheral `dim`) is a block at its baseAddress. Access is
`access` x `modifiedWriteValues` x `readAction` (see svd_fields.py): e.g. read-write + oneToClear -> w1c,
zeroToClear -> w0c, clear -> wc, read-write + readAction clear -> wrc, read-writeOnce -> w1; readAction
modify/modifyExternal marks the field `precious` (a read has effects the file does not describe).
`dim` with `NAME[%s]` -> an array (count, stride = dimIncrement); `NAME%s` -> one register per dimIndex;
dims on clusters and fields are unrolled; clusters are flattened (`<cluster>_<register>`). Registers of an
alternateGroup, an alternateCluster or with an alternateRegister share their address with the register
they overlay (`alternate_of`). derivedFrom may name a peripheral, cluster, register, field or
enumeratedValues anywhere (a dotted path, or an element of a dim list). Enumerations: read and write
usages are kept apart (`enum` / `write_enum`); values with don't-care bits (`#1x`) name every value they
match; isDefault entries are skipped. Vendor mistakes are errors in strict mode, repaired with a warning
in lenient mode (mmiotk.regmap.checks). Here: the device, its peripherals and registers; derivedFrom and
dim lists are resolved in svd_tree.py, fields (positions, access types, enumerations) converted in svd_fields.py.
"""

from __future__ import annotations

import gzip
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from functools import partial
from types import SimpleNamespace
from typing import Any

from ..registers.block import first_clash
from . import RegmapError, svd_fields
from .checks import Limits, Problems, spell, unique
from .svd_tree import SvdTree, child_text, dim_name, one_line

_PROPS = ("size", "access", "resetValue", "resetMask", "modifiedWriteValues", "readAction")


def load_svd(source_path: str | os.PathLike[str], *, strict: bool = True,
             limits: Limits | None = None) -> tuple[dict[str, Any], list[str]]:
    """The schema dict of an SVD file (`.svd`, or gzipped `.svd.gz`) and the warnings of lenient mode."""
    source = os.fspath(source_path)
    limits = limits or Limits()
    opener: Callable[..., Any] = gzip.open if source.endswith(".gz") else open
    try:
        with opener(source, "rb") as fh:
            data = fh.read(limits.max_file_bytes + 1)
    except (OSError, EOFError) as exc:
        raise RegmapError(f"cannot read: {exc}", source) from None
    if len(data) > limits.max_file_bytes:
        raise RegmapError(f"larger than {limits.max_file_bytes} bytes (Limits.max_file_bytes)", source)
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise RegmapError(f"not valid XML: {exc}", source) from None
    for elem in root.iter():
        if isinstance(elem.tag, str) and "}" in elem.tag:
            elem.tag = elem.tag.split("}", 1)[1]
    if root.tag != "device":
        raise RegmapError(f"the root element is <{root.tag}>, not <device>: not a CMSIS-SVD file", source)
    ctx = _Ctx(source, root, Problems(source, strict, limits))
    return ctx.device(), ctx.problems.warnings


class _Ctx(SvdTree):
    """The device read from the tree: peripherals -> blocks, clusters flattened, registers placed."""

    def __init__(self, source: str, root: ET.Element, problems: Problems) -> None:
        super().__init__(source, root, problems)
        self.mult = 1

    # --- device and peripherals ---------------------------------------------------------------------
    def device(self) -> dict[str, Any]:
        root = self.root
        props = self.props(root, {"size": 32, "access": "read-write", "resetValue": 0, "resetMask": -1}, "device")
        peripherals = root.find("peripherals")
        if peripherals is None or not peripherals.findall("peripheral"):
            raise RegmapError("no <peripherals>/<peripheral> in the file", self.source)
        blocks: list[dict[str, Any]] = []
        taken: set[str] = set()
        for elem in peripherals.findall("peripheral"):
            name = child_text(elem, "name") or "?"
            where = f"block {name}"
            periph = self.derive(elem, partial(self.find_peripheral, where=where), where)
            for pname, base_offset in self.unroll(periph, name, where):
                blocks.append(self.peripheral(periph, pname, base_offset, props, taken))
        return {"name": spell(child_text(root, "name") or "device"),
                "description": one_line(child_text(root, "description")), "blocks": blocks}

    def peripheral(self, periph: ET.Element, name: str, base_offset: int, props: dict[str, Any],
                   taken: set[str]) -> dict[str, Any]:
        where = f"block {name}"
        bases = periph.findall("baseAddress")
        if not bases:
            raise self.error(where, "no baseAddress")
        if len(bases) > 1:
            self.problems(where, f"{len(bases)} <baseAddress> elements "
                                 f"({', '.join((b.text or '').strip() for b in bases)})", "took the last")
        base = self.num(bases[-1].text or "", where, "baseAddress") + base_offset
        pprops = self.props(periph, props, where)
        registers: list[dict[str, Any]] = []
        containers = periph.findall("registers")
        if len(containers) > 1:
            self.problems(where, f"{len(containers)} <registers> elements", "read them all")
        for container in containers:
            self.walk(container, pprops, 0, "", registers, name, alternate=False)
        _resolve_alternates(self, registers, where)
        ident = spell(name)
        block: dict[str, Any] = {"name": unique(ident, taken, "dup"), "base": base,
                                 "description": one_line(child_text(periph, "description")),
                                 "registers": registers}
        if block["name"] != name:
            block["label"] = name
        return block

    def props(self, elem: ET.Element, inherited: dict[str, Any], where: str) -> dict[str, Any]:
        """The register properties group, inherited device -> peripheral -> cluster -> register."""
        out = dict(inherited)
        for key in _PROPS:
            text = child_text(elem, key)
            if text is None:
                continue
            out[key] = self.num(text, where, key) if key in ("size", "resetValue", "resetMask") else text
        return out

    # --- registers ----------------------------------------------------------------------------------
    def walk(self, container: ET.Element, props: dict[str, Any], base: int, prefix: str,
             out: list[dict[str, Any]], block: str, alternate: bool) -> None:
        for child in container:
            if child.tag == "register":
                rname = child_text(child, "name") or "?"
                where = f"block {block}, register {prefix}{rname}"
                reg = self.derive(child, partial(self.find_in, container, tag="register", where=where), where)
                self.register(reg, props, base, prefix, out, block, alternate)
            elif child.tag == "cluster":
                cname = child_text(child, "name") or "?"
                where = f"block {block}, cluster {prefix}{cname}"
                cluster = self.derive(child, partial(self.find_in, container, tag="cluster", where=where),
                                      where)
                cprops = self.props(cluster, props, where)
                offset = base + self.num(child_text(cluster, "addressOffset") or "0", where, "addressOffset")
                alt = alternate or child_text(cluster, "alternateCluster") is not None
                elements = self.unroll(cluster, cname, where)
                self.mult *= len(elements)   # nested cluster dims multiply: refuse before expanding
                if self.mult > self.limits.max_registers:
                    raise self.error(where, f"nested cluster dims expand to {self.mult} copies, over the limit of "
                                            f"{self.limits.max_registers} registers (Limits.max_registers)")
                for name, inc in elements:
                    self.walk(cluster, cprops, offset + inc, f"{prefix}{name}_", out, block, alt)
                self.mult //= len(elements)

    def register(self, reg: ET.Element, props: dict[str, Any], base: int, prefix: str,
                 out: list[dict[str, Any]], block: str, alternate: bool) -> None:
        rname = child_text(reg, "name") or "?"
        where = f"block {block}, register {prefix}{rname}"
        rprops = self.props(reg, props, where)
        offset_text = child_text(reg, "addressOffset")
        if offset_text is None:
            raise self.error(where, "no addressOffset")
        offset = base + self.num(offset_text, where, "addressOffset")
        width = rprops["size"]
        if width not in (8, 16, 32, 64):
            self.problems(where, f"size {width} is not 8, 16, 32 or 64 bits", "dropped the register")
            return
        mask = (1 << width) - 1
        reset = rprops["resetValue"] & rprops["resetMask"]
        if reset & ~mask:
            self.problems(where, f"resetValue {rprops['resetValue']:#x} does not fit in {width} bits",
                          "kept its low bits")
            reset &= mask
        access = svd_fields.access_type(self, rprops.get("access"), rprops.get("modifiedWriteValues"),
                                        rprops.get("readAction"), where)
        fields = svd_fields.fields(self, reg, rprops, width, reset, where)
        entry: dict[str, Any] = {"offset": offset, "width": width, "access": access[0], "reset": reset,
                                 "description": one_line(child_text(reg, "description")), "fields": fields}
        known = rprops["resetMask"] & mask   # resetMask: the bits whose reset the file defines
        if known != mask:
            entry["reset_mask"] = known
        if alternate or child_text(reg, "alternateRegister") or child_text(reg, "alternateGroup"):
            entry["_alternate"] = True
        dim = self.dim(reg, where)
        if dim is None:
            elements: list[tuple[str, int, int, int | None]] = [(f"{prefix}{rname}", offset, 1, None)]
        elif "[%s]" in rname and dim[1] >= width // 8 and dim[1] % (width // 8) == 0:
            elements = [(f"{prefix}{rname.replace('[%s]', '')}", offset, dim[0], dim[1])]
        else:
            _, inc, indices = dim
            elements = [(f"{prefix}{dim_name(rname, idx)}", offset + i * inc, 1, None)
                        for i, idx in enumerate(indices)]
        for name, off, count, stride in elements:
            if off % (width // 8):
                self.problems(f"block {block}, register {name}", f"offset {off:#x} is not aligned to its "
                              f"size ({width // 8} bytes)", "dropped the register")
                continue
            self.problems.count(count, count * len(fields), f"block {block}, register {name}")
            item = dict(entry, name=spell(name), offset=off)
            if item["name"] != name:
                item["label"] = name
            if count > 1:
                item["count"], item["stride"] = count, stride
            out.append(item)


def _resolve_alternates(ctx: _Ctx, registers: list[dict[str, Any]], where: str) -> None:
    """Registers marked alternate (alternateRegister/Group/Cluster) overlay the register whose bytes they
    share; two unmarked registers sharing bytes are a vendor mistake (the later one becomes an alternate)."""
    primaries: list[tuple[int, int, dict[str, Any]]] = []
    spans = sorted(registers, key=lambda r: (r["offset"], r.get("_alternate", False)))
    seen: set[str] = set()
    for reg in spans:
        alt = reg.pop("_alternate", False)
        name = reg["name"]
        if name in seen:
            ctx.problems(f"{where}, register {name}", "declared twice", f"renamed it {name}_{reg['offset']:x}")
            reg["name"] = unique(name, seen, f"{reg['offset']:x}")
        seen.add(reg["name"])
        start = reg["offset"]
        end = start + (reg.get("count", 1) - 1) * reg.get("stride", 0) + reg["width"] // 8
        primaries = [p for p in primaries if p[1] > start] if len(primaries) > 64 else primaries
        over = next((p for p in reversed(primaries) if p[0] < end and start < p[1]), None)
        if over is not None and (reg.get("count", 1) > 1 or over[2].get("count", 1) > 1):
            over = over if _arrays_meet(over[2], reg) else None
        if over is None:
            primaries.append((start, end, reg))
            continue
        if not alt:
            ctx.problems(f"{where}, register {name}", f"shares bytes with register {over[2]['name']}",
                         "made it an alternate view of that register")
        reg["alternate_of"] = over[2]["name"]
    registers.sort(key=lambda r: r["offset"])


def _arrays_meet(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def span(r: dict[str, Any]) -> SimpleNamespace:
        n, w = r.get("count", 1), r["width"] // 8
        s = r.get("stride") or w
        return SimpleNamespace(offset=r["offset"], end=r["offset"] + (n - 1) * s + w, count=n, stride=s, nbytes=w)
    return first_clash(span(a), span(b)) is not None
