"""Scene building in real PyBullet: compound bodies of <= 16 shapes, the same content as the naive build,
and layout reuse when only the start and the target change."""
import pybullet as pb
import pytest

from liquid_nav.sim.scene_builder import MAX_SHAPES_PER_CALL, SceneBuilder, _backdrop
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
    # the same geometry either way (+1 ground); the naive build adds sky walls, the env paints the sky instead
    assert compound_shapes == len(scene.layout.primitives) + 1
    assert naive_shapes == compound_shapes + len(_backdrop(scene.layout))
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
