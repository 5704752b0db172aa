"""Velocity controller: body-frame FLU velocity + yaw-rate command -> four rotor speeds.

Cascade: velocity (PI + drag feed-forward, world frame) -> desired acceleration, tilt-limited -> thrust vector and attitude
(geometric SO(3) error) -> body rates (P) -> torques (inertia-scaled P + gyroscopic term) -> X mixer with
saturation priorities: collective thrust and roll/pitch first, yaw last.

The command (vx forward, vy left, vz up, yaw_rate counter-clockwise) is read in the heading frame: the frame
rotated by the drone's yaw about world z, so a forward command means level flight along the heading whatever
the current tilt. Gains are expressed as bandwidths (1/s) and scaled by mass and inertia, so the defaults
work for every preset.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from liquid_nav.sim.quadrotor import QuadState, rotation_from_quaternion
from liquid_nav.sim.vehicle import STANDARD_GRAVITY, VehicleParams


@dataclass(frozen=True)
class ControllerGains:
    """Loop gains of the cascade (bandwidths, independent of the vehicle's size)."""

    velocity_p_xy: float = 2.0  # (m/s^2) per (m/s) of horizontal velocity error
    velocity_i_xy: float = 0.6  # (m/s^2) per (m/s * s)
    velocity_p_z: float = 4.0
    velocity_i_z: float = 2.0
    integral_limit: float = 3.0  # m/s^2, cap on each integral term
    integral_band: float = 0.5  # m/s, integrate only velocity errors smaller than this (no wind-up on steps)
    max_vertical_acceleration: float = 4.0  # m/s^2, up and down
    attitude_p_tilt: float = 7.0  # rad/s of body rate per rad of roll/pitch error
    attitude_p_yaw: float = 2.5  # rad/s per rad of yaw error
    rate_p_tilt: float = 25.0  # rad/s^2 per rad/s of roll/pitch rate error
    rate_p_yaw: float = 10.0  # rad/s^2 per rad/s of yaw rate error
    max_tilt_rate: float = 4.0  # rad/s, roll/pitch rate limit
    max_yaw_error: float = 0.3  # rad, the yaw set-point never leads the heading by more


_HUGE = 1e150


class VelocityController:
    """Cascaded velocity controller for one vehicle; stateful (integrators, yaw set-point)."""

    def __init__(self, params: VehicleParams, gains: Optional[ControllerGains] = None) -> None:
        self.params = params
        self.gains = gains or ControllerGains()
        self._max_tilt_tan = math.tan(math.radians(params.max_tilt_deg))
        self._min_rotor_thrust = params.kf * params.min_rpm**2
        self._max_rotor_thrust = params.kf * params.max_rpm**2
        # expected drag deceleration per m/s of commanded velocity (rotors near hover), fed forward
        hover_rotor_drag = params.rotor_drag_xy * 4.0 * params.hover_rpm
        self._drag_feedforward = (
            (params.linear_drag[0] + hover_rotor_drag) / params.mass,
            (params.linear_drag[1] + hover_rotor_drag) / params.mass,
            (params.linear_drag[2] + params.rotor_drag_z * 4.0 * params.hover_rpm) / params.mass,
        )
        # rotors sit at (+-d, +-d) with d = arm / sqrt(2): a torque tau shifts a rotor's thrust by tau / (4 d)
        self._tilt_torque_to_thrust = 1.0 / (4.0 * params.arm_length / math.sqrt(2.0))
        self._yaw_torque_to_thrust = params.kf / (4.0 * params.km)
        self.reset()

    def reset(self) -> None:
        """Clear the integrators and the yaw set-point (taken from the next state)."""
        self._integral = [0.0, 0.0, 0.0]
        self._yaw_setpoint: Optional[float] = None

    def clamp_command(self, command_flu: Sequence[float]) -> Tuple[float, float, float, float]:
        """Limit a command to the vehicle: horizontal speed (direction kept), vertical speed, yaw rate.

        Infinite values are clamped like any other; ``ValueError`` for anything but 4 numbers, or for NaN."""
        try:
            values = [float(v) for v in command_flu] if not isinstance(command_flu, (str, bytes)) else []
        except (TypeError, ValueError):
            values = []
        if len(values) != 4 or any(math.isnan(v) for v in values):
            raise ValueError(f"velocity command must be 4 numbers (vx, vy, vz, yaw_rate) without NaN, got {command_flu!r}")
        limits = self.params
        # infinities become huge finite values so that the direction of the horizontal command survives
        vx, vy = (min(max(v, -_HUGE), _HUGE) for v in values[:2])
        horizontal = math.hypot(vx, vy)
        if horizontal > limits.max_speed_xy:
            scale = limits.max_speed_xy / horizontal
            vx, vy = vx * scale, vy * scale
        vz = min(max(values[2], -limits.max_speed_z), limits.max_speed_z)
        yaw_rate = min(max(values[3], -limits.max_yaw_rate), limits.max_yaw_rate)
        return vx, vy, vz, yaw_rate

    def compute(self, state: QuadState, command_flu: Sequence[float], dt: float) -> np.ndarray:
        """Rotor speed commands (RPM, shape (4,)) for the next ``dt`` seconds."""
        rotation = rotation_from_quaternion(*state.quaternion.tolist())
        return np.array(
            self.control(
                rotation,
                state.velocity_world.tolist(),
                state.angular_velocity_world.tolist(),
                self.clamp_command(command_flu),
                dt,
            )
        )

    def control(
        self,
        rotation: Sequence[float],
        velocity_world: Sequence[float],
        angular_velocity_world: Sequence[float],
        command: Tuple[float, float, float, float],
        dt: float,
    ) -> Tuple[float, float, float, float]:
        """``compute`` on plain floats (the simulator's hot path): ``rotation`` is the row-major
        world-from-body matrix, ``command`` an already clamped (vx, vy, vz, yaw_rate)."""
        gains, params = self.gains, self.params
        vx_cmd, vy_cmd, vz_cmd, yaw_rate_cmd = command
        r = rotation
        yaw = math.atan2(r[3], r[0])

        # velocity loop in the world frame, with the expected drag at the commanded velocity fed forward
        cos_yaw, sin_yaw = math.cos(yaw), math.sin(yaw)
        drag_forward, drag_left, drag_up = self._drag_feedforward
        feedforward_forward, feedforward_left = drag_forward * vx_cmd, drag_left * vy_cmd
        errors = (
            cos_yaw * vx_cmd - sin_yaw * vy_cmd - velocity_world[0],
            sin_yaw * vx_cmd + cos_yaw * vy_cmd - velocity_world[1],
            vz_cmd - velocity_world[2],
        )
        integral = self._integral
        accel_z = gains.velocity_p_z * errors[2] + gains.velocity_i_z * integral[2] + drag_up * vz_cmd
        z_limit = gains.max_vertical_acceleration
        z_saturated = abs(accel_z) > z_limit
        accel_z = min(max(accel_z, -z_limit), z_limit)
        accel_x = (
            gains.velocity_p_xy * errors[0]
            + gains.velocity_i_xy * integral[0]
            + cos_yaw * feedforward_forward
            - sin_yaw * feedforward_left
        )
        accel_y = (
            gains.velocity_p_xy * errors[1]
            + gains.velocity_i_xy * integral[1]
            + sin_yaw * feedforward_forward
            + cos_yaw * feedforward_left
        )
        horizontal_limit = (STANDARD_GRAVITY + accel_z) * self._max_tilt_tan
        horizontal = math.hypot(accel_x, accel_y)
        xy_saturated = horizontal > horizontal_limit
        if xy_saturated:
            accel_x *= horizontal_limit / horizontal
            accel_y *= horizontal_limit / horizontal
        self._integrate(errors, dt, xy_saturated, z_saturated)

        # desired attitude: body z along the thrust vector, heading from the yaw set-point
        force = (params.mass * accel_x, params.mass * accel_y, params.mass * (accel_z + STANDARD_GRAVITY))
        force_norm = math.sqrt(force[0] ** 2 + force[1] ** 2 + force[2] ** 2)
        z_des = (force[0] / force_norm, force[1] / force_norm, force[2] / force_norm)
        yaw_des = self._advance_yaw_setpoint(yaw, yaw_rate_cmd, dt)
        heading = (math.cos(yaw_des), math.sin(yaw_des), 0.0)
        y_des = _normalized(_cross(z_des, heading))
        x_des = _cross(y_des, z_des)
        # rotation error e_R = 1/2 vee(M - M^T) with M = R_des^T R, M[i][j] = (row i of R_des^T) . (column j of R)
        body_x, body_y, body_z = (r[0], r[3], r[6]), (r[1], r[4], r[7]), (r[2], r[5], r[8])
        error_roll = 0.5 * (_dot(z_des, body_y) - _dot(y_des, body_z))
        error_pitch = 0.5 * (_dot(x_des, body_z) - _dot(z_des, body_x))
        error_yaw = 0.5 * (_dot(y_des, body_x) - _dot(x_des, body_y))

        # body-rate set-point (yaw-rate feed-forward expressed in the body frame) and rate loop
        rate_limit = gains.max_tilt_rate
        rate_des = (
            min(max(-gains.attitude_p_tilt * error_roll + yaw_rate_cmd * r[6], -rate_limit), rate_limit),
            min(max(-gains.attitude_p_tilt * error_pitch + yaw_rate_cmd * r[7], -rate_limit), rate_limit),
            -gains.attitude_p_yaw * error_yaw + yaw_rate_cmd * r[8],
        )
        wx, wy, wz = angular_velocity_world
        rate = (r[0] * wx + r[3] * wy + r[6] * wz, r[1] * wx + r[4] * wy + r[7] * wz, r[2] * wx + r[5] * wy + r[8] * wz)
        ixx, iyy, izz = params.inertia
        torque = (
            ixx * gains.rate_p_tilt * (rate_des[0] - rate[0]) + (izz - iyy) * rate[1] * rate[2],
            iyy * gains.rate_p_tilt * (rate_des[1] - rate[1]) + (ixx - izz) * rate[2] * rate[0],
            izz * gains.rate_p_yaw * (rate_des[2] - rate[2]) + (iyy - ixx) * rate[0] * rate[1],
        )
        collective = max(_dot(force, body_z), 0.0)
        return self.mix(collective, torque)

    def mix(self, collective_thrust: float, torque: Sequence[float]) -> Tuple[float, float, float, float]:
        """Rotor speeds (RPM) for a collective thrust (N) and body torques (Nm), within the motor range.

        Priorities when the motors saturate: roll/pitch torque is kept (scaled down only if it cannot fit
        at all) by shifting the collective thrust, yaw torque gets what headroom is left."""
        low, high = self._min_rotor_thrust, self._max_rotor_thrust
        base = min(max(collective_thrust / 4.0, low), high)
        # X layout (quadrotor.rotor_positions): roll/pitch torque adds +a/+b to rotors 0/1 and -a/-b to 2/3
        a = (torque[0] - torque[1]) * self._tilt_torque_to_thrust
        b = (torque[0] + torque[1]) * self._tilt_torque_to_thrust
        tilt = max(abs(a), abs(b))
        if tilt > (high - low) / 2.0:
            scale = (high - low) / (2.0 * tilt)
            a, b, tilt = a * scale, b * scale, tilt * scale
        if base + tilt > high:
            base = high - tilt
        elif base - tilt < low:
            base = low + tilt
        thrusts = (base + a, base + b, base - a, base - b)
        # yaw: rotors with ROTOR_YAW_SIGNS +1 (0, 2) get +c, the others -c, within the remaining headroom
        c = torque[2] * self._yaw_torque_to_thrust
        if c > 0.0:
            c = min(c, high - max(thrusts[0], thrusts[2]), min(thrusts[1], thrusts[3]) - low)
        elif c < 0.0:
            c = max(c, low - min(thrusts[0], thrusts[2]), max(thrusts[1], thrusts[3]) - high)
        c = c if c * torque[2] > 0.0 else 0.0
        kf = self.params.kf
        return (
            math.sqrt(max(thrusts[0] + c, 0.0) / kf),
            math.sqrt(max(thrusts[1] - c, 0.0) / kf),
            math.sqrt(max(thrusts[2] + c, 0.0) / kf),
            math.sqrt(max(thrusts[3] - c, 0.0) / kf),
        )

    def _integrate(self, errors: Tuple[float, float, float], dt: float, xy_saturated: bool, z_saturated: bool) -> None:
        """Integrate small velocity errors unless the output is saturated (anti-windup), within the limit."""
        gains, integral = self.gains, self._integral
        band = gains.integral_band
        if not xy_saturated and errors[0] * errors[0] + errors[1] * errors[1] < band * band:
            bound = gains.integral_limit / gains.velocity_i_xy
            integral[0] = min(max(integral[0] + errors[0] * dt, -bound), bound)
            integral[1] = min(max(integral[1] + errors[1] * dt, -bound), bound)
        if not z_saturated and abs(errors[2]) < band:
            bound = gains.integral_limit / gains.velocity_i_z
            integral[2] = min(max(integral[2] + errors[2] * dt, -bound), bound)

    def _advance_yaw_setpoint(self, yaw: float, yaw_rate: float, dt: float) -> float:
        setpoint = yaw if self._yaw_setpoint is None else self._yaw_setpoint + yaw_rate * dt
        lead = math.atan2(math.sin(setpoint - yaw), math.cos(setpoint - yaw))
        limit = self.gains.max_yaw_error
        self._yaw_setpoint = yaw + min(max(lead, -limit), limit)
        return self._yaw_setpoint


def _cross(a: Sequence[float], b: Sequence[float]) -> Tuple[float, float, float]:
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]


def _normalized(v: Sequence[float]) -> Tuple[float, float, float]:
    norm = math.sqrt(v[0] ** 2 + v[1] ** 2 + v[2] ** 2)
    return (v[0] / norm, v[1] / norm, v[2] / norm)
