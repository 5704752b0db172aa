"""The cascaded velocity controller flying the real PyBullet quadrotor."""
from __future__ import annotations

import math

import numpy as np
import pybullet as p
import pytest

from liquid_nav.sim.flight_controller import VelocityController
from liquid_nav.sim.quadrotor import ROTOR_YAW_SIGNS, rotor_positions
from liquid_nav.sim.vehicle import load_vehicle

from sim_core_helpers import fly


@pytest.mark.parametrize("vehicle", ["x500", "cf2x"])
def test_hover_holds_altitude_for_ten_seconds(make_sim, vehicle):
    sim = make_sim(vehicle=vehicle)
    sim.reset_drone((1.0, -2.0, 3.0), 0.7)
    states = fly(sim, (0.0, 0.0, 0.0, 0.0), 10.0)
    assert max(abs(s.position[2] - 3.0) for s in states) < 0.01
    assert np.linalg.norm(states[-1].position - np.array([1.0, -2.0, 3.0])) < 0.01
    assert abs(states[-1].yaw - 0.7) < 0.01


@pytest.mark.parametrize("vehicle", ["x500", "cf2x"])
def test_hover_recovers_altitude_after_a_kick(make_sim, vehicle):
    """Knocked down and sideways (0.3 m/s, spinning), the drone sags a few cm and climbs back."""
    sim = make_sim(vehicle=vehicle)
    sim.reset_drone((1.0, -2.0, 3.0), 0.7)
    p.resetBaseVelocity(sim.drone_id, [0.3, -0.3, -0.3], [0.5, -0.4, 0.3], physicsClientId=sim.client_id)
    states = fly(sim, (0.0, 0.0, 0.0, 0.0), 10.0)
    heights = np.array([s.position[2] for s in states])
    assert np.abs(heights - 3.0).max() < 0.08
    assert abs(heights[-1] - 3.0) < 0.01
    assert np.abs(states[-1].velocity_world).max() < 0.01
    assert np.linalg.norm(states[-1].position[:2] - np.array([1.0, -2.0])) < 0.03
    assert abs(states[-1].yaw - 0.7) < 0.01


def _step_response(make_sim, axis: int, value: float, vehicle: str = "x500", seconds: float = 6.0):
    sim = make_sim(vehicle=vehicle)
    sim.reset_drone((0.0, 0.0, 20.0), 0.4)
    command = [0.0, 0.0, 0.0, 0.0]
    command[axis] = value
    states = fly(sim, command, seconds)
    speeds = np.array([_heading_velocity(s)[axis] for s in states])
    times = np.arange(1, len(states) + 1) / sim.config.control_hz
    return sim, states, speeds, times


def _heading_velocity(state) -> np.ndarray:
    """World velocity in the yaw-aligned frame (the frame commands are read in)."""
    cos_yaw, sin_yaw = math.cos(state.yaw), math.sin(state.yaw)
    vx, vy, vz = state.velocity_world
    return np.array([cos_yaw * vx + sin_yaw * vy, -sin_yaw * vx + cos_yaw * vy, vz])


def _settling_time(times: np.ndarray, speeds: np.ndarray, target: float, band: float) -> float:
    outside = np.nonzero(np.abs(speeds - target) > band * abs(target))[0]
    return times[outside[-1] + 1] if len(outside) else 0.0


@pytest.mark.parametrize("axis, value", [(0, 3.0), (0, -2.0), (1, 2.0), (2, 1.5), (2, -1.5)])
def test_velocity_steps_settle_without_oscillation(make_sim, axis, value):
    sim, states, speeds, times = _step_response(make_sim, axis, value)
    overshoot = (speeds * np.sign(value)).max() / abs(value) - 1.0
    assert overshoot < 0.10
    assert _settling_time(times, speeds, value, 0.05) < 3.0
    # no oscillation: after first reaching 90 % of the step, the speed error changes sign at most twice
    reached = np.nonzero(speeds * np.sign(value) >= 0.9 * abs(value))[0][0]
    error_signs = np.sign(speeds[reached:] - value)
    sign_changes = np.count_nonzero(np.diff(error_signs[error_signs != 0]))
    assert sign_changes <= 2
    # the other axes (heading frame) stay put while one moves
    heading_velocity = _heading_velocity(states[-1])
    other = [i for i in range(3) if i != axis]
    assert np.abs(heading_velocity[other]).max() < 0.05
    if axis < 2:
        assert abs(states[-1].position[2] - 20.0) < 0.3


