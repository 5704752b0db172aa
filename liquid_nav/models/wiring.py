"""Neural Circuit Policy (NCP) wiring: sensory -> inter -> command -> motor.

Neuron indices follow the NCP convention: motor neurons first (``0 .. motor-1``, so the motor outputs
are the first state entries), then command neurons, then inter neurons. Adjacency matrices hold the
synapse polarity (+1 excitatory, -1 inhibitory, 0 no synapse), indexed ``[source, destination]``.

The random construction draws from ``numpy.random.RandomState(seed)`` in a fixed order (sensory ->
inter, inter -> command, recurrent command, command -> motor), so one seed always gives the same
adjacency; the draw order is the published NCP algorithm, which makes the adjacency identical to the
ncps library's ``NCP``/``AutoNCP`` for the same seed (tested).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Dict, List, Tuple

import numpy as np

from liquid_nav.validation import check_field_types


class WiringError(ValueError):
    """An NCP wiring configuration that cannot be built."""


@dataclass(frozen=True)
class NCPConfig:
    """Sizes, fanouts and seed of an NCP wiring (the input size comes from the layer that feeds it)."""

    inter_neurons: int = 18
    command_neurons: int = 12
    motor_neurons: int = 4
    sensory_fanout: int = 6
    inter_fanout: int = 4
    recurrent_command_synapses: int = 4
    motor_fanin: int = 6
    seed: int = 22224

    def __post_init__(self) -> None:
        check_field_types(self, WiringError, "ncp")
        for name in ("inter_neurons", "command_neurons", "motor_neurons", "sensory_fanout", "inter_fanout",
                     "motor_fanin"):
            if int(getattr(self, name)) < 1:
                raise WiringError(f"NCP wiring: {name} must be >= 1, got {getattr(self, name)}")
        if self.recurrent_command_synapses < 0:
            raise WiringError(
                f"NCP wiring: recurrent_command_synapses must be >= 0, got {self.recurrent_command_synapses}")
        if self.sensory_fanout > self.inter_neurons:
            raise WiringError(f"NCP wiring: sensory_fanout {self.sensory_fanout} exceeds the "
                              f"{self.inter_neurons} inter neurons")
        if self.inter_fanout > self.command_neurons:
            raise WiringError(f"NCP wiring: inter_fanout {self.inter_fanout} exceeds the "
                              f"{self.command_neurons} command neurons")
        if self.motor_fanin > self.command_neurons:
            raise WiringError(f"NCP wiring: motor_fanin {self.motor_fanin} exceeds the "
                              f"{self.command_neurons} command neurons")

    @property
    def units(self) -> int:
        return self.inter_neurons + self.command_neurons + self.motor_neurons

    @classmethod
    def auto(cls, units: int, outputs: int, sparsity: float = 0.5, seed: int = 22222) -> "NCPConfig":
        """Size an NCP from its total neuron count, output count and sparsity (0.1 .. 0.9).

        40 % of the non-motor neurons become command neurons; fanouts scale with the density
        ``1 - sparsity`` (the AutoNCP rule, so the same arguments give ncps' AutoNCP wiring).
        """
        if outputs >= units - 2:
            raise WiringError(f"NCP auto sizing: outputs ({outputs}) must be < units - 2 (units = {units})")
        if not 0.1 <= sparsity <= 0.9:
            raise WiringError(f"NCP auto sizing: sparsity must be within [0.1, 0.9], got {sparsity}")
        density = 1.0 - sparsity
        hidden = units - outputs
        command = max(int(0.4 * hidden), 1)
        inter = hidden - command
        return cls(
            inter_neurons=inter,
            command_neurons=command,
            motor_neurons=outputs,
            sensory_fanout=max(int(inter * density), 1),
            inter_fanout=max(int(command * density), 1),
            recurrent_command_synapses=max(int(command * density * 2), 1),
            motor_fanin=max(int(command * density), 1),
            seed=seed,
        )

    def to_dict(self) -> Dict[str, int]:
        return asdict(self)


@dataclass(frozen=True)
class NCPWiring:
    """A built wiring: the adjacency matrices and the neuron index groups."""

    config: NCPConfig
    input_dim: int
    sensory_adjacency: np.ndarray  # (input_dim, units) int8 polarity
    adjacency: np.ndarray  # (units, units) int8 polarity

    @property
    def units(self) -> int:
        return self.config.units

    @property
    def output_dim(self) -> int:
        return self.config.motor_neurons

    @property
    def motor(self) -> List[int]:
        return list(range(self.config.motor_neurons))

    @property
    def command(self) -> List[int]:
        start = self.config.motor_neurons
        return list(range(start, start + self.config.command_neurons))

    @property
    def inter(self) -> List[int]:
        start = self.config.motor_neurons + self.config.command_neurons
        return list(range(start, start + self.config.inter_neurons))

    def layers(self) -> List[List[int]]:
        """Neuron indices of the three layers in signal order: inter, command, motor."""
        return [self.inter, self.command, self.motor]

    def synapse_counts(self) -> Tuple[int, int]:
        """(sensory synapses, neuron-to-neuron synapses)."""
        return int(np.count_nonzero(self.sensory_adjacency)), int(np.count_nonzero(self.adjacency))


def build_ncp(config: NCPConfig, input_dim: int) -> NCPWiring:
    """Draw the NCP adjacency for ``input_dim`` sensory inputs, deterministically from ``config.seed``."""
    if input_dim < 1:
        raise WiringError(f"NCP wiring: input_dim must be >= 1, got {input_dim}")
    rng = np.random.RandomState(config.seed)
    units = config.units
    sensory = np.zeros((input_dim, units), dtype=np.int8)
    adjacency = np.zeros((units, units), dtype=np.int8)
    motor = list(range(config.motor_neurons))
    command = list(range(config.motor_neurons, config.motor_neurons + config.command_neurons))
    inter = list(range(config.motor_neurons + config.command_neurons, units))

    def connect_fanout(matrix: np.ndarray, sources: List[int], targets: List[int], fanout: int) -> None:
        """Each source picks ``fanout`` distinct targets; unreached targets then get mean-fan-in sources."""
        unreached = list(targets)
        for src in sources:
            for dest in rng.choice(targets, size=fanout, replace=False):
                if dest in unreached:
                    unreached.remove(dest)
                matrix[src, dest] = rng.choice([-1, 1])
        mean_fanin = int(np.clip(int(len(sources) * fanout / len(targets)), 1, len(sources)))
        for dest in unreached:
            for src in rng.choice(sources, size=mean_fanin, replace=False):
                matrix[src, dest] = rng.choice([-1, 1])

    connect_fanout(sensory, list(range(input_dim)), inter, config.sensory_fanout)
    connect_fanout(adjacency, inter, command, config.inter_fanout)
    for _ in range(config.recurrent_command_synapses):
        src = rng.choice(command)
        dest = rng.choice(command)
        adjacency[src, dest] = rng.choice([-1, 1])
    # Command -> motor is drawn per motor neuron (fan-in), then unreached command neurons fan out.
    unreached_commands = list(command)
    for dest in motor:
        for src in rng.choice(command, size=config.motor_fanin, replace=False):
            if src in unreached_commands:
                unreached_commands.remove(src)
            adjacency[src, dest] = rng.choice([-1, 1])
    mean_fanout = int(np.clip(int(len(motor) * config.motor_fanin / len(command)), 1, len(motor)))
    for src in unreached_commands:
        for dest in rng.choice(motor, size=mean_fanout, replace=False):
            adjacency[src, dest] = rng.choice([-1, 1])
    return NCPWiring(config=config, input_dim=input_dim, sensory_adjacency=sensory, adjacency=adjacency)
