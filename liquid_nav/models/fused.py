"""Fused training paths for Sparse-CfC and LTC sequences: one autograd node with a hand-written backward.

Autograd on a Python time loop records dozens of tiny operations per step and spends most of a training
step on bookkeeping. Here the forward loop runs without recording and keeps the pre-activations (or
potentials); the local derivatives are formed for all steps at once, the backward walks the sequence in
reverse (BPTT) and weight gradients are single matrix products over all steps. The forward arithmetic is
the cells' own (``cfc.cfc_update``; the LTC solver step); equality with stepping and the gradients are
tested (gradcheck).
"""
from __future__ import annotations

import functools
import warnings
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


def _cfc_forward_loop(projected: Tensor, state: Tensor, t: Tensor, r0: Tensor, w1: Tensor, b1: Tensor, r1: Tensor,
                      w2: Tensor, b2: Tensor, r2: Tensor, w_tau: Tensor, amplitude: Tensor, n_motor: int,
                      n_command: int, mode: str) -> Tuple[Tensor, Tensor, List[Tensor], List[Tensor]]:
    """Sparse-CfC over a sequence (the ``WiredCfCCell.recurrent_step_with`` arithmetic, layer by layer).

    Returns motor outputs (B, L, M), the final state, and per layer the stacked previous states
    (L, B, n) and pre-activations (L, B, heads*n).
    """
    m, c = n_motor, n_command
    n_inter = state.shape[1] - m - c
    h_motor, h_command, h_inter = state[:, :m], state[:, m:m + c], state[:, m + c:]
    tau_i, amp_i = w_tau[:, m + c:], amplitude[:, m + c:]
    tau_c, amp_c = w_tau[:, m:m + c], amplitude[:, m:m + c]
    tau_m, amp_m = w_tau[:, :m], amplitude[:, :m]
    prev_i, prev_c, prev_m = [h_inter], [h_command], [h_motor]
    pre_i: List[Tensor] = []
    pre_c: List[Tensor] = []
    pre_m: List[Tensor] = []
    outputs: List[Tensor] = []
    times = t.t().unsqueeze(2).unbind(0)
    drives = projected.unbind(1)
    for step in range(len(drives)):
        dt = times[step]
        z0 = torch.addmm(drives[step], h_inter, r0)
        h_inter = cfc_update(z0, n_inter, dt, mode, tau_i, amp_i)
        z1 = torch.addmm(torch.addmm(b1, h_inter, w1), h_command, r1)
        h_command = cfc_update(z1, c, dt, mode, tau_c, amp_c)
        z2 = torch.addmm(torch.addmm(b2, h_command, w2), h_motor, r2)
        h_motor = cfc_update(z2, m, dt, mode, tau_m, amp_m)
        pre_i.append(z0)
        pre_c.append(z1)
        pre_m.append(z2)
        prev_i.append(h_inter)
        prev_c.append(h_command)
        prev_m.append(h_motor)
        outputs.append(h_motor)
    final = torch.cat([h_motor, h_command, h_inter], dim=1)
    # prev_* hold L + 1 states: the state before each step, and the last one.
    prev = [torch.stack(prev_i), torch.stack(prev_c), torch.stack(prev_m)]
    return torch.stack(outputs, dim=1), final, prev, [torch.stack(pre_i), torch.stack(pre_c), torch.stack(pre_m)]


def _cfc_backward_loop(d_outputs: Tensor, d_final: Tensor, local_i: Tensor, local_c: Tensor, local_m: Tensor,
                       r0: Tensor, w1: Tensor, r1: Tensor, w2: Tensor, r2: Tensor, n_motor: int, n_command: int,
                       keep_state_grads: bool) -> Tuple[List[Tensor], Tensor, List[Tensor]]:
    """Reverse walk: gradients w.r.t. each layer's pre-activations (L, B, heads*n), the initial state,
    and (if ``keep_state_grads``) w.r.t. each layer's new states (L, B, n)."""
    m, c = n_motor, n_command
    d_motor, d_command, d_inter = d_final[:, :m], d_final[:, m:m + c], d_final[:, m + c:]
    r0_t, w1_t, r1_t, w2_t, r2_t = r0.t(), w1.t(), r1.t(), w2.t(), r2.t()
    dz_i: List[Tensor] = []
    dz_c: List[Tensor] = []
    dz_m: List[Tensor] = []
    dh_i: List[Tensor] = []
    dh_c: List[Tensor] = []
    dh_m: List[Tensor] = []
    for step in range(d_outputs.shape[1] - 1, -1, -1):
        d_motor = d_motor + d_outputs[:, step]
        dz2 = (d_motor.unsqueeze(1) * local_m[step]).flatten(1)
        d_new_command = torch.addmm(d_command, dz2, w2_t)
        dz1 = (d_new_command.unsqueeze(1) * local_c[step]).flatten(1)
        d_new_inter = torch.addmm(d_inter, dz1, w1_t)
        dz0 = (d_new_inter.unsqueeze(1) * local_i[step]).flatten(1)
        if keep_state_grads:
            dh_i.append(d_new_inter)
            dh_c.append(d_new_command)
            dh_m.append(d_motor)
        d_motor, d_command, d_inter = torch.mm(dz2, r2_t), torch.mm(dz1, r1_t), torch.mm(dz0, r0_t)
        dz_i.append(dz0)
        dz_c.append(dz1)
        dz_m.append(dz2)
    dz = [torch.stack(dz_i[::-1]), torch.stack(dz_c[::-1]), torch.stack(dz_m[::-1])]
    d_h: List[Tensor] = []
    if keep_state_grads:
        d_h = [torch.stack(dh_i[::-1]), torch.stack(dh_c[::-1]), torch.stack(dh_m[::-1])]
    return dz, torch.cat([d_motor, d_command, d_inter], dim=1), d_h


