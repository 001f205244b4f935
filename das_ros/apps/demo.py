"""A first look at DAS in one command: a synthetic crowd, the node's whole pipeline, results you can open.

``das demo`` renders a short synthetic camera sequence with known intrinsics (people walking on curved
paths, entering and leaving the view; :func:`das_core.data.synthetic.make_sequence`), runs every frame
through exactly the ROS 2 node's pipeline (``das_ros.pipeline.FramePipeline``: image + camera_info
messages → engine → tracker → MultiPerson3DPose + MarkerArray) with the shipped demo checkpoint, and
writes to ``--out``:

  demo_bag/          rosbag2 folder with one MCAP file: /camera/image_raw, /camera/camera_info,
                     /das/poses (das_ros/msg/MultiPerson3DPose), /das/markers and the node's debug
                     overlay /das/debug_image/compressed, all in frame camera_color_optical_frame.
                     Open the .mcap in Foxglove (3D panel: display frame camera_color_optical_frame),
                     or `ros2 bag play demo_out/demo_bag --loop` next to `rviz2 -d config/das.rviz`.
  overlay.mp4        predicted skeletons (colour = track id) over the images, ground truth in grey
                     (if OpenCV cannot encode mp4 here, only the strip is written)
  overlay_strip.png  six frames side by side
  plot_3d.png        people seen from above and from the side, predictions next to ground truth,
                     and the root trajectories of the whole sequence
  summary.json       accuracy, speed, settings and output names

and prints accuracy against the ground truth (one-to-one 2D matching; MPJPE root-aligned and absolute,
PCK_abs@150 mm, root-depth error, detection recall / precision) with the frame rate and median latency.
It runs on the GPU when one is present (``--device auto``), else on the CPU.

examples:
  das demo                                   # shipped checkpoint, 45 frames, outputs in demo_out/
  das demo --frames 90 --people 8 --out crowd_demo
  das demo --device cpu --frames 10          # quick look on a laptop
  das demo --checkpoint runs/r18/final --device cuda
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from das_core.atomic_file import atomic_write_bytes, atomic_write_text
from das_core.persons import Persons
from das_core.skeletons import Skeleton
from das_ros.apps.infer import VideoSink, ensure_output_dir, load_demo_estimator, shipped_checkpoint, write_strip
from das_ros.interfaces import DISTROS, typestore
from das_ros.recording import (
    APP_TOPICS,
    McapWriter,
    camera_info_message,
    header_message,
    image_message,
    record_frame,
)

__all__ = ["MIN_VISIBLE_JOINTS", "DemoSettings", "add_arguments", "format_summary", "plot_3d", "run", "run_demo"]

log = logging.getLogger(__name__)

# A ground-truth person counts in the accuracy only with at least this many joints inside the image:
# walkers entering or leaving are briefly out of view or show a hand, which no detector can be asked for.
MIN_VISIBLE_JOINTS = 4
BAG_NAME, VIDEO_NAME, STRIP_NAME, PLOT_NAME, SUMMARY_NAME = (
    "demo_bag", "overlay.mp4", "overlay_strip.png", "plot_3d.png", "summary.json")


@dataclass(frozen=True)
class DemoSettings:
    """The synthetic sequence: ``frames`` images of ``width`` × ``height`` px at ``fps``, ``people`` walkers
    on stage on average, a pinhole camera of horizontal field of view ``hfov_deg``."""

    frames: int = 45  # 3 s at 15 fps: with seed 1, walkers leave the view and a new one enters
    people: int = 5
    width: int = 640
    height: int = 384
    fps: float = 15.0
    hfov_deg: float = 70.0
    seed: int = 1
    distro: str = "jazzy"
    frame_id: str = "camera_color_optical_frame"  # config/das.rviz's fixed frame

    def __post_init__(self) -> None:
        if self.frames < 1 or self.people < 1:
            raise ValueError(f"--frames and --people must be >= 1, got {self.frames} and {self.people}")
        if not (32 <= self.width <= 4096 and 32 <= self.height <= 4096):
            raise ValueError(f"--width/--height must be in 32..4096 px, got {self.width}x{self.height}")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise ValueError(f"--fps must be positive, got {self.fps}")


# ----------------------------------------------------------------------------------------------
# Drawing
# ----------------------------------------------------------------------------------------------


def _draw_ground_truth(rgb: np.ndarray, joints_2d: np.ndarray, visible: np.ndarray, skeleton: Skeleton) -> None:
    """Thin grey ground-truth bones (N, K, 2 px) in place, under the predictions drawn later."""
    for uv, vis in zip(joints_2d, visible, strict=True):
        pts = np.round(uv * 4).astype(np.int64)
        for a, b in skeleton.bones:
            if vis[a] and vis[b]:
                cv2.line(rgb, tuple(pts[a]), tuple(pts[b]), (170, 170, 170), 1, cv2.LINE_AA, shift=2)


def plot_3d(path: str | Path, skeleton: Skeleton, gt_3d: np.ndarray, pred: Persons,
            gt_roots: dict[int, list[np.ndarray]], pred_roots: dict[int, list[np.ndarray]], title: str) -> Path:
    """Top view and side view of one frame (ground truth grey, predictions coloured by track id) and the
    root trajectories of the sequence, seen from above. Metres, camera optical frame. Written atomically."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from das_core.overlay import track_color

    fig = Figure(figsize=(15, 5), dpi=100)
    FigureCanvasAgg(fig)
    top, side, traj = fig.subplots(1, 3)
    # (x, z) from above; (z, −y) from the side (y points down in the optical frame)
    views = ((top, 0, 2, 1.0, "x (m, right)", "z (m, forward)", "from above"),
             (side, 2, 1, -1.0, "z (m, forward)", "−y (m, up)", "from the side"))
    for ax, h_axis, v_axis, v_sign, xl, yl, name in views:
        for person in gt_3d:
            for a, b in skeleton.bones:
                ax.plot(person[[a, b], h_axis], v_sign * person[[a, b], v_axis], color="0.6", lw=2.5, zorder=1)
        for i in range(len(pred)):
            c = np.array(track_color(int(pred.track_ids[i])))
            p = pred.joints_3d[i]
            for a, b in skeleton.bones:
                ax.plot(p[[a, b], h_axis], v_sign * p[[a, b], v_axis], color=c, lw=1.2, zorder=2)
        ax.plot([], [], color="0.6", lw=2.5, label="ground truth")
        ax.plot([], [], color="tab:blue", lw=1.2, label="prediction (colour = track id)")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_title(f"{title}: {name}")
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
        ax.plot([0], [0], marker="^" if h_axis == 0 else ">", color="k", ms=9, label="camera")
        ax.legend(loc="upper left", fontsize=7)
    for roots in gt_roots.values():
        r = np.asarray(roots)
        traj.plot(r[:, 0], r[:, 2], color="0.6", lw=2.5, zorder=1)
    for tid, roots in pred_roots.items():
        r = np.asarray(roots)
        traj.plot(r[:, 0], r[:, 2], ".-", color=np.array(track_color(tid)), lw=1, ms=3, zorder=2)
    traj.plot([0], [0], marker="^", color="k", ms=9)
    traj.set_xlabel("x (m, right)")
    traj.set_ylabel("z (m, forward)")
    traj.set_title("root trajectories, whole sequence (grey: ground truth)")
    traj.set_aspect("equal", adjustable="datalim")
    traj.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return atomic_write_bytes(path, buf.getvalue())


