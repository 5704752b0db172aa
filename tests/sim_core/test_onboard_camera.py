"""The onboard camera rendered by PyBullet's TinyRenderer: geometry, depth, pitch, presets."""
from __future__ import annotations

import math

import numpy as np
import pybullet as p
import pytest

from liquid_nav.sim.camera import CameraConfig, Lighting, OnboardCamera
from liquid_nav.sim.quadrotor import QuadState

from sim_core_helpers import add_box, add_sphere, red_mask

HOVER_HEIGHT = 2.0


def _ground(client_id: int) -> None:
    add_box(client_id, (0.0, 0.0, -0.05), (200.0, 200.0, 0.05), rgba=(0.25, 0.55, 0.25, 1.0))


@pytest.mark.parametrize("preset, size", [("default", (144, 256)), ("small", (72, 128))])
def test_presets_render_rgb_and_depth_of_the_configured_size(make_sim, preset, size):
    config = CameraConfig.preset(preset)
    sim = make_sim(camera=CameraConfig(width=config.width, height=config.height, depth=True))
    _ground(sim.client_id)
    sim.reset_drone((0.0, 0.0, HOVER_HEIGHT), 0.0)
    frame = sim.render()
    assert frame.rgb.shape == size + (3,) and frame.rgb.dtype == np.uint8
    assert frame.depth.shape == size and frame.depth.dtype == np.float32
    assert sim.camera.config.aspect == pytest.approx(16.0 / 9.0)


def test_depth_is_off_unless_asked(make_sim):
    assert make_sim().render().depth is None


def test_image_is_not_degenerate(make_sim):
    sim = make_sim()
    _ground(sim.client_id)
    for i in range(6):
        add_box(sim.client_id, (6.0 + 2 * i, -4.0 + 1.6 * i, 1.0), (0.4, 0.4, 1.0), rgba=(0.2 * i, 0.3, 1.0 - 0.15 * i, 1.0))
    sim.reset_drone((0.0, 0.0, HOVER_HEIGHT), 0.0)
    rgb = sim.render().rgb
    assert rgb.std() > 20.0
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 8
    # ground in the lower half, background (sky) in the upper rows
    assert rgb[-1].mean(axis=0)[1] > rgb[-1].mean(axis=0)[0]
    assert not np.array_equal(rgb[0], rgb[-1])


def test_drone_does_not_see_itself(make_sim):
    for vehicle in ("x500", "cf2x"):
        sim = make_sim(vehicle=vehicle)
        sim.reset_drone((0.0, 0.0, HOVER_HEIGHT), 0.0)
        rgb = sim.render().rgb
        assert len(np.unique(rgb.reshape(-1, 3), axis=0)) == 1, f"{vehicle}: its own body is in view"


def test_a_sphere_looks_round(make_sim):
    sim = make_sim()
    add_sphere(sim.client_id, (6.0, 0.0, HOVER_HEIGHT), 0.6)
    sim.reset_drone((0.0, 0.0, HOVER_HEIGHT), 0.0)
    rows, cols = np.nonzero(red_mask(sim.render().rgb))
    width, height = cols.max() - cols.min() + 1, rows.max() - rows.min() + 1
    assert width == pytest.approx(height, abs=1)
    fx, _, _, _ = sim.camera.intrinsics()
    expected_diameter = 2 * 0.6 * fx / (6.0 - sim.vehicle.camera_mount[0])
    assert width == pytest.approx(expected_diameter, rel=0.08)


@pytest.mark.parametrize("pitch_deg, width, height", [(0.0, 256, 144), (-15.0, 256, 144), (10.0, 101, 57)])
def test_intrinsics_project_a_known_point(make_sim, pitch_deg, width, height):
    """A small sphere's image centroid lands where the pinhole model with ``intrinsics()`` puts it."""
    sim = make_sim(camera=CameraConfig(pitch_deg=pitch_deg, width=width, height=height))
    sim.reset_drone((0.0, 0.0, HOVER_HEIGHT), 0.3)
    state = sim.state()
    pose = sim.camera.pose(state)
    right = np.cross(pose.forward, pose.up)
    fx, fy, cx, cy = sim.camera.intrinsics()
    for along, lateral, vertical in ((8.0, 2.5, 1.2), (6.0, -3.0, -1.0), (10.0, 0.0, 0.0)):
        center = pose.eye + along * pose.forward + lateral * right + vertical * pose.up
        body = add_sphere(sim.client_id, center, 0.03 * along)
        rows, cols = np.nonzero(red_mask(sim.render().rgb))
        p.removeBody(body, physicsClientId=sim.client_id)
        expected_u = cx + fx * lateral / along
        expected_v = cy - fy * vertical / along
        assert cols.mean() == pytest.approx(expected_u, abs=0.35)
        assert rows.mean() == pytest.approx(expected_v, abs=0.35)


