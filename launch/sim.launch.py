"""sim_node + controller_node + safety_node on sim time; the controller flies the shipped cfc_ncp model.

    ros2 launch liquid_nav sim.launch.py world:=urban
    ros2 launch liquid_nav sim.launch.py world:=forest_winter model:=/path/policy.onnx seed:=3 lock_step:=true
    ros2 launch liquid_nav sim.launch.py start_controller:=false expert_topic:=liquid_nav/cmd_raw

Then arm: ``ros2 service call /liquid_nav/arm std_srvs/srv/SetBool "{data: true}"``.
The last form flies the privileged expert through the same safety layer (no network needed).
"""
import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue


def generate_launch_description() -> LaunchDescription:
    params_file = LaunchConfiguration("params_file")
    namespace = LaunchConfiguration("namespace")
    use_sim_time = ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)
    share = get_package_share_directory("liquid_nav")
    default_params = os.path.join(share, "config", "sim.yaml")
    shipped_model = os.path.join(share, "checkpoints", "cfc_ncp", "policy.onnx")
    return LaunchDescription([
        DeclareLaunchArgument("world", default_value="forest", description="world name or YAML path"),
        DeclareLaunchArgument("model", default_value=shipped_model,
                              description="policy checkpoint or .onnx for controller_node (default: shipped cfc_ncp)"),
        DeclareLaunchArgument("seed", default_value="0", description="seed of the first episode"),
        DeclareLaunchArgument("use_sim_time", default_value="true", description="controller/safety on sim time"),
        DeclareLaunchArgument("params_file", default_value=default_params, description="node parameters YAML"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace for all nodes"),
        DeclareLaunchArgument("start_controller", default_value="true", description="start controller_node"),
        DeclareLaunchArgument("lock_step", default_value="false",
                              description="each frame waits for its command before the sim advances"),
        DeclareLaunchArgument("expert_topic", default_value="",
                              description="sim_node publishes the expert's commands here ('' = off)"),
        Node(
            package="liquid_nav", executable="sim_node", name="sim_node", namespace=namespace, output="screen",
            parameters=[params_file, {
                "world": ParameterValue(LaunchConfiguration("world"), value_type=str),
                "seed": ParameterValue(LaunchConfiguration("seed"), value_type=int),
                "expert_command_topic": ParameterValue(LaunchConfiguration("expert_topic"), value_type=str),
                "lock_step": ParameterValue(LaunchConfiguration("lock_step"), value_type=bool),
            }],
        ),
        Node(
            package="liquid_nav", executable="controller_node", name="controller_node", namespace=namespace,
            output="screen", condition=IfCondition(LaunchConfiguration("start_controller")),
            parameters=[params_file, {"model_path": ParameterValue(LaunchConfiguration("model"), value_type=str),
                                      "use_sim_time": use_sim_time}],
        ),
        Node(
            package="liquid_nav", executable="safety_node", name="safety_node", namespace=namespace, output="screen",
            parameters=[params_file, {"use_sim_time": use_sim_time}],
        ),
    ])
