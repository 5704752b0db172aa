"""World files: a YAML description of a *distribution* of scenes, and sampling concrete scenes from it.

A world file (``sim_worlds/<name>.yaml``, schema in ``sim_worlds/README.md``) is parsed and validated
into a :class:`WorldSpec`. :func:`sample_scene` turns a spec and an episode seed into a :class:`Scene`:

* the static **layout** (ground, sky backdrop, obstacles) depends only on the *layout seed*
  ``seed // spec.episodes_per_layout``, so consecutive episode seeds share one built layout and the
  simulator only moves the drone and the target between them;
* the **start pose and target placement** depend on the full episode seed.

Every error in a world file raises :class:`WorldFileError` naming the file, the key path and what
was expected.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import yaml

from liquid_nav.paths import named_yaml_file, worlds_dir

Range = Tuple[float, float]
Color = Tuple[float, float, float]
SHAPES = ("box", "cylinder", "sphere", "cone")
PLACEMENTS = ("anywhere", "streets", "sidewalks", "curbside")
# Obstacles whose vertical extent reaches into this band block the drone's flight level.
FLIGHT_BAND: Range = (0.5, 3.0)


class WorldFileError(ValueError):
    """A world file is missing, malformed or inconsistent; the message names file, key and expectation."""


# ----------------------------------------------------------------------------------------------------
# Spec dataclasses (what a world file says)
# ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PartSpec:
    """One primitive of a composite object, in the object's frame (x forward, z up, origin on the ground)."""

    shape: str
    size: Tuple[float, float, float]  # full extents; cylinder/cone: (diameter, diameter, height)
    offset: Tuple[float, float, float]
    colors: Tuple[Color, ...]
    collision: bool = True


@dataclass(frozen=True)
class TreeFamily:
    count: int
    min_spacing: float
    trunk_radius: Range
    trunk_height: Range
    trunk_colors: Tuple[Color, ...]
    canopy_shape: str
    canopy_radius: Range
    canopy_height: Range
    canopy_colors: Tuple[Color, ...]
    canopy_base: Range  # height of the canopy's lower edge above the ground
    clearing_count: int
    clearing_radius: Range


@dataclass(frozen=True)
class PropFamily:
    name: str
    count: int
    placement: str
    scale: Range
    parts: Tuple[PartSpec, ...]
    min_spacing: float


@dataclass(frozen=True)
class StreetGrid:
    block_size: float
    street_width: float
    sidewalk_width: float
    road_color: Color
    sidewalk_color: Color
    building_footprint: Range  # fraction of the block interior a building side covers
    building_height: Range
    buildings_per_block: Tuple[int, int]
    facade_colors: Tuple[Color, ...]
    roof_colors: Tuple[Color, ...]
    window_color: Color
    window_rows_per_meter: float


@dataclass(frozen=True)
class GroundSpec:
    color: Color
    patch_colors: Tuple[Color, ...]
    patch_count: int
    patch_radius: Range


@dataclass(frozen=True)
class SkySpec:
    color: Color  # painted where the camera sees nothing


@dataclass(frozen=True)
class LightSpec:
    """The world's directional light (TinyRenderer's model; see ``liquid_nav.sim.camera.Lighting``)."""

    direction: Tuple[float, float, float]  # towards the light, world frame
    color: Color
    ambient: float
    diffuse: float
    specular: float


@dataclass(frozen=True)
class TargetSpec:
    shape: str  # "chair" or one of SHAPES
    color: Color
    size: float  # chair: overall height scale (1.0 = 0.9 m backrest top); primitives: full height
    distance: Range
    bearing_deg: Range
    clearance: float
    line_of_sight: bool


@dataclass(frozen=True)
class StartSpec:
    height: Range
    yaw_deg: Range
    clearance: float
    placement: str


@dataclass(frozen=True)
class WorldSpec:
    """A validated world file."""

    name: str
    source: str
    description: str
    half_size: float
    max_altitude: float
    episodes_per_layout: int
    ground: GroundSpec
    sky: SkySpec
    light: LightSpec
    trees: Optional[TreeFamily]
    streets: Optional[StreetGrid]
    props: Tuple[PropFamily, ...]
    target: TargetSpec
    start: StartSpec