# ----------------------------------------------------------------------------------------------
# The demo
# ----------------------------------------------------------------------------------------------


def _finite_or_none(d: dict[str, float]) -> dict[str, float | None]:
    """JSON has no NaN: metrics without data (no match) become null."""
    return {k: (float(v) if math.isfinite(float(v)) else None) for k, v in d.items()}


class _Collected:
    """What the demo gathers frame by frame for the accuracy, the plot and the summary."""

    def __init__(self, root: int) -> None:
        from das_core.evaluation.metrics import FrameResult as EvalFrame

        self.root = root
        self.eval_frames: list[EvalFrame] = []
        self.overlays: list[np.ndarray] = []
        self.latency_ms: list[float] = []
        self.engine_ms: list[float] = []
        self.gt_roots: dict[int, list[np.ndarray]] = {}
        self.pred_roots: dict[int, list[np.ndarray]] = {}
        self.per_frame: list[tuple[np.ndarray, Persons]] = []

    def add(self, scene: Any, persons: Persons) -> None:
        """Ground truth with at least MIN_VISIBLE_JOINTS in view against the frame's predictions."""
        from das_core.evaluation.metrics import FrameResult as EvalFrame

        keep = scene.visible.sum(axis=1) >= MIN_VISIBLE_JOINTS
        self.eval_frames.append(EvalFrame(gt_3d=scene.joints_3d[keep], gt_visible=scene.visible[keep],
                                          pred_3d=persons.joints_3d, gt_2d=scene.joints_2d[keep],
                                          pred_2d=persons.joints_2d, pred_scores=persons.scores))
        for tid, j in zip(scene.track_ids[keep], scene.joints_3d[keep], strict=True):
            self.gt_roots.setdefault(int(tid), []).append(j[self.root])
        for tid, j in zip(persons.track_ids, persons.joints_3d, strict=True):
            self.pred_roots.setdefault(int(tid), []).append(j[self.root])
        self.per_frame.append((scene.joints_3d[keep], persons))


