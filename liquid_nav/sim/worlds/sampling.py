"""Seeded sampling of concrete scenes from a :class:`~liquid_nav.sim.worlds.spec.WorldSpec`.

:func:`sample_scene` turns a spec and an episode seed into a :class:`~liquid_nav.sim.worlds.scene.Scene`:

* the static **layout** (ground, sky backdrop, obstacles) depends only on the *layout seed*
  ``seed // spec.episodes_per_layout``, so consecutive episode seeds share one built layout and the
  simulator only moves the drone and the target between them;
* the **start pose and target placement** depend on the full episode seed.
"""
from __future__ import annotations

import math
import numbers
from functools import lru_cache
from typing import List, Optional, Sequence, Tuple

import numpy as np

from liquid_nav.sim.worlds.scene import FLIGHT_BAND, Footprints, Layout, Primitive, Scene
from liquid_nav.sim.worlds.spec import Color, PartSpec, StreetGrid, TargetSpec, WorldFileError, WorldSpec
from liquid_nav.validation import Range


def layout_seed_for(spec: WorldSpec, seed: int) -> int:
    """The layout seed an episode seed maps to (``episodes_per_layout`` consecutive seeds share it)."""
    return int(seed) // spec.episodes_per_layout


def _pick(rng: np.random.Generator, colors: Sequence[Color]) -> Tuple[float, float, float, float]:
    return tuple(colors[int(rng.integers(len(colors)))]) + (1.0,)  # type: ignore[return-value]


def _uniform(rng: np.random.Generator, bounds: Range) -> float:
    return float(rng.uniform(bounds[0], bounds[1])) if bounds[1] > bounds[0] else float(bounds[0])


