"""Fused training paths for Sparse-CfC and LTC sequences: one autograd node with a hand-written backward.

Autograd on a Python time loop records dozens of tiny operations per step and spends most of a training
step on bookkeeping. Here the forward loop runs without recording and keeps the pre-activations (or
potentials); the local derivatives are formed for all steps at once, the backward walks the sequence in
reverse (BPTT) and weight gradients are single matrix products over all steps. The forward arithmetic is
the cells' own (``cfc.cfc_update``; the LTC solver step); equality with stepping and the gradients are
tested (gradcheck).
"""
from __future__ import annotations

from typing import List, Tuple

import torch
from torch import Tensor

from liquid_nav.models.cfc import cfc_update
from liquid_nav.models.ltc import ltc_unfold, unfold_constant


def _local_derivatives(z: Tensor, size: int, t: Tensor, mode: str, w_tau: Tensor,
                       amplitude: Tensor) -> List[Tensor]:
    """Derivatives of the new state w.r.t. z for all steps at once; z (L, B, heads*size), t (L, B, 1).

    Returns ``[d h'/d z as (L, B, heads, size)]``, plus in pure mode the per-sample derivatives w.r.t.
    w_tau and amplitude (L, B, size).
    """
    if mode == "pure":
        decay = torch.exp(-t * (w_tau.abs() + z.abs()))
        decay_z = decay * z
        local = (amplitude * decay * (t * z.abs() - 1.0)).unsqueeze(2)
        return [local, amplitude * decay_z * t * torch.sign(w_tau), 1.0 - decay_z]
    f = torch.tanh(z[..., :2 * size])
    f1, f2 = f[..., :size], f[..., size:]
    gate = torch.sigmoid(torch.addcmul(z[..., 3 * size:], z[..., 2 * size:3 * size], t))
    gate_c = 1.0 - gate
    tanh_grad = 1.0 - f * f
    if mode == "no_gate":
        first, gate_local = tanh_grad[..., :size], f2 * gate * gate_c
    else:
        first, gate_local = gate_c * tanh_grad[..., :size], (f2 - f1) * gate * gate_c
    return [torch.stack([first, gate * tanh_grad[..., size:], gate_local * t, gate_local], dim=2)]


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
        layer_sizes = (n_inter, n_command, n_motor)
        params = [(w_tau[:, a:b], amplitude[:, a:b]) for a, b in slices]
        prev: List[List[Tensor]] = [[], [], []]
        pre: List[List[Tensor]] = [[], [], []]
        outputs = []
        for drive, tt in zip(projected.unbind(1), t.t().unsqueeze(2).unbind(0)):
            z0 = torch.addmm(drive, h_inter, r0)
            prev[0].append(h_inter)
            h_inter = cfc_update(z0, n_inter, tt, mode, *params[0])
            z1 = torch.addmm(torch.addmm(b1, h_inter, w1), h_command, r1)
            prev[1].append(h_command)
            h_command = cfc_update(z1, n_command, tt, mode, *params[1])
            z2 = torch.addmm(torch.addmm(b2, h_command, w2), h_motor, r2)
            prev[2].append(h_motor)
            h_motor = cfc_update(z2, n_motor, tt, mode, *params[2])
            for store, item in zip(pre, (z0, z1, z2)):
                store.append(item)
            outputs.append(h_motor)
        # What the backward needs, computed for all steps at once rather than inside the loop.
        t_steps = t.t().unsqueeze(2)
        derivatives = [d for layer in range(3) for d in
                       _local_derivatives(torch.stack(pre[layer]), layer_sizes[layer], t_steps, mode, *params[layer])]
        ctx.sizes, ctx.mode = sizes, mode
        ctx.save_for_backward(r0, w1, r1, w2, r2, w_tau, amplitude, h_inter, h_command,
                              *[torch.stack(p) for p in prev], *derivatives)
        return torch.stack(outputs, dim=1), torch.cat([h_motor, h_command, h_inter], dim=1)

    @staticmethod
    def backward(ctx, d_outputs: Tensor, d_final: Tensor):
        r0, w1, r1, w2, r2, w_tau, amplitude, last_inter, last_command, *rest = ctx.saved_tensors
        n_motor, n_command, n_inter = ctx.sizes
        m, c = n_motor, n_command
        pure = ctx.mode == "pure"
        prev, derivatives = rest[:3], rest[3:]
        per_layer = 3 if pure else 1
        local = derivatives[::per_layer]
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
            if pure:
                for store, item in zip(d_h, (d_new_inter, d_new_command, d_motor)):
                    store.append(item)
            d_motor, d_command, d_inter = dz2 @ r2_t, dz1 @ r1_t, dz0 @ r0_t
            for store, item in zip(dz, (dz0, dz1, dz2)):
                store.append(item)
        # Weight gradients over all steps at once: (L*B, in)^T @ (L*B, out).
        dz_all = [torch.cat(store[::-1], dim=0) for store in dz]
        prev_all = [p.flatten(0, 1) for p in prev]
        new_inter = torch.cat([prev[0][1:].flatten(0, 1), last_inter], dim=0)
        new_command = torch.cat([prev[1][1:].flatten(0, 1), last_command], dim=0)
        d_projected = torch.stack(dz[0][::-1], dim=1)
        d_state = torch.cat([d_motor, d_command, d_inter], dim=1)
        d_tau = d_amp = None
        if pure:
            slices = ((m + c, m + c + n_inter), (m, m + c), (0, m))
            d_tau, d_amp = torch.zeros_like(w_tau), torch.zeros_like(amplitude)
            for layer, (a, b) in enumerate(slices):
                d_h_all = torch.stack(d_h[layer][::-1])
                d_tau[:, a:b] = (d_h_all * derivatives[3 * layer + 1]).sum(dim=(0, 1))
                d_amp[:, a:b] = (d_h_all * derivatives[3 * layer + 2]).sum(dim=(0, 1))
        return (None, None, d_projected, d_state, None, prev_all[0].t() @ dz_all[0], new_inter.t() @ dz_all[1],
                dz_all[1].sum(0), prev_all[1].t() @ dz_all[1], new_command.t() @ dz_all[2], dz_all[2].sum(0),
                prev_all[2].t() @ dz_all[2], d_tau, d_amp)


