"""The ``das`` command: the library's sub-commands (:data:`das_core.cli.COMMANDS`) plus the ones that speak
ROS messages and bags, in the order ``das --help`` lists them.

The entry point lives here, not in ``das_core``, because imports point one way only: das_ros may import
das_core, never the reverse (docs/architecture.md).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from das_core import cli as core_cli

__all__ = ["COMMANDS", "main"]

_ROS_COMMANDS: dict[str, core_cli.Command] = {
    "demo": ("demo", "das_ros.apps.demo",
             "render a synthetic crowd, run the full node pipeline, write bag/video/plots"),
    "infer": ("infer", "das_ros.apps.infer",
              "run on images, a folder or a video; write overlays, JSON and optional MCAP"),
    "bag": ("bag", "das_ros.bag", "run the node pipeline on a rosbag2 (MCAP/sqlite3) and write an MCAP bag"),
}
_LIBRARY = {c[0]: c for c in core_cli.COMMANDS}
_ORDER = ("demo", "infer", "train", "evaluate", "export", "bench", "bag", "make-synthetic", "convert-official")
COMMANDS: tuple[core_cli.Command, ...] = tuple({**_LIBRARY, **_ROS_COMMANDS}[name] for name in _ORDER)


def main(argv: Sequence[str] | None = None) -> int:
    return core_cli.main(argv, COMMANDS)


if __name__ == "__main__":
    sys.exit(main())
