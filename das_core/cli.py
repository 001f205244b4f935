"""The ``das`` command: one entry point, thin sub-command parsers over library functions.

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``; importing happens only
for the command that runs, so ``das --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

__all__ = ["main"]

# (name, module, one-line help). Modules are named explicitly so "go to definition" works.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("demo", "das_ros.apps.demo", "render a synthetic crowd, run the full node pipeline, write bag/video/plots"),
    ("infer", "das_ros.apps.infer", "run on images, a folder or a video; write overlays, JSON and optional MCAP"),
    ("train", "das_core.training.trainer", "train a model from a YAML experiment config"),
    ("evaluate", "das_core.evaluation.run", "evaluate a checkpoint on an annotation file"),
    ("export", "das_core.engine.export", "export a checkpoint to ONNX / AOTInductor / TensorRT"),
    ("bench", "das_core.engine.bench", "benchmark the inference engine (latency, throughput, memory)"),
    ("bag", "das_ros.bag", "run the node pipeline on a rosbag2 (MCAP/sqlite3) and write an MCAP bag"),
    ("make-synthetic", "das_core.data.make_synthetic", "render a synthetic multi-person 3D dataset"),
    ("convert-official", "das_core.official.convert", "convert the authors' released checkpoint"),
)


def build_parser(load: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="das",
        description="DAS: absolute multi-person 3D human pose from one RGB camera.",
        epilog="Run 'das COMMAND --help' for examples.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, help_text in COMMANDS:
        p = sub.add_parser(name, help=help_text, description=help_text,
                           formatter_class=argparse.RawDescriptionHelpFormatter)
        if name == load:
            mod = importlib.import_module(module)
            mod.add_arguments(p)
            if mod.__doc__:
                p.epilog = mod.__doc__
            p.set_defaults(_run=mod.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = {c[0] for c in COMMANDS}
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(chosen if chosen in names else None)
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
