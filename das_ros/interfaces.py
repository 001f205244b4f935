"""Our message definitions (``msg/*.msg``) for code that runs without a ROS build: rosbags typestores.

The ``.msg`` files are the only source. They are found next to the package in a source checkout or editable
install (``<repo>/msg``), in the ament share directory of an installed ROS package
(``<prefix>/share/das_ros/msg``, where rosidl installs them), or where ``pip install`` put them
(``setup.py`` installs them as data files under ``sys.prefix/share/das_ros/msg``).
"""

from __future__ import annotations

import os
import sysconfig
from pathlib import Path
from typing import Any

__all__ = ["DISTROS", "MESSAGE_NAMES", "PACKAGE", "find_msg_dir", "message_definitions", "register_types", "typename",
           "typestore"]

PACKAGE = "das_ros"
# Dependency order: a type's fields only use types listed before it (or standard ones).
MESSAGE_NAMES: tuple[str, ...] = ("Keypoint3D", "Person3DPose", "MultiPerson3DPose")
# ROS distros whose standard message definitions a written bag can embed (Marker differs between them).
DISTROS: tuple[str, ...] = ("humble", "jazzy")


def typename(name: str) -> str:
    """``"Keypoint3D"`` → ``"das_ros/msg/Keypoint3D"``."""
    return f"{PACKAGE}/msg/{name}"


def find_msg_dir() -> Path:
    candidates = [Path(__file__).resolve().parent.parent / "msg",
                  Path(sysconfig.get_path("data")) / "share" / PACKAGE / "msg"]
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            candidates.append(Path(prefix) / "share" / PACKAGE / "msg")
    for c in candidates:
        if all((c / f"{n}.msg").is_file() for n in MESSAGE_NAMES):
            return c
    raise FileNotFoundError(
        f"cannot find the {PACKAGE} message definitions ({', '.join(n + '.msg' for n in MESSAGE_NAMES)}); "
        f"looked in: {', '.join(str(c) for c in candidates)}. Use a source checkout / editable install or "
        "source the ROS workspace that built das_ros."
    )


def message_definitions(msg_dir: Path | None = None) -> dict[str, str]:
    """``{"das_ros/msg/Keypoint3D": text, ...}`` in dependency order."""
    d = msg_dir or find_msg_dir()
    return {typename(n): (d / f"{n}.msg").read_text(encoding="utf-8") for n in MESSAGE_NAMES}


def register_types(typestore: Any, msg_dir: Path | None = None) -> None:
    """Add our message types to a rosbags ``Typestore`` (in place)."""
    from rosbags.typesys import get_types_from_msg

    types: dict[str, Any] = {}
    for name, text in message_definitions(msg_dir).items():
        types.update(get_types_from_msg(text, name))
    typestore.register(types)


def typestore(distro: str = "jazzy") -> Any:
    """The one rosbags ``Typestore`` of the project: ``distro``'s standard messages plus ours."""
    from rosbags.typesys import Stores, get_typestore

    stores = {"humble": Stores.ROS2_HUMBLE, "jazzy": Stores.ROS2_JAZZY}  # keys: DISTROS
    if distro not in stores:
        raise ValueError(f"distro must be one of {list(DISTROS)}, got {distro!r}")
    ts = get_typestore(stores[distro])
    register_types(ts)
    return ts
