"""Register maps: load YAML/JSON, SystemRDL or CMSIS-SVD into RegisterBlock classes; export docs and C.

    regmap = mmiotk.regmap.load("uart.yaml")       # .yaml .yml .json .rdl .svd, picked by suffix
    uart = regmap.bind(buffer)                     # one block: no name needed; several: bind(buf, "UART0")
    uart.LINECTRL.modify(PARITY="ODD")             # the same handle API as a hand-written RegisterBlock
    open("uart.h", "w").write(regmap.to_c_header())
    open("uart.md", "w").write(regmap.to_markdown())

Every format is brought to the one schema (`mmiotk.regmap.schema`) and goes through the same checks, so a
bad file of any kind raises `RegmapError` naming the file, block, register and field.
"""

from __future__ import annotations

import json
import os
import types
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from ..errors import MmioError
from ..registers import Access, Field, Memory, Register, RegisterBlock, RegisterDefinitionError
from .schema import BlockModel, FieldModel, MapModel, RegisterModel

__all__ = ["BlockModel", "FieldModel", "Limits", "MapModel", "RegisterMap", "RegisterModel", "RegmapError",
           "RegmapWarning", "load", "loads"]

SUFFIXES = {".yaml": "yaml", ".yml": "yaml", ".json": "json", ".rdl": "rdl", ".svd": "svd", ".svd.gz": "svd",
            ".xml": "ipxact"}


class RegmapError(MmioError, ValueError):
    """A register map that cannot be loaded: the message names file, block, register and field."""

    def __init__(self, message: str, source: str = "") -> None:
        super().__init__(f"{source}: {message}" if source else message)
        self.source = source


