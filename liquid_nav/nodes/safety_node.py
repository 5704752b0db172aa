"""safety_node: the gate between the controller and the vehicle (logic in ``runtime.safety.SafetyGate``).

Subscribes ``liquid_nav/cmd_raw`` (TwistStamped stamped with the source image's stamp) and
``liquid_nav/estop`` (std_msgs/Bool, true latches), publishes ``cmd_vel`` (TwistStamped),
``liquid_nav/safety_mode`` (std_msgs/String, latched) and ``diagnostics``; services
``liquid_nav/arm`` (SetBool), ``liquid_nav/estop`` and ``liquid_nav/reset_estop`` (Trigger). When the
input goes stale it calls the controller's ``liquid_nav/reset_state`` (Trigger) without waiting.
All times come from the node clock, so ``use_sim_time`` switches the whole gate to sim time.

E-stop guarantee: every callback that can publish a command (command, watchdog tick) and arming
first take every message waiting in the e-stop topic's DDS reader (``common.take_waiting``), so an
e-stop that has reached the node is applied before the next output decision, whatever order the
executor would run the callbacks in (it runs timers, then subscriptions in creation order).
Callbacks run one at a time (single-threaded executor), so nothing is published between that check
and the output. ``reset_estop`` does not take them: an e-stop still waiting latches after the reset.
"""
from __future__ import annotations

from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from rclpy.node import Node
from std_msgs.msg import Bool, Header, String
from std_srvs.srv import SetBool, Trigger

from liquid_nav.nodes.common import (
    COMMAND_QOS, LATCHED_QOS, ParamSpec, declare_parameters, diagnostic_status, ns_to_stamp, run_node,
    stamp_to_ns, steady_timer, take_waiting, twist_stamped, twist_to_command,
)
from liquid_nav.runtime.safety import LOST_ACTIONS, SafetyConfig, SafetyGate, SafetyMode

_DEFAULTS = SafetyConfig()
PARAMETERS = (
    ParamSpec("input_topic", "liquid_nav/cmd_raw", "controller commands (TwistStamped, stamp = image stamp)"),
    ParamSpec("output_topic", "cmd_vel", "commands to the vehicle; remap to /mavros/setpoint_velocity/cmd_vel"),
    ParamSpec("estop_topic", "liquid_nav/estop", "std_msgs/Bool; true latches the e-stop"),
    ParamSpec("controller_reset_service", "liquid_nav/reset_state",
              "Trigger service called when the input goes stale ('' = none)"),
    ParamSpec("frame_id", "base_link", "frame_id of published commands"),
    ParamSpec("watchdog_rate", 100.0, "watchdog evaluation rate (Hz)", 1.0, 1000.0),
    ParamSpec("max_vx", _DEFAULTS.max_vx, "|forward/backward speed| limit (m/s)", 0.01, 50.0),
    ParamSpec("max_vy", _DEFAULTS.max_vy, "|lateral speed| limit (m/s)", 0.01, 50.0),
    ParamSpec("max_vz", _DEFAULTS.max_vz, "|vertical speed| limit (m/s)", 0.01, 50.0),
    ParamSpec("max_speed", _DEFAULTS.max_speed, "limit on the norm of (vx, vy, vz) (m/s)", 0.01, 50.0),
    ParamSpec("max_yaw_rate", _DEFAULTS.max_yaw_rate, "|yaw rate| limit (rad/s)", 0.01, 20.0),
    ParamSpec("max_accel", _DEFAULTS.max_accel, "per-axis linear acceleration limit (m/s^2)", 0.01, 1000.0),
    ParamSpec("max_yaw_accel", _DEFAULTS.max_yaw_accel, "yaw acceleration limit (rad/s^2)", 0.01, 1000.0),
    ParamSpec("stale_timeout", _DEFAULTS.stale_timeout,
              "image stamp age beyond which the vehicle holds zero velocity (s)", 0.001, 10.0),
    ParamSpec("lost_timeout", _DEFAULTS.lost_timeout,
              "image stamp age beyond which lost_action runs, latched until re-armed (s)", 0.001, 60.0),
    ParamSpec("lost_action", _DEFAULTS.lost_action, "what to do when the input is lost", choices=LOST_ACTIONS),
    ParamSpec("land_speed", _DEFAULTS.land_speed, "descent speed for lost_action 'land' (m/s)", 0.01, 5.0),
    ParamSpec("heartbeat_rate", _DEFAULTS.heartbeat_rate,
              "minimum rate of cmd_vel while armed (PX4 offboard needs >= 2 Hz)", 2.0, 500.0),
    ParamSpec("future_tolerance", _DEFAULTS.future_tolerance,
              "accepted clock skew for stamps in the future (s)", 0.0001, 10.0),
    ParamSpec("diagnostics_rate", 2.0, "diagnostics publishing rate (Hz)", 0.1, 50.0),
)
_CONFIG_FIELDS = [name for name in SafetyConfig.__dataclass_fields__]
_LEVELS = {
    SafetyMode.DISARMED: DiagnosticStatus.OK, SafetyMode.ACTIVE: DiagnosticStatus.OK,
    SafetyMode.HOLD: DiagnosticStatus.WARN, SafetyMode.LOST: DiagnosticStatus.ERROR,
    SafetyMode.ESTOP: DiagnosticStatus.ERROR,
}


class SafetyNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("safety_node", **node_kwargs)
        params = declare_parameters(self, PARAMETERS)
        self.gate = SafetyGate(SafetyConfig(**{name: params[name] for name in _CONFIG_FIELDS}))
        self._frame_id = params["frame_id"]
        self._publisher = self.create_publisher(TwistStamped, params["output_topic"], COMMAND_QOS)
        self._mode_publisher = self.create_publisher(String, "liquid_nav/safety_mode", LATCHED_QOS)
        self._diagnostics = self.create_publisher(DiagnosticArray, "diagnostics", COMMAND_QOS)
        self.create_subscription(TwistStamped, params["input_topic"], self._on_command, COMMAND_QOS)
        self._estop_subscription = self.create_subscription(Bool, params["estop_topic"], self._on_estop_topic,
                                                             COMMAND_QOS)
        self.create_service(SetBool, "liquid_nav/arm", self._on_arm)
        self.create_service(Trigger, "liquid_nav/estop", self._on_estop)
        self.create_service(Trigger, "liquid_nav/reset_estop", self._on_reset_estop)
        service = params["controller_reset_service"]
        self._reset_client = self.create_client(Trigger, service) if service else None
        self._mode: Optional[SafetyMode] = None
        self.create_timer(1.0 / params["watchdog_rate"], self._on_tick)
        steady_timer(self, 1.0 / params["diagnostics_rate"], self._publish_diagnostics)
        self._report_mode()

    def _now(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _take_waiting_estops(self) -> None:
        """Apply e-stop messages already in the DDS reader whose callbacks have not run yet."""
        while (message := take_waiting(self._estop_subscription)) is not None:
            self._on_estop_topic(message)

    def _on_command(self, message: TwistStamped) -> None:
        self._take_waiting_estops()
        now = self._now()
        output = self.gate.on_command(twist_to_command(message), stamp_to_ns(message.header.stamp) * 1e-9, now)
        if output is not None:  # a network command keeps its image stamp, bit for bit
            self._publisher.publish(twist_stamped(output.command, message.header.stamp, self._frame_id))
        elif self.gate.last_rejection:
            self.get_logger().warning(f"rejected command: {self.gate.last_rejection}", throttle_duration_sec=2.0)
            self.gate.last_rejection = ""
        self._report_mode()

    def _on_tick(self) -> None:
        self._take_waiting_estops()
        self._tick()

    def _tick(self) -> None:
        result = self.gate.tick(self._now())
        if result.output is not None:  # hold / lost / heartbeat commands are stamped "now"
            stamp = ns_to_stamp(round(result.output.stamp * 1e9))
            self._publisher.publish(twist_stamped(result.output.command, stamp, self._frame_id))
        if result.reset_controller and self._reset_client is not None:
            if self._reset_client.service_is_ready():
                self._reset_client.call_async(Trigger.Request())
            else:
                self.get_logger().warning("input stale; controller reset service is not available",
                                          throttle_duration_sec=2.0)
        self._report_mode()

    def _report_mode(self) -> None:
        mode = self.gate.mode(self._now())
        if mode is not self._mode:
            if self._mode is not None:
                self.get_logger().info(f"safety mode {self._mode.value} -> {mode.value}")
            self._mode = mode
            self._mode_publisher.publish(String(data=mode.value))
            self._publish_diagnostics()

    def _publish_diagnostics(self) -> None:
        mode = self.gate.mode(self._now())
        status = diagnostic_status("liquid_nav/safety", _LEVELS[mode], mode.value,
                                   {"mode": mode.value, **self.gate.counters.as_dict()})
        header = Header(stamp=self.get_clock().now().to_msg())
        self._diagnostics.publish(DiagnosticArray(header=header, status=[status]))

    def _on_estop_topic(self, message: Bool) -> None:
        if message.data:
            self.gate.estop()
            self.get_logger().error("e-stop latched (topic)")
            self._tick()  # the zero command goes out now, not at the next watchdog tick

    def _on_arm(self, request: SetBool.Request, response: SetBool.Response) -> SetBool.Response:
        self._take_waiting_estops()  # arming is refused while an e-stop is latched, even one not yet handled
        if request.data and self.get_clock().now().nanoseconds == 0:
            response.success = False
            response.message = "refused: no time yet (use_sim_time is set and no /clock received)"
        else:
            response.success, response.message = self.gate.arm(self._now()) if request.data else self.gate.disarm()
        self.get_logger().info(f"arm({request.data}): {response.message}")
        self._tick()  # armed: the first output goes out now, not at the next watchdog tick (sim time may stand still)
        return response

    def _on_estop(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.gate.estop()
        self.get_logger().error("e-stop latched (service)")
        self._tick()  # the zero command goes out now, not at the next watchdog tick
        return response

    def _on_reset_estop(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        response.success, response.message = self.gate.reset_estop()
        self.get_logger().info(f"reset_estop: {response.message}")
        self._report_mode()
        return response


def main(args=None) -> int:
    return run_node(SafetyNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
