"""``FlyToTargetEnv``: fly a quadrotor to the target of a sampled world scene from camera images.

Registered with gymnasium as ``LiquidNav/FlyToTarget-v0``; keyword arguments of ``gymnasium.make`` are
fields of :class:`EnvConfig`::

    env = gymnasium.make("LiquidNav/FlyToTarget-v0", world="urban", camera="small")

* Action: ``Box(4,)`` float32, the body-frame FLU velocity command (vx, vy, vz m/s, yaw rate rad/s),
  bounded by the vehicle's limits (commands beyond them are clamped by the flight controller).
* Observation: the onboard RGB image, ``Box(0, 255, (H, W, 3), uint8)``. With
  ``render_observations=False`` the env never renders and returns an all-zero image of the same shape:
  privileged-only rollouts (the expert, data statistics) then cost physics only.
* ``info``: see :data:`INFO_KEYS` and docs/architecture.md. ``info["time"]`` is the episode time of the
  frame (stamps come from it), ``info["dt"]`` the seconds since the previous frame (0.0 on reset).
* Frame timing (``EnvConfig.timing``, docs/simulator.md): ``None`` steps at exactly ``control_hz``; a
  :class:`FrameTiming` or preset name gives each step the interval a real camera would (jitter, drops,
  bursts, latency), deterministic per episode seed. ``control_period`` is the nominal period.
* Episode seed ``s`` -> scene ``sample_scene(world, s)``: layout from ``s // episodes_per_layout``,
  start and target from ``s``. ``reset(seed=s)`` flies seed ``s``; ``reset()`` draws the next seed from the
  env's generator; ``reset(options={"scene_seed": s})`` picks a scene without reseeding.
* Success: horizontal distance to the target centre <= ``success.radius``, speed <= ``success.max_speed``,
  altitude within ``success.altitude`` and the target centre inside the camera's field of view.
  Failures: ``collision`` (any contact), ``out_of_bounds`` (outside the world area or above its
  ``max_altitude``), ``timeout`` (episode time >= ``max_episode_seconds``; reported as truncation).
* Reward: metres of progress towards the target per step, +10 on success, -10 on a failure.
* Variants (evaluation conditions): ``world`` may be a :class:`WorldSpec` (e.g. ``dataclasses.replace`` of a
  loaded one), ``scene_edit`` changes every sampled scene, ``disturbance`` pushes the drone (wind).
"""
from __future__ import annotations

import math
import os
from collections import deque
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Deque, Dict, Optional, Protocol, Tuple, Union

import gymnasium as gym
import numpy as np

from liquid_nav.sim.backdrop import BackdropPainter, shaded_plane_rgb
from liquid_nav.sim.camera import CameraConfig, Lighting, OnboardCamera
from liquid_nav.sim.drone_sim import DroneSimulator, ForceField, SimConfig
from liquid_nav.sim.frame_timing import FrameClock, FrameTiming
from liquid_nav.sim.quadrotor import QuadState
from liquid_nav.sim.scene_builder import SceneBuilder, check_build_mode
from liquid_nav.sim.vehicle import VehicleParams
from liquid_nav.sim.worlds import Scene, WorldSpec, load_world, sample_scene

ENV_ID = "LiquidNav/FlyToTarget-v0"
INFO_KEYS = ("time", "dt", "position", "quaternion", "velocity_world", "velocity_body", "yaw", "target_position",
             "distance", "bearing", "collision", "outcome", "reason", "target_in_view", "scene_seed", "world")
OUTCOMES = ("success", "collision", "out_of_bounds", "timeout")


@dataclass(frozen=True)
class SuccessCriteria:
    """When an episode counts as reaching the target."""

    radius: float = 2.0  # m, horizontal distance from the drone to the target centre
    max_speed: float = 0.5  # m/s
    altitude: Tuple[float, float] = (0.4, 3.0)  # m above the ground
    require_target_in_view: bool = True

    def __post_init__(self) -> None:
        low, high = self.altitude
        if not (self.radius > 0 and self.max_speed > 0 and 0 <= low < high):
            raise ValueError(f"SuccessCriteria needs radius > 0, max_speed > 0 and altitude (low, high) with "
                             f"0 <= low < high, got {self}")


