"""controller_node: camera images -> policy step -> ``liquid_nav/cmd_raw`` (logic in ``runtime.controller_core``).

Subscribes the camera (QoS from ``image_reliability`` / ``image_depth``, reliable by default), converts
every common encoding (``runtime.image_conversion``), steps the backend with dt from consecutive header
stamps and publishes TwistStamped (stamp = image stamp, frame ``base_link``). Service
``liquid_nav/reset_state`` (Trigger) clears the recurrent state. Bad frames, stamps and outputs are
rejected with a throttled log and counted in ``diagnostics``, whose level and message come from
``runtime.controller_health`` (lost frames, no images, every frame refused).
"""
from __future__ import annotations

import time

from typing import Optional, Tuple

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from sensor_msgs.msg import Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from liquid_nav.nodes.common import (
    COMMAND_QOS, RELIABILITY, ParamSpec, declare_parameters, diagnostic_status, image_qos, run_node, stamp_to_ns,
    steady_timer, twist_stamped,
)
from liquid_nav.runtime.backends import BACKEND_NAMES, make_backend
from liquid_nav.runtime.controller_core import ControllerCore
from liquid_nav.runtime.controller_health import ControllerHealth, HealthConfig, HealthLevel
from liquid_nav.stamps import DtRule
from liquid_nav.runtime.image_conversion import ImageConversionError, ImageSizeLimits, image_to_rgb

try:  # rclpy >= Iron
    from rclpy.event_handler import SubscriptionEventCallbacks
except ImportError:  # Humble
    from rclpy.qos_event import SubscriptionEventCallbacks

PARAMETERS = (
    ParamSpec("model_path", "", "policy checkpoint file (liquid_nav.models.checkpoint format)"),
    ParamSpec("backend", "torch", "inference backend", choices=BACKEND_NAMES),
    ParamSpec("device", "cpu", "torch device or accelerator ('cpu', 'cuda', 'cuda:0')"),
    ParamSpec("image_topic", "camera/image_raw", "camera images (sensor_msgs/Image)"),
    ParamSpec("image_reliability", "reliable",
              "QoS of the image subscription; reliable matches only reliable publishers", choices=tuple(RELIABILITY)),
    ParamSpec("image_depth", 2, "keep-last depth of the image subscription (frames queued while stepping)", 1, 100),
    ParamSpec("image_timeout", 1.0, "no image for this long is an ERROR; health is judged over this window (s)",
              0.05, 60.0),
    ParamSpec("command_topic", "liquid_nav/cmd_raw", "raw network commands (TwistStamped)"),
    ParamSpec("frame_id", "base_link", "frame_id of published commands"),
    ParamSpec("nominal_dt", 1.0 / 30.0,
              "the camera's frame period: dt of a sequence's first frame, and lost frames are counted against it (s)",
              0.001, 10.0),
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
_LEVELS = {HealthLevel.OK: DiagnosticStatus.OK, HealthLevel.WARN: DiagnosticStatus.WARN,
           HealthLevel.ERROR: DiagnosticStatus.ERROR}


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
        self.health = ControllerHealth(HealthConfig(period=params["nominal_dt"], window=params["image_timeout"]),
                                       start_time=time.monotonic())
        self._limits = ImageSizeLimits(params["expected_width"], params["expected_height"])
        self._frame_id = params["frame_id"]
        self._image_reliability = params["image_reliability"]
        self._rejected_images = 0
        self._backend_errors = 0
        self._last_diagnostics = float("-inf")
        self._publisher = self.create_publisher(TwistStamped, params["command_topic"], COMMAND_QOS)
        self._diagnostics = self.create_publisher(DiagnosticArray, "diagnostics", COMMAND_QOS)
        self.create_subscription(
            Image, params["image_topic"], self._on_image, image_qos(params["image_reliability"], params["image_depth"]),
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=self._on_incompatible_qos))
        self.create_service(Trigger, "liquid_nav/reset_state", self._on_reset)
        steady_timer(self, 1.0 / params["diagnostics_rate"], self._publish_diagnostics)
        self.get_logger().info(
            f"{params['backend']} backend on {params['device']} from {params['model_path']}; "
            f"listening on {self.resolve_topic_name(params['image_topic'])} ({params['image_reliability']}, "
            f"depth {params['image_depth']})")

    def _on_image(self, message: Image) -> None:
        stamp_ns = stamp_to_ns(message.header.stamp)
        refused, reason, event = self._step(message, stamp_ns)
        self.health.record(time.monotonic(), stamp_ns, refused, reason)
        if event:
            self._publish_diagnostics_for_event()

    def _step(self, message: Image, stamp_ns: int) -> Tuple[Optional[str], str, bool]:
        """Convert, step and publish one image: (refusal kind or None, reason, diagnostics event)."""
        try:
            frame = image_to_rgb(message.height, message.width, message.encoding, message.step, message.data,
                                 self._limits)
        except ImageConversionError as error:
            self._rejected_images += 1
            self.get_logger().warning(f"rejected image: {error}", throttle_duration_sec=2.0)
            return "image", str(error), True
        counted = dict(self.core.counters.rejected)
        try:
            result = self.core.process(frame, stamp_ns)
        except Exception as error:  # noqa: BLE001 - a backend failure must not kill the node
            self._backend_errors += 1
            self.core.reset(f"backend error: {error}")
            self.get_logger().error(f"backend failed: {type(error).__name__}: {error}", throttle_duration_sec=2.0)
            return "backend_error", f"{type(error).__name__}: {error}", True
        if result.reset_reason is not None:
            self.get_logger().info(f"state reset: {result.reset_reason}", throttle_duration_sec=2.0)
        if result.command is None:
            self.get_logger().warning(f"rejected frame: {result.rejected}", throttle_duration_sec=2.0)
            # the core counts each rejection under its kind (duplicate_stamp, nonfinite_output)
            kind = next(k for k, n in self.core.counters.rejected.items() if n > counted.get(k, 0))
            return kind, result.rejected, True
        self._publisher.publish(twist_stamped(result.command, message.header.stamp, self._frame_id))
        return None, "", result.reset_reason is not None

    def _on_incompatible_qos(self, info) -> None:
        """A camera publisher whose QoS cannot match this subscription: its images never arrive."""
        self.health.incompatible_publisher()
        self.get_logger().error(
            f"a publisher on the image topic has QoS incompatible with image_reliability:={self._image_reliability} "
            f"({info.total_count} so far, policy {info.last_policy_kind}); its images will never arrive. "
            "A best-effort camera needs image_reliability:=best_effort (see docs/deployment.md)")
        self._publish_diagnostics()

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
        report = self.health.evaluate(self._last_diagnostics)
        values = {**self.core.counters.as_dict(), "rejected_images": self._rejected_images,
                  "backend_errors": self._backend_errors, "last_reset_reason": self.core.last_reset_reason or "",
                  **report.values}
        status = diagnostic_status("liquid_nav/controller", _LEVELS[report.level], report.message, values)
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=self.get_clock().now().to_msg()),
                                                  status=[status]))


def main(args=None) -> int:
    return run_node(ControllerNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
