"""Training windows over an episode store: exactly what ``Policy.forward(images, dts)`` takes.

Each episode's frames are resized once to the policy's input (its own ``prepare_frame``, so one dataset
serves every image preset) and kept in memory as uint8; a window is a slice of one episode (never two),
``length`` frames from a start on a ``stride`` grid, with the labels answering each frame and the dt
each frame gets by the package's dt rule. Random frame dropping (``drop_probability``) removes frames
inside a window as a slower or lossy camera would; the dts then come from the kept frames' stamps.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from liquid_nav.models.preprocessing import PreprocessingConfig, prepare_frame
from liquid_nav.stamps import DtRule, frame_dt, sequence_dts


@dataclass
class EpisodeArrays:
    """One episode ready for windows: T frames at the network size, T labels, T stamps, T dts."""

    episode_id: str
    frames: np.ndarray  # (T, H, W, 3) uint8
    labels: np.ndarray  # (T, 4) float32
    stamps_ns: np.ndarray  # (T,) int64
    dts: np.ndarray  # (T,) float32


def split_episodes(episode_ids: Sequence[str], validation_fraction: float, seed: int) -> Tuple[List[str], List[str]]:
    """(train, validation) ids: a seeded shuffle by episode, at least one of each when there are two or more."""
    ids = sorted(episode_ids)
    order = np.random.default_rng([seed, 0x5B1]).permutation(len(ids))
    count = int(round(validation_fraction * len(ids)))
    if validation_fraction > 0 and len(ids) >= 2:
        count = min(max(count, 1), len(ids) - 1)
    validation = sorted(ids[i] for i in order[:count])
    train = sorted(ids[i] for i in order[count:])
    return train, validation


def load_episode_arrays(store, episode_id: str, preprocessing: PreprocessingConfig, rule: DtRule) -> EpisodeArrays:
    """Frames 0..T-1 of a stored episode at the network size, with its labels (or executed commands)."""
    episode = store.read(episode_id, frames=True)
    steps = len(episode.commands)
    labels = episode.labels if episode.labels is not None else episode.commands
    frames = np.stack([prepare_frame(frame, preprocessing) for frame in episode.frames[:steps]])
    stamps = np.asarray(episode.stamps_ns[:steps], dtype=np.int64)
    return EpisodeArrays(episode_id, frames, np.asarray(labels, dtype=np.float32), stamps, sequence_dts(stamps, rule))


class WindowDataset:
    """Windows of ``length`` frames (stride ``stride``) over in-memory episodes; ``item(index, rng)``."""

    def __init__(self, episodes: Sequence[EpisodeArrays], length: int, stride: int, rule: DtRule,
                 drop_probability: float = 0.0) -> None:
        if length < 1 or stride < 1:
            raise ValueError(f"window length and stride must be >= 1, got {length}, {stride}")
        if not 0.0 <= drop_probability < 1.0:
            raise ValueError(f"drop_probability must be in [0, 1), got {drop_probability}")
        self.episodes = list(episodes)
        self.length = length
        self.rule = rule
        self.drop_probability = drop_probability
        self.index: List[Tuple[int, int]] = [(e, start) for e, episode in enumerate(self.episodes)
                                             for start in range(0, len(episode.frames) - length + 1, stride)]
        self.frames = sum(len(episode.frames) for episode in self.episodes)

    def __len__(self) -> int:
        return len(self.index)

    def item(self, index: int, rng: Optional[np.random.Generator] = None) -> Dict[str, np.ndarray]:
        """``images`` (L, H, W, 3) uint8, ``dts`` (L,) float32 s, ``labels`` (L, 4) float32, ``episode``."""
        episode_index, start = self.index[index]
        episode = self.episodes[episode_index]
        frames = self._kept_frames(len(episode.frames), start, rng)
        dts = episode.dts[frames].copy()
        for k in range(1, len(frames)):  # after a drop the dt spans the missing frames, by the same rule
            if frames[k] != frames[k - 1] + 1:
                dts[k] = frame_dt(int(episode.stamps_ns[frames[k - 1]]), int(episode.stamps_ns[frames[k]]), self.rule).dt
        return {"images": episode.frames[frames], "dts": dts, "labels": episode.labels[frames],
                "episode": np.int64(episode_index)}

    def batch(self, indices: Sequence[int], rng: Optional[np.random.Generator] = None) -> Dict[str, np.ndarray]:
        """Stacked items."""
        items = [self.item(int(i), rng) for i in indices]
        return {key: np.stack([item[key] for item in items]) for key in items[0]}

    def _kept_frames(self, count: int, start: int, rng: Optional[np.random.Generator]) -> np.ndarray:
        """``length`` frame indices from ``start``: consecutive, or with random drops where frames remain."""
        if rng is None or self.drop_probability == 0.0:
            return np.arange(start, start + self.length)
        kept = [start]
        frame = start + 1
        spare = count - start - self.length  # frames beyond the plain window that drops may consume
        while len(kept) < self.length:
            if spare > 0 and rng.random() < self.drop_probability:
                spare -= 1
            else:
                kept.append(frame)
            frame += 1
        return np.asarray(kept)
