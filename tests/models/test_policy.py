"""Policy API: shapes, sequence == stepping, real per-sample elapsed time, output scaling."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from liquid_nav.models.policy import ConfigError, Policy, PolicyConfig, PolicyStep
from tests.models.conftest import HEADS, random_images, small_policy


@pytest.mark.parametrize("head", HEADS)
def test_sequence_equals_stepping_with_per_sample_dt(head, rng):
    policy = small_policy(head)
    batch, length = 3, 6
    images = random_images(batch, length, rng)
    dts = torch.rand(batch, length, generator=rng) * 0.1 + 0.01
    commands, final_state = policy.sequence(images, dts)
    assert commands.shape == (batch, length, 4) and commands.dtype == torch.float32
    state = policy.initial_state(batch)
    assert state.shape == (batch, policy.state_size)
    stepped = []
    for i in range(length):
        command, state = policy.step(images[:, i], state, dts[:, i])
        stepped.append(command)
    torch.testing.assert_close(commands, torch.stack(stepped, dim=1), rtol=0, atol=1e-5)
    torch.testing.assert_close(final_state, state, rtol=0, atol=1e-5)
    torch.testing.assert_close(policy(images, dts), commands, rtol=0, atol=0)


@pytest.mark.parametrize("head", HEADS)
def test_each_sample_uses_its_own_dt(head, rng):
    """A batch row must evolve exactly as it would alone with its own dt (no cross-batch broadcasting)."""
    policy = small_policy(head)
    batch, length = 4, 3
    images = random_images(1, length, rng).expand(batch, -1, -1, -1, -1).contiguous()
    dts = torch.tensor([0.01, 0.03, 0.1, 0.5]).unsqueeze(1).expand(batch, length).contiguous()
    together = policy(images, dts)
    for row in range(batch):
        alone = policy(images[row:row + 1], dts[row:row + 1])
        torch.testing.assert_close(together[row:row + 1], alone, rtol=0, atol=1e-5)
    # Different elapsed times must give different commands.
    assert (together[0, -1] - together[3, -1]).abs().max() > 1e-4


@pytest.mark.parametrize("head", ["cfc_ncp", "ltc_ncp"])
def test_batch_equal_to_layer_width_is_not_confused_with_neurons(head, rng):
    """ncps broadcasts a (B,) timespan over neurons when B == width; here B == state size must still be per row."""
    policy = small_policy(head)
    batch = policy.state_size
    images = random_images(1, 2, rng).expand(batch, -1, -1, -1, -1).contiguous()
    dts = torch.linspace(0.01, 0.3, batch).unsqueeze(1).expand(batch, 2).contiguous()
    together = policy(images, dts)
    for row in (0, batch // 2, batch - 1):
        torch.testing.assert_close(together[row], policy(images[row:row + 1], dts[row:row + 1])[0],
                                   rtol=0, atol=1e-5)


def test_output_scale_sets_physical_units(rng):
    base = small_policy("cfc", output_scale=(1.0, 1.0, 1.0, 1.0))
    scaled = small_policy("cfc", output_scale=(3.0, 1.0, 0.5, 2.0))  # same seed -> same weights
    images = random_images(2, 2, rng)
    dts = torch.full((2, 2), 1 / 30)
    torch.testing.assert_close(scaled(images, dts), base(images, dts) * torch.tensor([3.0, 1.0, 0.5, 2.0]))


def test_same_seed_same_weights_and_default_is_published_size():
    a, b = Policy.from_config(PolicyConfig(seed=3)), Policy.from_config(PolicyConfig(seed=3))
    for (name, pa), (_, pb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(pa, pb), name
    assert a.config.head == "cfc_ncp" and a.config.preprocessing.shape == (144, 256, 3)
    assert sum(p.numel() for p in a.perception.parameters()) == 263_524  # published trunk
    assert sum(p.numel() for p in a.head.parameters()) == 12_344  # published Sparse-CfC head (masked matrices)
    assert a.state_size == 34


def test_config_round_trip_and_clear_errors():
    config = PolicyConfig.small(head="ltc_ncp", ode_unfolds=4)
    assert PolicyConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown keys \\['colour'\\]"):
        PolicyConfig.from_dict({**config.to_dict(), "colour": 1})
    with pytest.raises(ConfigError, match="head must be one of"):
        PolicyConfig(head="transformer")
    with pytest.raises(ConfigError, match="ncp"):
        PolicyConfig.from_dict({"ncp": {"inter_neurons": 2, "sensory_fanout": 6}})


@pytest.mark.parametrize("head", HEADS)
def test_step_is_torchscriptable(head, rng):
    policy = small_policy(head)
    scripted = torch.jit.script(PolicyStep(policy).eval())
    image = random_images(2, 1, rng)[:, 0]
    state, dt = policy.initial_state(2), torch.tensor([0.02, 0.05])
    expected = policy.step(image, state, dt)
    got = scripted(image, state, dt)
    torch.testing.assert_close(got[0], expected[0], rtol=0, atol=1e-6)
    torch.testing.assert_close(got[1], expected[1], rtol=0, atol=1e-6)


@pytest.mark.parametrize("key,value,message", [
    ("units", "64", "policy config.units must be an integer"),
    ("time_scale", True, "policy config.time_scale must be a number"),
    ("output_scale", [3, 1, "x", 1], "output_scale needs 4 finite numbers"),
    ("output_scale", [3, 1, float("nan"), 1], "output_scale needs 4 finite numbers"),
    ("time_scale", float("inf"), "time_scale must be a finite number > 0"),
    ("time_scale", float("nan"), "time_scale must be a finite number > 0"),
    ("ncp", {"inter_neurons": 18.5}, "ncp.inter_neurons must be an integer"),
    ("preprocessing", {"height": 72, "width": 128, "mean": [0.4, 0.5]}, "preprocessing.mean needs 3 finite numbers"),
    ("preprocessing", {"height": 72, "width": 128, "var": [0.05, float("nan"), 0.05]},
     "preprocessing.var needs 3 finite numbers"),
])
def test_ill_typed_config_values_name_the_field(key, value, message):
    with pytest.raises(ConfigError, match=message):
        PolicyConfig.from_dict({**PolicyConfig.small().to_dict(), key: value})


@pytest.mark.parametrize("norm", ["layernorm", "tanh"])
def test_feature_norm_bounds_what_the_head_sees_and_survives_checkpoint_and_onnx(tmp_path, norm):
    from liquid_nav.models.checkpoint import load_checkpoint, save_checkpoint
    from liquid_nav.runtime.backends import make_backend

    policy = small_policy("cfc_ncp", feature_norm=norm)
    with torch.no_grad():
        policy.perception.dense.weight.mul_(1000.0)  # features that would blow up without the norm
        images = torch.randint(0, 256, (2, 3, 72, 128, 3), dtype=torch.uint8)
        _, _, features = policy.sequence_with_features(images, torch.full((2, 3), 1 / 30))
    bound = features.abs().max() if norm == "tanh" else features.std(dim=-1, unbiased=False).max()
    assert bound <= 1.0 + 1e-3
    path = save_checkpoint(tmp_path / "p.lnav", policy, {})
    loaded, _ = load_checkpoint(path)
    assert loaded.config.feature_norm == norm
    frame = np.zeros((72, 128, 3), np.uint8)
    torch_out = make_backend("torch", path).step(frame, 1 / 30)
    from liquid_nav.models.export import export_step_onnx

    export_step_onnx(loaded, tmp_path / "p.onnx")
    assert np.abs(make_backend("onnxruntime", tmp_path / "p.onnx").step(frame, 1 / 30) - torch_out).max() < 1e-4


def test_unknown_feature_norm_is_refused():
    with pytest.raises(ConfigError, match="feature_norm must be one of"):
        PolicyConfig(feature_norm="batchnorm")


def test_affine_motor_readout_scales_and_shifts_the_motor_states_and_survives_checkpoint_and_onnx(tmp_path, rng):
    from liquid_nav.models.checkpoint import load_checkpoint, save_checkpoint
    from liquid_nav.models.export import export_step_onnx
    from liquid_nav.runtime.backends import make_backend

    plain = small_policy("cfc_ncp")
    affine = small_policy("cfc_ncp", motor_readout="affine")
    affine.load_state_dict(plain.state_dict(), strict=False)  # the same cell; the readout starts as identity
    images, dts = random_images(2, 3, rng), torch.full((2, 3), 1 / 30)
    torch.testing.assert_close(affine(images, dts), plain(images, dts), rtol=0, atol=0)
    with torch.no_grad():
        affine.head.readout.weight.copy_(torch.tensor([2.0, -1.0, 0.5, 1.0]))
        affine.head.readout.bias.copy_(torch.tensor([0.1, 0.0, -0.2, 0.3]))
    scale = affine.output_scale
    expected = (plain(images, dts) / scale * affine.head.readout.weight + affine.head.readout.bias) * scale
    torch.testing.assert_close(affine(images, dts), expected, rtol=1e-6, atol=1e-6)
    path = save_checkpoint(tmp_path / "p.lnav", affine, {})
    loaded, _ = load_checkpoint(path)
    assert loaded.config.motor_readout == "affine"
    export_step_onnx(loaded, tmp_path / "p.onnx")
    frame = np.full((72, 128, 3), 90, np.uint8)
    torch_out = make_backend("torch", path).step(frame, 1 / 30)
    assert np.abs(make_backend("onnxruntime", tmp_path / "p.onnx").step(frame, 1 / 30) - torch_out).max() < 1e-4


def test_motor_readout_is_checked():
    with pytest.raises(ConfigError, match="motor_readout must be one of"):
        PolicyConfig(motor_readout="mlp")
    with pytest.raises(ConfigError, match="motor_readout 'affine' is for head cfc_ncp"):
        PolicyConfig(head="lstm", motor_readout="affine")
    assert PolicyConfig.from_dict({k: v for k, v in PolicyConfig().to_dict().items()
                                   if k != "motor_readout"}).motor_readout == "identity"  # older checkpoints
