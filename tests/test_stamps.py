"""The dt rule shared by the controller, the rollout and training windows."""
import numpy as np
import pytest

from liquid_nav.stamps import DtRule, frame_dt, sequence_dts

MS = 1_000_000


def test_first_frame_is_nominal_then_stamp_differences():
    rule = DtRule(nominal_dt=0.04)
    assert frame_dt(None, 123, rule).dt == pytest.approx(0.04)
    assert frame_dt(1000 * MS, 1033 * MS, rule) == frame_dt(0, 33 * MS, rule)
    assert frame_dt(0, 33 * MS, rule).dt == pytest.approx(0.033) and frame_dt(0, 33 * MS, rule).reset_reason is None


def test_duplicate_backward_and_gap():
    rule = DtRule(max_dt=0.2)
    assert frame_dt(5, 5, rule).duplicate
    back = frame_dt(100 * MS, 50 * MS, rule)
    assert back.reset_reason == "stamp went back 0.050 s" and back.dt == pytest.approx(1 / 30)
    gap = frame_dt(0, 500 * MS, rule)
    assert gap.reset_reason.startswith("gap of 0.500 s") and gap.dt == pytest.approx(1 / 30)
    clipped = frame_dt(0, 500 * MS, DtRule(max_dt=0.2, reset_on_gap=False))
    assert clipped.dt == pytest.approx(0.2) and clipped.reset_reason is None


def test_sequence_dts_matches_frame_by_frame_and_refuses_duplicates():
    rule = DtRule()
    stamps = [0, 33 * MS, 100 * MS, 133 * MS, 1133 * MS, 1166 * MS]
    dts = sequence_dts(stamps, rule)
    assert dts.dtype == np.float32
    assert dts.tolist() == pytest.approx([1 / 30, 0.033, 0.067, 0.033, 1 / 30, 0.033])  # the 1 s gap: nominal
    expected = [frame_dt(a, b, rule).dt for a, b in zip([None] + stamps[:-1], stamps)]
    assert dts.tolist() == pytest.approx(expected)
    with pytest.raises(ValueError, match="frame 2: duplicate"):
        sequence_dts([0, 33 * MS, 33 * MS], rule)


def test_rule_refuses_bad_values_naming_the_field():
    for bad in (0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="DtRule.max_dt"):
            DtRule(max_dt=bad)
    with pytest.raises(ValueError, match="nominal_dt"):
        DtRule(nominal_dt=1.0, max_dt=0.5)
