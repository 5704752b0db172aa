"""Build sampled scenes into a PyBullet client.

Static geometry goes into few *compound* bodies: primitives are sorted into 10 m tiles so each body's
bounding box stays tight, then chunked into groups of at most 16 shapes (the most one
``createCollisionShapeArray`` / ``createVisualShapeArray`` call keeps). Purely visual geometry (ground
patches, road markings, windows, the sky backdrop) gets visual-only bodies that the physics never sees.
The ``naive`` mode (one body per primitive) exists to measure what the grouping buys (bench/sim.py).

A :class:`SceneBuilder` keeps the built layout and only moves the target body when the next scene has
the same layout (see ``episodes_per_layout`` in the world file).
"""
from __future__ import annotations

import math
import time
from typing import Dict, List, Optional, Sequence, Tuple

import pybullet as pb

from liquid_nav.paths import worlds_dir
from liquid_nav.sim.worlds import Layout, Primitive, Scene

MAX_SHAPES_PER_CALL = 16
TILE_SIZE = 20.0
BUILD_MODES = ("compound", "naive")


def _mesh_file(shape: str) -> str:
    """Low-poly unit meshes (sim_worlds/assets/<shape>.obj) used as cheap render geometry."""
    return str(worlds_dir() / "assets" / f"{shape}.obj")


def _shape_args(prim: Primitive, for_collision: bool, low_poly: bool = True) -> Dict[str, object]:
    """Arguments of one entry of a shape array.

    Rendering uses low-poly meshes for spheres, cylinders and cones (``low_poly``); collision uses
    exact primitives (cones collide as a slimmer cylinder).
    """
    hx, hy, hz = prim.half_extents
    if prim.shape == "box":
        return {"type": pb.GEOM_BOX, "halfExtents": [hx, hy, hz], "radius": 0.0, "length": 0.0,
                "fileName": "", "meshScale": [1, 1, 1]}
    if not for_collision and (low_poly or prim.shape == "cone"):
        return {"type": pb.GEOM_MESH, "halfExtents": [0, 0, 0], "radius": 0.0, "length": 0.0,
                "fileName": _mesh_file(prim.shape), "meshScale": [hx, hy, hz]}
    if prim.shape == "sphere":
        return {"type": pb.GEOM_SPHERE, "halfExtents": [0, 0, 0], "radius": hx, "length": 0.0,
                "fileName": "", "meshScale": [1, 1, 1]}
    radius = hx * (0.6 if prim.shape == "cone" else 1.0)
    return {"type": pb.GEOM_CYLINDER, "halfExtents": [0, 0, 0], "radius": radius, "length": 2 * hz,
            "fileName": "", "meshScale": [1, 1, 1]}


def _create_group(client: int, prims: Sequence[Primitive], origin: Tuple[float, float, float],
                  base_yaw: float = 0.0, low_poly: bool = True) -> int:
    """One static multibody holding ``prims`` (<= 16) relative to ``origin``; returns its body id."""
    cos, sin = math.cos(-base_yaw), math.sin(-base_yaw)
    positions, orientations = [], []
    for prim in prims:
        dx, dy = prim.position[0] - origin[0], prim.position[1] - origin[1]
        positions.append([dx * cos - dy * sin, dx * sin + dy * cos, prim.position[2] - origin[2]])
        orientations.append(pb.getQuaternionFromEuler([0.0, 0.0, prim.yaw - base_yaw]))
    visual_args = [_shape_args(prim, for_collision=False, low_poly=low_poly) for prim in prims]
    visual = pb.createVisualShapeArray(
        shapeTypes=[a["type"] for a in visual_args], halfExtents=[a["halfExtents"] for a in visual_args],
        radii=[a["radius"] for a in visual_args], lengths=[a["length"] for a in visual_args],
        fileNames=[a["fileName"] for a in visual_args], meshScales=[a["meshScale"] for a in visual_args],
        rgbaColors=[list(prim.rgba) for prim in prims], visualFramePositions=positions,
        visualFrameOrientations=orientations, physicsClientId=client)
    colliders = [index for index, prim in enumerate(prims) if prim.collision]
    collision = -1
    if colliders:
        args = [_shape_args(prims[index], for_collision=True) for index in colliders]
        collision = pb.createCollisionShapeArray(
            shapeTypes=[a["type"] for a in args], halfExtents=[a["halfExtents"] for a in args],
            radii=[a["radius"] for a in args], lengths=[a["length"] for a in args],
            collisionFramePositions=[positions[index] for index in colliders],
            collisionFrameOrientations=[orientations[index] for index in colliders], physicsClientId=client)
    return pb.createMultiBody(baseMass=0.0, baseCollisionShapeIndex=collision, baseVisualShapeIndex=visual,
                              basePosition=list(origin), baseOrientation=pb.getQuaternionFromEuler([0, 0, base_yaw]),
                              physicsClientId=client)


