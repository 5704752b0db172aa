"""FlyToTargetEnv in real PyBullet: gymnasium compliance, determinism, info contract, outcomes, visibility."""
import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from liquid_nav.sim.env import ENV_ID, INFO_KEYS, FlyToTargetEnv


@pytest.fixture(scope="module")
def env():
    environment = FlyToTargetEnv(world="forest", camera="small")
    yield environment
    environment.close()


def red_pixels(image):
    image = image.astype(int)
    red, green, blue = image[..., 0], image[..., 1], image[..., 2]
    return int(((red > 80) & (red > 2.5 * green) & (red > 2.5 * blue)).sum())


@pytest.mark.filterwarnings("ignore:.*symmetric and normalized space")  # actions are physical units on purpose
def test_check_env_passes():
    environment = FlyToTargetEnv(world="urban", camera="small")
    try:
        check_env(environment, skip_render_check=True)
    finally:
        environment.close()


def test_registered_id_spaces_and_info_contract():
    environment = gym.make(ENV_ID, camera="small", world="forest_winter")
    try:
        observation, info = environment.reset(seed=2)
        assert environment.observation_space.shape == (72, 128, 3) and observation.dtype == np.uint8
        assert environment.action_space.shape == (4,) and environment.action_space.dtype == np.float32
        assert environment.action_space.high[0] >= 3.0  # the default vehicle flies at least 3 m/s
        assert set(info) == set(INFO_KEYS)
        assert info["outcome"] is None and info["time"] == 0.0 and info["world"] == "forest_winter"
        observation, reward, terminated, truncated, info = environment.step(environment.action_space.sample())
        assert info["time"] == pytest.approx(1 / 30) and not terminated and not truncated
    finally:
        environment.close()


def _rollout(environment, seed, actions):
    observation, info = environment.reset(seed=seed)
    record = [(observation, info)]
    for action in actions:
        observation, reward, terminated, truncated, info = environment.step(action)
        record.append((observation, info))
        if terminated or truncated:
            break
    return record


def test_deterministic_for_a_seed_even_after_other_episodes(env):
    actions = np.random.default_rng(0).uniform(env.action_space.low, env.action_space.high, (25, 4)).astype(np.float32)
    first = _rollout(env, 11, actions)
    _rollout(env, 40, actions[:5])  # another layout in between
    second = _rollout(env, 11, actions)
    assert len(first) == len(second)
    for (obs_a, info_a), (obs_b, info_b) in zip(first, second):
        assert np.array_equal(obs_a, obs_b)
        for key in INFO_KEYS:
            assert np.array_equal(np.asarray(info_a[key]), np.asarray(info_b[key])), key


def test_target_is_visible_in_the_first_frame_and_not_when_facing_away(env):
    for seed in range(3):
        observation, info = env.reset(seed=seed)
        assert info["target_in_view"]
        assert red_pixels(observation) >= 3, f"seed {seed}: no red target pixels"
        start = env.scene.start_position
        env.sim.reset_drone(start, env.scene.start_yaw + math.pi)
        assert red_pixels(env.sim.render().rgb) == 0


def _place(env, offset_from_target, altitude, facing_target=True):
    target = np.asarray(env.scene.target_position)
    position = np.array([target[0] + offset_from_target[0], target[1] + offset_from_target[1], altitude])
    yaw = math.atan2(target[1] - position[1], target[0] - position[0])
    env.sim.reset_drone(position, yaw if facing_target else yaw + math.pi)


def test_success_when_close_slow_and_target_in_view(env):
    env.reset(seed=3)
    _place(env, (1.6, 0.0), 0.9)
    _, reward, terminated, truncated, info = env.step(np.zeros(4, np.float32))
    assert info["outcome"] == "success" and terminated and not truncated and reward > 5
    assert "reached the target" in info["reason"]


def test_no_success_when_the_target_is_behind(env):
    env.reset(seed=3)
    _place(env, (1.6, 0.0), 0.9, facing_target=False)
    _, _, terminated, _, info = env.step(np.zeros(4, np.float32))
    assert info["outcome"] is None and not terminated and not info["target_in_view"]


def test_a_target_beyond_the_far_plane_is_not_in_view(env):
    env.reset(seed=3)
    far = env.sim.camera.config.far
    _place(env, (far * 0.5, 0.0), 1.5)
    assert env.target_in_view(env.sim.state())
    _place(env, (far * 1.5, 0.0), 1.5)
    assert not env.target_in_view(env.sim.state())