def _draw_frame(scene: Any, persons: Persons, skeleton: Skeleton, joint_confidence_threshold: float, index: int,
                height: int) -> np.ndarray:
    """Ground truth in grey under the predictions (colour = track id), with the frame number."""
    from das_core.overlay import draw_persons

    keep = scene.visible.sum(axis=1) >= MIN_VISIBLE_JOINTS
    drawn = scene.image.copy()
    _draw_ground_truth(drawn, scene.joints_2d[keep], scene.visible[keep], skeleton)
    drawn = draw_persons(drawn, persons, skeleton, joint_confidence_threshold)
    cv2.putText(drawn, f"frame {index}", (6, height - 8), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (255, 255, 255), 1,
                cv2.LINE_AA)
    return drawn


def _summary(s: DemoSettings, seq: Any, col: _Collected, metrics: dict[str, float], estimator: Any,
             pipeline: Any, checkpoint: str, outputs: dict[str, str | None]) -> dict[str, Any]:
    """The content of summary.json."""
    from das_ros.pipeline import BAD_FRAME_REASONS

    lat = np.asarray(col.latency_ms, np.float64)
    eng = np.asarray(col.engine_ms, np.float64)
    device = getattr(estimator, "device", "?")
    backend = getattr(getattr(estimator, "backend", None), "name", "?")
    return {
        "checkpoint": checkpoint,
        "device": str(device),
        "backend": backend,
        "sequence": {
            "frames": s.frames, "width": s.width, "height": s.height, "fps": s.fps, "seed": s.seed,
            "people": s.people, "hfov_deg": s.hfov_deg,
            "intrinsics": {"fx": seq.camera.fx, "fy": seq.camera.fy, "cx": seq.camera.cx, "cy": seq.camera.cy},
            "ground_truth_persons": int(metrics["num_gt"]), "ground_truth_tracks": len(col.gt_roots),
            "min_visible_joints": MIN_VISIBLE_JOINTS,
        },
        "metrics": _finite_or_none({
            "mpjpe_rel_mm": metrics["mpjpe_rel_mm"], "mpjpe_abs_mm": metrics["mpjpe_abs_mm"],
            "pck_abs_150mm": metrics["pck_abs"], "root_depth_err_mm": metrics["root_depth_err_mm"],
            "recall": metrics["recall"], "precision": metrics["precision"], "num_gt": metrics["num_gt"],
            "num_pred": metrics["num_pred"], "num_matched": metrics["num_matched"],
        }),
        "timing": _finite_or_none({
            "fps": 1000.0 / float(lat.mean()) if lat.size else float("nan"),
            "latency_ms_p50": float(np.median(lat)) if lat.size else float("nan"),
            "latency_ms_p90": float(np.percentile(lat, 90)) if lat.size else float("nan"),
            "engine_ms_p50": float(np.median(eng)) if eng.size else float("nan"),
            "frames_timed": float(lat.size),
        }),
        "predicted_tracks": len(col.pred_roots),
        "bad_frames": {k: int(v) for k, v in pipeline.counters.items() if k in BAD_FRAME_REASONS and v},
        "outputs": outputs,
    }


