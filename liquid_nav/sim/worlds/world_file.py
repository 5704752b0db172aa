"""The world-file schema: a YAML file (``sim_worlds/<name>.yaml``, documented in ``sim_worlds/README.md``)
parsed and validated into a :class:`~liquid_nav.sim.worlds.spec.WorldSpec`.

Every error in a world file raises :class:`~liquid_nav.sim.worlds.spec.WorldFileError` naming the file,
the key path and what was expected.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, List, Tuple, Union

from liquid_nav.files import read_yaml
from liquid_nav.paths import named_yaml_file, worlds_dir
from liquid_nav.sim.worlds.spec import (PLACEMENTS, SHAPES, Color, GroundSpec, LightSpec, PartSpec, PropFamily,
                                        SkySpec, StartSpec, StreetGrid, TargetSpec, TreeFamily, WorldFileError,
                                        WorldSpec)
from liquid_nav.validation import MappingReader


def _check_color(node: MappingReader, key: str, value: Any) -> Color:
    if (not isinstance(value, (list, tuple)) or len(value) != 3
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0 for v in value)):
        node.fail(key, f"an [r, g, b] colour with components in [0, 1], got {value!r}")
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def _read_color(node: MappingReader, key: str, default: Any = None) -> Color:
    return _check_color(node, key, node.raw(key, default))


def _read_colors(node: MappingReader, key: str, default: Any = None) -> Tuple[Color, ...]:
    value = node.raw(key, default)
    if not isinstance(value, list) or not value:
        node.fail(key, f"a non-empty list of [r, g, b] colours in [0, 1], got {value!r}")
    return tuple(_check_color(node, f"{key}[{index}]", item) for index, item in enumerate(value))


def _parse_part(node: MappingReader) -> PartSpec:
    part = PartSpec(
        shape=node.choice("shape", SHAPES),
        size=node.vector("size", low=0.0),  # type: ignore[arg-type]
        offset=node.vector("offset", default=[0.0, 0.0, 0.0]),  # type: ignore[arg-type]
        colors=_read_colors(node, "colors"),
        collision=node.flag("collision", True),
    )
    if min(part.size) <= 0.0:
        node.fail("size", f"three positive extents, got {list(part.size)}")
    node.finish()
    return part


def _parse_trees(node: MappingReader) -> TreeFamily:
    canopy = node.child("canopy")
    clearings = node.child("clearings", required=False)
    family = TreeFamily(
        count=node.number("count", low=0, high=2000, integer=True),
        min_spacing=node.number("min_spacing", default=1.5, low=0.0),
        trunk_radius=node.range("trunk_radius", low=0.01, high=5.0),
        trunk_height=node.range("trunk_height", low=0.5, high=60.0),
        trunk_colors=_read_colors(node, "trunk_colors"),
        canopy_shape=canopy.choice("shape", SHAPES),
        canopy_radius=canopy.range("radius", low=0.1, high=20.0),
        canopy_height=canopy.range("height", low=0.1, high=40.0),
        canopy_colors=_read_colors(canopy, "colors"),
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


def _parse_streets(node: MappingReader) -> StreetGrid:
    buildings = node.child("buildings")
    per_block = buildings.range("per_block", low=1, high=4)
    if any(count != int(count) for count in per_block):
        buildings.fail("per_block", f"whole numbers of buildings per block, got {list(per_block)}")
    grid = StreetGrid(
        block_size=node.number("block_size", low=5.0, high=500.0),
        street_width=node.number("street_width", low=2.0, high=100.0),
        sidewalk_width=node.number("sidewalk_width", default=2.0, low=0.0, high=20.0),
        road_color=_read_color(node, "road_color"),
        sidewalk_color=_read_color(node, "sidewalk_color"),
        building_footprint=buildings.range("footprint", low=0.1, high=1.0),
        building_height=buildings.range("height", low=1.0, high=300.0),
        buildings_per_block=(int(per_block[0]), int(per_block[1])),
        facade_colors=_read_colors(buildings, "facade_colors"),
        roof_colors=_read_colors(buildings, "roof_colors"),
        window_color=_read_color(buildings, "window_color"),
        window_rows_per_meter=buildings.number("window_rows_per_meter", default=0.3, low=0.0, high=2.0),
    )
    buildings.finish()
    node.finish()
    if grid.sidewalk_width * 2 >= grid.block_size:
        node.fail("sidewalk_width", f"less than half of block_size {grid.block_size}, got {grid.sidewalk_width}")
    return grid


def _parse_props(node: MappingReader) -> PropFamily:
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
    root = MappingReader(source, "", data, WorldFileError)
    area, ground, sky = root.child("area"), root.child("ground"), root.child("sky")
    light = root.child("light", required=False) or MappingReader(source, "light", {}, WorldFileError)
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
            color=_read_color(ground, "color"),
            patch_colors=_read_colors(ground, "patch_colors", default=[list(_read_color(ground, "color"))]),
            patch_count=ground.number("patch_count", default=0, low=0, high=500, integer=True),
            patch_radius=ground.range("patch_radius", default=[1.0, 3.0], low=0.1),
        ),
        sky=SkySpec(
            color=_read_color(sky, "color"),
        ),
        light=LightSpec(
            direction=light.vector("direction", default=[0.4, 0.3, 1.0]),  # type: ignore[arg-type]
            color=_read_color(light, "color", default=[1.0, 1.0, 1.0]),
            ambient=light.number("ambient", default=0.6, low=0.0, high=2.0),
            diffuse=light.number("diffuse", default=0.35, low=0.0, high=2.0),
            specular=light.number("specular", default=0.05, low=0.0, high=2.0),
        ),
        trees=_parse_trees(trees_node) if trees_node else None,
        streets=_parse_streets(streets_node) if streets_node else None,
        props=tuple(_parse_props(node) for node in props_nodes),
        target=TargetSpec(
            shape=target.choice("shape", ("chair",) + SHAPES, default="chair"),
            color=_read_color(target, "color", default=[0.85, 0.05, 0.05]),
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
    return parse_world(read_yaml(path, WorldFileError), str(path))


def available_worlds() -> List[str]:
    """Names of the worlds shipped in :func:`liquid_nav.paths.worlds_dir`."""
    return sorted(path.stem for path in worlds_dir().glob("*.yaml"))
