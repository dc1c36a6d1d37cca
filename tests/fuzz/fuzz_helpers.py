"""State shared by the fuzz tests and their conftest: the distinct bad inputs per boundary, and settings."""

from __future__ import annotations

from hypothesis import HealthCheck, settings

BAD_INPUTS: dict[str, set[str]] = {}

# Bounded and reproducible: a fixed number of examples per test, derandomized (the counts in
# docs/reliability.md come from these settings), no example database written into the tree.
FUZZ = settings(max_examples=500, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                       HealthCheck.data_too_large])
FUZZ_SLOW = settings(FUZZ, max_examples=150)
