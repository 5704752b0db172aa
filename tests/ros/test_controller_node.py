"""controller_node over real DDS with a real (untrained) policy: encodings, bad inputs, stamps, NaN outputs."""
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from rclpy.parameter import Parameter
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from liquid_nav.nodes.common import COMMAND_QOS, IMAGE_QOS, SENSOR_QOS, ns_to_stamp, stamp_to_ns, twist_to_command
from liquid_nav.nodes.controller_node import ControllerNode
from tests.ros.conftest import call, wait_for

pytestmark = pytest.mark.ros

RNG = np.random.default_rng(0)
RGB = RNG.integers(0, 256, size=(72, 128, 3), dtype=np.uint8)
T0 = 1_000 * 1_000_000_000
PERIOD = 33_333_333


def image_message(stamp_ns, encoding="rgb8", rgb=RGB, padding=0, **overrides):
    channels = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}.get(encoding, 3)
    if channels == 1:
        pixels = rgb[:, :, :1]
    elif encoding.startswith("bgr"):
        pixels = rgb[:, :, ::-1]
    else:
        pixels = rgb
    if channels == 4:
        pixels = np.concatenate([pixels, np.zeros(rgb.shape[:2] + (1,), np.uint8)], axis=2)
    height, width = rgb.shape[:2]
    rows = np.concatenate([pixels.reshape(height, -1), np.zeros((height, padding), np.uint8)], axis=1)
    message = Image(height=height, width=width, encoding=encoding, step=width * channels + padding,
                    data=rows.tobytes())
    message.header.stamp = ns_to_stamp(stamp_ns)
    message.header.frame_id = "camera"
    for key, value in overrides.items():
        setattr(message, key, value)
    return message


class ControllerRig:
    def __init__(self, ros, checkpoint, **overrides):
        params = {"model_path": str(checkpoint), "diagnostics_rate": 20.0, "max_dt": 0.5, **overrides}
        self.ros = ros
        ros.add(ControllerNode(context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in params.items()]))
        self.lock = threading.Lock()
        self.commands = []
        self.diagnostics = {}
        node = ros.node
        self.camera = node.create_publisher(Image, "camera/image_raw", IMAGE_QOS)
        node.create_subscription(TwistStamped, "liquid_nav/cmd_raw", self._on_command, COMMAND_QOS)
        node.create_subscription(DiagnosticArray, "diagnostics", self._on_diagnostics, COMMAND_QOS)
        wait_for(lambda: self.camera.get_subscription_count() > 0 and self.diagnostics, 30, "controller discovery")
        self.stamp = T0
        self.floor = 0
        # Images sent before the reader has matched the camera are dropped: warm up until one is answered.
        wait_for(lambda: self.send() is None and self.commands, 30, "first command")
        self.reset("warm-up done")

    def _on_command(self, message):
        with self.lock:
            if stamp_to_ns(message.header.stamp) > self.floor:  # ignore answers to frames sent before reset()
                self.commands.append(message)

    def _on_diagnostics(self, message):
        for status in message.status:
            if status.name == "liquid_nav/controller":
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def counter(self, key):
        return int(self.diagnostics.get(key, 0))

    def send(self, message=None, advance=True):
        if advance:
            self.stamp += PERIOD
        self.camera.publish(message or image_message(self.stamp))

    def reset(self, _why):
        resets = self.counter("resets")
        assert call(self.ros.node, Trigger, "liquid_nav/reset_state", Trigger.Request()).success
        wait_for(lambda: self.counter("resets") > resets, 10, "reset counted")
        with self.lock:
            self.commands = []
            self.floor = self.stamp

    def expect_commands(self, count):
        wait_for(lambda: len(self.commands) >= count, 20, f"{count} commands")
        with self.lock:
            return list(self.commands)


def test_every_encoding_and_padding_gives_a_command_stamped_with_the_image(ros, small_checkpoint):
    rig = ControllerRig(ros, small_checkpoint)
    sent = []
    for encoding in ("rgb8", "bgr8", "rgba8", "bgra8", "mono8"):
        for padding in (0, 7):
            rig.stamp += PERIOD
            sent.append(rig.stamp)
            rig.send(image_message(rig.stamp, encoding, padding=padding), advance=False)
            wait_for(lambda: len(rig.commands) == len(sent), 20, f"command for {encoding} padding {padding}")
    commands = rig.expect_commands(len(sent))
    assert [stamp_to_ns(c.header.stamp) for c in commands] == sent
    assert all(c.header.frame_id == "base_link" for c in commands)
    assert all(np.all(np.isfinite(twist_to_command(c))) for c in commands)
    # bgr8 and rgb8 of the same picture are the same RGB frame; a fresh state gives the same command
    rig.reset("compare")
    rig.send(image_message(rig.stamp + PERIOD, "rgb8"), advance=False)
    first = rig.expect_commands(1)[0]
    rig.stamp += PERIOD
    rig.reset("compare")
    rig.send(image_message(rig.stamp + PERIOD, "bgr8"), advance=False)
    second = rig.expect_commands(1)[0]
    np.testing.assert_allclose(twist_to_command(first), twist_to_command(second), atol=1e-6)


