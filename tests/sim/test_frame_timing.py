"""Camera frame timing: the FrameTiming model, its frame clock, and FlyToTargetEnv stepping with it (real PyBullet)."""
import math

import numpy as np
import pytest
import yaml
from gymnasium.utils.env_checker import check_env

from liquid_nav.sim.env import INFO_KEYS, EnvConfig, FlyToTargetEnv
from liquid_nav.sim.frame_timing import PRESETS, FrameClock, FrameTiming

PHYSICS_HZ = 240


def frame_steps(timing, count, seed=0):
    clock = FrameClock(timing, PHYSICS_HZ, seed)
    return np.array([clock.next_frame() for _ in range(count)])


def make_env(**options):
    options.setdefault("render_observations", False)
    return FlyToTargetEnv(world="forest", camera="small", **options)


def gentle_actions(count, seed=0):
    """Slow forward flight with a little turning: no collision within a few seconds of the start."""
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(0.0, 1.0, count), rng.uniform(-0.3, 0.3, count),
                            rng.uniform(-0.2, 0.2, count), rng.uniform(-0.3, 0.3, count)]).astype(np.float32)


def fly(env, seed, actions):
    """(observation, info) of the reset and of every step until the actions run out or the episode ends."""
    observation, info = env.reset(seed=seed)
    record = [(observation, info)]
    for action in actions:
        observation, _, terminated, truncated, info = env.step(action)
        record.append((observation, info))
        if terminated or truncated:
            break
    return record


# --- the model and its clock -------------------------------------------------------------------------------
def test_presets_and_default():
    assert FrameTiming() == FrameTiming.preset("fixed30") == FrameTiming(rate_hz=30)
    for rate in (10, 15, 20, 30, 60):
        assert PRESETS[f"fixed{rate}"].rate_hz == rate and PRESETS[f"fixed{rate}"].period == pytest.approx(1 / rate)
    assert {"jitter30", "drops30", "bursts30", "latency30", "mixed"} <= set(PRESETS)
    assert PRESETS["drops30"].drop_probability == 0.2
    assert EnvConfig().frame_timing() == FrameTiming(rate_hz=30)
    assert EnvConfig(control_hz=20).frame_timing() == FrameTiming(rate_hz=20)
    assert EnvConfig(timing="fixed15").frame_timing().rate_hz == 15


