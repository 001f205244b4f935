#!/usr/bin/env python3
"""Figures of docs/architecture.md for a source tree: das_core's top-level modules, import cycles among its
modules (lazy imports included), imports of the ROS side from das_core, and the longest functions.

  python scripts/architecture_report.py [TREE]      # TREE: a checkout (default: this one)

The import graph and cycle search are those of tests/core/test_architecture.py (loaded from TREE's sibling
checkout of this script, so an old tree without the test can be measured too).
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]


def _arch_module():  # noqa: ANN202 - the test module, loaded as a library
    spec = importlib.util.spec_from_file_location("arch", HERE / "tests" / "core" / "test_architecture.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(tree: Path) -> int:
    arch = _arch_module()
    arch.ROOT = tree
    core = tree / "das_core"
    print(f"tree: {tree}")
    print(f"das_core top-level modules: {len(list(core.glob('*.py')))}")
    print(f"das_core subpackages: {sorted(d.name for d in core.iterdir() if (d / '__init__.py').is_file())}")
    cycles = arch.import_cycles(arch._module_graph(tree, "das_core"))
    print(f"import cycles in das_core: {len(cycles)}")
    for c in cycles:
        print("  " + " <-> ".join(c))
    ros = []
    for p in sorted(core.rglob("*.py")):
        for line, target, _ in arch._imports(ast.parse(p.read_text(encoding="utf-8")), arch._module_name(p),
                                             p.name == "__init__.py"):
            if arch._is_ros(target):
                ros.append(f"{p.relative_to(tree)}:{line} {target}")
    print(f"imports of das_ros / ROS packages from das_core: {len(ros)}")
    for r in ros:
        print("  " + r)
    for pkg in ("das_core", "das_ros"):
        rows = []
        for p in sorted((tree / pkg).rglob("*.py")):
            for n in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
                if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    rows.append((n.end_lineno - n.lineno + 1, f"{p.relative_to(tree)}:{n.lineno} {n.name}"))
        rows.sort(reverse=True)
        print(f"{pkg}: functions over 80 lines: {sum(r[0] > 80 for r in rows)}")
        for length, name in rows[:4]:
            print(f"  {length:4d} {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]).resolve() if len(sys.argv) > 1 else HERE))
