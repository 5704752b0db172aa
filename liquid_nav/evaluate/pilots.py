"""Pilots for evaluation: a trained policy flown exactly as ``controller_node`` flies it onboard, and the
wrapper that shows any pilot the perturbed frames of a condition and times its answers."""
from __future__ import annotations

import time
from typing import Callable, List, Optional

import numpy as np

from liquid_nav.runtime.controller_core import ControllerCore, FrameBackend, StepResult
from liquid_nav.runtime.safety import SafetyConfig, SafetyGate
from liquid_nav.sim.rollout import Info, Pilot, stamp_ns
from liquid_nav.stamps import DtRule

FrameFilter = Callable[[np.ndarray], np.ndarray]


class BackendPilot:
    """A :class:`liquid_nav.sim.rollout.Pilot` over any inference backend (``runtime.backends``).

    Every frame goes through the controller node's own :class:`ControllerCore`: dt from the frame
    stamps by the package's dt rule, the recurrent state carried for the whole episode (reset only at
    ``reset`` or when the stamps break), non-finite outputs rejected. A rejected frame gives the zero
    command, which is what the safety layer sends when no fresh command arrives.

    With ``safety``, every command then passes the safety node's own :class:`SafetyGate` (clamps and rate
    limits), armed at the episode's first frame, on the frame clock: what ``sim_node`` + ``controller_node``
    + ``safety_node`` fly in lock-step (``docs/ros.md``).
    """

    def __init__(self, backend: FrameBackend, rule: Optional[DtRule] = None,
                 safety: Optional[SafetyConfig] = None) -> None:
        self.core = ControllerCore(backend, rule)
        self.safety = safety
        self.gate: Optional[SafetyGate] = None
        self.last_result: Optional[StepResult] = None

    def reset(self, info: Info) -> None:
        self.core.reset("new episode")
        self.gate = SafetyGate(self.safety) if self.safety is not None else None

    def act(self, observation: np.ndarray, info: Info) -> np.ndarray:
        stamp = stamp_ns(info)
        self.last_result = self.core.process(observation, stamp)
        command = self.last_result.command
        if self.gate is None:
            return command if command is not None else np.zeros(4, dtype=np.float32)
        now = stamp * 1e-9
        if not self.gate.armed:
            self.gate.arm(now)
        output = self.gate.on_command(command, now, now) if command is not None else None
        if output is None:  # a rejected frame: what the watchdog sends (hold), as the safety node would
            output = self.gate.tick(now).output
        return (output.command if output is not None else np.zeros(4)).astype(np.float32)


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
