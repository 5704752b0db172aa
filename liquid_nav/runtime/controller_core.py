"""The controller node's ROS-free core: stamp bookkeeping around a recurrent inference backend.

dt for every step is the time between consecutive image header stamps. The recurrent state is reset
when the stamps say the sequence broke: a gap longer than ``max_dt``, a stamp that goes backwards
(e.g. a simulator or bag restart), an explicit reset request, or a non-finite network output.
Duplicate stamps are dropped without stepping.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Dict, Optional, Protocol

import numpy as np


class FrameBackend(Protocol):
    """What the core needs from an inference backend (``liquid_nav.runtime.backends``)."""

    def reset(self) -> None: ...

    def step(self, frame_rgb_u8: np.ndarray, dt_seconds: float) -> np.ndarray: ...


@dataclass
class ControllerConfig:
    """Stamp handling. ``nominal_dt`` is used for the first frame of every sequence."""

    nominal_dt: float = 1.0 / 30.0
    max_dt: float = 0.5
    reset_on_gap: bool = True

    def __post_init__(self) -> None:
        for name in ("nominal_dt", "max_dt"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ValueError(f"ControllerConfig.{name} is {value!r}; expected a finite number > 0")
        if self.nominal_dt > self.max_dt:
            raise ValueError(f"ControllerConfig.nominal_dt ({self.nominal_dt}) must be <= max_dt ({self.max_dt})")


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

    def __init__(self, backend: FrameBackend, config: Optional[ControllerConfig] = None) -> None:
        self.backend = backend
        self.config = config or ControllerConfig()
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
        reset_reason = None
        if self._last_stamp_ns is None:
            dt = self.config.nominal_dt
        elif stamp_ns == self._last_stamp_ns:
            self.counters.reject("duplicate_stamp")
            return StepResult(None, rejected=f"duplicate stamp {stamp_ns * 1e-9:.6f} s")
        elif stamp_ns < self._last_stamp_ns:
            reset_reason = f"stamp went back {(self._last_stamp_ns - stamp_ns) * 1e-9:.3f} s"
            dt = self.config.nominal_dt
        else:
            dt = (stamp_ns - self._last_stamp_ns) * 1e-9
            if dt > self.config.max_dt:
                if self.config.reset_on_gap:
                    reset_reason = f"gap of {dt:.3f} s > max_dt {self.config.max_dt} s"
                    dt = self.config.nominal_dt
                else:
                    dt = self.config.max_dt
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
