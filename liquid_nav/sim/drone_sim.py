"""The drone simulator: one PyBullet DIRECT client with one quadrotor, its velocity controller and camera.

Scene content (ground, obstacles, target) is added by the caller into ``sim.client_id``. Rates: physics at
``physics_hz``; the flight controller (whole cascade) at ``flight_controller_hz``, which also samples the
velocity and height that drag and ground effect use until its next update; commands (and typically camera
frames) at ``control_hz`` -- ``advance()`` without a duration runs exactly one control period.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable, Optional, Sequence, Set

import pybullet as p

from liquid_nav.sim.camera import CameraConfig, CameraFrame, Lighting, OnboardCamera
from liquid_nav.sim.flight_controller import ControllerGains, VelocityController
from liquid_nav.sim.quadrotor import Quadrotor, QuadState
from liquid_nav.sim.vehicle import STANDARD_GRAVITY, VehicleParams, load_vehicle

ForceField = Callable[[float], Sequence[float]]
"""A world-frame force (N) on the drone's centre of mass as a function of the seconds since ``reset_drone``."""


@dataclass(frozen=True)
class SimConfig:
    """Simulator settings. ``physics_hz`` must be an integer multiple of ``control_hz`` and of
    ``flight_controller_hz``. ``vehicle`` is a preset name or a path to a vehicle YAML file."""

    vehicle: str = "x500"
    physics_hz: int = 240
    control_hz: float = 30.0
    flight_controller_hz: float = 120.0
    camera: CameraConfig = field(default_factory=CameraConfig)
    ground_effect: bool = False
    ground_height: float = 0.0  # m, height of the ground plane used by the ground-effect model
    gains: Optional[ControllerGains] = None  # None: ControllerGains() defaults

    def __post_init__(self) -> None:
        if not self.physics_hz > 0:
            raise ValueError(f"SimConfig.physics_hz must be > 0, got {self.physics_hz}")
        if not isinstance(self.camera, CameraConfig):
            raise ValueError(
                f"SimConfig.camera must be a CameraConfig (e.g. CameraConfig.preset('small')), got {self.camera!r}"
            )
        for name in ("control_hz", "flight_controller_hz"):
            rate = getattr(self, name)
            if not rate > 0:
                raise ValueError(f"SimConfig.{name} must be > 0, got {rate}")
            steps = self.physics_hz / rate
            if abs(steps - round(steps)) > 1e-9 or round(steps) < 1:
                raise ValueError(
                    f"SimConfig.{name}={rate} must divide physics_hz={self.physics_hz} into a whole number of steps"
                )


