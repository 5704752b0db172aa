"""BackendPilot flies a policy as controller_node does: stamp dts, state carried all episode, NaN -> zero."""
import numpy as np
import pytest
import torch

from liquid_nav.evaluate.pilots import BackendPilot
from liquid_nav.models.preprocessing import prepare_frame
from liquid_nav.runtime.backends import make_backend_from_policy
from liquid_nav.sim.env import FlyToTargetEnv
from liquid_nav.sim.rollout import run_episode
from tests.models.conftest import small_policy


def test_closed_loop_commands_equal_the_policy_over_the_recorded_sequence():
    policy = small_policy("cfc_ncp", seed=3)
    env = FlyToTargetEnv(world="forest", camera="small", control_hz=20.0)
    try:
        episode = run_episode(env, BackendPilot(make_backend_from_policy(policy)), 4, max_steps=25,
                              record_frames=True)
    finally:
        env.close()
    assert episode.dts[1:] == pytest.approx(np.full(25, 0.05)) and episode.dts[0] == pytest.approx(1 / 30)
    frames = np.stack([prepare_frame(frame, policy.config.preprocessing) for frame in episode.frames[:-1]])
    with torch.no_grad():
        expected = policy(torch.from_numpy(frames)[None], torch.from_numpy(episode.dts[:-1])[None])[0].numpy()
    assert np.abs(episode.commands - expected).max() < 1e-5  # one recurrent sequence, the rule's dts
    assert np.abs(episode.commands).max() > 0


class NaNBackend:
    def __init__(self):
        self.resets = 0

    def reset(self):
        self.resets += 1

    def step(self, frame, dt):
        return np.full(4, np.nan, np.float32)


def test_non_finite_outputs_become_zero_commands_and_are_counted():
    backend = NaNBackend()
    pilot = BackendPilot(backend)
    env = FlyToTargetEnv(world="forest", camera="small")
    try:
        episode = run_episode(env, pilot, 1, max_steps=5)
    finally:
        env.close()
    assert np.all(episode.commands == 0)
    assert pilot.core.counters.rejected == {"nonfinite_output": 5} and pilot.last_result.rejected


class ConstantBackend:
    """Always asks for 5 m/s forward and 3 rad/s of yaw: beyond every safety limit."""

    def reset(self):
        pass

    def step(self, frame, dt):
        return np.array([5.0, 0.0, 0.0, 3.0], np.float32)


def test_with_safety_commands_pass_the_safety_nodes_gate_on_the_frame_clock():
    from liquid_nav.runtime.safety import SafetyConfig

    limits = SafetyConfig(max_vx=2.0, max_speed=2.5, max_yaw_rate=1.0, max_accel=4.0, max_yaw_accel=4.0)
    pilot = BackendPilot(ConstantBackend(), safety=limits)
    env = FlyToTargetEnv(world="forest", camera="small")
    try:
        episode = run_episode(env, pilot, 2, max_steps=40)
        again = run_episode(env, pilot, 2, max_steps=40)  # each episode arms a fresh gate
    finally:
        env.close()
    commands = episode.commands
    assert np.all(commands[0] == 0)  # armed at the first frame: the rate limit starts from rest
    ramp = np.minimum(np.arange(len(commands)) * 4.0 / 30, 2.0)  # max_accel x the frame interval, up to max_vx
    assert commands[:, 0] == pytest.approx(ramp, abs=1e-5)
    assert commands[:, 0].max() == pytest.approx(2.0) and commands[:, 3].max() == pytest.approx(1.0)  # clamped
    assert np.array_equal(commands, again.commands)
    unguarded = run_episode_commands(BackendPilot(ConstantBackend()))
    assert np.all(unguarded[:, 0] == 5.0)  # without safety the raw network command flies


def run_episode_commands(pilot):
    env = FlyToTargetEnv(world="forest", camera="small")
    try:
        return run_episode(env, pilot, 2, max_steps=3).commands
    finally:
        env.close()
