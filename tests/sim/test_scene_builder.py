"""Scene building in real PyBullet: compound bodies of <= 16 shapes, the same content as the naive build,
and layout reuse when only the start and the target change."""
import math

import numpy as np
import pybullet as pb
import pytest

from liquid_nav.sim.scene_builder import MAX_SHAPES_PER_CALL, SceneBuilder
from liquid_nav.sim.worlds import load_world, sample_scene


@pytest.fixture
def client():
    client_id = pb.connect(pb.DIRECT)
    yield client_id
    pb.disconnect(client_id)


def _visual_shape_count(client_id, body):
    """Visible shapes of a body (collision-only bodies carry one transparent speck)."""
    return sum(1 for shape in pb.getVisualShapeData(body, physicsClientId=client_id) if shape[7][3] > 0)


@pytest.mark.parametrize("world", ["forest", "urban"])
def test_compound_build_groups_shapes_and_keeps_all_geometry(world):
    spec = load_world(world)
    scene = sample_scene(spec, 0)
    counts = {}
    for mode in ("compound", "naive"):
        client_id = pb.connect(pb.DIRECT)
        try:
            builder = SceneBuilder(client_id, spec.ground.color + (1.0,), mode)
            builder.load(scene)
            shapes = [_visual_shape_count(client_id, body) for body in builder.static_bodies]
            counts[mode] = (len(builder.collision_bodies), sum(shapes), max(shapes))
        finally:
            pb.disconnect(client_id)
    compound_bodies, compound_shapes, largest = counts["compound"]
    naive_bodies, naive_shapes, _ = counts["naive"]
    # the same geometry either way (+1 ground), no sky geometry in either (the env paints the sky)
    assert compound_shapes == len(scene.layout.primitives) + 1
    assert naive_shapes == compound_shapes
    assert largest <= MAX_SHAPES_PER_CALL
    assert compound_bodies * 4 <= naive_bodies  # what the physics sees


def test_layout_is_reused_and_target_moved_within_a_layout_block(client):
    spec = load_world("forest")
    first = sample_scene(spec, 0)
    second = sample_scene(spec, 1)  # same layout block (episodes_per_layout > 1)
    assert spec.episodes_per_layout > 1 and first.layout is second.layout
    builder = SceneBuilder(client, spec.ground.color + (1.0,))
    target = builder.load(first)
    bodies = list(builder.static_bodies)
    assert builder.load(second) == target and builder.static_bodies == bodies
    position, _ = pb.getBasePositionAndOrientation(target, physicsClientId=client)
    assert position[:2] == pytest.approx(second.target_position[:2], abs=1e-6)
    other = sample_scene(spec, spec.episodes_per_layout)  # next layout: rebuilt
    builder.load(other)
    assert builder.static_bodies != bodies
    assert pb.getNumBodies(physicsClientId=client) == len(builder.static_bodies) + 1


def test_culling_hides_bodies_behind_the_camera_without_changing_the_image():
    from liquid_nav.sim.env import FlyToTargetEnv

    env = FlyToTargetEnv(world="forest", camera="small")
    try:
        env.reset(seed=0)
        builder, sim = env.builder, env.sim
        builder.lod_distance = math.inf  # full detail everywhere: culling alone must not change the image
        start, yaw = env.scene.start_position, env.scene.start_yaw
        for quarter in range(4):
            sim.reset_drone(start, yaw + quarter * 1.5708)
            visible = builder.cull(sim.camera.pose(sim.state()))
            assert 0 < visible < len(builder.cullable)
            culled = sim.render().rgb
            for item in builder.cullable:  # show everything again
                pb.changeVisualShape(item.body, -1, rgbaColor=list(item.rgba), physicsClientId=sim.client_id)
                item.visible = True
            assert (sim.render().rgb == culled).all()
    finally:
        env.close()


def test_render_camera_culled_and_ground_painted_matches_a_full_render():
    """The env's fast path (frustum culling, ground painted instead of rasterised) against the same scene with
    every body shown and the ground drawn, from level, high and tilted poses anywhere in the forest."""
    from liquid_nav.sim.backdrop import shaded_plane_rgb
    from liquid_nav.sim.env import FlyToTargetEnv

    env = FlyToTargetEnv(world="forest", camera="small")
    try:
        env.reset(seed=0)
        builder, sim = env.builder, env.sim
        builder.lod_distance = math.inf  # full detail everywhere (the level of detail is tested below)
        ground_rgb = np.asarray(shaded_plane_rgb(builder.ground_rgba, sim.lighting))
        rng = np.random.default_rng(3)
        ground_fractions = []
        for pose_index in range(6):
            position = (*rng.uniform(-30.0, 30.0, size=2), rng.uniform(0.5, 11.0))
            sim.reset_drone(position, rng.uniform(-3.0, 3.0))
            if pose_index % 2:  # rolled and pitched body: the camera tilts with it
                tilt = pb.getQuaternionFromEuler([*rng.uniform(-0.5, 0.5, size=2), rng.uniform(-3.0, 3.0)])
                pb.resetBasePositionAndOrientation(sim.drone_id, position, tilt, physicsClientId=sim.client_id)
            fast = env.render_camera()
            builder.show_ground(True)
            for item in builder.cullable:
                pb.changeVisualShape(item.body, -1, rgbaColor=list(item.rgba), physicsClientId=sim.client_id)
                item.visible = True
            frame = sim.render()
            reference = frame.rgb
            reference[frame.depth >= sim.camera.config.far * 0.999] = env._sky_rgb
            differing = (fast != reference).any(axis=2)
            assert differing.mean() <= 0.002, f"pose {pose_index}: {differing.sum()} pixels differ"
            ground_fractions.append((reference == ground_rgb).all(axis=2).mean())
        assert max(ground_fractions) > 0.05  # the painted ground was really exercised
    finally:
        env.close()


