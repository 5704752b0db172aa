"""SafetyGate state machine: arming, latched e-stop, watchdog, clamps, rate limits (bad commands: tests/bad_inputs)."""
import math

import numpy as np
import pytest

from liquid_nav.runtime.safety import SafetyConfig, SafetyGate, SafetyMode

CONFIG = SafetyConfig(
    max_vx=2.0, max_vy=1.0, max_vz=0.5, max_speed=2.0, max_yaw_rate=0.8, max_accel=10.0,
    max_yaw_accel=10.0, stale_timeout=0.1, lost_timeout=1.0, lost_action="land", land_speed=0.3,
    heartbeat_rate=20.0,
)


def armed_gate(config: SafetyConfig = CONFIG, now: float = 10.0) -> SafetyGate:
    gate = SafetyGate(config)
    assert gate.arm(now) == (True, "armed")
    return gate


def feed(gate: SafetyGate, command, start: float, count: int, period: float = 0.02):
    """Fresh commands (stamp == now) every ``period``; returns the outputs."""
    outputs = []
    for index in range(count):
        now = start + index * period
        outputs.append(gate.on_command(command, now, now))
    return outputs


def test_arming_with_no_input_holds_zero_then_follows_fresh_commands():
    gate = armed_gate()
    first = gate.tick(10.0).output
    assert first.mode is SafetyMode.HOLD and np.all(first.command == 0)
    outputs = feed(gate, [0.5, 0.2, 0.1, 0.3], 10.02, 10)
    assert outputs[-1].mode is SafetyMode.ACTIVE
    np.testing.assert_allclose(outputs[-1].command, [0.5, 0.2, 0.1, 0.3])
    assert outputs[-1].stamp == pytest.approx(10.02 + 9 * 0.02)  # image stamp is carried through


def test_per_axis_norm_and_yaw_clamps():
    gate = armed_gate(SafetyConfig(**{**CONFIG.__dict__, "max_accel": 1e6, "max_yaw_accel": 1e6}))
    gate.tick(10.0)
    out = feed(gate, [5.0, -5.0, 5.0, -5.0], 10.02, 3)[-1].command
    per_axis = np.array([2.0, -1.0, 0.5])
    np.testing.assert_allclose(out[:3], per_axis * 2.0 / np.linalg.norm(per_axis))
    assert out[3] == pytest.approx(-0.8) and math.hypot(*out[:3]) == pytest.approx(2.0)
    assert gate.counters.clamped == 3


def test_acceleration_rate_limit_ramps_commands():
    gate = armed_gate(SafetyConfig(**{**CONFIG.__dict__, "max_accel": 1.0, "max_yaw_accel": 2.0}))
    gate.tick(10.0)
    outputs = feed(gate, [2.0, 0.0, 0.0, 0.8], 10.02, 30, period=0.02)
    steps = np.diff([o.command for o in outputs], axis=0)
    assert np.all(steps[:, 0] <= 1.0 * 0.02 + 1e-9) and np.all(steps[:, 3] <= 2.0 * 0.02 + 1e-9)
    assert outputs[0].command[0] == pytest.approx(0.02)
    assert outputs[-1].command[0] == pytest.approx(0.6)
    assert outputs[-1].command[3] == pytest.approx(0.8)
    assert gate.counters.rate_limited > 0


def test_stale_input_holds_zero_immediately_and_requests_one_controller_reset():
    gate = armed_gate()
    gate.tick(10.0)
    feed(gate, [1.0, 0, 0, 0], 10.02, 20)
    last = 10.02 + 19 * 0.02
    assert gate.tick(last + 0.05).reset_controller is False
    stale = gate.tick(last + 0.11)
    assert stale.reset_controller is True
    assert stale.output.mode is SafetyMode.HOLD and np.all(stale.output.command == 0)
    later = [gate.tick(last + 0.11 + k * 0.01) for k in range(1, 20)]
    assert not any(r.reset_controller for r in later)
    assert gate.counters.controller_resets == 1
    published = [r.output for r in later if r.output is not None]
    assert 3 <= len(published) <= 5  # heartbeat at 20 Hz over 0.19 s
    assert all(np.all(p.command == 0) for p in published)


def test_fresh_input_after_hold_resumes_with_a_ramp():
    gate = armed_gate(SafetyConfig(**{**CONFIG.__dict__, "max_accel": 2.0}))
    gate.tick(10.0)
    feed(gate, [1.0, 0, 0, 0], 10.02, 100)
    gate.tick(12.2)
    resumed = gate.on_command([1.0, 0, 0, 0], 12.25, 12.25)
    assert resumed.mode is SafetyMode.ACTIVE and 0 < resumed.command[0] <= 0.1 + 1e-9


@pytest.mark.parametrize("action, expected", [("hover", [0, 0, 0, 0]), ("land", [0, 0, -0.3, 0]), ("stop", None)])
def test_lost_input_runs_the_configured_action_and_latches(action, expected):
    gate = armed_gate(SafetyConfig(**{**CONFIG.__dict__, "lost_action": action}))
    gate.tick(10.0)
    feed(gate, [1.0, 0, 0, 0], 10.02, 5)
    result = gate.tick(11.2)
    assert gate.mode(11.2) is SafetyMode.LOST
    if expected is None:
        assert result.output is None
    else:
        np.testing.assert_allclose(result.output.command, expected)
    assert gate.on_command([1.0, 0, 0, 0], 11.25, 11.25) is None
    assert gate.mode(11.26) is SafetyMode.LOST
    gate.disarm()
    gate.arm(11.3)
    assert gate.on_command([1.0, 0, 0, 0], 11.32, 11.32).mode is SafetyMode.ACTIVE


