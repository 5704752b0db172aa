"""sim_node over real DDS: clock, camera + info, odometry, reset service with a seed, bad cmd_vel."""
import math
import threading

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rcl_interfaces.msg import Parameter as ParameterMsg
from rcl_interfaces.msg import ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.parameter import Parameter
from rosgraph_msgs.msg import Clock
from sensor_msgs.msg import CameraInfo, Image
from std_srvs.srv import Trigger

from liquid_nav.nodes.common import CLOCK_QOS, COMMAND_QOS, LATCHED_QOS, SENSOR_QOS, stamp_to_ns, twist_stamped
from liquid_nav.nodes.sim_node import SimNode
from liquid_nav.runtime.image_conversion import image_to_rgb
from tests.ros.conftest import call, wait_for

pytestmark = pytest.mark.ros


def test_sim_node_publishes_a_consistent_world_and_resets_with_a_seed(ros):
    overrides = {"camera": "small", "real_time_factor": 0.0, "seed": 4, "image_encoding": "bgr8",
                 "max_episode_seconds": 60.0}
    sim = ros.add(SimNode(context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]))
    lock = threading.Lock()
    seen = {"clock": [], "image": [], "info": [], "odom": [], "episode": [], "diagnostics": []}

    def keep(key):
        def store(message):
            with lock:
                seen[key].append(message)
        return store

    node = ros.node
    node.create_subscription(Clock, "/clock", keep("clock"), CLOCK_QOS)
    node.create_subscription(Image, "camera/image_raw", keep("image"), SENSOR_QOS)
    node.create_subscription(CameraInfo, "camera/camera_info", keep("info"), SENSOR_QOS)
    node.create_subscription(Odometry, "odom", keep("odom"), COMMAND_QOS)
    node.create_subscription(DiagnosticStatus, "liquid_nav/episode", keep("episode"), LATCHED_QOS)
    node.create_subscription(DiagnosticArray, "diagnostics", keep("diagnostics"), COMMAND_QOS)
    commands = node.create_publisher(TwistStamped, "cmd_vel", COMMAND_QOS)
    wait_for(lambda: len(seen["image"]) > 5 and seen["info"] and seen["episode"], 60, "sim output")

    image = seen["image"][-1]
    assert image.encoding == "bgr8" and (image.width, image.height) == (128, 72)
    frame = image_to_rgb(image.height, image.width, image.encoding, image.step, image.data)
    assert frame.std() > 1.0  # a rendered scene, not a blank frame
    info = seen["info"][-1]
    assert info.k[0] > 0 and info.k[2] == pytest.approx(sim.bridge.env.camera.intrinsics()[2])
    clocks = [stamp_to_ns(m.clock) for m in seen["clock"]]
    assert all(b > a for a, b in zip(clocks, clocks[1:]))  # sim time only moves forward
    odom = seen["odom"][-1]
    assert odom.header.frame_id == "odom" and odom.child_frame_id == "base_link"
    assert math.isclose(sum(q * q for q in (odom.pose.pose.orientation.x, odom.pose.pose.orientation.y,
                                            odom.pose.pose.orientation.z, odom.pose.pose.orientation.w)), 1.0,
                        rel_tol=1e-6)
    first = {kv.key: kv.value for kv in seen["episode"][0].values}
    assert first["seed"] == "4" and first["outcome"] == "running"

    bad = twist_stamped([0.0, 0.0, 0.0, 0.0], seen["clock"][-1].clock, "base_link")
    bad.twist.linear.x = float("nan")
    commands.publish(bad)

    def sim_diagnostics():
        for array in reversed(seen["diagnostics"]):
            for status in array.status:
                if status.name == "liquid_nav/sim":
                    return {kv.key: kv.value for kv in status.values}
        return {}

    wait_for(lambda: sim_diagnostics().get("rejected_commands") == "1", 30, "NaN cmd_vel rejected")

    request = SetParameters.Request(parameters=[ParameterMsg(
        name="seed", value=ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=9))])
    assert call(node, SetParameters, "/sim_node/set_parameters", request).results[0].successful
    response = call(node, Trigger, "sim/reset", Trigger.Request())
    assert response.success and "seed 9" in response.message
    wait_for(lambda: {kv.key: kv.value for kv in seen["episode"][-1].values}.get("seed") == "9", 30,
             "episode with seed 9")
    latest = {kv.key: kv.value for kv in seen["episode"][-1].values}
    assert int(latest["episode"]) == int(first["episode"]) + 1
    assert np.isfinite(float(latest["distance"]))


def test_a_waiting_lock_step_frame_repeats_its_clock_for_nodes_that_join_late(ros):
    """/clock is volatile: a safety node started after the first frame must still get a time to arm on."""
    overrides = {"camera": "small", "real_time_factor": 0.0, "lock_step": True, "lock_step_timeout": 60.0}
    ros.add(SimNode(context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in overrides.items()]))
    images, clocks = [], []
    ros.node.create_subscription(Image, "camera/image_raw", images.append, SENSOR_QOS)
    wait_for(lambda: images, 60, "the first frame")
    ros.node.create_subscription(Clock, "/clock", clocks.append, CLOCK_QOS)  # joins after the frame went out
    wait_for(lambda: len(clocks) >= 2, 10, "the waiting frame's clock, repeated")
    first = stamp_to_ns(images[0].header.stamp)
    assert {stamp_to_ns(message.clock) for message in clocks} == {first}  # no command: time stands still
    assert {stamp_to_ns(message.header.stamp) for message in images} == {first}
