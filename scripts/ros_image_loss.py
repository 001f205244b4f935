#!/usr/bin/env python3
"""How many camera images reach a subscriber in another process: the measurement behind docs/ROS.md's QoS advice.

A "camera" process publishes ``--count`` rgb8 images at ``--rate`` Hz (reliable publisher, depth 10, like most
drivers); a "node" process subscribes with the DAS node's input QoS (best effort, keep last 1) or reliable,
and reports how many arrived. ``best_effort`` is the node's input QoS (keep last 1: a frame the subscriber has
not taken yet is replaced by the next, so a busy CPU shows up as loss too); ``best_effort_depth10`` keeps 10,
which separates transport loss from that. Run it in a ROS 2 environment (``. scripts/ros2_env.sh``):

    python scripts/ros_image_loss.py --sizes 320x240 640x480 1280x720 --count 100 --rate 30
    FASTRTPS_DEFAULT_PROFILES_FILE=scripts/fastdds_shm_only.xml python scripts/ros_image_loss.py ...

Prints one line per size and subscriber QoS: ``WxH qos received/sent``. Uses its own ROS_DOMAIN_ID.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def _qos(kind: str):  # noqa: ANN202 - rclpy types only exist in a ROS environment
    from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

    if kind.startswith("best_effort"):
        # depth 1 is the node's input QoS: a frame not yet taken is replaced by the next (newest only).
        return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10 if kind.endswith("depth10") else 1,
                          reliability=ReliabilityPolicy.BEST_EFFORT, durability=DurabilityPolicy.VOLATILE)
    return QoSProfile(depth=10)


def subscriber(topic: str, qos: str, seconds: float) -> None:
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("loss_node")
    stamps: set[int] = set()
    node.create_subscription(Image, topic, lambda m: stamps.add(m.header.stamp.nanosec), _qos(qos))
    print("ready", flush=True)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    print(json.dumps({"received": len(stamps)}), flush=True)
    node.destroy_node()
    rclpy.shutdown()


def publisher(topic: str, width: int, height: int, count: int, rate: float) -> int:
    import numpy as np
    import rclpy
    from sensor_msgs.msg import Image

    rclpy.init()
    node = rclpy.create_node("loss_camera")
    pub = node.create_publisher(Image, topic, 10)
    end = time.monotonic() + 10.0
    while pub.get_subscription_count() == 0 and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(0.5)  # discovery finished on both sides
    data = np.random.default_rng(0).integers(0, 255, (height, width, 3), dtype=np.uint8).tobytes()
    msg = Image(height=height, width=width, encoding="rgb8", step=width * 3)
    msg.data = data
    t0 = time.monotonic()
    for i in range(count):
        msg.header.stamp.sec, msg.header.stamp.nanosec = 1, i
        pub.publish(msg)
        time.sleep(max(0.0, t0 + (i + 1) / rate - time.monotonic()))
    time.sleep(0.5)
    node.destroy_node()
    rclpy.shutdown()
    return count


def measure(width: int, height: int, qos: str, count: int, rate: float) -> tuple[int, int]:
    topic = f"/loss_{width}x{height}"
    seconds = count / rate + 6.0
    sub = subprocess.Popen([sys.executable, __file__, "--role", "sub", "--topic", topic, "--qos", qos,
                            "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
    assert sub.stdout is not None
    assert sub.stdout.readline().strip() == "ready"
    pub = subprocess.run([sys.executable, __file__, "--role", "pub", "--topic", topic, "--size", f"{width}x{height}",
                          "--count", str(count), "--rate", str(rate)], check=True)
    del pub
    received = json.loads(sub.stdout.readline())["received"]
    sub.wait()
    return received, count


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["320x240", "640x480", "1280x720"])
    ap.add_argument("--qos", nargs="+", default=["best_effort", "best_effort_depth10", "reliable"],
                    choices=["best_effort", "best_effort_depth10", "reliable"])
    ap.add_argument("--count", type=int, default=100)
    ap.add_argument("--rate", type=float, default=30.0)
    ap.add_argument("--role", choices=["sub", "pub"], help=argparse.SUPPRESS)
    ap.add_argument("--topic", help=argparse.SUPPRESS)
    ap.add_argument("--size", help=argparse.SUPPRESS)
    ap.add_argument("--seconds", type=float, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.role == "sub":
        subscriber(a.topic, a.qos[0], a.seconds)
        return 0
    if a.role == "pub":
        w, h = (int(x) for x in a.size.split("x"))
        publisher(a.topic, w, h, a.count, a.rate)
        return 0
    os.environ.setdefault("ROS_DOMAIN_ID", str(150 - os.getpid() % 40))
    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    profile = os.environ.get("FASTRTPS_DEFAULT_PROFILES_FILE") or os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE")
    print(f"# rmw {os.environ.get('RMW_IMPLEMENTATION', 'default')}, Fast DDS profile: {profile or 'default'}, "
          f"{a.count} images at {a.rate:g} Hz, load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    for size in a.sizes:
        w, h = (int(x) for x in size.split("x"))
        for qos in a.qos:
            got, sent = measure(w, h, qos, a.count, a.rate)
            print(f"{w}x{h} {qos} {got}/{sent}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
