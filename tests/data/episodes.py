"""Synthetic episode records for the data tests (the real-simulator round trip lives in test_store.py)."""
from __future__ import annotations

import numpy as np

from liquid_nav.sim.rollout import EpisodeRecord
from liquid_nav.stamps import DtRule, sequence_dts

FRAME_PERIOD_NS = 33_333_333


def make_record(steps: int = 6, height: int = 24, width: int = 32, seed: int = 0, labels: bool = True,
                frames: bool = True, world: str = "forest", outcome: str = "success") -> EpisodeRecord:
    """An episode of ``steps`` commands with random (but reproducible) values in every array."""
    rng = np.random.default_rng(seed)
    observations = steps + 1
    stamps = np.arange(observations, dtype=np.int64) * FRAME_PERIOD_NS + 1_000 * seed
    quaternions = rng.normal(size=(observations, 4))
    quaternions /= np.linalg.norm(quaternions, axis=1, keepdims=True)
    return EpisodeRecord(
        seed=seed, world=world, outcome=outcome, reason=f"synthetic {outcome}",
        stamps_ns=stamps, dts=sequence_dts(stamps, DtRule()),
        commands=rng.normal(size=(steps, 4)).astype(np.float32),
        positions=rng.normal(size=(observations, 3)), quaternions=quaternions,
        velocities_body=rng.normal(size=(observations, 3)), yaws=rng.uniform(-np.pi, np.pi, observations),
        distances=rng.uniform(0, 50, observations), bearings=rng.uniform(-np.pi, np.pi, observations),
        collisions=rng.random(observations) < 0.2, target_position=rng.normal(size=3),
        labels=rng.normal(size=(steps, 4)).astype(np.float32) if labels else None,
        frames=rng.integers(0, 256, (observations, height, width, 3), dtype=np.uint8) if frames else None,
    )


RECORD_ARRAYS = ("frames", "stamps_ns", "dts", "commands", "labels", "positions", "quaternions", "velocities_body",
                 "yaws", "distances", "bearings", "collisions", "target_position")


def assert_same_arrays(stored, record, names=RECORD_ARRAYS) -> None:
    """Every named array of ``stored`` equals the record's, dtype and NaNs included (None where the record has None)."""
    for name in names:
        expected, actual = getattr(record, name), getattr(stored, name)
        if expected is None:
            assert actual is None, name
            continue
        expected = np.asarray(expected)
        assert actual.dtype == expected.dtype and actual.shape == expected.shape, (name, actual.dtype, actual.shape)
        assert np.array_equal(actual, expected, equal_nan=expected.dtype.kind == "f"), name
