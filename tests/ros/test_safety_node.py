"""safety_node over real DDS: arming, clamps, NaN rejection, stamps, e-stop latch and ordering, stale-input hold."""
import math
import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import TwistStamped
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from std_msgs.msg import Bool, String
from std_srvs.srv import SetBool, Trigger

from liquid_nav.nodes.common import COMMAND_QOS, LATCHED_QOS, twist_stamped, twist_to_command
from liquid_nav.nodes.safety_node import SafetyNode
from tests.ros.conftest import call, wait_for

pytestmark = pytest.mark.ros

LIMITS = {"max_vx": 1.0, "max_vy": 0.5, "max_vz": 0.5, "max_speed": 1.0, "max_yaw_rate": 0.5,
          "max_accel": 1000.0, "max_yaw_accel": 1000.0, "stale_timeout": 0.1, "lost_timeout": 30.0, "diagnostics_rate": 10.0}


class SafetyRig:
    """A safety node, a commander publishing cmd_raw, recorders for cmd_vel / mode / diagnostics."""

    def __init__(self, ros, **overrides):
        params = [Parameter(k, value=v) for k, v in {**LIMITS, **overrides}.items()]
        self.ros = ros
        self.safety = ros.add(SafetyNode(context=ros.context, parameter_overrides=params))
        node = ros.node
        self.lock = threading.Lock()
        self.outputs = []
        self.modes = []
        self.diagnostics = {}
        self.reset_calls = 0
        self.publisher = node.create_publisher(TwistStamped, "liquid_nav/cmd_raw", COMMAND_QOS)
        self.estop_publisher = node.create_publisher(Bool, "liquid_nav/estop", COMMAND_QOS)
        node.create_subscription(TwistStamped, "cmd_vel", self._on_output, COMMAND_QOS)
        node.create_subscription(String, "liquid_nav/safety_mode", lambda m: self.modes.append(m.data), LATCHED_QOS)
        node.create_subscription(DiagnosticArray, "diagnostics", self._on_diagnostics, COMMAND_QOS)
        node.create_service(Trigger, "liquid_nav/reset_state", self._on_reset)
        wait_for(lambda: self.publisher.get_subscription_count() > 0 and self.modes, 20, "safety node discovery")
        # DDS matching is not symmetric in time: keep sending (disarmed, so nothing passes) until the
        # safety node has counted a command, so no test starts inside a reliable-retransmission stall.
        wait_for(lambda: self.send([0, 0, 0, 0]) and int(self.diagnostics.get("accepted", 0)) > 0, 20,
                 "first command accepted by the safety node")

    def _on_output(self, message):
        with self.lock:
            self.outputs.append((twist_to_command(message), message.header.stamp.sec + message.header.stamp.nanosec * 1e-9))

    def _on_diagnostics(self, message):
        for status in message.status:
            if status.name == "liquid_nav/safety":
                self.diagnostics = {kv.key: kv.value for kv in status.values}

    def _on_reset(self, _request, response):
        self.reset_calls += 1
        response.success = True
        return response

    def now(self):
        return self.ros.node.get_clock().now()

    def send(self, command, stamp=None):
        stamp = stamp or self.now().to_msg()
        self.publisher.publish(twist_stamped(command, stamp, "base_link"))
        return stamp

    def stream(self, command, count, period=0.02):
        import time

        for _ in range(count):
            self.send(command)
            time.sleep(period)

    def arm(self, value=True):
        return call(self.ros.node, SetBool, "liquid_nav/arm", SetBool.Request(data=value))

    def trigger(self, name):
        return call(self.ros.node, Trigger, name, Trigger.Request())

    def taken(self):
        with self.lock:
            taken, self.outputs = self.outputs, []
        return taken


