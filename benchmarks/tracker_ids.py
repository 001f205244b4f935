"""Track ids under monocular depth noise: how many ids and id switches the tracker gives simulated people.

The scenes are the specification tests' (tests/ros/test_tracker.py: 3 people standing at 2–8 m, 3 walking,
2 crossing at 3 m and 6 m), 30 Hz, 15 % missed detections, noise along the viewing ray as a fraction of the
distance ("8%") or in metres ("0.10m"), 1 % of the distance across it. Mean over seeds; the right count is
the number of people and 0 switches.

    python benchmarks/tracker_ids.py                                  # das_ros.tracker as it is
    git show main:das_ros/tracker.py > /tmp/old_tracker.py
    python benchmarks/tracker_ids.py --tracker /tmp/old_tracker.py    # another version of the module

``--record-demo FILE`` instead runs the shipped demo checkpoint on ``das demo``'s default sequence (CPU, fp32)
and writes the roots it detects (score >= the node's min_score) and the ground-truth roots and ids of every
frame to FILE (npz): the fixture ``tests/ros/data/demo_roots.npz`` of the test that replays real network
output through the tracker.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
for p in (ROOT, ROOT / "tests" / "ros"):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from test_tracker import CROSSING, FPS, STANDING, WALKING, id_count, id_switches, people  # noqa: E402

from das_core.skeletons import get_skeleton  # noqa: E402

SCENES = {"standing": (STANDING, 10.0), "walking": (WALKING, 10.0), "crossing": (CROSSING, 4.5)}
NOISES = ("2%", "5%", "8%", "10%", "0.10m", "0.20m")


def load_tracker(path: str | None) -> ModuleType:
    if path is None:
        import das_ros.tracker

        return das_ros.tracker
    spec = importlib.util.spec_from_file_location("tracker_under_test", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    return mod


def run(tracker: object, paths: list, seconds: float, noise: str, miss: float, seed: int) -> dict[int, list[int]]:
    rng = np.random.default_rng(seed)
    root = get_skeleton("panoptic15").root
    got: dict[int, list[int]] = {k: [] for k in range(len(paths))}
    for f in range(int(seconds * FPS)):
        t = f / FPS
        seen = [k for k in range(len(paths)) if rng.random() >= miss]
        rng.shuffle(seen)
        roots = []
        for k in seen:
            p = np.asarray(paths[k](t), np.float64)
            r = float(np.linalg.norm(p))
            ray = p / r
            a = np.cross(ray, [0.0, 1.0, 0.0])
            a /= np.linalg.norm(a)
            b = np.cross(ray, a)
            s_ray = float(noise[:-1]) / 100 * r if noise.endswith("%") else float(noise[:-1])
            e = rng.standard_normal(3)
            roots.append(tuple(p + s_ray * e[0] * ray + 0.01 * r * (e[1] * a + e[2] * b)))
        out, _ = tracker.update(people(roots), t, root)  # type: ignore[attr-defined]
        for k, tid in zip(seen, out.track_ids, strict=True):
            got[k].append(int(tid))
    return got


def record_demo(path: str) -> None:
    from das_core.infer import load_demo_estimator

    from das_core.data.synthetic import make_sequence
    from das_ros.apps.demo import MIN_VISIBLE_JOINTS, DemoSettings
    from das_ros.params import defaults

    s = DemoSettings()
    min_score = float(defaults()["min_score"])
    est = load_demo_estimator(None, "cpu", "eager", "fp32")
    root = get_skeleton("panoptic15").root
    seq = make_sequence(num_frames=s.frames, seed=s.seed, width=s.width, height=s.height, num_people=s.people,
                        fps=s.fps, hfov_deg=s.hfov_deg)
    det, det_frame, gt, gt_id, gt_frame = [], [], [], [], []
    for i, scene in enumerate(seq.frames):
        p = est(scene.image, seq.camera)
        scores = np.asarray(p.scores)
        order = np.argsort(-scores, kind="stable")
        order = order[scores[order] >= min_score]
        det.append(np.asarray(p.roots(root))[order])
        det_frame.append(np.full(len(order), i))
        keep = scene.visible.sum(axis=1) >= MIN_VISIBLE_JOINTS
        gt.append(scene.joints_3d[keep, root])
        gt_id.append(scene.track_ids[keep])
        gt_frame.append(np.full(int(keep.sum()), i))
    np.savez_compressed(path, fps=s.fps, det=np.concatenate(det).astype(np.float32),
                        det_frame=np.concatenate(det_frame), gt=np.concatenate(gt).astype(np.float32),
                        gt_id=np.concatenate(gt_id), gt_frame=np.concatenate(gt_frame))
    print(f"{path}: {s.frames} frames, {sum(map(len, det))} detections, {len(np.unique(np.concatenate(gt_id)))} "
          "people")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tracker", default=None, help="a tracker.py to load instead of das_ros.tracker")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--miss", type=float, default=0.15, help="probability that a person is missed in a frame")
    ap.add_argument("--record-demo", metavar="FILE", default=None,
                    help="write the demo checkpoint's detections on the demo sequence to FILE (npz) and exit")
    args = ap.parse_args()
    if args.record_demo:
        record_demo(args.record_demo)
        return
    mod = load_tracker(args.tracker)
    print(f"tracker: {args.tracker or 'das_ros.tracker'}; {args.seeds} seeds, {args.miss:.0%} missed, 30 Hz; "
          "mean ids / mean id switches")
    print(f"{'scene':10s} {'people':>6s} " + " ".join(f"{n:>13s}" for n in NOISES))
    for name, (paths, seconds) in SCENES.items():
        cells = []
        for noise in NOISES:
            res = [run(mod.Tracker(), paths, seconds, noise, args.miss, s) for s in range(args.seeds)]
            cells.append(f"{np.mean([id_count(g) for g in res]):6.1f} / {np.mean([id_switches(g) for g in res]):5.1f}")
        print(f"{name:10s} {len(paths):6d} " + " ".join(f"{c:>13s}" for c in cells))


if __name__ == "__main__":
    main()
