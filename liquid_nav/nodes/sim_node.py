"""sim_node: a PyBullet world as a ROS 2 node (logic in ``sim.bridge.SimBridge``).

Publishes ``camera/image_raw`` + ``camera/camera_info`` (reliable, keep last 5: serves reliable and best-effort
subscribers), ``odom`` (ground truth),
``/clock`` (sim time, so the rest of the graph runs with ``use_sim_time``), ``liquid_nav/episode``
(DiagnosticStatus, latched: episode, seed, outcome ...) and ``diagnostics``; subscribes ``cmd_vel``
(TwistStamped, body FLU). Service ``sim/reset`` (Trigger) starts a new episode with the current value
of the ``seed`` parameter (``ros2 param set /sim_node seed 7`` first). With ``expert_command_topic``
set, the privileged expert's command for each frame is published there, stamped with the frame's
stamp, standing in for the controller (``liquid_nav/cmd_raw``).
Steps are paced by a steady (wall) timer at ``real_time_factor`` x real time, or as fast as possible.
With ``lock_step``, each frame waits (up to ``lock_step_timeout`` wall seconds) for the cmd_vel stamped with
its stamp before the simulation advances: the closed loop then gives the same flight on a loaded machine as
``liquid-nav evaluate`` in one process (at ``real_time_factor`` 0 it advances as soon as the command arrives).
A waiting frame and ``/clock`` are published again every 0.25 s, for a controller or a safety node that
subscribed after they went out (the controller drops a frame whose stamp it has seen).
"""
from __future__ import annotations

from typing import Optional

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from geometry_msgs.msg import TwistStamped
from nav_msgs.msg import Odometry
from rclpy.clock import Clock, ClockType
from rclpy.node import Node
from rosgraph_msgs.msg import Clock as ClockMsg
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from liquid_nav.nodes.common import (
    CLOCK_QOS, COMMAND_QOS, IMAGE_QOS, LATCHED_QOS, ParamSpec, declare_parameters, diagnostic_status, ns_to_stamp,
    run_node, stamp_to_ns, steady_timer, twist_stamped, twist_to_command,
)
from liquid_nav.expert import PrivilegedExpert
from liquid_nav.runtime.image_conversion import rgb_to_image_fields
from liquid_nav.sim.bridge import SimBridge, SimBridgeConfig, SimFrame
from liquid_nav.sim.env import EnvConfig

LOCK_STEP_REPUBLISH_NS = 250_000_000  # a lock-step frame still waiting is published again this often

PARAMETERS = (
    ParamSpec("world", "forest", "world name in sim_worlds/ or path to a world YAML file"),
    ParamSpec("camera", "default", "camera preset: default (256x144) or small (128x72)", choices=("default", "small")),
    ParamSpec("vehicle", "x500", "vehicle preset or YAML path"),
    ParamSpec("control_hz", 30.0, "camera and control rate (Hz)", 1.0, 240.0),
    ParamSpec("max_episode_seconds", 30.0, "episode timeout in sim seconds", 0.1, 3600.0),
    ParamSpec("seed", 0, "seed of the first episode and of the next sim/reset", 0, 2**31 - 1, read_only=False),
    ParamSpec("auto_reset", True, "start the next episode (seed + 1) when one ends; else pause until sim/reset"),
    ParamSpec("real_time_factor", 1.0, "pace: 1.0 real time, 2.0 twice as fast, 0.0 as fast as possible", 0.0, 100.0),
    ParamSpec("command_timeout", 0.2, "sim seconds a cmd_vel is held before the vehicle hovers", 0.001, 10.0),
    ParamSpec("lock_step", False, "each frame waits for the cmd_vel stamped with it before the sim advances"),
    ParamSpec("lock_step_timeout", 2.0, "wall seconds a lock-step frame waits before advancing anyway", 0.001, 3600.0),
    ParamSpec("command_topic", "cmd_vel", "velocity commands in (TwistStamped, body FLU)"),
    ParamSpec("image_topic", "camera/image_raw", "camera images out"),
    ParamSpec("camera_info_topic", "camera/camera_info", "camera intrinsics out"),
    ParamSpec("odom_topic", "odom", "ground-truth odometry out"),
    ParamSpec("image_encoding", "rgb8", "encoding of published images", choices=("rgb8", "bgr8")),
    ParamSpec("expert_command_topic", "", "publish the privileged expert's commands here ('' = off)"),
    ParamSpec("controller_reset_service", "liquid_nav/reset_state",
              "Trigger service called at every new episode ('' = none)"),
    ParamSpec("odom_frame_id", "odom", "frame of the odometry pose"),
    ParamSpec("base_frame_id", "base_link", "body frame"),
    ParamSpec("camera_frame_id", "camera", "frame of the camera images"),
)


class SimNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("sim_node", **node_kwargs)
        params = declare_parameters(self, PARAMETERS)
        if self.get_parameter("use_sim_time").value:
            raise ValueError("sim_node is the clock source: do not set use_sim_time on it")
        self.params = params
        env = EnvConfig(world=params["world"], camera=params["camera"], vehicle=params["vehicle"],
                        control_hz=params["control_hz"], max_episode_seconds=params["max_episode_seconds"])
        self.bridge = SimBridge(
            SimBridgeConfig(env, command_timeout=params["command_timeout"], auto_reset=params["auto_reset"]),
            pilot_factory=PrivilegedExpert.from_env if params["expert_command_topic"] else None)
        self._image_publisher = self.create_publisher(Image, params["image_topic"], IMAGE_QOS)
        self._info_publisher = self.create_publisher(CameraInfo, params["camera_info_topic"], IMAGE_QOS)
        self._odom_publisher = self.create_publisher(Odometry, params["odom_topic"], COMMAND_QOS)
        self._clock_publisher = self.create_publisher(ClockMsg, "/clock", CLOCK_QOS)
        self._episode_publisher = self.create_publisher(DiagnosticStatus, "liquid_nav/episode", LATCHED_QOS)
        self._diagnostics = self.create_publisher(DiagnosticArray, "diagnostics", COMMAND_QOS)
        self._expert_publisher = (self.create_publisher(TwistStamped, params["expert_command_topic"], COMMAND_QOS)
                                  if params["expert_command_topic"] else None)
        self.create_subscription(TwistStamped, params["command_topic"], self._on_command, COMMAND_QOS)
        self.create_service(Trigger, "sim/reset", self._on_reset)
        service = params["controller_reset_service"]
        self._reset_client = self.create_client(Trigger, service) if service else None
        self._rejected_commands = 0
        self._lock_step_timeouts = 0
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        rate = params["real_time_factor"]
        period = 0.0 if rate == 0.0 else 1.0 / (params["control_hz"] * rate)
        if rate == 0.0 and params["lock_step"]:
            period = min(0.01, params["lock_step_timeout"])  # commands advance the sim; the timer only times out
        self._published_ns = self._republished_ns = 0
        self._camera_messages = ()
        self._start_distance = 0.0
        self._publish(self.bridge.start_episode(params["seed"]))
        steady_timer(self, period, self._on_step)
        steady_timer(self, 1.0, self._publish_diagnostics)
        self.get_logger().info(f"world {params['world']!r}, seed {params['seed']}, "
                               f"{'as fast as possible' if rate == 0 else f'{rate} x real time'}")

    def _on_step(self) -> None:
        if not self.bridge.running and not self.params["auto_reset"]:
            return
        if self.params["lock_step"] and not self.bridge.answered:
            now_ns = self._steady.now().nanoseconds
            waited = (now_ns - self._published_ns) * 1e-9
            if waited < self.params["lock_step_timeout"]:
                if now_ns - self._republished_ns >= LOCK_STEP_REPUBLISH_NS:
                    self._republished_ns = now_ns
                    # the clock too: /clock is volatile, and a node that joined after the frame went out
                    # (a safety node refusing to arm with "no time yet") would otherwise never get a time
                    self._clock_publisher.publish(ClockMsg(clock=self._camera_messages[0].header.stamp))
                    self._image_publisher.publish(self._camera_messages[0])
                    self._info_publisher.publish(self._camera_messages[1])
                return
            self._lock_step_timeouts += 1
            self.get_logger().warning(f"lock-step: no cmd_vel for the frame at {self.bridge.clock_ns * 1e-9:.3f} s "
                                      f"after {waited:.1f} s; advancing", throttle_duration_sec=2.0)
        self._publish(self.bridge.step())

    def _on_command(self, message: TwistStamped) -> None:
        try:
            self.bridge.set_command(twist_to_command(message), stamp_to_ns(message.header.stamp))
        except ValueError as error:
            self._rejected_commands += 1
            self.get_logger().warning(f"rejected cmd_vel: {error}", throttle_duration_sec=2.0)
            return
        if self.params["lock_step"] and self.params["real_time_factor"] == 0.0 and self.bridge.answered \
                and self.bridge.running:
            self._publish(self.bridge.step())

    def _on_reset(self, _request: Trigger.Request, response: Trigger.Response) -> Trigger.Response:
        seed = int(self.get_parameter("seed").value)
        self._publish(self.bridge.start_episode(seed))
        response.success, response.message = True, f"episode {self.bridge.episode} started with seed {seed}"
        return response

    def _publish(self, frame: SimFrame) -> None:
        self._published_ns = self._republished_ns = self._steady.now().nanoseconds
        stamp = ns_to_stamp(frame.clock_ns)
        self._clock_publisher.publish(ClockMsg(clock=stamp))
        image = Image(**rgb_to_image_fields(frame.image, self.params["image_encoding"]))
        image.header = Header(stamp=stamp, frame_id=self.params["camera_frame_id"])
        self._camera_messages = (image, self._camera_info(image.header, image.width, image.height))
        self._image_publisher.publish(self._camera_messages[0])
        self._info_publisher.publish(self._camera_messages[1])
        self._odom_publisher.publish(self._odometry(frame, stamp))
        if self._expert_publisher is not None and frame.pilot_command is not None:
            self._expert_publisher.publish(twist_stamped(frame.pilot_command, stamp, self.params["base_frame_id"]))
        if frame.new_episode:
            self._start_distance = frame.info["distance"]
            self._publish_episode(frame)
            if self._reset_client is not None and self._reset_client.service_is_ready():
                self._reset_client.call_async(Trigger.Request())
        elif frame.info["outcome"] is not None:
            self._publish_episode(frame)
            self.get_logger().info(f"episode {frame.episode} (seed {frame.seed}): {frame.info['outcome']} "
                                   f"- {frame.info['reason']}")

    def _camera_info(self, header: Header, width: int, height: int) -> CameraInfo:
        fx, fy, cx, cy = self.bridge.env.camera.intrinsics()
        return CameraInfo(
            header=header, width=width, height=height, distortion_model="plumb_bob", d=[0.0] * 5,
            k=[fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0], r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
            p=[fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0],
        )

    def _odometry(self, frame: SimFrame, stamp) -> Odometry:
        info = frame.info
        odom = Odometry()
        odom.header = Header(stamp=stamp, frame_id=self.params["odom_frame_id"])
        odom.child_frame_id = self.params["base_frame_id"]
        position, orientation = odom.pose.pose.position, odom.pose.pose.orientation
        position.x, position.y, position.z = (float(v) for v in info["position"])
        orientation.x, orientation.y, orientation.z, orientation.w = (float(v) for v in info["quaternion"])
        linear, angular = odom.twist.twist.linear, odom.twist.twist.angular
        linear.x, linear.y, linear.z = (float(v) for v in info["velocity_body"])
        angular.x, angular.y, angular.z = (float(v) for v in frame.angular_velocity_body)
        return odom

    def _publish_episode(self, frame: SimFrame) -> None:
        info = frame.info
        outcome: Optional[str] = info["outcome"]
        level = DiagnosticStatus.OK if outcome in (None, "success") else DiagnosticStatus.WARN
        target = info["target_position"]
        values = {
            "episode": frame.episode, "seed": frame.seed, "world": info["world"], "outcome": outcome or "running",
            "reason": info["reason"], "time": f"{info['time']:.3f}", "distance": f"{info['distance']:.3f}",
            "start_distance": f"{self._start_distance:.3f}",
            "target_x": f"{target[0]:.3f}", "target_y": f"{target[1]:.3f}", "target_z": f"{target[2]:.3f}",
        }
        self._episode_publisher.publish(diagnostic_status("liquid_nav/episode", level, outcome or "running", values))

    def _publish_diagnostics(self) -> None:
        values = {"episode": self.bridge.episode, "seed": self.bridge.seed, "sim_time": self.bridge.clock_ns * 1e-9,
                  "commands_received": self.bridge.commands_received, "hover_steps": self.bridge.hover_steps,
                  "rejected_commands": self._rejected_commands, "lock_step_timeouts": self._lock_step_timeouts}
        status = diagnostic_status("liquid_nav/sim", DiagnosticStatus.OK, "running", values)
        self._diagnostics.publish(DiagnosticArray(header=Header(stamp=ns_to_stamp(self.bridge.clock_ns)),
                                                  status=[status]))

    def destroy_node(self) -> None:
        self.bridge.close()
        super().destroy_node()


def main(args=None) -> int:
    return run_node(SimNode, args)


if __name__ == "__main__":
    raise SystemExit(main())
