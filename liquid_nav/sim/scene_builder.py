"""Build sampled scenes into a PyBullet client.

Static geometry goes into few *compound* bodies, chunked into groups of at most 16 shapes (the most one
``createCollisionShapeArray`` / ``createVisualShapeArray`` call keeps). Collision and rendering are
split: collision-only bodies group colliding primitives by 20 m tiles (physics cost follows the number
of static bodies); visual-only bodies group all primitives by 10 m tile and colour, render spheres,
cylinders and cones as low-poly meshes, and are hidden (alpha 0, which TinyRenderer skips) while their
bounding sphere is outside the camera frustum (:meth:`SceneBuilder.cull`). Neither mode has sky geometry
(the env paints the sky where the renderer drew nothing); the compound build's ground can be hidden
(:meth:`SceneBuilder.show_ground`) so that the env paints it too (``liquid_nav.sim.backdrop``). The
``naive`` mode (one body per primitive, default shapes, ground drawn, no culling) exists to measure what
this buys (bench/sim.py).

A :class:`SceneBuilder` keeps the built layout and only moves the target body when the next scene has
the same layout (see ``episodes_per_layout`` in the world file).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pybullet as pb

from liquid_nav.paths import worlds_dir
from liquid_nav.sim.worlds import Layout, Primitive, Scene

MAX_SHAPES_PER_CALL = 16
COLLISION_TILE = 20.0  # m: few, tight collision bodies (physics cost follows the static body count)
VISUAL_TILE = 10.0  # m: smaller visual bodies cull better
GROUND_MARGIN = 120.0  # m: beyond the world area; more than the camera's far plane, so no view sees its edge
LOD_DISTANCE = 30.0  # m: visual bodies whose bounding sphere is farther than this use their far level of detail
LOD_TILE = 20.0  # m: a far-detail body stands for the visual bodies of one colour in a 2x2 block of tiles
FAR_DETAIL_SHAPES = ("sphere",)  # shapes with a coarser far mesh (sim_worlds/assets/<shape>_far.obj)
BUILD_MODES = ("compound", "naive")


def check_build_mode(mode: str, what: str = "build mode") -> None:
    """``ValueError`` naming ``what`` unless ``mode`` is one of :data:`BUILD_MODES`."""
    if mode not in BUILD_MODES:
        raise ValueError(f"{what} must be one of {BUILD_MODES}, got {mode!r}")


def _mesh_file(shape: str, far_detail: bool = False) -> str:
    """Low-poly unit meshes (sim_worlds/assets/<shape>.obj, or <shape>_far.obj for the far level of detail)
    used as cheap render geometry."""
    suffix = "_far" if far_detail and shape in FAR_DETAIL_SHAPES else ""
    return str(worlds_dir() / "assets" / f"{shape}{suffix}.obj")


def _shape_args(prim: Primitive, for_collision: bool, low_poly: bool = True, far_detail: bool = False
                ) -> Dict[str, object]:
    """Arguments of one entry of a shape array.

    Rendering uses low-poly meshes for spheres, cylinders and cones (``low_poly``; ``far_detail``: the
    coarser far meshes where there are some); collision uses exact primitives (cones collide as a slimmer
    cylinder).
    """
    hx, hy, hz = prim.half_extents
    if prim.shape == "box":
        return {"type": pb.GEOM_BOX, "halfExtents": [hx, hy, hz], "radius": 0.0, "length": 0.0,
                "fileName": "", "meshScale": [1, 1, 1]}
    if not for_collision and (low_poly or prim.shape == "cone"):
        return {"type": pb.GEOM_MESH, "halfExtents": [0, 0, 0], "radius": 0.0, "length": 0.0,
                "fileName": _mesh_file(prim.shape, far_detail), "meshScale": [hx, hy, hz]}
    if prim.shape == "sphere":
        return {"type": pb.GEOM_SPHERE, "halfExtents": [0, 0, 0], "radius": hx, "length": 0.0,
                "fileName": "", "meshScale": [1, 1, 1]}
    radius = hx * (0.6 if prim.shape == "cone" else 1.0)
    return {"type": pb.GEOM_CYLINDER, "halfExtents": [0, 0, 0], "radius": radius, "length": 2 * hz,
            "fileName": "", "meshScale": [1, 1, 1]}


def _local_frames(prims: Sequence[Primitive], origin: Sequence[float], base_yaw: float):
    cos, sin = math.cos(-base_yaw), math.sin(-base_yaw)
    positions, orientations = [], []
    for prim in prims:
        dx, dy = prim.position[0] - origin[0], prim.position[1] - origin[1]
        positions.append([dx * cos - dy * sin, dx * sin + dy * cos, prim.position[2] - origin[2]])
        orientations.append(pb.getQuaternionFromEuler([0.0, 0.0, prim.yaw - base_yaw]))
    return positions, orientations


def _visual_array(client: int, prims: Sequence[Primitive], positions, orientations, low_poly: bool,
                  far_detail: bool) -> int:
    args = [_shape_args(prim, for_collision=False, low_poly=low_poly, far_detail=far_detail) for prim in prims]
    return pb.createVisualShapeArray(
        shapeTypes=[a["type"] for a in args], halfExtents=[a["halfExtents"] for a in args],
        radii=[a["radius"] for a in args], lengths=[a["length"] for a in args],
        fileNames=[a["fileName"] for a in args], meshScales=[a["meshScale"] for a in args],
        rgbaColors=[list(prim.rgba) for prim in prims], visualFramePositions=positions,
        visualFrameOrientations=orientations, physicsClientId=client)


def _collision_array(client: int, prims: Sequence[Primitive], positions, orientations) -> int:
    args = [_shape_args(prim, for_collision=True) for prim in prims]
    return pb.createCollisionShapeArray(
        shapeTypes=[a["type"] for a in args], halfExtents=[a["halfExtents"] for a in args],
        radii=[a["radius"] for a in args], lengths=[a["length"] for a in args],
        collisionFramePositions=positions, collisionFrameOrientations=orientations, physicsClientId=client)


def _create_body(client: int, prims: Sequence[Primitive], origin: Sequence[float], base_yaw: float = 0.0,
                 visual: bool = True, collision: bool = True, low_poly: bool = True, maximal: bool = True,
                 far_detail: bool = False) -> int:
    """One static body holding ``prims`` (<= 16) relative to ``origin``: their visual shapes (``far_detail``:
    the far level of detail) and/or the collision shapes of those that collide. ``maximal`` makes it a plain
    rigid body (maximal coordinates), which PyBullet steps far more cheaply than a multibody. Returns the
    body id."""
    positions, orientations = _local_frames(prims, origin, base_yaw)
    if visual:
        visual_id = _visual_array(client, prims, positions, orientations, low_poly, far_detail)
    else:
        # Without a visual shape TinyRenderer draws the collision shapes; a transparent speck it skips.
        visual_id = pb.createVisualShape(pb.GEOM_BOX, halfExtents=[0.01] * 3, rgbaColor=[0, 0, 0, 0],
                                         physicsClientId=client)
    colliders = [index for index, prim in enumerate(prims) if prim.collision] if collision else []
    collision_id = -1
    if colliders:
        collision_id = _collision_array(client, [prims[i] for i in colliders], [positions[i] for i in colliders],
                                        [orientations[i] for i in colliders])
    body = pb.createMultiBody(baseMass=0.0, baseCollisionShapeIndex=collision_id, baseVisualShapeIndex=visual_id,
                              basePosition=list(origin), baseOrientation=pb.getQuaternionFromEuler([0, 0, base_yaw]),
                              useMaximalCoordinates=maximal, physicsClientId=client)
    if not collision:
        # A render-only body must cost the physics nothing: no collision pairs, asleep for good.
        pb.setCollisionFilterGroupMask(body, -1, 0, 0, physicsClientId=client)
        pb.changeDynamics(body, -1, activationState=pb.ACTIVATION_STATE_SLEEP + pb.ACTIVATION_STATE_DISABLE_WAKEUP,
                          physicsClientId=client)
    return body


@dataclass
class CullableBody:
    """A visual-only body of one colour and its bounding sphere, hidden while the camera cannot see it or
    while its far-detail group (``lod_group``, an index into ``SceneBuilder.far_groups``) stands in for it."""

    body: int
    center: np.ndarray
    radius: float
    rgba: Tuple[float, float, float, float]
    visible: bool = True
    lod_group: Optional[int] = None


@dataclass
class FarDetailGroup:
    """One body holding the shapes of several cullable bodies at the far level of detail (coarser meshes),
    shown instead of them while it is in view and all of it is beyond ``SceneBuilder.lod_distance``.
    Grouping keeps the extra render-only bodies few: each costs the physics a little per step."""

    body: int
    center: np.ndarray
    radius: float
    rgba: Tuple[float, float, float, float]
    visible: bool = False


def _chunks(prims: List[Primitive], key) -> List[List[Primitive]]:
    """Primitives grouped by ``key``, each group cut into chunks of at most 16."""
    groups: Dict[object, List[Primitive]] = {}
    for prim in prims:
        groups.setdefault(key(prim), []).append(prim)
    return [group[start:start + MAX_SHAPES_PER_CALL] for _, group in sorted(groups.items(), key=lambda item: str(item[0]))
            for start in range(0, len(group), MAX_SHAPES_PER_CALL)]


def _centroid(prims: Sequence[Primitive]) -> Tuple[float, float, float]:
    return (sum(p.position[0] for p in prims) / len(prims), sum(p.position[1] for p in prims) / len(prims), 0.0)


@lru_cache(maxsize=None)
def _mesh_extent(file_name: str) -> float:
    """Largest horizontal radius or |z| of a unit mesh's vertices (a volume-matched mesh pokes out beyond 1)."""
    vertices = [[float(v) for v in line.split()[1:4]] for line in Path(file_name).read_text().splitlines()
                if line.startswith("v ")]
    return max(max(math.hypot(x, y), abs(z)) for x, y, z in vertices)


