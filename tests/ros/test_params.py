"""das_ros.params is the single source of defaults: config/das.yaml, docs and the launch file agree with it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

from das_ros import params as P
from das_ros.pipeline import PipelineSettings

ROOT = Path(__file__).resolve().parents[2]


def test_config_yaml_equals_params_defaults() -> None:
    data = yaml.safe_load((ROOT / "config" / "das.yaml").read_text())
    flat = P.flatten(data["/**"]["ros__parameters"])
    assert flat == P.defaults()
    for name, value in flat.items():  # same YAML types, so rclpy does not reject a float written as an int
        assert type(value) is P.by_name(name).type, name


def test_generated_yaml_is_the_committed_file() -> None:
    assert (ROOT / "config" / "das.yaml").read_text() == P.yaml_text()


def test_every_parameter_has_a_description_and_a_valid_default() -> None:
    assert len({p.name for p in P.PARAMS}) == len(P.PARAMS)
    for p in P.PARAMS:
        assert p.description.strip()
        assert P.validate(p.name, p.default) == p.default


def test_docs_table_lists_every_parameter() -> None:
    doc = (ROOT / "docs" / "ROS.md").read_text()
    assert P.markdown_table() in doc


@pytest.mark.parametrize("name, value, match", [
    ("min_score", 1.5, "above its maximum"),
    ("tracking.min_hits", 0, "below its minimum"),
    ("backend", "caffe", "not one of"),
    ("device", "gpu0", "does not match"),
    ("publish_markers", "yes", "must be a bool"),
    ("max_persons", 2.5, "integer"),
    ("smoothing.beta", float("nan"), "finite"),
    ("nope", 1, "unknown parameter"),
])
def test_invalid_values_are_rejected_with_the_name(name: str, value: object, match: str) -> None:
    with pytest.raises(P.ParamError, match=match):
        P.validate(name, value)


def test_strings_from_launch_arguments_are_typed() -> None:
    assert P.validate("publish_markers", "false") is False
    assert P.validate("tracking.max_distance", "1") == 1.0
    assert P.validate("max_persons", "7") == 7
    assert P.validate("device", "cuda:1") == "cuda:1"


def test_pipeline_settings_follow_the_parameters() -> None:
    s = PipelineSettings.from_params({"tracking.max_distance": 0.9, "smoothing.enabled": True,
                                      "joint_confidence_threshold": 0.3})
    assert s.tracker.max_distance == 0.9 and s.tracker.smoothing
    assert s.markers.joint_confidence_threshold == 0.3 == s.joint_confidence_threshold


def test_launch_overrides_are_parameters() -> None:
    tree = ast.parse((ROOT / "launch" / "das.launch.py").read_text())
    overrides = next(n.value for n in ast.walk(tree) if isinstance(n, ast.Assign)
                     and any(isinstance(t, ast.Name) and t.id == "OVERRIDES" for t in n.targets))
    names = ast.literal_eval(overrides)
    for name in names:
        P.by_name(name)
    declared = {n.args[0].value for n in ast.walk(tree) if isinstance(n, ast.Call)
                and getattr(n.func, "id", "") == "DeclareLaunchArgument"}
    required = {"namespace", "image", "camera_info", "params_file", "model", "device", "backend", "precision",
                "image_transport", "publish_markers", "debug_image", "rviz", "use_sim_time", "log_level",
                "autostart"}
    assert required <= declared and set(names) <= declared


def test_backend_and_precision_choices_match_das_core() -> None:
    from das_core.engine.backends import ALL_PRECISIONS, BACKEND_NAMES

    assert P.by_name("backend").choices == tuple(BACKEND_NAMES)
    assert P.by_name("precision").choices == tuple(ALL_PRECISIONS)
    assert P.by_name("backend").default in BACKEND_NAMES


def test_cameras_parameter_splits_namespaces_and_refuses_repeats_and_absolute_names() -> None:
    assert P.camera_namespaces("") == []
    assert P.camera_namespaces(" front, left  /rear/color ") == ["front", "left", "/rear/color"]
    for bad, text in (("front front", "more than once"), ("~x", "does not match"),
                      ("a//b", "does not match"), ("2cam", "does not match")):
        with pytest.raises(P.ParamError, match=text):
            P.camera_namespaces(bad)


def test_cameras_is_a_string_array_that_a_launch_argument_string_also_gives() -> None:
    assert P.by_name("cameras").type is list and P.by_name("cameras").type_name == "string array"
    assert P.defaults()["cameras"] == [] and P.defaults()["cameras"] is not P.by_name("cameras").default
    assert P.validate("cameras", ["front", "/cam/rear"]) == ["front", "/cam/rear"]
    for text in ("/cam1 /cam2, rear", "[/cam1, /cam2, rear]", " /cam1,/cam2  rear "):  # launch arguments
        assert P.camera_namespaces(text) == ["/cam1", "/cam2", "rear"]
    assert P.camera_namespaces("") == [] == P.camera_namespaces([])


@pytest.mark.parametrize("value, match", [
    (["front", "front"], "more than once"),
    (["~front"], "does not match"),
    (["front//x"], "does not match"),
    ([""], "does not match"),
    ([1, 2], "list of strings"),
    (3, "list of strings"),
])
def test_bad_cameras_values_are_refused_with_the_reason(value: object, match: str) -> None:
    with pytest.raises(P.ParamError, match=match):
        P.validate("cameras", value)


def test_the_yaml_writes_the_empty_string_array() -> None:
    assert "    cameras: []\n" in P.yaml_text()
