"""Vehicle presets: the physical constants and flight limits of a quadrotor, stored as YAML.

A preset lives in ``sim_worlds/vehicles/<name>.yaml``; ``load_vehicle`` also accepts a path to any
YAML file with the same keys. Units: SI, rotor speeds in RPM (``kf`` in N/RPM^2, ``km`` in Nm/RPM^2).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, Tuple, Union

from liquid_nav.files import read_yaml
from liquid_nav.paths import named_yaml_file, worlds_dir
from liquid_nav.validation import is_number, is_number_list

STANDARD_GRAVITY = 9.81
"""m/s^2, used by the physics (PyBullet gravity) and by the flight controller's feed-forward."""

Vector3 = Tuple[float, float, float]


class VehicleFileError(ValueError):
    """A vehicle file is missing, malformed or physically inconsistent (the message names file and key)."""


@dataclass(frozen=True)
class VehicleParams:
    """Physical constants and flight limits of one X-configuration quadrotor (body frame FLU)."""

    name: str
    mass: float  # kg
    arm_length: float  # m, centre of mass to each rotor axis
    inertia: Vector3  # kg m^2, principal moments (ixx, iyy, izz)
    kf: float  # N/RPM^2, thrust per rotor = kf * rpm^2
    km: float  # Nm/RPM^2, reaction torque per rotor = km * rpm^2
    max_rpm: float  # rotor speed at full throttle
    min_rpm: float  # idle rotor speed while armed
    motor_time_constant_up: float  # s, first-order lag when spinning up
    motor_time_constant_down: float  # s, first-order lag when spinning down
    linear_drag: Vector3  # N/(m/s), parasitic body drag along body x, y, z
    rotor_drag_xy: float  # N/(RPM * m/s), induced rotor drag: -rotor_drag_xy * sum(rpm) * v_body_xy
    rotor_drag_z: float  # N/(RPM * m/s), same along body z
    prop_radius: float  # m, used by the ground-effect model
    ground_effect_max_factor: float  # cap on the in-ground-effect thrust multiplier
    collision_half_extents: Vector3  # m, box enclosing frame and propellers
    visual_half_extents: Vector3  # m, box drawn for the central body (kept clear of the camera)
    camera_mount: Vector3  # m, default camera position in the body frame
    max_speed_xy: float  # m/s, horizontal command limit
    max_speed_z: float  # m/s, vertical command limit
    max_tilt_deg: float  # deg, tilt limit of the velocity controller
    max_yaw_rate: float  # rad/s, yaw-rate command limit

    @property
    def weight(self) -> float:
        """N."""
        return self.mass * STANDARD_GRAVITY

    @property
    def max_thrust(self) -> float:
        """N, all four rotors at ``max_rpm``."""
        return 4.0 * self.kf * self.max_rpm**2

    @property
    def thrust_to_weight(self) -> float:
        return self.max_thrust / self.weight

    @property
    def hover_rpm(self) -> float:
        """Rotor speed at which four rotors carry the weight."""
        return math.sqrt(self.weight / (4.0 * self.kf))


_VECTOR_KEYS = ("inertia", "linear_drag", "collision_half_extents", "visual_half_extents", "camera_mount")
_NON_NEGATIVE_KEYS = ("min_rpm", "rotor_drag_xy", "rotor_drag_z")
_OPTIONAL_DEFAULTS: Dict[str, Any] = {
    "min_rpm": 0.0,
    "rotor_drag_xy": 0.0,
    "rotor_drag_z": 0.0,
    "linear_drag": (0.0, 0.0, 0.0),
    "ground_effect_max_factor": 1.0,
}
_FIELD_NAMES = tuple(f.name for f in fields(VehicleParams))


def vehicles_dir() -> Path:
    return worlds_dir() / "vehicles"


def available_vehicles() -> Tuple[str, ...]:
    """Names of the shipped presets."""
    return tuple(sorted(path.stem for path in vehicles_dir().glob("*.yaml")))