@functools.lru_cache(maxsize=None)
def _compiled(name: str):
    """The loop ``name`` compiled with TorchScript once per process (it removes Python's per-operation
    overhead, ~20 % of a training step); the plain function where TorchScript is unavailable."""
    function = globals()[name]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # torch >= 2.9 flags torch.jit as deprecated
            return torch.jit.script(function)
    except Exception:  # noqa: BLE001 - any TorchScript failure: same arithmetic, interpreted
        return function


class WiredCfCSequence(torch.autograd.Function):
    """(projected (B,L,k*n_inter), state (B,S), t (B,L), prepared weights...) -> (motor (B,L,M), final state)."""

    @staticmethod
    def forward(ctx, sizes: Tuple[int, int, int], mode: str, projected: Tensor, state: Tensor, t: Tensor,
                r0: Tensor, w1: Tensor, b1: Tensor, r1: Tensor, w2: Tensor, b2: Tensor, r2: Tensor,
                w_tau: Tensor, amplitude: Tensor) -> Tuple[Tensor, Tensor]:
        n_motor, n_command, n_inter = sizes
        m, c = n_motor, n_command
        outputs, final, prev, pre = _compiled("_cfc_forward_loop")(projected, state, t, r0, w1, b1, r1, w2, b2, r2,
                                                                   w_tau, amplitude, m, c, mode)
        # What the backward needs, computed for all steps at once rather than inside the loop.
        t_steps = t.t().unsqueeze(2)
        slices = ((m + c, m + c + n_inter), (m, m + c), (0, m))
        derivatives = [d for layer, (a, b) in enumerate(slices) for d in
                       _local_derivatives(pre[layer], b - a, t_steps, mode, w_tau[:, a:b], amplitude[:, a:b])]
        ctx.sizes, ctx.mode = sizes, mode
        ctx.save_for_backward(r0, w1, r1, w2, r2, w_tau, amplitude, *prev, *derivatives)
        return outputs, final

    @staticmethod
    def backward(ctx, d_outputs: Tensor, d_final: Tensor):
        r0, w1, r1, w2, r2, w_tau, amplitude, prev_i, prev_c, prev_m, *derivatives = ctx.saved_tensors
        n_motor, n_command, n_inter = ctx.sizes
        m, c = n_motor, n_command
        pure = ctx.mode == "pure"
        local = derivatives[::3] if pure else derivatives
        dz, d_state, d_h = _compiled("_cfc_backward_loop")(d_outputs.contiguous(), d_final.contiguous(), *local,
                                                            r0, w1, r1, w2, r2, m, c, pure)
        # Weight gradients over all steps at once: (L*B, in)^T @ (L*B, out); prev_* hold L + 1 states.
        dz_i, dz_c, dz_m = (d.flatten(0, 1) for d in dz)
        d_tau = d_amp = None
        if pure:
            slices = ((m + c, m + c + n_inter), (m, m + c), (0, m))
            d_tau, d_amp = torch.zeros_like(w_tau), torch.zeros_like(amplitude)
            for layer, (a, b) in enumerate(slices):
                d_tau[:, a:b] = (d_h[layer] * derivatives[3 * layer + 1]).sum(dim=(0, 1))
                d_amp[:, a:b] = (d_h[layer] * derivatives[3 * layer + 2]).sum(dim=(0, 1))
        return (None, None, dz[0].transpose(0, 1), d_state, None,
                prev_i[:-1].flatten(0, 1).t() @ dz_i, prev_i[1:].flatten(0, 1).t() @ dz_c, dz_c.sum(0),
                prev_c[:-1].flatten(0, 1).t() @ dz_c, prev_c[1:].flatten(0, 1).t() @ dz_m, dz_m.sum(0),
                prev_m[:-1].flatten(0, 1).t() @ dz_m, d_tau, d_amp)


