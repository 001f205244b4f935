"""Launch the DAS node (managed) with optional RViz.

  ros2 launch das_ros das.launch.py image:=/camera/color/image_raw camera_info:=/camera/color/camera_info \
      model:=/path/to/checkpoint device:=cuda rviz:=true

Several cameras, one node, one model: ``cameras:="/front /left /rear"`` (then image/camera_info are not used;
the node reads ``/front/image`` + ``/front/camera_info`` and writes ``/front/poses``, ... per camera). A launch
argument is a string: ``das_ros.params.validate`` splits it at spaces or commas into the node's string-array
``cameras`` parameter (``"[/front, /rear]"`` works too).

Empty launch arguments (model, device, backend, precision, image_transport, publish_markers, debug_image, cameras)
leave the value of params_file (default: the installed config/das.yaml) untouched.
With autostart:=true (default) the node is configured then activated; otherwise drive it with
``ros2 lifecycle set /das/das configure`` / ``activate``.
"""

# ruff: noqa: I001  (ruff takes the repository's launch/ folder for the ROS `launch` package: keep ROS order)
from __future__ import annotations

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, EmitEvent, OpaqueFunction, RegisterEventHandler
from launch.conditions import IfCondition
from launch.events import matches_action
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import LifecycleNode, Node
from launch_ros.event_handlers import OnStateTransition
from launch_ros.events.lifecycle import ChangeState
from lifecycle_msgs.msg import Transition

from das_ros import params as P

# Launch arguments that override one node parameter when not empty.
OVERRIDES = ("model", "device", "backend", "precision", "image_transport", "publish_markers", "debug_image",
             "cameras")


def _setup(context, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003 - launch's OpaqueFunction signature
    share = get_package_share_directory("das_ros")

    def arg(name: str) -> str:
        return LaunchConfiguration(name).perform(context)

    overrides = {}
    for name in OVERRIDES:
        value = arg(name)
        if value != "":
            overrides[name] = P.validate(name, value)  # typed like the parameter; a bad value stops the launch
    overrides["use_sim_time"] = arg("use_sim_time").lower() == "true"

    node = LifecycleNode(
        package="das_ros",
        executable="das_node",
        name="das",
        namespace=arg("namespace"),
        output="screen",
        parameters=[arg("params_file"), overrides],
        remappings=[("image", arg("image")), ("camera_info", arg("camera_info"))],
        arguments=["--ros-args", "--log-level", arg("log_level")],
    )
    autostart = IfCondition(LaunchConfiguration("autostart"))
    configure = EmitEvent(
        event=ChangeState(lifecycle_node_matcher=matches_action(node), transition_id=Transition.TRANSITION_CONFIGURE),
        condition=autostart,
    )
    activate = RegisterEventHandler(
        OnStateTransition(
            target_lifecycle_node=node,
            start_state="configuring",
            goal_state="inactive",
            entities=[EmitEvent(event=ChangeState(lifecycle_node_matcher=matches_action(node),
                                                  transition_id=Transition.TRANSITION_ACTIVATE))],
        ),
        condition=autostart,
    )
    rviz = Node(
        package="rviz2",
        executable="rviz2",
        name="das_rviz",
        arguments=["-d", os.path.join(share, "config", "das.rviz"), "--fixed-frame", arg("rviz_fixed_frame")],
        parameters=[{"use_sim_time": overrides["use_sim_time"]}],
        condition=IfCondition(LaunchConfiguration("rviz")),
    )
    return [activate, node, configure, rviz]


def generate_launch_description() -> LaunchDescription:
    share = get_package_share_directory("das_ros")
    args = [
        DeclareLaunchArgument("namespace", default_value="das", description="namespace of the node and its topics"),
        DeclareLaunchArgument("image", default_value="/camera/image_raw",
                              description="input image topic (sensor_msgs/Image); with image_transport:=compressed "
                                          "the node subscribes <image>/compressed"),
        DeclareLaunchArgument("camera_info", default_value="/camera/camera_info",
                              description="sensor_msgs/CameraInfo topic of that image"),
        DeclareLaunchArgument("params_file", default_value=os.path.join(share, "config", "das.yaml"),
                              description="ROS 2 parameters YAML (every parameter: see docs/ROS.md)"),
        DeclareLaunchArgument("model", default_value="", description="checkpoint path (overrides params_file)"),
        DeclareLaunchArgument("device", default_value="", description="cpu | cuda | cuda:N (overrides params_file)"),
        DeclareLaunchArgument("backend", default_value="",
                              description="|".join(P.by_name("backend").choices) + " (overrides params_file)"),
        DeclareLaunchArgument("precision", default_value="",
                              description="|".join(P.by_name("precision").choices) + " (overrides params_file)"),
        DeclareLaunchArgument("image_transport", default_value="", description="raw | compressed"),
        DeclareLaunchArgument("publish_markers", default_value="", description="true | false"),
        DeclareLaunchArgument("debug_image", default_value="", description="true | false"),
        DeclareLaunchArgument("cameras", default_value="",
                              description="camera namespaces, e.g. '/front /rear': each gets <N>/image, "
                                          "<N>/camera_info in and <N>/poses, <N>/markers out, through one model "
                                          "(image and camera_info are then unused); empty: one camera"),
        DeclareLaunchArgument("rviz", default_value="false", description="start RViz with config/das.rviz"),
        DeclareLaunchArgument("rviz_fixed_frame", default_value="camera_color_optical_frame",
                              description="RViz fixed frame: the camera's optical frame (header.frame_id of the "
                                          "images) or any frame TF connects to it"),
        DeclareLaunchArgument("use_sim_time", default_value="false", description="use /clock (bag playback)"),
        DeclareLaunchArgument("log_level", default_value="info", description="debug | info | warn | error"),
        DeclareLaunchArgument("autostart", default_value="true",
                              description="configure and activate the lifecycle node at start"),
    ]
    return LaunchDescription([*args, OpaqueFunction(function=_setup)])
