"""Recurrent heads behind one interface: features + elapsed time -> outputs, with a single state tensor.

Every head has ``state_size``, ``output_size``,
``step(x (B, I), state (B, S), t (B,)) -> (out (B, O), new_state)`` and
``sequence(x (B, L, I), t (B, L), state (B, S)) -> (out (B, L, O), final_state)``; ``sequence`` equals
``step`` applied L times (the input projection is just batched over the sequence).
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor, nn

from liquid_nav.models.cfc import CfCCell, WiredCfCCell
from liquid_nav.models.ctrnn import CTRNNCell
from liquid_nav.models.ltc import LTCCell

HEAD_NAMES = ("cfc_ncp", "ltc_ncp", "cfc", "lstm", "gru", "ctrnn")
MOTOR_READOUTS = ("identity", "affine")  # how the Sparse-CfC motor neurons become the head outputs


class ChannelAffine(nn.Module):
    """``x * weight + bias`` per channel, starting as the identity (ncps' affine output mapping)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.weight + self.bias


class CellHead(nn.Module):
    """A CfC / Sparse-CfC / LTC / CT-RNN cell plus a readout (identity for the wired cells: motor layer output).

    ``sequence`` applies the cell's per-call constants (masked weights) once and projects the inputs of
    all steps in one product; the recurrent arithmetic per step is the same code as ``step``.
    """

    def __init__(self, cell: nn.Module, readout: nn.Module, output_size: int):
        super().__init__()
        self.cell = cell
        self.readout = readout
        self.state_size: int = cell.state_size
        self.output_size: int = output_size
        self.fused: bool = hasattr(cell, "fused_sequence")

    def step(self, x: Tensor, state: Tensor, t: Tensor) -> Tuple[Tensor, Tensor]:
        out, state = self.cell.recurrent_step_with(self.cell.prepare(), self.cell.project_inputs(x), state, t)
        return self.readout(out), state

    def sequence(self, x: Tensor, t: Tensor, state: Tensor) -> Tuple[Tensor, Tensor]:
        prepared = self.cell.prepare()
        if self.fused and torch.is_grad_enabled() and not torch.jit.is_scripting():
            return self._fused_sequence(prepared, x, t, state)
        # unbind: one backward node for all steps (indexing per step would allocate a full-size gradient each)
        projected = self.cell.project_inputs(x).unbind(1)
        times = t.unbind(1)
        outputs = []
        for i in range(len(projected)):
            out, state = self.cell.recurrent_step_with(prepared, projected[i], state, times[i])
            outputs.append(out)
        return self.readout(torch.stack(outputs, dim=1)), state

    @torch.jit.unused
    def _fused_sequence(self, prepared: List[Tensor], x: Tensor, t: Tensor, state: Tensor) -> Tuple[Tensor, Tensor]:
        """Training path of cells with a fused whole-sequence autograd node (see models/fused.py)."""
        out, state = self.cell.fused_sequence(prepared, self.cell.project_inputs(x), state, t)
        return self.readout(out), state


class GatedRNNHead(nn.Module):
    """Shared parts of the LSTM / GRU baselines; the elapsed time is appended to every step's input."""

    def __init__(self, rnn: nn.Module, units: int, state_size: int, output_size: int, dropout: float):
        super().__init__()
        self.rnn = rnn
        self.units: int = units
        self.state_size: int = state_size
        self.output_size: int = output_size
        self.dropout = nn.Dropout(dropout)
        self.readout = nn.Linear(units, output_size)

    def time_augmented(self, x: Tensor, t: Tensor) -> Tensor:
        return torch.cat([self.dropout(x), t.unsqueeze(-1)], dim=-1)

    def step(self, x: Tensor, state: Tensor, t: Tensor) -> Tuple[Tensor, Tensor]:
        out, new_state = self.sequence(x.unsqueeze(1), t.unsqueeze(1), state)
        return out[:, 0], new_state


class LSTMHead(GatedRNNHead):
    """LSTM baseline; the state packs ``[h, c]`` into one (B, 2 * units) tensor."""

    def __init__(self, input_size: int, units: int, output_size: int, dropout: float = 0.0):
        super().__init__(nn.LSTM(input_size + 1, units, batch_first=True), units, 2 * units, output_size, dropout)

    def sequence(self, x: Tensor, t: Tensor, state: Tensor) -> Tuple[Tensor, Tensor]:
        h0 = state[:, :self.units].unsqueeze(0).contiguous()
        c0 = state[:, self.units:].unsqueeze(0).contiguous()
        out, (h, c) = self.rnn(self.time_augmented(x, t), (h0, c0))
        return self.readout(out), torch.cat([h[0], c[0]], dim=1)


class GRUHead(GatedRNNHead):
    """GRU baseline; state (B, units)."""

    def __init__(self, input_size: int, units: int, output_size: int, dropout: float = 0.0):
        super().__init__(nn.GRU(input_size + 1, units, batch_first=True), units, units, output_size, dropout)

    def sequence(self, x: Tensor, t: Tensor, state: Tensor) -> Tuple[Tensor, Tensor]:
        out, h = self.rnn(self.time_augmented(x, t), state.unsqueeze(0).contiguous())
        return self.readout(out), h[0]


def build_head(name: str, input_size: int, output_size: int, *, units: int, wiring=None, cfc_mode: str = "default",
               backbone_units: int = 128, backbone_layers: int = 1, dropout: float = 0.0,
               ode_unfolds: int = 6, motor_readout: str = "identity") -> nn.Module:
    """Construct a head by name (see :data:`HEAD_NAMES`); ``wiring`` (an NCPWiring) is needed by the NCP heads.
    ``motor_readout`` (cfc_ncp): the motor neuron states are the outputs (``identity``, the published model) or
    pass a per-output scale and bias (``affine``)."""
    if motor_readout not in MOTOR_READOUTS:
        raise ValueError(f"unknown motor readout {motor_readout!r}; expected one of {list(MOTOR_READOUTS)}")
    if name == "cfc_ncp":
        cell = WiredCfCCell(wiring, mode=cfc_mode, dropout=dropout)
        readout = ChannelAffine(cell.output_size) if motor_readout == "affine" else nn.Identity()
        return CellHead(cell, readout, cell.output_size)
    if name == "ltc_ncp":
        cell = LTCCell(wiring, unfolds=ode_unfolds)
        return CellHead(cell, nn.Identity(), cell.output_size)
    if name == "cfc":
        cell = CfCCell(input_size, units, mode=cfc_mode, backbone_units=backbone_units,
                       backbone_layers=backbone_layers, dropout=dropout)
        return CellHead(cell, nn.Linear(units, output_size), output_size)
    if name == "ctrnn":
        cell = CTRNNCell(input_size, units, unfolds=ode_unfolds, dropout=dropout)
        return CellHead(cell, nn.Linear(units, output_size), output_size)
    if name == "lstm":
        return LSTMHead(input_size, units, output_size, dropout=dropout)
    if name == "gru":
        return GRUHead(input_size, units, output_size, dropout=dropout)
    raise ValueError(f"unknown head {name!r}; expected one of {list(HEAD_NAMES)}")
