"""controller_node: camera images -> policy step -> ``liquid_nav/cmd_raw`` (logic in ``runtime.controller_core``).

Subscribes the camera with sensor-data QoS, converts every common encoding (``runtime.image_conversion``),
steps the backend with dt from consecutive header stamps and publishes TwistStamped (stamp = image
stamp, frame ``base_link``). Service ``liquid_nav/reset_state`` (Trigger) clears the recurrent state.
Bad frames, stamps and outputs are rejected with a throttled log and counted in ``diagnostics``.
"""
from __future__ import annotations

import time

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from liquid_nav.nodes.common import (
    COMMAND_QOS, SENSOR_QOS, ParamSpec, declare_parameters, diagnostic_status, run_node, stamp_to_ns, twist_stamped,
)
from liquid_nav.runtime.backends import BACKEND_NAMES, make_backend
from liquid_nav.runtime.controller_core import ControllerCore
from liquid_nav.stamps import DtRule
from liquid_nav.runtime.image_conversion import ImageConversionError, ImageSizeLimits, image_to_rgb

PARAMETERS = (
    ParamSpec("model_path", "", "policy checkpoint file (liquid_nav.models.checkpoint format)"),
    ParamSpec("backend", "torch", "inference backend", choices=BACKEND_NAMES),
    ParamSpec("device", "cpu", "torch device or accelerator ('cpu', 'cuda', 'cuda:0')"),
    ParamSpec("image_topic", "camera/image_raw", "camera images (sensor_msgs/Image, sensor-data QoS)"),
    ParamSpec("command_topic", "liquid_nav/cmd_raw", "raw network commands (TwistStamped)"),
    ParamSpec("frame_id", "base_link", "frame_id of published commands"),
    ParamSpec("nominal_dt", 1.0 / 30.0, "dt for the first frame of a sequence (s)", 0.001, 10.0),
    ParamSpec("max_dt", 0.5, "stamp gap beyond which the state is reset (or dt clipped) (s)", 0.001, 60.0),
    ParamSpec("reset_on_gap", True, "reset the recurrent state on gaps > max_dt (else clip dt to max_dt)"),
    ParamSpec("expected_width", 0, "reject images of another width (0 = any; frames are resized)", 0, 16384),
    ParamSpec("expected_height", 0, "reject images of another height (0 = any; frames are resized)", 0, 16384),
    ParamSpec("cpu_threads", 0, "CPU threads of the torch / onnxruntime backend (0 = library default; 1 leaves cores to the camera)", 0, 256),
    ParamSpec("diagnostics_rate", 1.0, "diagnostics publishing rate (Hz)", 0.1, 50.0),
)


# Rejections and resets publish diagnostics at once, but no more often than this (a model that outputs
# NaN on every frame must not flood /diagnostics at the camera rate); the timer publishes the rest.
EVENT_DIAGNOSTICS_MIN_PERIOD = 0.25  # s, steady clock


class ControllerNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("controller_node", **node_kwargs)
        params = declare_parameters(self, PARAMETERS)
        if not params["model_path"]:
            raise ValueError("parameter 'model_path' is empty; set it to a policy checkpoint file")
        backend = make_backend(params["backend"], params["model_path"], params["device"],
                               threads=params["cpu_threads"])
        self.core = ControllerCore(backend, DtRule(
            nominal_dt=params["nominal_dt"], max_dt=params["max_dt"], reset_on_gap=params["reset_on_gap"]))
        self._limits = ImageSizeLimits(params["expected_width"], params["expected_height"])
        self._frame_id = params["frame_id"]
        self._rejected_images = 0
        self._backend_errors = 0
        self._last_diagnostics = float("-inf")
        self._publisher = self.create_publisher(TwistStamped, params["command_topic"], COMMAND_QOS)
        self._diagnostics = self.create_publisher(DiagnosticArray, "diagnostics", COMMAND_QOS)
        self.create_subscription(Image, params["image_topic"], self._on_image, SENSOR_QOS)
        self.create_service(Trigger, "liquid_nav/reset_state", self._on_reset)
        self.create_timer(1.0 / params["diagnostics_rate"], self._publish_diagnostics)
        self.get_logger().info(
            f"{params['backend']} backend on {params['device']} from {params['model_path']}; "
            f"listening on {self.resolve_topic_name(params['image_topic'])}")

    def _on_image(self, message: Image) -> None:
        try:
            frame = image_to_rgb(message.height, message.width, message.encoding, message.step, message.data,
                                 self._limits)
        except ImageConversionError as error:
            self._rejected_images += 1
            self.get_logger().warning(f"rejected image: {error}", throttle_duration_sec=2.0)
            return
        try:
            result = self.core.process(frame, stamp_to_ns(message.header.stamp))
        except Exception as error:  # noqa: BLE001 - a backend failure must not kill the node
            self._backend_errors += 1
            self.core.reset(f"backend error: {error}")
            self.get_logger().error(f"backend failed: {type(error).__name__}: {error}", throttle_duration_sec=2.0)
            self._publish_diagnostics_for_event()
            return
        if result.reset_reason is not None:
            self.get_logger().info(f"state reset: {result.reset_reason}", throttle_duration_sec=2.0)
        if result.command is None:
            self.get_logger().warning(f"rejected frame: {result.rejected}", throttle_duration_sec=2.0)
            self._publish_diagnostics_for_event()
            return
        self._publisher.publish(twist_stamped(result.command, message.header.stamp, self._frame_id))
        if result.reset_reason is not None:
            self._publish_diagnostics_for_event()

    def _on_reset(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        self.core.reset("reset_state service")
        self.get_logger().info("state reset: reset_state service")
        self._publish_diagnostics()
        response.success, response.message = True, "recurrent state reset"
        return response

    def _publish_diagnostics_for_event(self) -> None:
        if time.monotonic() - self._last_diagnostics >= EVENT_DIAGNOSTICS_MIN_PERIOD:
            self._publish_diagnostics()

    def _publish_diagnostics(self) -> None:
        self._last_diagnostics = time.monotonic()
        values = {**self.core.counters.as_dict(), "rejected_images": self._rejected_images,
                  "backend_errors": self._backend_errors, "last_reset_reason": self.core.last_reset_reason or ""}
        level = DiagnosticStatus.OK if not self._backend_errors else DiagnosticStatus.WARN
        status = diagnostic_status("liquid_nav/controller", level, "running", values)
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                  status=[status]))


def main(args=None) -> int:
    return run_node(ControllerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
