"""`peakrdl mmiotk`: the PeakRDL command line's exporter for mmiotk, so a SystemRDL flow that already runs
`peakrdl regblock` / `peakrdl c-header` gets the driver side from the same compile.

    peakrdl mmiotk regs.rdl -o regs.py          # a typed module of RegisterBlock classes (regmap codegen)
    peakrdl mmiotk regs.rdl -o regs.yaml        # the map in mmiotk's own YAML (or .json) format

The format follows the output's suffix (.py, .yaml/.yml, .json) unless `--format` names it. PeakRDL
compiles and elaborates (its include paths, defines, parameters, importers such as IP-XACT); the
elaborated node goes through the same SystemRDL import as `regmap.load`. Registered through the
`peakrdl.exporters` entry point; imported only by the peakrdl command (peakrdl-cli is an optional extra).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from peakrdl.plugins.exporter import ExporterSubcommandPlugin

from . import load
from .codegen import to_python

FORMATS = {".py": "python", ".yaml": "yaml", ".yml": "yaml", ".json": "json"}


class MmiotkExporter(ExporterSubcommandPlugin):
    short_desc = "Export the register map for mmiotk: a typed Python module, or mmiotk YAML/JSON"
    long_desc = ("Writes the elaborated register map as a typed Python module of mmiotk RegisterBlock classes "
                 "(-o NAME.py, as `mmiotk regmap codegen`) or as mmiotk's own YAML or JSON map (-o NAME.yaml, "
                 "NAME.json); --format overrides the suffix.")

    def add_exporter_arguments(self, arg_group: argparse._ActionsContainer) -> None:
        arg_group.add_argument("--format", choices=sorted(set(FORMATS.values())),
                               help="python, yaml or json (default: from the output's suffix)")
        arg_group.add_argument("--lenient", action="store_true",
                               help="repair mistakes mmiotk refuses (misaligned registers...) with warnings")

    def do_export(self, top_node: Any, options: argparse.Namespace) -> None:
        out = Path(options.output)
        fmt = options.format or FORMATS.get(out.suffix.lower())
        if fmt is None:
            raise ValueError(f"{out}: no format for the suffix {out.suffix!r}; name one with --format "
                             f"({', '.join(sorted(set(FORMATS.values())))})")
        regmap = load(top_node, strict=not options.lenient)
        for warning in regmap.warnings:
            print(f"warning: {warning}")
        text = {"python": to_python, "yaml": type(regmap).to_yaml, "json": type(regmap).to_json}[fmt](regmap)
        out.write_text(text)
