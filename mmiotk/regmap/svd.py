"""CMSIS-SVD import with the standard library's XML parser, into the schema form.

Why not the `cmsis-svd` package: the part of SVD a register map needs is small (peripherals, clusters,
registers, fields, the inherited register properties, dim arrays, derivedFrom), the package's API changed
between its 0.4 and 0.6 lines, and parsing it here keeps one more dependency out of mmiotk's requirements
while letting every error name the file, peripheral (block), register and field. `xml.etree` is enough: SVD
files are plain XML without entities or namespaces on the elements.

Mapping: each peripheral is a block at its baseAddress. `access` read-only -> ro (`readAction` clear ->
rc), write-only/writeOnce -> wo, read-write/read-writeOnce -> rw (`modifiedWriteValues` oneToClear ->
w1c, oneToSet -> w1s, modify -> rw). Other write/read side effects are refused by name rather than
imported with the wrong semantics. `dim` with `NAME[%s]` -> an array (count, stride = dimIncrement);
`NAME%s` -> one register per dimIndex. Clusters are flattened (`<cluster>_<register>`).
`alternateRegister`/`alternateGroup` registers may share addresses. enumeratedValues become enums
(values with don't-care bits and isDefault entries are skipped).
"""

from __future__ import annotations

import copy
import os
import re
import xml.etree.ElementTree as ET
from typing import Any

from . import RegmapError

_SCALE = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_ACCESS = {"read-only", "write-only", "read-write", "writeOnce", "read-writeOnce"}
_PROPS = ("size", "access", "resetValue", "resetMask", "modifiedWriteValues", "readAction")


class _Ctx:
    def __init__(self, source: str, root: ET.Element) -> None:
        self.source = source
        self.root = root
        self.peripherals = {p.findtext("name", "").strip(): p for p in root.iter("peripheral")}

    def error(self, where: str, message: str) -> RegmapError:
        return RegmapError(f"{where}: {message}" if where else message, self.source)


def load_svd(path: str | os.PathLike[str]) -> dict[str, Any]:
    source = os.fspath(path)
    try:
        root = ET.parse(source).getroot()
    except ET.ParseError as exc:
        raise RegmapError(f"not valid XML: {exc}", source) from None
    for elem in root.iter():
        if isinstance(elem.tag, str) and "}" in elem.tag:
            elem.tag = elem.tag.split("}", 1)[1]
    if root.tag != "device":
        raise RegmapError(f"the root element is <{root.tag}>, not <device>: not a CMSIS-SVD file", source)
    ctx = _Ctx(source, root)
    device = _text(root, "name") or "device"
    props = _props(ctx, root, {"size": 32, "access": "read-write", "resetValue": 0, "resetMask": -1}, "device")
    peripherals = root.find("peripherals")
    if peripherals is None or not peripherals.findall("peripheral"):
        raise RegmapError("no <peripherals>/<peripheral> in the file", source)
    blocks = []
    for elem in peripherals.findall("peripheral"):
        name = _text(elem, "name") or "?"
        where = f"block {name}"
        periph = _derive(ctx, elem, lambda ref, w=where: _find_peripheral(ctx, ref, w), where)
        pprops = _props(ctx, periph, props, where)
        registers: list[dict[str, Any]] = []
        container = periph.find("registers")
        if container is not None:
            _walk(ctx, container, pprops, 0, "", registers, name)
            _resolve_groups(registers)
        blocks.append({"name": name, "base": _int(ctx, _text(periph, "baseAddress") or "0", where, "baseAddress"),
                       "description": _clean(_text(periph, "description")), "registers": registers})
    return {"name": device, "description": _clean(_text(root, "description")), "blocks": blocks}


# --- helpers --------------------------------------------------------------------------------------------
def _text(elem: ET.Element, tag: str) -> str | None:
    child = elem.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())


def _int(ctx: _Ctx, text: str, where: str, what: str) -> int:
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
        raise ctx.error(where, f"{what} {text!r} is not a number") from None