@pytest.mark.parametrize("rate", [30, 60, 25, 7])
def test_intervals_are_whole_physics_steps_averaging_the_nominal_rate(rate):
    steps = frame_steps(FrameTiming(rate_hz=rate), 600)
    assert steps.dtype.kind == "i" and steps.min() >= 1
    assert abs(steps.sum() - 600 * PHYSICS_HZ / rate) <= 1  # frame times are rounded, not intervals
    if PHYSICS_HZ % rate == 0:
        assert set(steps) == {PHYSICS_HZ // rate}


def test_jitter_spreads_the_intervals_around_the_nominal_period():
    steps = frame_steps(PRESETS["jitter30"], 4000)  # 5 ms = 1.2 physics steps
    assert 1.0 < steps.std() < 1.4 and abs(steps.mean() - 8) < 0.05
    assert steps.min() >= 1 and len(set(steps)) >= 7


def test_a_drop_probability_of_a_fifth_drops_a_fifth_of_the_frames():
    steps = frame_steps(PRESETS["drops30"], 5000, seed=3)
    assert set(steps % 8) == {0}  # a dropped frame adds whole nominal periods
    dropped = int((steps // 8 - 1).sum())
    assert 0.185 < dropped / (dropped + len(steps)) < 0.215  # binomial: 3.5 standard deviations
    assert (steps >= 24).any()  # independent drops sometimes come in pairs


def test_bursts_drop_consecutive_frames():
    steps = frame_steps(FrameTiming(burst_probability=0.05, burst_length=(3, 6)), 4000, seed=1)
    runs = steps[steps > 8] // 8 - 1
    assert len(runs) > 100 and runs.min() >= 3  # never a single lost frame
    assert set(range(3, 7)) <= set(runs) and (runs <= 6).mean() > 0.9  # longer: two bursts back to back


def test_frame_times_are_deterministic_per_seed():
    assert np.array_equal(frame_steps(PRESETS["mixed"], 500, seed=4), frame_steps(PRESETS["mixed"], 500, seed=4))
    assert not np.array_equal(frame_steps(PRESETS["mixed"], 500, seed=4), frame_steps(PRESETS["mixed"], 500, seed=5))


@pytest.mark.parametrize("options, message", [
    ({"rate_hz": -30.0}, "FrameTiming.rate_hz"),
    ({"rate_hz": "30"}, "FrameTiming.rate_hz must be a number"),
    ({"drop_probability": 1.5}, "FrameTiming.drop_probability"),
    ({"drop_probability": 1.0}, r"FrameTiming.drop_probability is 1.0; expected a probability in \[0, 1\)"),
    ({"burst_probability": math.nan}, "FrameTiming.burst_probability"),
    ({"jitter_s": math.nan}, "FrameTiming.jitter_s"),
    ({"jitter_s": 0.02}, "FrameTiming.jitter_s is 0.02; expected at most half the nominal period"),
    ({"latency_s": -0.01}, "FrameTiming.latency_s"),
    ({"burst_length": (4, 2)}, "FrameTiming.burst_length"),
    ({"burst_length": (0, 2)}, "FrameTiming.burst_length"),
    ({"burst_length": (1.5, 2)}, "FrameTiming.burst_length"),
])
def test_bad_timings_are_refused_naming_the_field(options, message):
    with pytest.raises(ValueError, match=message):
        FrameTiming(**options)


def test_unknown_preset_is_refused():
    with pytest.raises(ValueError, match="unknown frame timing preset 'fixed31'; expected one of"):
        FrameTiming.preset("fixed31")


def test_yaml_block_reads_a_preset_name_or_a_mapping():
    block = yaml.safe_load("timing:\n  rate_hz: 15\n  burst_probability: 0.1\n  burst_length: [1, 3]\n")["timing"]
    assert FrameTiming.from_yaml(block, "collect.yaml") == FrameTiming(rate_hz=15.0, burst_probability=0.1,
                                                                       burst_length=(1, 3))
    assert FrameTiming.from_yaml("drops30") is PRESETS["drops30"]
    assert FrameTiming.from_yaml({}) == FrameTiming()


@pytest.mark.parametrize("value, message", [
    ({"rate": 30}, "collect.yaml: key 'timing.rate': expected one of the known keys"),
    ({"drop_probability": 1.5}, "collect.yaml: key 'timing': FrameTiming.drop_probability is 1.5"),
    ({"rate_hz": -5}, "collect.yaml: key 'timing': FrameTiming.rate_hz is -5.0"),
    (yaml.safe_load("jitter_s: .nan"), "collect.yaml: key 'timing': FrameTiming.jitter_s is nan"),
    ({"jitter_s": "5 ms"}, "collect.yaml: key 'timing': FrameTiming.jitter_s must be a number"),
    ("fast", "collect.yaml: key 'timing': expected a preset name, one of .*got 'fast'"),
    ([30], "collect.yaml: key 'timing': expected a mapping"),
])
def test_bad_yaml_blocks_are_refused_naming_file_and_key(value, message):
    class CollectConfigError(ValueError):
        pass

    with pytest.raises(CollectConfigError, match=message):
        FrameTiming.from_yaml(value, "collect.yaml", error=CollectConfigError)


@pytest.mark.parametrize("options, message", [
    ({"timing": "fixed31"}, "EnvConfig.timing: unknown frame timing preset 'fixed31'"),
    ({"timing": {"rate_hz": 30}}, "EnvConfig.timing must be None, a preset name or a FrameTiming"),
    ({"timing": "fixed30", "control_hz": 20.0}, "EnvConfig.control_hz=20.0 contradicts the timing's rate_hz=30.0"),
    ({"timing": FrameTiming(rate_hz=480)}, "rate_hz=480.0 must be <= physics_hz=240"),
])
def test_bad_env_timing_is_refused_before_a_simulator_is_opened(options, message):
    import pybullet as pb

    clients = [client for client in range(64) if pb.isConnected(physicsClientId=client)]
    with pytest.raises(ValueError, match=message):
        FlyToTargetEnv(**options)
    assert [client for client in range(64) if pb.isConnected(physicsClientId=client)] == clients
    assert EnvConfig(timing="fixed15", control_hz=15.0).frame_timing().rate_hz == 15  # agreeing is fine


# --- the env -------------------------------------------------------------------------------------------------
def test_default_timing_is_the_old_fixed_stepping():
    actions = gentle_actions(20)
    default, explicit = make_env(render_observations=True), make_env(render_observations=True,
                                                                       timing=FrameTiming(rate_hz=30))
    try:
        assert default.control_period == explicit.control_period == pytest.approx(1 / 30)
        first, second = fly(default, 7, actions), fly(explicit, 7, actions)
        assert len(first) == len(second) == len(actions) + 1
        for (obs_a, info_a), (obs_b, info_b) in zip(first, second):
            assert np.array_equal(obs_a, obs_b)
            for key in INFO_KEYS:
                assert np.array_equal(np.asarray(info_a[key]), np.asarray(info_b[key])), key
        # The old step: one DroneSimulator.advance(command) of one control period (8 physics steps).
        default.reset(seed=7)
        for step, (action, (_, info)) in enumerate(zip(actions, first[1:]), start=1):
            before = default.sim.physics_steps
            default.sim.advance(action)
            assert default.sim.physics_steps - before == 8
            assert np.array_equal(default.sim.state().position, info["position"])
            assert info["time"] == step * 8 / 240 and info["dt"] == pytest.approx(1 / 30, abs=1e-12)
    finally:
        default.close()
        explicit.close()


def test_dt_is_the_time_between_frames_and_follows_the_frame_clock():
    env = make_env(timing="mixed")
    try:
        _, info = env.reset(seed=5)
        assert info["dt"] == 0.0 and info["time"] == 0.0
        clock = FrameClock(PRESETS["mixed"], PHYSICS_HZ, 5)
        for action in gentle_actions(60):
            previous_time = info["time"]
            _, _, terminated, truncated, info = env.step(action)
            assert info["dt"] > 0 and info["dt"] == info["time"] - previous_time
            assert round(info["dt"] * PHYSICS_HZ) == clock.next_frame()
            assert not (terminated or truncated)
        assert env.control_period == pytest.approx(1 / 30)
    finally:
        env.close()


def test_same_seed_same_frames_whatever_else_happens_and_other_seeds_differ():
    first, second = make_env(timing="mixed"), make_env(timing="mixed")
    actions = gentle_actions(40, seed=2)
    try:
        reference = fly(first, 9, actions)
        fly(second, 3, actions[:10])  # another episode in between
        repeat = fly(second, 9, actions)
        hovering = fly(second, 9, np.zeros_like(actions))
        other_seed = fly(second, 10, actions)
        dts = [[info["dt"] for _, info in record] for record in (reference, repeat, hovering, other_seed)]
        assert dts[0] == dts[1] == dts[2] and dts[0] != dts[3]
        assert all(np.array_equal(a["position"], b["position"]) for (_, a), (_, b) in zip(reference, repeat))
    finally:
        first.close()
        second.close()


def test_a_dropped_frame_holds_the_command_until_the_next_frame():
    dropping, fixed = make_env(timing="drops30"), make_env()
    try:
        dropping.reset(seed=2)
        fixed.reset(seed=2)
        held_frames = []
        for action in gentle_actions(40, seed=4):
            _, _, terminated, _, dropped_info = dropping.step(action)
            held_frames.append(round(dropped_info["dt"] / fixed.control_period))
            for _ in range(held_frames[-1]):
                _, _, _, _, fixed_info = fixed.step(action)
            assert fixed_info["time"] == dropped_info["time"]
            assert np.array_equal(fixed_info["position"], dropped_info["position"])
            assert not terminated
        assert max(held_frames) >= 2
    finally:
        dropping.close()
        fixed.close()


def _response_onset(latency_s):
    """Frames (one per physics step) from a forward command to the first visible forward speed."""
    env = make_env(timing=FrameTiming(rate_hz=PHYSICS_HZ, latency_s=latency_s))
    try:
        env.reset(seed=1)
        for _ in range(10):
            env.step(np.zeros(4, np.float32))
        for frame in range(1, 80):
            _, _, _, _, info = env.step(np.array([2.0, 0, 0, 0], np.float32))
            if info["velocity_body"][0] > 0.01:
                return frame
        raise AssertionError("the drone never responded")
    finally:
        env.close()


def test_latency_delays_the_response_to_a_command():
    latency_steps = 12  # 50 ms at 240 Hz
    immediate, delayed = _response_onset(0.0), _response_onset(latency_steps / PHYSICS_HZ)
    assert abs(delayed - immediate - latency_steps) <= 1, (immediate, delayed)


def test_timeout_stays_time_based_with_irregular_frames():
    env = make_env(timing="drops30", max_episode_seconds=0.5)
    try:
        _, info = env.reset(seed=0)
        times = [info["time"]]
        while True:
            _, _, terminated, truncated, info = env.step(np.zeros(4, np.float32))
            times.append(info["time"])
            if terminated or truncated:
                break
        assert info["outcome"] == "timeout" and truncated
        assert times[-1] >= 0.5 > times[-2] and len(times) - 1 < 15  # drops made some steps longer
    finally:
        env.close()


@pytest.mark.filterwarnings("ignore:.*symmetric and normalized space")
def test_check_env_passes_with_irregular_timing():
    env = make_env(timing="mixed")
    try:
        check_env(env, skip_render_check=True)
    finally:
        env.close()
