"""CMSIS-SVD import with the standard library's XML parser, into the schema form.

Why not the `cmsis-svd` package: the part of SVD a register map needs is small, parsing it here keeps a
dependency out of mmiotk's requirements, lets every error name the file, peripheral (block), register and
field, and is several times faster (benchmarks/bench_regmap.py). The tests compare every register of the
corpus in tests/data/svd against `cmsis-svd`.

Mapping: each peripheral (each element of a peripheral `dim`) is a block at its baseAddress. Access is
`access` x `modifiedWriteValues` x `readAction` (see `_ACCESS`): e.g. read-write + oneToClear -> w1c,
zeroToClear -> w0c, clear -> wc, read-write + readAction clear -> wrc, read-writeOnce -> w1; readAction
modify/modifyExternal marks the field `precious` (a read has effects the file does not describe).
`dim` with `NAME[%s]` -> an array (count, stride = dimIncrement); `NAME%s` -> one register per dimIndex;
dims on clusters and fields are unrolled; clusters are flattened (`<cluster>_<register>`). Registers of an
alternateGroup, an alternateCluster or with an alternateRegister share their address with the register
they overlay (`alternate_of`). derivedFrom may name a peripheral, cluster, register, field or
enumeratedValues anywhere (a dotted path, or an element of a dim list). Enumerations: read and write
usages are kept apart (`enum` / `write_enum`); values with don't-care bits (`#1x`) name every value they
match; isDefault entries are skipped. Vendor mistakes are errors in strict mode, repaired with a warning
in lenient mode (mmiotk.regmap.checks).
"""

from __future__ import annotations

import gzip
import os
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from functools import partial
from types import SimpleNamespace
from typing import Any

from ..registers.block import first_clash
from . import RegmapError
from .checks import Limits, Problems, spell, spell_member, unique

_SCALE = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_PROPS = ("size", "access", "resetValue", "resetMask", "modifiedWriteValues", "readAction")
_ACCESS_SPELLINGS = {"read-only": "read-only", "write-only": "write-only", "read-write": "read-write",
                     "writeonce": "writeOnce", "read-writeonce": "read-writeOnce"}
_LOOSE_SPELLINGS = {"write": "write-only", "read": "read-only", "readwrite": "read-write", "rw": "read-write",
                    "ro": "read-only", "wo": "write-only"}
_WRITE_OPS = {None: "value", "modify": "value", "oneToClear": "1c", "oneToSet": "1s", "oneToToggle": "1t",
              "zeroToClear": "0c", "zeroToSet": "0s", "zeroToToggle": "0t", "clear": "c", "set": "s"}
# (write op, read op) -> access type of a read-write field
_ACCESS = {("value", ""): "rw", ("value", "c"): "wrc", ("value", "s"): "wrs",
           ("c", ""): "wc", ("c", "s"): "wcrs", ("s", ""): "ws", ("s", "c"): "wsrc",
           ("1c", ""): "w1c", ("1c", "s"): "w1crs", ("1s", ""): "w1s", ("1s", "c"): "w1src", ("1t", ""): "w1t",
           ("0c", ""): "w0c", ("0c", "s"): "w0crs", ("0s", ""): "w0s", ("0s", "c"): "w0src", ("0t", ""): "w0t"}


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


# --- helpers --------------------------------------------------------------------------------------------
def _text(elem: ET.Element, tag: str) -> str | None:
    child = elem.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def _expand(template: str, idx: str) -> str:
    return template.replace("[%s]", idx).replace("%s", idx)


