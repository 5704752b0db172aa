"""Every condition changes what it says it changes: image statistics, the target, start distances, frame
intervals, the wind force; and conditions parse from the command line and from YAML."""
import math

import cv2
import numpy as np
import pytest

from liquid_nav.evaluate.conditions import (FAMILIES, NOMINAL, Condition, ConditionError, Wind, conditions_from_yaml,
                                            parse_condition_argument)
from liquid_nav.evaluate.experiment import ExperimentConfig, ExperimentError, ModelSpec
from liquid_nav.evaluate.pilots import EvaluatedPilot
from liquid_nav.sim.env import EnvConfig, FlyToTargetEnv
from liquid_nav.sim.rollout import HoverPilot, Pilot, run_episode
from liquid_nav.sim.vehicle import load_vehicle
from liquid_nav.sim.worlds import load_world, sample_scene

SEED = 500_003


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    """A real camera frame of the forest (sky, trees, grass, the red target)."""
    env = FlyToTargetEnv(world="forest", camera="small")
    try:
        observation, _ = env.reset(seed=SEED)
    finally:
        env.close()
    return observation


def filtered(condition_text: str, image: np.ndarray, seed: int = SEED) -> np.ndarray:
    (condition,) = parse_condition_argument(condition_text)
    return condition.frame_filter(seed)(image)


def test_noise_has_the_stated_std_and_is_the_same_for_every_model_on_a_seed():
    gray = np.full((72, 128, 3), 128, np.uint8)
    noisy = filtered("noise=20", gray).astype(float) - 128
    assert noisy.std() == pytest.approx(20, rel=0.03) and abs(noisy.mean()) < 0.5
    assert np.array_equal(filtered("noise=20", gray), filtered("noise=20", gray))
    assert not np.array_equal(filtered("noise=20", gray), filtered("noise=20", gray, seed=SEED + 1))
    (condition,) = parse_condition_argument("noise=20")
    one_episode = condition.frame_filter(SEED)
    assert not np.array_equal(one_episode(gray), one_episode(gray))  # fresh noise every frame


def test_photometric_shifts(frame):
    base = frame.astype(float)
    unclipped = (base >= 51) & (base <= 204)
    for shift in (0.2, -0.2):
        change = filtered(f"brightness={shift}", frame) - base
        assert np.all(change[unclipped] == round(shift * 255)) and np.all(np.sign(change) * shift >= 0)
    assert filtered("contrast=0.5", frame).std() == pytest.approx(0.5 * base.std(), rel=0.03)
    dark, bright = filtered("exposure=0.6", frame).astype(float), filtered("exposure=1.4", frame).astype(float)
    assert np.all(np.abs(dark - 0.6 * base) <= 0.5)  # multiplied, rounded to uint8
    assert np.all(np.abs(bright - np.minimum(1.4 * base, 255)) <= 0.5)  # saturates at white
    chroma = lambda image: (image.astype(float) - image.astype(float).mean(axis=2, keepdims=True)).std()
    assert chroma(filtered("saturation=0.5", frame)) == pytest.approx(0.5 * chroma(frame), rel=0.05)
    gray = filtered("saturation=1", frame).astype(int)
    assert np.abs(gray[..., 0] - gray[..., 1]).max() <= 1 and np.abs(gray[..., 1] - gray[..., 2]).max() <= 1


def test_blur_removes_detail_in_order_of_sigma(frame):
    detail = lambda image: cv2.Laplacian(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY), cv2.CV_64F).var()
    values = [detail(frame)] + [detail(filtered(f"blur={sigma}", frame)) for sigma in (1, 2, 4)]
    assert values == sorted(values, reverse=True) and values[-1] < 0.1 * values[0]


def test_occlusion_covers_the_stated_fraction_with_patches_fixed_for_the_episode(frame):
    (condition,) = parse_condition_argument("occlusion=0.2")
    episode = condition.frame_filter(SEED)
    first, second = episode(frame), episode(frame[::-1].copy())
    covered = np.all(first == (45, 42, 40), axis=2)
    assert covered.mean() == pytest.approx(0.2, abs=0.03)
    assert np.array_equal(covered, np.all(second == (45, 42, 40), axis=2))
    other = np.all(condition.frame_filter(SEED + 1)(frame) == (45, 42, 40), axis=2)
    assert not np.array_equal(covered, other)


class LookingPilot:
    """Hovers and keeps what it was shown."""

    def __init__(self) -> None:
        self.frames = []

    def reset(self, info) -> None:
        self.frames = []

    def act(self, observation, info) -> np.ndarray:
        self.frames.append(observation)
        return np.zeros(4, np.float32)