def _reach(prim: Primitive, far_detail: bool) -> float:
    """Half size of an axis-aligned cube around ``prim.position`` that holds all of the primitive as rendered:
    a box turned by its yaw, or the mesh drawn for a round shape (``far_detail``: its far level of detail)."""
    hx, hy, hz = prim.half_extents
    if prim.shape == "box":
        cos, sin = abs(math.cos(prim.yaw)), abs(math.sin(prim.yaw))
        return max(hx * cos + hy * sin, hx * sin + hy * cos, hz)
    return max(hx, hy, hz) * _mesh_extent(_mesh_file(prim.shape, far_detail))


def _bounding_sphere(prims: Sequence[Primitive], far_detail: bool = False) -> Tuple[np.ndarray, float]:
    """A sphere holding all of ``prims`` as rendered (conservative: culling must never hide a visible body)."""
    reaches = [_reach(prim, far_detail) for prim in prims]
    low = np.min([np.subtract(p.position, reach) for p, reach in zip(prims, reaches)], axis=0)
    high = np.max([np.add(p.position, reach) for p, reach in zip(prims, reaches)], axis=0)
    return (low + high) / 2, float(np.linalg.norm(high - low) / 2)


@dataclass
class BuiltLayout:
    """The bodies a layout was built into."""

    bodies: List[int]
    collision_bodies: List[int]  # the subset the physics sees
    cullable: List[CullableBody]
    far_groups: List[FarDetailGroup]
    ground: int  # the ground body (bodies[0]): collision plane and a level square visual, top at z = 0
    ground_half_size: float


