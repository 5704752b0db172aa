"""Fused training paths for Sparse-CfC and LTC sequences: one autograd node with a hand-written backward.

Autograd on a Python time loop records dozens of tiny operations per step and spends most of a training
step on bookkeeping. Here the forward loop runs without recording and keeps the pre-activations (or
potentials); the local derivatives are formed for all steps at once, the backward walks the sequence in
reverse (BPTT) and weight gradients are single matrix products over all steps. The Sparse-CfC runs in
wavefront order (one block product per iteration for all three layers, see :func:`_wave_forward_loop`).
The forward arithmetic is the cells' own (``cell_math.cfc_update``, ``cell_math.ltc_unfold``); equality with
stepping and the gradients are tested (gradcheck). See docs/models.md.
"""
from __future__ import annotations

import functools
import warnings
from typing import List, Tuple

import torch
from torch import Tensor

from liquid_nav.models.cell_math import cfc_update, ltc_unfold, unfold_constant


def _local_derivatives(z: Tensor, size: int, t: Tensor, mode: str, w_tau: Tensor,
                       amplitude: Tensor) -> List[Tensor]:
    """Derivatives of the new state w.r.t. z for all iterations at once; z (K, B, heads*size), t (K, B, size).

    Returns ``[d h'/d z as (K, B, heads, size)]``, plus in pure mode the per-sample derivatives w.r.t.
    w_tau and amplitude (K, B, size).
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


def _wave_forward_loop(drive: Tensor, w_block: Tensor, t_wave: Tensor, init: Tensor, w_tau: Tensor,
                       amplitude: Tensor, n_motor: int, n_command: int, mode: str) -> Tuple[Tensor, Tensor]:
    """Sparse-CfC in wavefront order: iteration k updates inter neurons for step k, command neurons for
    step k - 1 and motor neurons for step k - 2 at once (each reads only the previous iteration's
    values), which is the layer-by-layer step order rearranged into one product per iteration.

    drive (K, B, heads*N), w_block (N, heads*N), t_wave (K, B, N) with K = L + 2. The command / motor
    parts of the first two iterations keep ``init`` (no step has reached them yet). Returns the wave
    states S_0 .. S_{K-1} (K, B, N) and the pre-activations (K, B, heads*N).
    """
    units = init.shape[1]
    waiting = [n_motor + n_command, n_motor]  # leading (motor, command) columns still at init per iteration
    state = init
    states: List[Tensor] = []
    pre: List[Tensor] = []
    for k in range(drive.shape[0]):
        z = torch.addmm(drive[k], state, w_block)
        state_new = cfc_update(z, units, t_wave[k], mode, w_tau, amplitude)
        if k < 2:
            state_new = torch.cat([init[:, :waiting[k]], state_new[:, waiting[k]:]], dim=1)
        state = state_new
        states.append(state)
        pre.append(z)
    return torch.stack(states), torch.stack(pre)


def _wave_backward_loop(d_states: Tensor, local: Tensor, w_block: Tensor, n_motor: int,
                        n_command: int) -> Tuple[Tensor, Tensor, Tensor]:
    """Reverse walk over the wave: given the external gradients of every wave state (K, B, N), returns the
    gradients w.r.t. the pre-activations (K, B, heads*N), the wave states as used by the local
    derivatives (K, B, N; zero where a state was held at init) and the initial state."""
    waiting = [n_motor + n_command, n_motor]
    w_block_t = w_block.t()
    carry = torch.zeros_like(d_states[0])
    d_init_held = torch.zeros_like(d_states[0])
    dz_steps: List[Tensor] = []
    d_used: List[Tensor] = []
    for k in range(d_states.shape[0] - 1, -1, -1):
        d_state = d_states[k] + carry
        if k < 2:
            held = waiting[k]
            d_init_held[:, :held] += d_state[:, :held]
            d_state = torch.cat([torch.zeros_like(d_state[:, :held]), d_state[:, held:]], dim=1)
        dz = (d_state.unsqueeze(1) * local[k]).flatten(1)
        carry = torch.mm(dz, w_block_t)
        dz_steps.append(dz)
        d_used.append(d_state)
    return torch.stack(dz_steps[::-1]), torch.stack(d_used[::-1]), carry + d_init_held


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


def wave_operands(sizes: Tuple[int, int, int], heads: int, projected: Tensor, t: Tensor, r0: Tensor, w1: Tensor,
                  b1: Tensor, r1: Tensor, w2: Tensor, b2: Tensor, r2: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
    """Block weight (N, heads*N), drives (L+2, B, heads*N) and per-neuron times (L+2, B, N) of the
    wavefront form, in neuron order (motor, command, inter) within each head; differentiable."""
    m, c, n = sizes
    batch, length = projected.shape[0], projected.shape[1]

    def block(weight: Tensor, rows: int, columns: int) -> Tensor:
        return weight.view(rows, heads, columns)

    def zeros(rows: int, columns: int) -> Tensor:
        return r0.new_zeros(rows, heads, columns)

    w_block = torch.cat([
        torch.cat([block(r2, m, m), zeros(m, c), zeros(m, n)], dim=2),
        torch.cat([block(w2, c, m), block(r1, c, c), zeros(c, n)], dim=2),
        torch.cat([zeros(n, m), block(w1, n, c), block(r0, n, n)], dim=2),
    ]).flatten(1)
    inter_drive = torch.cat([projected.transpose(0, 1).reshape(length, batch, heads, n),
                             projected.new_zeros(2, batch, heads, n)])
    drive = torch.cat([b2.view(heads, m).expand(length + 2, batch, heads, m),
                       b1.view(heads, c).expand(length + 2, batch, heads, c), inter_drive], dim=3).flatten(2)
    times = t.t()
    pad = times.new_ones(1, batch)
    t_wave = torch.cat([torch.cat([pad, pad, times]).unsqueeze(2).expand(-1, -1, m),
                        torch.cat([pad, times, pad]).unsqueeze(2).expand(-1, -1, c),
                        torch.cat([times, pad, pad]).unsqueeze(2).expand(-1, -1, n)], dim=2)
    return w_block, drive, t_wave


class WiredCfCWave(torch.autograd.Function):
    """(drive, w_block, t_wave, init state, w_tau, amplitude) -> (motor outputs (B, L, M), final state (B, N))."""

    @staticmethod
    def forward(ctx, sizes: Tuple[int, int, int], mode: str, drive: Tensor, w_block: Tensor, t_wave: Tensor,
                init: Tensor, w_tau: Tensor, amplitude: Tensor) -> Tuple[Tensor, Tensor]:
        m, c, _ = sizes
        states, pre = _compiled("_wave_forward_loop")(drive, w_block, t_wave, init, w_tau, amplitude, m, c, mode)
        length = drive.shape[0] - 2
        derivatives = _local_derivatives(pre, init.shape[1], t_wave, mode, w_tau, amplitude)
        ctx.sizes, ctx.mode = sizes, mode
        ctx.save_for_backward(w_block, torch.cat([init.unsqueeze(0), states[:-1]]), *derivatives)
        final = torch.cat([states[length + 1, :, :m], states[length, :, m:m + c], states[length - 1, :, m + c:]], 1)
        return states[2:, :, :m].transpose(0, 1), final

    @staticmethod
    def backward(ctx, d_outputs: Tensor, d_final: Tensor):
        w_block, previous, *derivatives = ctx.saved_tensors
        m, c, _ = ctx.sizes
        length = d_outputs.shape[1]
        d_states = torch.zeros_like(previous)
        d_states[2:, :, :m] = d_outputs.transpose(0, 1)
        d_states[length + 1, :, :m] += d_final[:, :m]
        d_states[length, :, m:m + c] += d_final[:, m:m + c]
        d_states[length - 1, :, m + c:] += d_final[:, m + c:]
        dz, d_used, d_init = _compiled("_wave_backward_loop")(d_states, derivatives[0], w_block, m, c)
        d_tau = d_amp = None
        if ctx.mode == "pure":
            d_tau = (d_used * derivatives[1]).sum(dim=(0, 1)).unsqueeze(0)
            d_amp = (d_used * derivatives[2]).sum(dim=(0, 1)).unsqueeze(0)
        return (None, None, dz, previous.flatten(0, 1).t() @ dz.flatten(0, 1), None, d_init, d_tau, d_amp)


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
