"""Numerical parity with the ncps 1.0.1 reference where the semantics coincide (ncps is test-only)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from liquid_nav.models.cfc import CfCCell, WiredCfCCell
from liquid_nav.models.heads import CellHead
from liquid_nav.models.ltc import LTCCell
from liquid_nav.models.wiring import NCPConfig, build_ncp

ncps_torch = pytest.importorskip("ncps.torch")
ncps_wirings = pytest.importorskip("ncps.wirings")


def _copy_dense_cfc(ref, cell: CfCCell, input_size: int) -> None:
    """Load an ncps CfCCell's weights into our (split, fused) layout."""
    heads = [ref.ff1] if cell.mode == "pure" else [ref.ff1, ref.ff2, ref.time_a, ref.time_b]
    with torch.no_grad():
        if cell.backbone_layers:
            first = ref.backbone[0]
            cell.input_map.weight.copy_(first.weight[:, :input_size])
            cell.input_map.bias.copy_(first.bias)
            cell.recurrent_map.weight.copy_(first.weight[:, input_size:])
            for index in range(2, len(ref.backbone), 2):
                cell.backbone_rest[index - 1].weight.copy_(ref.backbone[index].weight)
                cell.backbone_rest[index - 1].bias.copy_(ref.backbone[index].bias)
            cell.heads.weight.copy_(torch.cat([h.weight for h in heads]))
            cell.heads.bias.copy_(torch.cat([h.bias for h in heads]))
        else:
            weight = torch.cat([h.weight for h in heads])
            cell.input_map.weight.copy_(weight[:, :input_size])
            cell.recurrent_map.weight.copy_(weight[:, input_size:])
            cell.input_map.bias.copy_(torch.cat([h.bias for h in heads]))
        if cell.mode == "pure":
            cell.w_tau.copy_(ref.w_tau)
            cell.amplitude.copy_(ref.A)


@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
@pytest.mark.parametrize("backbone_layers", [0, 2])
def test_dense_cfc_matches_ncps(mode, backbone_layers):
    torch.manual_seed(0)
    inputs, hidden, length = 6, 9, 12
    ref = ncps_torch.CfCCell(inputs, hidden, mode=mode, backbone_units=16, backbone_layers=backbone_layers)
    cell = CfCCell(inputs, hidden, mode=mode, backbone_units=16, backbone_layers=backbone_layers).eval()
    _copy_dense_cfc(ref, cell, inputs)
    x = torch.randn(5, length, inputs)
    # dt = 1 with a batch (ncps takes a scalar there) ...
    h_ref, h = torch.zeros(5, hidden), torch.zeros(5, hidden)
    for i in range(length):
        _, h_ref = ref(x[:, i], h_ref, 1.0)
        _, h = cell.step(x[:, i], h, torch.ones(5))
        torch.testing.assert_close(h, h_ref, rtol=0, atol=1e-5)
    # ... and real timespans with B = 1 (the only batch size ncps handles per sample).
    dts = torch.rand(length) * 2
    h_ref, h = torch.zeros(1, hidden), torch.zeros(1, hidden)
    for i in range(length):
        _, h_ref = ref(x[:1, i], h_ref, dts[i])
        _, h = cell.step(x[:1, i], h, dts[i:i + 1])
        torch.testing.assert_close(h, h_ref, rtol=0, atol=1e-5)


