"""Static scan of the package sources for code-execution hazards, and checks that file paths taken from
parameters and command lines are only ever read as data.

Forbidden in ``das_core``, ``das_ros``, ``scripts``, ``launch``, ``training`` and ``benchmarks``:
``pickle.load(s)``, ``torch.load`` without a literal ``weights_only=True``, ``eval`` / ``exec`` /
``compile`` builtins, ``os.system`` / ``os.popen``, ``shell=True``, ``yaml.load`` / ``yaml.unsafe_load``
and ``yaml`` full loaders, ``importlib.import_module`` / ``__import__`` on anything but a literal or a fixed
table. ``ALLOWED`` lists the reviewed exceptions (file, call, why); a new one must be added there on purpose.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from das_core.checkpoint import CheckpointError, load_checkpoint
from das_core.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = ("das_core", "das_ros", "scripts", "launch", "training", "benchmarks")

# (relative path, call text) → why it is acceptable. Keep this short and reviewed.
ALLOWED: dict[tuple[str, str], str] = {
    ("das_core/official/pth.py", "torch.load"): (
        "weights_only=not trust_pickle: full unpickling only with the explicit --trust-pickle flag of "
        "`das convert-official`, documented as 'ONLY for a file you made yourself'"),
    ("das_core/cli.py", "importlib.import_module"): "module names come from the fixed COMMANDS table",
    ("das_ros/factory.py", "importlib.import_module"): "'<pkg>.msg' of message type names built into the code",
}


def _sources() -> list[Path]:
    files: list[Path] = []
    for d in SOURCE_DIRS:
        base = ROOT / d
        if base.is_dir():
            files += sorted(p for p in base.rglob("*") if p.is_file() and (p.suffix == ".py" or _is_python_script(p)))
    return files


def _is_python_script(p: Path) -> bool:
    try:
        return p.read_bytes()[:64].startswith(b"#!") and b"python" in p.read_bytes()[:64]
    except OSError:
        return False


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return "?"


def _kw(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def hazards(path: Path) -> list[tuple[int, str, str]]:
    """(line, call, problem) for every hazardous call in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found: list[tuple[int, str, str]] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = _dotted(node.func)
        short = name.rsplit(".", 1)[-1]
        if name in ("eval", "exec", "compile", "__import__", "builtins.eval", "builtins.exec"):
            found.append((node.lineno, name, "runs text as code"))
        elif name in ("pickle.load", "pickle.loads", "cPickle.load", "dill.load", "marshal.loads"):
            found.append((node.lineno, name, "unpickling can run code"))
        elif name in ("os.system", "os.popen") or name.startswith("os.exec") or name.startswith("os.spawn"):
            found.append((node.lineno, name, "runs a shell command"))
        elif name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all"):
            found.append((node.lineno, name, "yaml loader that can build Python objects (use yaml.safe_load)"))
        elif short == "load" and name.startswith("torch"):
            wo = _kw(node, "weights_only")
            if not (isinstance(wo, ast.Constant) and wo.value is True):
                found.append((node.lineno, name, "torch.load without weights_only=True"))
        elif name in ("importlib.import_module", "import_module"):
            arg = node.args[0] if node.args else None
            if not isinstance(arg, ast.Constant):
                found.append((node.lineno, "importlib.import_module", "imports a computed module name"))
        wo_shell = _kw(node, "shell")
        if isinstance(wo_shell, ast.Constant) and wo_shell.value is True:
            found.append((node.lineno, f"{name}(shell=True)", "runs through a shell"))
    return found


def test_the_scan_finds_hazards_in_a_sample(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text(
        "import os, pickle, subprocess, torch, yaml\n"
        "eval('1')\nexec('x=1')\npickle.load(open('f','rb'))\nos.system('ls')\n"
        "subprocess.run('ls', shell=True)\ntorch.load('f')\ntorch.load('f', weights_only=False)\n"
        "yaml.load('a')\ntorch.load('f', weights_only=True)\nyaml.safe_load('a')\n",
        encoding="utf-8")
    calls = [c for _, c, _ in hazards(sample)]
    assert calls == ["eval", "exec", "pickle.load", "os.system", "subprocess.run(shell=True)", "torch.load",
                     "torch.load", "yaml.load"]


def test_package_sources_have_no_code_execution_hazards() -> None:
    files = _sources()
    assert len(files) > 20, "the scan found suspiciously few source files"
    problems, used = [], set()
    for f in files:
        rel = f.relative_to(ROOT).as_posix()
        for line, call, why in hazards(f):
            key = (rel, call)
            if key in ALLOWED:
                used.add(key)
                continue
            problems.append(f"{rel}:{line}: {call}: {why}")
    assert not problems, "\n".join(problems)
    assert used == set(ALLOWED), f"stale ALLOWED entries: {set(ALLOWED) - used}"


def test_python_tags_in_yaml_are_refused_without_running_them(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    payload = f"!!python/object/apply:os.system ['touch {marker}']"
    cfg = tmp_path / "model.yaml"
    cfg.write_text(f"name: {payload}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(cfg)
    (tmp_path / "ck.safetensors").write_bytes(b"\0" * 16)
    (tmp_path / "ck.yaml").write_text(f"model: {payload}\n", encoding="utf-8")
    with pytest.raises(CheckpointError, match="not a valid checkpoint YAML"):
        load_checkpoint(tmp_path / "ck")
    assert not marker.exists()


@pytest.mark.parametrize("path", ["__import__('os').system('touch pwned')", "$(touch pwned)", "`touch pwned`",
                                  "; touch pwned", "../../etc/passwd"])
def test_model_paths_are_file_names_never_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    """The node's ``model`` parameter and ``--model`` reach ``load_checkpoint``: a path, not a command."""
    from das_ros.pipeline import load_estimator

    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError, match="checkpoint file not found"):
        load_estimator(path, "cpu", "eager", "fp32")
    assert list(tmp_path.iterdir()) == []