def test_depth_of_a_wall_at_known_distance_is_metric(make_sim):
    sim = make_sim(camera=CameraConfig(depth=True))
    wall_distance = 7.0
    add_box(sim.client_id, (wall_distance + 0.5, 0.0, HOVER_HEIGHT), (0.5, 30.0, 30.0))
    sim.reset_drone((0.0, 0.0, HOVER_HEIGHT), 0.0)
    depth = sim.render().depth
    expected = wall_distance - sim.vehicle.camera_mount[0]
    # z-depth of a wall facing the camera is the same in every pixel
    assert np.abs(depth - expected).max() < 0.01


def test_far_plane_clips_empty_space(make_sim):
    sim = make_sim(camera=CameraConfig(depth=True, far=50.0))
    frame = sim.render()
    assert frame.depth.max() == pytest.approx(50.0, rel=1e-3)


def _green_fraction(rgb: np.ndarray) -> float:
    rgb = rgb.astype(np.int32)
    return float(((rgb[:, :, 1] > rgb[:, :, 0] + 30) & (rgb[:, :, 1] > rgb[:, :, 2] + 30)).mean())


def _ground_fraction(make_sim, pitch_deg: float) -> float:
    sim = make_sim(camera=CameraConfig(pitch_deg=pitch_deg))
    _ground(sim.client_id)
    sim.reset_drone((0.0, 0.0, HOVER_HEIGHT), 0.0)
    return _green_fraction(sim.render().rgb)


def test_pitch_moves_the_horizon(make_sim):
    level, up, down = (_ground_fraction(make_sim, pitch) for pitch in (0.0, 15.0, -15.0))
    assert down > level > up
    # level camera: the horizon sits just above the image centre (ground to ~200 m, eye at 2 m)
    assert 0.45 < level < 0.6


@pytest.mark.parametrize("stabilized", [False, True])
def test_body_tilt_tilts_a_fixed_camera_but_not_a_stabilized_one(make_sim, stabilized):
    """Flying forward pitches the drone nose-down: a body-fixed camera sees more ground, a gimbal does not."""
    sim = make_sim(camera=CameraConfig(stabilized=stabilized))
    _ground(sim.client_id)
    sim.reset_drone((0.0, 0.0, HOVER_HEIGHT), 0.4)
    level = _green_fraction(sim.render().rgb)
    sim.advance((5.0, 0.0, 0.0, 0.0), duration=0.4)
    state = sim.state()
    assert math.degrees(math.acos(state.rotation_matrix()[2, 2])) > 10.0
    tilted = _green_fraction(sim.render().rgb)
    if stabilized:
        assert tilted == pytest.approx(level, abs=0.01)
        assert sim.camera.pose(state).forward[2] == pytest.approx(0.0, abs=1e-12)
    else:
        assert tilted > level + 0.05


def test_lighting_shades_and_tints_the_scene(make_sim):
    sim = make_sim()
    # a box seen corner-on: its two visible faces point to the front-left and front-right
    box = add_box(sim.client_id, (5.0, 0.0, HOVER_HEIGHT), (1.0, 1.0, 1.0), rgba=(0.8, 0.8, 0.8, 1.0))
    p.resetBasePositionAndOrientation(box, (5.0, 0.0, HOVER_HEIGHT), p.getQuaternionFromEuler([0, 0, math.pi / 4]),
                                      physicsClientId=sim.client_id)
    sim.reset_drone((0.0, 0.0, HOVER_HEIGHT), 0.0)
    _, _, cx, cy = sim.camera.intrinsics()
    row, left, right = int(cy), int(cx) - 8, int(cx) + 8

    def face_brightness(lighting: Lighting):
        sim.lighting = lighting
        rgb = sim.render().rgb.astype(np.int32)
        return rgb[row, left].sum(), rgb[row, right].sum(), rgb[row, left]

    lit_left = face_brightness(Lighting(direction=(-1.0, 1.0, 0.2)))
    lit_right = face_brightness(Lighting(direction=(-1.0, -1.0, 0.2)))
    assert lit_left[0] > lit_left[1] + 30 and lit_right[1] > lit_right[0] + 30
    red_light = face_brightness(Lighting(direction=(-1.0, 1.0, 0.2), color=(1.0, 0.3, 0.3)))[2]
    assert red_light[0] > red_light[1] + 20 and red_light[0] > red_light[2] + 20