def load_vehicle(name_or_path: Union[str, Path]) -> VehicleParams:
    """Load a preset by name (``cf2x``, ``x500``) or a vehicle YAML file by path.

    The file gives either ``max_rpm`` or ``thrust_to_weight`` (``max_rpm`` is then derived from mass and
    ``kf``). Raises ``VehicleFileError`` naming the file and key for unknown names, unknown or missing keys,
    wrong types and non-physical values.
    """
    path = _resolve(name_or_path)
    raw = read_yaml(path, VehicleFileError)
    if not isinstance(raw, dict):
        raise VehicleFileError(f"{path}: expected a mapping of vehicle keys at the top level, got {type(raw).__name__}")
    return _parse(path, raw)


def _resolve(name_or_path: Union[str, Path]) -> Path:
    try:
        return named_yaml_file(name_or_path, vehicles_dir(), "vehicle")
    except FileNotFoundError as error:
        raise VehicleFileError(str(error)) from None


def _parse(path: Path, raw: Dict[str, Any]) -> VehicleParams:
    allowed = set(_FIELD_NAMES) | {"thrust_to_weight"}
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise VehicleFileError(f"{path}: unknown key(s) {unknown}; expected keys from {sorted(allowed)}")
    values: Dict[str, Any] = dict(_OPTIONAL_DEFAULTS)
    values["name"] = path.stem
    for key, value in raw.items():
        if key == "thrust_to_weight":
            continue
        values[key] = _check_value(path, key, value)
    if ("max_rpm" in raw) == ("thrust_to_weight" in raw):
        raise VehicleFileError(f"{path}: give exactly one of 'max_rpm' or 'thrust_to_weight'")
    missing = sorted(set(_FIELD_NAMES) - set(values) - {"max_rpm"})
    if missing:
        raise VehicleFileError(f"{path}: missing required key(s) {missing}")
    if "thrust_to_weight" in raw:
        thrust_to_weight = _check_value(path, "thrust_to_weight", raw["thrust_to_weight"])
        values["max_rpm"] = math.sqrt(thrust_to_weight * values["mass"] * STANDARD_GRAVITY / (4.0 * values["kf"]))
    params = VehicleParams(**values)
    if params.thrust_to_weight <= 1.0:
        raise VehicleFileError(
            f"{path}: thrust-to-weight is {params.thrust_to_weight:.2f} (from max_rpm, kf, mass); expected > 1 to fly"
        )
    if params.min_rpm >= params.hover_rpm:
        raise VehicleFileError(f"{path}: 'min_rpm' {params.min_rpm} must be below the hover speed {params.hover_rpm:.0f} RPM")
    if not 0.0 < params.max_tilt_deg < 90.0:
        raise VehicleFileError(f"{path}: 'max_tilt_deg' must be in (0, 90), got {params.max_tilt_deg}")
    if params.ground_effect_max_factor < 1.0:
        raise VehicleFileError(f"{path}: 'ground_effect_max_factor' must be >= 1, got {params.ground_effect_max_factor}")
    return params


def _check_value(path: Path, key: str, value: Any) -> Any:
    if key == "name":
        if not isinstance(value, str) or not value:
            raise VehicleFileError(f"{path}: 'name' must be a non-empty string, got {value!r}")
        return value
    if key in _VECTOR_KEYS:
        if not is_number_list(value, 3):
            raise VehicleFileError(f"{path}: '{key}' must be a list of 3 numbers, got {value!r}")
        vector = tuple(float(v) for v in value)
        if key != "camera_mount" and any(v < 0 for v in vector):
            raise VehicleFileError(f"{path}: '{key}' must not contain negative numbers, got {value!r}")
        if key in ("inertia", "collision_half_extents", "visual_half_extents") and any(v == 0 for v in vector):
            raise VehicleFileError(f"{path}: '{key}' must be positive, got {value!r}")
        return vector
    if not is_number(value):
        raise VehicleFileError(f"{path}: '{key}' must be a number, got {value!r}")
    number = float(value)
    if key in _NON_NEGATIVE_KEYS:
        if number < 0:
            raise VehicleFileError(f"{path}: '{key}' must be >= 0, got {value!r}")
    elif number <= 0:
        raise VehicleFileError(f"{path}: '{key}' must be > 0, got {value!r}")
    return number
