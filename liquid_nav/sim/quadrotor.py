"""Rigid-body quadrotor in a PyBullet client: per-rotor thrust and reaction torque, motor lag, drag.

Frames: world ENU-like (z up), body FLU (x forward, y left, z up). Rotors, seen from above, counter-clockwise
from the front-left one: 0 front-left, 1 rear-left, 2 rear-right, 3 front-right, on the diagonals at
``arm_length``. Rotors 0 and 2 spin clockwise (their reaction torque on the body is +z), 1 and 3
counter-clockwise (-z).

The forces of the four rotors are summed into one body-frame force and one torque about the centre of mass
(the same rigid-body effect as four forces at the propellers), applied in PyBullet's LINK_FRAME so that one
physics step costs two PyBullet calls besides ``stepSimulation``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple, Optional, Sequence, Tuple

import numpy as np
import pybullet as p

from liquid_nav.sim.vehicle import VehicleParams

ROTOR_YAW_SIGNS = (1.0, -1.0, 1.0, -1.0)
"""Sign of each rotor's reaction torque about body z."""


def rotor_positions(arm_length: float) -> Tuple[Tuple[float, float], ...]:
    """Body-frame (x, y) of rotors 0..3 (front-left, rear-left, rear-right, front-right)."""
    d = arm_length / math.sqrt(2.0)
    return ((d, d), (-d, d), (-d, -d), (d, -d))


@dataclass(frozen=True)
class QuadState:
    """Kinematic state of the drone. Vectors are float64 numpy arrays; angles in radians."""

    position: np.ndarray  # (3,) world, m
    quaternion: np.ndarray  # (4,) world-from-body, x y z w
    velocity_world: np.ndarray  # (3,) m/s
    angular_velocity_world: np.ndarray  # (3,) rad/s
    velocity_body: np.ndarray  # (3,) m/s, FLU
    yaw: float  # rad, heading of body x, counter-clockwise from world x
    rpy: np.ndarray  # (3,) roll, pitch, yaw (PyBullet's Euler convention)

    def rotation_matrix(self) -> np.ndarray:
        """(3, 3) world-from-body rotation."""
        return np.array(rotation_from_quaternion(*self.quaternion.tolist())).reshape(3, 3)


def rotation_from_quaternion(qx: float, qy: float, qz: float, qw: float) -> Tuple[float, ...]:
    """Row-major world-from-body rotation matrix (9 floats) of a unit quaternion."""
    xx, yy, zz = qx * qx, qy * qy, qz * qz
    xy, xz, yz = qx * qy, qx * qz, qy * qz
    wx, wy, wz = qw * qx, qw * qy, qw * qz
    return (
        1.0 - 2.0 * (yy + zz), 2.0 * (xy - wz), 2.0 * (xz + wy),
        2.0 * (xy + wz), 1.0 - 2.0 * (xx + zz), 2.0 * (yz - wx),
        2.0 * (xz - wy), 2.0 * (yz + wx), 1.0 - 2.0 * (xx + yy),
    )


class Kinematics(NamedTuple):
    """Plain-tuple snapshot of the drone's motion (cheap to build; ``QuadState`` is the numpy version)."""

    position: Tuple[float, float, float]
    quaternion: Tuple[float, float, float, float]  # x y z w
    velocity_world: Tuple[float, float, float]
    angular_velocity_world: Tuple[float, float, float]
    velocity_body: Tuple[float, float, float]
    rotation: Tuple[float, ...]  # row-major world-from-body matrix, 9 floats


_ORIGIN = (0.0, 0.0, 0.0)