def test_no_commands_before_arming_then_clamped_output(ros):
    rig = SafetyRig(ros)
    rig.stream([0.3, 0, 0, 0], 10)
    assert rig.outputs == [] and rig.modes[-1] == "disarmed"
    assert rig.arm().success
    rig.stream([5.0, -5.0, 5.0, 5.0], 15)
    wait_for(lambda: len(rig.outputs) >= 10, 10, "armed outputs")
    last = rig.outputs[-1][0]
    assert abs(last[1]) <= 0.5 + 1e-9 and abs(last[2]) <= 0.5 + 1e-9 and last[3] == pytest.approx(0.5)
    assert np.linalg.norm(last[:3]) == pytest.approx(1.0)
    assert "active" in rig.modes


def test_nan_inf_and_out_of_order_commands_never_reach_cmd_vel(ros):
    rig = SafetyRig(ros)
    rig.arm()
    rig.stream([0.2, 0, 0, 0], 5)
    old_stamp = rig.now().to_msg()
    rig.stream([0.2, 0, 0, 0], 3)
    for bad in ([math.nan, 0, 0, 0], [0, math.inf, 0, 0], [0, 0, 0, -math.inf]):
        rig.send(bad)
    rig.send([0.9, 0, 0, 0], stamp=old_stamp)
    rig.stream([0.2, 0, 0, 0], 5)
    wait_for(lambda: int(rig.diagnostics.get("rejected_nonfinite", 0)) == 3
             and int(rig.diagnostics.get("rejected_out_of_order", 0)) == 1, 10, "rejection counters")
    outputs = rig.taken()
    assert outputs and all(np.all(np.isfinite(c)) for c, _ in outputs)
    assert all(c[0] <= 0.2 + 1e-6 for c, _ in outputs)


def test_stale_input_holds_zero_and_resets_the_controller(ros):
    rig = SafetyRig(ros)
    rig.arm()
    rig.stream([0.4, 0, 0, 0.1], 10)
    last_stamp = rig.send([0.4, 0, 0, 0.1])
    last = last_stamp.sec + last_stamp.nanosec * 1e-9
    wait_for(lambda: rig.reset_calls >= 1, 10, "controller reset_state call")
    wait_for(lambda: "hold" in rig.modes, 5, "hold mode")
    outputs = rig.taken()
    first_zero = next(i for i, (c, s) in enumerate(outputs) if s > last and np.all(c == 0))
    assert all(np.all(c == 0) for c, _ in outputs[first_zero:])
    assert outputs[first_zero][1] - last <= 0.15  # zero velocity within 150 ms of the last input's stamp
    assert rig.reset_calls == 1


def test_estop_latches_until_disarmed_and_reset(ros):
    rig = SafetyRig(ros)
    rig.arm()
    rig.stream([0.5, 0, 0, 0], 5)
    rig.estop_publisher.publish(Bool(data=True))
    wait_for(lambda: rig.modes[-1] == "estop", 10, "estop mode")
    rig.taken()
    rig.stream([0.5, 0, 0, 0], 10)
    assert all(np.all(c == 0) for c, _ in rig.taken())
    assert not rig.trigger("liquid_nav/reset_estop").success  # still armed
    assert rig.arm(False).success
    assert not rig.arm(True).success  # e-stop latched
    assert rig.trigger("liquid_nav/reset_estop").success
    assert rig.arm(True).success
    rig.stream([0.5, 0, 0, 0], 5)
    wait_for(lambda: rig.modes[-1] == "active", 10, "active again")
    assert rig.trigger("liquid_nav/estop").success
    wait_for(lambda: rig.modes[-1] == "estop", 10, "estop via service")


def test_arming_is_refused_on_sim_time_before_the_first_clock(ros):
    ros.add(SafetyNode(context=ros.context, parameter_overrides=[Parameter("use_sim_time", value=True)]))
    response = call(ros.node, SetBool, "liquid_nav/arm", SetBool.Request(data=True))
    assert not response.success and "/clock" in response.message


