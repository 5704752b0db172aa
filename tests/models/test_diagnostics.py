"""Gate saturation of every head: the recorded gates are the head's own (the manual LSTM / GRU recurrence ends in
the nn module's state), inputs of the probe's scale saturate them, and the CfC pure mode has none."""
import pytest
import torch

from liquid_nav.models.diagnostics import SATURATION_MARGIN, _SigmoidRecorder, gate_saturation, recurrent_gates
from liquid_nav.models.policy import Policy, PolicyConfig

BATCH, LENGTH = 3, 6


def policy_with(head: str, **options) -> Policy:
    return Policy.from_config(PolicyConfig.small(head=head, seed=3, **options))


def sequences(policy: Policy, scale: float):
    generator = torch.Generator().manual_seed(5)
    features = scale * torch.randn(BATCH, LENGTH, policy.config.feature_dim, generator=generator)
    return features, torch.full((BATCH, LENGTH), 1 / 30)


@pytest.mark.parametrize("head", ["lstm", "gru"])
def test_the_manual_recurrence_is_the_nn_modules(head):
    policy = policy_with(head)
    features, dts = sequences(policy, 1.0)
    state = policy.initial_state(BATCH) + 0.1
    with torch.no_grad():
        gates, final = recurrent_gates(policy.head, features, dts, state)
        _, expected = policy.head.sequence(features, dts, state)
    torch.testing.assert_close(final, expected, rtol=1e-5, atol=1e-6)
    assert len(gates) == LENGTH * (3 if head == "lstm" else 2)


def test_the_cfc_gates_are_one_per_neuron_and_step():
    policy = policy_with("cfc", units=12)
    features, dts = sequences(policy, 1.0)
    with torch.no_grad(), _SigmoidRecorder() as recorder:
        policy.head.sequence(features, dts, policy.initial_state(BATCH))
    assert sum(gate.numel() for gate in recorder.outputs) == BATCH * LENGTH * 12


@pytest.mark.parametrize("head", ["cfc_ncp", "ltc_ncp", "lstm", "gru"])
def test_features_of_the_probes_scale_saturate_the_gates(head):
    policy = policy_with(head).train()
    small = gate_saturation(policy, *sequences(policy, 0.1))
    large = gate_saturation(policy, *sequences(policy, 100.0))  # the probe's features reached std 132
    assert 0.0 <= small < 0.2 and large > 0.4 and large > small + 0.3
    assert policy.head.training  # its mode is left as it was


def test_the_dense_cfc_backbone_bounds_what_its_gates_see():
    policy = policy_with("cfc")  # LeCun tanh between the inputs and the gate heads
    assert gate_saturation(policy, *sequences(policy, 100.0)) < 0.05


def test_a_head_without_gates_has_no_gate_saturation():
    policy = policy_with("cfc_ncp", cfc_mode="pure")
    assert gate_saturation(policy, *sequences(policy, 1.0)) is None
    assert 0 < SATURATION_MARGIN < 0.5