def _street_lines(grid: StreetGrid, half_size: float) -> np.ndarray:
    """Centre coordinates of the streets (same along x and y): a street through the origin, then every pitch."""
    pitch = grid.block_size + grid.street_width
    count = int(half_size // pitch) + 1
    return np.arange(-count, count + 1) * pitch


def _street_offsets(grid: StreetGrid, half_size: float, points: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """For each point (K, 2): distance along x to the nearest street running along y, and along y to the
    nearest street running along x."""
    lines = _street_lines(grid, half_size)
    dx = np.abs(points[:, 0:1] - lines[None, :]).min(axis=1)
    dy = np.abs(points[:, 1:2] - lines[None, :]).min(axis=1)
    return dx, dy


def _street_distance(grid: StreetGrid, half_size: float, points: np.ndarray) -> np.ndarray:
    """Distance of each point (K, 2) to the nearest street centre line (either axis)."""
    return np.minimum(*_street_offsets(grid, half_size, points))


def _placement_ok(grid: Optional[StreetGrid], half_size: float, placement: str, point: np.ndarray) -> bool:
    if placement == "anywhere" or grid is None:
        return True
    offset = float(_street_distance(grid, half_size, point[None])[0])
    road_half = grid.street_width / 2
    if placement == "streets":
        return offset < road_half - 1.0
    if placement == "curbside":
        return road_half - 2.2 < offset < road_half - 1.1
    return road_half + 0.3 < offset < road_half + grid.sidewalk_width - 0.3  # sidewalks


def _street_yaw(grid: StreetGrid, half_size: float, point: np.ndarray) -> float:
    """Yaw of the street a point lies on (0 along x, pi/2 along y)."""
    dx, dy = _street_offsets(grid, half_size, point[None])
    return math.pi / 2 if dx[0] < dy[0] else 0.0


def _add_part(out: List[Primitive], part: PartSpec, origin: np.ndarray, yaw: float, scale: float,
              rgba: Tuple[float, float, float, float]) -> None:
    cos, sin = math.cos(yaw), math.sin(yaw)
    ox, oy, oz = (v * scale for v in part.offset)
    size = tuple(v * scale for v in part.size)
    half = (size[0] / 2, size[1] / 2, size[2] / 2)
    center = (origin[0] + ox * cos - oy * sin, origin[1] + ox * sin + oy * cos, oz + half[2])
    out.append(Primitive(part.shape, center, half, yaw, rgba, part.collision))


def _footprints(primitives: Sequence[Primitive]) -> Footprints:
    circles, boxes = [], []
    for prim in primitives:
        bottom, top = prim.position[2] - prim.half_extents[2], prim.position[2] + prim.half_extents[2]
        if not prim.collision or top < FLIGHT_BAND[0] or bottom > FLIGHT_BAND[1]:
            continue
        if prim.shape == "box":
            boxes.append((prim.position[0], prim.position[1], prim.half_extents[0], prim.half_extents[1], prim.yaw))
        else:
            circles.append((prim.position[0], prim.position[1], max(prim.half_extents[0], prim.half_extents[1])))
    return Footprints(np.asarray(circles, dtype=np.float64).reshape(-1, 3),
                      np.asarray(boxes, dtype=np.float64).reshape(-1, 5))


def _sample_streets(grid: StreetGrid, half_size: float, rng: np.random.Generator, out: List[Primitive]) -> None:
    """Roads and sidewalks as flat slabs, then buildings with roofs and window bands on each block."""
    extent = half_size
    lines = _street_lines(grid, half_size)
    thin = 0.02
    for line in lines[np.abs(lines) < extent]:
        for axis in (0, 1):
            road_half = (extent, grid.street_width / 2, thin) if axis == 0 else (grid.street_width / 2, extent, thin)
            center = (0.0, float(line), thin) if axis == 0 else (float(line), 0.0, thin)
            out.append(Primitive("box", center, road_half, 0.0, grid.road_color + (1.0,), collision=False))
    pitch = grid.block_size + grid.street_width
    for bx in lines[:-1] + pitch / 2:
        for by in lines[:-1] + pitch / 2:
            half_block = grid.block_size / 2
            if abs(bx) - half_block > extent - 1.0 or abs(by) - half_block > extent - 1.0:
                continue
            out.append(Primitive("box", (float(bx), float(by), 0.075), (half_block, half_block, 0.075), 0.0,
                                 grid.sidewalk_color + (1.0,)))
            inner = half_block - grid.sidewalk_width
            count = int(rng.integers(grid.buildings_per_block[0], grid.buildings_per_block[1] + 1))
            cells = [(0.0, 0.0, inner, inner)] if count == 1 else _split_block(inner, count)
            for cx, cy, hx, hy in cells:
                fx, fy = _uniform(rng, grid.building_footprint), _uniform(rng, grid.building_footprint)
                half = (hx * fx, hy * fy, _uniform(rng, grid.building_height) / 2)
                center = (float(bx + cx), float(by + cy), half[2])
                out.append(Primitive("box", center, half, 0.0, _pick(rng, grid.facade_colors)))
                out.append(Primitive("box", (center[0], center[1], 2 * half[2] + 0.15),
                                     (half[0] + 0.2, half[1] + 0.2, 0.15), 0.0, _pick(rng, grid.roof_colors)))
                rows = int(2 * half[2] * grid.window_rows_per_meter)
                for row in range(rows):
                    z = 2.0 + row / grid.window_rows_per_meter
                    if z + 0.8 > 2 * half[2]:
                        break
                    out.append(Primitive("box", (center[0], center[1], z), (half[0] + 0.03, half[1] + 0.03, 0.45),
                                         0.0, grid.window_color + (1.0,), collision=False))


def _split_block(inner: float, count: int) -> List[Tuple[float, float, float, float]]:
    """Split a square block interior into 2 (halves) or 3-4 (quarters) building lots (cx, cy, hx, hy)."""
    if count == 2:
        return [(-inner / 2, 0.0, inner / 2, inner), (inner / 2, 0.0, inner / 2, inner)]
    quarters = [(sx * inner / 2, sy * inner / 2, inner / 2, inner / 2) for sx in (-1, 1) for sy in (-1, 1)]
    return quarters[:count]


def _scatter_points(rng: np.random.Generator, count: int, half_size: float, min_spacing: float,
                    accept, existing: List[Tuple[float, float, float]], radius: float) -> List[np.ndarray]:
    """Rejection-sample ``count`` points (bounded attempts) spaced from each other and from ``existing``."""
    points: List[np.ndarray] = []
    attempts = 0
    while len(points) < count and attempts < count * 60:
        attempts += 1
        point = rng.uniform(-half_size, half_size, size=2)
        if not accept(point):
            continue
        if existing:
            others = np.asarray(existing)
            gap = np.hypot(others[:, 0] - point[0], others[:, 1] - point[1]) - others[:, 2] - radius
            if gap.min() < min_spacing:
                continue
        points.append(point)
        existing.append((float(point[0]), float(point[1]), radius))
    return points


@lru_cache(maxsize=8)
def sample_layout(spec: WorldSpec, layout_seed: int) -> Layout:
    """The static layout for ``layout_seed`` (deterministic; cached)."""
    rng = np.random.default_rng([layout_seed, 0x1A70])
    half = spec.half_size
    prims: List[Primitive] = []
    occupied: List[Tuple[float, float, float]] = []  # planar circles already used (x, y, r)
    for _ in range(spec.ground.patch_count):
        radius = _uniform(rng, spec.ground.patch_radius)
        x, y = rng.uniform(-half, half, size=2)
        prims.append(Primitive("cylinder", (float(x), float(y), 0.01), (radius, radius, 0.01), 0.0,
                               _pick(rng, spec.ground.patch_colors), collision=False))
    if spec.streets is not None:
        _sample_streets(spec.streets, half, rng, prims)
        for prim in prims:
            if prim.collision and prim.half_extents[2] > 0.5:
                occupied.append((prim.position[0], prim.position[1], math.hypot(*prim.half_extents[:2])))
    if spec.trees is not None:
        trees = spec.trees
        clearings = [(rng.uniform(-half * 0.7, half * 0.7, size=2), _uniform(rng, trees.clearing_radius))
                     for _ in range(trees.clearing_count)]

        def outside_clearings(point: np.ndarray) -> bool:
            return all(np.hypot(*(point - center)) > radius for center, radius in clearings)

        trunk_max = trees.trunk_radius[1]
        for point in _scatter_points(rng, trees.count, half, trees.min_spacing, outside_clearings, occupied,
                                     trunk_max):
            radius, height = _uniform(rng, trees.trunk_radius), _uniform(rng, trees.trunk_height)
            x, y = float(point[0]), float(point[1])
            prims.append(Primitive("cylinder", (x, y, height / 2), (radius, radius, height / 2), 0.0,
                                   _pick(rng, trees.trunk_colors)))
            canopy_r, canopy_h = _uniform(rng, trees.canopy_radius), _uniform(rng, trees.canopy_height)
            base = min(_uniform(rng, trees.canopy_base), height)
            half_h = canopy_h / 2 if trees.canopy_shape != "sphere" else canopy_r
            prims.append(Primitive(trees.canopy_shape, (x, y, base + half_h), (canopy_r, canopy_r, half_h), 0.0,
                                   _pick(rng, trees.canopy_colors)))
    for family in spec.props:
        extent = max(max(abs(p.offset[0]) + p.size[0] / 2, abs(p.offset[1]) + p.size[1] / 2) for p in family.parts)
        radius = extent * family.scale[1]
        for point in _scatter_points(rng, family.count, half, family.min_spacing,
                                     lambda pt, fam=family: _placement_ok(spec.streets, half, fam.placement, pt),
                                     occupied, radius):
            scale = _uniform(rng, family.scale)
            if family.placement == "anywhere" or spec.streets is None:
                yaw = float(rng.uniform(-math.pi, math.pi))
            else:
                yaw = _street_yaw(spec.streets, half, point) + (math.pi if rng.random() < 0.5 else 0.0)
            for part in family.parts:
                _add_part(prims, part, point, yaw, scale, _pick(rng, part.colors))
    return Layout(spec.name, layout_seed, half, tuple(prims), _footprints(prims), spec.sky, spec.streets)


def target_part_specs(spec: TargetSpec) -> Tuple[PartSpec, ...]:
    """The target's part specs in its own frame (x = the direction the chair faces); a scene holds them placed
    in the world as :attr:`Scene.target_parts <liquid_nav.sim.worlds.scene.Scene.target_parts>`."""
    color = (spec.color,)
    if spec.shape != "chair":
        return (PartSpec(spec.shape, (spec.size * 0.5, spec.size * 0.5, spec.size), (0.0, 0.0, 0.0), color),)
    seat, leg, back_h = 0.45, 0.05, 0.45
    parts = [PartSpec("box", (0.45, 0.45, 0.05), (0.0, 0.0, seat - 0.05), color),
             PartSpec("box", (0.05, 0.45, back_h), (-0.2, 0.0, seat), color)]
    for sx in (-1, 1):
        for sy in (-1, 1):
            parts.append(PartSpec("box", (leg, leg, seat - 0.05), (sx * 0.2, sy * 0.2, 0.0), color))
    return tuple(parts)


def _line_of_sight(footprints: Footprints, start: np.ndarray, end: np.ndarray, margin: float) -> bool:
    steps = max(2, int(np.hypot(*(end - start)) / 0.2))
    samples = start[None] + np.linspace(0.0, 1.0, steps)[:, None] * (end - start)[None]
    return bool((footprints.distance(samples) > margin).all())


def sample_scene(spec: WorldSpec, seed: int) -> Scene:
    """The concrete scene for an episode ``seed`` (a non-negative integer): the cached layout plus a sampled
    start and target.

    Starts and targets are rejection-sampled so that both have the required clearance, stay inside the
    area and, with ``target.line_of_sight``, nothing at flight level stands between them.
    """
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"episode seed must be a non-negative integer, got {seed!r}")
    layout = sample_layout(spec, layout_seed_for(spec, seed))
    rng = np.random.default_rng([int(seed), 0x7A26])
    half = spec.half_size
    inner = half - 2.0
    target_scale = spec.target.size
    for _ in range(5000):
        start = rng.uniform(-inner, inner, size=2)
        if spec.start.placement == "streets" and not _placement_ok(spec.streets, half, "streets", start):
            continue
        if layout.footprints.distance(start[None])[0] < spec.start.clearance:
            continue
        yaw = math.radians(_uniform(rng, spec.start.yaw_deg))
        bearing = math.radians(_uniform(rng, spec.target.bearing_deg))
        distance = _uniform(rng, spec.target.distance)
        target = start + distance * np.array([math.cos(yaw + bearing), math.sin(yaw + bearing)])
        if np.abs(target).max() > inner:
            continue
        if layout.footprints.distance(target[None])[0] < spec.target.clearance + 0.4 * target_scale:
            continue
        if spec.target.line_of_sight and not _line_of_sight(layout.footprints, start, target, 0.6):
            continue
        break
    else:
        raise WorldFileError(f"{spec.source}: key 'target': expected a distance/bearing/clearance combination "
                             f"that fits the world; no valid start/target found for seed {seed} in 5000 tries")
    height = _uniform(rng, spec.start.height)
    facing = math.atan2(start[1] - target[1], start[0] - target[0]) + float(rng.uniform(-0.6, 0.6))
    parts: List[Primitive] = []
    for part in target_part_specs(spec.target):
        _add_part(parts, part, target, facing, target_scale if spec.target.shape == "chair" else 1.0,
                  spec.target.color + (1.0,))
    top = max(p.position[2] + p.half_extents[2] for p in parts)
    radius = max(math.hypot(p.position[0] - target[0], p.position[1] - target[1]) + max(p.half_extents[:2])
                 for p in parts)
    return Scene(
        seed=int(seed),
        layout=layout,
        start_position=(float(start[0]), float(start[1]), height),
        start_yaw=float(math.atan2(math.sin(yaw), math.cos(yaw))),
        target_position=(float(target[0]), float(target[1]), top / 2),
        target_yaw=facing,
        target_parts=tuple(parts),
        target_radius=float(radius),
    )