class Quadrotor:
    """One quadrotor body in the PyBullet client ``client_id``; ``physics_dt`` is the client's time step
    (it sets the motor-lag discretisation)."""

    def __init__(
        self,
        client_id: int,
        params: VehicleParams,
        physics_dt: float = 1.0 / 240.0,
        ground_effect: bool = False,
        ground_height: float = 0.0,
    ) -> None:
        self.client_id = client_id
        self.params = params
        self.ground_effect = ground_effect
        self.ground_height = ground_height
        self._rotor_xy = rotor_positions(params.arm_length)
        self._alpha_up = 1.0 - math.exp(-physics_dt / params.motor_time_constant_up)
        self._alpha_down = 1.0 - math.exp(-physics_dt / params.motor_time_constant_down)
        self._rotor_rpm = [0.0, 0.0, 0.0, 0.0]
        self.body_id = self._build_body()

    def _build_body(self) -> int:
        params, client = self.params, self.client_id
        collision = p.createCollisionShape(
            p.GEOM_BOX, halfExtents=list(params.collision_half_extents), physicsClientId=client
        )
        visual = p.createVisualShape(
            p.GEOM_BOX,
            halfExtents=list(params.visual_half_extents),
            rgbaColor=[0.15, 0.15, 0.17, 1.0],
            physicsClientId=client,
        )
        body = p.createMultiBody(
            baseMass=params.mass,
            baseCollisionShapeIndex=collision,
            baseVisualShapeIndex=visual,
            basePosition=[0.0, 0.0, 1.0],
            physicsClientId=client,
        )
        p.changeDynamics(
            body,
            -1,
            localInertiaDiagonal=list(params.inertia),
            linearDamping=0.0,
            angularDamping=0.0,
            physicsClientId=client,
        )
        return body

    @property
    def rotor_rpm(self) -> Tuple[float, float, float, float]:
        """Current (lagged) rotor speeds."""
        return tuple(self._rotor_rpm)  # type: ignore[return-value]

    def reset(self, position: Sequence[float], yaw: float = 0.0, rotor_rpm: Optional[float] = None) -> None:
        """Place the drone at rest at ``position`` with heading ``yaw``; rotors spin at ``rotor_rpm``
        (default: hover speed, so that a hovering start has no transient)."""
        orientation = p.getQuaternionFromEuler([0.0, 0.0, float(yaw)])
        p.resetBasePositionAndOrientation(self.body_id, [float(v) for v in position], orientation, physicsClientId=self.client_id)
        p.resetBaseVelocity(self.body_id, [0.0, 0.0, 0.0], [0.0, 0.0, 0.0], physicsClientId=self.client_id)
        speed = self.params.hover_rpm if rotor_rpm is None else float(rotor_rpm)
        self._rotor_rpm = [speed] * 4

    def kinematics(self) -> Kinematics:
        """Current pose and velocities as plain tuples (two PyBullet queries)."""
        client = self.client_id
        position, quaternion = p.getBasePositionAndOrientation(self.body_id, physicsClientId=client)
        velocity, angular_velocity = p.getBaseVelocity(self.body_id, physicsClientId=client)
        r = rotation_from_quaternion(*quaternion)
        vx, vy, vz = velocity
        velocity_body = (
            r[0] * vx + r[3] * vy + r[6] * vz,
            r[1] * vx + r[4] * vy + r[7] * vz,
            r[2] * vx + r[5] * vy + r[8] * vz,
        )
        return Kinematics(position, quaternion, velocity, angular_velocity, velocity_body, r)

    def state(self) -> QuadState:
        kinematics = self.kinematics()
        r = kinematics.rotation
        return QuadState(
            position=np.array(kinematics.position),
            quaternion=np.array(kinematics.quaternion),
            velocity_world=np.array(kinematics.velocity_world),
            angular_velocity_world=np.array(kinematics.angular_velocity_world),
            velocity_body=np.array(kinematics.velocity_body),
            yaw=math.atan2(r[3], r[0]),
            rpy=np.array(p.getEulerFromQuaternion(kinematics.quaternion)),
        )

    def apply_rotor_speeds(
        self,
        rpm_command: Sequence[float],
        velocity_body: Optional[Sequence[float]] = None,
        height: Optional[float] = None,
    ) -> None:
        """Advance the motor lag by one physics step towards ``rpm_command`` (clipped to the motor range)
        and apply the resulting thrust, torques and drag for the next ``stepSimulation``.

        Drag uses ``velocity_body`` and ground effect uses ``height`` (COM height); when omitted they are
        read from PyBullet now. The simulator passes the values it sampled at the flight-controller rate."""
        params = self.params
        if velocity_body is None or (height is None and self.ground_effect):
            kinematics = self.kinematics()
            velocity_body = kinematics.velocity_body if velocity_body is None else velocity_body
            height = kinematics.position[2] if height is None else height
        low, high = params.min_rpm, params.max_rpm
        alpha_up, alpha_down = self._alpha_up, self._alpha_down
        rotor_rpm = self._rotor_rpm
        for i in range(4):
            target = min(max(rpm_command[i], low), high)
            current = rotor_rpm[i]
            rotor_rpm[i] = current + (target - current) * (alpha_up if target > current else alpha_down)

        kf = params.kf
        thrust = torque_x = torque_y = torque_z = 0.0
        for (x, y), sign, speed in zip(self._rotor_xy, ROTOR_YAW_SIGNS, rotor_rpm):
            rotor_thrust = kf * speed * speed
            thrust += rotor_thrust
            torque_x += y * rotor_thrust
            torque_y -= x * rotor_thrust
            torque_z += sign * rotor_thrust
        torque_z *= params.km / kf
        if self.ground_effect:
            thrust *= self._ground_effect_factor(height)

        # body-frame drag: parasitic (linear) + induced rotor drag proportional to the total rotor speed
        speed_sum = rotor_rpm[0] + rotor_rpm[1] + rotor_rpm[2] + rotor_rpm[3]
        linear_x, linear_y, linear_z = params.linear_drag
        rotor_drag_xy = params.rotor_drag_xy * speed_sum
        force = (
            -(linear_x + rotor_drag_xy) * velocity_body[0],
            -(linear_y + rotor_drag_xy) * velocity_body[1],
            thrust - (linear_z + params.rotor_drag_z * speed_sum) * velocity_body[2],
        )
        client = self.client_id
        p.applyExternalForce(self.body_id, -1, force, _ORIGIN, p.LINK_FRAME, physicsClientId=client)
        p.applyExternalTorque(self.body_id, -1, (torque_x, torque_y, torque_z), p.LINK_FRAME, physicsClientId=client)

    def apply_world_force(self, force: Sequence[float]) -> None:
        """Add a world-frame force (N) at the centre of mass for the next ``stepSimulation`` (e.g. wind)."""
        client = self.client_id
        position, _ = p.getBasePositionAndOrientation(self.body_id, physicsClientId=client)
        p.applyExternalForce(self.body_id, -1, [float(v) for v in force], position, p.WORLD_FRAME, physicsClientId=client)

    def _ground_effect_factor(self, height: float) -> float:
        """Cheeseman-Bennett in-ground-effect thrust multiplier 1 / (1 - (R / 4h)^2), capped."""
        cap = self.params.ground_effect_max_factor
        clearance = height - self.ground_height
        ratio = self.params.prop_radius / (4.0 * clearance) if clearance > 0.0 else math.inf
        if ratio >= 1.0:
            return cap
        return min(1.0 / (1.0 - ratio * ratio), cap)