def build_layout(client: int, layout: Layout, ground_rgba: Sequence[float], mode: str = "compound") -> BuiltLayout:
    """Create the layout's static bodies (plus the ground) in ``client``.

    ``compound``: collision shapes in 20 m tiles (<= 16 per body, no visuals) and visual shapes in
    single-colour 10 m tiles (<= 16 per body, no collision, low-poly meshes) that :meth:`SceneBuilder.cull`
    can hide; all as maximal-coordinate rigid bodies, the visual-only ones filtered out of collision and
    asleep. ``naive``: one default multibody per primitive with default PyBullet shapes, nothing culled.
    Neither has sky geometry.
    """
    check_build_mode(mode)
    far = layout.half_size + GROUND_MARGIN
    ground_plane = pb.createCollisionShape(pb.GEOM_PLANE, physicsClientId=client)
    ground_visual = pb.createVisualShape(pb.GEOM_BOX, halfExtents=[far, far, 0.005], rgbaColor=list(ground_rgba),
                                         visualFramePosition=[0, 0, -0.005], physicsClientId=client)
    bodies = [pb.createMultiBody(0.0, ground_plane, ground_visual, physicsClientId=client)]
    prims = list(layout.primitives)
    if mode == "naive":
        bodies += [_create_body(client, [prim], prim.position, low_poly=False, maximal=False) for prim in prims]
        return BuiltLayout(bodies, [bodies[0]] + [body for body, prim in zip(bodies[1:], prims) if prim.collision], [],
                           [], bodies[0], far)
    colliders = [prim for prim in prims if prim.collision]
    for group in _chunks(colliders, lambda prim: _tile(prim, COLLISION_TILE)):
        bodies.append(_create_body(client, group, _centroid(group), visual=False))
    collision_bodies = list(bodies)
    cullable: List[CullableBody] = []
    far_groups: List[FarDetailGroup] = []
    for group in _chunks(prims, lambda prim: (_tile(prim, LOD_TILE), prim.rgba)):
        lod_group = None
        if any(prim.shape in FAR_DETAIL_SHAPES for prim in group):
            far_body = _create_body(client, group, _centroid(group), collision=False, far_detail=True)
            pb.changeVisualShape(far_body, -1, rgbaColor=list(group[0].rgba[:3]) + [0.0], physicsClientId=client)
            lod_group = len(far_groups)
            far_groups.append(FarDetailGroup(far_body, *_bounding_sphere(group, far_detail=True), group[0].rgba))
            bodies.append(far_body)
        for part in _chunks(group, lambda prim: _tile(prim, VISUAL_TILE)):
            body = _create_body(client, part, _centroid(part), collision=False)
            cullable.append(CullableBody(body, *_bounding_sphere(part), part[0].rgba, lod_group=lod_group))
            bodies.append(body)
    return BuiltLayout(bodies, collision_bodies, cullable, far_groups, bodies[0], far)


