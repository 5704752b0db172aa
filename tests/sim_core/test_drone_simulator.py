"""DroneSimulator: rates, time, determinism, contacts, motor lag, ground effect, configuration errors."""
from __future__ import annotations

import math

import numpy as np
import pybullet as p
import pytest

from liquid_nav.sim.drone_sim import DroneSimulator, SimConfig
from liquid_nav.sim.quadrotor import Quadrotor
from liquid_nav.sim.vehicle import load_vehicle

from sim_core_helpers import add_box, fly

COMMANDS = [(2.0, 0.5, 0.3, 0.4), (-1.0, 1.5, -0.5, -0.8), (3.0, -2.0, 0.0, 1.2), (0.0, 0.0, 0.0, 0.0)]


def _trajectory(config: SimConfig) -> np.ndarray:
    with DroneSimulator(config) as sim:
        add_box(sim.client_id, (6.0, 0.0, 1.0), (0.5, 0.5, 1.0))
        sim.reset_drone((0.0, 0.0, 1.5), 0.2)
        rows = []
        for command in COMMANDS:
            for state in fly(sim, command, 1.0):
                rows.append(np.concatenate([state.position, state.quaternion, state.velocity_world, state.angular_velocity_world]))
        return np.array(rows)


def test_same_commands_give_identical_trajectories():
    first, second = _trajectory(SimConfig()), _trajectory(SimConfig())
    assert np.array_equal(first, second)
    assert np.abs(first[-1, :3] - first[0, :3]).max() > 1.0  # it did fly somewhere


def test_reset_restores_a_fresh_start(make_sim):
    sim = make_sim()
    sim.reset_drone((0.0, 0.0, 3.0), 0.5)
    first = [s.position.copy() for s in fly(sim, (2.0, 1.0, 0.5, 0.3), 2.0)]
    sim.advance((0.0, 0.0, 0.0, 0.0), duration=0.123)  # leave the inner loop mid-period
    sim.reset_drone((0.0, 0.0, 3.0), 0.5)
    second = [s.position.copy() for s in fly(sim, (2.0, 1.0, 0.5, 0.3), 2.0)]
    assert np.array_equal(np.array(first), np.array(second))


def test_advance_runs_one_control_period_or_the_duration(make_sim):
    sim = make_sim(physics_hz=240, control_hz=30)
    sim.advance((0.0, 0.0, 0.0, 0.0))
    assert sim.physics_steps == 8 and sim.time == pytest.approx(1.0 / 30.0)
    sim.advance((0.0, 0.0, 0.0, 0.0), duration=0.5)
    assert sim.physics_steps == 8 + 120 and sim.time == pytest.approx(1.0 / 30.0 + 0.5)
    sim.reset_drone((0.0, 0.0, 1.0))
    assert sim.physics_steps == 128  # time is monotonic across resets


def test_other_rates_fly_the_same_way(make_sim):
    sim = make_sim(physics_hz=480, control_hz=20, flight_controller_hz=240)
    sim.reset_drone((0.0, 0.0, 5.0), 0.0)
    states = fly(sim, (2.0, 0.0, 0.0, 0.0), 4.0)
    assert states[-1].velocity_body[0] == pytest.approx(2.0, abs=0.05)
    assert sim.physics_steps == 480 * 4


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"control_hz": 7.0}, "control_hz=7.0 must divide physics_hz=240"),
        ({"flight_controller_hz": 100.0}, "flight_controller_hz=100.0 must divide"),
        ({"control_hz": 0.0}, "control_hz must be > 0"),
        ({"control_hz": 480.0}, "control_hz=480.0 must divide"),
        ({"physics_hz": 0}, "physics_hz must be > 0"),
        ({"camera": "small"}, "camera must be a CameraConfig"),
    ],
)
def test_inconsistent_rates_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        SimConfig(**fields)


def test_bad_reset_and_duration_are_refused(make_sim):
    sim = make_sim()
    with pytest.raises(ValueError, match="finite 3D position"):
        sim.reset_drone((0.0, float("nan"), 1.0))
    with pytest.raises(ValueError, match="finite 3D position"):
        sim.reset_drone((0.0, 1.0))
    with pytest.raises(ValueError, match="duration must be > 0"):
        sim.advance((0.0, 0.0, 0.0, 0.0), duration=0.0)
    with pytest.raises(ValueError, match="velocity command must be 4 numbers"):
        sim.advance((0.0, 0.0, float("nan"), 0.0))