def run_demo(estimator: Any, out_dir: str | Path, settings: DemoSettings | None = None, *,
             progress: bool = True, checkpoint: str = "") -> dict[str, Any]:
    """Render the sequence, run ``FramePipeline`` with ``estimator`` on it, write every output to
    ``out_dir`` and return the summary (the content of summary.json).

    Raises ``OutputError`` when ``out_dir`` cannot be written.
    """
    from tqdm import tqdm

    from das_core.data.synthetic import make_sequence
    from das_core.evaluation.metrics import synthetic_metrics
    from das_ros.factory import RosbagsFactory
    from das_ros.pipeline import FramePipeline, PipelineSettings, skeleton_of

    s = settings or DemoSettings()
    out = ensure_output_dir(out_dir)
    skeleton = skeleton_of(estimator)
    log.info("rendering %d synthetic frames (%dx%d, %d people)", s.frames, s.width, s.height, s.people)
    seq = make_sequence(num_frames=s.frames, seed=s.seed, width=s.width, height=s.height,
                        num_people=s.people, fps=s.fps, hfov_deg=s.hfov_deg)
    if skeleton.num_joints != seq.frames[0].joints_3d.shape[1]:
        raise ValueError(f"the checkpoint predicts the {skeleton.name} skeleton ({skeleton.num_joints} joints); "
                         "the synthetic demo needs panoptic15")

    ts = typestore(s.distro)
    make = RosbagsFactory(ts)
    # The node's default parameters (das_ros.params), exactly what `ros2 launch das_ros das.launch.py` runs.
    pipeline = FramePipeline(estimator, skeleton, make, PipelineSettings.from_params({}))
    thr = pipeline.settings.joint_confidence_threshold
    pipeline.set_camera_info(camera_info_message(make, header_message(make, 0.0, s.frame_id), seq.camera,
                                                 s.width, s.height))
    estimator(seq.frames[0].image, seq.camera)  # warm-up (lazy allocations), not timed

    bag = McapWriter(out / BAG_NAME, ts, topics=APP_TOPICS, distro=s.distro)
    sink = VideoSink(out / VIDEO_NAME, s.fps)
    col = _Collected(skeleton.root)
    empty = Persons.empty(skeleton.num_joints)
    try:
        for i, scene in enumerate(tqdm(seq.frames, desc="das demo", unit="frame", disable=not progress)):
            t = 1.0 + i / s.fps  # bag time starts at 1 s (0 reads as "no stamp" in some tools)
            header = header_message(make, t, s.frame_id)
            info = camera_info_message(make, header, seq.camera, s.width, s.height)
            msg = image_message(make, header, scene.image)
            pipeline.set_camera_info(info)
            result = pipeline.process(msg)
            persons = result.persons if result.ok and result.persons is not None else empty
            record_frame(bag, make, int(round(t * 1e9)), header, msg, info, scene.image, result, persons, skeleton,
                         thr)
            if result.ok:
                col.latency_ms.append(result.timings_ms["total"])
                col.engine_ms.append(float(getattr(getattr(estimator, "timings", None), "total_ms", float("nan"))))
            else:
                log.warning("frame %d skipped (%s): %s", i, result.reason, result.error)
            col.add(scene, persons)
            drawn = _draw_frame(scene, persons, skeleton, thr, i, s.height)
            sink.write(drawn)
            col.overlays.append(drawn)
        bag_path = bag.close()
    except BaseException:
        bag.abort()
        raise
    finally:
        video = sink.close()
    strip = write_strip(out / STRIP_NAME, col.overlays)

    # The 3D plot shows the frame with the most people in view (ties: the earliest).
    best = int(np.argmax([len(g) for g, _ in col.per_frame]))
    plot = plot_3d(out / PLOT_NAME, skeleton, col.per_frame[best][0], col.per_frame[best][1], col.gt_roots,
                   col.pred_roots, f"frame {best}")
    metrics = synthetic_metrics(col.eval_frames, root=skeleton.root, pck_threshold_m=0.15)
    outputs = {"bag": bag_path.name, "video": video.name if video else None, "strip": strip.name,
               "plot": plot.name, "summary": SUMMARY_NAME}
    summary = _summary(s, seq, col, metrics, estimator, pipeline, checkpoint, outputs)
    atomic_write_text(out / SUMMARY_NAME, json.dumps(summary, indent=2) + "\n")
    return summary


def _fmt(v: float | None, spec: str, unit: str = "") -> str:
    return "n/a" if v is None else f"{v:{spec}}{unit}"