class RegisterMap:
    """A named set of register blocks (RegisterBlock classes) with their base addresses."""

    def __init__(self, name: str, blocks: Iterable[type[RegisterBlock]], *, bases: dict[str, int] | None = None,
                 description: str = "", source: str = "") -> None:
        self.name = name
        self.description = description
        self.source = source
        self.blocks: dict[str, type[RegisterBlock]] = {}
        for cls in blocks:
            bname = cls._block_name
            if bname in self.blocks:
                raise RegmapError(f"block {bname}: declared twice", source)
            self.blocks[bname] = cls
        if not self.blocks:
            raise RegmapError("a register map needs at least one block", source)
        self.bases: dict[str, int] = {n: (bases or {}).get(n, 0) for n in self.blocks}
        self.warnings: list[str] = []   # what lenient loading repaired (mmiotk.regmap.checks)

    def __repr__(self) -> str:
        regs = sum(len(b._specs) for b in self.blocks.values())
        return f"<RegisterMap {self.name!r}: {len(self.blocks)} block(s), {regs} registers>"

    # --- building -------------------------------------------------------------------------------------
    @classmethod
    def from_model(cls, model: MapModel, source: str = "", limits: Limits | None = None) -> RegisterMap:
        """Block classes for a validated schema model; definition errors become RegmapError."""
        blocks = []
        seen: set[str] = set()
        limits = limits or Limits()
        total = 0
        for bm in model.blocks:
            for rm in bm.registers:
                limits.check_dim(rm.count, f"block {bm.name}, register {rm.name}", "count", source)
                total += rm.count
            if total > limits.max_registers:
                raise RegmapError(f"block {bm.name}: the map has more than {limits.max_registers} registers "
                                  "(Limits.max_registers)", source)
        for bm in model.blocks:
            if bm.name in seen:
                raise RegmapError(f"block {bm.name}: declared twice", source)
            seen.add(bm.name)
            blocks.append(_block_class(bm, source))
        return cls(model.name, blocks, bases={bm.name: bm.base for bm in model.blocks},
                   description=model.description, source=source)

    @classmethod
    def from_dict(cls, data: Any, source: str = "", limits: Limits | None = None) -> RegisterMap:
        """Validate `data` (the YAML/JSON form) and build the map."""
        if not isinstance(data, dict):
            raise RegmapError(f"the top level must be a mapping with 'name' and 'blocks', not "
                              f"{type(data).__name__}", source)
        try:
            model = MapModel.model_validate(data)
        except ValidationError as exc:
            raise RegmapError(_describe_validation(exc, data), source) from None
        return cls.from_model(model, source, limits)

    @classmethod
    def _from_importer(cls, data: dict[str, Any], source: str, limits: Limits | None = None) -> RegisterMap:
        """A map from an importer's output (SVD, SystemRDL): already in the schema's normal form, so the
        models are constructed without pydantic validation (a quarter of a big file's load time), and with
        every field given (`_constant_defaults`: pydantic's per-field default lookup was a quarter of what
        is left); the register layer checks every value all the same."""
        from .schema import MemoryModel

        fdef, rdef, mdef = (_constant_defaults(m) for m in (FieldModel, RegisterModel, MemoryModel))
        field, register, memory = (m.model_construct for m in (FieldModel, RegisterModel, MemoryModel))
        blocks = [BlockModel.model_construct(
            **{k: v for k, v in b.items() if k not in ("registers", "memories")},
            registers=[register(**{**rdef, **r, "fields": [field(**{**fdef, **f}) for f in r.get("fields", ())]})
                       for r in b.get("registers", ())],
            memories=[memory(**{**mdef, **m}) for m in b.get("memories", ())]) for b in data["blocks"]]
        model = MapModel.model_construct(name=data["name"], description=data.get("description", ""), blocks=blocks)
        return cls.from_model(model, source, limits)

    @classmethod
    def from_blocks(cls, name: str, *blocks: type[RegisterBlock], bases: dict[str, int] | None = None,
                    description: str = "") -> RegisterMap:
        """A map of hand-written RegisterBlock classes (to export them as docs or a C header)."""
        return cls(name, blocks, bases=bases, description=description)

    # --- using ----------------------------------------------------------------------------------------
    def block_class(self, block: str | None = None) -> type[RegisterBlock]:
        """The RegisterBlock class of `block` (may be omitted when the map has one block)."""
        if block is None:
            if len(self.blocks) == 1:
                return next(iter(self.blocks.values()))
            raise RegmapError(f"map {self.name!r} has {len(self.blocks)} blocks ({', '.join(self.blocks)}); "
                              "name one", self.source)
        try:
            return self.blocks[block]
        except KeyError:
            raise RegmapError(f"map {self.name!r} has no block {block!r} (blocks: {', '.join(self.blocks)})",
                              self.source) from None

    def __getitem__(self, block: str) -> type[RegisterBlock]:
        return self.block_class(block)

    def bind(self, buffer: Any, block: str | None = None, offset: int = 0) -> Any:
        """A bound RegisterBlock: the same handle API as a hand-written block class."""
        return self.block_class(block)(buffer, offset)

    def decode(self, offset: int, width: int, value: int) -> tuple[str, dict[str, Any]] | None:
        """Decode an access for tracing. One block: `offset` is from the block base. Several: `offset` is
        from the lowest block base, and the block is found by its base."""
        if len(self.blocks) == 1:
            return next(iter(self.blocks.values()))._decode(offset, width, value)
        address = min(self.bases.values()) + offset
        for name, cls in self.blocks.items():
            base = self.bases[name]
            if base <= address < base + cls._size:
                return cls._decode(address - base, width, value)
        return None

    # --- exporting ------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """The schema form (what a YAML/JSON file holds), e.g. to convert SVD or SystemRDL to YAML."""
        from .export import map_to_dict

        return map_to_dict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    def to_markdown(self) -> str:
        """Register tables: one overview per block, one field table per register."""
        from .export import to_markdown

        return to_markdown(self)

    def to_c_header(self, guard: str | None = None) -> str:
        """A C header: base, offset, reset, shift/mask and enum defines for every block/register/field."""
        from .export import to_c_header

        return to_c_header(self, guard)


_DEFAULTS: dict[type, dict[str, Any]] = {}


def _constant_defaults(model: type[Any]) -> dict[str, Any]:
    """The defaults of `model`'s optional fields that are constants (None, bool, int, str), computed once:
    handing them to model_construct spares it pydantic's lookup per field and object. List defaults are
    left out (each object needs its own list; the importers always give them)."""
    found = _DEFAULTS.get(model)
    if found is None:
        found = {}
        for name, info in model.model_fields.items():
            if not info.is_required() and info.default_factory is None:
                value = info.get_default()
                if value is None or isinstance(value, (bool, int, str)):
                    found[name] = value
        _DEFAULTS[model] = found
    return found


