"""Concrete scenes sampled from a world: static primitives, their flight-level footprints, the layout
shared by consecutive episodes and the per-episode :class:`Scene` (start pose and target)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from liquid_nav.sim.worlds.spec import SkySpec, StreetGrid
from liquid_nav.validation import Range

# Obstacles whose vertical extent reaches into this band block the drone's flight level.
FLIGHT_BAND: Range = (0.5, 3.0)


@dataclass(frozen=True)
class Primitive:
    """One static primitive in world coordinates.

    ``half_extents`` is the box half size; for cylinders and cones (radius, radius, half height);
    for spheres (radius, radius, radius). ``position`` is the centre.
    """

    shape: str
    position: Tuple[float, float, float]
    half_extents: Tuple[float, float, float]
    yaw: float
    rgba: Tuple[float, float, float, float]
    collision: bool = True


@dataclass(frozen=True, eq=False)
class Footprints:
    """The planar shapes of the obstacles at flight level, for clearance queries and planning."""

    circles: np.ndarray  # (N, 3): x, y, radius
    boxes: np.ndarray  # (M, 5): x, y, half_x, half_y, yaw

    def distance(self, points: np.ndarray) -> np.ndarray:
        """Signed distance (m) from each of ``points`` (K, 2) to the nearest obstacle edge (< 0 inside)."""
        points = np.atleast_2d(np.asarray(points, dtype=np.float64))
        best = np.full(len(points), np.inf)
        # chunks of points bound the (chunk, obstacles) temporaries (a planning grid has ~10^4 points)
        for start in range(0, len(points), _DISTANCE_CHUNK):
            best[start:start + _DISTANCE_CHUNK] = self._distance(points[start:start + _DISTANCE_CHUNK])
        return best

    def _distance(self, points: np.ndarray) -> np.ndarray:
        px, py = points[:, 0:1], points[:, 1:2]
        best = np.full(len(points), np.inf)
        if len(self.circles):
            circles = self.circles
            gaps = np.hypot(px - circles[:, 0], py - circles[:, 1]) - circles[:, 2]
            best = np.minimum(best, gaps.min(axis=1))
        if len(self.boxes):
            boxes = self.boxes
            dx, dy = px - boxes[:, 0], py - boxes[:, 1]
            cos, sin = np.cos(boxes[:, 4]), np.sin(boxes[:, 4])
            local_x = np.abs(dx * cos + dy * sin) - boxes[:, 2]
            local_y = np.abs(dy * cos - dx * sin) - boxes[:, 3]
            outside = np.hypot(np.maximum(local_x, 0.0), np.maximum(local_y, 0.0))
            inside = np.minimum(np.maximum(local_x, local_y), 0.0)
            best = np.minimum(best, (outside + inside).min(axis=1))
        return best


_DISTANCE_CHUNK = 1024


@dataclass(frozen=True)
class Layout:
    """The static part of a scene: everything but the drone and the target."""

    world: str
    layout_seed: int
    half_size: float
    primitives: Tuple[Primitive, ...]
    footprints: Footprints
    sky: SkySpec
    streets: Optional[StreetGrid]


@dataclass(frozen=True)
class Scene:
    """One concrete episode scene: a layout plus the start pose and the target placement."""

    seed: int
    layout: Layout
    start_position: Tuple[float, float, float]
    start_yaw: float
    target_position: Tuple[float, float, float]  # centre of the target's bounding box
    target_yaw: float
    target_parts: Tuple[Primitive, ...]  # in world coordinates
    target_radius: float  # horizontal radius of the target's bounding circle
