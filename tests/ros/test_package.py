"""ROS package layout checks that need no ROS: the parts colcon relies on are consistent with each other."""

from __future__ import annotations

import ast
import os
import re
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PURE = ["bag", "conversions", "diagnostics", "factory", "interfaces", "markers", "messages", "params",
        "pipeline", "tracker", "worker"]


def test_das_ros_init_is_empty_because_rosidl_generates_it() -> None:
    assert (ROOT / "das_ros" / "__init__.py").read_text().strip() == ""


def test_pure_modules_never_import_rclpy() -> None:
    for name in PURE:
        tree = ast.parse((ROOT / "das_ros" / f"{name}.py").read_text())
        for node in ast.walk(tree):
            mods = ([a.name for a in node.names] if isinstance(node, ast.Import)
                    else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(m.split(".")[0] in ("rclpy", "rcl_interfaces") for m in mods), (name, mods)


def test_cmake_generates_every_msg_file() -> None:
    cmake = (ROOT / "CMakeLists.txt").read_text()
    listed = set(re.findall(r'"msg/(\w+\.msg)"', cmake))
    assert listed == {p.name for p in (ROOT / "msg").glob("*.msg")}
    assert "ament_python_install_package(das_core)" in cmake
    assert "ament_python_install_package(das_ros" not in cmake  # rosidl already installs that name
    assert 'PATTERN "__init__.py" EXCLUDE' in cmake


def test_package_xml_declares_what_the_code_uses() -> None:
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.get("format") == "3" and root.findtext("name") == "das_ros"
    deps = {e.text for e in root if e.tag.endswith("depend")}
    for needed in ("rclpy", "sensor_msgs", "std_msgs", "geometry_msgs", "visualization_msgs", "diagnostic_msgs",
                   "builtin_interfaces", "rosidl_default_generators", "rosidl_default_runtime", "lifecycle_msgs",
                   "launch_ros", "ament_cmake_python"):
        assert needed in deps, needed
    assert root.findtext("member_of_group") == "rosidl_interface_packages"
    assert root.find("export/build_type").text == "ament_cmake"


def test_node_executable_is_a_script_calling_main() -> None:
    script = ROOT / "scripts" / "das_node"
    assert os.access(script, os.X_OK) and script.read_text().startswith("#!/usr/bin/env python3")
    assert "from das_ros.node import main" in script.read_text()