def _block_class(bm: BlockModel, source: str) -> type[RegisterBlock]:
    where = f"block {bm.name}"
    attrs: dict[str, Any] = {}
    for rm in bm.registers:
        if rm.name in attrs:
            raise RegmapError(f"{where}, register {rm.name}: declared twice", source)
        names: set[str] = set()
        for fm in rm.fields:
            if fm.name in names:
                raise RegmapError(f"{where}, register {rm.name}, field {fm.name}: declared twice", source)
            names.add(fm.name)
        fields = [Field(fm.name, lsb=fm.lsb, width=fm.width, access=fm.access, reset=fm.reset, enum=fm.enum,
                        write_enum=fm.write_enum, doc=fm.description, precious=fm.precious, swacc=fm.swacc,
                        swmod=fm.swmod, singlepulse=fm.singlepulse) for fm in rm.fields]
        attrs[rm.name] = Register(rm.offset, rm.width, access=rm.access, reset=rm.reset, fields=fields,
                                  count=rm.count, stride=rm.stride, doc=rm.description, name=rm.name,
                                  alternate_of=rm.alternate_of, accesswidth=rm.accesswidth,
                                  reset_mask=rm.reset_mask)
    memories = {m.name: Memory(m.offset, m.size, m.width, Access.parse(m.access), m.description)
                for m in bm.memories}
    for name in memories:
        if name in attrs:
            raise RegmapError(f"{where}, memory {name}: a register has the same name", source)
    try:
        return types.new_class(bm.name, (RegisterBlock,), {"name": bm.name},
                               lambda ns: ns.update(attrs, _memories=memories))
    except RegisterDefinitionError as exc:
        raise RegmapError(str(exc), source) from None


def _describe_validation(exc: ValidationError, data: Any) -> str:
    """pydantic's errors, with list indices replaced by the names of what they point at."""
    lines = []
    for err in exc.errors()[:10]:
        path: list[str] = []
        node: Any = data
        keys: list[str] = []
        loc = list(err["loc"])
        i = 0
        while i < len(loc):
            part = loc[i]
            if part in ("blocks", "registers", "fields") and i + 1 < len(loc) and isinstance(loc[i + 1], int):
                idx = int(loc[i + 1])
                items = node.get(part) if isinstance(node, dict) else None
                item = items[idx] if isinstance(items, list) and idx < len(items) else None
                label = item.get("name") if isinstance(item, dict) else None
                kind = part[:-1]
                path.append(f"{kind} {label}" if isinstance(label, str) else f"{kind} #{idx + 1}")
                node = item
                i += 2
                continue
            keys.append(str(part))
            node = node.get(part) if isinstance(node, dict) else None
            i += 1
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
        elif err["type"] == "missing":
            msg = "missing"
        where = ", ".join(path)
        key = ".".join(k for k in keys if not k.startswith("function-"))
        lines.append(f"{where}{': ' if where else ''}{key + ': ' if key else ''}{msg}")
    more = len(exc.errors()) - 10
    if more > 0:
        lines.append(f"... and {more} more")
    return lines[0] if len(lines) == 1 else "\n  " + "\n  ".join(lines)


def loads(text: str, fmt: str = "yaml", source: str = "<string>", *, limits: Limits | None = None) -> RegisterMap:
    """A map from the text of a YAML or JSON file. Duplicate keys are errors; YAML aliases may not expand
    the document beyond `limits.max_yaml_nodes` nodes (an alias bomb of a few KB is refused as such)."""
    from .checks import Limits as _Limits

    limits = limits or _Limits()
    if fmt == "yaml":
        try:
            node = yaml.compose(text, Loader=yaml.SafeLoader)
            _check_yaml(node, limits, source)
            data = yaml.safe_load(text) if node is not None else None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
            problem = getattr(exc, "problem", None) or str(exc)
            raise RegmapError(f"{where}not valid YAML: {problem}", source) from None
    elif fmt == "json":
        try:
            data = json.loads(text, object_pairs_hook=lambda pairs: _no_duplicates(pairs, source))
        except json.JSONDecodeError as exc:
            raise RegmapError(f"line {exc.lineno}, column {exc.colno}: not valid JSON: {exc.msg}", source) from None
    else:
        raise RegmapError(f"loads() reads yaml or json, not {fmt!r}", source)
    return RegisterMap.from_dict(data, source, limits)


