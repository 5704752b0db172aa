"""Worlds: a YAML file describes a *distribution* of scenes; seeded sampling draws concrete scenes from it.

* :mod:`.spec`: what a world file says, as frozen dataclasses (:class:`WorldSpec` and its parts) and
  :class:`WorldFileError`;
* :mod:`.world_file`: the YAML schema (``sim_worlds/README.md``) and its validator: :func:`load_world`,
  :func:`parse_world`, :func:`world_path`, :func:`available_worlds`;
* :mod:`.scene`: the concrete scene types used by the scene builder, the expert and the plots:
  :class:`Primitive`, :class:`Footprints`, :class:`Layout`, :class:`Scene`;
* :mod:`.sampling`: spec + seed -> scene: :func:`sample_scene`, :func:`sample_layout`,
  :func:`layout_seed_for`, :func:`target_part_specs`.
"""
from liquid_nav.sim.worlds.sampling import layout_seed_for, sample_layout, sample_scene, target_part_specs
from liquid_nav.sim.worlds.scene import FLIGHT_BAND, Footprints, Layout, Primitive, Scene
from liquid_nav.sim.worlds.spec import (PLACEMENTS, SHAPES, GroundSpec, LightSpec, PartSpec, PropFamily, SkySpec,
                                        StartSpec, StreetGrid, TargetSpec, TreeFamily, WorldFileError, WorldSpec)
from liquid_nav.sim.worlds.world_file import available_worlds, load_world, parse_world, world_path

__all__ = [
    "FLIGHT_BAND", "PLACEMENTS", "SHAPES",
    "Footprints", "GroundSpec", "Layout", "LightSpec", "PartSpec", "Primitive", "PropFamily", "Scene", "SkySpec",
    "StartSpec", "StreetGrid", "TargetSpec", "TreeFamily", "WorldFileError", "WorldSpec",
    "available_worlds", "layout_seed_for", "load_world", "parse_world", "sample_layout", "sample_scene",
    "target_part_specs", "world_path",
]
