"""SystemRDL (and IP-XACT, through peakrdl-ipxact) import through systemrdl-compiler, into the schema form.

Input: one or several files compiled together (shared definitions first), with include paths, preprocessor
defines and user-defined properties; or an already compiled node (`convert_node`), so any front end of
systemrdl-compiler works (IP-XACT through peakrdl-ipxact).

Blocks: every addrmap holding registers is a block at its absolute address (nested addrmaps become blocks
named `<parent>_<child>`); regfiles are flattened (`<regfile>_<reg>`, arrays unrolled as
`<regfile><i>_<reg>`); register arrays stay arrays (count, stride); `mem` blocks become memory regions.

Field access: `sw` x `onwrite` x `onread` (see `_WRITE_OPS`): sw=r -> ro (rclr: rc, rset: rs), sw=w -> wo
(wclr: woc, wset: wos), sw=w1 -> wo1, sw=rw1 -> w1, sw=rw -> rw, or with onwrite woclr w1c, woset w1s, wot
w1t, wzc w0c, wzs w0s, wzt w0t, wclr wc, wset ws, and onread rclr/rset: wrc, wrs, w1src, ...; sw=na -> na.
`swacc`, `swmod` and `singlepulse` are kept as field side effects; `accesswidth` splits wide registers
into pieces. Fields are placed by their low bit whatever the bit order (`[lsb:msb]` included). Bits no
field declares are read-only (read as 0, writes ignored): that is the register's access when it has any.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from . import RegmapError
from .checks import Limits, Problems, spell, spell_member, unique

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_WRITE_OPS = {None: "value", "woclr": "1c", "woset": "1s", "wot": "1t", "wzc": "0c", "wzs": "0s", "wzt": "0t",
              "wclr": "c", "wset": "s"}
_RW = {("value", ""): "rw", ("value", "c"): "wrc", ("value", "s"): "wrs",
       ("c", ""): "wc", ("c", "s"): "wcrs", ("s", ""): "ws", ("s", "c"): "wsrc",
       ("1c", ""): "w1c", ("1c", "s"): "w1crs", ("1s", ""): "w1s", ("1s", "c"): "w1src", ("1t", ""): "w1t",
       ("0c", ""): "w0c", ("0c", "s"): "w0crs", ("0s", ""): "w0s", ("0s", "c"): "w0src", ("0t", ""): "w0t"}


def load_rdl(paths: Iterable[str | os.PathLike[str]], *, strict: bool = True, limits: Limits | None = None,
             include_paths: Iterable[str | os.PathLike[str]] = (), defines: dict[str, str] | None = None,
             udps: Iterable[Any] = (), ipxact: bool = False) -> tuple[dict[str, Any], list[str]]:
    """Compile `paths` together (in order) and convert the elaborated top."""
    files = [os.fspath(p) for p in paths]
    source = files[-1]
    try:
        from systemrdl import RDLCompileError, RDLCompiler
        from systemrdl.messages import MessagePrinter
    except ImportError:  # pragma: no cover - the dependency is installed with mmiotk
        raise RegmapError("SystemRDL needs the systemrdl-compiler package", source) from None

    messages: list[str] = []

    class Collect(MessagePrinter):
        def emit_message(self, lines: list[str]) -> None:
            messages.append(_ANSI.sub("", "\n".join(lines)))

    compiler = RDLCompiler(message_printer=Collect())
    for udp in udps:
        compiler.register_udp(udp)
    incl = [os.fspath(p) for p in include_paths]
    try:
        for f in files:
            if ipxact and f.lower().endswith(".xml"):
                try:
                    from peakrdl_ipxact import IPXACTImporter
                except ImportError:
                    raise RegmapError("IP-XACT needs the peakrdl-ipxact package", f) from None
                IPXACTImporter(compiler).import_file(f)
            else:
                compiler.compile_file(f, incl_search_paths=[str(Path(f).parent), *incl], defines=defines)
        root = compiler.elaborate()
    except RDLCompileError:
        detail = "\n".join(m for m in messages if "error" in m.lower()) or "\n".join(messages)
        raise RegmapError(f"SystemRDL compilation failed:\n{detail}", source) from None
    return convert_node(root, strict=strict, limits=limits, source=source)


def convert_node(node: Any, *, strict: bool = True, limits: Limits | None = None,
                 source: str = "<systemrdl>") -> tuple[dict[str, Any], list[str]]:
    """The schema dict of a compiled systemrdl RootNode or AddrmapNode, and the warnings of lenient mode."""
    from systemrdl.node import AddrmapNode, RootNode

    top = node.top if isinstance(node, RootNode) else node
    if not isinstance(top, AddrmapNode):
        raise RegmapError(f"expected a systemrdl RootNode or AddrmapNode, not {type(node).__name__}", source)
    conv = _Converter(source, Problems(source, strict, limits or Limits()))
    blocks: list[dict[str, Any]] = []
    conv.addrmap(top, spell(top.inst_name), blocks)
    if not blocks:
        blocks.append({"name": spell(top.inst_name), "base": top.absolute_address, "registers": []})
    return {"name": spell(top.inst_name), "description": _desc(top), "blocks": blocks}, conv.problems.warnings


def _desc(node: Any) -> str:
    text = node.get_property("desc") or ""
    name = node.get_property("name")
    if not text and name and name != node.inst_name:
        text = name
    return " ".join(str(text).split())


def _suffix(node: Any) -> str:
    return "" if node.current_idx is None else "".join(str(i) for i in node.current_idx)


class _Converter:
    def __init__(self, source: str, problems: Problems) -> None:
        self.source = source
        self.problems = problems
        self.limits = problems.limits
        self.block_names: set[str] = set()

    def addrmap(self, node: Any, name: str, blocks: list[dict[str, Any]], top: bool = True) -> None:
        """A block for `node`'s own registers and memories; nested addrmaps become blocks of their own."""
        from systemrdl.node import AddrmapNode

        regs: list[dict[str, Any]] = []
        mems: list[dict[str, Any]] = []
        self.block = name
        children: list[tuple[Any, str]] = []
        self.collect(node, node.absolute_address, "", regs, mems, "" if top else name, children)
        if regs or mems:
            block: dict[str, Any] = {"name": unique(name, self.block_names, "dup"), "base": node.absolute_address,
                                     "description": _desc(node), "registers": regs, "memories": mems}
            blocks.append(block)
        for child, cname in children:
            if isinstance(child, AddrmapNode):
                self.addrmap(child, cname, blocks, top=False)

    def elements(self, parent: Any, child: Any, where: str) -> list[Any]:
        """The unrolled elements of an array child (checked against the limits first)."""
        if child.is_array:
            count = 1
            for d in child.array_dimensions:
                count *= d
            self.limits.check_dim(count, where, "array size", self.source)
            self.problems.count(count, 0, where)
        return [c for c in parent.children(unroll=True) if c.inst_name == child.inst_name]

    def collect(self, node: Any, base: int, prefix: str, regs: list[dict[str, Any]], mems: list[dict[str, Any]],
                block: str, children: list[tuple[Any, str]]) -> None:
        from systemrdl.node import AddrmapNode, MemNode, RegfileNode, RegNode

        for child in node.children(unroll=False):
            where = f"block {self.block}, {prefix}{child.inst_name}"
            if isinstance(child, RegNode):
                reg = self.register(child, base, prefix, self.block)
                if reg is not None:
                    regs.append(reg)
            elif isinstance(child, RegfileNode):
                for element in self.elements(node, child, where):
                    self.collect(element, base, f"{prefix}{element.inst_name}{_suffix(element)}_", regs, mems,
                                 block, children)
            elif isinstance(child, AddrmapNode):
                for element in self.elements(node, child, where):
                    own = f"{prefix}{element.inst_name}{_suffix(element)}"
                    children.append((element, spell(f"{block}_{own}" if block else own)))
            elif isinstance(child, MemNode):
                for element in self.elements(node, child, where):
                    name = spell(f"{prefix}{element.inst_name}{_suffix(element)}")
                    sw = element.get_property("sw")
                    mems.append({"name": name, "offset": element.absolute_address - base,
                                 "size": int(element.size), "width": int(element.get_property("memwidth")),
                                 "access": {"r": "ro", "w": "wo"}.get(sw.name, "rw"),
                                 "description": _desc(element)})

    def register(self, reg: Any, base: int, prefix: str, block: str) -> dict[str, Any] | None:
        name = f"{prefix}{reg.inst_name}"
        where = f"block {block}, register {name}"
        if reg.is_array:
            count = 1
            for d in reg.array_dimensions:
                count *= d
            self.limits.check_dim(count, where, "array size", self.source)
        else:
            count = 1
        width = int(reg.get_property("regwidth"))
        if width not in (8, 16, 32, 64):
            self.problems(where, f"regwidth {width} is not 8, 16, 32 or 64 bits", "dropped the register")
            return None
        parent = reg.parent
        parent_addr = parent.absolute_address if parent.current_idx is not None or not parent.is_array \
            else parent.raw_absolute_address
        offset = parent_addr + reg.raw_address_offset - base
        fields = []
        reset = 0
        unreset = 0   # the bits of fields without a reset: hardware-driven, of no known reset value
        taken: set[str] = set()
        for f in reg.fields():
            fwhere = f"{where}, field {f.inst_name}"
            fd: dict[str, Any] = {"name": unique(spell(f.inst_name), taken, str(f.low)), "lsb": f.low,
                                  "width": f.width, "access": self.access(f, fwhere)}
            if fd["name"] != f.inst_name:
                fd["label"] = f.inst_name
            freset = f.get_property("reset")
            if isinstance(freset, int):
                reset |= freset << f.low
                fd["reset"] = freset
            else:
                unreset |= ((1 << f.width) - 1) << f.low
            encode = f.get_property("encode")
            if encode is not None:
                fd["enum"] = {spell_member(m.name): int(m.value) for m in encode}
            for prop in ("swacc", "swmod", "singlepulse"):
                if f.get_property(prop):
                    fd[prop] = True
            desc = _desc(f)
            if desc:
                fd["description"] = desc
            fields.append(fd)
        self.problems.count(count, count * len(fields), where)
        accesses = {fd["access"] for fd in fields}
        declared = sum(((1 << fd["width"]) - 1) << fd["lsb"] for fd in fields)
        # the register's access is that of its unused bits: SystemRDL has no such bits, and an implementation
        # (PeakRDL-regblock's, for one) reads them as 0 and ignores writes to them: read-only, reset 0
        access = "ro" if declared != (1 << width) - 1 else accesses.pop() if len(accesses) == 1 else "rw"
        out: dict[str, Any] = {"name": spell(name), "offset": offset, "width": width, "access": access,
                               "reset": reset,
                               "description": _desc(reg), "fields": fields}
        if unreset:   # every other bit's reset is known (undeclared bits read 0, see access above)
            out["reset_mask"] = ((1 << width) - 1) & ~unreset
        if out["name"] != name:
            out["label"] = name
        accesswidth = int(reg.get_property("accesswidth"))
        if accesswidth != width:
            out["accesswidth"] = accesswidth
        if accesswidth not in (8, 16, 32, 64) or accesswidth > width:
            self.problems(where, f"accesswidth {accesswidth} is not 8, 16, 32 or 64 bits within the width",
                          "dropped the register")
            return None
        if offset % (accesswidth // 8):
            self.problems(where, f"offset {offset:#x} is not aligned to its accesswidth ({accesswidth // 8} "
                          "bytes)", "dropped the register")
            return None
        if reg.is_array:
            out["count"] = count
            out["stride"] = reg.array_stride
        return out

    def access(self, f: Any, where: str) -> str:
        sw = f.get_property("sw").name
        onread = f.get_property("onread")
        onwrite = f.get_property("onwrite")
        rname = onread.name if onread is not None else ""
        wname = onwrite.name if onwrite is not None else None
        if rname == "ruser" or wname == "wuser":
            self.problems(where, "onread = ruser / onwrite = wuser: the side effect is not described",
                          "read as a plain field")
            rname, wname = ("" if rname == "ruser" else rname), (None if wname == "wuser" else wname)
        read_op = {"rclr": "c", "rset": "s"}.get(rname, "")
        write_op = _WRITE_OPS[wname]
        if sw == "na":
            return "na"
        if sw == "r":
            return {"": "ro", "c": "rc", "s": "rs"}[read_op]
        if sw == "w1":
            return "wo1"
        if sw == "rw1":
            return "w1"
        if sw == "w" and write_op in ("value", "c", "s"):
            return {"value": "wo", "c": "woc", "s": "wos"}[write_op]
        # sw = w with woclr & co.: the write semantics decide (as for sw = rw)
        found = _RW.get((write_op, read_op))
        if found is None:
            self.problems(where, f"onwrite = {wname} with onread = {rname} has no access type",
                          "ignored the onread")
            found = _RW[(write_op, "")]
        return found
