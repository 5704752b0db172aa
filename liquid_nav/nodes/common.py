"""Shared pieces of the liquid_nav nodes: QoS profiles, declared parameters, message helpers, main()."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any, Callable, Dict, Iterable, Optional, Sequence, Tuple

import numpy as np
import rclpy
from builtin_interfaces.msg import Time as TimeMsg
from diagnostic_msgs.msg import DiagnosticStatus, KeyValue
from geometry_msgs.msg import TwistStamped
from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType
from rclpy.clock import Clock, ClockType
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy, qos_profile_sensor_data
from rclpy.subscription import Subscription
from rclpy.timer import Timer

SENSOR_QOS = qos_profile_sensor_data
"""Best effort, keep last 5 (ROS sensor-data QoS): matches every publisher, but large images are lost
unless the transport is set up for them (docs/deployment.md)."""
RELIABILITY = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}
COMMAND_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.RELIABLE)
"""Velocity commands, odometry, diagnostics: reliable, keep last 10."""
LATCHED_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
"""Mode and episode status: the last value is delivered to late joiners."""
CLOCK_QOS = QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=1, reliability=ReliabilityPolicy.RELIABLE)


def image_qos(reliability: str, depth: int) -> QoSProfile:
    """Keep-last ``depth`` QoS for camera images; ``reliability`` is ``reliable`` or ``best_effort``.

    A reliable subscription matches only reliable publishers; a reliable publisher serves both kinds.
    """
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=RELIABILITY[reliability])


IMAGE_QOS = image_qos("reliable", 5)
"""Camera images and camera info as the sim (and the test cameras) publish them: reliable, keep last 5."""

_TYPES = {bool: ParameterType.PARAMETER_BOOL, int: ParameterType.PARAMETER_INTEGER,
          float: ParameterType.PARAMETER_DOUBLE, str: ParameterType.PARAMETER_STRING}


@dataclass(frozen=True)
class ParamSpec:
    """One declared parameter: name, default (its Python type is the parameter type), description."""

    name: str
    default: Any
    description: str
    low: Optional[float] = None
    high: Optional[float] = None
    choices: Tuple[str, ...] = ()
    read_only: bool = True

    def descriptor(self) -> ParameterDescriptor:
        descriptor = ParameterDescriptor(
            name=self.name, type=_TYPES[type(self.default)], description=self.description,
            read_only=self.read_only,
        )
        if self.choices:
            descriptor.additional_constraints = "one of: " + ", ".join(self.choices)
        if self.low is not None and isinstance(self.default, float):
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=float(self.low), to_value=float(self.high))]
        elif self.low is not None and isinstance(self.default, int) and not isinstance(self.default, bool):
            descriptor.integer_range = [IntegerRange(from_value=int(self.low), to_value=int(self.high), step=1)]
        return descriptor


def declare_parameters(node: Node, specs: Sequence[ParamSpec]) -> Dict[str, Any]:
    """Declare every spec with its descriptor and return the values (from YAML / -p / defaults).

    Raises ``ValueError`` naming the parameter when a value violates its declared choices.
    """
    values = {}
    for spec in specs:
        value = node.declare_parameter(spec.name, spec.default, spec.descriptor()).value
        if spec.choices and value not in spec.choices:
            raise ValueError(f"parameter {spec.name!r} is {value!r}; expected one of {', '.join(spec.choices)}")
        values[spec.name] = value
    return values


def parameter_names(specs: Iterable[ParamSpec]) -> set:
    """Names a node declares (``use_sim_time`` is declared by rclpy itself)."""
    return {spec.name for spec in specs} | {"use_sim_time"}


def steady_timer(node: Node, period: float, callback) -> Timer:
    """A timer on the steady (wall) clock, whatever ``use_sim_time`` says: diagnostics and pacing keep running
    while sim time stands still (a paused or lock-step simulation)."""
    return node.create_timer(period, callback, clock=Clock(clock_type=ClockType.STEADY_TIME))


def stamp_to_ns(stamp: TimeMsg) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def ns_to_stamp(nanoseconds: int) -> TimeMsg:
    return TimeMsg(sec=int(nanoseconds // 1_000_000_000), nanosec=int(nanoseconds % 1_000_000_000))


def twist_stamped(command: Sequence[float], stamp: TimeMsg, frame_id: str) -> TwistStamped:
    """(vx, vy, vz, yaw_rate) body FLU -> TwistStamped."""
    message = TwistStamped()
    message.header.stamp = stamp
    message.header.frame_id = frame_id
    message.twist.linear.x, message.twist.linear.y, message.twist.linear.z = (float(v) for v in command[:3])
    message.twist.angular.z = float(command[3])
    return message


def twist_to_command(message: TwistStamped) -> np.ndarray:
    """TwistStamped -> (vx, vy, vz, yaw_rate); angular x/y are ignored (a multirotor cannot follow them)."""
    twist = message.twist
    return np.array([twist.linear.x, twist.linear.y, twist.linear.z, twist.angular.z], dtype=np.float64)


def take_waiting(subscription: Subscription) -> Optional[Any]:
    """The oldest message waiting in ``subscription``'s DDS reader, taken without blocking (None if none).

    The same non-blocking take the executor makes before running a callback; a callback uses it to act
    on another subscription's messages before its own turn (the safety node drains its e-stop queue
    before every output). Only for nodes whose callbacks run one at a time (``run_node``'s executor).
    """
    with subscription.handle:
        taken = subscription.handle.take_message(subscription.msg_type, subscription.raw)
    return None if taken is None else taken[0]


def diagnostic_status(name: str, level: bytes, message: str, values: Dict[str, Any]) -> DiagnosticStatus:
    """A DiagnosticStatus whose key/values are ``str()`` of ``values``."""
    return DiagnosticStatus(
        level=level, name=name, message=message,
        values=[KeyValue(key=str(key), value=str(value)) for key, value in values.items()],
    )


def run_node(factory: Callable[[], Node], args: Optional[list] = None) -> int:
    """Init rclpy, build the node, spin until Ctrl-C / shutdown.

    Malformed ``--ros-args`` and a node that cannot be built (bad parameter, missing or corrupt model file)
    print why in one line and exit with status 2.
    """
    try:
        rclpy.init(args=sys.argv if args is None else args)
    except Exception as error:  # noqa: BLE001 - rcl reports malformed --ros-args as its own RCLError
        reason = str(error).split(", at /")[0]  # drop rcl's C source locations
        print(f"[liquid_nav] cannot start: invalid ROS arguments: {reason}", file=sys.stderr)
        return 2
    node = None
    try:
        try:
            node = factory()
        except Exception as error:  # noqa: BLE001 - any construction failure is a configuration error
            print(f"[liquid_nav] cannot start: {type(error).__name__}: {error}", file=sys.stderr)
            return 2
        executor = SingleThreadedExecutor()
        executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0
