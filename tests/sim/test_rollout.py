"""run_episode: the one closed-loop rollout, on the real PyBullet env."""
import numpy as np
import pytest

from liquid_nav.expert import PrivilegedExpert
from liquid_nav.sim.env import FlyToTargetEnv
from liquid_nav.sim.rollout import HoverPilot, run_episode


@pytest.fixture(scope="module")
def env():
    env = FlyToTargetEnv(world="forest", camera="small", max_episode_seconds=8.0)
    yield env
    env.close()


def test_expert_episode_record_is_complete_and_aligned(env):
    episode = run_episode(env, PrivilegedExpert.from_env(env), 3, record_frames=True)
    steps = episode.steps
    assert episode.success and steps > 30 and episode.world == "forest" and episode.seed == 3
    assert episode.commands.shape == (steps, 4) and episode.commands.dtype == np.float32
    for array in (episode.stamps_ns, episode.dts, episode.yaws, episode.distances, episode.bearings, episode.collisions):
        assert array.shape == (steps + 1,)
    assert episode.positions.shape == (steps + 1, 3) and episode.quaternions.shape == (steps + 1, 4)
    assert episode.frames.shape == (steps + 1, 72, 128, 3) and episode.frames.dtype == np.uint8
    assert episode.stamps_ns[0] == 0 and np.abs(np.diff(episode.stamps_ns) - 1e9 / 30).max() < 1
    assert episode.dts == pytest.approx(np.full(steps + 1, 1 / 30))
    assert episode.distances[-1] < 2.0 < episode.distances[0]
    assert episode.duration == pytest.approx(steps / 30) and episode.path_length > episode.distances[0] - 2.5
    assert episode.labels is None and episode.timing.env_step > 0 and episode.timing.pilot > 0


def test_same_seed_same_record(env):
    first = run_episode(env, PrivilegedExpert.from_env(env), 5, max_steps=20, record_frames=True)
    second = run_episode(env, PrivilegedExpert.from_env(env), 5, max_steps=20, record_frames=True)
    assert np.array_equal(first.frames, second.frames) and np.array_equal(first.commands, second.commands)
    assert np.array_equal(first.positions, second.positions)


def test_labeler_answers_every_observation_without_flying(env):
    episode = run_episode(env, HoverPilot(), 3, labeler=PrivilegedExpert.from_env(env), max_steps=40)
    assert episode.outcome == "cut" and episode.reason == "stopped after 40 steps" and episode.steps == 40
    assert np.all(episode.commands == 0)
    assert episode.labels.shape == (40, 4) and np.abs(episode.labels[10:, 0]).max() > 0.3  # the expert wants to go
    assert np.abs(episode.positions[-1, :2] - episode.positions[0, :2]).max() < 0.1  # but the drone hovered


def test_hover_floor_times_out():
    env = FlyToTargetEnv(world="urban", render_observations=False, max_episode_seconds=1.0)
    try:
        episode = run_episode(env, HoverPilot(), 0)
    finally:
        env.close()
    assert episode.outcome == "timeout" and episode.steps == 30 and episode.frames is None
