"""The controller node's ROS-free core: stamp bookkeeping around a recurrent inference backend.

dt for every step comes from consecutive image header stamps by the package's one rule
(:mod:`liquid_nav.stamps`): the recurrent state is reset when the stamps say the sequence broke (a gap
longer than ``max_dt``, a stamp that goes backwards), on an explicit reset request, or after a
non-finite network output. Duplicate stamps are dropped without stepping.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Dict, Optional, Protocol

import numpy as np

from liquid_nav.stamps import DtRule, frame_dt


class FrameBackend(Protocol):
    """What the core needs from an inference backend (``liquid_nav.runtime.backends``)."""

    def reset(self) -> None: ...

    def step(self, frame_rgb_u8: np.ndarray, dt_seconds: float) -> np.ndarray: ...


@dataclass
class StepResult:
    """One frame's outcome: a command (or None with ``rejected`` saying why) and any state reset."""

    command: Optional[np.ndarray]
    dt: float = 0.0
    reset_reason: Optional[str] = None
    rejected: Optional[str] = None


@dataclass
class ControllerCounters:
    frames: int = 0
    commands: int = 0
    resets: int = 0
    rejected: Dict[str, int] = field(default_factory=dict)

    def reject(self, kind: str) -> None:
        self.rejected[kind] = self.rejected.get(kind, 0) + 1

    def as_dict(self) -> dict:
        flat = {item.name: getattr(self, item.name) for item in fields(self) if item.name != "rejected"}
        flat.update({f"rejected_{kind}": count for kind, count in sorted(self.rejected.items())})
        return flat


class ControllerCore:
    """Feeds frames to a backend with dt from header stamps (integer nanoseconds)."""

    def __init__(self, backend: FrameBackend, rule: Optional[DtRule] = None) -> None:
        self.backend = backend
        self.rule = rule or DtRule()
        self.counters = ControllerCounters()
        self.last_reset_reason: Optional[str] = None
        self._last_stamp_ns: Optional[int] = None

    def reset(self, reason: str) -> None:
        """Clear the recurrent state; the next frame starts a new sequence."""
        self.backend.reset()
        self._last_stamp_ns = None
        self.counters.resets += 1
        self.last_reset_reason = reason

    def process(self, frame_rgb_u8: np.ndarray, stamp_ns: int) -> StepResult:
        """Step the backend on one frame; never raises for bad stamps or bad outputs."""
        self.counters.frames += 1
        timing = frame_dt(self._last_stamp_ns, stamp_ns, self.rule)
        if timing.duplicate:
            self.counters.reject("duplicate_stamp")
            return StepResult(None, rejected=f"duplicate stamp {stamp_ns * 1e-9:.6f} s")
        dt, reset_reason = timing.dt, timing.reset_reason
        if reset_reason is not None:
            self.reset(reset_reason)
        command = np.asarray(self.backend.step(frame_rgb_u8, dt), dtype=np.float32).reshape(-1)
        if command.shape != (4,) or not np.all(np.isfinite(command)):
            self.counters.reject("nonfinite_output")
            self.reset("non-finite network output")
            return StepResult(None, dt=dt, reset_reason=reset_reason,
                              rejected=f"network output {command.tolist()} is not 4 finite numbers")
        self._last_stamp_ns = stamp_ns
        self.counters.commands += 1
        return StepResult(command, dt=dt, reset_reason=reset_reason)