# ----------------------------------------------------------------------------------------------------
# Parsing with precise errors
# ----------------------------------------------------------------------------------------------------
class _Node:
    """A mapping in a world file together with its key path, for error messages."""

    def __init__(self, source: str, path: str, data: Any):
        self.source = source
        self.path = path
        if not isinstance(data, dict):
            self.fail("", f"a mapping, got {type(data).__name__} {data!r}")
        self.data: Dict[str, Any] = data
        self.used: set = set()

    def fail(self, key: str, expected: str) -> None:
        where = ".".join(part for part in (self.path, key) if part) or "<top level>"
        raise WorldFileError(f"{self.source}: key '{where}': expected {expected}")

    def _get(self, key: str, default: Any) -> Any:
        self.used.add(key)
        if key in self.data:
            return self.data[key]
        if default is _REQUIRED:
            self.fail(key, "this key to be present (it is required)")
        return default

    def number(self, key: str, default: Any = None, low: float = -math.inf, high: float = math.inf,
               integer: bool = False) -> Any:
        value = self._get(key, _REQUIRED if default is None else default)
        kind = "an integer" if integer else "a number"
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (integer and not isinstance(value, int)):
            self.fail(key, f"{kind} in [{low}, {high}], got {value!r}")
        if not (low <= value <= high) or not math.isfinite(value):
            self.fail(key, f"{kind} in [{low}, {high}], got {value!r}")
        return int(value) if integer else float(value)

    def range(self, key: str, default: Any = None, low: float = -math.inf, high: float = math.inf) -> Range:
        value = self._get(key, _REQUIRED if default is None else default)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = [value, value]
        if (not isinstance(value, (list, tuple)) or len(value) != 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)):
            self.fail(key, f"a [min, max] pair of numbers (or one number), got {value!r}")
        lo, hi = float(value[0]), float(value[1])
        if not (math.isfinite(lo) and math.isfinite(hi)):
            self.fail(key, f"finite numbers, got {value!r}")
        if lo > hi:
            self.fail(key, f"min <= max, got [{lo}, {hi}]")
        if lo < low or hi > high:
            self.fail(key, f"values within [{low}, {high}], got [{lo}, {hi}]")
        return lo, hi

    def vector(self, key: str, default: Any = None, length: int = 3, low: float = -math.inf) -> Tuple[float, ...]:
        value = self._get(key, _REQUIRED if default is None else default)
        if (not isinstance(value, (list, tuple)) or len(value) != length
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= low
                           for v in value)):
            bound = f" >= {low}" if math.isfinite(low) else ""
            self.fail(key, f"a list of {length} finite numbers{bound}, got {value!r}")
        return tuple(float(v) for v in value)

    def color(self, key: str, default: Any = None) -> Color:
        return _color(self, key, self._get(key, _REQUIRED if default is None else default))

    def colors(self, key: str, default: Any = None) -> Tuple[Color, ...]:
        value = self._get(key, _REQUIRED if default is None else default)
        if not isinstance(value, list) or not value:
            self.fail(key, f"a non-empty list of [r, g, b] colours in [0, 1], got {value!r}")
        return tuple(_color(self, f"{key}[{index}]", item) for index, item in enumerate(value))

    def choice(self, key: str, options: Sequence[str], default: Any = None) -> str:
        value = self._get(key, _REQUIRED if default is None else default)
        if value not in options:
            self.fail(key, f"one of {list(options)}, got {value!r}")
        return value

    def flag(self, key: str, default: bool) -> bool:
        value = self._get(key, default)
        if not isinstance(value, bool):
            self.fail(key, f"true or false, got {value!r}")
        return value

    def text(self, key: str, default: Optional[str] = None) -> str:
        value = self._get(key, _REQUIRED if default is None else default)
        if not isinstance(value, str):
            self.fail(key, f"a string, got {value!r}")
        return value

    def child(self, key: str, required: bool = True) -> Optional["_Node"]:
        value = self._get(key, _REQUIRED if required else None)
        if value is None:
            return None
        return _Node(self.source, f"{self.path}.{key}" if self.path else key, value)

    def children(self, key: str) -> List["_Node"]:
        value = self._get(key, [])
        if not isinstance(value, list):
            self.fail(key, f"a list of mappings, got {value!r}")
        prefix = f"{self.path}.{key}" if self.path else key
        return [_Node(self.source, f"{prefix}[{index}]", item) for index, item in enumerate(value)]

    def finish(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            self.fail(unknown[0], f"one of the known keys {sorted(self.used)} (unknown key '{unknown[0]}')")


_REQUIRED = object()


def _color(node: _Node, key: str, value: Any) -> Color:
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0 for v in value)):
        node.fail(key, f"an [r, g, b] colour with components in [0, 1], got {value!r}")
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def _parse_part(node: _Node) -> PartSpec:
    part = PartSpec(
        shape=node.choice("shape", SHAPES),
        size=node.vector("size", low=0.0),  # type: ignore[arg-type]
        offset=node.vector("offset", default=[0.0, 0.0, 0.0]),  # type: ignore[arg-type]
        colors=node.colors("colors"),
        collision=node.flag("collision", True),
    )
    if min(part.size) <= 0.0:
        node.fail("size", f"three positive extents, got {list(part.size)}")
    node.finish()
    return part


