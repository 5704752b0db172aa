"""The privileged expert reaches the target in every shipped world with smooth, bounded commands."""
import numpy as np
import pytest

from liquid_nav.expert import ExpertConfig, PrivilegedExpert
from liquid_nav.sim.env import FlyToTargetEnv
from liquid_nav.sim.rollout import run_episode


@pytest.mark.parametrize("world", ["forest", "forest_autumn", "forest_winter", "urban"])
def test_expert_reaches_the_target_smoothly(world):
    env = FlyToTargetEnv(world=world, camera="small", render_observations=False)
    try:
        expert = PrivilegedExpert.from_env(env)
        config = expert.config
        for seed in (0, 7, 13):
            episode = run_episode(env, expert, seed)
            assert episode.success, f"{world} seed {seed}: {episode.outcome} ({episode.reason})"
            commands = episode.commands.astype(np.float64)
            steps = np.abs(np.diff(np.vstack([np.zeros(4), commands]), axis=0))
            dt = env.control_period
            assert steps[:, :3].max() <= config.max_acceleration * dt + 1e-5
            assert steps[:, 3].max() <= config.max_yaw_acceleration * dt + 1e-5
            assert np.abs(commands[:, 3]).max() <= config.max_yaw_rate + 1e-6
            assert np.hypot(commands[:, 0], commands[:, 1]).max() <= config.cruise_speed + 1e-5
            # it stops: the last command is slow and the drone ends close to the stop distance
            assert np.hypot(*commands[-1, :2]) < 0.8
    finally:
        env.close()


def test_expert_commands_are_float32_and_its_path_keeps_clear_of_obstacles():
    env = FlyToTargetEnv(world="forest", camera="small", render_observations=False)
    try:
        expert = PrivilegedExpert.from_env(env, ExpertConfig(cruise_speed=2.0))
        _, info = env.reset(seed=21)
        with pytest.raises(RuntimeError, match="before reset"):
            expert.act(None, info)
        expert.reset(info)
        command = expert.act(None, info)
        assert command.dtype == np.float32 and command.shape == (4,)
        # the planned path keeps clear of every obstacle by at least the drone's radius
        clearance = expert.grid.footprints.distance(expert.path[1:-8])
        assert clearance.min() > expert.drone_radius
    finally:
        env.close()


def test_expert_rate_limits_follow_the_real_frame_interval():
    env = FlyToTargetEnv(world="forest", render_observations=False, timing="drops30")
    try:
        expert = PrivilegedExpert.from_env(env)
        episode = run_episode(env, expert, 3)
    finally:
        env.close()
    assert episode.success
    intervals = np.diff(episode.stamps_ns[:-1]) * 1e-9  # the dt each command (after the first) was given
    steps = np.abs(np.diff(episode.commands[:, 0].astype(np.float64)))
    assert intervals.max() > 1.5 / 30  # frames were dropped
    assert np.all(steps <= expert.config.max_acceleration * intervals + 1e-5)
    assert steps[intervals > 1.5 / 30].max() > expert.config.max_acceleration / 30 + 1e-3  # more room after a drop
