"""The layering rules of docs/architecture.md, checked on the source: das_core never reaches for the ROS side,
importing the library pulls in nothing of ROS, and das_core's modules import each other without cycles."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "das_core"
# The ROS side and what only it may use: our own package, ROS client libraries and message packages, bags.
ROS_NAMES = ("das_ros", "rclpy", "rosbags", "rosidl", "sensor_msgs", "std_msgs", "visualization_msgs",
             "diagnostic_msgs", "lifecycle_msgs", "builtin_interfaces", "launch", "launch_ros", "ament_index_python")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _core_files() -> list[Path]:
    return sorted(CORE.rglob("*.py"))


def _is_ros(name: str) -> bool:
    return name.split(".")[0] in ROS_NAMES


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[tuple[int, str, list[str]]]:
    """(line, imported module, names) of every import in the file, at module level or inside functions."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield node.lineno, target, [a.name for a in node.names]


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def test_das_core_never_imports_the_ros_side() -> None:
    offenders = []
    for path in _core_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for line, target, _ in _imports(tree, _module_name(path), path.name == "__init__.py"):
            if _is_ros(target):
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert not offenders, "das_core must not import ROS or das_ros:\n" + "\n".join(offenders)


def test_das_core_names_no_ros_module_in_a_string() -> None:
    """A module name in a string (importlib.import_module, a command table) is an import too; docstrings and
    comments may talk about the ROS side."""
    offenders = []
    for path in _core_files():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = _docstring_nodes(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs
                    and any(_is_ros(word) for word in node.value.replace(":", " ").split())):
                offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert not offenders, "das_core must not name ROS modules in strings:\n" + "\n".join(offenders)


def test_the_checker_sees_an_import_of_das_ros(tmp_path: Path) -> None:
    """The scanners above would pass vacuously if they missed imports: they must flag these."""
    src = "import das_ros.bag\nfrom rosbags.typesys import Stores\ndef f():\n    from das_ros import pipeline\n"
    found = [t for _, t, _ in _imports(ast.parse(src), "das_core.x", False) if _is_ros(t)]
    assert found == ["das_ros.bag", "rosbags.typesys", "das_ros"]
    rel = [t for _, t, _ in _imports(ast.parse("from ..engine import decode\n"), "das_core.model.das", False)]
    assert rel == ["das_core.engine"]


def test_importing_the_library_pulls_in_nothing_of_ros() -> None:
    code = (
        "import sys\n"
        "import das_core, das_core.engine.estimator, das_core.engine.export, das_core.engine.bench\n"
        "import das_core.training.trainer, das_core.evaluation.run, das_core.cli\n"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {ROS_NAMES!r})\n"
        "print(','.join(bad))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "", f"importing das_core loaded: {out.stdout.strip()}"


def _module_graph(root: Path, package: str) -> dict[str, set[str]]:
    """Module → the modules of ``package`` it imports (``from a import b`` counts as a.b when b is a module)."""
    files = {_module_name(p): p for p in sorted((root / package).rglob("*.py"))}
    graph: dict[str, set[str]] = {m: set() for m in files}
    for mod, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for _, target, names in _imports(tree, mod, path.name == "__init__.py"):
            subs = [f"{target}.{n}" for n in names if f"{target}.{n}" in files]
            for dep in subs or ([target] if target in files else []):
                if dep != mod:
                    graph[mod].add(dep)
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan), each sorted; sorted by first name."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(out)


def test_cycle_finder_finds_a_three_module_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert import_cycles(graph) == [["a", "b", "c"]]
    assert import_cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("package", ["das_core", "das_ros"])
def test_no_import_cycles(package: str) -> None:
    """Lazy imports inside functions count: a cycle through them is still two modules that need each other."""
    cycles = import_cycles(_module_graph(ROOT, package))
    assert cycles == [], "import cycles:\n" + "\n".join(" ↔ ".join(c) for c in cycles)


def test_das_command_keeps_every_sub_command() -> None:
    from das_ros.cli import COMMANDS

    assert [c[0] for c in COMMANDS] == ["demo", "infer", "train", "evaluate", "export", "bench", "bag",
                                        "make-synthetic", "convert-official"]