def _props(ctx: _Ctx, elem: ET.Element, inherited: dict[str, Any], where: str) -> dict[str, Any]:
    """The register properties group, inherited device -> peripheral -> cluster -> register."""
    out = dict(inherited)
    for key in _PROPS:
        text = _text(elem, key)
        if text is None:
            continue
        if key in ("size", "resetValue", "resetMask"):
            out[key] = _int(ctx, text, where, key)
        else:
            out[key] = text
    return out


def _merge(base: ET.Element, derived: ET.Element) -> ET.Element:
    """`derived` on top of a copy of `base`: its children replace base children of the same tag, except
    <registers>/<fields>, whose entries are added to (or replace by name) the base's."""
    merged = copy.deepcopy(base)
    merged.attrib.pop("derivedFrom", None)
    for key, value in derived.attrib.items():
        if key != "derivedFrom":
            merged.set(key, value)
    for child in derived:
        if child.tag in ("registers", "fields"):
            target = merged.find(child.tag)
            if target is None:
                merged.append(copy.deepcopy(child))
                continue
            for entry in child:
                name = _text(entry, "name")
                for old in list(target):
                    if name is not None and _text(old, "name") == name:
                        target.remove(old)
                target.append(copy.deepcopy(entry))
        else:
            for old in merged.findall(child.tag):
                merged.remove(old)
            merged.append(copy.deepcopy(child))
    return merged


def _derive(ctx: _Ctx, elem: ET.Element, find: Any, where: str, depth: int = 0) -> ET.Element:
    ref = elem.get("derivedFrom")
    if ref is None:
        return elem
    if depth > 16:
        raise ctx.error(where, f"derivedFrom chain too deep (a cycle through {ref!r}?)")
    base = find(ref.strip())
    base = _derive(ctx, base, find, where, depth + 1)
    return _merge(base, elem)


def _find_peripheral(ctx: _Ctx, ref: str, where: str) -> ET.Element:
    found = ctx.peripherals.get(ref)
    if found is None:
        raise ctx.error(where, f"derivedFrom {ref!r}: no such peripheral")
    return found


def _find_in(ctx: _Ctx, container: ET.Element, ref: str, tag: str, where: str) -> ET.Element:
    """A register/cluster/field named `ref` in `container`, or by a dotted path from a peripheral."""
    for child in container.findall(tag):
        if _text(child, "name") == ref:
            return child
    parts = ref.split(".")
    if len(parts) >= 2 and parts[0] in ctx.peripherals:
        node: ET.Element | None = ctx.peripherals[parts[0]].find("registers")
        for i, part in enumerate(parts[1:], 1):
            if node is None:
                break
            last = i == len(parts) - 1
            nxt = None
            for child in node:
                if _text(child, "name") == part and (not last or child.tag == tag):
                    nxt = child
                    break
            if nxt is None:
                break
            if last:
                return nxt
            node = nxt if nxt.tag == "cluster" else nxt.find("fields")
    raise ctx.error(where, f"derivedFrom {ref!r}: no such {tag}")


def _dim(ctx: _Ctx, elem: ET.Element, where: str) -> tuple[int, int, list[str]] | None:
    dim_text = _text(elem, "dim")
    if dim_text is None:
        return None
    dim = _int(ctx, dim_text, where, "dim")
    inc_text = _text(elem, "dimIncrement")
    if inc_text is None:
        raise ctx.error(where, "dim without dimIncrement")
    inc = _int(ctx, inc_text, where, "dimIncrement")
    index_text = _text(elem, "dimIndex")
    if index_text is None:
        indices = [str(i) for i in range(dim)]
    elif re.fullmatch(r"\d+-\d+", index_text):
        lo, hi = (int(x) for x in index_text.split("-"))
        indices = [str(i) for i in range(lo, hi + 1)]
    elif re.fullmatch(r"[A-Z]-[A-Z]", index_text):
        indices = [chr(c) for c in range(ord(index_text[0]), ord(index_text[2]) + 1)]
    else:
        indices = [i.strip() for i in index_text.split(",")]
    if len(indices) != dim:
        raise ctx.error(where, f"dimIndex {index_text!r} has {len(indices)} entries for dim {dim}")
    return dim, inc, indices


