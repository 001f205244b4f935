"""The library's sub-commands and the dispatcher of the ``das`` command.

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``; importing happens only
for the command that runs, so ``das --help`` stays fast. :data:`COMMANDS` holds the commands of the pure
library (no ROS); the installed ``das`` command is :func:`das_ros.cli.main`, which adds the commands that
speak ROS messages and bags (``demo``, ``infer``, ``bag``) and calls :func:`main` with the full table.
``python -m das_core.cli`` runs the library commands alone.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

__all__ = ["COMMANDS", "Command", "build_parser", "main"]

# (name, module, one-line help). Modules are named explicitly so "go to definition" works.
Command = tuple[str, str, str]
COMMANDS: tuple[Command, ...] = (
    ("train", "das_core.training.trainer", "train a model from a YAML experiment config"),
    ("evaluate", "das_core.evaluation.run", "evaluate a checkpoint on an annotation file"),
    ("export", "das_core.engine.export", "export a checkpoint to ONNX / AOTInductor / TensorRT"),
    ("bench", "das_core.engine.bench", "benchmark the inference engine (latency, throughput, memory)"),
    ("make-synthetic", "das_core.data.make_synthetic", "render a synthetic multi-person 3D dataset"),
    ("convert-official", "das_core.official.convert", "convert the authors' released checkpoint"),
)


def build_parser(load: str | None = None, commands: Sequence[Command] = COMMANDS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="das",
        description="DAS: absolute multi-person 3D human pose from one RGB camera.",
        epilog="Run 'das COMMAND --help' for examples.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, help_text in commands:
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == load:
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            if mod.__doc__:
                p.epilog = mod.__doc__
            p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None, commands: Sequence[Command] = COMMANDS) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = {c[0] for c in commands}
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in names else None, commands)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0 if chosen is None else 2
    try:
        return int(args._run(args) or 0)
    except KeyboardInterrupt:
        return 130
    except (FileNotFoundError, ValueError, RuntimeError, OSError) as exc:
        # Library errors name the file / key / problem; show them without a traceback.
        logging.getLogger("das").debug("error", exc_info=True)
        print(f"das {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