def test_unknown_vehicle_is_reported_before_a_client_is_opened():
    with pytest.raises(ValueError, match="unknown vehicle 'zeppelin'"):
        DroneSimulator(SimConfig(vehicle="zeppelin"))


def test_contacts_report_collisions(make_sim):
    sim = make_sim()
    wall = add_box(sim.client_id, (3.0, 0.0, 2.0), (0.2, 5.0, 2.0))
    other = add_box(sim.client_id, (-30.0, 0.0, 2.0), (0.2, 1.0, 2.0))
    sim.reset_drone((0.0, 0.0, 2.0), 0.0)
    sim.advance((0.0, 0.0, 0.0, 0.0))
    assert not sim.contacts()
    hit = False
    for _ in range(90):
        sim.advance((3.0, 0.0, 0.0, 0.0))
        if sim.contacts():
            hit = True
            break
    assert hit
    assert sim.state().position[0] < 3.0
    assert sim.contacts([wall]) and not sim.contacts([other])


def test_brief_contacts_during_an_advance_are_reported(make_sim):
    """A ball bounces off the drone in the middle of one advance(): the contact still counts."""
    sim = make_sim()
    sim.reset_drone((0.0, 0.0, 5.0), 0.0)
    shape = p.createCollisionShape(p.GEOM_SPHERE, radius=0.1, physicsClientId=sim.client_id)
    ball = p.createMultiBody(0.05, shape, -1, [2.0, 0.0, 5.0], physicsClientId=sim.client_id)
    p.changeDynamics(ball, -1, restitution=0.9, physicsClientId=sim.client_id)
    p.changeDynamics(sim.drone_id, -1, restitution=0.9, physicsClientId=sim.client_id)
    p.resetBaseVelocity(ball, [-15.0, 0.0, 0.6], [0.0, 0.0, 0.0], physicsClientId=sim.client_id)
    sim.advance((0.0, 0.0, 0.0, 0.0), duration=0.5)
    assert not p.getContactPoints(bodyA=sim.drone_id, physicsClientId=sim.client_id)  # long gone
    assert p.getBasePositionAndOrientation(ball, physicsClientId=sim.client_id)[0][0] > 0.5  # it bounced
    assert sim.contacts() and sim.contacts([ball]) and not sim.contacts([ball + 100])
    sim.advance((0.0, 0.0, 0.0, 0.0))
    assert not sim.contacts()  # each advance() reports its own contacts


def test_close_is_idempotent_and_context_manager_closes():
    with DroneSimulator() as sim:
        client = sim.client_id
        assert p.isConnected(physicsClientId=client)
    assert not p.isConnected(physicsClientId=client)
    sim.close()


def test_motor_lag_is_first_order(make_sim):
    sim = make_sim()
    params = sim.vehicle
    quad = Quadrotor(sim.client_id, params, 1.0 / 240.0)
    quad.reset((10.0, 10.0, 10.0), 0.0, rotor_rpm=params.hover_rpm)
    target = params.max_rpm
    steps = round(params.motor_time_constant_up * 240.0 * 2)
    for _ in range(steps):
        quad.apply_rotor_speeds([target] * 4)
        p.stepSimulation(physicsClientId=sim.client_id)
    expected = target + (params.hover_rpm - target) * math.exp(-steps / 240.0 / params.motor_time_constant_up)
    assert quad.rotor_rpm[0] == pytest.approx(expected, rel=1e-9)
    # spinning down uses the (slower) down time constant
    for _ in range(steps):
        quad.apply_rotor_speeds([params.hover_rpm] * 4)
        p.stepSimulation(physicsClientId=sim.client_id)
    decay = math.exp(-steps / 240.0 / params.motor_time_constant_down)
    assert quad.rotor_rpm[0] == pytest.approx(params.hover_rpm + (expected - params.hover_rpm) * decay, rel=1e-9)


def test_yaw_torque_spins_the_body_the_right_way(make_sim):
    """Speeding up the rotors with positive reaction torque (0 and 2) yaws the body counter-clockwise."""
    sim = make_sim()
    params = sim.vehicle
    quad = Quadrotor(sim.client_id, params, 1.0 / 240.0)
    quad.reset((10.0, 10.0, 10.0), 0.0)
    high, low = params.hover_rpm * 1.05, params.hover_rpm * 0.95
    for _ in range(24):
        quad.apply_rotor_speeds([high, low, high, low])
        p.stepSimulation(physicsClientId=sim.client_id)
    state = quad.state()
    assert state.angular_velocity_world[2] > 0.05
    assert np.abs(state.angular_velocity_world[:2]).max() < 1e-6


