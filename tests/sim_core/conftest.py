"""Fixtures for the simulator-core tests (real PyBullet, DIRECT mode)."""
from __future__ import annotations

from typing import List

import pytest

from liquid_nav.sim.drone_sim import DroneSimulator, SimConfig


@pytest.fixture
def make_sim():
    """Factory for simulators that are closed after the test."""
    created: List[DroneSimulator] = []

    def factory(**config_fields) -> DroneSimulator:
        sim = DroneSimulator(SimConfig(**config_fields))
        created.append(sim)
        return sim

    yield factory
    for sim in created:
        sim.close()
