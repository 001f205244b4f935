"""launch/das.launch.py evaluated without ``launch`` / ``launch_ros`` (neither is on PyPI).

A small stand-in of the launch API (only the classes the file uses, with launch_ros's keyword names, so a
misspelled keyword is a TypeError) is put in ``sys.modules``; the launch description is generated, its
OpaqueFunction run with a launch context, and what it would start is checked against the package: every
LaunchConfiguration it reads is a declared argument, every override is a node parameter, the executable is
the one CMakeLists.txt installs, the params file exists. With rclpy, the node is then built with exactly the
``--ros-args`` that launch_ros would give it, and its real subscriptions and parameters are compared with the
launch arguments (a wrong remap leaves the node on its default topic, which the test sees).

Not covered: ``ros2 launch`` itself (process start, the OnStateTransition event chain at run time, RViz).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from das_ros import params as P

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILE = ROOT / "launch" / "das.launch.py"
LIFECYCLE_STATES = {"unconfigured", "inactive", "active", "finalized", "configuring", "cleaningup",
                    "shuttingdown", "activating", "deactivating", "errorprocessing"}


class FakeLaunch:
    """The launch API surface das.launch.py uses; records what the file reads and builds."""

    def __init__(self) -> None:
        self.read: set[str] = set()  # every LaunchConfiguration name constructed
        self.declared: dict[str, Any] = {}
        rec = self

        class LaunchConfiguration:
            def __init__(self, variable_name: str, *, default: Any = None) -> None:
                rec.read.add(variable_name)
                self.name = variable_name

            def perform(self, context: Any) -> str:
                if self.name not in context.launch_configurations:
                    raise KeyError(f"launch configuration {self.name!r} is not set (undeclared argument)")
                return context.launch_configurations[self.name]

        class DeclareLaunchArgument:
            def __init__(self, name: str, *, default_value: str | None = None, description: str = "",
                         choices: list[str] | None = None) -> None:
                assert name not in rec.declared, f"launch argument {name!r} declared twice"
                rec.declared[name] = self
                self.name, self.default_value, self.description = name, default_value, description

        class Action:
            def __init__(self, **kw: Any) -> None:
                self.kw = kw

        class LaunchDescription:
            def __init__(self, entities: list[Any]) -> None:
                self.entities = list(entities)

        class OpaqueFunction:
            def __init__(self, *, function: Any, args: Any = None, kwargs: Any = None) -> None:
                self.function = function

        class IfCondition:
            def __init__(self, predicate_expression: Any) -> None:
                self.expr = predicate_expression

        class EmitEvent(Action):
            def __init__(self, *, event: Any, condition: Any = None) -> None:
                super().__init__(event=event, condition=condition)

        class RegisterEventHandler(Action):
            def __init__(self, event_handler: Any, *, condition: Any = None) -> None:
                super().__init__(event_handler=event_handler, condition=condition)

        class Node(Action):
            def __init__(self, *, executable: str, package: str | None = None, name: str | None = None,
                         namespace: str | None = None, exec_name: str | None = None, parameters: Any = None,
                         remappings: Any = None, ros_arguments: Any = None, arguments: Any = None,
                         output: str = "log", condition: Any = None, emulate_tty: bool = False,
                         respawn: bool = False, respawn_delay: float | None = None) -> None:
                super().__init__(executable=executable, package=package, name=name, namespace=namespace,
                                 parameters=parameters, remappings=remappings, ros_arguments=ros_arguments,
                                 arguments=arguments, output=output, condition=condition)

        class LifecycleNode(Node):
            def __init__(self, *, name: str, namespace: str, **kw: Any) -> None:  # both required by launch_ros
                super().__init__(name=name, namespace=namespace, **kw)

        class OnStateTransition:
            def __init__(self, *, target_lifecycle_node: Any = None, start_state: str | None = None,
                         goal_state: str | None = None, entities: Any = None, matcher: Any = None) -> None:
                assert start_state in LIFECYCLE_STATES and goal_state in LIFECYCLE_STATES, (start_state, goal_state)
                self.target, self.start_state, self.goal_state, self.entities = (
                    target_lifecycle_node, start_state, goal_state, entities)

        class ChangeState:
            def __init__(self, *, lifecycle_node_matcher: Any, transition_id: int) -> None:
                self.matcher, self.transition_id = lifecycle_node_matcher, transition_id

        def matches_action(action: Any) -> tuple[str, Any]:
            return ("matches", action)

        self.classes = {k: v for k, v in locals().items() if isinstance(v, type) or callable(v)}

    def modules(self, share: Path) -> dict[str, types.ModuleType]:
        c = self.classes

        def mod(name: str, **attrs: Any) -> types.ModuleType:
            m = types.ModuleType(name)
            m.__dict__.update(attrs)
            return m

        mods = {
            "launch": mod("launch", LaunchDescription=c["LaunchDescription"]),
            "launch.actions": mod("launch.actions", DeclareLaunchArgument=c["DeclareLaunchArgument"],
                                  EmitEvent=c["EmitEvent"], OpaqueFunction=c["OpaqueFunction"],
                                  RegisterEventHandler=c["RegisterEventHandler"]),
            "launch.conditions": mod("launch.conditions", IfCondition=c["IfCondition"]),
            "launch.events": mod("launch.events", matches_action=c["matches_action"]),
            "launch.substitutions": mod("launch.substitutions", LaunchConfiguration=c["LaunchConfiguration"]),
            "launch_ros": mod("launch_ros"),
            "launch_ros.actions": mod("launch_ros.actions", LifecycleNode=c["LifecycleNode"], Node=c["Node"]),
            "launch_ros.event_handlers": mod("launch_ros.event_handlers", OnStateTransition=c["OnStateTransition"]),
            "launch_ros.events": mod("launch_ros.events"),
            "launch_ros.events.lifecycle": mod("launch_ros.events.lifecycle", ChangeState=c["ChangeState"]),
            "ament_index_python": mod("ament_index_python"),
            "ament_index_python.packages": mod(
                "ament_index_python.packages",
                get_package_share_directory=lambda pkg: str(share) if pkg == "das_ros" else _no_package(pkg)),
        }
        try:
            importlib.import_module("lifecycle_msgs.msg")
        except ImportError:
            transition = type("Transition", (), {"TRANSITION_CONFIGURE": 1, "TRANSITION_ACTIVATE": 3})
            mods["lifecycle_msgs"] = mod("lifecycle_msgs")
            mods["lifecycle_msgs.msg"] = mod("lifecycle_msgs.msg", Transition=transition)
        return mods


def _no_package(pkg: str) -> str:
    raise LookupError(f"package {pkg!r} not found")


class Launched:
    """What the launch file starts for given launch arguments."""

    def __init__(self, fake: FakeLaunch, entities: list[Any], config: dict[str, str]) -> None:
        self.fake, self.entities, self.config = fake, entities, config
        cls = fake.classes
        nodes = [e for e in entities if type(e) is cls["LifecycleNode"]]
        assert len(nodes) == 1
        self.node = nodes[0].kw
        self.rviz = next(e.kw for e in entities if type(e) is cls["Node"])
        self.emits = [e for e in entities if type(e) is cls["EmitEvent"]]
        self.handlers = [e for e in entities if type(e) is cls["RegisterEventHandler"]]


@pytest.fixture
def launch_file(monkeypatch: pytest.MonkeyPatch):
    """``launch(**args) -> Launched``: the launch file evaluated with those launch arguments."""

    def run(**args: str) -> Launched:
        fake = FakeLaunch()
        for name, m in fake.modules(ROOT).items():  # the source tree has share/'s layout: config/, launch/
            monkeypatch.setitem(sys.modules, name, m)
        spec = importlib.util.spec_from_file_location("das_launch_under_test", LAUNCH_FILE)
        assert spec and spec.loader
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        ld = module.generate_launch_description()
        unknown = set(args) - set(fake.declared)
        assert not unknown, f"not launch arguments: {unknown}"
        config = {n: a.default_value for n, a in fake.declared.items()}
        config.update(args)
        context = types.SimpleNamespace(launch_configurations=config)
        entities = []
        for e in ld.entities:
            if type(e) is fake.classes["OpaqueFunction"]:
                entities += e.function(context)
        return Launched(fake, entities, config)

    return run


def _node_input_topics() -> set[str]:
    """``IMAGE_TOPIC`` and ``CAMERA_INFO_TOPIC`` of node.py, read with ast (node.py imports rclpy)."""
    tree = ast.parse((ROOT / "das_ros" / "node.py").read_text())
    found = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) for t in n.targets
             if isinstance(t, ast.Name) and t.id in ("IMAGE_TOPIC", "CAMERA_INFO_TOPIC")
             and isinstance(n.value, ast.Constant)}
    assert len(found) == 2, found
    return set(found.values())


def test_every_launch_configuration_read_is_a_declared_argument(launch_file) -> None:
    launched = launch_file()
    assert launched.fake.read <= set(launched.fake.declared), launched.fake.read - set(launched.fake.declared)
    # and every declared argument is used (a stale one would silently do nothing)
    assert set(launched.fake.declared) <= launched.fake.read


def test_overrides_are_node_parameters_typed_like_them(launch_file) -> None:
    launched = launch_file(model="/ckpt/das", device="cuda:1", publish_markers="false", debug_image="true",
                           image_transport="compressed", backend="onnx", precision="fp16", use_sim_time="true",
                           cameras="/front /rear")
    params_file, overrides = launched.node["parameters"]
    assert Path(params_file) == ROOT / "config" / "das.yaml" and Path(params_file).is_file()
    assert overrides == {"model": "/ckpt/das", "device": "cuda:1", "publish_markers": False, "debug_image": True,
                         "image_transport": "compressed", "backend": "onnx", "precision": "fp16",
                         "cameras": ["/front", "/rear"], "use_sim_time": True}  # a string array for the node
    for name in set(overrides) - {"use_sim_time"}:
        P.by_name(name)  # raises for a name the node does not declare
    assert launch_file().node["parameters"][1] == {"use_sim_time": False}  # empty arguments override nothing


def test_a_bad_override_value_stops_the_launch(launch_file) -> None:
    with pytest.raises(P.ParamError, match="device"):
        launch_file(device="gpu0")
    with pytest.raises(P.ParamError, match="cameras"):
        launch_file(cameras="~front")
    with pytest.raises(P.ParamError, match="more than once"):
        launch_file(cameras="front front")


def test_remaps_target_the_node_inputs_and_the_node_is_the_installed_executable(launch_file) -> None:
    launched = launch_file(image="/cam/color/image_raw", camera_info="/cam/color/camera_info", namespace="front")
    n = launched.node
    assert dict(n["remappings"]) == {"image": "/cam/color/image_raw", "camera_info": "/cam/color/camera_info"}
    assert set(dict(n["remappings"])) == _node_input_topics()
    assert (n["name"], n["namespace"]) == ("das", "front")
    assert n["package"] == ET.parse(ROOT / "package.xml").getroot().findtext("name")
    cmake = (ROOT / "CMakeLists.txt").read_text()
    assert re.search(rf"install\(PROGRAMS scripts/{n['executable']} DESTINATION lib/\$\{{PROJECT_NAME\}}\)", cmake)
    assert os.access(ROOT / "scripts" / n["executable"], os.X_OK)
    assert n["arguments"] == ["--ros-args", "--log-level", "info"]
    rviz_cfg = Path(launched.rviz["arguments"][1])
    assert rviz_cfg == ROOT / "config" / "das.rviz" and rviz_cfg.is_file()
    assert "install(FILES config/das.yaml config/das.rviz DESTINATION share/${PROJECT_NAME}/config)" in cmake


def test_autostart_configures_then_activates_the_node(launch_file) -> None:
    launched = launch_file()
    from lifecycle_msgs.msg import Transition  # the real one, or the stand-in without ROS
    (configure,) = launched.emits
    assert configure.kw["event"].transition_id == Transition.TRANSITION_CONFIGURE
    assert configure.kw["event"].matcher[1].kw is launched.node
    (handler,) = launched.handlers
    h = handler.kw["event_handler"]
    assert h.target.kw is launched.node and (h.start_state, h.goal_state) == ("configuring", "inactive")
    assert [e.kw["event"].transition_id for e in h.entities] == [Transition.TRANSITION_ACTIVATE]
    for cond in (configure.kw["condition"], handler.kw["condition"]):
        assert cond.expr.name == "autostart"


def _ros_args(node: dict[str, Any], tmp_path: Path) -> list[str]:
    """The command line launch_ros gives a Node: name, namespace, params files (a dict becomes a file), remaps."""
    args = ["--ros-args", "-r", f"__node:={node['name']}", "-r", f"__ns:=/{node['namespace'].lstrip('/')}"]
    for i, p in enumerate(node["parameters"]):
        if isinstance(p, dict):
            path = tmp_path / f"params_{i}.yaml"
            path.write_text(yaml.safe_dump({"/**": {"ros__parameters": p}}))
            p = path
        args += ["--params-file", str(p)]
    for src, dst in node["remappings"]:
        args += ["-r", f"{src}:={dst}"]
    return args + node["arguments"][1:]  # launch_ros appends the node's own arguments after --ros-args


@pytest.mark.parametrize("transport", ["raw", "compressed"])
def test_the_node_started_with_the_launch_arguments_subscribes_where_they_say(launch_file, tmp_path: Path,
                                                                              transport: str) -> None:
    if os.environ.get("DAS_REQUIRE_ROS", "") in ("", "0"):
        pytest.importorskip("rclpy")
    import rclpy
    from ros_helpers import FakeEstimator, import_generated_messages

    import_generated_messages()
    from das_ros.node import DASNode

    launched = launch_file(image="/cam/color/image_raw", camera_info="/cam/color/camera_info", namespace="front",
                           publish_markers="false", image_transport=transport, model="/not/loaded")
    rclpy.init()
    try:
        node = DASNode(estimator=FakeEstimator(), cli_args=_ros_args(launched.node, tmp_path))
        try:
            assert node.get_fully_qualified_name() == "/front/das"
            assert node.get_parameter("publish_markers").value is False
            assert node.get_parameter("model").value == "/not/loaded"
            assert node.get_parameter("tracking.max_distance").value == pytest.approx(0.6)  # from das.yaml
            node.trigger_configure()
            node.trigger_activate()
            image = "/cam/color/image_raw" + ("/compressed" if transport == "compressed" else "")
            assert [s.topic_name for s in node._subs] == [image, "/cam/color/camera_info"]
            # The node's own publishers (not the graph cache, which lags behind discovery).
            assert {p.topic_name for p in node._pubs.values()} == {"/front/poses", "/front/markers",
                                                                   "/front/debug_image"}
            assert node._diag_pub.topic_name == "/diagnostics"
        finally:
            node._release()
            node.destroy_node()
    finally:
        rclpy.shutdown()


def test_the_node_started_with_cameras_subscribes_and_publishes_in_each_camera_namespace(launch_file,
                                                                                        tmp_path: Path) -> None:
    if os.environ.get("DAS_REQUIRE_ROS", "") in ("", "0"):
        pytest.importorskip("rclpy")
    import rclpy
    from ros_helpers import FakeEstimator, import_generated_messages

    import_generated_messages()
    from das_ros.node import DASNode

    launched = launch_file(namespace="das", cameras="/cam1 /cam2, rear")
    rclpy.init()
    try:
        node = DASNode(estimator=FakeEstimator(), cli_args=_ros_args(launched.node, tmp_path))
        try:
            node.trigger_configure()
            node.trigger_activate()
            assert [s.topic_name for s in node._subs] == ["/cam1/image", "/cam1/camera_info", "/cam2/image",
                                                          "/cam2/camera_info", "/das/rear/image",
                                                          "/das/rear/camera_info"]
            assert {p.topic_name for p in node._pubs.values()} == {
                f"{ns}/{t}" for ns in ("/cam1", "/cam2", "/das/rear") for t in ("poses", "markers", "debug_image")}
        finally:
            node._release()
            node.destroy_node()
    finally:
        rclpy.shutdown()