@pytest.mark.parametrize("height_in_radii", [0.7, 1.5])
def test_ground_effect_adds_thrust_near_the_ground(make_sim, height_in_radii):
    """At hover RPM, thrust in ground effect exceeds the weight by the Cheeseman-Bennett factor."""
    sim = make_sim()
    params = sim.vehicle
    height = params.prop_radius * height_in_radii
    accelerations = {}
    for enabled in (False, True):
        quad = Quadrotor(sim.client_id, params, 1.0 / 240.0, ground_effect=enabled, ground_height=0.0)
        quad.reset((5.0 * enabled, 20.0, height), 0.0, rotor_rpm=params.hover_rpm)
        quad.apply_rotor_speeds([params.hover_rpm] * 4)
        p.stepSimulation(physicsClientId=sim.client_id)
        accelerations[enabled] = quad.state().velocity_world[2] * 240.0
    factor = 1.0 / (1.0 - (1.0 / (4.0 * height_in_radii)) ** 2)
    assert accelerations[False] == pytest.approx(0.0, abs=1e-9)
    assert accelerations[True] == pytest.approx((factor - 1.0) * 9.81, rel=1e-6)


def test_drone_hovers_steadily_in_ground_effect(make_sim):
    sim = make_sim(ground_effect=True)
    add_box(sim.client_id, (0.0, 0.0, -0.5), (5.0, 5.0, 0.5))
    sim.reset_drone((0.0, 0.0, sim.vehicle.collision_half_extents[2] + 0.05), 0.0)
    states = fly(sim, (0.0, 0.0, 0.0, 0.0), 6.0)
    assert abs(states[-1].velocity_world[2]) < 0.01
    assert states[-1].position[2] < 0.5


def test_differential_thrust_gives_the_rigid_body_torque(make_sim):
    """Left rotors (0, 1) faster than right ones: roll acceleration = sum(y_i T_i) / ixx, no pitch or yaw."""
    sim = make_sim()
    params = sim.vehicle
    quad = Quadrotor(sim.client_id, params, 1.0 / 240.0)
    quad.reset((10.0, 10.0, 10.0), 0.0)
    quad.apply_rotor_speeds([params.hover_rpm * 1.1] * 2 + [params.hover_rpm * 0.9] * 2, velocity_body=(0.0, 0.0, 0.0))
    p.stepSimulation(physicsClientId=sim.client_id)
    speeds = np.array(quad.rotor_rpm)  # after one step of motor lag: the speeds that acted
    assert speeds[0] == speeds[1] > params.hover_rpm > speeds[2] == speeds[3]
    d = params.arm_length / math.sqrt(2.0)
    roll_torque = d * params.kf * (speeds[0] ** 2 + speeds[1] ** 2 - speeds[2] ** 2 - speeds[3] ** 2)
    angular_velocity = quad.state().angular_velocity_world
    assert angular_velocity[0] * 240.0 == pytest.approx(roll_torque / params.inertia[0], rel=1e-6)
    assert np.abs(angular_velocity[1:]).max() < 1e-9


def test_drag_decelerates_as_modelled(make_sim):
    sim = make_sim()
    params = sim.vehicle
    quad = Quadrotor(sim.client_id, params, 1.0 / 240.0)
    quad.reset((10.0, 10.0, 10.0), 0.0)
    p.resetBaseVelocity(quad.body_id, [4.0, 0.0, 0.0], [0.0, 0.0, 0.0], physicsClientId=sim.client_id)
    quad.apply_rotor_speeds([params.hover_rpm] * 4)  # reads the body velocity itself
    p.stepSimulation(physicsClientId=sim.client_id)
    deceleration = (4.0 - quad.state().velocity_world[0]) * 240.0
    drag = (params.linear_drag[0] + params.rotor_drag_xy * 4 * params.hover_rpm) * 4.0
    assert deceleration == pytest.approx(drag / params.mass, rel=1e-6)
    assert drag / params.mass > 0.3  # the x500 preset has noticeable drag at 4 m/s


def test_ground_effect_is_capped(make_sim):
    params = load_vehicle("x500")
    quad = Quadrotor(make_sim().client_id, params, 1.0 / 240.0, ground_effect=True)
    assert quad._ground_effect_factor(0.0) == params.ground_effect_max_factor
    assert quad._ground_effect_factor(params.prop_radius * 0.3) == params.ground_effect_max_factor
    assert quad._ground_effect_factor(100.0) == pytest.approx(1.0, abs=1e-6)