def _tile(prim: Primitive, size: float) -> Tuple[int, int]:
    return int(math.floor(prim.position[0] / size)), int(math.floor(prim.position[1] / size))


class SceneBuilder:
    """Keeps one scene built in a client: rebuilds the layout only when it changes, moves the target."""

    def __init__(self, client: int, ground_rgba: Sequence[float], mode: str = "compound",
                 lod_distance: float = LOD_DISTANCE):
        check_build_mode(mode)
        self.client = client
        self.lod_distance = lod_distance  # math.inf: always the full level of detail
        self.ground_rgba = tuple(ground_rgba)
        self.mode = mode
        self.layout: Optional[Layout] = None
        self.static_bodies: List[int] = []
        self.cullable: List[CullableBody] = []
        self._cull_centers = np.zeros((0, 3))
        self._cull_radii = np.zeros(0)
        self.far_groups: List[FarDetailGroup] = []
        self._far_centers = np.zeros((0, 3))
        self._far_radii = np.zeros(0)
        self._lod_groups = np.zeros(0, dtype=int)
        self.collision_bodies: List[int] = []
        self.ground_body: Optional[int] = None
        self.ground_half_size = 0.0
        self._ground_shown = True
        self.target_body: Optional[int] = None
        self._target_shape: Optional[tuple] = None  # the built target's parts in its own frame

    def load(self, scene: Scene) -> int:
        """Make ``scene`` current; returns the target's body id."""
        if self.layout is not scene.layout:
            for body in self.static_bodies:
                pb.removeBody(body, physicsClientId=self.client)
            built = build_layout(self.client, scene.layout, self.ground_rgba, self.mode)
            self.static_bodies, self.cullable = built.bodies, built.cullable
            self.collision_bodies = built.collision_bodies
            self._cull_centers = np.array([item.center for item in self.cullable]).reshape(-1, 3)
            self._cull_radii = np.array([item.radius for item in self.cullable])
            self.far_groups = built.far_groups
            self._far_centers = np.array([group.center for group in self.far_groups]).reshape(-1, 3)
            self._far_radii = np.array([group.radius for group in self.far_groups])
            # -1 (no group) indexes the extra "not far" entry appended in cull()
            self._lod_groups = np.array([-1 if item.lod_group is None else item.lod_group for item in self.cullable],
                                        dtype=int)
            self.ground_body, self.ground_half_size = built.ground, built.ground_half_size
            self._ground_shown = True
            self.layout = scene.layout
        base = (scene.target_position[0], scene.target_position[1], 0.0)
        local = _target_local(scene, base)
        if self.target_body is None or local != self._target_shape:
            if self.target_body is not None:
                pb.removeBody(self.target_body, physicsClientId=self.client)
            self.target_body = _create_body(self.client, scene.target_parts, base, scene.target_yaw)
            self._target_shape = local
        else:
            pb.resetBasePositionAndOrientation(self.target_body, base,
                                               pb.getQuaternionFromEuler([0.0, 0.0, scene.target_yaw]),
                                               physicsClientId=self.client)
        return self.target_body

    def cull(self, pose) -> int:
        """Hide the visual bodies outside the camera frustum ``pose`` (a ``CameraPose``), show the others --
        through their far-detail group where it is in view and all of its bounding sphere is farther than
        ``lod_distance`` from the camera.

        TinyRenderer skips fully transparent shapes, so hidden bodies cost nothing to render; only bodies
        whose visibility changed are touched. Returns how many cullable bodies are in view.
        """
        visible = pose.sees_spheres(self._cull_centers, self._cull_radii)
        far = pose.sees_spheres(self._far_centers, self._far_radii) & (
            np.linalg.norm(self._far_centers - pose.eye, axis=1) - self._far_radii > self.lod_distance)
        near = visible & ~np.append(far, False)[self._lod_groups]
        for items, shown in ((self.cullable, near), (self.far_groups, far)):
            for index in np.flatnonzero(shown != np.array([item.visible for item in items], dtype=bool)):
                item = items[index]
                item.visible = bool(shown[index])
                self._set_alpha(item.body, item.rgba, item.visible)
        return int(visible.sum())

    def _set_alpha(self, body: int, rgba: Tuple[float, ...], shown: bool) -> None:
        pb.changeVisualShape(body, -1, rgbaColor=list(rgba[:3]) + [rgba[3] if shown else 0.0],
                             physicsClientId=self.client)

    def show_ground(self, shown: bool) -> None:
        """Draw the ground's visual square (``True``, as built) or hide it so that it costs the renderer
        nothing (then ``BackdropPainter`` paints it)."""
        if self.ground_body is None or shown == self._ground_shown:
            return
        self._set_alpha(self.ground_body, self.ground_rgba, shown)
        self._ground_shown = shown


def _target_local(scene: Scene, base: Tuple[float, float, float]) -> Tuple[Tuple[float, ...], ...]:
    """The target's parts in its own frame, rounded: equal tuples mean the built body can be reused."""
    cos, sin = math.cos(-scene.target_yaw), math.sin(-scene.target_yaw)
    rows = []
    for prim in scene.target_parts:
        dx, dy = prim.position[0] - base[0], prim.position[1] - base[1]
        rows.append((prim.shape, round(dx * cos - dy * sin, 6), round(dx * sin + dy * cos, 6),
                     round(prim.position[2], 6), prim.half_extents, prim.rgba))
    return tuple(rows)
