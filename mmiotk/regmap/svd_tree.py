"""The CMSIS-SVD file as a tree of elements: scalar text and numbers, derivedFrom resolved, dim lists.

Why apart from the importer (svd.py): derivedFrom and dim are SVD's two ways of saying "the same again",
and they apply alike to peripherals, clusters, registers, fields and enumeratedValues; resolving them
here leaves the importer and the field conversion (svd_fields.py) reading plain elements.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from typing import Any

from . import RegmapError
from .checks import Problems

_SCALE = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def child_text(elem: ET.Element, tag: str) -> str | None:
    """The stripped text of `elem`'s first <tag> child, or None without one."""
    child = elem.find(tag)
    return None if child is None or child.text is None else child.text.strip()


def one_line(text: str | None) -> str:
    """A description as one line: vendors wrap and indent theirs."""
    return " ".join((text or "").split())


def dim_name(template: str, idx: str) -> str:
    """The name of one element of a dim list: `NAME[%s]` or `NAME%s` with its index."""
    return template.replace("[%s]", idx).replace("%s", idx)


class SvdTree:
    """One parsed file: its elements indexed for derivedFrom lookups, and the errors that name the file."""

    def __init__(self, source: str, root: ET.Element, problems: Problems) -> None:
        self.source = source
        self.root = root
        self.problems = problems
        self.limits = problems.limits
        self.peripherals: dict[str, ET.Element] = {}
        for p in root.iter("peripheral"):
            name = child_text(p, "name") or ""
            self.peripherals.setdefault(name, p)
        self.enum_groups: dict[str, list[ET.Element]] = {}
        for g in root.iter("enumeratedValues"):
            gname = child_text(g, "name")
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

    def find_enum(self, ref: str, where: str) -> ET.Element:
        name = ref.split(".")[-1]
        found = self.enum_groups.get(name)
        if not found:
            raise self.error(where, f"derivedFrom {ref!r}: no such enumeratedValues")
        return found[0]

    # --- dim lists ----------------------------------------------------------------------------------
    def dim(self, elem: ET.Element, where: str) -> tuple[int, int, list[str]] | None:
        dim_text = child_text(elem, "dim")
        if dim_text is None:
            return None
        dim = self.num(dim_text, where, "dim")
        self.limits.check_dim(dim, where, "dim", self.source)
        inc_text = child_text(elem, "dimIncrement")
        if inc_text is None:
            raise self.error(where, "dim without dimIncrement")
        inc = self.num(inc_text, where, "dimIncrement")
        index_text = child_text(elem, "dimIndex")
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

    def unroll(self, elem: ET.Element, name: str, where: str) -> list[tuple[str, int]]:
        """(name, address increment) per element of a dim (one entry without dim)."""
        dim = self.dim(elem, where)
        if dim is None:
            return [(name, 0)]
        _, inc, indices = dim
        return [(dim_name(name, idx), i * inc) for i, idx in enumerate(indices)]



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
        if child_text(child, "name") == ref:
            return child
    template = _template_of(ref, [child_text(c, "name") or "" for c in children])
    if template != ref:
        for child in children:
            if child_text(child, "name") == template:
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
                name = child_text(entry, "name")
                for old in list(copy_):
                    if name is not None and child_text(old, "name") == name:
                        copy_.remove(old)
                copy_.append(entry)
        else:
            for old in merged.findall(child.tag):
                merged.remove(old)
            merged.append(child)
    if derived.find("dim") is None and "%s" not in (child_text(derived, "name") or "%s"):
        for tag in ("dim", "dimIncrement", "dimIndex", "dimName", "dimArrayIndex"):   # one element of a dim list
            for old in merged.findall(tag):
                merged.remove(old)
    return merged
