"""controller_node + safety_node on the vehicle: camera driver in, autopilot bridge out.

    ros2 launch liquid_nav onboard.launch.py model:=/opt/models/policy.ckpt \
        camera_topic:=/camera/color/image_raw cmd_vel_topic:=/mavros/setpoint_velocity/cmd_vel

Nothing flies until ``/liquid_nav/arm`` is called (see docs/deployment.md, pre-flight checklist).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    params_file = LaunchConfiguration("params_file")
    namespace = LaunchConfiguration("namespace")
    default_params = os.path.join(get_package_share_directory("liquid_nav"), "config", "onboard.yaml")
    return LaunchDescription([
        DeclareLaunchArgument("model", description="policy checkpoint (or exported .onnx for onnxruntime/tensorrt)"),
        DeclareLaunchArgument("params_file", default_value=default_params, description="node parameters YAML"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace for both nodes"),
        DeclareLaunchArgument("camera_topic", default_value="camera/image_raw",
                              description="camera driver's image topic"),
        DeclareLaunchArgument("cmd_vel_topic", default_value="/mavros/setpoint_velocity/cmd_vel",
                              description="autopilot bridge's velocity setpoint topic (TwistStamped)"),
        Node(
            package="liquid_nav", executable="controller_node", name="controller_node", namespace=namespace,
            output="screen",
            parameters=[params_file, {"model_path": ParameterValue(LaunchConfiguration("model"), value_type=str)}],
            remappings=[("camera/image_raw", LaunchConfiguration("camera_topic"))],
        ),
        Node(
            package="liquid_nav", executable="safety_node", name="safety_node", namespace=namespace, output="screen",
            parameters=[params_file],
            remappings=[("cmd_vel", LaunchConfiguration("cmd_vel_topic"))],
        ),
    ])