class _Ctx:
    def __init__(self, source: str, root: ET.Element, problems: Problems) -> None:
        self.source = source
        self.root = root
        self.problems = problems
        self.limits = problems.limits
        self.mult = 1
        self.peripherals: dict[str, ET.Element] = {}
        for p in root.iter("peripheral"):
            name = _text(p, "name") or ""
            self.peripherals.setdefault(name, p)
        self.enum_groups: dict[str, list[ET.Element]] = {}
        for g in root.iter("enumeratedValues"):
            gname = _text(g, "name")
            if gname:
                self.enum_groups.setdefault(gname, []).append(g)

    def error(self, where: str, message: str) -> RegmapError:
        return RegmapError(f"{where}: {message}" if where else message, self.source)

    def num(self, text: str, where: str, what: str) -> int:
        """SVD's scaledNonNegativeInteger: decimal, 0x hex, #binary, optional k/M/G/T scale."""
        t = text.strip().lower()
        scale = 1
        if t and t[-1] in _SCALE and not t.startswith(("0x", "#")):
            scale, t = _SCALE[t[-1]], t[:-1]
        try:
            if t.startswith("#"):
                return int(t[1:], 2) * scale
            return int(t, 0) * scale if t.startswith(("0x", "0b")) else int(t, 10) * scale
        except ValueError:
            raise self.error(where, f"{what} {text!r} is not a number") from None

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
            name = _text(elem, "name") or "?"
            where = f"block {name}"
            periph = self.derive(elem, partial(self.find_peripheral, where=where), where)
            for pname, base_offset in self.unroll(periph, name, where):
                blocks.append(self.peripheral(periph, pname, base_offset, props, taken))
        return {"name": spell(_text(root, "name") or "device"), "description": _clean(_text(root, "description")),
                "blocks": blocks}

    def unroll(self, elem: ET.Element, name: str, where: str) -> list[tuple[str, int]]:
        """(name, address increment) per element of a dim (one entry without dim)."""
        dim = self.dim(elem, where)
        if dim is None:
            return [(name, 0)]
        _, inc, indices = dim
        return [(_expand(name, idx), i * inc) for i, idx in enumerate(indices)]

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
                                 "description": _clean(_text(periph, "description")), "registers": registers}
        if block["name"] != name:
            block["label"] = name
        return block

    def props(self, elem: ET.Element, inherited: dict[str, Any], where: str) -> dict[str, Any]:
        """The register properties group, inherited device -> peripheral -> cluster -> register."""
        out = dict(inherited)
        for key in _PROPS:
            text = _text(elem, key)
            if text is None:
                continue
            out[key] = self.num(text, where, key) if key in ("size", "resetValue", "resetMask") else text
        return out

    # --- derivedFrom ---------------------------------------------------------------------------------
    def derive(self, elem: ET.Element, find: Callable[[str], ET.Element], where: str, depth: int = 0) -> ET.Element:
        ref = elem.get("derivedFrom")
        if ref is None:
            return elem
        if depth > 16:
            raise self.error(where, f"derivedFrom chain too deep (a cycle through {ref!r}?)")
        base = self.derive(find(ref.strip()), find, where, depth + 1)
        return _merge(base, elem)

    def find_peripheral(self, ref: str, where: str) -> ET.Element:
        found = self.peripherals.get(ref) or self.peripherals.get(_template_of(ref, self.peripherals))
        if found is None:
            raise self.error(where, f"derivedFrom {ref!r}: no such peripheral")
        return found

    def find_in(self, container: ET.Element, ref: str, tag: str, where: str) -> ET.Element:
        """A register/cluster/field named `ref` in `container` (or an element of a dim list there), or by a
        dotted path from the peripheral or from the device."""
        found = _child_named(container, ref, tag)
        if found is not None:
            return found
        parts = ref.split(".")
        if len(parts) >= 2:
            starts: list[ET.Element | None] = []
            if parts[0] in self.peripherals:
                starts.append(self.peripherals[parts[0]].find("registers"))
                path = parts[1:]
            else:
                path = parts
            starts += [p.find("registers") for p in self.peripherals.values()]
            for node in starts:
                hit = self._follow(node, path, tag)
                if hit is not None:
                    return hit
        raise self.error(where, f"derivedFrom {ref!r}: no such {tag}")

    def _follow(self, node: ET.Element | None, path: list[str], tag: str) -> ET.Element | None:
        for i, part in enumerate(path):
            if node is None:
                return None
            last = i == len(path) - 1
            nxt = _child_named(node, part, tag if last else None)
            if nxt is None:
                return None
            if last:
                return nxt
            node = nxt if nxt.tag == "cluster" else nxt.find("fields")
        return None

    def dim(self, elem: ET.Element, where: str) -> tuple[int, int, list[str]] | None:
        dim_text = _text(elem, "dim")
        if dim_text is None:
            return None
        dim = self.num(dim_text, where, "dim")
        self.limits.check_dim(dim, where, "dim", self.source)
        inc_text = _text(elem, "dimIncrement")
        if inc_text is None:
            raise self.error(where, "dim without dimIncrement")
        inc = self.num(inc_text, where, "dimIncrement")
        index_text = _text(elem, "dimIndex")
        if index_text is None:
            indices = [str(i) for i in range(dim)]
        elif re.fullmatch(r"\d+\s*-\s*\d+", index_text):
            lo, hi = (int(x) for x in index_text.split("-"))
            self.limits.check_dim(hi - lo + 1, where, "dimIndex range", self.source)
            indices = [str(i) for i in range(lo, hi + 1)]
        elif re.fullmatch(r"[A-Z]-[A-Z]", index_text):
            indices = [chr(c) for c in range(ord(index_text[0]), ord(index_text[2]) + 1)]
        else:
            indices = [i.strip() for i in index_text.split(",")]
        if len(indices) != dim:
            raise self.error(where, f"dimIndex {index_text!r} has {len(indices)} entries for dim {dim}")
        return dim, inc, indices

    # --- registers ----------------------------------------------------------------------------------
    def walk(self, container: ET.Element, props: dict[str, Any], base: int, prefix: str,
             out: list[dict[str, Any]], block: str, alternate: bool) -> None:
        for child in container:
            if child.tag == "register":
                rname = _text(child, "name") or "?"
                where = f"block {block}, register {prefix}{rname}"
                reg = self.derive(child, partial(self.find_in, container, tag="register", where=where), where)
                self.register(reg, props, base, prefix, out, block, alternate)
            elif child.tag == "cluster":
                cname = _text(child, "name") or "?"
                where = f"block {block}, cluster {prefix}{cname}"
                cluster = self.derive(child, partial(self.find_in, container, tag="cluster", where=where),
                                      where)
                cprops = self.props(cluster, props, where)
                offset = base + self.num(_text(cluster, "addressOffset") or "0", where, "addressOffset")
                alt = alternate or _text(cluster, "alternateCluster") is not None
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
        rname = _text(reg, "name") or "?"
        where = f"block {block}, register {prefix}{rname}"
        rprops = self.props(reg, props, where)
        offset_text = _text(reg, "addressOffset")
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
        access = self.access(rprops.get("access"), rprops.get("modifiedWriteValues"), rprops.get("readAction"),
                             where)
        fields = self.fields(reg, rprops, width, reset, where)
        entry: dict[str, Any] = {"offset": offset, "width": width, "access": access[0], "reset": reset,
                                 "description": _clean(_text(reg, "description")), "fields": fields}
        known = rprops["resetMask"] & mask   # resetMask: the bits whose reset the file defines
        if known != mask:
            entry["reset_mask"] = known
        if alternate or _text(reg, "alternateRegister") or _text(reg, "alternateGroup"):
            entry["_alternate"] = True
        dim = self.dim(reg, where)
        if dim is None:
            elements: list[tuple[str, int, int, int | None]] = [(f"{prefix}{rname}", offset, 1, None)]
        elif "[%s]" in rname and dim[1] >= width // 8 and dim[1] % (width // 8) == 0:
            elements = [(f"{prefix}{rname.replace('[%s]', '')}", offset, dim[0], dim[1])]
        else:
            _, inc, indices = dim
            elements = [(f"{prefix}{_expand(rname, idx)}", offset + i * inc, 1, None) for i, idx in enumerate(indices)]
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

    # --- fields -------------------------------------------------------------------------------------
    def fields(self, reg: ET.Element, rprops: dict[str, Any], width: int, reset: int,
               where: str) -> list[dict[str, Any]]:
        fcontainer = reg.find("fields")
        if fcontainer is None:
            return []
        out: list[dict[str, Any]] = []
        taken: set[str] = set()
        used: list[tuple[int, str, str]] = []   # mask, name, access
        for fe in fcontainer.findall("field"):
            fname = _text(fe, "name") or "?"
            fwhere = f"{where}, field {fname}"
            fe = self.derive(fe, partial(self.find_in, fcontainer, tag="field", where=fwhere), fwhere)
            lsb0, fwidth = self.position(fe, fwhere)
            dim = self.dim(fe, fwhere)
            elements = [(fname, lsb0)] if dim is None else \
                [(_expand(fname, idx), lsb0 + i * dim[1]) for i, idx in enumerate(dim[2])]
            for name, lsb in elements:
                ewhere = f"{where}, field {name}"
                if fwidth < 1:
                    self.problems(ewhere, f"width {fwidth}", "dropped the field")
                    continue
                if lsb + fwidth > width:
                    self.problems(ewhere, f"bits [{lsb + fwidth - 1}:{lsb}] go beyond the register width "
                                  f"({width} bits)", "dropped the field")
                    continue
                fmask = ((1 << fwidth) - 1) << lsb
                access = self.access(_text(fe, "access") or rprops.get("access"),
                                     _text(fe, "modifiedWriteValues") or rprops.get("modifiedWriteValues"),
                                     _text(fe, "readAction") or rprops.get("readAction"), ewhere)
                clash = next((u for u in used if u[0] & fmask and not _complementary(u[2], access[0])), None)
                if clash is not None:
                    self.problems(ewhere, f"bits [{lsb + fwidth - 1}:{lsb}] overlap field {clash[1]}",
                                  "dropped the field")
                    continue
                ident = spell(name)
                if ident in taken:
                    self.problems(ewhere, "a field of this name is declared already",
                                  f"renamed it {ident}_{lsb}")
                fd: dict[str, Any] = {"name": unique(ident, taken, str(lsb)), "lsb": lsb, "width": fwidth,
                                      "access": access[0]}
                if fd["name"] != name:
                    fd["label"] = name
                if access[1]:
                    fd["precious"] = True
                self.enums(fe, fd, fwidth, ewhere)
                desc = _clean(_text(fe, "description"))
                if desc:
                    fd["description"] = desc
                used.append((fmask, fd["name"], access[0]))
                out.append(fd)
        return out

    def position(self, fe: ET.Element, where: str) -> tuple[int, int]:
        bit_offset, bit_width = _text(fe, "bitOffset"), _text(fe, "bitWidth")
        lsb_text, msb_text, bit_range = _text(fe, "lsb"), _text(fe, "msb"), _text(fe, "bitRange")
        if bit_offset is not None:
            lsb = self.num(bit_offset, where, "bitOffset")
            return lsb, self.num(bit_width, where, "bitWidth") if bit_width is not None else 1
        if lsb_text is not None and msb_text is not None:
            lsb = self.num(lsb_text, where, "lsb")
            return lsb, self.num(msb_text, where, "msb") - lsb + 1
        if bit_range is not None:
            m = re.fullmatch(r"\[\s*(\d+)\s*:\s*(\d+)\s*\]", bit_range)
            if not m:
                raise self.error(where, f"bitRange {bit_range!r} is not [msb:lsb]")
            return int(m.group(2)), int(m.group(1)) - int(m.group(2)) + 1
        raise self.error(where, "no bit position (bitOffset/bitWidth, lsb/msb or bitRange)")

    def enums(self, fe: ET.Element, fd: dict[str, Any], fwidth: int, where: str) -> None:
        for group in fe.findall("enumeratedValues"):
            usage = _text(group, "usage") or "read-write"
            group = self.derive(group, partial(self.find_enum, where=where), where)
            values = self.enum_values(group, fwidth, where)
            if not values:
                continue
            keys = {"read": ("enum",), "write": ("write_enum",)}.get(usage, ("enum",))
            for key in keys:
                if key not in fd:
                    fd[key] = values
        if "write_enum" in fd and fd.get("enum") == fd["write_enum"]:
            del fd["write_enum"]

    def find_enum(self, ref: str, where: str) -> ET.Element:
        name = ref.split(".")[-1]
        found = self.enum_groups.get(name)
        if not found:
            raise self.error(where, f"derivedFrom {ref!r}: no such enumeratedValues")
        return found[0]

    def enum_values(self, group: ET.Element, fwidth: int, where: str) -> dict[str, int | str]:
        out: dict[str, int | str] = {}
        taken: set[str] = set()
        for ev in group.findall("enumeratedValue"):
            name, value = _text(ev, "name"), _text(ev, "value")
            if name is None or value is None or (_text(ev, "isDefault") or "").lower() == "true":
                continue
            ewhere = f"{where}, enum {name}"
            v = value.strip().lower()
            bits = v[1:] if v.startswith("#") else v[2:] if v.startswith("0b") else ""
            member: int | str
            if "x" in bits:   # don't-care bits: the value names every value it matches
                if len(bits) > fwidth:
                    self.problems(ewhere, f"value {value!r} is wider than the field ({fwidth} bits)",
                                  "dropped the value")
                    continue
                member = "0b" + bits
            else:
                member = self.num(value, ewhere, "value")
                if member >= 1 << fwidth:
                    self.problems(ewhere, f"value {member:#x} does not fit in the field ({fwidth} bits)",
                                  "dropped the value")
                    continue
            ident = spell_member(name)
            if ident in taken:
                continue   # the same name twice: the first value names it
            taken.add(ident)
            out[ident] = member
        return out

    def access(self, access: str | None, mwv: str | None, read_action: str | None,
               where: str) -> tuple[str, bool]:
        """(mmiotk access type, precious) for SVD's access x modifiedWriteValues x readAction."""
        spelled = access or "read-write"
        svd = _ACCESS_SPELLINGS.get(spelled.lower())
        if svd is None:
            svd = _LOOSE_SPELLINGS.get(spelled.lower())
            if svd is None:
                raise self.error(where, f"access {spelled!r} is not an SVD access type (read-only, write-only, "
                                        "read-write, writeOnce, read-writeOnce)")
            self.problems(where, f"access {spelled!r} is not an SVD access type", f"read as {svd}")
        elif svd != spelled:
            self.problems(where, f"access {spelled!r} is misspelt", f"read as {svd}")
        if mwv not in _WRITE_OPS:
            raise self.error(where, f"modifiedWriteValues {mwv!r} is not an SVD value")
        if read_action not in (None, "clear", "set", "modify", "modifyExternal"):
            raise self.error(where, f"readAction {read_action!r} is not an SVD value")
        precious = read_action in ("modify", "modifyExternal")
        read_op = {"clear": "c", "set": "s"}.get(read_action or "", "")
        write_op = _WRITE_OPS[mwv]
        if svd == "read-only":
            return {"": "ro", "c": "rc", "s": "rs"}[read_op], precious
        if svd == "writeOnce":
            return "wo1", precious
        if svd == "read-writeOnce":
            return "w1", precious
        if svd == "write-only" and write_op in ("value", "c", "s"):
            return {"value": "wo", "c": "woc", "s": "wos"}[write_op], precious
        # write-only with oneToClear & co. (an interrupt-clear register): the write semantics decide
        found = _ACCESS.get((write_op, read_op))
        if found is None:
            self.problems(where, f"modifiedWriteValues {mwv} with readAction {read_action} has no access type",
                          "ignored the readAction")
            found = _ACCESS[(write_op, "")]
        return found, precious