# --- registers ------------------------------------------------------------------------------------------
def _walk(ctx: _Ctx, container: ET.Element, props: dict[str, Any], base: int, prefix: str,
          out: list[dict[str, Any]], block: str) -> None:
    for child in container:
        if child.tag == "register":
            rname = _text(child, "name") or "?"
            where = f"block {block}, register {prefix}{rname}"
            reg = _derive(ctx, child, lambda ref, w=where: _find_in(ctx, container, ref, "register", w), where)
            _register(ctx, reg, props, base, prefix, out, block)
        elif child.tag == "cluster":
            cname = _text(child, "name") or "?"
            where = f"block {block}, cluster {prefix}{cname}"
            cluster = _derive(ctx, child, lambda ref, w=where: _find_in(ctx, container, ref, "cluster", w), where)
            cprops = _props(ctx, cluster, props, where)
            offset = base + _int(ctx, _text(cluster, "addressOffset") or "0", where, "addressOffset")
            dim = _dim(ctx, cluster, where)
            if dim is None:
                _walk(ctx, cluster, cprops, offset, f"{prefix}{cname}_", out, block)
            else:
                _, inc, indices = dim
                for i, idx in enumerate(indices):
                    name = cname.replace("[%s]", idx).replace("%s", idx)
                    _walk(ctx, cluster, cprops, offset + i * inc, f"{prefix}{name}_", out, block)


def _register(ctx: _Ctx, reg: ET.Element, props: dict[str, Any], base: int, prefix: str,
              out: list[dict[str, Any]], block: str) -> None:
    rname = _text(reg, "name") or "?"
    where = f"block {block}, register {prefix}{rname}"
    rprops = _props(ctx, reg, props, where)
    offset_text = _text(reg, "addressOffset")
    if offset_text is None:
        raise ctx.error(where, "no addressOffset")
    offset = base + _int(ctx, offset_text, where, "addressOffset")
    width = rprops["size"]
    mask = (1 << width) - 1 if width > 0 else 0
    reset = rprops["resetValue"] & rprops["resetMask"] & mask
    access = _access(ctx, rprops.get("access"), rprops.get("modifiedWriteValues"), rprops.get("readAction"),
                     where)
    fields = []
    fcontainer = reg.find("fields")
    if fcontainer is not None:
        for fe in fcontainer.findall("field"):
            fname = _text(fe, "name") or "?"
            fwhere = f"{where}, field {fname}"
            fe = _derive(ctx, fe, lambda ref, w=fwhere: _find_in(ctx, fcontainer, ref, "field", w), fwhere)
            fields.append(_field(ctx, fe, rprops, fwhere))
    entry: dict[str, Any] = {"offset": offset, "width": width, "access": access, "reset": reset,
                             "description": _clean(_text(reg, "description")), "fields": fields}
    alternate = _text(reg, "alternateRegister")
    if alternate:
        entry["alternate_of"] = f"{prefix}{alternate}"
    elif _text(reg, "alternateGroup"):
        entry["alternate_group"] = True  # resolved below, once every register of the block is known
    dim = _dim(ctx, reg, where)
    if dim is None:
        out.append({"name": f"{prefix}{rname}", **entry})
    elif "%s" in rname and "[%s]" not in rname:
        _, inc, indices = dim
        for i, idx in enumerate(indices):
            out.append({"name": f"{prefix}{rname.replace('%s', idx)}", **entry, "offset": offset + i * inc})
    else:
        count, inc, _ = dim
        out.append({"name": f"{prefix}{rname.replace('[%s]', '').replace('%s', '')}", **entry, "count": count,
                    "stride": inc})


def _resolve_groups(out: list[dict[str, Any]]) -> None:
    """An alternateGroup register shares its address with a register outside the group: point at it."""
    for entry in out:
        if entry.pop("alternate_group", False):
            primary = next((o for o in out if o is not entry and o["offset"] == entry["offset"]
                            and "alternate_of" not in o and not o.get("alternate_group")), None)
            if primary is not None:
                entry["alternate_of"] = primary["name"]


