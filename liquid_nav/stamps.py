"""The one rule for the dt a recurrent policy sees: the time between consecutive frame stamps.

The controller node, the closed-loop rollout and the training windows all take dt from here, so a policy
is trained, evaluated and flown with the same timing semantics:

* the first frame of a sequence gets ``nominal_dt``;
* a duplicate stamp is not a new frame (the caller drops it without stepping);
* a stamp that goes backwards (a simulator or bag restart) starts a new sequence;
* a gap longer than ``max_dt`` starts a new sequence (``reset_on_gap``) or is clipped to ``max_dt``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from liquid_nav.validation import require_positive


@dataclass(frozen=True)
class DtRule:
    """Stamp handling. ``nominal_dt`` is used for the first frame of every sequence (s)."""

    nominal_dt: float = 1.0 / 30.0
    max_dt: float = 0.5
    reset_on_gap: bool = True

    def __post_init__(self) -> None:
        require_positive(self, ("nominal_dt", "max_dt"))
        if self.nominal_dt > self.max_dt:
            raise ValueError(f"DtRule.nominal_dt ({self.nominal_dt}) must be <= max_dt ({self.max_dt})")


@dataclass(frozen=True)
class FrameDt:
    """dt for one frame; ``reset_reason`` says why a new sequence starts here, ``duplicate`` marks a repeat."""

    dt: float
    reset_reason: Optional[str] = None
    duplicate: bool = False


def frame_dt(previous_stamp_ns: Optional[int], stamp_ns: int, rule: DtRule) -> FrameDt:
    """dt of the frame stamped ``stamp_ns`` after one stamped ``previous_stamp_ns`` (None: first frame)."""
    if previous_stamp_ns is None:
        return FrameDt(rule.nominal_dt)
    if stamp_ns == previous_stamp_ns:
        return FrameDt(0.0, duplicate=True)
    if stamp_ns < previous_stamp_ns:
        return FrameDt(rule.nominal_dt, f"stamp went back {(previous_stamp_ns - stamp_ns) * 1e-9:.3f} s")
    dt = (stamp_ns - previous_stamp_ns) * 1e-9
    if dt <= rule.max_dt:
        return FrameDt(dt)
    if rule.reset_on_gap:
        return FrameDt(rule.nominal_dt, f"gap of {dt:.3f} s > max_dt {rule.max_dt} s")
    return FrameDt(rule.max_dt)


def sequence_dts(stamps_ns: Sequence[int], rule: DtRule) -> np.ndarray:
    """float32 dt of every frame of a recorded sequence, as the controller would feed them.

    Frames where the rule starts a new sequence get ``nominal_dt`` (their ``reset_reason`` is in
    :func:`frame_dt`); a duplicate stamp raises ValueError, since the controller would drop that frame.
    """
    dts = np.empty(len(stamps_ns), dtype=np.float32)
    previous: Optional[int] = None
    for index, stamp in enumerate(stamps_ns):
        result = frame_dt(previous, int(stamp), rule)
        if result.duplicate:
            raise ValueError(f"frame {index}: duplicate stamp {int(stamp)} ns (the controller drops such frames)")
        dts[index] = result.dt
        previous = int(stamp)
    return dts
