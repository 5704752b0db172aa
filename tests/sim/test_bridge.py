"""SimBridge on the real PyBullet env: monotonic sim clock, command hold then hover, expert, episodes."""
import numpy as np
import pytest

from liquid_nav.expert import PrivilegedExpert
from liquid_nav.sim.bridge import SimBridge, SimBridgeConfig
from liquid_nav.sim.env import EnvConfig


@pytest.fixture(scope="module")
def bridge():
    sim = SimBridge(SimBridgeConfig(EnvConfig(world="forest", camera="small", max_episode_seconds=2.0),
                                    command_timeout=0.2), pilot_factory=PrivilegedExpert.from_env)
    yield sim
    sim.close()


def test_command_is_held_for_the_timeout_then_the_vehicle_hovers(bridge):
    first = bridge.start_episode(5)
    assert first.new_episode and first.episode >= 1 and first.seed == 5 and first.image.shape == (72, 128, 3)
    bridge.set_command([0.5, 0.0, 0.1, 0.2])
    applied = [bridge.step().applied_command for _ in range(10)]
    held = [np.allclose(a, [0.5, 0.0, 0.1, 0.2]) for a in applied]
    assert held == [True] * 6 + [False] * 4  # 0.2 s at 30 Hz, then zero velocity
    assert all(np.all(a == 0) for a in applied[6:])


def test_clock_is_monotonic_across_episodes_and_episodes_auto_reset(bridge):
    frame = bridge.start_episode(11)
    period = round(1e9 / 30)
    clocks, seeds, outcomes = [frame.clock_ns], [], []
    for _ in range(70):  # 2 s episodes: at least one ends by timeout and the next one starts
        frame = bridge.step()
        clocks.append(frame.clock_ns)
        seeds.append(frame.seed)
        if frame.info["outcome"] is not None:
            outcomes.append(frame.info["outcome"])
    steps = np.diff(clocks)
    assert np.all(steps > 0) and np.all(np.abs(steps - period) <= 1)
    assert outcomes and 12 in seeds


def test_expert_commands_fly_towards_the_target(bridge):
    frame = bridge.start_episode(3)
    start = frame.info["distance"]
    for _ in range(55):
        assert frame.pilot_command is not None and np.all(np.isfinite(frame.pilot_command))
        bridge.set_command(frame.pilot_command)
        frame = bridge.step()
    assert frame.info["distance"] < start - 1.0


def test_bad_commands_and_use_without_episode_are_refused():
    sim = SimBridge(SimBridgeConfig(EnvConfig(camera="small", max_episode_seconds=0.1), auto_reset=False))
    with pytest.raises(RuntimeError, match="before start_episode"):
        sim.step()
    assert sim.pilot is None and sim.start_episode(1).pilot_command is None
    with pytest.raises(ValueError, match="4 finite numbers"):
        sim.set_command([np.nan, 0, 0, 0])
    while sim.running:
        sim.step()
    assert sim.outcome == "timeout"
    with pytest.raises(RuntimeError, match="auto_reset is off"):
        sim.step()
    sim.close()
    with pytest.raises(ValueError, match="command_timeout"):
        SimBridgeConfig(command_timeout=0)
    with pytest.raises(ValueError, match="EnvConfig"):
        SimBridgeConfig(env="forest")


def test_answered_only_by_a_command_stamped_with_the_current_frame(bridge):
    frame = bridge.start_episode(21)
    assert not bridge.answered
    bridge.set_command([0.3, 0.0, 0.0, 0.0])  # unstamped (a joystick): holds, but does not answer the frame
    assert not bridge.answered
    bridge.set_command([0.3, 0.0, 0.0, 0.0], frame.clock_ns - 1)  # stamped with another frame
    assert not bridge.answered
    bridge.set_command([0.3, 0.0, 0.0, 0.0], frame.clock_ns)
    assert bridge.answered
    following = bridge.step()
    assert following.clock_ns > frame.clock_ns and not bridge.answered  # each new frame waits for its own answer
    assert np.allclose(following.applied_command, [0.3, 0.0, 0.0, 0.0])
    bridge.set_command([0.1, 0.0, 0.0, 0.0], following.clock_ns)
    assert bridge.answered
    bridge.start_episode(22)
    assert not bridge.answered
