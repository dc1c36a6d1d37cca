"""Which accessor core runs: the compiled one (`mmiotk._accessors`, built by `pip install`) or pure Python.

The compiled core does each accessor's whole hot path in C and has Linux's barriers for the host
architecture; the pure-Python core is the reference behaviour and runs wherever the extension is missing.
`MMIOTK_PURE_PYTHON=1` in the environment forces the pure-Python core (the test suite runs the accessor
tests both ways). Decided once, at import.
"""

from __future__ import annotations

import os
from types import ModuleType

PURE_PYTHON_ENV = "MMIOTK_PURE_PYTHON"


def _load() -> tuple[ModuleType | None, str]:
    if os.environ.get(PURE_PYTHON_ENV, "") not in ("", "0"):
        return None, f"pure Python ({PURE_PYTHON_ENV} is set)"
    try:
        from . import _accessors  # type: ignore[attr-defined]
    except ImportError as exc:
        return None, f"pure Python (the compiled core is not built: {exc})"
    return _accessors, f"compiled ({_accessors.BARRIERS})"


core, CORE_DESCRIPTION = _load()
CORE = "compiled" if core is not None else "python"
