"""msg/*.msg parse with rosbags and round-trip through CDR; factories fill rosbags and plain messages."""

from __future__ import annotations

import numpy as np
import pytest
from rosbags.typesys import Stores, get_typestore

from das_ros.factory import RosbagsFactory
from das_ros.interfaces import MESSAGE_NAMES, find_msg_dir, message_definitions, register_types, typename


@pytest.mark.parametrize("store", [Stores.ROS2_HUMBLE, Stores.ROS2_JAZZY])
def test_every_message_parses_and_round_trips_cdr(store: Stores) -> None:
    ts = get_typestore(store)
    register_types(ts)
    make = RosbagsFactory(ts)
    kp = make("das_ros/msg/Keypoint3D", position=make("geometry_msgs/msg/Point", x=1.0, y=-2.0, z=3.5),
              u=10.5, v=20.25, confidence=0.75, valid=True)
    person = make("das_ros/msg/Person3DPose", id=7, tracking_state=2, score=0.5,
                  root=make("geometry_msgs/msg/Point", x=0.1, y=0.2, z=3.0), joints=[kp, kp],
                  x_min=1.0, y_min=2.0, x_max=3.0, y_max=4.0)
    header = make("std_msgs/msg/Header", stamp=make("builtin_interfaces/msg/Time", sec=5, nanosec=6), frame_id="cam")
    msg = make("das_ros/msg/MultiPerson3DPose", header=header, skeleton="panoptic15", joint_names=["a", "b"],
               root_index=1, bones=[0, 1], image_width=640, image_height=480, persons=[person])
    for obj in (kp, person, msg):
        name = obj.__msgtype__
        back = ts.deserialize_cdr(ts.serialize_cdr(obj, name), name)
        assert ts.serialize_cdr(back, name).tobytes() == ts.serialize_cdr(obj, name).tobytes()
    back = ts.deserialize_cdr(ts.serialize_cdr(msg, msg.__msgtype__), msg.__msgtype__)
    assert back.persons[0].joints[1].position.z == 3.5 and back.persons[0].joints[0].valid
    assert back.header.frame_id == "cam" and list(back.bones) == [0, 1]
    assert back.persons[0].id == 7 and ts.types["das_ros/msg/Person3DPose"].TRACKING_CONFIRMED == 2


def test_embedded_definition_names_every_field() -> None:
    ts = get_typestore(Stores.ROS2_JAZZY)
    register_types(ts)
    text, _ = ts.generate_msgdef("das_ros/msg/MultiPerson3DPose", ros_version=2)
    for field in ("std_msgs/Header header", "das_ros/Person3DPose[] persons", "das_ros/Keypoint3D[] joints",
                  "float32 confidence", "bool valid", "uint32 image_width"):
        assert field in text


def test_definitions_are_found_in_the_source_tree() -> None:
    assert {typename(n) for n in MESSAGE_NAMES} == set(message_definitions())
    assert (find_msg_dir() / "MultiPerson3DPose.msg").is_file()


def test_rosbags_factory_fills_defaults_and_rejects_unknown_fields() -> None:
    ts = get_typestore(Stores.ROS2_HUMBLE)
    make = RosbagsFactory(ts)
    m = make("visualization_msgs/msg/Marker", ns="x", action=3)
    assert m.id == 0 and m.text == "" and m.points == [] and m.pose.orientation.w == 0.0
    assert isinstance(m.colors, list) and m.lifetime.sec == 0
    ts.serialize_cdr(m, "visualization_msgs/msg/Marker")
    info = make("sensor_msgs/msg/CameraInfo")
    assert info.k.shape == (9,) and info.k.dtype == np.float64
    with pytest.raises(KeyError, match="no field"):
        make("geometry_msgs/msg/Point", w=1.0)
    with pytest.raises(KeyError, match="not in the typestore"):
        make("das_ros/msg/Nope")