def test_a_camera_with_shadows_gets_the_rasterised_ground():
    """Painting cannot cast shadows on the ground, so shadowed cameras draw it."""
    from dataclasses import replace

    from liquid_nav.sim.camera import OnboardCamera
    from liquid_nav.sim.env import FlyToTargetEnv

    env = FlyToTargetEnv(world="forest", camera="small")
    try:
        env.reset(seed=0)
        assert not env.builder._ground_shown
        env.render_camera(OnboardCamera(replace(env.sim.camera.config, shadows=True)))
        assert env.builder._ground_shown
        env.render_camera()
        assert not env.builder._ground_shown
    finally:
        env.close()


def test_far_level_of_detail_is_used_only_far_away_and_barely_changes_the_image():
    from liquid_nav.sim.env import FlyToTargetEnv

    env = FlyToTargetEnv(world="forest", camera="small")
    try:
        env.reset(seed=0)
        builder, sim = env.builder, env.sim
        assert builder.far_groups and all(item.lod_group is not None for item in builder.cullable
                                          if item.rgba[:3] in env.world.trees.canopy_colors)
        rng = np.random.default_rng(5)
        far_used = 0
        for _ in range(4):
            sim.reset_drone((*rng.uniform(-30.0, 30.0, size=2), 1.5), rng.uniform(-3.0, 3.0))
            builder.lod_distance = math.inf
            full = env.render_camera()
            assert not any(group.visible for group in builder.far_groups)
            builder.lod_distance = 30.0
            mixed = env.render_camera()
            eye = sim.camera.pose(sim.state()).eye
            for index, group in enumerate(builder.far_groups):
                if group.visible:  # stands in for its members, all far away
                    assert np.linalg.norm(group.center - eye) - group.radius > 30.0
                    assert not any(item.visible for item in builder.cullable if item.lod_group == index)
                    far_used += 1
            assert (full != mixed).any(axis=2).mean() <= 0.03
        assert far_used > 0
    finally:
        env.close()


def _rendered_vertices(prim, far_detail):
    """World positions of the vertices a primitive is drawn with (box corners or its scaled, turned mesh)."""
    from liquid_nav.sim.scene_builder import _mesh_file

    if prim.shape == "box":
        unit = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
    else:
        lines = open(_mesh_file(prim.shape, far_detail)).read().splitlines()
        unit = np.array([[float(v) for v in line.split()[1:4]] for line in lines if line.startswith("v ")])
    local = unit * np.asarray(prim.half_extents)
    cos, sin = math.cos(prim.yaw), math.sin(prim.yaw)
    turned = np.stack([local[:, 0] * cos - local[:, 1] * sin, local[:, 0] * sin + local[:, 1] * cos, local[:, 2]], 1)
    return turned + np.asarray(prim.position)


@pytest.mark.parametrize("far_detail", [False, True])
def test_bounding_spheres_hold_everything_that_is_drawn(far_detail):
    """Culling hides a body whose sphere is outside the view, so the sphere must hold all its geometry:
    boxes turned by their yaw reach beyond their half extents, the far sphere mesh beyond its radius."""
    from liquid_nav.sim.scene_builder import _bounding_sphere
    from liquid_nav.sim.worlds import Primitive

    rgba = (0.5, 0.5, 0.5, 1.0)
    groups = [
        [Primitive("box", (0.0, 0.0, 0.0), (1.0, 1.0, 0.01), math.pi / 4, rgba),  # corner at x = -1.41
         Primitive("box", (10.0, 0.0, 0.0), (1.0, 1.0, 0.01), 0.0, rgba)],
        [Primitive("sphere", (0.0, 0.0, 5.0), (2.0, 2.0, 2.0), 0.3, rgba),
         Primitive("cylinder", (6.0, -3.0, 4.0), (0.3, 0.3, 4.0), 1.0, rgba),
         Primitive("cone", (-4.0, 2.0, 3.0), (1.5, 1.5, 3.0), 2.0, rgba)],
    ]
    for prims in groups:
        center, radius = _bounding_sphere(prims, far_detail=far_detail)
        vertices = np.vstack([_rendered_vertices(prim, far_detail) for prim in prims])
        assert np.linalg.norm(vertices - center, axis=1).max() <= radius + 1e-9
