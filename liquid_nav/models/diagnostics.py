"""Training diagnostics of a recurrent head: how saturated its gates are.

A gate is a sigmoid inside the head: the CfC time gate ``sigmoid(ta * t + tb)`` (modes default and no_gate),
the LTC synapse activations ``sigmoid(sigma * (v - mu))``, the LSTM input, forget and output gates, the GRU
reset and update gates. A gate
within :data:`SATURATION_MARGIN` of 0 or 1 passes (almost) no gradient, which is how the probe of
docs/training.md collapsed. The CfC pure mode has no gate.
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor
from torch.overrides import TorchFunctionMode

from liquid_nav.models.heads import LSTMHead, GatedRNNHead
from liquid_nav.models.policy import Policy

SATURATION_MARGIN = 0.01
_SIGMOIDS = (torch.sigmoid, Tensor.sigmoid, torch.nn.functional.sigmoid)


class _SigmoidRecorder(TorchFunctionMode):
    """Keeps every sigmoid output computed while it is active."""

    def __init__(self) -> None:
        super().__init__()
        self.outputs: List[Tensor] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        result = func(*args, **(kwargs or {}))
        if func in _SIGMOIDS:
            self.outputs.append(result)
        return result


def recurrent_gates(head: GatedRNNHead, features: Tensor, t: Tensor, state: Tensor) -> Tuple[List[Tensor], Tensor]:
    """The gates of the LSTM (input, forget, output) or GRU (reset, update) head at every step, which nn.LSTM and
    nn.GRU do not expose, and the final state (the same as the head's ``sequence``)."""
    rnn, units = head.rnn, head.units
    inputs = head.time_augmented(features, t) @ rnn.weight_ih_l0.t() + rnn.bias_ih_l0
    gates: List[Tensor] = []
    if isinstance(head, LSTMHead):
        h, c = state[:, :units], state[:, units:]
        for step_input in inputs.unbind(1):
            i, f, g, o = (step_input + h @ rnn.weight_hh_l0.t() + rnn.bias_hh_l0).chunk(4, dim=1)
            i, f, o = torch.sigmoid(i), torch.sigmoid(f), torch.sigmoid(o)
            c = f * c + i * torch.tanh(g)
            h = o * torch.tanh(c)
            gates += [i, f, o]
        return gates, torch.cat([h, c], dim=1)
    h = state
    for step_input in inputs.unbind(1):
        x_r, x_z, x_n = step_input.chunk(3, dim=1)
        h_r, h_z, h_n = (h @ rnn.weight_hh_l0.t() + rnn.bias_hh_l0).chunk(3, dim=1)
        r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
        h = (1 - z) * torch.tanh(x_n + r * h_n) + z * h
        gates += [r, z]
    return gates, h


@torch.no_grad()
def gate_saturation(policy: Policy, features: Tensor, dts: Tensor) -> Optional[float]:
    """Fraction of the head's gate activations within :data:`SATURATION_MARGIN` of 0 or 1 over the sequences
    ``features`` (B, L, feature_dim) with elapsed times ``dts`` (B, L) from the initial state; None for a head
    without gates. Runs the head in evaluation mode (no dropout) and leaves its mode as it was."""
    head, training = policy.head, policy.head.training
    head.eval()
    try:
        t = dts.to(features.dtype) * policy.time_scale
        state = policy.initial_state(features.shape[0])
        if isinstance(head, GatedRNNHead):
            gates = recurrent_gates(head, features, t, state)[0]
        else:  # a CellHead: its sigmoids are its gates
            with _SigmoidRecorder() as recorder:
                head.sequence(features, t, state)
            gates = recorder.outputs
    finally:
        head.train(training)
    if not gates:
        return None
    saturated = sum(float(((gate < SATURATION_MARGIN) | (gate > 1 - SATURATION_MARGIN)).sum()) for gate in gates)
    return saturated / sum(gate.numel() for gate in gates)