def test_x500_flies_at_least_three_metres_per_second(make_sim):
    _, states, speeds, _ = _step_response(make_sim, 0, 5.0, seconds=5.0)
    assert speeds[-1] >= 3.0
    assert speeds[-1] == pytest.approx(5.0, abs=0.15)


def test_forward_command_follows_the_heading(make_sim):
    sim = make_sim()
    sim.reset_drone((0.0, 0.0, 5.0), math.pi / 2)
    state = fly(sim, (2.0, 0.0, 0.0, 0.0), 4.0)[-1]
    assert state.velocity_world[1] == pytest.approx(2.0, abs=0.05)
    assert abs(state.velocity_world[0]) < 0.05
    assert state.velocity_body[0] == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize("yaw_rate", [0.8, -0.5])
def test_yaw_rate_tracks(make_sim, yaw_rate):
    sim = make_sim()
    sim.reset_drone((0.0, 0.0, 5.0), 0.0)
    states = fly(sim, (0.0, 0.0, 0.0, yaw_rate), 3.0)
    late_rates = np.array([s.angular_velocity_world[2] for s in states[-30:]])
    assert np.abs(late_rates - yaw_rate).max() < 0.03 * abs(yaw_rate)
    unwrapped = np.unwrap([s.yaw for s in states])
    assert unwrapped[-1] == pytest.approx(yaw_rate * 3.0, abs=0.1)
    assert abs(states[-1].position[2] - 5.0) < 0.05


def test_yaw_while_flying_forward_keeps_speed_and_height(make_sim):
    sim = make_sim()
    sim.reset_drone((0.0, 0.0, 5.0), 0.0)
    states = fly(sim, (2.5, 0.0, 0.0, 0.6), 6.0)
    assert np.hypot(*states[-1].velocity_world[:2]) == pytest.approx(2.5, abs=0.15)
    assert abs(states[-1].position[2] - 5.0) < 0.2


@pytest.mark.parametrize("vehicle", ["x500", "cf2x"])
def test_saturated_and_absurd_commands_stay_stable(make_sim, vehicle):
    sim = make_sim(vehicle=vehicle)
    sim.reset_drone((0.0, 0.0, 50.0), 0.0)
    max_tilt = 0.0
    rng = np.random.default_rng(3)
    for period in range(300):
        if period % 15 == 0:
            command = rng.choice([-1.0, 1.0], size=4) * np.array([1e6, 1e6, 1e3, np.inf])
        sim.advance(command)
        state = sim.state()
        rotation = state.rotation_matrix()
        assert rotation[2, 2] > 0.5, "the drone flipped"
        max_tilt = max(max_tilt, math.degrees(math.acos(min(rotation[2, 2], 1.0))))
        assert np.all(np.isfinite(state.position))
    assert max_tilt < sim.vehicle.max_tilt_deg + 10.0
    assert np.abs(state.velocity_body).max() <= 1.2 * sim.vehicle.max_speed_xy + 0.5
    # and it recovers to a steady hover afterwards
    states = fly(sim, (0.0, 0.0, 0.0, 0.0), 4.0)
    assert np.abs(states[-1].velocity_world).max() < 0.05
    assert np.abs(states[-1].angular_velocity_world).max() < 0.05


def test_commands_are_clamped_to_the_vehicle_limits():
    params = load_vehicle("x500")
    controller = VelocityController(params)
    vx, vy, vz, yaw_rate = controller.clamp_command([30.0, 40.0, -9.0, 7.0])
    assert math.hypot(vx, vy) == pytest.approx(params.max_speed_xy)
    assert vy / vx == pytest.approx(40.0 / 30.0)
    assert vz == -params.max_speed_z and yaw_rate == params.max_yaw_rate
    assert controller.clamp_command([1.0, -0.5, 0.2, 0.1]) == (1.0, -0.5, 0.2, 0.1)
    assert controller.clamp_command(np.array([np.inf, -np.inf, np.inf, -np.inf])) == pytest.approx(
        (params.max_speed_xy / math.sqrt(2.0), -params.max_speed_xy / math.sqrt(2.0), params.max_speed_z, -params.max_yaw_rate)
    )


