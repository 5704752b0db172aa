"""Step arithmetic shared by the cells (:mod:`~liquid_nav.models.cfc`, :mod:`~liquid_nav.models.ltc`) and their
fused training path (:mod:`~liquid_nav.models.fused`): one CfC state update and one LTC unfold.
"""
from __future__ import annotations

from typing import Tuple

import torch
from torch import Tensor


def cfc_update(heads: Tensor, hidden: int, t: Tensor, mode: str, w_tau: Tensor, amplitude: Tensor) -> Tensor:
    """Closed-form state update from the fused head pre-activations ``heads`` (B, k*hidden), t (B, 1)."""
    if mode == "pure":
        return amplitude - amplitude * torch.exp(-t * (torch.abs(w_tau) + torch.abs(heads))) * heads
    z1, z2, t_a, t_b = heads.split(hidden, dim=1)
    f1, f2 = torch.tanh(z1), torch.tanh(z2)
    gate = torch.sigmoid(torch.addcmul(t_b, t_a, t))
    if mode == "no_gate":
        return torch.addcmul(f1, gate, f2)
    return torch.lerp(f1, f2, gate)  # f1 * (1 - gate) + gate * f2



def unfold_constant(projected: Tensor, leak_num: Tensor, gleak: Tensor, cm_t: Tensor, epsilon: float) -> Tensor:
    """The part of [numerator | denominator] fixed over a step's unfolds: sensory synapses, leak, cm / dt'."""
    return projected + torch.cat([leak_num, gleak + epsilon]) + torch.cat([torch.zeros_like(cm_t), cm_t], dim=1)


def ltc_unfold(v: Tensor, constant: Tensor, cm_t: Tensor, gather: Tensor, sigma_mu: Tensor,
               scatter: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """One semi-implicit unfold; returns (new potentials, synapse activations, denominators)."""
    units = v.shape[1]
    activation = torch.sigmoid(torch.addmm(-sigma_mu, v, gather))
    num_den = torch.addmm(constant, activation, scatter)
    denominator = num_den[:, units:]
    return torch.addcmul(num_den[:, :units], cm_t, v) / denominator, activation, denominator
