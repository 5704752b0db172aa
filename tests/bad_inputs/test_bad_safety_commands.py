"""Bad commands for the safety gate: non-finite, huge or malformed commands, stale, future and out-of-order
stamps, and commands while disarmed, e-stopped or after the input was lost.

``CASES`` is the table. Each row puts a gate into a state, offers one command and says what must happen:
the counter that records it, whether anything is published, and that the watchdog afterwards sends only
finite in-limit commands (nothing while disarmed, zero velocity while e-stopped).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pytest

from liquid_nav.runtime.safety import SafetyConfig, SafetyGate, SafetyMode

CONFIG = SafetyConfig()
LIMITS = np.array([CONFIG.max_vx, CONFIG.max_vy, CONFIG.max_vz, CONFIG.max_yaw_rate])
LAST_STAMP = 10.06  # the newest command accepted before the one under test
NOW = 10.08


def _gate(state: str) -> SafetyGate:
    """A gate armed at 10.0 that accepted fresh commands up to ``LAST_STAMP``, then put into ``state``."""
    gate = SafetyGate(CONFIG)
    if state == "disarmed":
        return gate
    gate.arm(10.0)
    gate.tick(10.0)
    for stamp in (10.02, 10.04, LAST_STAMP):
        assert gate.on_command([0.5, 0.0, 0.0, 0.0], stamp, stamp) is not None
    if state == "estop":
        gate.estop()
    elif state == "lost":
        gate.tick(LAST_STAMP + CONFIG.lost_timeout + 0.1)
    return gate


@dataclass(frozen=True)
class Offer:
    """One command offered to a gate in ``state``; ``counter`` must count it and ``published`` says whether it
    passes (clamped to the limits)."""

    state: str
    command: Any
    stamp: float
    counter: str
    published: bool = False
    now: float = NOW


def _case(case_id: str, state: str, command: Any, stamp: float = NOW, counter: str = "rejected_nonfinite",
          published: bool = False, now: float = NOW, marks=()):
    return pytest.param(Offer(state, command, stamp, counter, published, now), id=case_id, marks=marks)


CASES = [
    _case("nan-vx", "active", [math.nan, 0, 0, 0]),
    _case("inf-vy", "active", [0, math.inf, 0, 0]),
    _case("minus-inf-vz", "active", [0, 0, -math.inf, 0]),
    _case("nan-yaw-rate", "active", [0, 0, 0, math.nan]),
    _case("all-nan", "active", [math.nan] * 4),
    _case("float32-nan", "active", np.array([math.nan, 0, 0, 0], dtype=np.float32)),
    _case("float16-overflowed-to-inf", "active", np.array([np.inf, 0, 0, 0], dtype=np.float16)),
    _case("three-values", "active", [1, 2, 3]),
    _case("five-values", "active", [0.1, 0, 0, 0, 0]),
    _case("empty", "active", []),
    _case("scalar", "active", 0.5),
    _case("none", "active", None),
    _case("two-by-two", "active", [[0.1, 0.1], [0.1, 0.1]]),
    _case("four-by-one", "active", [[0.1], [0], [0], [0]]),
    _case("ragged", "active", [[0.1, 0], [0, 0, 0]]),
    _case("text", "active", ["0.1", "fast", 0, 0]),
    _case("nan-stamp", "active", [0.1, 0, 0, 0], stamp=math.nan),
    _case("inf-stamp", "active", [0.1, 0, 0, 0], stamp=math.inf),
    _case("minus-inf-stamp", "active", [0.1, 0, 0, 0], stamp=-math.inf),
    _case("huge-positive", "active", [1e308] * 4, counter="clamped", published=True),
    _case("huge-negative", "active", [-1e308] * 4, counter="clamped", published=True),
    _case("float64-max", "active", [np.finfo(np.float64).max] * 4, counter="clamped", published=True),
    _case("above-every-limit", "active", [5.0, -5.0, 5.0, -5.0], counter="clamped", published=True),
    _case("batch-shaped-1x4", "active", [[0.1, 0, 0, 0]], counter="accepted", published=True),
    _case("stamp-repeated", "active", [0.1, 0, 0, 0], stamp=LAST_STAMP, counter="rejected_out_of_order"),
    _case("stamp-older-than-last", "active", [0.1, 0, 0, 0], stamp=LAST_STAMP - 0.01,
          counter="rejected_out_of_order"),
    _case("stamp-a-day-old", "active", [0.1, 0, 0, 0], stamp=NOW - 86400, counter="rejected_out_of_order"),
    _case("stamp-one-second-ahead", "active", [0.1, 0, 0, 0], stamp=NOW + 1.0, counter="rejected_future"),
    _case("stamp-far-future", "active", [0.1, 0, 0, 0], stamp=1e300, counter="rejected_future"),
    _case("stale-by-10-ms", "active", [0.1, 0, 0, 0], stamp=LAST_STAMP + 0.01,
          now=LAST_STAMP + 0.01 + CONFIG.stale_timeout + 0.01, counter="rejected_stale"),
    _case("stale-by-100-s", "active", [0.1, 0, 0, 0], stamp=LAST_STAMP + 0.01, now=LAST_STAMP + 100,
          counter="rejected_stale"),
    _case("fresh-while-disarmed", "disarmed", [0.5, 0, 0, 0], counter="accepted"),
    _case("nan-while-disarmed", "disarmed", [math.nan, 0, 0, 0]),
    _case("fresh-while-estopped", "estop", [0.5, 0, 0, 0], counter="accepted"),
    _case("huge-while-estopped", "estop", [1e308] * 4, counter="accepted"),
    _case("fresh-after-input-lost", "lost", [0.5, 0, 0, 0], stamp=11.3, now=11.3, counter="accepted"),
]


def _check_output(output, mode: Optional[SafetyMode] = None) -> None:
    assert np.all(np.isfinite(output.command)) and np.all(np.abs(output.command) <= LIMITS + 1e-9)
    assert np.linalg.norm(output.command[:3]) <= CONFIG.max_speed + 1e-9
    assert mode is None or output.mode is mode


@pytest.mark.parametrize("offer", CASES)
def test_bad_commands_are_counted_and_never_reach_the_vehicle_unchecked(offer: Offer):
    gate = _gate(offer.state)
    mode_before = gate.mode(offer.now)
    before = gate.counters.as_dict()
    output = gate.on_command(offer.command, offer.stamp, offer.now)
    changed = {name for name, value in gate.counters.as_dict().items() if value != before[name]}
    if offer.counter.startswith("rejected"):
        assert changed == {offer.counter} and gate.last_rejection and "\n" not in gate.last_rejection
    else:
        assert offer.counter in changed and changed <= {"accepted", "clamped", "rate_limited"}
    assert (output is not None) == offer.published
    if output is not None:
        _check_output(output, SafetyMode.ACTIVE)
    after = gate.tick(offer.now + 0.01).output
    if offer.state == "disarmed":
        assert after is None and gate.mode(offer.now) is SafetyMode.DISARMED
    elif offer.state == "estop":
        assert after.mode is SafetyMode.ESTOP and not after.command.any()
    elif offer.state == "lost":
        assert mode_before is SafetyMode.LOST and gate.mode(offer.now) is SafetyMode.LOST
        _check_output(after, SafetyMode.LOST)
    elif after is not None:
        _check_output(after)