class LTCSequence(torch.autograd.Function):
    """Fused LTC sequence: (projected (B,L,2N), v0 (B,N), t (B,L), prepared...) -> potentials after each step (B,L,N).

    The forward runs the cell's own unfold (``ltc.ltc_unfold``) and keeps the
    potentials, synapse activations and denominators of every unfold; local derivatives are formed for
    all unfolds at once, the backward walks steps and unfolds in reverse with three products and three
    element-wise operations per unfold, and parameter gradients are single reductions over all of them.
    """

    @staticmethod
    def forward(ctx, unfolds: int, epsilon: float, projected: Tensor, v: Tensor, t: Tensor, gather: Tensor,
                sigma_mu: Tensor, scatter: Tensor, leak_num: Tensor, gleak: Tensor, cm: Tensor) -> Tensor:
        potentials, activations, denominators, states = [v], [], [], []
        for drive, dt in zip(projected.unbind(1), t.t().unsqueeze(2).unbind(0)):
            cm_t = cm * (unfolds / dt)
            constant = unfold_constant(drive, leak_num, gleak, cm_t, epsilon)
            for _ in range(unfolds):
                v, activation, denominator = ltc_unfold(v, constant, cm_t, gather, sigma_mu, scatter)
                potentials.append(v)
                activations.append(activation)
                denominators.append(denominator)
            states.append(v)
        # potentials[i] is the input of unfold i and potentials[i + 1] its output.
        all_potentials = torch.stack(potentials)
        all_activations = torch.stack(activations)
        inverse_den = 1.0 / torch.stack(denominators)
        ctx.unfolds = unfolds
        ctx.save_for_backward(t, gather, scatter, cm, all_potentials, all_activations, inverse_den,
                              -all_potentials[1:] * inverse_den, all_activations * (1.0 - all_activations))
        return torch.stack(states, dim=1)

    @staticmethod
    def backward(ctx, d_states: Tensor):
        t, gather, scatter, cm, potentials, activations, inverse_den, den_local, activation_local = ctx.saved_tensors
        unfolds = ctx.unfolds
        batch, length, units = d_states.shape[0], d_states.shape[1], cm.shape[0]
        steps = length * unfolds
        # d v_out / d [num | den] for every unfold, written in place for the final products.
        d_num_den_all = d_states.new_empty(steps, batch, 2 * units)
        d_activation_all = d_states.new_empty(steps, batch, gather.shape[1])
        scatter_t, gather_t = scatter.t().contiguous(), gather.t().contiguous()
        cm_t_all = cm * (unfolds / t).t().unsqueeze(2)  # (L, B, N)
        d_v = torch.zeros_like(d_states[:, 0])
        for step in range(length - 1, -1, -1):
            d_v = d_v + d_states[:, step]
            cm_t = cm_t_all[step]
            for index in range(step * unfolds + unfolds - 1, step * unfolds - 1, -1):
                d_num_den = d_num_den_all[index]
                d_num = torch.mul(d_v, inverse_den[index], out=d_num_den[:, :units])
                torch.mul(d_v, den_local[index], out=d_num_den[:, units:])
                d_activation = torch.mm(d_num_den, scatter_t, out=d_activation_all[index])
                d_activation.mul_(activation_local[index])
                d_v = torch.addmm(d_num * cm_t, d_activation, gather_t)
        # The constant part of [num | den] (sensory drive, leak, cm/dt') is shared by a step's unfolds.
        d_constant = d_num_den_all.view(length, unfolds, batch, 2 * units).sum(1)  # (L, B, 2N)
        d_cm_t = (d_num_den_all[:, :, :units] * potentials[:-1]).view(length, unfolds, batch, units).sum(1)
        d_cm = ((d_cm_t + d_constant[..., units:]) * (unfolds / t).t().unsqueeze(2)).sum(dim=(0, 1))
        d_num_den_all = d_num_den_all.flatten(0, 1)
        d_activation_all = d_activation_all.flatten(0, 1)
        d_gather = potentials[:-1].flatten(0, 1).t() @ d_activation_all
        d_scatter = activations.flatten(0, 1).t() @ d_num_den_all
        d_leak = d_constant.sum(dim=(0, 1))
        return (None, None, d_constant.transpose(0, 1), d_v, None, d_gather, -d_activation_all.sum(0), d_scatter,
                d_leak[:units], d_leak[units:], d_cm)
