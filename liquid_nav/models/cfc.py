"""Closed-form continuous-time (CfC) cells: dense (with optional backbone) and wired on an NCP (Sparse-CfC).

With ``z = [input, h]`` (through the backbone for the dense cell), per neuron and per sample:

* ``default``: ``h' = tanh(f1(z)) * (1 - s) + s * tanh(f2(z))`` with ``s = sigmoid(ta(z) * t + tb(z))``
* ``no_gate``: ``h' = tanh(f1(z)) + s * tanh(f2(z))``
* ``pure``:    ``h' = A - A * exp(-t * (|w_tau| + |f1(z)|)) * f1(z)`` (the direct closed-form solution)

``t`` is the elapsed time of each sample, shape (B,), broadcast over the neurons (never over the batch).
The four affine maps f1, f2, ta, tb are one fused linear layer (one matrix product per step).

All cells share the interface used by :mod:`liquid_nav.models.heads`: ``project_inputs`` maps the
external inputs (for a whole sequence at once when training), ``prepare`` computes per-call constants
(masked weights) once, and ``recurrent_step_with`` advances the state; ``step`` composes the three.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor, nn

from liquid_nav.models.cell_math import cfc_update
from liquid_nav.models.fused import WiredCfCWave, wave_operands
from liquid_nav.models.wiring import NCPWiring

CFC_MODES = ("default", "no_gate", "pure")
# Initial w_tau of the pure mode; non-zero because |w_tau| has no gradient at 0 (ncps starts at 0 and
# so never trains it).
PURE_W_TAU_INIT = 0.1


class LeCunTanh(nn.Module):
    """``1.7159 * tanh(0.666 * x)``, the CfC paper's backbone activation."""

    def forward(self, x: Tensor) -> Tensor:
        return 1.7159 * torch.tanh(0.666 * x)


def _activation(name: str) -> nn.Module:
    activations = {"lecun_tanh": LeCunTanh, "tanh": nn.Tanh, "relu": nn.ReLU, "silu": nn.SiLU, "gelu": nn.GELU}
    if name not in activations:
        raise ValueError(f"unknown backbone activation {name!r}; expected one of {sorted(activations)}")
    return activations[name]()


def _add_pure_mode_parameters(module: nn.Module, size: int, mode: str) -> None:
    """``w_tau`` and ``amplitude`` (1, size) are trained in pure mode only; the other modes never read them
    and keep them as non-persistent buffers (absent from checkpoints and parameter counts)."""
    if mode == "pure":
        module.w_tau = nn.Parameter(torch.full((1, size), PURE_W_TAU_INIT))
        module.amplitude = nn.Parameter(torch.ones(1, size))
    else:
        module.register_buffer("w_tau", torch.zeros(1, size), persistent=False)
        module.register_buffer("amplitude", torch.ones(1, size), persistent=False)