class DroneSimulator:
    """Owns a DIRECT PyBullet client (``client_id``) holding one quadrotor; use as a context manager or
    call ``close()``."""

    def __init__(self, config: Optional[SimConfig] = None) -> None:
        self.config = config or SimConfig()
        self.vehicle: VehicleParams = load_vehicle(self.config.vehicle)
        self.client_id = p.connect(p.DIRECT)
        self._closed = False
        physics_dt = 1.0 / self.config.physics_hz
        p.setGravity(0.0, 0.0, -STANDARD_GRAVITY, physicsClientId=self.client_id)
        p.setTimeStep(physics_dt, physicsClientId=self.client_id)
        p.setPhysicsEngineParameter(deterministicOverlappingPairs=1, physicsClientId=self.client_id)
        self.quadrotor = Quadrotor(
            self.client_id,
            self.vehicle,
            physics_dt,
            ground_effect=self.config.ground_effect,
            ground_height=self.config.ground_height,
        )
        self.controller = VelocityController(self.vehicle, self.config.gains)
        camera_config = self.config.camera
        if camera_config.offset is None:
            camera_config = replace(camera_config, offset=self.vehicle.camera_mount)
        self.camera = OnboardCamera(camera_config)
        self.lighting = Lighting()  # the scene's light for render(); a scene builder sets it from its world
        self.external_force: Optional[ForceField] = None  # e.g. wind; evaluated and applied every physics step
        self._steps_per_control = round(self.config.physics_hz / self.config.control_hz)
        self._steps_per_update = round(self.config.physics_hz / self.config.flight_controller_hz)
        self._update_dt = self._steps_per_update * physics_dt
        self._step_count = 0
        self.reset_drone((0.0, 0.0, 1.0), 0.0)

    @property
    def drone_id(self) -> int:
        """PyBullet body id of the drone."""
        return self.quadrotor.body_id

    @property
    def time(self) -> float:
        """Simulated seconds since the simulator was created (monotonic; not reset by ``reset_drone``)."""
        return self._step_count / self.config.physics_hz

    @property
    def physics_steps(self) -> int:
        """Physics steps run since the simulator was created."""
        return self._step_count

    def reset_drone(self, position: Sequence[float], yaw: float = 0.0) -> None:
        """Put the drone at rest, hovering, at ``position`` (m) with heading ``yaw`` (rad); reset the controller."""
        values = [float(v) for v in position]
        if len(values) != 3 or not all(math.isfinite(v) for v in values + [float(yaw)]):
            raise ValueError(f"reset_drone needs a finite 3D position and yaw, got position={position!r}, yaw={yaw!r}")
        self.quadrotor.reset(values, yaw)
        self.controller.reset()
        self._rotor_command = (self.vehicle.hover_rpm,) * 4
        self._sampled_velocity_body = (0.0, 0.0, 0.0)  # drag / ground-effect inputs, refreshed with the controller
        self._sampled_height = values[2]
        self._steps_until_update = 0
        self._touched_bodies: Set[int] = set()
        self._reset_step = self._step_count

    def advance(self, command_flu: Sequence[float], duration: Optional[float] = None) -> None:
        """Fly ``command_flu`` = (vx fwd, vy left, vz up m/s, yaw_rate CCW rad/s) for one control period or
        ``duration`` seconds (rounded to whole physics steps, at least one). Commands beyond the vehicle's
        limits are clamped; NaN raises ``ValueError``."""
        command = self.controller.clamp_command(command_flu)
        if duration is None:
            steps = self._steps_per_control
        else:
            if not duration > 0:
                raise ValueError(f"advance duration must be > 0 seconds, got {duration!r}")
            steps = max(1, round(duration * self.config.physics_hz))
        client, quadrotor, controller = self.client_id, self.quadrotor, self.controller
        drone, touched = quadrotor.body_id, self._touched_bodies
        external_force, first_step = self.external_force, self._step_count - self._reset_step
        touched.clear()
        for step in range(steps):
            if self._steps_until_update == 0:
                kinematics = quadrotor.kinematics()
                self._rotor_command = controller.control(
                    kinematics.rotation,
                    kinematics.velocity_world,
                    kinematics.angular_velocity_world,
                    command,
                    self._update_dt,
                )
                self._sampled_velocity_body = kinematics.velocity_body
                self._sampled_height = kinematics.position[2]
                self._steps_until_update = self._steps_per_update
            self._steps_until_update -= 1
            quadrotor.apply_rotor_speeds(self._rotor_command, self._sampled_velocity_body, self._sampled_height)
            if external_force is not None:
                quadrotor.apply_world_force(external_force((first_step + step) / self.config.physics_hz))
            p.stepSimulation(physicsClientId=client)
            contact_points = p.getContactPoints(bodyA=drone, physicsClientId=client)
            if contact_points:
                touched.update(point[2] for point in contact_points)
        self._step_count += steps

    def state(self) -> QuadState:
        return self.quadrotor.state()

    def render(self) -> CameraFrame:
        """The onboard camera's view now, lit by ``self.lighting``."""
        return self.camera.render(self.client_id, self.quadrotor.state(), self.lighting)

    def contacts(self, body_ids: Optional[Iterable[int]] = None) -> bool:
        """Whether the drone touched any other body (or one of ``body_ids``) during the last ``advance()``
        (checked after every physics step, so brief bounces count)."""
        if body_ids is None:
            return bool(self._touched_bodies)
        return not self._touched_bodies.isdisjoint(body_ids)

    def close(self) -> None:
        if not self._closed:
            p.disconnect(physicsClientId=self.client_id)
            self._closed = True

    def __enter__(self) -> "DroneSimulator":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
