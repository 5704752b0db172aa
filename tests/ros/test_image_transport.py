"""Camera-sized images from another process into controller_node over DDS.

A real camera publishes 640x480 .. 1920x1080 frames; best-effort samples that large fragment and are
dropped on the receive side unless the transport is configured for them (docs/deployment.md). These
tests stream 100 frames per size and encoding at 30 Hz from tests/ros/camera_publisher.py and count
the commands the controller publishes for them.
"""
import threading

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped

from liquid_nav.nodes.common import COMMAND_QOS, stamp_to_ns
from tests.ros.camera_publisher import STREAM_STAMP_SPACING_NS
from tests.ros.conftest import REPO, wait_for

pytestmark = pytest.mark.ros

FRAMES = 100
RATE = 30.0
STREAMS = "640x480:rgb8,640x480:bgr8,1280x720:rgb8,1280x720:bgr8"
PROFILE = REPO / "config" / "fastdds_large_images.xml"


class CommandCounter:
    """cmd_raw stamps and the controller's latest diagnostics, recorded on the harness node."""

    def __init__(self, node):
        self.lock = threading.Lock()
        self.stamps = []
        self.diagnostics = {}
        node.create_subscription(TwistStamped, "liquid_nav/cmd_raw", self._on_command, COMMAND_QOS)
        node.create_subscription(DiagnosticArray, "diagnostics", self._on_diagnostics, COMMAND_QOS)

    def _on_command(self, message):
        with self.lock:
            self.stamps.append(stamp_to_ns(message.header.stamp))

    def _on_diagnostics(self, message):
        for status in message.status:
            if status.name == "liquid_nav/controller":
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def per_stream(self, streams: int) -> list:
        """Distinct frame indices answered per stream (stream k's stamps start at k * 1000 s)."""
        with self.lock:
            stamps = list(self.stamps)
        period = round(1e9 / RATE)
        return [sorted({(s - k * STREAM_STAMP_SPACING_NS) // period for s in stamps
                        if 0 <= s - k * STREAM_STAMP_SPACING_NS < FRAMES * period}) for k in range(1, streams + 1)]


def stream_into_controller(ros, processes, checkpoint, streams, controller_args=(), publisher_args=(), extra_env=None):
    """controller_node (config/sim.yaml) and the camera, each in its own process.

    Returns (frame indices answered per stream, counter)."""
    counter = CommandCounter(ros.node)
    processes.node("controller_node", "--params-file", str(REPO / "config" / "sim.yaml"),
                   "-p", f"model_path:={checkpoint}", "-p", "diagnostics_rate:=5.0", *controller_args,
                   extra_env=extra_env)
    camera = processes.start("camera", [str(REPO / "tests" / "ros" / "camera_publisher.py"), "--rate", str(RATE),
                                        "--streams", streams, "--frames", str(FRAMES), "--warmup", "10",
                                        *publisher_args], extra_env=extra_env)
    count = len(streams.split(","))
    try:
        camera.wait(timeout=120)
        assert camera.returncode == 0
        wait_for(lambda: int(counter.diagnostics.get("images_received", 0)) >= sum(map(len, counter.per_stream(count))),
                 10, "diagnostics after the last frame")
    except Exception:
        print(processes.logs())
        raise
    return counter.per_stream(count), counter


def report(streams, delivered) -> str:
    return ", ".join(f"{name} {len(indices)}/{FRAMES}" for name, indices in zip(streams.split(","), delivered))


def missing_between_first_and_last(delivered) -> int:
    return sum(indices[-1] - indices[0] + 1 - len(indices) for indices in delivered if indices)


def test_camera_sized_frames_reach_the_controller_over_the_shipped_reliable_transport(ros, processes,
                                                                                      small_checkpoint):
    """The shipped QoS (reliable) and transport, with deep queues on both sides: the shipped image_depth of 2
    lets a controller starved of CPU skip to the newest frame (by design), which would count as loss here;
    this test counts what the transport loses, and bench/ros.py measures how fast frames are answered."""
    delivered, counter = stream_into_controller(ros, processes, small_checkpoint, STREAMS,
                                                controller_args=("-p", f"image_depth:={FRAMES}"),
                                                publisher_args=("--depth", str(FRAMES)))
    print(f"image delivery, shipped reliable transport: {report(STREAMS, delivered)}")
    assert all(len(indices) >= 0.99 * FRAMES for indices in delivered), report(STREAMS, delivered)
    # the controller's own loss count agrees with the stamps it answered
    assert int(counter.diagnostics["lost_frames"]) == missing_between_first_and_last(delivered)


def test_the_fastdds_profile_loads_and_carries_best_effort_frames(ros, processes, small_checkpoint):
    """Every process but this one loads config/fastdds_large_images.xml; camera and controller are best effort."""
    streams = "1280x720:rgb8"
    delivered, _ = stream_into_controller(
        ros, processes, small_checkpoint, streams, controller_args=("-p", "image_reliability:=best_effort"),
        publisher_args=("--reliability", "best_effort"), extra_env={"FASTRTPS_DEFAULT_PROFILES_FILE": str(PROFILE)})
    print(f"image delivery, best effort with the Fast DDS profile: {report(streams, delivered)}")
    # Fast DDS reports a profile it cannot read, then goes on without it
    assert not [name for name, log, _ in processes.processes if "XMLPARSER" in log.read_text()]
    assert len(delivered[0]) >= 0.99 * FRAMES, report(streams, delivered)
