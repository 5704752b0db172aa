"""Vehicle presets: cf2x consistent with the gym-pybullet-drones constants, x500 flies, files validated."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pybullet as p
import pytest
import yaml

from liquid_nav.sim.quadrotor import Quadrotor
from liquid_nav.sim.vehicle import STANDARD_GRAVITY, VehicleFileError, available_vehicles, load_vehicle, vehicles_dir

from sim_core_helpers import fly

ANCHOR_HOVER_RPM = 14468.0


def test_presets_are_shipped():
    assert {"cf2x", "x500"} <= set(available_vehicles())


def test_cf2x_constants_match_the_anchor():
    cf2x = load_vehicle("cf2x")
    assert (cf2x.mass, cf2x.arm_length, cf2x.kf, cf2x.km) == (0.027, 0.0397, 3.16e-10, 7.94e-12)
    assert cf2x.thrust_to_weight == pytest.approx(2.25)
    assert cf2x.hover_rpm == pytest.approx(ANCHOR_HOVER_RPM, rel=0.01)
    assert cf2x.max_rpm == pytest.approx(21703.0, rel=0.01)


def test_cf2x_hovers_at_the_anchor_rpm_in_flight(make_sim):
    sim = make_sim(vehicle="cf2x")
    sim.reset_drone((0.0, 0.0, 1.0), 0.0)
    fly(sim, (0.0, 0.0, 0.0, 0.0), 3.0)
    rotor_rpm = np.array(sim.quadrotor.rotor_rpm)
    assert rotor_rpm.mean() == pytest.approx(ANCHOR_HOVER_RPM, rel=0.01)
    assert abs(sim.state().velocity_world[2]) < 0.01


@pytest.mark.parametrize("vehicle", ["cf2x", "x500"])
def test_full_throttle_accelerates_at_thrust_to_weight(make_sim, vehicle):
    """Rotors pinned at max RPM (commands above max are clipped) give a = (T/W - 1) g upwards."""
    sim = make_sim(vehicle=vehicle)
    params = sim.vehicle
    quad = Quadrotor(sim.client_id, params, 1.0 / sim.config.physics_hz)
    quad.reset((5.0, 5.0, 10.0), 0.0, rotor_rpm=params.max_rpm)
    steps = 12
    for _ in range(steps):
        quad.apply_rotor_speeds([10.0 * params.max_rpm] * 4)
        p.stepSimulation(physicsClientId=sim.client_id)
    assert quad.rotor_rpm == pytest.approx((params.max_rpm,) * 4)
    vertical_acceleration = quad.state().velocity_world[2] / (steps / sim.config.physics_hz)
    expected = (params.thrust_to_weight - 1.0) * STANDARD_GRAVITY
    assert vertical_acceleration == pytest.approx(expected, rel=0.01)
    if vehicle == "cf2x":
        assert params.max_thrust / params.weight == pytest.approx(2.25)


def test_x500_is_a_jetson_class_vehicle():
    x500 = load_vehicle("x500")
    assert 1.5 <= x500.mass <= 2.5
    assert x500.thrust_to_weight > 1.5
    assert x500.max_speed_xy >= 3.0


def _write(tmp_path: Path, **changes) -> Path:
    data = yaml.safe_load((vehicles_dir() / "x500.yaml").read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key)
        else:
            data[key] = value
    path = tmp_path / "custom.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_custom_file_loads_by_path(tmp_path):
    vehicle = load_vehicle(_write(tmp_path, mass=2.2))
    assert vehicle.mass == 2.2 and vehicle.name == "x500"


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"mass": -1.0}, "'mass' must be > 0"),
        ({"mass": "heavy"}, "'mass' must be a number"),
        ({"inertia": [0.1, 0.1]}, "'inertia' must be a list of 3 numbers"),
        ({"kf": None}, "missing required key(s) ['kf']"),
        ({"wingspan": 3.0}, "unknown key(s) ['wingspan']"),
        ({"thrust_to_weight": 2.0}, "exactly one of 'max_rpm' or 'thrust_to_weight'"),
        ({"max_rpm": 5000.0}, "thrust-to-weight is"),
        ({"max_tilt_deg": 95.0}, "'max_tilt_deg' must be in (0, 90)"),
    ],
)
def test_bad_vehicle_files_name_file_and_key(tmp_path, changes, message):
    path = _write(tmp_path, **changes)
    with pytest.raises(VehicleFileError) as error:
        load_vehicle(path)
    assert message in str(error.value)
    assert str(path) in str(error.value)


def test_unknown_preset_lists_the_available_ones():
    with pytest.raises(VehicleFileError, match="unknown vehicle 'x900'.*cf2x, x500"):
        load_vehicle("x900")


def test_non_mapping_file_is_refused(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(VehicleFileError, match="expected a mapping"):
        load_vehicle(path)


def test_hover_rpm_formula():
    x500 = load_vehicle("x500")
    assert 4.0 * x500.kf * x500.hover_rpm**2 == pytest.approx(x500.mass * STANDARD_GRAVITY)
    assert math.isclose(x500.max_thrust, 4.0 * x500.kf * x500.max_rpm**2)
