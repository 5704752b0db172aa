"""Closed-form continuous-time (CfC) cells: dense (with optional backbone) and wired on an NCP (Sparse-CfC).

With ``z = [input, h]`` (through the backbone for the dense cell), per neuron and per sample:

* ``default``: ``h' = tanh(f1(z)) * (1 - s) + s * tanh(f2(z))`` with ``s = sigmoid(ta(z) * t + tb(z))``
* ``no_gate``: ``h' = tanh(f1(z)) + s * tanh(f2(z))``
* ``pure``:    ``h' = A - A * exp(-t * (|w_tau| + |f1(z)|)) * f1(z)`` (the direct closed-form solution)

``t`` is the elapsed time of each sample, shape (B,), broadcast over the neurons (never over the batch).
The four affine maps f1, f2, ta, tb are one fused linear layer (one matrix product per step).

All cells share the head interface used by :mod:`liquid_nav.models.heads`: ``project_inputs`` maps the
external inputs (for a whole sequence at once when training) and ``recurrent_step`` advances the state
from those projected inputs; a plain step is the composition of the two.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor, nn

from liquid_nav.models.wiring import NCPWiring

CFC_MODES = ("default", "no_gate", "pure")


class LeCunTanh(nn.Module):
    """``1.7159 * tanh(0.666 * x)``, the CfC paper's backbone activation."""

    def forward(self, x: Tensor) -> Tensor:
        return 1.7159 * torch.tanh(0.666 * x)