def _check_mode(mode: str) -> None:
    if mode not in CFC_MODES:
        raise ValueError(f"unknown CfC mode {mode!r}; expected one of {list(CFC_MODES)}")


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
        n_heads = 1 if mode == "pure" else 4
        # The first affine map of [input, h] (backbone layer or heads) is split into an input part, which a
        # sequence projects for all steps at once, and a recurrent part.
        first_out = backbone_units if backbone_layers > 0 else n_heads * hidden_size
        self.input_map = nn.Linear(input_size, first_out)
        self.recurrent_map = nn.Linear(hidden_size, first_out, bias=False)
        rest: List[nn.Module] = [_activation(backbone_activation)] if backbone_layers > 0 else []
        for _ in range(backbone_layers - 1):
            rest += [nn.Linear(backbone_units, backbone_units), _activation(backbone_activation)]
        self.backbone_rest = nn.Sequential(*rest) if rest else nn.Identity()
        self.dropout = nn.Dropout(dropout)
        self.heads = nn.Linear(backbone_units, n_heads * hidden_size) if backbone_layers > 0 else nn.Identity()
        _add_pure_mode_parameters(self, hidden_size, mode)
        for module in [self.input_map, self.recurrent_map, self.heads, *self.backbone_rest.children()]:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)

    def project_inputs(self, x: Tensor) -> Tensor:
        """Input part of the first affine map; x (..., input_size)."""
        if self.backbone_layers == 0:
            x = self.dropout(x)
        return self.input_map(x)

    def prepare(self) -> List[Tensor]:
        """Per-call constants for :meth:`recurrent_step_with` (none for the dense cell)."""
        return []

    def recurrent_step_with(self, prepared: List[Tensor], projected: Tensor, h: Tensor,
                            t: Tensor) -> Tuple[Tensor, Tensor]:
        """One step from projected inputs (B, *), state h (B, hidden), elapsed time t (B,)."""
        z = torch.addmm(projected, h, self.recurrent_map.weight.t())
        if self.backbone_layers > 0:
            z = self.dropout(self.backbone_rest(z))
            z = self.heads(z)
        new_h = cfc_update(z, self.hidden_size, t.unsqueeze(1), self.mode, self.w_tau, self.amplitude)
        return new_h, new_h

    def step(self, x: Tensor, h: Tensor, t: Tensor) -> Tuple[Tensor, Tensor]:
        return self.recurrent_step_with(self.prepare(), self.project_inputs(x), h, t)


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
        _add_pure_mode_parameters(self, wiring.units, mode)

    def prepare(self) -> List[Tensor]:
        """Masked, transposed weights [rec_0, in_1, rec_1, in_2, rec_2] (absent synapses are zero).

        The sensory weights (in_0) are applied by :meth:`project_inputs`.
        """
        return [(self.recurrent_maps[0].weight * self.rec_mask_0).t(),
                (self.input_maps[1].weight * self.in_mask_1).t(), (self.recurrent_maps[1].weight * self.rec_mask_1).t(),
                (self.input_maps[2].weight * self.in_mask_2).t(), (self.recurrent_maps[2].weight * self.rec_mask_2).t()]

    def project_inputs(self, x: Tensor) -> Tensor:
        """Sensory drive of the inter layer; x (..., input_size)."""
        return nn.functional.linear(self.dropout(x), self.input_maps[0].weight * self.in_mask_0,
                                    self.input_maps[0].bias)

    def recurrent_step_with(self, prepared: List[Tensor], projected: Tensor, h: Tensor,
                            t: Tensor) -> Tuple[Tensor, Tensor]:
        """One step: projected sensory drive, state h (B, units), elapsed time t (B,) -> (motor, new state)."""
        t = t.unsqueeze(1)
        m, c = self.n_motor, self.n_command
        w, amplitude = self.w_tau, self.amplitude
        inter = cfc_update(torch.addmm(projected, h[:, m + c:], prepared[0]), self.n_inter, t, self.mode,
                            w[:, m + c:], amplitude[:, m + c:])
        drive = torch.addmm(self.input_maps[1].bias, inter, prepared[1])
        command = cfc_update(torch.addmm(drive, h[:, m:m + c], prepared[2]), c, t, self.mode,
                              w[:, m:m + c], amplitude[:, m:m + c])
        drive = torch.addmm(self.input_maps[2].bias, command, prepared[3])
        motor = cfc_update(torch.addmm(drive, h[:, :m], prepared[4]), m, t, self.mode, w[:, :m], amplitude[:, :m])
        return motor, torch.cat([motor, command, inter], dim=1)

    def step(self, x: Tensor, h: Tensor, t: Tensor) -> Tuple[Tensor, Tensor]:
        return self.recurrent_step_with(self.prepare(), self.project_inputs(x), h, t)

    @torch.jit.unused
    def fused_sequence(self, prepared: List[Tensor], projected: Tensor, h: Tensor,
                       t: Tensor) -> Tuple[Tensor, Tensor]:
        """Whole-sequence forward as one autograd node (hand-written backward); same result as stepping."""
        sizes = (self.n_motor, self.n_command, self.n_inter)
        w_block, drive, t_wave = wave_operands(sizes, self.n_heads, projected, t, prepared[0], prepared[1],
                                               self.input_maps[1].bias, prepared[2], prepared[3],
                                               self.input_maps[2].bias, prepared[4])
        return WiredCfCWave.apply(sizes, self.mode, drive, w_block, t_wave, h, self.w_tau, self.amplitude)
