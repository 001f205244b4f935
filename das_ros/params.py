"""Every ROS parameter of the DAS node: name, default, description, range or choices (no rclpy import).

This module is the single source of truth: ``node.py`` declares each parameter with a
``ParameterDescriptor`` built from it, ``config/das.yaml`` is generated from it
(``python -m das_ros.params --yaml > config/das.yaml``; a test checks they agree), the launch file uses it
to type its overrides, and the table in ``docs/ROS.md`` comes from ``python -m das_ros.params --markdown``.

Dotted names (``tracking.max_distance``) nest in the YAML file, as ROS 2 does.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
from dataclasses import dataclass
from typing import Any, Union

__all__ = ["PARAMS", "Param", "ParamError", "by_name", "defaults", "flatten", "markdown_table", "validate",
           "validate_all", "yaml_text", "camera_namespaces"]

Value = Union[bool, int, float, str, list[str]]


class ParamError(ValueError):
    """A parameter value is of the wrong type or out of its range / choices."""


@dataclass(frozen=True)
class Param:
    """One node parameter.

    ``dynamic`` says whether a change on a running node takes effect at once; the others (model, device,
    topics) are applied at the next lifecycle *configure* (or *activate* for subscriptions). A list default
    makes a string array (ROS ``PARAMETER_STRING_ARRAY``): ``pattern`` then applies to each item, and the items
    must be distinct.
    """

    name: str
    default: Value
    description: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    pattern: str | None = None  # regex a string must fully match
    dynamic: bool = True

    @property
    def type(self) -> type:
        return type(self.default)

    @property
    def type_name(self) -> str:
        return "string array" if self.type is list else self.type.__name__

    def constraint_text(self) -> str:
        parts = []
        if self.choices:
            parts.append("one of " + ", ".join(self.choices))
        if self.min is not None or self.max is not None:
            lo = "-inf" if self.min is None else f"{self.min:g}"
            hi = "inf" if self.max is None else f"{self.max:g}"
            parts.append(f"in [{lo}, {hi}]")
        if self.pattern and self.type is list:
            parts.append(f"distinct items, each matches {self.pattern}")
        elif self.pattern:
            parts.append(f"matches {self.pattern}")
        if not self.dynamic:
            parts.append("applied at the next configure/activate")
        return "; ".join(parts)


_DEVICE = r"auto|cpu|cuda(:\d+)?|mps"
CAMERA_PATTERN = r"/?[A-Za-z_][A-Za-z0-9_]*(/[A-Za-z_][A-Za-z0-9_]*)*"
"""One camera namespace: a ROS name, relative (under the node's namespace) or absolute, no '~' or '//'."""

PARAMS: tuple[Param, ...] = (
    # --- model (applied at configure) ---
    Param("model", "", "Checkpoint path (das_core safetensors + YAML sidecar). Empty: the node refuses to "
          "configure and says so.", dynamic=False),
    Param("device", "auto", "Inference device (auto = cuda when available, else cpu; cpu, cuda, cuda:N).",
          pattern=_DEVICE, dynamic=False),
    # Same names as das_core.engine.backends.BACKEND_NAMES / ALL_PRECISIONS (a test checks; not imported: that needs torch).
    Param("backend", "eager", "Inference backend of das_core.engine.estimator.Estimator (eager PyTorch, torch.compile, "
          "AOTInductor, ONNX Runtime, TensorRT).", choices=("eager", "compile", "aoti", "onnx", "tensorrt"),
          dynamic=False),
    Param("precision", "fp32", "Compute precision (what a backend supports is checked at configure). int8: backend "
          "onnx on the CPU only, the convolutions quantised and calibrated at the first frame (about a minute; "
          "cached) and refused if they disagree with fp32 (docs/PERFORMANCE.md, CPU).",
          choices=("fp32", "fp16", "bf16", "int8"), dynamic=False),
    Param("input_scale", 1.0, "Network input size relative to the checkpoint's (both keep-ratio limits times this): "
          "0.8 runs a 640x384 camera at 512x320. Smaller is faster and less accurate (docs/PERFORMANCE.md, CPU); "
          "depth stays consistent (decoding uses the resized focal length).", min=0.25, max=2.0, dynamic=False),
    Param("threads", 0, "CPU threads for inference: torch.set_num_threads and onnxruntime's intra-op threads. "
          "0 = the libraries' defaults (all cores).", min=0, max=256, dynamic=False),
    Param("int8_calibration", "", "precision int8: folder of images to calibrate and check the quantisation on "
          "(best: 20 frames of this camera; the first 16 calibrate, the next 4 check). Empty: 20 rendered synthetic "
          "scenes.", dynamic=False),
    Param("warm_start", True, "backend compile or aoti: answer with eager fp32 from the first frame while that "
          "backend is built and warmed in a background thread, then switch to it (on an H200 the first pose comes "
          "after about 4 s instead of after a build of up to 2 minutes; docs/PERFORMANCE.md). false: no pose until "
          "the build is done, and no second model in GPU memory meanwhile. No effect with eager or onnx, nor in "
          "das bag, whose output must come from one backend.", dynamic=False),
    # --- input ---
    Param("image_transport", "raw", "raw: subscribe 'image' (sensor_msgs/Image); compressed: subscribe "
          "'<image>/compressed' (sensor_msgs/CompressedImage) and decode with OpenCV.",
          choices=("raw", "compressed"), dynamic=False),
    Param("cameras", [], "Several cameras through one node and one model: camera namespaces (e.g. [front, left, "
          "rear], or absolute [/cam1, /cam2]). For each N the node subscribes 'N/image' (or 'N/image/compressed') "
          "and 'N/camera_info' and publishes 'N/poses', 'N/markers', 'N/debug_image', each camera with its own "
          "camera_info, tracker, counters and /diagnostics status. All share one model: frames that wait for it "
          "together run as one batch. Empty: one camera on 'image' / 'camera_info'.",
          pattern=CAMERA_PATTERN, dynamic=False),
    Param("use_rectified_intrinsics", False, "Use CameraInfo P (rectified image, e.g. image_rect) instead of K.",
          dynamic=True),
    Param("fallback_hfov_deg", 0.0, "Horizontal field of view used when no CameraInfo has arrived or it is "
          "uncalibrated (K = 0, as many UVC drivers send; warned, throttled) (square pixels, centred principal "
          "point). 0 disables the fallback: frames wait for a calibrated camera_info.",
          min=0.0, max=179.0),
    # --- output filtering ---
    Param("min_score", 0.1, "Persons with a detection score below this are not published.", min=0.0, max=1.0),
    Param("joint_confidence_threshold", 0.5, "Joints with a confidence below this are published with "
          "valid=false and zero position. With a calibrated checkpoint (the shipped one) confidence is the "
          "probability that the joint lies within 5 % of the person's size in the image, so 0.5 keeps the joints "
          "more likely right than wrong (docs/RESULTS.md, joint confidence).", min=0.0, max=1.0),
    Param("max_persons", 50, "At most this many persons per frame (highest scores kept).", min=1, max=1000),
    # --- tracking ---
    Param("tracking.enabled", True, "Assign stable track ids across frames. Off: id = index in the frame.",
          dynamic=True),
    Param("tracking.max_distance", 0.6, "Gate: largest distance (metres) across the camera's viewing ray between "
          "a track's predicted root and a detection for them to be matched. Along the ray, where monocular depth "
          "is noisy, the Kalman filter's Mahalanobis gate decides, which widens with distance.",
          min=0.01, max=10.0),
    Param("tracking.depth_noise", 0.1, "Frame-to-frame noise (σ) of a detected root along the viewing ray, as a "
          "fraction of its distance; the tracker's Kalman filter and gate use it. Raise it if far people's ids "
          "fragment, lower it if people standing one behind the other swap ids.", min=0.005, max=1.0),
    Param("tracking.max_age", 0.5, "Seconds a track survives without a matching detection.", min=0.0, max=60.0),
    Param("tracking.min_hits", 2, "Matched frames before a track is CONFIRMED (before that it is TENTATIVE).",
          min=1, max=100),
    Param("smoothing.enabled", False, "One-Euro filter on the 3D joints of each track.", dynamic=True),
    Param("smoothing.min_cutoff", 1.0, "One-Euro minimum cutoff frequency (Hz); lower = smoother at rest.",
          min=0.001, max=100.0),
    Param("smoothing.beta", 0.5, "One-Euro speed coefficient (1/m); higher = less lag when moving.",
          min=0.0, max=100.0),
    Param("smoothing.d_cutoff", 1.0, "One-Euro cutoff frequency (Hz) of the speed estimate.",
          min=0.001, max=100.0),
    # --- outputs ---
    Param("publish_markers", True, "Publish the skeleton MarkerArray on 'markers'."),
    Param("markers.lifetime", 0.5, "Marker lifetime in seconds (0 = forever); markers also vanish through "
          "the DELETEALL sent with every frame.", min=0.0, max=60.0),
    Param("markers.line_width", 0.03, "Bone line width (metres).", min=0.001, max=1.0),
    Param("markers.joint_size", 0.06, "Joint sphere diameter (metres).", min=0.001, max=1.0),
    Param("markers.text_size", 0.15, "Track id text height (metres).", min=0.001, max=2.0),
    Param("markers.uncertainty", False, "Also draw a translucent 1σ ellipsoid at each person's root, from the "
          "root_covariance of the poses (metres; long along the viewing ray)."),
    Param("debug_image", False, "Publish an overlay on 'debug_image' (computed only while someone subscribes)."),
    Param("diagnostics_period", 1.0, "Seconds between /diagnostics messages.", min=0.1, max=60.0, dynamic=False),
)

_BY_NAME = {p.name: p for p in PARAMS}


def by_name(name: str) -> Param:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ParamError(f"unknown parameter {name!r}; known: {sorted(_BY_NAME)}") from None


def defaults() -> dict[str, Value]:
    """Flat ``{dotted name: default}`` (list defaults copied: the caller may change them)."""
    return {p.name: list(p.default) if isinstance(p.default, list) else p.default for p in PARAMS}


def coerce(name: str, value: Any) -> Value:
    """Convert ``value`` to the parameter's type (int → float allowed, strings 'true'/'false' for bools; for a
    string array, a string of items separated by spaces or commas, optionally in brackets, as a launch argument
    gives it: ``"/front /rear"``, ``"[front, rear]"``)."""
    p = by_name(name)
    t = p.type
    if t is list:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("[") and text.endswith("]"):
                text = text[1:-1]
            return [item.strip("'\"") for item in re.split(r"[\s,]+", text) if item.strip("'\"")]
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            return list(value)
        raise ParamError(f"parameter {name!r} must be a list of strings, got {value!r}")
    if t is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        raise ParamError(f"parameter {name!r} must be a bool, got {value!r}")
    if t is int:
        if isinstance(value, bool):
            raise ParamError(f"parameter {name!r} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and re.fullmatch(r"[+-]?\d+", value.strip()):
            return int(value)
        raise ParamError(f"parameter {name!r} must be an integer, got {value!r}")
    if t is float:
        if isinstance(value, bool):
            raise ParamError(f"parameter {name!r} must be a number, got {value!r}")
        if isinstance(value, (int, float)):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ParamError(f"parameter {name!r} must be a number, got {value!r}")
    if not isinstance(value, str):
        raise ParamError(f"parameter {name!r} must be a string, got {value!r}")
    return value


def validate(name: str, value: Any) -> Value:
    """Coerce and check one value; returns it or raises ``ParamError`` naming the parameter and the rule."""
    p = by_name(name)
    v = coerce(name, value)
    if isinstance(v, float) and not math.isfinite(v):
        raise ParamError(f"parameter {name!r} must be finite, got {v}")
    if p.min is not None and isinstance(v, (int, float)) and v < p.min:
        raise ParamError(f"parameter {name!r} = {v} is below its minimum {p.min:g}")
    if p.max is not None and isinstance(v, (int, float)) and v > p.max:
        raise ParamError(f"parameter {name!r} = {v} is above its maximum {p.max:g}")
    if p.choices and v not in p.choices:
        raise ParamError(f"parameter {name!r} = {v!r} is not one of {list(p.choices)}")
    if p.pattern and isinstance(v, str) and not re.fullmatch(p.pattern, v):
        raise ParamError(f"parameter {name!r} = {v!r} does not match {p.pattern}")
    if isinstance(v, list):
        for item in v:
            if p.pattern and not re.fullmatch(p.pattern, item):
                raise ParamError(f"parameter {name!r}: item {item!r} does not match {p.pattern}")
        repeated = sorted({item for item in v if v.count(item) > 1})
        if repeated:  # two cameras with one namespace would share topics
            raise ParamError(f"parameter {name!r} names {repeated} more than once")
    return v


def validate_all(values: dict[str, Any]) -> dict[str, Any]:
    """Defaults overlaid with ``values`` (flat dotted names), every entry validated (typed ``Any``: each value
    has its own parameter's type, which callers know by name)."""
    out = defaults()
    for k, v in values.items():
        out[k] = validate(k, v)
    return out


def camera_namespaces(value: Any) -> list[str]:
    """The ``cameras`` parameter (a list, or a launch argument's string) → namespaces in order (``[]`` = the
    single-camera default); a repeated or malformed namespace raises ``ParamError``."""
    v = validate("cameras", value)
    assert isinstance(v, list)
    return v


def flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested YAML mapping → flat dotted names."""
    out: dict[str, Any] = {}
    for k, v in tree.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _yaml_scalar(v: Value) -> str:
    if isinstance(v, list):
        return "[" + ", ".join(_yaml_scalar(x) for x in v) + "]"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, int):
        return str(v)
    return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'


def yaml_text() -> str:
    """The content of ``config/das.yaml``: every parameter with its default and a comment."""
    lines = [
        "# Parameters of the das_ros node. Generated from das_ros/params.py:",
        "#   python -m das_ros.params --yaml > config/das.yaml",
        "# '/**' applies them to the node whatever its name or namespace.",
        "/**:",
        "  ros__parameters:",
    ]
    open_groups: list[str] = []
    for p in PARAMS:
        parts = p.name.split(".")
        groups, leaf = parts[:-1], parts[-1]
        common = 0
        while common < min(len(groups), len(open_groups)) and groups[common] == open_groups[common]:
            common += 1
        open_groups = open_groups[:common]
        for g in groups[common:]:
            lines.append("    " + "  " * len(open_groups) + f"{g}:")
            open_groups.append(g)
        indent = "    " + "  " * len(groups)
        comment = p.description
        if p.constraint_text():
            comment += f" ({p.constraint_text()})"
        lines.append(f"{indent}# {comment}")
        lines.append(f"{indent}{leaf}: {_yaml_scalar(p.default)}")
    return "\n".join(lines) + "\n"


def markdown_table() -> str:
    rows = ["| parameter | type | default | range / choices | description |", "|---|---|---|---|---|"]
    for p in PARAMS:
        default = _yaml_scalar(p.default)
        rows.append(f"| `{p.name}` | {p.type_name} | `{default}` | {p.constraint_text() or '—'} "
                    f"| {p.description} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = parser.add_mutually_exclusive_group(required=True)
    g.add_argument("--yaml", action="store_true", help="print config/das.yaml")
    g.add_argument("--markdown", action="store_true", help="print the docs/ROS.md parameter table")
    args = parser.parse_args(argv)
    sys.stdout.write(yaml_text() if args.yaml else markdown_table())
    return 0


if __name__ == "__main__":
    sys.exit(main())