def _no_duplicates(pairs: list[tuple[str, Any]], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise RegmapError(f"key {key!r} appears twice in one object", source)
        out[key] = value
    return out


def _check_yaml(root: Any, limits: Limits, source: str) -> None:
    """Count the nodes the document expands to (aliases included, each shared node counted once per use)
    without expanding it, and refuse duplicate mapping keys."""
    sizes: dict[int, int] = {}
    stack: list[tuple[Any, bool]] = [(root, False)] if root is not None else []
    while stack:
        node, done = stack.pop()
        key = id(node)
        if key in sizes and not done:
            continue
        if isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
            if not done:
                seen: set[str] = set()
                for k, _ in node.value:
                    if isinstance(k, yaml.ScalarNode) and k.value in seen:
                        raise RegmapError(f"line {k.start_mark.line + 1}: key {k.value!r} appears twice in one "
                                          "mapping", source)
                    if isinstance(k, yaml.ScalarNode):
                        seen.add(k.value)
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        else:
            sizes[key] = 1
            continue
        if done:
            total = 1 + sum(sizes.get(id(c), 1) for c in children)
            if total > limits.max_yaml_nodes:
                raise RegmapError(f"line {node.start_mark.line + 1}: the document expands to more than "
                                  f"{limits.max_yaml_nodes} nodes through YAML aliases (Limits.max_yaml_nodes)",
                                  source)
            sizes[key] = total
        else:
            sizes[key] = 1   # a cycle back to this node counts once (SafeLoader builds it as a reference)
            stack.append((node, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)


def load(path: str | os.PathLike[str] | Any, *, strict: bool = True, limits: Limits | None = None,
         include_paths: Iterable[str | os.PathLike[str]] = (), also: Iterable[str | os.PathLike[str]] = (),
         defines: dict[str, str] | None = None, udps: Iterable[Any] = ()) -> RegisterMap:
    """Load a register map, the format picked by suffix: .yaml/.yml/.json, .rdl (SystemRDL), .svd or
    .svd.gz (CMSIS-SVD), .xml (IP-XACT, through peakrdl-ipxact); or take a compiled systemrdl node.

    `strict=False` repairs vendor mistakes with a RegmapWarning each (kept in `map.warnings`).
    SystemRDL: `include_paths` for `include, `also` for files compiled first (shared definitions),
    `defines` for the preprocessor, `udps` for user-defined property classes (systemrdl UDPDefinition).
    """
    from .checks import Limits as _Limits

    limits = limits or _Limits()
    if not isinstance(path, (str, os.PathLike)):
        from .rdl import convert_node

        data, warnings = convert_node(path, strict=strict, limits=limits, source=f"<{type(path).__name__}>")
        return _finish(RegisterMap._from_importer(data, f"<{type(path).__name__}>", limits), warnings)
    p = Path(path)
    source = os.fspath(path)
    name = p.name.lower()
    fmt = next((f for suffix, f in sorted(SUFFIXES.items(), key=lambda kv: -len(kv[0])) if name.endswith(suffix)),
               None)
    if fmt is None:
        raise RegmapError(f"unknown register-map format {p.suffix!r} (known: {', '.join(SUFFIXES)})", source)
    if not p.is_file():
        raise RegmapError("no such file", source)
    if fmt in ("rdl", "ipxact"):
        from .rdl import load_rdl

        data, warnings = load_rdl([*also, p], strict=strict, limits=limits, include_paths=include_paths,
                                  defines=defines, udps=udps, ipxact=fmt == "ipxact")
        return _finish(RegisterMap._from_importer(data, source, limits), warnings)
    if fmt == "svd":
        from .svd import load_svd

        data, warnings = load_svd(p, strict=strict, limits=limits)
        return _finish(RegisterMap._from_importer(data, source, limits), warnings)
    if p.stat().st_size > limits.max_file_bytes:
        raise RegmapError(f"larger than {limits.max_file_bytes} bytes (Limits.max_file_bytes)", source)
    return loads(p.read_text(encoding="utf-8"), fmt, source, limits=limits)


def _finish(regmap: RegisterMap, warnings: list[str]) -> RegisterMap:
    regmap.warnings = list(warnings)
    return regmap


from .checks import Limits, RegmapWarning  # noqa: E402  (checks imports RegmapError from here)
