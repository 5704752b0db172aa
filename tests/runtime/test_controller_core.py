"""ControllerCore: dt from stamps, resets on gaps / backward stamps, duplicate and non-finite rejection."""
import numpy as np
import pytest

from liquid_nav.runtime.controller_core import ControllerCore
from liquid_nav.stamps import DtRule

FRAME = np.zeros((8, 8, 3), np.uint8)
MS = 1_000_000


class RecordingBackend:
    """A tiny recurrent backend: the state counts steps; outputs are scripted."""

    def __init__(self, outputs=None):
        self.calls = []
        self.resets = 0
        self.state = 0
        self.outputs = list(outputs or [])

    def reset(self):
        self.resets += 1
        self.state = 0

    def step(self, frame, dt):
        self.calls.append(dt)
        self.state += 1
        if self.outputs:
            return self.outputs.pop(0)
        return np.array([0.1 * self.state, 0, 0, dt], np.float32)


def make(outputs=None, **config):
    backend = RecordingBackend(outputs)
    return backend, ControllerCore(backend, DtRule(**config))


def test_dt_comes_from_consecutive_stamps_and_state_is_kept():
    backend, core = make(nominal_dt=0.04)
    results = [core.process(FRAME, stamp) for stamp in (1000 * MS, 1033 * MS, 1100 * MS)]
    assert [r.dt for r in results] == pytest.approx([0.04, 0.033, 0.067])
    assert backend.state == 3 and backend.resets == 0
    assert results[-1].command.dtype == np.float32 and results[-1].command[0] == pytest.approx(0.3)


def test_gap_beyond_max_dt_resets_state_and_uses_nominal_dt():
    backend, core = make(max_dt=0.2)
    core.process(FRAME, 0)
    core.process(FRAME, 33 * MS)
    result = core.process(FRAME, 533 * MS)
    assert result.reset_reason.startswith("gap of 0.500 s") and result.command is not None
    assert result.dt == pytest.approx(1 / 30) and backend.resets == 1 and backend.state == 1


def test_gap_is_clipped_when_reset_on_gap_is_off():
    backend, core = make(max_dt=0.2, reset_on_gap=False)
    core.process(FRAME, 0)
    result = core.process(FRAME, 900 * MS)
    assert result.dt == pytest.approx(0.2) and result.reset_reason is None and backend.resets == 0


def test_backward_stamp_starts_a_new_sequence():
    backend, core = make()
    core.process(FRAME, 5000 * MS)
    core.process(FRAME, 5033 * MS)
    result = core.process(FRAME, 100 * MS)
    assert "went back 4.933 s" in result.reset_reason and result.command is not None
    assert core.process(FRAME, 133 * MS).dt == pytest.approx(0.033)
    assert core.counters.resets == 1


def test_duplicate_stamp_is_dropped_without_stepping():
    backend, core = make()
    core.process(FRAME, 10 * MS)
    result = core.process(FRAME, 10 * MS)
    assert result.command is None and "duplicate" in result.rejected
    assert len(backend.calls) == 1 and core.counters.rejected == {"duplicate_stamp": 1}


@pytest.mark.parametrize("bad", [[np.nan, 0, 0, 0], [0, np.inf, 0, 0], [1.0, 2.0]])
def test_non_finite_output_is_rejected_and_state_reset(bad):
    backend, core = make(outputs=[[0.1, 0, 0, 0], bad])
    core.process(FRAME, 0)
    result = core.process(FRAME, 33 * MS)
    assert result.command is None and "not 4 finite numbers" in result.rejected
    assert backend.resets == 1 and core.last_reset_reason == "non-finite network output"
    follow = core.process(FRAME, 66 * MS)
    assert follow.command is not None and follow.dt == pytest.approx(1 / 30)
    assert core.counters.as_dict()["rejected_nonfinite_output"] == 1


def test_explicit_reset_clears_state_and_stamp_history():
    backend, core = make()
    core.process(FRAME, 0)
    core.reset("safety watchdog")
    assert backend.resets == 1 and core.last_reset_reason == "safety watchdog"
    assert core.process(FRAME, 10_000 * MS).reset_reason is None

