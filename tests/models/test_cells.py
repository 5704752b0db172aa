"""Cell semantics: wired CfC connectivity (all heads, recurrent command synapses), dropout, LTC time."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from liquid_nav.models.cfc import CfCCell, WiredCfCCell
from liquid_nav.models.ltc import LTCCell
from liquid_nav.models.wiring import NCPConfig, build_ncp

WIRING = build_ncp(NCPConfig(inter_neurons=8, command_neurons=6, motor_neurons=3, sensory_fanout=3,
                             inter_fanout=2, recurrent_command_synapses=4, motor_fanin=3, seed=11), 10)


def _expected_dependencies(wiring):
    """(state <- input, state <- previous state) dependency patterns of one Sparse-CfC step."""
    inter, command, motor = wiring.layers()
    adj = wiring.adjacency != 0
    on_input = np.zeros((wiring.units, wiring.input_dim), bool)
    on_state = np.zeros((wiring.units, wiring.units), bool)
    on_input[inter] = (wiring.sensory_adjacency[:, inter] != 0).T
    for layer in (inter, command, motor):
        on_state[np.ix_(layer, layer)] = adj[np.ix_(layer, layer)].T | np.eye(len(layer), dtype=bool)
    # Command neurons read the new inter states, which read the sensory inputs and their own old state.
    for c in command:
        sources = [i for i in inter if adj[i, c]]
        on_input[c] = on_input[sources].any(axis=0)
        on_state[c, sources] = True
    for m in motor:
        sources = [c for c in command if adj[c, m]]
        on_input[m] = on_input[sources].any(axis=0)
        on_state[m] |= on_state[sources].any(axis=0)
    return on_input, on_state


@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
def test_wired_cfc_follows_the_wiring_exactly(mode):
    torch.manual_seed(0)
    cell = WiredCfCCell(WIRING, mode=mode)
    x, h, t = torch.randn(1, 10), torch.randn(1, WIRING.units), torch.tensor([0.7])
    jac_x, jac_h = torch.autograd.functional.jacobian(lambda a, b: cell.step(a, b, t)[1], (x, h))
    got_input = jac_x[0, :, 0].abs().numpy() > 0
    got_state = jac_h[0, :, 0].abs().numpy() > 0
    want_input, want_state = _expected_dependencies(WIRING)
    np.testing.assert_array_equal(got_input, want_input)
    np.testing.assert_array_equal(got_state, want_state)
    command = WIRING.command
    recurrent = (WIRING.adjacency[np.ix_(command, command)] != 0) & ~np.eye(len(command), dtype=bool)
    assert recurrent.any() and got_state[np.ix_(command, command)][recurrent.T].all()


@pytest.mark.parametrize("make", [
    lambda: CfCCell(10, 12, backbone_layers=1, backbone_units=16, dropout=0.5),
    lambda: CfCCell(10, 12, backbone_layers=0, dropout=0.5),
    lambda: WiredCfCCell(WIRING, dropout=0.5),
])
def test_dropout_applies_in_training_only(make):
    torch.manual_seed(0)
    cell = make()
    x, h, t = torch.randn(4, 10), torch.zeros(4, cell.state_size), torch.ones(4)
    cell.train()
    assert not torch.equal(cell.step(x, h, t)[1], cell.step(x, h, t)[1])
    cell.eval()
    assert torch.equal(cell.step(x, h, t)[1], cell.step(x, h, t)[1])


def test_cfc_modes_follow_closed_form_in_time():
    torch.manual_seed(0)
    cell = CfCCell(5, 7, mode="pure", backbone_layers=0)
    x, h = torch.randn(2, 5), torch.randn(2, 7)
    f1 = cell.project_inputs(x) + cell.recurrent_map(h)
    t = torch.tensor([0.0, 1e6])
    out = cell.step(x, h, t)[1]
    amplitude = cell.amplitude.expand(2, -1)
    torch.testing.assert_close(out[0], (amplitude - amplitude * f1)[0])  # t = 0: A - A f1
    torch.testing.assert_close(out[1], amplitude[1])  # t -> inf: the equilibrium A


def test_ltc_elapsed_time_is_real_time():
    torch.manual_seed(0)
    cell = LTCCell(WIRING, unfolds=6)
    x, v = torch.randn(3, 10), torch.randn(3, WIRING.units) * 0.3
    _, v_short = cell.step(x, v, torch.full((3,), 1e-6))
    torch.testing.assert_close(v_short, v, atol=1e-4, rtol=0)  # no time, no change
    # Long horizons converge to the same equilibrium whatever the step split (semi-implicit, stable).
    _, v_long = cell.step(x, v, torch.full((3,), 200.0))
    _, v_long2 = cell.step(x, v_long, torch.full((3,), 200.0))
    assert torch.isfinite(v_long).all()
    torch.testing.assert_close(v_long2, v_long, atol=1e-3, rtol=0)
    # Two half steps approximate one full step far better than zero steps do.
    _, full = cell.step(x, v, torch.full((3,), 0.2))
    _, half = cell.step(x, cell.step(x, v, torch.full((3,), 0.1))[1], torch.full((3,), 0.1))
    assert (full - half).abs().max() < 0.1 * (full - v).abs().max()


def test_ltc_positive_parameters_and_sparse_storage():
    cell = LTCCell(WIRING)
    sensory, neuron = WIRING.synapse_counts()
    assert cell.sensory_w.numel() == sensory and cell.w.numel() == neuron
    for raw in (cell.w, cell.sensory_w, cell.cm, cell.gleak):
        with torch.no_grad():
            raw.fill_(-50.0)  # any raw value still maps to a positive conductance / capacitance
    _, v = cell.step(torch.randn(2, 10), torch.zeros(2, WIRING.units), torch.ones(2))
    assert torch.isfinite(v).all()


@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
def test_fused_sparse_cfc_training_path_matches_stepping_and_gradcheck(mode):
    from liquid_nav.models.fused import WiredCfCWave, wave_operands
    from liquid_nav.models.heads import CellHead

    torch.manual_seed(0)
    cell = WiredCfCCell(WIRING, mode=mode).double()
    with torch.no_grad():
        cell.w_tau.normal_()
        cell.amplitude.normal_()
    head = CellHead(cell, torch.nn.Identity(), WIRING.output_dim)
    x = torch.randn(3, 4, 10, dtype=torch.double)
    t = torch.rand(3, 4, dtype=torch.double) + 0.2
    state = torch.randn(3, WIRING.units, dtype=torch.double)
    fused_out, fused_state = head.sequence(x, t, state)  # grad enabled: fused autograd node
    assert "WiredCfCWave" in type(fused_out.grad_fn).__name__
    with torch.no_grad():
        out, final = head.sequence(x, t, state)  # plain layer-by-layer stepping
    torch.testing.assert_close(fused_out, out, rtol=0, atol=1e-12)
    torch.testing.assert_close(fused_state, final, rtol=0, atol=1e-12)
    prepared = [p.detach() for p in cell.prepare()]
    sizes = (WIRING.config.motor_neurons, WIRING.config.command_neurons, WIRING.config.inter_neurons)
    w_block, drive, t_wave = wave_operands(sizes, cell.n_heads, cell.project_inputs(x).detach(), t, prepared[0],
                                           prepared[1], cell.input_maps[1].bias.detach(), prepared[2], prepared[3],
                                           cell.input_maps[2].bias.detach(), prepared[4])
    extra = [p.detach().requires_grad_(mode == "pure") for p in (cell.w_tau, cell.amplitude)]
    assert torch.autograd.gradcheck(
        lambda d, w, s, *e: WiredCfCWave.apply(sizes, mode, d, w, t_wave, s, *e),
        (drive.requires_grad_(), w_block.requires_grad_(), state.clone().requires_grad_(), *extra))


def test_fused_ltc_training_path_matches_stepping_and_gradcheck():
    from liquid_nav.models.fused import LTCSequence
    from liquid_nav.models.heads import CellHead

    torch.manual_seed(0)
    cell = LTCCell(WIRING, unfolds=3).double()
    head = CellHead(cell, torch.nn.Identity(), WIRING.output_dim)
    x = torch.randn(3, 4, 10, dtype=torch.double)
    t = torch.rand(3, 4, dtype=torch.double) + 0.2
    state = torch.randn(3, WIRING.units, dtype=torch.double) * 0.3
    fused_out, fused_state = head.sequence(x, t, state)
    with torch.no_grad():
        out, final = head.sequence(x, t, state)
    torch.testing.assert_close(fused_out, out, rtol=0, atol=1e-12)
    torch.testing.assert_close(fused_state, final, rtol=0, atol=1e-12)
    prepared = [p.detach().requires_grad_() for p in cell.prepare()]
    projected = cell.project_inputs(x).detach().requires_grad_()
    assert torch.autograd.gradcheck(lambda p, s, *w: LTCSequence.apply(3, 1e-8, p, s, t, *w),
                                    (projected, state.clone().requires_grad_(), *prepared))


def test_ctrnn_integrates_real_time_exactly_in_sub_steps():
    from liquid_nav.models.ctrnn import CTRNNCell

    torch.manual_seed(0)
    coarse, fine = CTRNNCell(10, 8, unfolds=6), CTRNNCell(10, 8, unfolds=3)
    fine.load_state_dict(coarse.state_dict())
    x, h = torch.randn(4, 10), torch.randn(4, 8) * 0.5
    dt = torch.tensor([0.1, 0.5, 1.0, 3.0])
    _, once = coarse.step(x, h, dt)
    _, twice = fine.step(x, fine.step(x, h, dt / 2)[1], dt / 2)  # same sub-step length dt / 6
    torch.testing.assert_close(once, twice, rtol=0, atol=1e-6)
    torch.testing.assert_close(coarse.step(x, h, torch.full((4,), 1e-7))[1], h, rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind,factor", [("cfc", 0.2), ("ltc", 0.6)])
def test_wired_heads_learn_a_time_dependent_task(kind, factor):
    """Training through the fused nodes fits a leaky integral over real (irregular) time and a delayed copy."""
    from liquid_nav.models.heads import CellHead

    torch.manual_seed(0)
    wiring = build_ncp(NCPConfig.auto(16, 2, 0.5, seed=3), 3)
    head = CellHead(WiredCfCCell(wiring) if kind == "cfc" else LTCCell(wiring), torch.nn.Identity(), 2)
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(16, 20, 3, generator=generator)
    dts = torch.rand(16, 20, generator=generator) * 1.5 + 0.25
    target = torch.zeros(16, 20, 2)
    integral = torch.zeros(16)
    for i in range(20):
        integral = integral * torch.exp(-dts[:, i] / 3) + 0.3 * x[:, i, 0] * dts[:, i]
        target[:, i, 0] = integral
        if i:
            target[:, i, 1] = 0.5 * x[:, i - 1, 1]
    optimiser = torch.optim.Adam(head.parameters(), lr=0.02)
    losses = []
    for _ in range(80):
        optimiser.zero_grad()
        loss = torch.nn.functional.mse_loss(head.sequence(x, dts, torch.zeros(16, wiring.units))[0], target)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < factor * losses[0]


def test_compiled_training_loops_equal_their_python_fallback():
    from liquid_nav.models import fused

    torch.manual_seed(0)
    cell = WiredCfCCell(WIRING).double()
    prepared = [p.detach() for p in cell.prepare()]
    sizes = (WIRING.config.motor_neurons, WIRING.config.command_neurons, WIRING.config.inter_neurons)
    t = torch.rand(3, 5, dtype=torch.double) + 0.1
    w_block, drive, t_wave = fused.wave_operands(
        sizes, cell.n_heads, cell.project_inputs(torch.randn(3, 5, 10, dtype=torch.double)).detach(), t,
        prepared[0], prepared[1], cell.input_maps[1].bias.detach(), prepared[2], prepared[3],
        cell.input_maps[2].bias.detach(), prepared[4])
    args = (drive, w_block, t_wave, torch.randn(3, WIRING.units, dtype=torch.double), cell.w_tau, cell.amplitude,
            sizes[0], sizes[1], "default")
    compiled = fused._compiled("_wave_forward_loop")
    assert compiled is not fused._wave_forward_loop  # TorchScript available here
    for got, want in zip(compiled(*args), fused._wave_forward_loop(*args)):
        torch.testing.assert_close(got, want, rtol=0, atol=1e-12)