def test_armed_without_any_input_goes_lost_after_timeout():
    gate = armed_gate()
    assert gate.mode(10.5) is SafetyMode.HOLD
    assert gate.mode(11.01) is SafetyMode.LOST


def test_estop_is_latched_and_only_reset_while_disarmed():
    gate = armed_gate()
    gate.tick(10.0)
    feed(gate, [1.0, 0, 0, 0], 10.02, 5)
    gate.estop()
    stop = gate.tick(10.13)
    assert stop.output.mode is SafetyMode.ESTOP and np.all(stop.output.command == 0)
    assert gate.on_command([1.0, 0, 0, 0], 10.14, 10.14) is None
    assert gate.reset_estop()[0] is False
    assert gate.mode(10.15) is SafetyMode.ESTOP
    gate.disarm()
    assert gate.tick(10.2).output is None  # disarmed: nothing is sent, even in e-stop
    assert gate.arm(10.2)[0] is False
    assert gate.reset_estop() == (True, "e-stop cleared")
    assert gate.arm(10.3) == (True, "armed")
    assert gate.mode(10.3) is SafetyMode.HOLD


def test_invalid_configs_are_refused_with_the_field_name():
    with pytest.raises(ValueError, match="max_vx"):
        SafetyConfig(max_vx=-1)
    with pytest.raises(ValueError, match="lost_action"):
        SafetyConfig(lost_action="explode")
    with pytest.raises(ValueError, match="lost_timeout"):
        SafetyConfig(stale_timeout=2.0, lost_timeout=1.0)
    with pytest.raises(ValueError, match="heartbeat_rate"):
        SafetyConfig(heartbeat_rate=math.nan)
    with pytest.raises(ValueError, match="land_speed"):
        SafetyConfig(max_vz=0.2, land_speed=0.3)  # landing must not outrun the vertical limit


def test_rate_limited_ramp_between_limit_commands_stays_within_max_speed():
    # Per-axis acceleration steps from one in-limit command to another pass near the box corner
    # (2, 1.5, 1) whose norm (2.69) exceeds max_speed; the output must not.
    config = SafetyConfig()
    gate = SafetyGate(config)
    gate.arm(0.0)
    now = 0.0
    for _ in range(10):  # ramp to the clamped corner direction (-1.86, -1.39, -0.93), |v| = 2.5
        now += 0.1
        gate.on_command([-20.0, -15.0, -10.0, 0.0], now, now)
    now += 0.025
    output = gate.on_command([-2.0, -1.5, 0.0, 0.0], now, now).command
    assert np.linalg.norm(output[:3]) <= config.max_speed + 1e-9
    assert np.all(np.abs(output) <= [config.max_vx, config.max_vy, config.max_vz, config.max_yaw_rate])


def test_input_lost_before_a_late_command_stays_lost_without_a_tick():
    # The watchdog tick has not run since the input went quiet for longer than lost_timeout; the
    # next command must not revive the gate.
    gate = armed_gate()
    gate.tick(10.0)
    feed(gate, [0.5, 0, 0, 0], 10.02, 3)
    assert gate.on_command([0.5, 0, 0, 0], 11.5, 11.5) is None
    assert gate.mode(11.5) is SafetyMode.LOST
    assert gate.tick(11.51).output.mode is SafetyMode.LOST


def test_clock_jumping_back_holds_instead_of_repeating_the_last_command():
    # A system clock stepped back (NTP) makes the newest stamp lie in the future; the heartbeat must
    # not keep re-sending the last network command as if the input were fresh.
    gate = armed_gate()
    gate.tick(10.0)
    feed(gate, [0.5, 0, 0, 0], 10.02, 10)
    assert gate.mode(10.2) is SafetyMode.ACTIVE
    result = gate.tick(9.0)
    assert result.output.mode is SafetyMode.HOLD and np.all(result.output.command == 0)
    assert result.reset_controller
    assert gate.on_command([0.5, 0, 0, 0], 9.01, 9.01) is None  # older than the last accepted stamp


def test_safety_config_from_a_ros_params_file(tmp_path):
    import yaml

    from liquid_nav.paths import config_dir
    from liquid_nav.runtime.safety import load_safety_config

    sim = config_dir() / "sim.yaml"
    expected = yaml.safe_load(sim.read_text())["/**/safety_node"]["ros__parameters"]
    config = load_safety_config(sim)
    assert config.max_vx == expected["max_vx"] and config.lost_action == expected["lost_action"]
    assert config.future_tolerance == SafetyConfig().future_tolerance  # not in the file: the default
    other = tmp_path / "other.yaml"
    other.write_text("/**/controller_node:\n  ros__parameters:\n    backend: torch\n")
    with pytest.raises(ValueError, match=r"other.yaml: no 'safety_node: ros__parameters:' section"):
        load_safety_config(other)
    other.write_text("safety_node:\n  ros__parameters:\n    max_vx: -2.0\n    watchdog_rate: 50.0\n")
    with pytest.raises(ValueError, match=r"other.yaml: SafetyConfig.max_vx is -2.0"):
        load_safety_config(other)