def _field(ctx: _Ctx, fe: ET.Element, rprops: dict[str, Any], where: str) -> dict[str, Any]:
    name = _text(fe, "name") or "?"
    bit_offset, bit_width = _text(fe, "bitOffset"), _text(fe, "bitWidth")
    lsb_text, msb_text, bit_range = _text(fe, "lsb"), _text(fe, "msb"), _text(fe, "bitRange")
    if bit_offset is not None:
        lsb = _int(ctx, bit_offset, where, "bitOffset")
        width = _int(ctx, bit_width, where, "bitWidth") if bit_width is not None else 1
    elif lsb_text is not None and msb_text is not None:
        lsb = _int(ctx, lsb_text, where, "lsb")
        width = _int(ctx, msb_text, where, "msb") - lsb + 1
    elif bit_range is not None:
        m = re.fullmatch(r"\[\s*(\d+)\s*:\s*(\d+)\s*\]", bit_range)
        if not m:
            raise ctx.error(where, f"bitRange {bit_range!r} is not [msb:lsb]")
        lsb, width = int(m.group(2)), int(m.group(1)) - int(m.group(2)) + 1
    else:
        raise ctx.error(where, "no bit position (bitOffset/bitWidth, lsb/msb or bitRange)")
    access = _access(ctx, _text(fe, "access") or rprops.get("access"),
                     _text(fe, "modifiedWriteValues") or rprops.get("modifiedWriteValues"),
                     _text(fe, "readAction") or rprops.get("readAction"), where)
    out: dict[str, Any] = {"name": name, "lsb": lsb, "width": width, "access": access}
    enum = _enum(ctx, fe, where)
    if enum:
        out["enum"] = enum
    desc = _clean(_text(fe, "description"))
    if desc:
        out["description"] = desc
    return out


def _enum(ctx: _Ctx, fe: ET.Element, where: str) -> dict[str, int]:
    groups = fe.findall("enumeratedValues")
    if not groups:
        return {}
    group = next((g for g in groups if (_text(g, "usage") or "read-write") == "read-write"), groups[0])
    if group.get("derivedFrom"):
        return {}  # enum reuse across fields: the values stay plain ints
    out: dict[str, int] = {}
    for ev in group.findall("enumeratedValue"):
        name, value = _text(ev, "name"), _text(ev, "value")
        if name is None or value is None or (_text(ev, "isDefault") or "").lower() == "true":
            continue
        if value.strip().startswith("#") and "x" in value.strip()[1:].lower():
            continue  # don't-care bits: not one value
        ident = re.sub(r"\W", "_", name)
        if not ident or ident[0].isdigit() or ident.startswith("_"):
            ident = f"V_{ident.lstrip('_')}"
        if ident not in out:
            out[ident] = _int(ctx, value, f"{where}, enum {name}", "value")
    return out


def _access(ctx: _Ctx, access: str | None, mwv: str | None, read_action: str | None, where: str) -> str:
    access = access or "read-write"
    if access not in _ACCESS:
        raise ctx.error(where, f"access {access!r} is not an SVD access type ({', '.join(sorted(_ACCESS))})")
    if read_action is not None:
        if read_action != "clear" or access != "read-only":
            raise ctx.error(where, f"readAction {read_action!r} with access {access!r} has no mmiotk access "
                                   "type (supported: readAction clear on read-only fields)")
        return "rc"
    if access == "read-only":
        return "ro"
    if access in ("write-only", "writeOnce"):
        return "wo"
    if mwv in (None, "modify"):
        return "rw"
    if mwv == "oneToClear":
        return "w1c"
    if mwv == "oneToSet":
        return "w1s"
    raise ctx.error(where, f"modifiedWriteValues {mwv!r} has no mmiotk access type "
                           "(supported: oneToClear, oneToSet, modify)")