class Disturbance(Protocol):
    """An external force on the drone (wind), deterministic per episode seed."""

    def episode(self, seed: int, vehicle: VehicleParams) -> ForceField:
        """The world-frame force (N) of episode ``seed`` as a function of the seconds since its start."""


@dataclass(frozen=True)
class EnvConfig:
    """Everything a ``FlyToTargetEnv`` is built from."""

    world: Union[str, WorldSpec] = "forest"  # name in sim_worlds/, path to a world YAML file, or a WorldSpec
    camera: Union[str, CameraConfig] = "default"  # preset name ("default" 256x144, "small" 128x72) or config
    vehicle: str = "x500"
    control_hz: float = 30.0  # frame rate when timing is None (must divide physics_hz)
    physics_hz: int = 240
    max_episode_seconds: float = 30.0
    render_observations: bool = True  # False: privileged-only rollouts, observation is all zeros
    build_mode: str = "compound"  # "compound" (grouped static bodies) or "naive" (one body per primitive)
    success: SuccessCriteria = field(default_factory=SuccessCriteria)
    # None: frames exactly at control_hz. A FrameTiming or preset name ("jitter30", ...) overrides control_hz,
    # which must then be left at its default or equal the timing's rate_hz.
    timing: Union[None, str, FrameTiming] = None
    # Applied to every sampled scene (e.g. rotate the target); picklable when envs are built in worker processes.
    scene_edit: Optional[Callable[[Scene], Scene]] = None
    disturbance: Optional[Disturbance] = None  # None: still air

    def __post_init__(self) -> None:
        check_build_mode(self.build_mode, "EnvConfig.build_mode")
        if not isinstance(self.world, (str, os.PathLike, WorldSpec)):
            raise ValueError(f"EnvConfig.world must be a world name, a path or a WorldSpec, got {self.world!r}")
        if not (self.scene_edit is None or callable(self.scene_edit)):
            raise ValueError(f"EnvConfig.scene_edit must be None or a callable Scene -> Scene, got {self.scene_edit!r}")
        if not (self.disturbance is None or callable(getattr(self.disturbance, "episode", None))):
            raise ValueError(f"EnvConfig.disturbance must be None or have episode(seed, vehicle), got {self.disturbance!r}")
        if not self.max_episode_seconds > 0:
            raise ValueError(f"EnvConfig.max_episode_seconds must be > 0, got {self.max_episode_seconds!r}")
        if not isinstance(self.success, SuccessCriteria):
            raise ValueError(f"EnvConfig.success must be a SuccessCriteria, got {self.success!r}")
        if not isinstance(self.timing, (type(None), str, FrameTiming)):
            raise ValueError(f"EnvConfig.timing must be None, a preset name or a FrameTiming (for a YAML block: "
                             f"FrameTiming.from_yaml), got {self.timing!r}")
        try:
            timing = self.frame_timing()
        except ValueError as problem:
            raise ValueError(f"EnvConfig.timing: {problem}") from None
        if self.timing is not None and self.control_hz not in (_DEFAULT_CONTROL_HZ, timing.rate_hz):
            raise ValueError(f"EnvConfig.control_hz={self.control_hz} contradicts the timing's rate_hz="
                             f"{timing.rate_hz}; with a timing, set the rate there only")
        if not timing.rate_hz <= self.physics_hz:
            raise ValueError(f"EnvConfig.timing.rate_hz={timing.rate_hz} must be <= physics_hz={self.physics_hz}")

    def camera_config(self) -> CameraConfig:
        return self.camera if isinstance(self.camera, CameraConfig) else CameraConfig.preset(self.camera)

    def frame_timing(self) -> FrameTiming:
        """The frame timing the env steps with: ``timing`` resolved, or fixed at ``control_hz``."""
        if self.timing is None:
            return FrameTiming(rate_hz=self.control_hz)
        return self.timing if isinstance(self.timing, FrameTiming) else FrameTiming.preset(self.timing)


