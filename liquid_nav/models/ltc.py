"""Liquid time-constant (LTC) cell on an NCP wiring, stored and computed per synapse.

Membrane potential v of each neuron, conductance-based synapses from presynaptic neuron (or sensory
input) j with ``g_ij(v_j) = w_ij * sigmoid(sigma_ij * (v_j - mu_ij))`` and reversal potential erev_ij:

    cm_i dv_i/dt = gleak_i (vleak_i - v_i) + sum_j g_ij(v_j) (erev_ij - v_i)

solved by the fused semi-implicit (Euler) scheme over ``unfolds`` sub-steps of the *real* elapsed time
t of each sample: ``v <- (cm/dt' v + gleak vleak + sum g erev) / (cm/dt' + gleak + sum g)`` with
``dt' = t / unfolds``. w, cm and gleak are kept positive by softplus. Inputs and motor outputs pass
through per-channel affine maps.

Only existing synapses are stored and evaluated (edge lists), so a training step keeps B x E
activations per unfold instead of the B x N x N (and B x I x N) dense tensors of ncps.
"""
from __future__ import annotations

from typing import List, Tuple

import numpy as np
import torch
from torch import Tensor, nn

from liquid_nav.models.cell_math import ltc_unfold, unfold_constant
from liquid_nav.models.fused import LTCSequence
from liquid_nav.models.wiring import NCPWiring

# Initial ranges of the *effective* (post-softplus where constrained) parameters.
INIT_RANGES = {
    "gleak": (0.001, 1.0), "vleak": (-0.2, 0.2), "cm": (0.4, 0.6),
    "w": (0.001, 1.0), "sigma": (3.0, 8.0), "mu": (0.3, 0.8),
}


def _uniform(count: int, key: str) -> Tensor:
    low, high = INIT_RANGES[key]
    return torch.rand(count) * (high - low) + low


def inverse_softplus(x: Tensor) -> Tensor:
    """The raw parameter whose softplus is ``x`` (x > 0)."""
    return x + torch.log(-torch.expm1(-x))