def test_bad_images_are_rejected_and_the_node_keeps_working(ros, small_checkpoint):
    rig = ControllerRig(ros, small_checkpoint, expected_width=128, expected_height=72)
    stamp = rig.stamp
    bad = [
        image_message(stamp + 1 * PERIOD, encoding="rgb16"),
        image_message(stamp + 2 * PERIOD, encoding="yuv422"),
        image_message(stamp + 3 * PERIOD, step=100),
        image_message(stamp + 4 * PERIOD, data=b"\x00" * 17),
        image_message(stamp + 5 * PERIOD, rgb=RGB[:, :64].copy()),
        image_message(stamp + 6 * PERIOD, height=0, width=0, step=0, data=b""),
    ]
    for count, message in enumerate(bad, start=1):
        rig.send(message, advance=False)
        wait_for(lambda: rig.counter("rejected_images") == count, 20, f"bad image {count} rejected")
    assert rig.commands == []
    rig.stamp = stamp + 7 * PERIOD
    rig.send(advance=False)
    assert len(rig.expect_commands(1)) == 1


def test_stamps_drive_dt_duplicates_dropped_backward_and_gap_reset(ros, small_checkpoint):
    rig = ControllerRig(ros, small_checkpoint)
    for count in range(1, 4):  # one at a time, as a camera sends them (image_depth 2 keeps only the newest two)
        rig.send()
        rig.expect_commands(count)
    resets = rig.counter("resets")
    rig.send(advance=False)  # duplicate stamp
    wait_for(lambda: rig.counter("rejected_duplicate_stamp") == 1, 20, "duplicate rejected")
    rig.floor = 0
    rig.stamp -= 10 * PERIOD  # stamps jump back (bag loop / sim restart)
    rig.send(advance=False)
    rig.expect_commands(4)
    rig.stamp += 2_000_000_000  # a 2 s gap
    rig.send(advance=False)
    commands = rig.expect_commands(5)
    assert len(commands) == 5
    wait_for(lambda: rig.counter("resets") == resets + 2, 20, "backward and gap resets")
    assert "gap" in rig.diagnostics["last_reset_reason"]


def test_nan_outputs_are_never_published(ros, nan_checkpoint):
    rig_node = ControllerNode(context=ros.context, parameter_overrides=[
        Parameter("model_path", value=str(nan_checkpoint)), Parameter("diagnostics_rate", value=20.0)])
    ros.add(rig_node)
    received = []
    diagnostics = {}

    def on_diagnostics(message):
        for status in message.status:
            if status.name == "liquid_nav/controller":
                diagnostics.update({kv.key: kv.value for kv in status.values})

    ros.node.create_subscription(TwistStamped, "liquid_nav/cmd_raw", received.append, COMMAND_QOS)
    ros.node.create_subscription(DiagnosticArray, "diagnostics", on_diagnostics, COMMAND_QOS)
    camera = ros.node.create_publisher(Image, "camera/image_raw", IMAGE_QOS)
    stamp = [T0]

    def send_and_count():
        stamp[0] += PERIOD
        camera.publish(image_message(stamp[0]))
        return int(diagnostics.get("rejected_nonfinite_output", 0)) >= 5

    wait_for(send_and_count, 60, "five non-finite outputs rejected")
    assert received == []
    assert int(diagnostics["commands"]) == 0 and int(diagnostics["resets"]) >= 5


def test_a_model_that_always_fails_does_not_flood_diagnostics(ros, nan_checkpoint):
    ros.add(ControllerNode(context=ros.context, parameter_overrides=[
        Parameter("model_path", value=str(nan_checkpoint)), Parameter("diagnostics_rate", value=1.0)]))
    messages = []
    ros.node.create_subscription(DiagnosticArray, "diagnostics", messages.append, COMMAND_QOS)
    camera = ros.node.create_publisher(Image, "camera/image_raw", IMAGE_QOS)
    wait_for(lambda: camera.get_subscription_count() > 0, 30, "controller discovery")
    frames, burst_seconds = 60, 0.6
    stamp = T0
    time.sleep(0.5)
    messages.clear()
    start = time.monotonic()
    for _ in range(frames):  # every frame gives a non-finite output, i.e. one rejection event
        stamp += PERIOD
        camera.publish(image_message(stamp))
        time.sleep(burst_seconds / frames)
    during = len(messages) if time.monotonic() - start < burst_seconds + 0.2 else None
    wait_for(lambda: any(int(kv.value) >= frames // 2 for m in messages for s in m.status for kv in s.values
                         if kv.key == "rejected_nonfinite_output"), 10, "rejections reported")
    assert during is not None, "the burst took too long to be meaningful"
    # at most one event publish per 0.25 s plus the 1 Hz timer: far fewer than one per frame
    assert during <= burst_seconds / 0.25 + 3, during


