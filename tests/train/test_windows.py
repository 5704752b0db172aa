"""Windows never cross an episode, carry the rule's dts, and drop frames the way a lossy camera would."""
import numpy as np
import pytest

from liquid_nav.data.windows import EpisodeArrays, WindowDataset, split_episodes
from liquid_nav.stamps import DtRule, sequence_dts

PERIOD = 33_333_333


def episode(name, steps, offset):
    stamps = np.arange(steps, dtype=np.int64) * PERIOD
    frames = np.full((steps, 4, 6, 3), 0, np.uint8)
    frames[:, 0, 0, 0] = np.arange(steps) % 256
    labels = np.zeros((steps, 4), np.float32)
    labels[:, 0] = offset + np.arange(steps)
    return EpisodeArrays(name, frames, labels, stamps, sequence_dts(stamps, DtRule()))


def test_windows_stay_inside_episodes_with_stride():
    data = WindowDataset([episode("a", 10, 0), episode("b", 7, 1000)], length=4, stride=3, rule=DtRule())
    assert data.index == [(0, 0), (0, 3), (0, 6), (1, 0), (1, 3)]
    for index in range(len(data)):
        labels = data.item(index)["labels"][:, 0]
        assert np.all(np.diff(labels) == 1)  # consecutive frames of one episode
    batch = data.batch([0, 4])
    assert batch["images"].shape == (2, 4, 4, 6, 3) and batch["dts"].shape == (2, 4)
    assert batch["labels"][1, 0, 0] == 1003 and batch["dts"][0].tolist() == pytest.approx([1 / 30] + [PERIOD * 1e-9] * 3)


def test_frame_drops_stretch_the_dts_and_stay_in_the_episode():
    data = WindowDataset([episode("a", 60, 0)], length=8, stride=8, rule=DtRule(), drop_probability=0.5)
    rng = np.random.default_rng(3)
    stretched = 0
    for index in range(len(data)):
        item = data.item(index, rng)
        frames = item["labels"][:, 0].astype(int)
        assert len(frames) == 8 and np.all(np.diff(frames) >= 1) and frames[-1] < 60
        gaps = np.diff(frames)
        assert item["dts"][1:] == pytest.approx(gaps * PERIOD * 1e-9, rel=1e-6)
        stretched += int((gaps > 1).any())
    assert stretched >= 3
    assert np.array_equal(data.item(0)["labels"][:, 0], np.arange(8))  # no generator: no drops (validation)


def test_split_is_by_episode_seeded_and_disjoint():
    ids = [f"forest-{i:07d}" for i in range(20)]
    train, validation = split_episodes(ids, 0.2, seed=1)
    assert len(validation) == 4 and not set(train) & set(validation) and sorted(train + validation) == ids
    assert split_episodes(ids, 0.2, seed=1) == (train, validation) and split_episodes(ids, 0.2, seed=2) != (train, validation)
    assert split_episodes(ids[:2], 0.01, seed=0)[1] != []
