"""Onboard camera: forward-looking, body-fixed with a configurable pitch, rendered with PyBullet's TinyRenderer.

Conventions: the camera looks along body +x rotated by ``pitch_deg`` about body y (positive = up) -- or,
with ``stabilized``, along the heading (yaw only) as on a gimbal; image
rows go top to bottom, columns left to right. ``fov_deg`` is the vertical field of view; the horizontal one
follows from the aspect ratio width/height (square pixels). Depth is metric z-depth along the optical axis
(not range), in metres, clipped to ``[near, far]``. Intrinsics use the pixel-centre convention of ROS
``CameraInfo`` (pixel (u, v) covers [u - 0.5, u + 0.5]); TinyRenderer's rasteriser puts the optical axis at
(width / 2, height / 2 - 1) in that convention (measured, and checked by tests/sim_core), not at the ideal
((width - 1) / 2, (height - 1) / 2), so that is what ``intrinsics()`` reports.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
import pybullet as p

from liquid_nav.sim.quadrotor import QuadState
from liquid_nav.validation import is_number, is_number_list

Vector3 = Tuple[float, float, float]


@dataclass(frozen=True)
class CameraConfig:
    """Onboard camera settings. ``offset`` is the body-frame mount position; ``None`` lets the simulator
    use the vehicle's ``camera_mount``."""

    width: int = 256
    height: int = 144
    fov_deg: float = 50.0  # vertical; horizontal = 2 atan(tan(fov/2) * width/height) ~ 78.6 deg at 16:9
    pitch_deg: float = 0.0
    near: float = 0.05
    far: float = 100.0
    offset: Optional[Vector3] = None
    depth: bool = False
    shadows: bool = False
    stabilized: bool = False  # True: roll and pitch held level like a gimbal, the camera follows yaw only

    @staticmethod
    def preset(name: str) -> "CameraConfig":
        """``default`` (256x144, the published system's input) or ``small`` (128x72, faster)."""
        presets = {"default": CameraConfig(), "small": CameraConfig(width=128, height=72)}
        if name not in presets:
            raise ValueError(f"unknown camera preset {name!r}; expected one of {sorted(presets)}")
        return presets[name]

    def __post_init__(self) -> None:
        if not (isinstance(self.width, int) and isinstance(self.height, int)) or self.width < 1 or self.height < 1:
            raise ValueError(f"camera width and height must be positive integers, got {self.width}x{self.height}")
        if not 0.0 < self.fov_deg < 180.0:
            raise ValueError(f"camera fov_deg (vertical) must be in (0, 180), got {self.fov_deg}")
        if not 0.0 < self.near < self.far < math.inf:
            raise ValueError(f"camera clip planes must satisfy 0 < near < far, far finite, got near={self.near}, "
                             f"far={self.far}")
        if not -90.0 <= self.pitch_deg <= 90.0:
            raise ValueError(f"camera pitch_deg must be in [-90, 90], got {self.pitch_deg}")
        if self.offset is not None and (len(self.offset) != 3 or not all(math.isfinite(v) for v in self.offset)):
            raise ValueError(f"camera offset must be None or 3 finite numbers (body frame, m), got {self.offset!r}")

    @property
    def aspect(self) -> float:
        return self.width / self.height

    @property
    def horizontal_fov_deg(self) -> float:
        return math.degrees(2.0 * math.atan(math.tan(math.radians(self.fov_deg) / 2.0) * self.aspect))