@pytest.mark.parametrize(
    "fields, message",
    [({"direction": (0.0, 0.0, 0.0)}, "non-zero"), ({"direction": (float("nan"), 0.0, 1.0)}, "finite"),
     ({"color": (1.0, 2.0, 0.0)}, "in \\[0, 1\\]"), ({"ambient": -1.0}, "ambient"),
     ({"diffuse": float("nan")}, "diffuse must be a finite number")],
)
def test_bad_lighting_is_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        Lighting(**fields)


def test_frustum_test_culls_only_what_is_outside():
    camera = OnboardCamera(CameraConfig(offset=(0.0, 0.0, 0.0)))
    state = QuadState(
        position=np.zeros(3),
        quaternion=np.array(p.getQuaternionFromEuler([0.0, 0.0, math.pi / 2])),
        velocity_world=np.zeros(3),
        angular_velocity_world=np.zeros(3),
        velocity_body=np.zeros(3),
        yaw=math.pi / 2,
        rpy=np.array([0.0, 0.0, math.pi / 2]),
    )
    pose = camera.pose(state)
    assert pose.forward == pytest.approx([0.0, 1.0, 0.0], abs=1e-12)
    # a mount given as a numpy array works like a tuple (body x is world y here)
    mounted = OnboardCamera(CameraConfig(offset=np.array([0.2, 0.0, 0.1]))).pose(state)
    assert mounted.eye == pytest.approx([0.0, 0.2, 0.1], abs=1e-12)
    assert pose.sees_sphere(np.array([0.0, 10.0, 0.0]), 0.5)
    assert not pose.sees_sphere(np.array([0.0, -10.0, 0.0]), 0.5)  # behind
    assert not pose.sees_sphere(np.array([20.0, 10.0, 0.0]), 1.0)  # far to the right (horizontal FOV ~79 deg)
    assert pose.sees_sphere(np.array([-8.0, 10.0, 0.0]), 1.0)  # inside the left edge
    assert pose.sees_sphere(np.array([10.5, 10.0, 0.0]), 3.0)  # centre outside, sphere reaches in
    assert not pose.sees_sphere(np.array([0.0, 10.0, 9.0]), 1.0)  # above the vertical FOV (50 deg)
    assert not pose.sees_sphere(np.array([0.0, 150.0, 0.0]), 1.0)  # beyond the far plane
    centers = np.array([[0.0, 10.0, 0.0], [0.0, -10.0, 0.0], [10.5, 10.0, 0.0], [0.0, 150.0, 0.0]])
    assert pose.sees_spheres(centers, np.array([0.5, 0.5, 3.0, 1.0])).tolist() == [True, False, True, False]


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"width": 0}, "width and height must be positive integers"),
        ({"fov_deg": 180.0}, "fov_deg"),
        ({"near": 2.0, "far": 1.0}, "near < far"),
        ({"far": math.inf}, "far finite"),
        ({"pitch_deg": 100.0}, "pitch_deg"),
        ({"offset": (0.1, 0.0)}, "offset must be None or 3 finite numbers"),
    ],
)
def test_bad_camera_configs_are_refused(fields, message):
    with pytest.raises(ValueError, match=message):
        CameraConfig(**fields)


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown camera preset 'huge'"):
        CameraConfig.preset("huge")


def test_horizontal_fov_follows_the_aspect_ratio():
    config = CameraConfig(width=256, height=144, fov_deg=50.0)
    expected = math.degrees(2 * math.atan(math.tan(math.radians(25.0)) * 256 / 144))
    assert config.horizontal_fov_deg == pytest.approx(expected)
    fx, fy, cx, cy = OnboardCamera(config).intrinsics()
    assert fx == fy and (cx, cy) == (128.0, 71.0)
    assert 2 * math.degrees(math.atan(128 / fx)) == pytest.approx(expected)