def test_image_conditions_reach_the_pilot_not_the_recorded_view():
    (condition,) = parse_condition_argument("brightness=0.3")
    env = FlyToTargetEnv(condition.env_config(EnvConfig(world="forest", camera="small")))
    looking = LookingPilot()
    try:
        record = run_episode(env, EvaluatedPilot(looking, condition.frame_filter), SEED, record_frames=True, max_steps=5)
    finally:
        env.close()
    assert len(looking.frames) == 5
    for seen, recorded in zip(looking.frames, record.frames):
        assert seen.mean() - recorded.mean() == pytest.approx(0.3 * 255, abs=8)


def scene_under(condition_text: str, world: str = "forest", seed: int = SEED):
    (condition,) = parse_condition_argument(condition_text)
    config = condition.env_config(EnvConfig(world=world))
    spec = config.world if not isinstance(config.world, str) else load_world(config.world)
    scene = sample_scene(spec, seed)
    return config.scene_edit(scene) if config.scene_edit else scene


def test_target_size_and_shape():
    nominal = sample_scene(load_world("forest"), SEED)
    larger = scene_under("target_size=2")
    assert larger.target_position[2] == pytest.approx(2 * nominal.target_position[2])
    assert larger.target_radius == pytest.approx(2 * nominal.target_radius, rel=1e-6)
    cone = scene_under("target_shape=cone")
    assert len(nominal.target_parts) == 6 and [part.shape for part in cone.target_parts] == ["cone"]


def test_target_rotation_turns_the_target_about_its_centre():
    nominal = sample_scene(load_world("forest"), SEED)
    turned = scene_under("target_rotation=90")
    assert turned.target_yaw == pytest.approx(nominal.target_yaw + math.pi / 2)
    center = np.asarray(nominal.target_position[:2])
    for before, after in zip(nominal.target_parts, turned.target_parts):
        offset_before = np.asarray(before.position[:2]) - center
        offset_after = np.asarray(after.position[:2]) - center
        assert offset_after == pytest.approx([-offset_before[1], offset_before[0]], abs=1e-9)
        assert after.yaw == pytest.approx(before.yaw + math.pi / 2)


def test_target_occlusion_puts_a_wall_between_start_and_target():
    nominal = sample_scene(load_world("forest"), SEED)
    occluded = scene_under("target_occlusion=0.5")
    assert occluded.target_parts[:-1] == nominal.target_parts
    wall = occluded.target_parts[-1]
    target, start = np.asarray(nominal.target_position[:2]), np.asarray(nominal.start_position[:2])
    along = (np.asarray(wall.position[:2]) - target) @ (start - target) / np.linalg.norm(start - target)
    assert along == pytest.approx(0.8) and np.linalg.norm(np.asarray(wall.position[:2]) - target) == pytest.approx(0.8)
    assert 2 * wall.half_extents[2] == pytest.approx(0.5 * 2 * nominal.target_position[2])
    assert 2 * wall.half_extents[1] > 2 * nominal.target_radius


def test_the_env_flies_the_edited_scene():
    (condition,) = parse_condition_argument("target_rotation=180")
    env = FlyToTargetEnv(condition.env_config(EnvConfig(world="forest", render_observations=False)))
    try:
        env.reset(seed=SEED)
        assert env.scene.target_yaw == pytest.approx(sample_scene(load_world("forest"), SEED).target_yaw + math.pi)
    finally:
        env.close()


def test_distractors_are_red_obstacles_that_are_not_the_target():
    spec = load_world("urban")
    red = spec.target.color + (1.0,)
    count = lambda scene: sum(prim.rgba == red for prim in scene.layout.primitives)
    nominal, cluttered = sample_scene(spec, SEED), scene_under("distractors=25", "urban")
    assert count(nominal) == 0 and count(cluttered) == 25
    assert len(cluttered.layout.footprints.circles) + len(cluttered.layout.footprints.boxes) > \
        len(nominal.layout.footprints.circles) + len(nominal.layout.footprints.boxes)


def test_range_places_starts_in_the_band():
    for seed in range(SEED, SEED + 8):
        scene = scene_under("range=25-40", seed=seed)
        distance = math.dist(scene.start_position[:2], scene.target_position[:2])
        assert 25 <= distance <= 40


def frame_intervals(condition_text: str, steps: int = 120) -> np.ndarray:
    (condition,) = parse_condition_argument(condition_text)
    env = FlyToTargetEnv(condition.env_config(EnvConfig(world="forest", render_observations=False)))
    try:
        return np.diff(run_episode(env, HoverPilot(), SEED, max_steps=steps).stamps_ns) * 1e-9
    finally:
        env.close()


