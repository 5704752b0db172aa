"""Pilots for evaluation: a trained policy flown exactly as ``controller_node`` flies it onboard, and the
wrapper that shows any pilot the perturbed frames of a condition and times its answers."""
from __future__ import annotations

import time
from typing import Callable, List, Optional

import numpy as np

from liquid_nav.runtime.controller_core import ControllerCore, FrameBackend, StepResult
from liquid_nav.sim.rollout import Info, Pilot, stamp_ns
from liquid_nav.stamps import DtRule

FrameFilter = Callable[[np.ndarray], np.ndarray]


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


class EvaluatedPilot:
    """Wraps any pilot for evaluation: each frame goes through the condition's ``frame_filter`` before the
    pilot sees it (the recorded view stays clean) and each ``act`` is timed (``act_seconds``).

    ``filter_for_seed`` (e.g. :meth:`liquid_nav.evaluate.conditions.Condition.frame_filter`) gives the
    episode's filter from its seed; with ``keep_frames`` the filtered frames are kept in ``seen``.
    """

    def __init__(self, pilot: Pilot, filter_for_seed: Optional[Callable[[int], Optional[FrameFilter]]] = None,
                 keep_frames: bool = False) -> None:
        self.pilot = pilot
        self.filter_for_seed = filter_for_seed
        self.keep_frames = keep_frames
        self.act_seconds: List[float] = []
        self.seen: List[np.ndarray] = []
        self._filter: Optional[FrameFilter] = None

    def reset(self, info: Info) -> None:
        self._filter = self.filter_for_seed(int(info["scene_seed"])) if self.filter_for_seed else None
        self.act_seconds, self.seen = [], []
        self.pilot.reset(info)

    def act(self, observation: np.ndarray, info: Info) -> np.ndarray:
        if self._filter is not None:
            observation = self._filter(observation)
        if self.keep_frames:
            self.seen.append(observation)
        started = time.perf_counter()
        command = self.pilot.act(observation, info)
        self.act_seconds.append(time.perf_counter() - started)
        return command
