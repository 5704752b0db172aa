"""Fused training path for Sparse-CfC sequences: one autograd node with a hand-written backward (BPTT).

Autograd on a Python time loop records ~40 tiny operations per step and spends most of a training
step on bookkeeping. Here the forward loop runs without recording, keeps only what the backward needs
(tanh and gate values per layer, previous states) and the backward walks the sequence in reverse; all
weight gradients are then one matrix product over B x L. The arithmetic is exactly that of
:meth:`liquid_nav.models.cfc.WiredCfCCell.recurrent_step_with` (tested against it and by gradcheck).
"""
from __future__ import annotations

from typing import List, Optional, Tuple

import torch
from torch import Tensor


def _layer_forward(z: Tensor, size: int, t: Tensor, mode: str, w_tau: Tensor,
                   amplitude: Tensor) -> Tuple[Tensor, Tuple[Tensor, Tensor]]:
    if mode == "pure":
        decay = torch.exp(-t * (w_tau.abs() + z.abs()))
        return amplitude - amplitude * decay * z, (z, decay)
    f = torch.tanh(z[:, :2 * size])
    gate = torch.sigmoid(torch.addcmul(z[:, 3 * size:], z[:, 2 * size:3 * size], t))
    f1, f2 = f[:, :size], f[:, size:]
    h = torch.addcmul(f1, gate, f2) if mode == "no_gate" else torch.lerp(f1, f2, gate)
    return h, (f, gate)


def _layer_backward(dh: Tensor, saved: Tuple[Tensor, Tensor], size: int, t: Tensor, mode: str, w_tau: Tensor,
                    amplitude: Tensor) -> Tuple[Tensor, Optional[Tensor], Optional[Tensor]]:
    """Gradient w.r.t. the pre-activations z (and, in pure mode, w_tau and amplitude summed over the batch)."""
    if mode == "pure":
        z, decay = saved
        dz = -dh * amplitude * decay * (1.0 - t * z.abs())
        d_w_tau = (dh * amplitude * z * decay * t).sum(0, keepdim=True) * torch.sign(w_tau)
        d_amplitude = (dh * (1.0 - decay * z)).sum(0, keepdim=True)
        return dz, d_w_tau, d_amplitude
    f, gate = saved
    f1, f2 = f[:, :size], f[:, size:]
    if mode == "no_gate":
        df = torch.cat([dh, dh * gate], dim=1)
        dgate = dh * f2
    else:
        df = torch.cat([dh * (1.0 - gate), dh * gate], dim=1)
        dgate = dh * (f2 - f1)
    dgate_z = dgate * gate * (1.0 - gate)
    return torch.cat([df * (1.0 - f * f), dgate_z * t, dgate_z], dim=1), None, None


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
        prev: List[List[Tensor]] = [[], [], []]
        saved: List[list] = [[], [], []]
        outputs = []
        for step in range(projected.shape[1]):
            tt = t[:, step:step + 1]
            prev[0].append(h_inter)
            h_inter, s0 = _layer_forward(torch.addmm(projected[:, step], h_inter, r0), n_inter, tt, mode, *params[0])
            prev[1].append(h_command)
            z1 = torch.addmm(torch.addmm(b1, h_inter, w1), h_command, r1)
            h_command, s1 = _layer_forward(z1, n_command, tt, mode, *params[1])
            prev[2].append(h_motor)
            z2 = torch.addmm(torch.addmm(b2, h_command, w2), h_motor, r2)
            h_motor, s2 = _layer_forward(z2, n_motor, tt, mode, *params[2])
            for store, item in zip(saved, (s0, s1, s2)):
                store.append(item)
            outputs.append(h_motor)
        ctx.sizes, ctx.mode = sizes, mode
        per_step = [tensor for step in range(len(outputs)) for layer in range(3)
                    for tensor in (prev[layer][step],) + saved[layer][step]]
        ctx.save_for_backward(t, r0, w1, r1, w2, r2, w_tau, amplitude, h_inter, h_command, *per_step)
        return torch.stack(outputs, dim=1), torch.cat([h_motor, h_command, h_inter], dim=1)

    @staticmethod
    def backward(ctx, d_outputs: Tensor, d_final: Tensor):
        t, r0, w1, r1, w2, r2, w_tau, amplitude, last_inter, last_command, *per_step = ctx.saved_tensors
        n_motor, n_command, n_inter = ctx.sizes
        m, c = n_motor, n_command
        mode = ctx.mode
        prev = [per_step[layer::9] for layer in (0, 3, 6)]
        saved = [list(zip(per_step[layer + 1::9], per_step[layer + 2::9])) for layer in (0, 3, 6)]
        slices = ((m + c, m + c + n_inter), (m, m + c), (0, m))
        params = [(w_tau[:, a:b], amplitude[:, a:b]) for a, b in slices]
        d_motor, d_command, d_inter = d_final[:, :m], d_final[:, m:m + c], d_final[:, m + c:]
        length = d_outputs.shape[1]
        dz: List[List[Tensor]] = [[], [], []]
        d_tau = torch.zeros_like(w_tau)
        d_amp = torch.zeros_like(amplitude)
        for step in range(length - 1, -1, -1):
            tt = t[:, step:step + 1]
            d_motor = d_motor + d_outputs[:, step]
            dz2, dt2, da2 = _layer_backward(d_motor, saved[2][step], n_motor, tt, mode, *params[2])
            d_motor = dz2 @ r2.t()
            dz1, dt1, da1 = _layer_backward(torch.addmm(d_command, dz2, w2.t()), saved[1][step], n_command, tt,
                                            mode, *params[1])
            d_command = dz1 @ r1.t()
            dz0, dt0, da0 = _layer_backward(torch.addmm(d_inter, dz1, w1.t()), saved[0][step], n_inter, tt,
                                            mode, *params[0])
            d_inter = dz0 @ r0.t()
            for store, item in zip(dz, (dz0, dz1, dz2)):
                store.append(item)
            grads = [(dt0, da0), (dt1, da1), (dt2, da2)]
            if mode == "pure":
                for (a, b), (g_tau, g_amp) in zip(slices, grads):
                    d_tau[:, a:b] += g_tau
                    d_amp[:, a:b] += g_amp
        # Weight gradients over all steps at once: (B*L, in)^T @ (B*L, out).
        dz_all = [torch.cat(store[::-1], dim=0) for store in dz]
        prev_all = [torch.cat(store, dim=0) for store in prev]
        d_r0 = prev_all[0].t() @ dz_all[0]
        new_inter = torch.cat(prev[0][1:] + [last_inter], dim=0)
        new_command = torch.cat(prev[1][1:] + [last_command], dim=0)
        d_w1 = new_inter.t() @ dz_all[1]
        d_r1 = prev_all[1].t() @ dz_all[1]
        d_w2 = new_command.t() @ dz_all[2]
        d_r2 = prev_all[2].t() @ dz_all[2]
        d_projected = torch.stack(dz[0][::-1], dim=1)
        d_state = torch.cat([d_motor, d_command, d_inter], dim=1)
        pure = mode == "pure"
        return (None, None, d_projected, d_state, None, d_r0, d_w1, dz_all[1].sum(0), d_r1, d_w2, dz_all[2].sum(0),
                d_r2, d_tau if pure else None, d_amp if pure else None)


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
