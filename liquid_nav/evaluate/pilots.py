"""Pilots that fly a trained policy in the simulator exactly as ``controller_node`` flies it onboard."""
from __future__ import annotations

from typing import Optional

import numpy as np

from liquid_nav.runtime.controller_core import ControllerCore, FrameBackend, StepResult
from liquid_nav.sim.rollout import Info, stamp_ns
from liquid_nav.stamps import DtRule


class BackendPilot:
    """A :class:`liquid_nav.sim.rollout.Pilot` over any inference backend (``runtime.backends``).

    Every frame goes through the controller node's own :class:`ControllerCore`: dt from the frame
    stamps by the package's dt rule, the recurrent state carried for the whole episode (reset only at
    ``reset`` or when the stamps break), non-finite outputs rejected. A rejected frame gives the zero
    command, which is what the safety layer sends when no fresh command arrives.
    """

    def __init__(self, backend: FrameBackend, rule: Optional[DtRule] = None) -> None:
        self.core = ControllerCore(backend, rule)
        self.last_result: Optional[StepResult] = None

    def reset(self, info: Info) -> None:
        self.core.reset("new episode")

    def act(self, observation: np.ndarray, info: Info) -> np.ndarray:
        self.last_result = self.core.process(observation, stamp_ns(info))
        command = self.last_result.command
        return command if command is not None else np.zeros(4, dtype=np.float32)
