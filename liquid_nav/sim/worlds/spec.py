"""What a world file says: the frozen spec dataclasses of a :class:`WorldSpec`, and :class:`WorldFileError`.

The specs hold values only (no parse-time state), so a variant of a world is ``dataclasses.replace`` on
any part of it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

from liquid_nav.validation import Range

Color = Tuple[float, float, float]
SHAPES = ("box", "cylinder", "sphere", "cone")
PLACEMENTS = ("anywhere", "streets", "sidewalks", "curbside")


class WorldFileError(ValueError):
    """A world file is missing, malformed or inconsistent; the message names file, key and expectation."""


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