def _complementary(a: str, b: str) -> bool:
    ro_like, wo_like = ("ro", "rc", "rs"), ("wo", "wo1", "woc", "wos")
    return (a in ro_like and b in wo_like) or (b in ro_like and a in wo_like)


def _template_of(ref: str, names: Any) -> str:
    """The dim template (`NAME[%s]` / `NAME%s`) an element name such as `NAME[2]` or `NAME2` comes from."""
    m = re.fullmatch(r"(.*?)\[?(\w+?)\]?", ref)
    for name in names:
        if "%s" in name and m is not None:
            pattern = re.escape(name).replace(re.escape("[%s]"), r"\[?\w+\]?").replace(re.escape("%s"), r"\w+")
            if re.fullmatch(pattern, ref):
                return str(name)
    return ref


def _child_named(node: ET.Element, ref: str, tag: str | None) -> ET.Element | None:
    children = [c for c in node if c.tag in (("register", "cluster", "field") if tag is None else (tag,))]
    for child in children:
        if _text(child, "name") == ref:
            return child
    template = _template_of(ref, [_text(c, "name") or "" for c in children])
    if template != ref:
        for child in children:
            if _text(child, "name") == template:
                return child
    return None


def _shallow(elem: ET.Element) -> ET.Element:
    """A new element with the same tag, attributes, text and children (shared, never modified)."""
    out = ET.Element(elem.tag, dict(elem.attrib))
    out.text, out.tail = elem.text, elem.tail
    out.extend(list(elem))
    return out


