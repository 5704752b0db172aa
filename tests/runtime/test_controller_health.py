"""FrameLossCounter (lost frames from stamp gaps) and ControllerHealth (levels, reasons, recovery)."""
import pytest

from liquid_nav.runtime.controller_health import ControllerHealth, FrameLossCounter, HealthConfig, HealthLevel

PERIOD_NS = 33_333_333
T0 = 1_000 * 1_000_000_000


def test_stamp_gaps_count_the_frames_that_never_arrived():
    counter = FrameLossCounter(period=1 / 30, max_gap=1.0)
    stamps = [T0 + i * PERIOD_NS for i in (0, 1, 2, 5, 6, 8)]  # 3 and 4 missing, then 7
    assert [counter.observe(s) for s in stamps] == [0, 0, 0, 2, 0, 1]
    assert counter.lost == 3


def test_jitter_is_not_loss_and_rounding_is_to_the_nearest_period():
    counter = FrameLossCounter(period=1 / 30, max_gap=1.0)
    counter.observe(T0)
    assert counter.observe(T0 + int(1.45 * PERIOD_NS)) == 0  # a late frame, none missing
    assert counter.observe(T0 + int(1.45 * PERIOD_NS) + int(1.55 * PERIOD_NS)) == 1
    assert counter.lost == 1


def test_duplicates_backward_stamps_and_long_gaps_are_not_losses():
    counter = FrameLossCounter(period=1 / 30, max_gap=1.0)
    counter.observe(T0)
    assert counter.observe(T0) == 0  # duplicate
    assert counter.observe(T0 - 10 * PERIOD_NS) == 0  # bag loop: a new sequence starts here
    assert counter.observe(T0 - 9 * PERIOD_NS) == 0
    assert counter.observe(T0 + 5_000_000_000) == 0  # camera stopped for 5 s: an interruption
    assert (counter.lost, counter.interruptions) == (0, 1)
    assert counter.observe(T0 + 5_000_000_000 + 3 * PERIOD_NS) == 2


def feed(health, start, count, refused=None, reason="", first_index=0, step=1):
    """``count`` frames at 30 Hz from time ``start``; returns the time after the last one."""
    now = start
    for i in range(count):
        now = start + i / 30
        health.record(now, T0 + (first_index + i * step) * PERIOD_NS, refused, reason)
    return now


def test_good_frames_are_ok_and_counted():
    health = ControllerHealth(HealthConfig(), start_time=0.0)
    now = feed(health, 0.1, 30)
    report = health.evaluate(now)
    assert (report.level, report.message) == (HealthLevel.OK, "running")
    assert report.values["images_received"] == 30 and report.values["lost_frames"] == 0


def test_no_image_is_a_warning_at_start_then_an_error():
    health = ControllerHealth(HealthConfig(window=1.0), start_time=0.0)
    assert health.evaluate(0.5).level is HealthLevel.WARN
    report = health.evaluate(1.5)
    assert report.level is HealthLevel.ERROR and "no image received" in report.message
    now = feed(health, 2.0, 10)
    assert health.evaluate(now).level is HealthLevel.OK
    report = health.evaluate(now + 2.5)
    assert report.level is HealthLevel.ERROR and report.message == "no image for 2.5 s"


def test_an_incompatible_publisher_is_named_when_nothing_arrives():
    health = ControllerHealth(HealthConfig(), start_time=0.0)
    health.incompatible_publisher()
    report = health.evaluate(2.0)
    assert report.level is HealthLevel.ERROR and "incompatible QoS" in report.message
    assert report.values["incompatible_publishers"] == 1


@pytest.mark.parametrize("kind, reason", [("nonfinite_output", "network output [nan, nan, nan, nan]"),
                                          ("image", "Image.encoding 'yuv422' is not supported"),
                                          ("backend_error", "RuntimeError: boom")])
def test_every_frame_refused_is_an_error_with_the_reason_then_recovers(kind, reason):
    health = ControllerHealth(HealthConfig(window=1.0), start_time=0.0)
    now = feed(health, 0.0, 30, refused=kind, reason=reason)
    report = health.evaluate(now)
    assert report.level is HealthLevel.ERROR
    assert "all 30 frames" in report.message and f"{kind} 30" in report.message and reason in report.message
    # good frames come back: WARN while refusals are still in the window, then OK
    now = feed(health, now + 1 / 30, 10, first_index=30)
    report = health.evaluate(now)
    assert report.level is HealthLevel.WARN and "refused" in report.message
    now = feed(health, now + 1 / 30, 30, first_index=40)
    assert health.evaluate(now).level is HealthLevel.OK


def test_some_frames_refused_is_a_warning_with_counts():
    health = ControllerHealth(HealthConfig(), start_time=0.0)
    feed(health, 0.0, 20)
    now = feed(health, 20 / 30, 5, refused="duplicate_stamp", first_index=20)
    report = health.evaluate(now)
    assert report.level is HealthLevel.WARN
    assert report.message.startswith("5 of 25 frames") and "duplicate_stamp 5" in report.message
    assert report.values["window_refused"] == 5


def test_losing_frames_is_a_warning_until_delivery_recovers():
    health = ControllerHealth(HealthConfig(window=1.0, loss_warn_fraction=0.1), start_time=0.0)
    now = feed(health, 0.0, 15, step=2)  # every other frame lost: 14 lost, 15 received
    report = health.evaluate(now)
    assert report.level is HealthLevel.WARN and "14 frames lost" in report.message
    assert report.values["lost_frames"] == 14 and report.values["window_lost"] == 14
    now = feed(health, now + 1 / 30, 40, first_index=29)
    report = health.evaluate(now)
    assert report.level is HealthLevel.OK and report.values["lost_frames"] == 14


def test_a_few_lost_frames_stay_ok():
    health = ControllerHealth(HealthConfig(window=1.0, loss_warn_fraction=0.1), start_time=0.0)
    feed(health, 0.0, 20)
    now = feed(health, 20 / 30, 10, first_index=22)  # 2 of 32 expected lost (6 %)
    report = health.evaluate(now)
    assert report.level is HealthLevel.OK and report.values["window_lost"] == 2


@pytest.mark.parametrize("overrides", [{"period": 0.0}, {"window": float("nan")}, {"loss_warn_fraction": -1.0},
                                       {"period": 2.0, "window": 1.0}])
def test_config_is_validated(overrides):
    with pytest.raises(ValueError, match="HealthConfig"):
        HealthConfig(**overrides)
