"""NCP wiring: published preset, determinism, config round trip, auto sizing, layer structure."""
from __future__ import annotations

import numpy as np
import pytest

from liquid_nav.models.wiring import NCPConfig, WiringError, build_ncp


def test_published_preset_synapse_counts_and_layers():
    wiring = build_ncp(NCPConfig(), 128)
    assert wiring.units == 34 and wiring.output_dim == 4
    assert wiring.synapse_counts() == (768, 100)  # the published NCP: 768 sensory + 100 neuron-to-neuron
    inter, command, motor = wiring.layers()
    assert (len(inter), len(command), len(motor)) == (18, 12, 4)
    sensory, adj = wiring.sensory_adjacency, wiring.adjacency
    # Sensory inputs reach only inter neurons, each with exactly the fanout.
    assert not sensory[:, command + motor].any()
    assert (np.count_nonzero(sensory, axis=1) == 6).all()
    # Inter -> command, command -> command (recurrent), command -> motor; nothing else.
    allowed = np.zeros_like(adj, dtype=bool)
    allowed[np.ix_(inter, command)] = True
    allowed[np.ix_(command, command)] = True
    allowed[np.ix_(command, motor)] = True
    assert not adj[~allowed].any()
    assert (np.count_nonzero(adj[np.ix_(inter, command)], axis=1) == 4).all()
    assert (np.count_nonzero(adj[np.ix_(command, motor)], axis=0) >= 6).all()
    assert np.count_nonzero(adj[np.ix_(command, command)]) >= 1
    assert set(np.unique(adj)) <= {-1, 0, 1} and set(np.unique(sensory)) == {-1, 0, 1}


def test_deterministic_per_seed_and_config_round_trip():
    config = NCPConfig(seed=7)
    a, b = build_ncp(config, 32), build_ncp(NCPConfig(**config.to_dict()), 32)
    assert np.array_equal(a.adjacency, b.adjacency)
    assert np.array_equal(a.sensory_adjacency, b.sensory_adjacency)
    c = build_ncp(NCPConfig(seed=8), 32)
    assert not np.array_equal(a.sensory_adjacency, c.sensory_adjacency)


def test_every_neuron_is_reachable_even_with_sparse_fanout():
    wiring = build_ncp(NCPConfig(inter_neurons=20, command_neurons=10, motor_neurons=4, sensory_fanout=1,
                                 inter_fanout=1, recurrent_command_synapses=0, motor_fanin=1, seed=3), 4)
    inter, command, motor = wiring.layers()
    assert np.count_nonzero(wiring.sensory_adjacency, axis=0)[inter].min() >= 1
    assert np.count_nonzero(wiring.adjacency, axis=0)[command].min() >= 1
    assert np.count_nonzero(wiring.adjacency, axis=1)[command].min() >= 1  # every command drives a motor


def test_auto_sizing():
    config = NCPConfig.auto(units=34, outputs=4, sparsity=0.5, seed=1)
    assert config.units == 34 and config.motor_neurons == 4
    assert (config.inter_neurons, config.command_neurons) == (18, 12)
    assert (config.sensory_fanout, config.inter_fanout, config.motor_fanin) == (9, 6, 6)
    with pytest.raises(WiringError, match="outputs"):
        NCPConfig.auto(units=5, outputs=4)
    with pytest.raises(WiringError, match="sparsity"):
        NCPConfig.auto(units=20, outputs=4, sparsity=0.95)


def test_invalid_configs_name_the_field():
    with pytest.raises(WiringError, match="sensory_fanout 20 exceeds the 18 inter neurons"):
        NCPConfig(sensory_fanout=20)
    with pytest.raises(WiringError, match="motor_fanin"):
        NCPConfig(motor_fanin=13)
    with pytest.raises(WiringError, match="input_dim"):
        build_ncp(NCPConfig(), 0)