def _parse_trees(node: _Node) -> TreeFamily:
    canopy = node.child("canopy")
    clearings = node.child("clearings", required=False)
    family = TreeFamily(
        count=node.number("count", low=0, high=2000, integer=True),
        min_spacing=node.number("min_spacing", default=1.5, low=0.0),
        trunk_radius=node.range("trunk_radius", low=0.01, high=5.0),
        trunk_height=node.range("trunk_height", low=0.5, high=60.0),
        trunk_colors=node.colors("trunk_colors"),
        canopy_shape=canopy.choice("shape", SHAPES),
        canopy_radius=canopy.range("radius", low=0.1, high=20.0),
        canopy_height=canopy.range("height", low=0.1, high=40.0),
        canopy_colors=canopy.colors("colors"),
        canopy_base=canopy.range("base", low=0.0, high=60.0),
        clearing_count=clearings.number("count", default=0, low=0, high=100, integer=True) if clearings else 0,
        clearing_radius=clearings.range("radius", default=[4.0, 8.0], low=0.5) if clearings else (0.0, 0.0),
    )
    canopy.finish()
    if clearings:
        clearings.finish()
    node.finish()
    if family.canopy_base[0] > family.trunk_height[0]:
        canopy.fail("base", f"canopy base <= the lowest trunk height {family.trunk_height[0]} "
                            f"(the canopy would float above the trunk), got {list(family.canopy_base)}")
    return family


def _parse_streets(node: _Node) -> StreetGrid:
    buildings = node.child("buildings")
    per_block = buildings.range("per_block", low=1, high=4)
    if any(count != int(count) for count in per_block):
        buildings.fail("per_block", f"whole numbers of buildings per block, got {list(per_block)}")
    grid = StreetGrid(
        block_size=node.number("block_size", low=5.0, high=500.0),
        street_width=node.number("street_width", low=2.0, high=100.0),
        sidewalk_width=node.number("sidewalk_width", default=2.0, low=0.0, high=20.0),
        road_color=node.color("road_color"),
        sidewalk_color=node.color("sidewalk_color"),
        building_footprint=buildings.range("footprint", low=0.1, high=1.0),
        building_height=buildings.range("height", low=1.0, high=300.0),
        buildings_per_block=(int(per_block[0]), int(per_block[1])),
        facade_colors=buildings.colors("facade_colors"),
        roof_colors=buildings.colors("roof_colors"),
        window_color=buildings.color("window_color"),
        window_rows_per_meter=buildings.number("window_rows_per_meter", default=0.3, low=0.0, high=2.0),
    )
    buildings.finish()
    node.finish()
    if grid.sidewalk_width * 2 >= grid.block_size:
        node.fail("sidewalk_width", f"less than half of block_size {grid.block_size}, got {grid.sidewalk_width}")
    return grid


def _parse_props(node: _Node) -> PropFamily:
    parts = [_parse_part(child) for child in node.children("parts")]
    if not parts:
        node.fail("parts", "a non-empty list of parts (shape, size, offset, colors)")
    family = PropFamily(
        name=node.text("name"),
        count=node.number("count", low=0, high=2000, integer=True),
        placement=node.choice("placement", PLACEMENTS, default="anywhere"),
        scale=node.range("scale", default=[1.0, 1.0], low=0.05, high=20.0),
        parts=tuple(parts),
        min_spacing=node.number("min_spacing", default=0.5, low=0.0),
    )
    node.finish()
    return family