def _tile_key(prim: Primitive) -> Tuple[int, int, bool]:
    return (int(math.floor(prim.position[0] / TILE_SIZE)), int(math.floor(prim.position[1] / TILE_SIZE)),
            prim.collision)


def _backdrop(layout: Layout) -> List[Primitive]:
    """Four sky-coloured walls around the area (visual only): the horizon the camera sees."""
    far = layout.half_size + 40.0
    sky = tuple(layout.sky.color) + (1.0,)
    walls = [Primitive("box", (sx * far, 0.0, 30.0), (0.5, far, 40.0), 0.0, sky, False) for sx in (-1, 1)]
    walls += [Primitive("box", (0.0, sy * far, 30.0), (far, 0.5, 40.0), 0.0, sky, False) for sy in (-1, 1)]
    return walls


def build_layout(client: int, layout: Layout, ground_rgba: Sequence[float], mode: str = "compound") -> List[int]:
    """Create the layout's static bodies (plus ground and sky backdrop) in ``client``; returns their ids."""
    if mode not in BUILD_MODES:
        raise ValueError(f"build mode must be one of {BUILD_MODES}, got {mode!r}")
    far = layout.half_size + 40.0
    ground_plane = pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=client)
    ground_visual = pb.createVisualShape(pb.GEOM_BOX, halfExtents=[far, far, 0.005], rgbaColor=list(ground_rgba),
                                         visualFramePosition=[0, 0, -0.005], physicsClientId=client)
    bodies = [pb.createMultiBody(0.0, ground_plane, ground_visual, physicsClientId=client)]
    prims = list(layout.primitives) + _backdrop(layout)
    if mode == "naive":
        return bodies + [_create_group(client, [prim], prim.position, low_poly=False) for prim in prims]
    prims.sort(key=_tile_key)
    start = 0
    while start < len(prims):
        key = _tile_key(prims[start])
        end = start
        while end < len(prims) and end - start < MAX_SHAPES_PER_CALL and _tile_key(prims[end]) == key:
            end += 1
        group = prims[start:end]
        origin = (sum(p.position[0] for p in group) / len(group), sum(p.position[1] for p in group) / len(group), 0.0)
        bodies.append(_create_group(client, group, origin))
        start = end
    return bodies


class SceneBuilder:
    """Keeps one scene built in a client: rebuilds the layout only when it changes, moves the target."""

    def __init__(self, client: int, ground_rgba: Sequence[float], mode: str = "compound"):
        self.client = client
        self.ground_rgba = tuple(ground_rgba)
        self.mode = mode
        self.layout: Optional[Layout] = None
        self.static_bodies: List[int] = []
        self.target_body: Optional[int] = None
        self._target_shape: Optional[Tuple[Primitive, ...]] = None
        self.last_build_seconds = 0.0

    def load(self, scene: Scene) -> int:
        """Make ``scene`` current; returns the target's body id."""
        started = time.perf_counter()
        if self.layout is not scene.layout:
            for body in self.static_bodies:
                pb.removeBody(body, physicsClientId=self.client)
            self.static_bodies = build_layout(self.client, scene.layout, self.ground_rgba, self.mode)
            self.layout = scene.layout
        base = (scene.target_position[0], scene.target_position[1], 0.0)
        local = _target_local(scene, base)
        if self.target_body is None or local != self._target_shape:
            if self.target_body is not None:
                pb.removeBody(self.target_body, physicsClientId=self.client)
            self.target_body = _create_group(self.client, scene.target_parts, base, scene.target_yaw)
            self._target_shape = local
        else:
            pb.resetBasePositionAndOrientation(self.target_body, base,
                                               pb.getQuaternionFromEuler([0.0, 0.0, scene.target_yaw]),
                                               physicsClientId=self.client)
        self.last_build_seconds = time.perf_counter() - started
        return self.target_body

    @property
    def body_count(self) -> int:
        return len(self.static_bodies) + (self.target_body is not None)


def _target_local(scene: Scene, base: Tuple[float, float, float]) -> Tuple[Tuple[float, ...], ...]:
    """The target's parts in its own frame, rounded: equal tuples mean the built body can be reused."""
    cos, sin = math.cos(-scene.target_yaw), math.sin(-scene.target_yaw)
    rows = []
    for prim in scene.target_parts:
        dx, dy = prim.position[0] - base[0], prim.position[1] - base[1]
        rows.append((prim.shape, round(dx * cos - dy * sin, 6), round(dx * sin + dy * cos, 6),
                     round(prim.position[2], 6), prim.half_extents, prim.rgba))
    return tuple(rows)