@dataclass(frozen=True)
class Lighting:
    """The scene's directional light as TinyRenderer models it (part of a world, not of the camera)."""

    direction: Vector3 = (0.4, 0.3, 1.0)  # towards the light, world frame (need not be unit length)
    color: Vector3 = (1.0, 1.0, 1.0)  # RGB in [0, 1]
    ambient: float = 0.6
    diffuse: float = 0.35
    specular: float = 0.05

    def __post_init__(self) -> None:
        if not is_number_list(self.direction, 3) or not any(self.direction):
            raise ValueError(f"Lighting.direction must be a finite non-zero 3-vector, got {self.direction!r}")
        if len(self.color) != 3 or not all(0.0 <= c <= 1.0 for c in self.color):
            raise ValueError(f"Lighting.color must be 3 numbers in [0, 1], got {self.color!r}")
        for name in ("ambient", "diffuse", "specular"):
            value = getattr(self, name)
            if not (is_number(value) and value >= 0.0):
                raise ValueError(f"Lighting.{name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class CameraFrame:
    rgb: np.ndarray  # (H, W, 3) uint8
    depth: Optional[np.ndarray]  # (H, W) float32 metres, or None when depth is off


@dataclass(frozen=True)
class CameraPose:
    """Where the camera is and what it sees (world frame), e.g. for culling scene bodies."""

    eye: np.ndarray  # (3,)
    forward: np.ndarray  # (3,) unit optical axis
    up: np.ndarray  # (3,) unit image-up direction
    horizontal_fov_deg: float
    vertical_fov_deg: float
    near: float
    far: float

    def sees_sphere(self, center: np.ndarray, radius: float) -> bool:
        """Conservative test: False only if a sphere is certainly outside the view frustum."""
        return bool(self.sees_spheres(np.reshape(center, (1, 3)), np.array([radius]))[0])

    def sees_spheres(self, centers: np.ndarray, radii: np.ndarray) -> np.ndarray:
        """:meth:`sees_sphere` for many spheres at once: ``centers`` (N, 3), ``radii`` (N,) -> bool (N,)."""
        offsets = np.asarray(centers, dtype=np.float64) - self.eye
        radii = np.asarray(radii, dtype=np.float64)
        along = offsets @ self.forward
        visible = (along >= self.near - radii) & (along <= self.far + radii)
        right = np.cross(self.forward, self.up)
        for half_fov, axis in ((self.horizontal_fov_deg / 2.0, right), (self.vertical_fov_deg / 2.0, self.up)):
            half = math.radians(half_fov)
            # signed distance to each side plane of the frustum (normals pointing inwards)
            visible &= along * math.sin(half) - np.abs(offsets @ axis) * math.cos(half) >= -radii
        return visible


_DEFAULT_LIGHTING = Lighting()


class OnboardCamera:
    """Renders what a camera mounted on the drone sees."""

    def __init__(self, config: CameraConfig) -> None:
        self.config = config
        self._offset = np.array((0.0, 0.0, 0.0) if config.offset is None else config.offset, dtype=np.float64)
        pitch = math.radians(config.pitch_deg)
        self._forward_body = (math.cos(pitch), 0.0, math.sin(pitch))
        self._up_body = (-math.sin(pitch), 0.0, math.cos(pitch))
        self._projection = p.computeProjectionMatrixFOV(config.fov_deg, config.aspect, config.near, config.far)
        self._renderer = p.ER_TINY_RENDERER

    def intrinsics(self) -> Tuple[float, float, float, float]:
        """(fx, fy, cx, cy) in pixels of the pinhole model the renderer uses (square pixels)."""
        config = self.config
        fy = (config.height / 2.0) / math.tan(math.radians(config.fov_deg) / 2.0)
        return fy, fy, config.width / 2.0, config.height / 2.0 - 1.0

    def pose(self, state: QuadState) -> CameraPose:
        """The camera's world pose for a drone state (the mount point always moves with the body)."""
        rotation = state.rotation_matrix()
        eye = state.position + rotation @ self._offset
        if self.config.stabilized:
            yaw = math.atan2(rotation[1, 0], rotation[0, 0])
            cos_yaw, sin_yaw = math.cos(yaw), math.sin(yaw)
            rotation = np.array([[cos_yaw, -sin_yaw, 0.0], [sin_yaw, cos_yaw, 0.0], [0.0, 0.0, 1.0]])
        return CameraPose(
            eye=eye,
            forward=rotation @ np.array(self._forward_body),
            up=rotation @ np.array(self._up_body),
            horizontal_fov_deg=self.config.horizontal_fov_deg,
            vertical_fov_deg=self.config.fov_deg,
            near=self.config.near,
            far=self.config.far,
        )

    def render(self, client_id: int, state: QuadState, lighting: Optional[Lighting] = None) -> CameraFrame:
        """Render the view from ``state`` in the client's scene, lit by ``lighting`` (default ``Lighting()``)."""
        rgba, z_buffer = self.render_buffers(client_id, self.pose(state), lighting)
        depth = self.metric_depth(z_buffer) if self.config.depth else None
        return CameraFrame(rgb=rgba[:, :, :3].copy(), depth=depth)

    def render_buffers(self, client_id: int, pose: CameraPose, lighting: Optional[Lighting] = None
                       ) -> Tuple[np.ndarray, np.ndarray]:
        """The renderer's raw output for the camera at ``pose``: RGBA uint8 (H, W, 4) and the non-linear
        z-buffer float32 (H, W) in [0, 1] (1: nothing drawn; :meth:`metric_depth` converts it)."""
        config = self.config
        lighting = lighting or _DEFAULT_LIGHTING
        view = p.computeViewMatrix(pose.eye.tolist(), (pose.eye + pose.forward).tolist(), pose.up.tolist())
        _, _, rgba, z_buffer, _ = p.getCameraImage(
            config.width,
            config.height,
            viewMatrix=view,
            projectionMatrix=self._projection,
            renderer=self._renderer,
            shadow=int(config.shadows),
            lightDirection=list(lighting.direction),
            lightColor=list(lighting.color),
            lightAmbientCoeff=lighting.ambient,
            lightDiffuseCoeff=lighting.diffuse,
            lightSpecularCoeff=lighting.specular,
            flags=p.ER_NO_SEGMENTATION_MASK,
            physicsClientId=client_id,
        )
        rgba = np.reshape(np.asarray(rgba, dtype=np.uint8), (config.height, config.width, 4))
        return rgba, np.reshape(np.asarray(z_buffer, dtype=np.float32), (config.height, config.width))

    def metric_depth(self, z_buffer: np.ndarray) -> np.ndarray:
        """Metric z-depth (m, float32) of a z-buffer from :meth:`render_buffers`."""
        near, far = self.config.near, self.config.far
        return (far * near / (far - (far - near) * z_buffer)).astype(np.float32)

    def z_buffer_at(self, depth: float) -> float:
        """The z-buffer value of metric z-depth ``depth`` (inverse of :meth:`metric_depth`)."""
        near, far = self.config.near, self.config.far
        return (far - far * near / depth) / (far - near)