def parse_world(data: Any, source: str) -> WorldSpec:
    """Validate the parsed YAML ``data`` of a world file (``source`` names it in errors)."""
    root = _Node(source, "", data)
    area, ground, sky = root.child("area"), root.child("ground"), root.child("sky")
    light = root.child("light", required=False) or _Node(source, "light", {})
    target, start = root.child("target"), root.child("start")
    obstacles = root.child("obstacles", required=False)
    trees_node = obstacles.child("trees", required=False) if obstacles else None
    streets_node = obstacles.child("streets", required=False) if obstacles else None
    props_nodes = obstacles.children("props") if obstacles else []
    spec = WorldSpec(
        name=root.text("name"),
        source=source,
        description=root.text("description", default=""),
        half_size=area.number("half_size", low=5.0, high=1000.0),
        max_altitude=area.number("max_altitude", default=15.0, low=2.0, high=500.0),
        episodes_per_layout=root.number("episodes_per_layout", default=10, low=1, high=100000, integer=True),
        ground=GroundSpec(
            color=ground.color("color"),
            patch_colors=ground.colors("patch_colors", default=[list(ground.color("color"))]),
            patch_count=ground.number("patch_count", default=0, low=0, high=500, integer=True),
            patch_radius=ground.range("patch_radius", default=[1.0, 3.0], low=0.1),
        ),
        sky=SkySpec(
            color=sky.color("color"),
        ),
        light=LightSpec(
            direction=light.vector("direction", default=[0.4, 0.3, 1.0]),  # type: ignore[arg-type]
            color=light.color("color", default=[1.0, 1.0, 1.0]),
            ambient=light.number("ambient", default=0.6, low=0.0, high=2.0),
            diffuse=light.number("diffuse", default=0.35, low=0.0, high=2.0),
            specular=light.number("specular", default=0.05, low=0.0, high=2.0),
        ),
        trees=_parse_trees(trees_node) if trees_node else None,
        streets=_parse_streets(streets_node) if streets_node else None,
        props=tuple(_parse_props(node) for node in props_nodes),
        target=TargetSpec(
            shape=target.choice("shape", ("chair",) + SHAPES, default="chair"),
            color=target.color("color", default=[0.85, 0.05, 0.05]),
            size=target.number("size", default=1.0, low=0.2, high=5.0),
            distance=target.range("distance", low=1.0),
            bearing_deg=target.range("bearing_deg", default=[-25.0, 25.0], low=-180.0, high=180.0),
            clearance=target.number("clearance", default=1.5, low=0.0, high=20.0),
            line_of_sight=target.flag("line_of_sight", True),
        ),
        start=StartSpec(
            height=start.range("height", default=[1.2, 1.8], low=0.3),
            yaw_deg=start.range("yaw_deg", default=[-180.0, 180.0], low=-180.0, high=180.0),
            clearance=start.number("clearance", default=1.5, low=0.0, high=20.0),
            placement=start.choice("placement", ("anywhere", "streets"), default="anywhere"),
        ),
    )
    for node in (area, ground, sky, light, target, start) + ((obstacles,) if obstacles else ()):
        node.finish()
    root.finish()
    if spec.target.distance[1] >= spec.half_size * 1.6:
        target.fail("distance", f"a maximum well inside the area (half_size {spec.half_size}), "
                                f"got {list(spec.target.distance)}")
    if spec.start.height[1] >= spec.max_altitude:
        start.fail("height", f"below area.max_altitude {spec.max_altitude}, got {list(spec.start.height)}")
    if not any(spec.light.direction):
        light.fail("direction", f"a non-zero vector towards the light, got {list(spec.light.direction)}")
    if spec.start.placement == "streets" and spec.streets is None:
        start.fail("placement", "'anywhere' unless obstacles.streets is defined")
    for family in spec.props:
        if family.placement != "anywhere" and spec.streets is None:
            raise WorldFileError(f"{source}: key 'obstacles.props' ({family.name}).placement: expected "
                                 f"'anywhere' unless obstacles.streets is defined, got '{family.placement}'")
    return spec


def world_path(name_or_path: Union[str, Path]) -> Path:
    """Resolve a world name (``forest``) in :func:`liquid_nav.paths.worlds_dir` or a file path."""
    try:
        return named_yaml_file(name_or_path, worlds_dir(), "world")
    except FileNotFoundError as error:
        raise WorldFileError(str(error)) from None


def load_world(name_or_path: Union[str, Path]) -> WorldSpec:
    """Load and validate a world by name or path; raises :class:`WorldFileError` on any problem."""
    path = world_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        raise WorldFileError(f"{path}: not valid YAML: {error}") from error
    return parse_world(data, str(path))


def available_worlds() -> List[str]:
    """Names of the worlds shipped in :func:`liquid_nav.paths.worlds_dir`."""
    return sorted(path.stem for path in worlds_dir().glob("*.yaml"))


# ----------------------------------------------------------------------------------------------------
# Concrete scenes
# ----------------------------------------------------------------------------------------------------
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


def target_parts(spec: TargetSpec) -> Tuple[PartSpec, ...]:
    """The target's primitives in its own frame (x = the direction the chair faces)."""
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
    for part in target_parts(spec.target):
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