def _activation(name: str) -> nn.Module:
    activations = {"lecun_tanh": LeCunTanh, "tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}
    if name not in activations:
        raise ValueError(f"unknown backbone activation {name!r}; expected one of {sorted(activations)}")
    return activations[name]()


def _check_mode(mode: str) -> None:
    if mode not in CFC_MODES:
        raise ValueError(f"unknown CfC mode {mode!r}; expected one of {list(CFC_MODES)}")


def _cfc_update(heads: Tensor, hidden: int, t: Tensor, mode: str, w_tau: Tensor, amplitude: Tensor) -> Tensor:
    """Closed-form state update from the fused head pre-activations ``heads`` (B, k*hidden), t (B, 1)."""
    if mode == "pure":
        f1 = heads
        return amplitude - amplitude * torch.exp(-t * (torch.abs(w_tau) + torch.abs(f1))) * f1
    f1, f2, t_a, t_b = heads.split(hidden, dim=1)
    gate = torch.sigmoid(t_a * t + t_b)
    if mode == "no_gate":
        return torch.tanh(f1) + gate * torch.tanh(f2)
    return torch.tanh(f1) * (1.0 - gate) + gate * torch.tanh(f2)


class CfCCell(nn.Module):
    """Dense CfC cell; ``backbone_layers`` > 0 inserts an MLP between ``[input, h]`` and the heads.

    Dropout (``dropout`` > 0) acts on the backbone output, or on the cell input without a backbone.
    """

    def __init__(self, input_size: int, hidden_size: int, mode: str = "default", backbone_units: int = 128,
                 backbone_layers: int = 1, backbone_activation: str = "lecun_tanh", dropout: float = 0.0):
        super().__init__()
        _check_mode(mode)
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.state_size = hidden_size
        self.mode = mode
        self.backbone_layers = backbone_layers
        layers: List[nn.Module] = []
        width = input_size + hidden_size
        for _ in range(backbone_layers):
            layers += [nn.Linear(width, backbone_units), _activation(backbone_activation)]
            width = backbone_units
        # The first layer that sees [input, h] is split so the input part can be projected for a
        # whole sequence at once.
        first_out = backbone_units if backbone_layers > 0 else hidden_size * (1 if mode == "pure" else 4)
        self.input_map = nn.Linear(input_size, first_out)
        self.recurrent_map = nn.Linear(hidden_size, first_out, bias=False)
        self.backbone_rest = nn.Sequential(*layers[1:]) if backbone_layers > 0 else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        n_heads = 1 if mode == "pure" else 4
        self.heads = nn.Linear(width, n_heads * hidden_size) if backbone_layers > 0 else nn.Identity()
        self.w_tau = nn.Parameter(torch.zeros(1, hidden_size), requires_grad=mode == "pure")
        self.amplitude = nn.Parameter(torch.ones(1, hidden_size), requires_grad=mode == "pure")
        for weight in (self.input_map.weight, self.recurrent_map.weight):
            nn.init.xavier_uniform_(weight)
        if isinstance(self.heads, nn.Linear):
            nn.init.xavier_uniform_(self.heads.weight)

    def project_inputs(self, x: Tensor) -> Tensor:
        """Input part of the first affine map; x (..., input_size)."""
        if self.backbone_layers == 0:
            x = self.dropout(x)
        return self.input_map(x)

    def recurrent_step(self, projected: Tensor, h: Tensor, t: Tensor) -> Tuple[Tensor, Tensor]:
        """One step from projected inputs (B, *), state h (B, hidden), elapsed time t (B,)."""
        z = projected + self.recurrent_map(h)
        if self.backbone_layers > 0:
            z = self.dropout(self.backbone_rest(z))
            z = self.heads(z)
        new_h = _cfc_update(z, self.hidden_size, t.unsqueeze(1), self.mode, self.w_tau, self.amplitude)
        return new_h, new_h

    def step(self, x: Tensor, h: Tensor, t: Tensor) -> Tuple[Tensor, Tensor]:
        return self.recurrent_step(self.project_inputs(x), h, t)


class WiredCfCCell(nn.Module):
    """Sparse-CfC: CfC neurons on an NCP wiring, updated layer by layer (inter, command, motor).

    A neuron's affine maps (all four heads: f1, f2, ta, tb) see only its wired presynaptic neurons,
    the recurrent synapses of its own layer (the command-layer recurrences) and its own previous state.
    Inter neurons read the sensory inputs of this step; command and motor neurons read the *new* state
    of the layer before them, so a frame reaches the motor neurons within the same step. The state is
    in neuron-index order (motor, command, inter); the output is the new motor state.
    Dropout (``dropout`` > 0) acts on the sensory inputs.
    """

    def __init__(self, wiring: NCPWiring, mode: str = "default", dropout: float = 0.0):
        super().__init__()
        _check_mode(mode)
        self.mode = mode
        self.input_size = wiring.input_dim
        self.state_size = wiring.units
        self.output_size = wiring.output_dim
        self.n_heads = 1 if mode == "pure" else 4
        self.dropout = nn.Dropout(dropout)
        n_motor, n_command = wiring.config.motor_neurons, wiring.config.command_neurons
        self.n_motor = n_motor
        self.n_command = n_command
        self.n_inter = wiring.config.inter_neurons
        sensory = torch.from_numpy(wiring.sensory_adjacency != 0).float()
        adjacency = torch.from_numpy(wiring.adjacency != 0).float()
        inter, command, motor = wiring.layers()
        sources = [sensory, adjacency[inter], adjacency[command]]
        self.input_maps = nn.ModuleList()
        self.recurrent_maps = nn.ModuleList()
        for layer_index, (neurons, source_rows) in enumerate(zip((inter, command, motor), sources)):
            in_mask = source_rows[:, neurons].t()  # (n_layer, n_source)
            rec_mask = adjacency[neurons][:, neurons].t() + torch.eye(len(neurons))  # own state always
            in_map = nn.Linear(in_mask.shape[1], self.n_heads * len(neurons))
            rec_map = nn.Linear(len(neurons), self.n_heads * len(neurons), bias=False)
            nn.init.xavier_uniform_(in_map.weight)
            nn.init.xavier_uniform_(rec_map.weight)
            self.register_buffer(f"in_mask_{layer_index}", in_mask.clamp(max=1.0).repeat(self.n_heads, 1))
            self.register_buffer(f"rec_mask_{layer_index}", rec_mask.clamp(max=1.0).repeat(self.n_heads, 1))
            self.input_maps.append(in_map)
            self.recurrent_maps.append(rec_map)
        self.w_tau = nn.Parameter(torch.zeros(1, wiring.units), requires_grad=mode == "pure")
        self.amplitude = nn.Parameter(torch.ones(1, wiring.units), requires_grad=mode == "pure")

    def masked_weights(self) -> List[Tensor]:
        """[in_0, rec_0, in_1, rec_1, in_2, rec_2]: the weights with absent synapses zeroed."""
        return [self.input_maps[0].weight * self.in_mask_0, self.recurrent_maps[0].weight * self.rec_mask_0,
                self.input_maps[1].weight * self.in_mask_1, self.recurrent_maps[1].weight * self.rec_mask_1,
                self.input_maps[2].weight * self.in_mask_2, self.recurrent_maps[2].weight * self.rec_mask_2]

    def project_inputs(self, x: Tensor) -> Tensor:
        """Sensory drive of the inter layer; x (..., input_size)."""
        return nn.functional.linear(self.dropout(x), self.input_maps[0].weight * self.in_mask_0,
                                    self.input_maps[0].bias)

    def _layer(self, drive: Tensor, h: Tensor, rec_w: Tensor, t: Tensor, start: int, size: int) -> Tensor:
        z = drive + nn.functional.linear(h, rec_w)
        return _cfc_update(z, size, t, self.mode, self.w_tau[:, start:start + size],
                           self.amplitude[:, start:start + size])

    def recurrent_step_with(self, weights: List[Tensor], projected: Tensor, h: Tensor,
                            t: Tensor) -> Tuple[Tensor, Tensor]:
        """One step given precomputed :meth:`masked_weights` (lets a sequence mask once, not per step)."""
        t = t.unsqueeze(1)
        m, c = self.n_motor, self.n_command
        inter = self._layer(projected, h[:, m + c:], weights[1], t, m + c, self.n_inter)
        command = self._layer(nn.functional.linear(inter, weights[2], self.input_maps[1].bias), h[:, m:m + c],
                              weights[3], t, m, c)
        motor = self._layer(nn.functional.linear(command, weights[4], self.input_maps[2].bias), h[:, :m],
                            weights[5], t, 0, m)
        return motor, torch.cat([motor, command, inter], dim=1)

    def recurrent_step(self, projected: Tensor, h: Tensor, t: Tensor) -> Tuple[Tensor, Tensor]:
        return self.recurrent_step_with(self.masked_weights(), projected, h, t)

    def step(self, x: Tensor, h: Tensor, t: Tensor) -> Tuple[Tensor, Tensor]:
        return self.recurrent_step(self.project_inputs(x), h, t)