def test_timing_conditions_change_the_frame_intervals():
    assert frame_intervals("rate=10", 30) == pytest.approx(np.full(30, 0.1), abs=1e-9)
    assert frame_intervals("rate=60", 30) == pytest.approx(np.full(30, 1 / 60), abs=1e-9)
    jittered = frame_intervals("jitter=10")
    assert jittered.mean() == pytest.approx(1 / 30, abs=2e-3) and 0.007 < jittered.std() < 0.013
    dropped = frame_intervals("drops=0.4", 200)
    assert dropped.mean() == pytest.approx((1 / 30) / 0.6, rel=0.15)
    bursts = frame_intervals("bursts=0.06", 200)
    assert bursts.max() >= 4 / 30 - 1e-9


class Forward:
    """Commands 1 m/s forward from the first frame."""

    def reset(self, info) -> None:
        pass

    def act(self, observation, info) -> np.ndarray:
        return np.array([1.0, 0.0, 0.0, 0.0], np.float32)


def test_latency_delays_the_response_to_commands():
    def forward_speed_after(condition_text: str) -> float:
        (condition,) = parse_condition_argument(condition_text)
        env = FlyToTargetEnv(condition.env_config(EnvConfig(world="forest", render_observations=False)))
        pilot: Pilot = Forward()
        try:
            return float(run_episode(env, pilot, SEED, max_steps=6).velocities_body[-1][0])  # 0.2 s
        finally:
            env.close()
    assert forward_speed_after("latency=0") > 0.05 > forward_speed_after("latency=200")


def test_wind_force_is_the_drag_of_its_velocity_with_the_stated_mean_and_gusts():
    vehicle = load_vehicle("x500")
    episode = Wind(6.0).episode(SEED, vehicle)
    times = np.arange(0.0, 400.0, 0.05)
    velocities = np.array([episode.velocity(t) for t in times])
    assert np.linalg.norm(velocities.mean(axis=0)) == pytest.approx(6.0, rel=0.05)
    assert velocities.std(axis=0).mean() == pytest.approx(0.4 * 6.0, rel=0.2)
    drag = vehicle.linear_drag[0] + vehicle.rotor_drag_xy * 4 * vehicle.hover_rpm
    assert episode(3.0) == pytest.approx((drag * episode.velocity(3.0)[0], drag * episode.velocity(3.0)[1], 0.0))
    assert Wind(6.0).episode(SEED, vehicle)(3.0) == episode(3.0)
    assert Wind(6.0).episode(SEED + 1, vehicle)(3.0) != episode(3.0)


def test_wind_pushes_a_hovering_drone_downwind_in_the_physics():
    def drift(condition_text: str):
        (condition,) = parse_condition_argument(condition_text)
        env = FlyToTargetEnv(condition.env_config(EnvConfig(world="forest", render_observations=False)))
        try:
            record = run_episode(env, HoverPilot(), SEED, max_steps=60)  # 2 s
        finally:
            env.close()
        return record.positions[-1] - record.positions[0]
    wind = Wind(8.0).episode(SEED, load_vehicle("x500"))
    downwind = wind.steady / np.linalg.norm(wind.steady)
    moved = drift("wind=8")
    assert moved[:2] @ downwind > 0.3 and abs(moved[2]) < 0.3
    assert np.linalg.norm(drift("wind=0")[:2]) < 0.02


def test_condition_parsing():
    assert parse_condition_argument("nominal") == [NOMINAL]
    assert [c.label for c in parse_condition_argument("noise=5,10")] == ["noise=5", "noise=10"]
    assert [c.label for c in parse_condition_argument("rate")] == ["rate=10", "rate=15", "rate=20", "rate=60"]
    (composite,) = parse_condition_argument("rate=10+noise=10")
    assert composite.label == "rate=10+noise=10" and [p.family for p in composite.perturbations] == ["noise", "rate"]
    assert len(parse_condition_argument("all")) == sum(len(family.levels) for family in FAMILIES.values())
    from_yaml = conditions_from_yaml({"noise": [5], "range": ["15-25", [25, 40]], "wind": 4,
                                      "fog": {"contrast": 0.5, "noise": 10}}, "test.yaml")
    assert [c.label for c in from_yaml] == ["noise=5", "range=15-25", "range=25-40", "wind=4", "fog"]
    for bad in ("smoke", "noise=-1", "target_shape=pyramid", "range=40-25", "noise=5+smoke=1"):
        with pytest.raises(ConditionError):
            parse_condition_argument(bad)


def test_impossible_combinations_are_refused_when_the_experiment_is_made():
    (too_much_jitter,) = parse_condition_argument("rate=60+jitter=10")  # > half a 60 Hz period
    with pytest.raises(ExperimentError, match="jitter"):
        ExperimentConfig(models=(ModelSpec("hover", "hover"),), worlds=("forest",), conditions=(too_much_jitter,))
    assert Condition.single("wind", 4).env_config(EnvConfig()).disturbance == Wind(4.0)