class LTCCell(nn.Module):
    """Wired LTC cell; state (B, units) in neuron-index order, output = affine(motor potentials)."""

    def __init__(self, wiring: NCPWiring, unfolds: int = 6, epsilon: float = 1e-8):
        super().__init__()
        if unfolds < 1:
            raise ValueError(f"LTC: unfolds must be >= 1, got {unfolds}")
        self.unfolds = unfolds
        self.epsilon = epsilon
        self.input_size = wiring.input_dim
        self.state_size = wiring.units
        self.output_size = wiring.output_dim
        units = wiring.units
        s_src, s_dst = np.nonzero(wiring.sensory_adjacency)
        r_src, r_dst = np.nonzero(wiring.adjacency)
        self.register_buffer("sensory_src", torch.from_numpy(s_src.astype(np.int64)))
        # One-hot gather (units, edges) and scatter (edges, units) matrices: per-synapse work is matmuls.
        self.register_buffer("recurrent_gather", nn.functional.one_hot(torch.from_numpy(r_src.astype(np.int64)),
                                                                       units).float().t().contiguous())
        self.register_buffer("sensory_scatter", nn.functional.one_hot(torch.from_numpy(s_dst.astype(np.int64)),
                                                                      units).float())
        self.register_buffer("recurrent_scatter", nn.functional.one_hot(torch.from_numpy(r_dst.astype(np.int64)),
                                                                        units).float())
        n_s, n_r = len(s_src), len(r_src)
        self.sensory_w = nn.Parameter(inverse_softplus(_uniform(n_s, "w")))
        self.sensory_sigma = nn.Parameter(_uniform(n_s, "sigma"))
        self.sensory_mu = nn.Parameter(_uniform(n_s, "mu"))
        self.sensory_erev = nn.Parameter(torch.from_numpy(wiring.sensory_adjacency[s_src, s_dst].astype(np.float32)))
        self.w = nn.Parameter(inverse_softplus(_uniform(n_r, "w")))
        self.sigma = nn.Parameter(_uniform(n_r, "sigma"))
        self.mu = nn.Parameter(_uniform(n_r, "mu"))
        self.erev = nn.Parameter(torch.from_numpy(wiring.adjacency[r_src, r_dst].astype(np.float32)))
        self.gleak = nn.Parameter(inverse_softplus(_uniform(units, "gleak")))
        self.vleak = nn.Parameter(_uniform(units, "vleak"))
        self.cm = nn.Parameter(inverse_softplus(_uniform(units, "cm")))
        self.input_w = nn.Parameter(torch.ones(wiring.input_dim))
        self.input_b = nn.Parameter(torch.zeros(wiring.input_dim))
        self.output_w = nn.Parameter(torch.ones(wiring.output_dim))
        self.output_b = nn.Parameter(torch.zeros(wiring.output_dim))

    def project_inputs(self, x: Tensor) -> Tensor:
        """Sensory synaptic drive: [sum g erev, sum g] per neuron, (..., 2 * units)."""
        x = x * self.input_w + self.input_b
        pre = x.index_select(-1, self.sensory_src)
        g = nn.functional.softplus(self.sensory_w) * torch.sigmoid(self.sensory_sigma * (pre - self.sensory_mu))
        return torch.cat([(g * self.sensory_erev) @ self.sensory_scatter, g @ self.sensory_scatter], dim=-1)

    def prepare(self) -> List[Tensor]:
        """Per-call constants: [sigma-scaled gather (units, E), sigma * mu (E,), synapse scatter (E, 2 units),
        leak numerator (units,), leak conductance (units,), capacitance (units,)].

        ``v @ gather - sigma mu`` is ``sigma (v_src - mu)`` for every synapse, and ``s @ scatter`` sums
        ``w s erev`` and ``w s`` per destination neuron in one product.
        """
        w = nn.functional.softplus(self.w).unsqueeze(1)
        scatter = torch.cat([(w * self.erev.unsqueeze(1)) * self.recurrent_scatter, w * self.recurrent_scatter], dim=1)
        gleak = nn.functional.softplus(self.gleak)
        return [self.recurrent_gather * self.sigma, self.sigma * self.mu, scatter, gleak * self.vleak, gleak,
                nn.functional.softplus(self.cm)]

    def recurrent_step_with(self, prepared: List[Tensor], projected: Tensor, v: Tensor,
                            t: Tensor) -> Tuple[Tensor, Tensor]:
        """Advance potentials v (B, units) by elapsed time t (B,) given :meth:`project_inputs` output."""
        gather, sigma_mu, scatter, leak_num, gleak, cm = prepared
        cm_t = cm * (self.unfolds / t).unsqueeze(1)
        constant = unfold_constant(projected, leak_num, gleak, cm_t, self.epsilon)
        for _ in range(self.unfolds):
            v = ltc_unfold(v, constant, cm_t, gather, sigma_mu, scatter)[0]
        output = v[:, :self.output_size] * self.output_w + self.output_b
        return output, v

    def step(self, x: Tensor, v: Tensor, t: Tensor) -> Tuple[Tensor, Tensor]:
        return self.recurrent_step_with(self.prepare(), self.project_inputs(x), v, t)

    @torch.jit.unused
    def fused_sequence(self, prepared: List[Tensor], projected: Tensor, v: Tensor,
                       t: Tensor) -> Tuple[Tensor, Tensor]:
        """Whole-sequence forward as one autograd node (hand-written backward); same result as stepping."""
        gather, sigma_mu, scatter, leak_num, gleak, cm = prepared
        states = LTCSequence.apply(self.unfolds, self.epsilon, projected, v, t, gather, sigma_mu, scatter, leak_num,
                                   gleak, cm)
        return states[..., :self.output_size] * self.output_w + self.output_b, states[:, -1]
