"""Helpers shared by the simulator-core tests (imported by name: the tests dir has no __init__.py)."""
from __future__ import annotations

from typing import List, Sequence

import numpy as np
import pybullet as p

from liquid_nav.sim.drone_sim import DroneSimulator
from liquid_nav.sim.quadrotor import QuadState


def fly(sim: DroneSimulator, command: Sequence[float], seconds: float) -> List[QuadState]:
    """Fly ``command`` for ``seconds``; the state after every control period."""
    states = []
    for _ in range(round(seconds * sim.config.control_hz)):
        sim.advance(command)
        states.append(sim.state())
    return states


def add_box(client_id: int, center: Sequence[float], half_extents: Sequence[float], rgba=(0.5, 0.5, 0.5, 1.0)) -> int:
    """A static box with collision and visual shape."""
    collision = p.createCollisionShape(p.GEOM_BOX, halfExtents=list(half_extents), physicsClientId=client_id)
    visual = p.createVisualShape(p.GEOM_BOX, halfExtents=list(half_extents), rgbaColor=list(rgba), physicsClientId=client_id)
    return p.createMultiBody(0.0, collision, visual, list(center), physicsClientId=client_id)


def add_sphere(client_id: int, center: Sequence[float], radius: float, rgba=(1.0, 0.0, 0.0, 1.0)) -> int:
    """A static visual-only sphere."""
    visual = p.createVisualShape(p.GEOM_SPHERE, radius=radius, rgbaColor=list(rgba), physicsClientId=client_id)
    return p.createMultiBody(0.0, -1, visual, list(center), physicsClientId=client_id)


def red_mask(rgb: np.ndarray) -> np.ndarray:
    """Pixels that are clearly red (shading-independent)."""
    channels = rgb.astype(np.int32)
    return (channels[:, :, 0] > channels[:, :, 1] + 40) & (channels[:, :, 0] > channels[:, :, 2] + 40)