def test_collision_when_flying_into_the_ground(env):
    env.reset(seed=4)
    outcome = None
    for _ in range(120):
        _, reward, terminated, truncated, info = env.step(np.array([0, 0, -2.0, 0], np.float32))
        if terminated or truncated:
            outcome = info["outcome"]
            break
    assert outcome == "collision" and info["collision"] and terminated and reward < 0


def test_collision_with_a_tree(env):
    env.reset(seed=5)
    trunk = next(p for p in env.scene.layout.primitives if p.shape == "cylinder" and p.collision)
    radius = trunk.half_extents[0]
    position = (trunk.position[0] - radius - 1.0, trunk.position[1], 1.5)
    env.sim.reset_drone(position, 0.0)  # facing +x, towards the trunk
    for _ in range(90):
        _, _, terminated, truncated, info = env.step(np.array([2.0, 0, 0, 0], np.float32))
        if terminated or truncated:
            break
    assert info["outcome"] == "collision"


def test_out_of_bounds_when_leaving_the_area(env):
    env.reset(seed=6)
    half = env.world.half_size
    assert env.world.max_altitude > 11.5
    env.sim.reset_drone((half - 1.0, 0.0, 11.5), 0.0)  # above the trees, below the ceiling, facing out
    steps = 0
    for steps in range(1, 60):
        _, _, terminated, truncated, info = env.step(np.array([3.0, 0, 0, 0], np.float32))
        if terminated or truncated:
            break
    assert info["outcome"] == "out_of_bounds" and terminated and "left the area" in info["reason"]
    assert info["position"][0] > half and steps > 3


def test_out_of_bounds_above_the_ceiling(env):
    env.reset(seed=6)
    env.sim.reset_drone((0.0, 0.0, env.world.max_altitude - 0.3), 0.0)
    for _ in range(30):
        _, _, terminated, truncated, info = env.step(np.array([0, 0, 2.0, 0], np.float32))
        if terminated or truncated:
            break
    assert info["outcome"] == "out_of_bounds" and info["position"][2] > env.world.max_altitude


def test_timeout_truncates():
    environment = FlyToTargetEnv(world="forest", camera="small", max_episode_seconds=0.5, render_observations=False)
    try:
        observation, _ = environment.reset(seed=0)
        assert not observation.any()  # privileged-only: no rendering
        steps = 0
        while True:
            _, _, terminated, truncated, info = environment.step(np.zeros(4, np.float32))
            steps += 1
            if terminated or truncated:
                break
        assert info["outcome"] == "timeout" and truncated and not terminated and steps == 15
        with pytest.raises(RuntimeError, match="reset"):
            environment.step(np.zeros(4, np.float32))
    finally:
        environment.close()


def test_bad_actions_and_options_are_refused(env):
    env.reset(seed=0)
    with pytest.raises(ValueError, match="4 finite numbers"):
        env.step(np.array([np.nan, 0, 0, 0]))
    with pytest.raises(ValueError, match="4 finite numbers"):
        env.step(np.zeros(3))
    with pytest.raises(TypeError, match="unknown option"):
        FlyToTargetEnv(wrold="forest")
    with pytest.raises(ValueError, match="non-negative integer, got -1"):
        env.reset(options={"scene_seed": -1})


@pytest.mark.parametrize("option, message", [({"build_mode": "fast"}, "EnvConfig.build_mode"),
                                             ({"max_episode_seconds": 0.0}, "max_episode_seconds"),
                                             ({"success": "strict"}, "SuccessCriteria")])
def test_bad_config_is_refused_before_a_simulator_is_opened(option, message):
    import pybullet as pb

    clients = [client for client in range(64) if pb.isConnected(physicsClientId=client)]
    with pytest.raises(ValueError, match=message):
        FlyToTargetEnv(**option)
    assert [client for client in range(64) if pb.isConnected(physicsClientId=client)] == clients


def test_success_criteria_that_can_never_hold_are_refused():
    from liquid_nav.sim.env import SuccessCriteria

    with pytest.raises(ValueError, match="0 <= low < high"):
        SuccessCriteria(altitude=(3.0, 0.4))
    with pytest.raises(ValueError, match="radius > 0"):
        SuccessCriteria(radius=float("nan"))