_DEFAULT_CONTROL_HZ = EnvConfig.control_hz


class FlyToTargetEnv(gym.Env):
    """Gymnasium env: body-frame velocity commands in, onboard camera images out (see module docs)."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 30}

    def __init__(self, config: Optional[EnvConfig] = None, render_mode: Optional[str] = None, **overrides: Any):
        known = {item.name for item in fields(EnvConfig)}
        unknown = sorted(set(overrides) - known)
        if unknown:
            raise TypeError(f"FlyToTargetEnv got unknown option(s) {unknown}; expected fields of EnvConfig {sorted(known)}")
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.config = replace(config or EnvConfig(), **overrides)
        self.timing = self.config.frame_timing()
        self.render_mode = render_mode
        world = self.config.world
        self.world: WorldSpec = world if isinstance(world, WorldSpec) else load_world(world)
        # Depth is always rendered: where it is empty (beyond the far plane) the env paints the sky colour.
        camera_config = replace(self.config.camera_config(), depth=True)
        self.sim = DroneSimulator(SimConfig(vehicle=self.config.vehicle, physics_hz=self.config.physics_hz,
                                            control_hz=self.config.control_hz, camera=camera_config))
        self._sky_rgb = np.round(np.asarray(self.world.sky.color) * 255).astype(np.uint8)
        self._painters: Dict[tuple, BackdropPainter] = {}  # per camera geometry and ground size
        light = self.world.light
        self.sim.lighting = Lighting(direction=light.direction, color=light.color, ambient=light.ambient,
                                     diffuse=light.diffuse, specular=light.specular)
        self.metadata = dict(self.metadata, render_fps=self.timing.rate_hz)
        self.builder = SceneBuilder(self.sim.client_id, self.world.ground.color + (1.0,), self.config.build_mode)
        limits = self.sim.vehicle
        high = np.array([limits.max_speed_xy, limits.max_speed_xy, limits.max_speed_z, limits.max_yaw_rate],
                        dtype=np.float32)
        self.action_space = gym.spaces.Box(-high, high, dtype=np.float32)
        camera = self.sim.camera.config
        self.observation_space = gym.spaces.Box(0, 255, (camera.height, camera.width, 3), dtype=np.uint8)
        self.scene: Optional[Scene] = None
        self._episode_start_step = 0
        self._clock: Optional[FrameClock] = None  # the episode's frame times, from reset()
        self._pending: Deque[Tuple[int, np.ndarray]] = deque()  # (physics step it takes effect, command)
        self._acting_command = np.zeros(4)
        self._last_distance = 0.0
        self._last_frame = np.zeros(self.observation_space.shape, dtype=np.uint8)
        self._done = True

    @property
    def camera(self):
        """The onboard camera (``intrinsics()`` for CameraInfo, ``config`` for its settings)."""
        return self.sim.camera

    @property
    def control_period(self) -> float:
        """The nominal frame period (s); the real one of each step is ``info["dt"]``."""
        return self.timing.period

    @property
    def episode_time(self) -> float:
        """Simulated seconds since the last reset (from whole physics steps, so exactly reproducible)."""
        return (self.sim.physics_steps - self._episode_start_step) / self.config.physics_hz

    def reset(self, *, seed: Optional[int] = None, options: Optional[Dict[str, Any]] = None):
        super().reset(seed=seed)
        if options and "scene_seed" in options:
            scene_seed = options["scene_seed"]  # sample_scene refuses anything but a non-negative integer
        elif seed is not None:
            scene_seed = seed
        else:
            scene_seed = int(self.np_random.integers(0, 2**31 - 1))
        self.scene = sample_scene(self.world, scene_seed)
        if self.config.scene_edit is not None:
            self.scene = self.config.scene_edit(self.scene)
        self.builder.load(self.scene)
        self.sim.reset_drone(self.scene.start_position, self.scene.start_yaw)
        disturbance = self.config.disturbance
        self.sim.external_force = None if disturbance is None else disturbance.episode(scene_seed, self.sim.vehicle)
        self._episode_start_step = self.sim.physics_steps
        self._clock = FrameClock(self.timing, self.config.physics_hz, scene_seed)
        self._pending.clear()
        self._acting_command = np.zeros(4)  # the drone starts hovering
        state = self.sim.state()
        info = self._info(state, self.target_in_view(state), collision=False, outcome=None, reason="", dt=0.0)
        self._last_distance = info["distance"]
        self._done = False
        return self._observe(), info

    def step(self, action):
        if self._done:
            raise RuntimeError("FlyToTargetEnv.step() called after the episode ended; call reset() first")
        command = np.asarray(action, dtype=np.float64).reshape(-1)
        if command.shape != (4,) or not np.isfinite(command).all():
            raise ValueError(f"action must be 4 finite numbers (vx, vy, vz, yaw_rate), got {action!r}")
        frame_time = self.episode_time
        collision = self._fly_until_next_frame(command)
        state = self.sim.state()
        in_view = self.target_in_view(state)
        outcome, reason = self._judge(state, in_view, collision)
        info = self._info(state, in_view, collision, outcome, reason, dt=self.episode_time - frame_time)
        reward = self._last_distance - info["distance"]
        self._last_distance = info["distance"]
        if outcome == "success":
            reward += 10.0
        elif outcome is not None:
            reward -= 10.0
        terminated = outcome in ("success", "collision", "out_of_bounds")
        truncated = outcome == "timeout"
        self._done = terminated or truncated
        return self._observe(), float(reward), terminated, truncated, info

    def render(self):
        """The last observation (``render_mode="rgb_array"``)."""
        return self._last_frame.copy() if self.render_mode == "rgb_array" else None

    def close(self):
        self.sim.close()

    # ------------------------------------------------------------------------------------------------
    def _fly_until_next_frame(self, command: np.ndarray) -> bool:
        """Fly until the next delivered frame; ``command`` takes effect after the timing's latency, the
        previous one acts until then. Returns whether the drone touched anything on the way."""
        sim = self.sim
        now = sim.physics_steps
        frame_step = now + self._clock.next_frame()
        self._pending.append((now + self._clock.latency_steps, command))
        collision = False
        while True:
            while self._pending and self._pending[0][0] <= now:
                self._acting_command = self._pending.popleft()[1]
            if now >= frame_step:
                return collision
            until = min(frame_step, self._pending[0][0]) if self._pending else frame_step
            sim.advance(self._acting_command, (until - now) / self.config.physics_hz)
            collision = collision or sim.contacts()
            now = sim.physics_steps

    def _observe(self) -> np.ndarray:
        if self.config.render_observations:
            self._last_frame = self.render_camera()
        return self._last_frame.copy()

    def render_camera(self, camera: Optional[OnboardCamera] = None) -> np.ndarray:
        """The onboard view now: cull what the camera cannot see, render, paint the sky where nothing is.

        With the compound build and no shadows the ground is not rasterised either: it is painted in its
        shaded colour where pixel rays meet it and nothing nearer was drawn (``liquid_nav.sim.backdrop``;
        the same image at a fraction of the cost). ``camera`` (default: the env's) must render depth.
        """
        camera = camera or self.sim.camera
        config = camera.config
        if not config.depth:
            raise ValueError("render_camera needs a camera with depth=True (the sky is painted where depth is empty)")
        key = (config.width, config.height, config.fov_deg, config.near, config.far, self.builder.ground_half_size)
        painter = self._painters.get(key)
        if painter is None:
            painter = BackdropPainter(config, camera.intrinsics(), self._sky_rgb, self.builder.ground_half_size)
            self._painters[key] = painter
        state = self.sim.state()
        pose = camera.pose(state)
        self.builder.cull(pose)
        paint_ground = self.builder.mode == "compound" and not config.shadows
        self.builder.show_ground(not paint_ground)
        rgba, z_buffer = camera.render_buffers(self.sim.client_id, pose, self.sim.lighting)
        ground_rgb = shaded_plane_rgb(self.builder.ground_rgba, self.sim.lighting) if paint_ground else None
        painter.paint(rgba, z_buffer >= camera.z_buffer_at(config.far * 0.999), pose, ground_rgb)
        return rgba[:, :, :3].copy()

    def target_in_view(self, state: QuadState) -> bool:
        """Whether the target's centre lies in the camera's view frustum: inside the image and between the
        clip planes (occlusion not considered)."""
        pose = self.sim.camera.pose(state)  # scalar version of CameraPose.sees_sphere: 4x cheaper per step
        offset = np.asarray(self.scene.target_position) - pose.eye
        along = float(offset @ pose.forward)
        if not pose.near < along <= pose.far:
            return False
        right = np.cross(pose.forward, pose.up)
        horizontal = abs(float(offset @ right)) / along
        vertical = abs(float(offset @ pose.up)) / along
        return (horizontal <= math.tan(math.radians(pose.horizontal_fov_deg) / 2)
                and vertical <= math.tan(math.radians(pose.vertical_fov_deg) / 2))

    def _judge(self, state: QuadState, in_view: bool, collision: bool) -> Tuple[Optional[str], str]:
        x, y, z = state.position.tolist()
        if collision:
            return "collision", f"contact at ({x:.1f}, {y:.1f}, {z:.1f})"
        half = self.world.half_size
        if abs(x) > half or abs(y) > half or z > self.world.max_altitude:
            return "out_of_bounds", f"left the area at ({x:.1f}, {y:.1f}, {z:.1f}) (half size {half}, " \
                                    f"max altitude {self.world.max_altitude})"
        criteria = self.config.success
        target = self.scene.target_position
        distance = math.hypot(target[0] - x, target[1] - y)
        speed = float(np.linalg.norm(state.velocity_world))
        if (distance <= criteria.radius and speed <= criteria.max_speed
                and criteria.altitude[0] <= z <= criteria.altitude[1]
                and (not criteria.require_target_in_view or in_view)):
            return "success", f"reached the target: {distance:.2f} m away at {speed:.2f} m/s"
        elapsed = self.episode_time
        if elapsed >= self.config.max_episode_seconds - 1e-9:
            return "timeout", f"{elapsed:.1f} s elapsed, {distance:.1f} m from the target"
        return None, ""

    def _info(self, state: QuadState, in_view: bool, collision: bool, outcome: Optional[str], reason: str,
              dt: float) -> Dict[str, Any]:
        target = np.asarray(self.scene.target_position, dtype=np.float64)
        delta = target[:2] - state.position[:2]
        bearing = math.atan2(delta[1], delta[0]) - state.yaw
        return {
            "time": self.episode_time,
            "dt": dt,
            "position": state.position,  # the state's arrays are fresh per query: no copies needed
            "quaternion": state.quaternion,
            "velocity_world": state.velocity_world,
            "velocity_body": state.velocity_body,
            "yaw": float(state.yaw),
            "target_position": target,
            "distance": float(np.hypot(delta[0], delta[1])),
            "bearing": float(math.atan2(math.sin(bearing), math.cos(bearing))),
            "collision": bool(collision),
            "outcome": outcome,
            "reason": reason,
            "target_in_view": in_view,
            "scene_seed": self.scene.seed,
            "world": self.world.name,
        }


def register() -> None:
    """Register ``LiquidNav/FlyToTarget-v0`` with gymnasium (idempotent)."""
    if ENV_ID not in gym.registry:
        gym.register(id=ENV_ID, entry_point="liquid_nav.sim.env:FlyToTargetEnv", disable_env_checker=False)


register()