def _merge(base: ET.Element, derived: ET.Element) -> ET.Element:
    """`derived` on top of `base`: its children replace base children of the same tag, except
    <registers>/<fields>, whose entries are added to (or replace by name) the base's. Shallow: the elements
    of the file are shared, never modified, so a derived peripheral costs no copy of its registers."""
    merged = _shallow(base)
    merged.attrib.pop("derivedFrom", None)
    for key, value in derived.attrib.items():
        if key != "derivedFrom":
            merged.set(key, value)
    for child in derived:
        if child.tag in ("registers", "fields"):
            target = merged.find(child.tag)
            if target is None:
                merged.append(child)
                continue
            copy_ = _shallow(target)
            merged[list(merged).index(target)] = copy_
            for entry in child:
                name = _text(entry, "name")
                for old in list(copy_):
                    if name is not None and _text(old, "name") == name:
                        copy_.remove(old)
                copy_.append(entry)
        else:
            for old in merged.findall(child.tag):
                merged.remove(old)
            merged.append(child)
    if derived.find("dim") is None and "%s" not in (_text(derived, "name") or "%s"):
        for tag in ("dim", "dimIncrement", "dimIndex", "dimName", "dimArrayIndex"):   # one element of a dim list
            for old in merged.findall(tag):
                merged.remove(old)
    return merged


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