class StatusWatch:
    """The controller's latest DiagnosticStatus, seen on the harness node."""

    def __init__(self, node):
        self.status = None
        node.create_subscription(DiagnosticArray, "diagnostics", self._on_diagnostics, COMMAND_QOS)

    def _on_diagnostics(self, message):
        for status in message.status:
            if status.name == "liquid_nav/controller":
                self.status = status

    def values(self):
        return {kv.key: kv.value for kv in self.status.values}

    def wait(self, level, text, timeout=20.0, camera=None, make_message=image_message):
        """Until the controller reports ``level`` with ``text``; with ``camera``, frames at ~30 Hz meanwhile."""
        stamp = [T0 + 1_000 * PERIOD]

        def reached():
            if camera is not None:
                stamp[0] += PERIOD
                camera.publish(make_message(stamp[0]))
                time.sleep(1 / 30)
            status = self.status
            return status is not None and status.level == level and text in status.message

        try:
            wait_for(reached, timeout, f"level {level!r} with {text!r}")
        except AssertionError as error:
            raise AssertionError(f"{error}; last status: {self.status}") from None


def test_a_model_whose_every_output_is_nan_reports_an_error_with_the_reason(ros, nan_checkpoint):
    ros.add(ControllerNode(context=ros.context, parameter_overrides=[
        Parameter("model_path", value=str(nan_checkpoint)), Parameter("diagnostics_rate", value=20.0),
        Parameter("image_timeout", value=0.5)]))
    watch = StatusWatch(ros.node)
    camera = ros.node.create_publisher(Image, "camera/image_raw", IMAGE_QOS)
    watch.wait(DiagnosticStatus.ERROR, "nonfinite_output", camera=camera)
    assert watch.status.message.startswith("all ") and "not 4 finite numbers" in watch.status.message
    assert int(watch.values()["rejected_nonfinite_output"]) >= int(watch.values()["window_refused"]) > 0


@pytest.mark.parametrize("bad_image, reason", [
    (lambda stamp: image_message(stamp, encoding="yuv422"), "yuv422"),
    (lambda stamp: image_message(stamp, rgb=RGB[:, :64].copy()), "width"),
], ids=["encoding", "size"])
def test_refused_frames_are_an_error_and_good_frames_bring_ok_back(ros, small_checkpoint, bad_image, reason):
    rig = ControllerRig(ros, small_checkpoint, expected_width=128, expected_height=72, image_timeout=0.5)
    watch = StatusWatch(ros.node)
    watch.wait(DiagnosticStatus.ERROR, reason, camera=rig.camera, make_message=bad_image)
    assert "refused (image " in watch.status.message
    watch.wait(DiagnosticStatus.OK, "running", camera=rig.camera,
               make_message=lambda stamp: image_message(stamp + 10_000 * PERIOD))
    assert int(watch.values()["window_refused"]) == 0 and int(watch.values()["rejected_images"]) > 0


def test_no_images_is_an_error_that_names_an_incompatible_camera(ros, small_checkpoint):
    ros.add(ControllerNode(context=ros.context, parameter_overrides=[
        Parameter("model_path", value=str(small_checkpoint)), Parameter("diagnostics_rate", value=20.0),
        Parameter("image_timeout", value=0.3)]))
    watch = StatusWatch(ros.node)
    best_effort_camera = ros.node.create_publisher(Image, "camera/image_raw", SENSOR_QOS)  # cannot match: reliable
    watch.wait(DiagnosticStatus.ERROR, "incompatible QoS")
    assert "no image received" in watch.status.message and int(watch.values()["incompatible_publishers"]) >= 1
    for _ in range(10):  # its frames never arrive
        best_effort_camera.publish(image_message(T0))
    assert watch.values()["images_received"] == "0"
    camera = ros.node.create_publisher(Image, "camera/image_raw", IMAGE_QOS)
    watch.wait(DiagnosticStatus.OK, "running", camera=camera)
    watch.wait(DiagnosticStatus.ERROR, "no image for")