def test_ltc_matches_ncps_with_identical_parameters_and_wiring():
    torch.manual_seed(0)
    config = NCPConfig(inter_neurons=8, command_neurons=6, motor_neurons=3, sensory_fanout=3, inter_fanout=2,
                       recurrent_command_synapses=3, motor_fanin=2, seed=5)
    ref_wiring = ncps_wirings.NCP(8, 6, 3, 3, 2, 3, 2, seed=5)
    ref = ncps_torch.LTCCell(ref_wiring, in_features=7, implicit_param_constraints=True, ode_unfolds=6)
    wiring = build_ncp(config, 7)
    cell = LTCCell(wiring, unfolds=6)
    s_src, s_dst = np.nonzero(wiring.sensory_adjacency)
    r_src, r_dst = np.nonzero(wiring.adjacency)
    p = ref._params
    with torch.no_grad():
        for ours, theirs, (src, dst) in [
            (cell.sensory_w, "sensory_w", (s_src, s_dst)), (cell.sensory_sigma, "sensory_sigma", (s_src, s_dst)),
            (cell.sensory_mu, "sensory_mu", (s_src, s_dst)), (cell.sensory_erev, "sensory_erev", (s_src, s_dst)),
            (cell.w, "w", (r_src, r_dst)), (cell.sigma, "sigma", (r_src, r_dst)), (cell.mu, "mu", (r_src, r_dst)),
            (cell.erev, "erev", (r_src, r_dst)),
        ]:
            ours.copy_(p[theirs][src, dst])
        for name in ("input_w", "input_b", "output_w", "output_b"):
            p[name].add_(0.1 * torch.randn_like(p[name]))  # make the affine maps non-trivial
        for name in ("gleak", "vleak", "cm", "input_w", "input_b", "output_w", "output_b"):
            getattr(cell, name).copy_(p[name])
    x = torch.randn(4, 10, 7)
    v_ref, v = torch.zeros(4, 17), torch.zeros(4, 17)
    for i in range(10):
        out_ref, v_ref = ref(x[:, i], v_ref, 1.0)
        out, v = cell.step(x[:, i], v, torch.ones(4))
        torch.testing.assert_close(v, v_ref, rtol=0, atol=1e-5)
        torch.testing.assert_close(out, out_ref, rtol=0, atol=1e-5)
    v_ref, v = torch.zeros(1, 17), torch.zeros(1, 17)
    for i, dt in enumerate([0.3, 1.7, 0.05, 2.5]):
        out_ref, v_ref = ref(x[:1, i], v_ref, torch.tensor(dt))
        out, v = cell.step(x[:1, i], v, torch.tensor([dt]))
        torch.testing.assert_close(v, v_ref, rtol=0, atol=1e-5)


@pytest.mark.parametrize("seed", [1, 22222, 4242])
@pytest.mark.parametrize("units,outputs,sparsity,inputs", [(19, 4, 0.5, 32), (34, 4, 0.3, 128), (48, 6, 0.8, 16)])
def test_auto_ncp_adjacency_matches_ncps(seed, units, outputs, sparsity, inputs):
    ref = ncps_wirings.AutoNCP(units, outputs, sparsity_level=sparsity, seed=seed)
    ref.build(inputs)
    ours = build_ncp(NCPConfig.auto(units, outputs, sparsity, seed), inputs)
    np.testing.assert_array_equal(ours.adjacency, ref.adjacency_matrix)
    np.testing.assert_array_equal(ours.sensory_adjacency, ref.sensory_adjacency_matrix)


def test_published_ncp_adjacency_matches_ncps():
    ref = ncps_wirings.NCP(18, 12, 4, 6, 4, 4, 6, seed=22224)
    ref.build(128)
    ours = build_ncp(NCPConfig(), 128)
    np.testing.assert_array_equal(ours.adjacency, ref.adjacency_matrix)
    np.testing.assert_array_equal(ours.sensory_adjacency, ref.sensory_adjacency_matrix)


def test_ncps_batched_timespans_defect_that_we_avoid():
    """ncps 1.0.1 crashes for per-sample timespans with 1 < B != width and mixes rows up when B == width."""
    torch.manual_seed(0)
    width, length = 8, 3
    x = torch.randn(width, length, 5)
    dts = torch.linspace(0.1, 2.0, width).unsqueeze(1).expand(width, length).contiguous()
    ref = ncps_torch.CfC(5, width, backbone_layers=0)
    with pytest.raises(RuntimeError):
        ref(x[:3], timespans=dts[:3])
    batched = ref(x, timespans=dts)[0]
    alone = torch.cat([ref(x[i:i + 1], timespans=dts[i:i + 1])[0] for i in range(width)])
    assert (batched - alone).abs().max() > 1e-3  # ncps: wrong dynamics when B == width
    wiring = build_ncp(NCPConfig.auto(width, 2, 0.5, seed=1), 5)  # our state size == B as well
    head = CellHead(WiredCfCCell(wiring), nn.Identity(), 2).eval()
    ours = head.sequence(x, dts, torch.zeros(width, wiring.units))[0]
    ours_alone = torch.cat([head.sequence(x[i:i + 1], dts[i:i + 1], torch.zeros(1, wiring.units))[0]
                            for i in range(width)])
    torch.testing.assert_close(ours, ours_alone, rtol=0, atol=1e-6)