def test_estop_sends_zero_at_once_without_a_watchdog_tick(ros):
    # The node is built but never spun, so its watchdog timer never fires: the zero after the e-stop
    # can only come from the e-stop handlers themselves (service and topic).
    params = [Parameter(k, value=v) for k, v in LIMITS.items()]
    safety = SafetyNode(context=ros.context, parameter_overrides=params)
    outputs = []
    try:
        ros.node.create_subscription(TwistStamped, "cmd_vel", lambda m: outputs.append(twist_to_command(m)),
                                     COMMAND_QOS)
        wait_for(lambda: safety.count_subscribers("cmd_vel") > 0, 20, "cmd_vel subscriber")
        for trigger in (lambda: safety._on_estop(Trigger.Request(), Trigger.Response()),
                        lambda: safety._on_estop_topic(Bool(data=True))):
            assert safety._on_arm(SetBool.Request(data=True), SetBool.Response()).success
            wait_for(lambda: len(outputs) == 1, 20, "the zero command published on arming")
            assert np.all(outputs[0] == 0)  # hold: no input yet
            for _ in range(3):
                safety._on_command(twist_stamped([0.5, 0, 0, 0], safety.get_clock().now().to_msg(), "base_link"))
                time.sleep(0.02)
            wait_for(lambda: len(outputs) == 4 and outputs[-1][0] > 0, 20, "network commands on cmd_vel")
            trigger()
            wait_for(lambda: len(outputs) == 5, 20, "e-stop zero on cmd_vel")
            assert np.all(outputs[-1] == 0)
            assert safety.gate.mode(safety._now()).value == "estop"
            safety._on_arm(SetBool.Request(data=False), SetBool.Response())
            assert safety._on_reset_estop(Trigger.Request(), Trigger.Response()).success
            outputs.clear()
    finally:
        safety.destroy_node()


