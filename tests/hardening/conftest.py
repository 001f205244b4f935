"""Hardening tests: report how many generated inputs the fuzz targets tried (printed even without -s)."""

from __future__ import annotations

from typing import Any

import fuzz_helpers


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: Any) -> None:
    counts = fuzz_helpers.INPUTS
    if not counts:
        return
    tr = terminalreporter
    tr.section("hardening: fuzzed inputs")
    for target, n in sorted(counts.items()):
        tr.write_line(f"{target:<28} {n:>7}")
    tr.write_line(f"{'total':<28} {sum(counts.values()):>7}")
    if fuzz_helpers.OUTCOMES:
        tr.section("hardening: what the fuzzed full pipeline published")
        for what, n in sorted(fuzz_helpers.OUTCOMES.items()):
            tr.write_line(f"{what:<28} {n:>7}")