def _ltc_forward_loop(projected: Tensor, v: Tensor, t: Tensor, gather: Tensor, sigma_mu: Tensor, scatter: Tensor,
                      leak_num: Tensor, gleak: Tensor, cm: Tensor, unfolds: int,
                      epsilon: float) -> Tuple[Tensor, Tensor, Tensor, Tensor]:
    """LTC over a sequence with the cell's own unfold; returns the potentials before/after every unfold
    (L*K + 1, B, N), activations (L*K, B, E), denominators (L*K, B, N) and the step states (B, L, N)."""
    potentials = [v]
    activations: List[Tensor] = []
    denominators: List[Tensor] = []
    states: List[Tensor] = []
    times = t.t().unsqueeze(2).unbind(0)
    drives = projected.unbind(1)
    for step in range(len(drives)):
        cm_t = cm * (unfolds / times[step])
        constant = unfold_constant(drives[step], leak_num, gleak, cm_t, epsilon)
        for _ in range(unfolds):
            v, activation, denominator = ltc_unfold(v, constant, cm_t, gather, sigma_mu, scatter)
            potentials.append(v)
            activations.append(activation)
            denominators.append(denominator)
        states.append(v)
    return torch.stack(potentials), torch.stack(activations), torch.stack(denominators), torch.stack(states, dim=1)


def _ltc_backward_loop(d_states: Tensor, inverse_den: Tensor, den_local: Tensor, activation_local: Tensor,
                       cm_t_all: Tensor, scatter_t: Tensor, gather_t: Tensor,
                       unfolds: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Reverse walk over steps and unfolds: d v_out / d [num | den] (L*K, B, 2N) and d activation (L*K, B, E)
    for every unfold, and the gradient w.r.t. the initial potentials."""
    batch, length, units = d_states.shape[0], d_states.shape[1], d_states.shape[2]
    d_num_den_all = torch.empty(length * unfolds, batch, 2 * units, dtype=d_states.dtype, device=d_states.device)
    d_activation_all = torch.empty(length * unfolds, batch, scatter_t.shape[1], dtype=d_states.dtype,
                                   device=d_states.device)
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
    return d_num_den_all, d_activation_all, d_v


class LTCSequence(torch.autograd.Function):
    """Fused LTC sequence: (projected (B,L,2N), v0 (B,N), t (B,L), prepared...) -> potentials after each step (B,L,N).

    The forward keeps the potentials, synapse activations and denominators of every unfold; local
    derivatives are formed for all unfolds at once, the backward walks steps and unfolds in reverse with
    three products and three element-wise operations per unfold, and parameter gradients are single
    reductions over all of them.
    """

    @staticmethod
    def forward(ctx, unfolds: int, epsilon: float, projected: Tensor, v: Tensor, t: Tensor, gather: Tensor,
                sigma_mu: Tensor, scatter: Tensor, leak_num: Tensor, gleak: Tensor, cm: Tensor) -> Tensor:
        potentials, activations, denominators, states = _compiled("_ltc_forward_loop")(
            projected, v, t, gather, sigma_mu, scatter, leak_num, gleak, cm, unfolds, epsilon)
        # potentials[i] is the input of unfold i and potentials[i + 1] its output.
        inverse_den = 1.0 / denominators
        ctx.unfolds = unfolds
        ctx.save_for_backward(t, gather, scatter, cm, potentials, activations, inverse_den,
                              -potentials[1:] * inverse_den, activations * (1.0 - activations))
        return states

    @staticmethod
    def backward(ctx, d_states: Tensor):
        t, gather, scatter, cm, potentials, activations, inverse_den, den_local, activation_local = ctx.saved_tensors
        unfolds = ctx.unfolds
        batch, length, units = d_states.shape[0], d_states.shape[1], cm.shape[0]
        time_factor = (unfolds / t).t().unsqueeze(2)  # (L, B, 1): d cm_t / d cm
        d_num_den_all, d_activation_all, d_v = _compiled("_ltc_backward_loop")(
            d_states.contiguous(), inverse_den, den_local, activation_local, cm * time_factor,
            scatter.t().contiguous(), gather.t().contiguous(), unfolds)
        # The constant part of [num | den] (sensory drive, leak, cm/dt') is shared by a step's unfolds.
        d_constant = d_num_den_all.view(length, unfolds, batch, 2 * units).sum(1)  # (L, B, 2N)
        d_cm_t = (d_num_den_all[:, :, :units] * potentials[:-1]).view(length, unfolds, batch, units).sum(1)
        d_cm = ((d_cm_t + d_constant[..., units:]) * time_factor).sum(dim=(0, 1))
        d_num_den_all = d_num_den_all.flatten(0, 1)
        d_activation_all = d_activation_all.flatten(0, 1)
        d_gather = potentials[:-1].flatten(0, 1).t() @ d_activation_all
        d_scatter = activations.flatten(0, 1).t() @ d_num_den_all
        d_leak = d_constant.sum(dim=(0, 1))
        return (None, None, d_constant.transpose(0, 1), d_v, None, d_gather, -d_activation_all.sum(0), d_scatter,
                d_leak[:units], d_leak[units:], d_cm)