def test_no_nonzero_command_leaves_once_an_estop_has_reached_the_node(ros):
    """Hundreds of interleavings of e-stop and network commands over DDS, whatever order the callbacks run in.

    The safety node lives in this process (Fast DDS delivers within the process) but its executor is
    spun by this test, so samples can be left waiting in the node's DDS readers in any order before its
    callbacks run. "Reached" is exact: the e-stop publisher waits until the node's reader has
    acknowledged the e-stop sample (``t_acked``). Every output stamped after that, up to the e-stop
    reset that starts the next trial (network commands carry their input's stamp, heartbeats the
    node's clock), must be zero velocity.
    """
    safety = SafetyNode(context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in LIMITS.items()])
    executor = SingleThreadedExecutor(context=ros.context)
    executor.add_node(safety)
    lock = threading.Lock()
    outputs = []  # (stamp ns, command) seen on cmd_vel

    def record(message):
        with lock:
            outputs.append((message.header.stamp.sec * 10**9 + message.header.stamp.nanosec, twist_to_command(message)))

    def spin(times):
        for _ in range(times):
            executor.spin_once(timeout_sec=0)

    def spin_until(predicate, what):
        deadline = time.monotonic() + 5.0
        while not predicate():
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            executor.spin_once(timeout_sec=0.001)

    def now_ns():
        return ros.node.get_clock().now().nanoseconds

    sent = [0]

    def command():
        commands.publish(twist_stamped([0.5, 0, 0, 0], ros.node.get_clock().now().to_msg(), "base_link"))
        sent[0] += 1

    def handled():  # commands the node's callback has run for (e-stopped ones included)
        counters = safety.gate.counters
        return (counters.accepted + counters.rejected_nonfinite + counters.rejected_out_of_order
                + counters.rejected_stale + counters.rejected_future)

    ros.node.create_subscription(TwistStamped, "cmd_vel", record, COMMAND_QOS)
    commands = ros.node.create_publisher(TwistStamped, "liquid_nav/cmd_raw", COMMAND_QOS)
    estop = ros.node.create_publisher(Bool, "liquid_nav/estop", COMMAND_QOS)
    try:
        wait_for(lambda: spin(1) or (safety.count_subscribers("cmd_vel") and commands.get_subscription_count()
                                      and estop.get_subscription_count()), 20, "discovery")
        estop.publish(Bool(data=False))  # both ends matched: the node's reader acknowledges it
        assert estop.wait_for_all_acked(Duration(seconds=20))
        wait_for(lambda: command() or spin(3) or handled(), 20, "first command handled")
        spin_until(lambda: handled() == sent[0], "warm-up commands handled")
        rng = np.random.default_rng(12)
        trials, queued, after_estop = 300, 0, []  # after_estop: (from t_acked, to the next trial's start)
        for trial in range(trials):
            if after_estop:
                after_estop[-1] = (after_estop[-1][0], now_ns())
            safety._on_arm(SetBool.Request(data=False), SetBool.Response())
            assert safety._on_reset_estop(Trigger.Request(), Trigger.Response()).success
            assert safety._on_arm(SetBool.Request(data=True), SetBool.Response()).success
            for _ in range(3):  # network commands flowing (the first after arming is ramped from zero)
                command()
                spin_until(lambda: handled() == sent[0], "command handled")
            spin_until(lambda: outputs and np.any(outputs[-1][1]), "a network command on cmd_vel")
            for _ in range(rng.integers(0, 3)):  # commands that may still be queued when the e-stop arrives
                command()
                spin(rng.integers(0, 2))
            time.sleep(rng.uniform(0, 0.012))  # sometimes the watchdog timer (100 Hz) is due as well
            estop.publish(Bool(data=True))
            assert estop.wait_for_all_acked(Duration(seconds=5))
            t_acked = now_ns()
            after_estop.append((t_acked, None))
            spun_first = bool(rng.integers(0, 2))
            if spun_first:
                spin(rng.integers(1, 3))
            for _ in range(rng.integers(1, 4)):  # commands stamped after the e-stop reached the node
                command()
                time.sleep(rng.uniform(0, 0.004))
            queued += not spun_first  # commands waiting behind the e-stop in the node's readers
            spin_until(lambda: handled() == sent[0] and safety.gate.mode(safety._now()).value == "estop",
                       "the e-stop and every command of the trial handled (before the e-stop is reset)")
        time.sleep(0.2)  # the last outputs reach the recorder
        after_estop[-1] = (after_estop[-1][0], now_ns())
        with lock:
            violations = [(trial, round((stamp - start) * 1e-6, 3), c.tolist()) for stamp, c in outputs if np.any(c)
                          for trial, (start, end) in enumerate(after_estop) if start < stamp < end]
        assert violations == [], (
            f"{len(violations)} non-zero commands after the e-stop reached the node (trial, ms after, command), in "
            f"{len({v[0] for v in violations})} of {trials} trials ({queued} with commands queued behind the e-stop): "
            f"{violations[:5]}")
    finally:
        executor.remove_node(safety)
        safety.destroy_node()


def test_arming_is_refused_while_an_estop_waits_unhandled_in_the_reader(ros):
    # The node is never spun: the e-stop reaches its DDS reader, but no callback runs for it.
    safety = SafetyNode(context=ros.context, parameter_overrides=[Parameter(k, value=v) for k, v in LIMITS.items()])
    estop = ros.node.create_publisher(Bool, "liquid_nav/estop", COMMAND_QOS)
    try:
        wait_for(lambda: estop.get_subscription_count() > 0, 20, "e-stop subscriber")
        estop.publish(Bool(data=True))
        assert estop.wait_for_all_acked(Duration(seconds=20))
        response = safety._on_arm(SetBool.Request(data=True), SetBool.Response())
        assert not response.success and "e-stop" in response.message
        assert safety.gate.mode(safety._now()).value == "estop"
    finally:
        safety.destroy_node()