@pytest.mark.parametrize("bad", [[float("nan"), 0, 0, 0], [1.0, 2.0, 3.0], "fast", "1234", np.zeros((1, 4)), None])
def test_malformed_commands_raise(bad):
    controller = VelocityController(load_vehicle("x500"))
    with pytest.raises(ValueError, match="velocity command must be 4 numbers"):
        controller.clamp_command(bad)


def _wrench(params, rpm):
    thrusts = params.kf * np.asarray(rpm) ** 2
    xy = np.array(rotor_positions(params.arm_length))
    return (
        thrusts.sum(),
        (xy[:, 1] * thrusts).sum(),
        (-xy[:, 0] * thrusts).sum(),
        params.km / params.kf * (np.array(ROTOR_YAW_SIGNS) * thrusts).sum(),
    )


def test_mixer_reproduces_feasible_wrenches():
    params = load_vehicle("x500")
    controller = VelocityController(params)
    request = (params.weight, 0.3, -0.2, 0.05)
    assert _wrench(params, controller.mix(request[0], request[1:])) == pytest.approx(request, rel=1e-9, abs=1e-12)


def test_mixer_gives_up_yaw_before_thrust_and_tilt():
    params = load_vehicle("x500")
    controller = VelocityController(params)
    thrust, roll, pitch, yaw = _wrench(params, controller.mix(params.weight, (0.5, 0.0, 100.0)))
    assert thrust == pytest.approx(params.weight)
    assert roll == pytest.approx(0.5)
    assert 0.0 < yaw < 100.0
    rpm = controller.mix(params.weight, (0.5, 0.0, 100.0))
    assert max(rpm) <= params.max_rpm * (1 + 1e-9) and min(rpm) >= params.min_rpm * (1 - 1e-9)


def test_mixer_keeps_tilt_torque_by_shifting_thrust():
    params = load_vehicle("x500")
    controller = VelocityController(params)
    # near full throttle a roll torque still fits if the collective gives way
    rpm = controller.mix(0.98 * params.max_thrust, (1.0, 0.0, 0.0))
    thrust, roll, _, _ = _wrench(params, rpm)
    assert roll == pytest.approx(1.0)
    assert thrust < 0.98 * params.max_thrust
    # an impossible roll torque is scaled down, never inverted, and motors stay in range
    rpm = controller.mix(params.weight, (50.0, 0.0, 0.0))
    _, roll, _, _ = _wrench(params, rpm)
    assert 0.0 < roll < 50.0
    assert max(rpm) <= params.max_rpm * (1 + 1e-9) and min(rpm) >= params.min_rpm * (1 - 1e-9)


def test_compute_on_a_state_hovers_at_rest_pitches_forward_and_clamps():
    from liquid_nav.sim.quadrotor import QuadState

    params = load_vehicle("x500")
    at_rest = QuadState(position=np.array([0.0, 0.0, 2.0]), quaternion=np.array([0.0, 0.0, 0.0, 1.0]),
                        velocity_world=np.zeros(3), angular_velocity_world=np.zeros(3), velocity_body=np.zeros(3),
                        yaw=0.0, rpy=np.zeros(3))
    hover = VelocityController(params).compute(at_rest, [0.0, 0.0, 0.0, 0.0], 1 / 120)
    assert hover.shape == (4,) and hover == pytest.approx([params.hover_rpm] * 4, rel=1e-9)
    forward = VelocityController(params).compute(at_rest, [2.0, 0.0, 0.0, 0.0], 1 / 120)
    # nose down to accelerate forward: the rear rotors (1, 2) spin faster than the front ones (0, 3)
    assert min(forward[1], forward[2]) > max(forward[0], forward[3])
    too_fast = VelocityController(params).compute(at_rest, [100.0, 0.0, 0.0, 0.0], 1 / 120)
    at_limit = VelocityController(params).compute(at_rest, [params.max_speed_xy, 0.0, 0.0, 0.0], 1 / 120)
    assert np.array_equal(too_fast, at_limit)
