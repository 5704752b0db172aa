"""The process graph of the launch files, started as separate processes with the same params files.

- sim_node (expert as pilot) + safety_node on sim time: the drone flies to the target over DDS.
- sim_node + controller_node (untrained checkpoint) + safety_node: the image -> command path end to end.
- camera driver + controller_node + safety_node on wall time: kill the camera, the vehicle is told to
  hold zero velocity within 150 ms and the controller's state is reset; later the lost action (land).
"""
import signal
import threading

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Image
from std_msgs.msg import String
from std_srvs.srv import SetBool

from liquid_nav.nodes.common import COMMAND_QOS, LATCHED_QOS, SENSOR_QOS, stamp_to_ns, twist_to_command
from liquid_nav.runtime.safety import load_safety_config
from tests.ros.conftest import REPO, call, wait_for

pytestmark = pytest.mark.ros

SIM_PARAMS = str(REPO / "config" / "sim.yaml")


class Recorder:
    """Collects messages of several topics on the harness node."""

    def __init__(self, node):
        self.node = node
        self.lock = threading.Lock()
        self.messages = {}
        self.received_ns = {}  # harness-clock receive time of each message, per topic

    def listen(self, message_type, topic, qos):
        self.messages[topic] = []
        self.received_ns[topic] = []

        def keep(message):
            now = self.node.get_clock().now().nanoseconds
            with self.lock:
                self.messages[topic].append(message)
                self.received_ns[topic].append(now)

        self.node.create_subscription(message_type, topic, keep, qos)

    def get(self, topic):
        with self.lock:
            return list(self.messages[topic])

    def diagnostics(self, name):
        """Latest key/values of the status ``name`` on ``diagnostics``."""
        for array in reversed(self.get("diagnostics")):
            for status in array.status:
                if status.name == name:
                    return {kv.key: kv.value for kv in status.values}
        return {}


def write_overrides(tmp_path, text):
    path = tmp_path / "overrides.yaml"
    path.write_text(text)
    return str(path)


def arm(ros, recorder):
    """Arm once the safety node is up; on sim time it refuses until its first /clock has arrived."""
    wait_for(lambda: recorder.get("liquid_nav/safety_mode"), 60, "safety node up")
    replies = []
    wait_for(lambda: replies.append(call(ros.node, SetBool, "liquid_nav/arm", SetBool.Request(data=True), timeout=60))
             or replies[-1].success, 30, "arming accepted")
    assert all("no time yet" in reply.message for reply in replies[:-1]), [reply.message for reply in replies]


@pytest.mark.slow
def test_expert_pilot_flies_to_the_target_through_the_safety_layer(ros, processes, tmp_path):
    overrides = write_overrides(tmp_path, "/**/sim_node:\n  ros__parameters:\n    auto_reset: false\n")
    processes.node("sim_node", "--params-file", SIM_PARAMS, "--params-file", overrides,
                   "-p", "seed:=3", "-p", "expert_command_topic:=liquid_nav/cmd_raw")
    processes.node("safety_node", "--params-file", SIM_PARAMS, "-p", "use_sim_time:=true")
    recorder = Recorder(ros.node)
    recorder.listen(Odometry, "odom", COMMAND_QOS)
    recorder.listen(TwistStamped, "cmd_vel", COMMAND_QOS)
    recorder.listen(DiagnosticStatus, "liquid_nav/episode", LATCHED_QOS)
    recorder.listen(String, "liquid_nav/safety_mode", LATCHED_QOS)
    try:
        wait_for(lambda: recorder.get("liquid_nav/episode") and recorder.get("odom"), 60, "sim running")
        episode = {kv.key: kv.value for kv in recorder.get("liquid_nav/episode")[-1].values}
        target = np.array([float(episode["target_x"]), float(episode["target_y"])])

        def distance():
            position = recorder.get("odom")[-1].pose.pose.position
            return float(np.hypot(position.x - target[0], position.y - target[1]))

        start = distance()
        assert recorder.get("cmd_vel") == []  # disarmed: the expert's commands do not pass
        arm(ros, recorder)
        wait_for(lambda: distance() < start - 3.0 or recorder.get("liquid_nav/episode")[-1].message != "running",
                 90, "the drone to approach the target")
        final = {kv.key: kv.value for kv in recorder.get("liquid_nav/episode")[-1].values}
        assert final["outcome"] in ("running", "success"), final
        assert distance() < start - 3.0 or final["outcome"] == "success"
        commands = np.array([twist_to_command(m) for m in recorder.get("cmd_vel")])
        assert len(commands) > 30 and np.max(commands[:, 0]) > 0.3  # forward flight commanded via cmd_vel
        limits = load_safety_config(SIM_PARAMS)
        assert np.all(np.abs(commands[:, 0]) <= limits.max_vx + 1e-6)  # within the safety limits of config/sim.yaml
    except AssertionError:
        print(processes.logs())
        raise


