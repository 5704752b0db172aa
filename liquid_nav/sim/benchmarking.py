"""Physics and camera throughput of a ``DroneSimulator`` (for bench/ scripts; never used in timed tests)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Sequence

from liquid_nav.sim.drone_sim import DroneSimulator


@dataclass(frozen=True)
class RateMeasurement:
    """``count`` operations measured over wall-clock and process CPU time."""

    count: int
    wall_seconds: float
    cpu_seconds: float

    @property
    def per_wall_second(self) -> float:
        return self.count / self.wall_seconds

    @property
    def per_cpu_second(self) -> float:
        """Rate per CPU-second of this process (the anchors' unit; robust to other load on the machine)."""
        return self.count / self.cpu_seconds


def measure_physics_rate(
    sim: DroneSimulator, sim_seconds: float = 5.0, command: Sequence[float] = (2.0, 0.0, 0.0, 0.3)
) -> RateMeasurement:
    """Physics steps per second with the drone flying ``command`` (default: a 2 m/s circle of ~6.7 m
    radius) for ``sim_seconds`` of simulated time, controller included. The drone flies from where it is."""
    steps_before = sim.physics_steps
    wall, cpu = time.perf_counter(), time.process_time()
    sim.advance(command, duration=sim_seconds)
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    return RateMeasurement(sim.physics_steps - steps_before, wall, cpu)


def measure_camera_rate(sim: DroneSimulator, frames: int = 50) -> RateMeasurement:
    """Onboard camera frames per second rendered from the drone's current pose."""
    sim.render()  # first frame pays one-off renderer set-up
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(frames):
        sim.render()
    cpu = time.process_time() - cpu
    wall = time.perf_counter() - wall
    return RateMeasurement(frames, wall, cpu)