def format_summary(summary: dict[str, Any], out_dir: str | Path) -> str:
    """The lines ``das demo`` prints."""
    m, t, q = summary["metrics"], summary["timing"], summary["sequence"]
    o = summary["outputs"]
    files = [f"{o['bag']}/ (MCAP)", *(x for x in (o["video"], o["strip"], o["plot"], o["summary"]) if x)]
    lines = [
        f"das demo: {q['frames']} frames {q['width']}x{q['height']}, {q['ground_truth_tracks']} people over the "
        f"sequence, checkpoint {summary['checkpoint']} on {summary['device']} ({summary['backend']})",
        f"accuracy vs ground truth ({_fmt(m['num_matched'], '.0f')} of {_fmt(m['num_gt'], '.0f')} people matched):",
        f"  MPJPE root-aligned  {_fmt(m['mpjpe_rel_mm'], '7.1f', ' mm')}",
        f"  MPJPE absolute      {_fmt(m['mpjpe_abs_mm'], '7.1f', ' mm')}",
        f"  PCK_abs@150mm       {_fmt(m['pck_abs_150mm'], '7.3f')}",
        f"  root depth error    {_fmt(m['root_depth_err_mm'], '7.1f', ' mm')}",
        f"  detection recall    {_fmt(m['recall'], '7.3f')}   precision {_fmt(m['precision'], '.3f')}",
        f"speed: {_fmt(t['fps'], '.1f', ' frames/s')}, latency p50 {_fmt(t['latency_ms_p50'], '.1f', ' ms')} "
        f"(engine {_fmt(t['engine_ms_p50'], '.1f', ' ms')}, p90 {_fmt(t['latency_ms_p90'], '.1f', ' ms')})",
    ]
    lines.append(f"tracking: {summary['predicted_tracks']} track ids for {q['ground_truth_tracks']} people")
    if summary["bad_frames"]:
        lines.append(f"bad frames: {summary['bad_frames']}")
    lines.append(f"outputs in {out_dir}: {', '.join(files)}")
    if o["video"] is None:
        lines.append("(no mp4: OpenCV has no mp4 encoder here; see the strip PNG)")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    d = DemoSettings()
    parser.add_argument("--checkpoint", default=None, metavar="NAME",
                        help=f"NAME.safetensors + NAME.yaml (default: the shipped {shipped_checkpoint()})")
    parser.add_argument("--out", default="demo_out", help="output folder (default: %(default)s)")
    parser.add_argument("--frames", type=int, default=d.frames, help="frames to render (default: %(default)s)")
    parser.add_argument("--people", type=int, default=d.people, help="people on stage on average (default: %(default)s)")
    parser.add_argument("--width", type=int, default=d.width, help="image width px (default: %(default)s)")
    parser.add_argument("--height", type=int, default=d.height, help="image height px (default: %(default)s)")
    parser.add_argument("--fps", type=float, default=d.fps, help="frame rate of the motion (default: %(default)s)")
    parser.add_argument("--hfov", type=float, default=d.hfov_deg, help="camera horizontal FOV deg (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=d.seed, help="random seed of the scene (default: %(default)s)")
    parser.add_argument("--device", default="auto", help="auto (GPU if present), cpu, cuda, cuda:N (default: %(default)s)")
    parser.add_argument("--backend", default="eager", help="inference backend (default: %(default)s)")
    parser.add_argument("--precision", default="fp32", help="fp32, fp16, bf16 (default: %(default)s)")
    parser.add_argument("--distro", choices=DISTROS, default=d.distro,
                        help="ROS distro whose message definitions the bag embeds (default: %(default)s)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    settings = DemoSettings(frames=args.frames, people=args.people, width=args.width, height=args.height,
                            fps=args.fps, hfov_deg=args.hfov, seed=args.seed, distro=args.distro)
    ensure_output_dir(args.out)  # before the slow model load
    t0 = time.perf_counter()
    est = load_demo_estimator(args.checkpoint, args.device, args.backend, args.precision)
    name = args.checkpoint or str(shipped_checkpoint())
    log.info("loaded %s on %s in %.1f s", name, est.device, time.perf_counter() - t0)
    summary = run_demo(est, args.out, settings, progress=not args.no_progress, checkpoint=name)
    print(format_summary(summary, args.out))
    return 0 if summary["timing"]["frames_timed"] else 1