@pytest.mark.slow
def test_sim_controller_safety_graph_carries_image_stamps_to_cmd_vel(ros, processes, small_checkpoint):
    processes.node("sim_node", "--params-file", SIM_PARAMS, "-p", "seed:=1")
    processes.node("controller_node", "--params-file", SIM_PARAMS, "-p", f"model_path:={small_checkpoint}",
                   "-p", "use_sim_time:=true")
    processes.node("safety_node", "--params-file", SIM_PARAMS, "-p", "use_sim_time:=true")
    recorder = Recorder(ros.node)
    recorder.listen(Image, "camera/image_raw", SENSOR_QOS)
    recorder.listen(TwistStamped, "liquid_nav/cmd_raw", COMMAND_QOS)
    recorder.listen(TwistStamped, "cmd_vel", COMMAND_QOS)
    recorder.listen(DiagnosticArray, "diagnostics", COMMAND_QOS)
    recorder.listen(String, "liquid_nav/safety_mode", LATCHED_QOS)
    try:
        wait_for(lambda: len(recorder.get("liquid_nav/cmd_raw")) > 10, 90, "controller commands from sim images")
        arm(ros, recorder)
        wait_for(lambda: len(recorder.get("cmd_vel")) > 30, 60, "cmd_vel after arming")
        wait_for(lambda: int(recorder.diagnostics("liquid_nav/sim").get("commands_received", 0)) > 10, 30,
                 "the sim to receive cmd_vel")

        def raw_since_first_image():  # best-effort images before the recorder matched were not seen
            images = recorder.get("camera/image_raw")
            first_seen = stamp_to_ns(images[0].header.stamp) if images else None
            return [m for m in recorder.get("liquid_nav/cmd_raw")
                    if first_seen is not None and stamp_to_ns(m.header.stamp) >= first_seen]

        wait_for(lambda: len(raw_since_first_image()) > 10, 30, "commands for frames the recorder saw")
        image_stamps = {stamp_to_ns(m.header.stamp) for m in recorder.get("camera/image_raw")}
        raw = raw_since_first_image()
        matched = sum(stamp_to_ns(m.header.stamp) in image_stamps for m in raw)
        assert matched >= 0.8 * len(raw)  # the recorder itself may miss a best-effort image
        assert all(m.header.frame_id == "base_link" for m in raw)
        def passed_with_image_stamps():  # network commands keep their image stamp (of images the recorder saw)
            seen = {stamp_to_ns(m.header.stamp) for m in recorder.get("camera/image_raw")}
            return sum(stamp_to_ns(m.header.stamp) in seen for m in recorder.get("cmd_vel"))

        wait_for(lambda: passed_with_image_stamps() > 10, 30, "network commands with their image stamps on cmd_vel")
        assert recorder.get("liquid_nav/safety_mode")[-1].data == "active"
    except AssertionError:
        print(processes.logs())
        raise


@pytest.mark.slow
def test_killing_the_camera_holds_zero_velocity_within_150_ms_and_resets_the_controller(
        ros, processes, small_checkpoint):
    camera = processes.start("camera", [str(REPO / "tests" / "ros" / "camera_publisher.py"), "--rate", "30"])
    processes.node("controller_node", "--params-file", SIM_PARAMS, "-p", f"model_path:={small_checkpoint}",
                   "-p", "diagnostics_rate:=20.0")
    processes.node("safety_node", "--params-file", SIM_PARAMS)
    recorder = Recorder(ros.node)
    recorder.listen(TwistStamped, "liquid_nav/cmd_raw", COMMAND_QOS)
    recorder.listen(TwistStamped, "cmd_vel", COMMAND_QOS)
    recorder.listen(DiagnosticArray, "diagnostics", COMMAND_QOS)
    recorder.listen(String, "liquid_nav/safety_mode", LATCHED_QOS)
    try:
        wait_for(lambda: int(recorder.diagnostics("liquid_nav/controller").get("commands", 0)) > 10, 90,
                 "controller running")
        arm(ros, recorder)
        wait_for(lambda: recorder.get("liquid_nav/safety_mode")[-1].data == "active", 30, "active")
        wait_for(lambda: len(recorder.get("cmd_vel")) > 20, 30, "commands flowing")
        resets_before = int(recorder.diagnostics("liquid_nav/controller")["resets"])
        camera.send_signal(signal.SIGKILL)
        camera.wait()
        wait_for(lambda: recorder.get("liquid_nav/safety_mode")[-1].data == "lost", 30, "lost mode")
        wait_for(lambda: int(recorder.diagnostics("liquid_nav/controller").get("resets", 0)) > resets_before, 30,
                 "controller state reset")
        wait_for(lambda: twist_to_command(recorder.get("cmd_vel")[-1])[2] < 0, 30, "land commands")
        # the newest frame that reached the controller (its stamp travels on cmd_raw)
        last_image = max(stamp_to_ns(m.header.stamp) for m in recorder.get("liquid_nav/cmd_raw")) * 1e-9
        with recorder.lock:
            outputs = list(zip(recorder.messages["cmd_vel"], recorder.received_ns["cmd_vel"]))
        after = [(stamp_to_ns(m.header.stamp) * 1e-9 - last_image, twist_to_command(m), received * 1e-9 - last_image)
                 for m, received in outputs if stamp_to_ns(m.header.stamp) * 1e-9 > last_image]
        first_zero = next(i for i, (_, command, _) in enumerate(after) if np.all(command == 0))
        stamped, _, received = after[first_zero]
        # zero velocity commanded (safety clock) and seen on cmd_vel (this process) within 150 ms of the last frame
        assert stamped <= 0.150 and received <= 0.150, f"zero command at {stamped * 1e3:.1f} ms, seen at {received * 1e3:.1f} ms"
        print(f"watchdog: zero velocity stamped {stamped * 1e3:.1f} ms, received {received * 1e3:.1f} ms after the last frame")
        after = [(age, command) for age, command, _ in after]
        hold = [(age, command) for age, command in after[first_zero:] if age <= 1.0]
        assert len(hold) >= 10 and all(np.all(command == 0) for _, command in hold)  # 20 Hz heartbeat of hover
        lost = [command for age, command in after if age > 1.0]
        assert lost and all(np.allclose(command, [0, 0, -0.3, 0]) for command in lost)  # lost_action: land
        assert "safety" in recorder.diagnostics("liquid_nav/controller")["last_reset_reason"] \
            or "reset_state" in recorder.diagnostics("liquid_nav/controller")["last_reset_reason"]
    except (AssertionError, StopIteration):
        print(processes.logs())
        raise
