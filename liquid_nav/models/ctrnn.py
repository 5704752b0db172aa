"""Continuous-time RNN baseline: ``tau dh/dt = -h + tanh(W_in x + W_rec h + b)``.

Each step integrates the sample's elapsed time in ``unfolds`` sub-steps with the exponential integrator
(input held over a sub-step): ``h <- target + (h - target) * exp(-dt' / tau)``, stable for any dt.
``tau = softplus(raw) + 1e-3`` per unit, initialised around 1 model time unit.
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor, nn

from liquid_nav.models.ltc import inverse_softplus


class CTRNNCell(nn.Module):
    """Dense CT-RNN cell with the head cell interface (``project_inputs`` / ``prepare`` / ``recurrent_step_with``)."""

    def __init__(self, input_size: int, units: int, unfolds: int = 6, dropout: float = 0.0):
        super().__init__()
        if unfolds < 1:
            raise ValueError(f"CT-RNN: unfolds must be >= 1, got {unfolds}")
        self.state_size = units
        self.unfolds = unfolds
        self.dropout = nn.Dropout(dropout)
        self.input_map = nn.Linear(input_size, units)
        self.recurrent_map = nn.Linear(units, units, bias=False)
        self.tau = nn.Parameter(inverse_softplus(torch.empty(units).uniform_(0.5, 2.0)))
        nn.init.xavier_uniform_(self.input_map.weight)
        nn.init.orthogonal_(self.recurrent_map.weight)

    def project_inputs(self, x: Tensor) -> Tensor:
        return self.input_map(self.dropout(x))

    def prepare(self) -> List[Tensor]:
        """[recurrent weight transposed, time constants]."""
        return [self.recurrent_map.weight.t(), nn.functional.softplus(self.tau) + 1e-3]

    def recurrent_step_with(self, prepared: List[Tensor], projected: Tensor, h: Tensor,
                            t: Tensor) -> Tuple[Tensor, Tensor]:
        recurrent_t, tau = prepared
        keep = torch.exp(-(t / self.unfolds).unsqueeze(1) / tau)  # (B, units): memory kept per sub-step
        for _ in range(self.unfolds):
            target = torch.tanh(torch.addmm(projected, h, recurrent_t))
            h = torch.lerp(target, h, keep)
        return h, h

    def step(self, x: Tensor, h: Tensor, t: Tensor) -> Tuple[Tensor, Tensor]:
        return self.recurrent_step_with(self.prepare(), self.project_inputs(x), h, t)
