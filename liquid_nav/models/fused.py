"""Fused training path for Sparse-CfC sequences: one autograd node with a hand-written backward (BPTT).

Autograd on a Python time loop records ~40 tiny operations per step and spends most of a training
step on bookkeeping. Here the forward loop runs without recording, keeps only what the backward needs
(tanh and gate values per layer, previous states) and the backward walks the sequence in reverse; all
weight gradients are then one matrix product over B x L. The arithmetic is exactly that of
:meth:`liquid_nav.models.cfc.WiredCfCCell.recurrent_step_with` (tested against it and by gradcheck).
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor


def _layer_forward(z: Tensor, size: int, t: Tensor, mode: str, w_tau: Tensor,
                   amplitude: Tensor) -> Tuple[Tensor, Tuple[Tensor, ...]]:
    """New layer state and the local derivatives the backward needs.

    Saved: ``d h'/d z`` per head as (B, heads, size) so the backward is one product; in pure mode also
    the per-sample derivatives w.r.t. w_tau and amplitude.
    """
    if mode == "pure":
        decay = torch.exp(-t * (w_tau.abs() + z.abs()))
        decay_z = decay * z
        local = (amplitude * decay * (t * z.abs() - 1.0)).unsqueeze(1)
        return amplitude - amplitude * decay_z, (local, amplitude * decay_z * t * torch.sign(w_tau), 1.0 - decay_z)
    f = torch.tanh(z[:, :2 * size])
    gate = torch.sigmoid(torch.addcmul(z[:, 3 * size:], z[:, 2 * size:3 * size], t))
    f1, f2 = f[:, :size], f[:, size:]
    gate_c = 1.0 - gate
    tanh_grad = 1.0 - f * f
    local = z.new_empty(z.shape[0], 4, size)
    if mode == "no_gate":
        h = torch.addcmul(f1, gate, f2)
        local[:, 0] = tanh_grad[:, :size]
        gate_local = f2 * gate * gate_c
    else:
        h = torch.lerp(f1, f2, gate)
        torch.mul(gate_c, tanh_grad[:, :size], out=local[:, 0])
        gate_local = (f2 - f1) * gate * gate_c
    torch.mul(gate, tanh_grad[:, size:], out=local[:, 1])
    torch.mul(gate_local, t, out=local[:, 2])
    local[:, 3] = gate_local
    return h, (local,)


class WiredCfCSequence(torch.autograd.Function):
    """(projected (B,L,k*n_inter), state (B,S), t (B,L), prepared weights...) -> (motor (B,L,M), final state)."""

    @staticmethod
    def forward(ctx, sizes: Tuple[int, int, int], mode: str, projected: Tensor, state: Tensor, t: Tensor,
                r0: Tensor, w1: Tensor, b1: Tensor, r1: Tensor, w2: Tensor, b2: Tensor, r2: Tensor,
                w_tau: Tensor, amplitude: Tensor) -> Tuple[Tensor, Tensor]:
        n_motor, n_command, n_inter = sizes
        m, c = n_motor, n_command
        h_motor, h_command, h_inter = state[:, :m], state[:, m:m + c], state[:, m + c:]
        slices = ((m + c, m + c + n_inter), (m, m + c), (0, m))
        params = [(w_tau[:, a:b], amplitude[:, a:b]) for a, b in slices]
        per_step: List[Tensor] = []  # per step and layer: previous state, then the saved derivatives
        outputs = []
        for step in range(projected.shape[1]):
            tt = t[:, step:step + 1]
            per_step.append(h_inter)
            h_inter, s0 = _layer_forward(torch.addmm(projected[:, step], h_inter, r0), n_inter, tt, mode, *params[0])
            per_step.extend(s0)
            per_step.append(h_command)
            z1 = torch.addmm(torch.addmm(b1, h_inter, w1), h_command, r1)
            h_command, s1 = _layer_forward(z1, n_command, tt, mode, *params[1])
            per_step.extend(s1)
            per_step.append(h_motor)
            z2 = torch.addmm(torch.addmm(b2, h_command, w2), h_motor, r2)
            h_motor, s2 = _layer_forward(z2, n_motor, tt, mode, *params[2])
            per_step.extend(s2)
            outputs.append(h_motor)
        ctx.sizes, ctx.mode = sizes, mode
        ctx.save_for_backward(r0, w1, r1, w2, r2, w_tau, amplitude, h_inter, h_command, *per_step)
        return torch.stack(outputs, dim=1), torch.cat([h_motor, h_command, h_inter], dim=1)

    @staticmethod
    def backward(ctx, d_outputs: Tensor, d_final: Tensor):
        r0, w1, r1, w2, r2, w_tau, amplitude, last_inter, last_command, *per_step = ctx.saved_tensors
        n_motor, n_command, n_inter = ctx.sizes
        m, c = n_motor, n_command
        pure = ctx.mode == "pure"
        per_layer = 4 if pure else 2
        stride = 3 * per_layer
        prev = [per_step[layer * per_layer::stride] for layer in range(3)]
        local = [per_step[layer * per_layer + 1::stride] for layer in range(3)]
        d_motor, d_command, d_inter = d_final[:, :m], d_final[:, m:m + c], d_final[:, m + c:]
        length = d_outputs.shape[1]
        dz: List[List[Tensor]] = [[], [], []]
        d_h: List[List[Tensor]] = [[], [], []]  # gradients w.r.t. each layer's new state (pure-mode parameters)
        r0_t, w1_t, r1_t, w2_t, r2_t = r0.t(), w1.t(), r1.t(), w2.t(), r2.t()
        for step in range(length - 1, -1, -1):
            d_motor = d_motor + d_outputs[:, step]
            dz2 = (d_motor.unsqueeze(1) * local[2][step]).flatten(1)
            d_new_command = torch.addmm(d_command, dz2, w2_t)
            dz1 = (d_new_command.unsqueeze(1) * local[1][step]).flatten(1)
            d_new_inter = torch.addmm(d_inter, dz1, w1_t)
            dz0 = (d_new_inter.unsqueeze(1) * local[0][step]).flatten(1)
            d_motor_new = d_motor
            d_motor, d_command, d_inter = dz2 @ r2_t, dz1 @ r1_t, dz0 @ r0_t
            for store, item in zip(dz, (dz0, dz1, dz2)):
                store.append(item)
            if pure:
                for store, item in zip(d_h, (d_new_inter, d_new_command, d_motor_new)):
                    store.append(item)
        # Weight gradients over all steps at once: (L*B, in)^T @ (L*B, out).
        dz_all = [torch.cat(store[::-1], dim=0) for store in dz]
        prev_all = [torch.cat(store, dim=0) for store in prev]
        new_inter = torch.cat(prev[0][1:] + [last_inter], dim=0)
        new_command = torch.cat(prev[1][1:] + [last_command], dim=0)
        d_projected = torch.stack(dz[0][::-1], dim=1)
        d_state = torch.cat([d_motor, d_command, d_inter], dim=1)
        d_tau = d_amp = None
        if pure:
            slices = ((m + c, m + c + n_inter), (m, m + c), (0, m))
            d_tau, d_amp = torch.zeros_like(w_tau), torch.zeros_like(amplitude)
            for layer, (a, b) in enumerate(slices):
                d_h_all = torch.cat(d_h[layer][::-1], dim=0)
                d_tau[:, a:b] = (d_h_all * torch.cat(per_step[layer * per_layer + 2::stride], dim=0)).sum(0)
                d_amp[:, a:b] = (d_h_all * torch.cat(per_step[layer * per_layer + 3::stride], dim=0)).sum(0)
        return (None, None, d_projected, d_state, None, prev_all[0].t() @ dz_all[0], new_inter.t() @ dz_all[1],
                dz_all[1].sum(0), prev_all[1].t() @ dz_all[1], new_command.t() @ dz_all[2], dz_all[2].sum(0),
                prev_all[2].t() @ dz_all[2], d_tau, d_amp)


class LTCSequence(torch.autograd.Function):
    """Fused LTC sequence: (projected (B,L,2N), v0 (B,N), t (B,L), prepared...) -> potentials after each step (B,L,N).

    Same arithmetic as :meth:`liquid_nav.models.ltc.LTCCell.recurrent_step_with`; the backward walks steps
    and unfolds in reverse and forms the synapse-matrix gradients as single products over all of them.
    """

    @staticmethod
    def forward(ctx, unfolds: int, epsilon: float, projected: Tensor, v: Tensor, t: Tensor, gather: Tensor,
                sigma_mu: Tensor, scatter: Tensor, leak_num: Tensor, gleak: Tensor, cm: Tensor) -> Tensor:
        units = v.shape[1]
        constant_leak = torch.cat([leak_num, gleak + epsilon])
        potentials, activations, denominators, states = [], [], [], []
        for step in range(projected.shape[1]):
            cm_t = cm * (unfolds / t[:, step:step + 1])
            constant = projected[:, step] + constant_leak
            constant[:, units:] += cm_t
            for _ in range(unfolds):
                potentials.append(v)
                activation = torch.sigmoid(torch.addmm(-sigma_mu, v, gather))
                num_den = torch.addmm(constant, activation, scatter)
                denominator = num_den[:, units:]
                v = torch.addcmul(num_den[:, :units], cm_t, v) / denominator
                activations.append(activation)
                denominators.append(denominator)
            states.append(v)
        ctx.unfolds = unfolds
        ctx.save_for_backward(t, gather, scatter, cm, torch.stack(potentials), torch.stack(activations),
                              torch.stack(denominators), torch.stack(states))
        return torch.stack(states, dim=1)

    @staticmethod
    def backward(ctx, d_states: Tensor):
        t, gather, scatter, cm, potentials, activations, denominators, states = ctx.saved_tensors
        unfolds = ctx.unfolds
        batch, length, units = d_states.shape[0], d_states.shape[1], cm.shape[0]
        d_v = torch.zeros_like(d_states[:, 0])
        d_projected = d_states.new_empty(batch, length, 2 * units)
        d_cm = torch.zeros_like(cm)
        # Per-(step, unfold) gradients go straight into preallocated buffers for the final products.
        d_num_den_all = d_states.new_empty(length * unfolds, batch, 2 * units)
        d_activation_all = d_states.new_empty(length * unfolds, batch, gather.shape[1])
        scatter_t, gather_t = scatter.t().contiguous(), gather.t().contiguous()
        for step in range(length - 1, -1, -1):
            d_v = d_v + d_states[:, step]
            cm_t = cm * (unfolds / t[:, step:step + 1])
            d_cm_t = torch.zeros_like(d_v)
            d_constant = torch.zeros_like(d_projected[:, 0])
            for k in range(unfolds - 1, -1, -1):
                index = step * unfolds + k
                v_out = potentials[index + 1] if k + 1 < unfolds else states[step]
                d_num_den = d_num_den_all[index]
                d_num = torch.div(d_v, denominators[index], out=d_num_den[:, :units])
                torch.mul(d_num, v_out, out=d_num_den[:, units:]).neg_()
                d_constant += d_num_den
                d_cm_t.addcmul_(d_num, potentials[index])
                activation = activations[index]
                d_activation = torch.mm(d_num_den, scatter_t, out=d_activation_all[index])
                d_activation.mul_(activation * (1.0 - activation))
                d_v = torch.addmm(d_num * cm_t, d_activation, gather_t)
            d_projected[:, step] = d_constant
            d_cm += ((d_cm_t + d_constant[:, units:]) * (unfolds / t[:, step:step + 1])).sum(0)
        # Synapse-matrix gradients over every (step, unfold, sample) at once.
        d_num_den_all = d_num_den_all.flatten(0, 1)
        d_activation_all = d_activation_all.flatten(0, 1)
        d_gather = potentials.flatten(0, 1).t() @ d_activation_all
        d_scatter = activations.flatten(0, 1).t() @ d_num_den_all
        d_sigma_mu = -d_activation_all.sum(0)
        d_leak = d_projected.sum(dim=(0, 1))
        return (None, None, d_projected, d_v, None, d_gather, d_sigma_mu, d_scatter, d_leak[:units], d_leak[units:],
                d_cm)
