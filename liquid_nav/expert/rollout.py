"""Flying the privileged expert through one episode of a ``FlyToTargetEnv``."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from liquid_nav.expert.privileged import PrivilegedExpert


@dataclass
class ExpertEpisode:
    """What one expert episode produced."""

    seed: int
    outcome: str
    reason: str
    duration: float  # simulated seconds
    positions: np.ndarray  # (T + 1, 3) world positions, start included
    commands: np.ndarray  # (T, 4) float32 body FLU commands
    frames: List[np.ndarray] = field(default_factory=list)  # (T + 1) RGB frames when recorded

    @property
    def success(self) -> bool:
        return self.outcome == "success"


def fly_expert_episode(env, expert: PrivilegedExpert, seed: int, record_frames: bool = False) -> ExpertEpisode:
    """Reset ``env`` to ``seed`` and let ``expert`` fly until the episode ends."""
    observation, info = env.reset(seed=seed)
    expert.reset(info)
    positions = [info["position"]]
    commands = []
    frames: List[np.ndarray] = [observation] if record_frames else []
    outcome: Optional[str] = None
    while outcome is None:
        command = expert.act(info)
        observation, _, terminated, truncated, info = env.step(command)
        commands.append(command)
        positions.append(info["position"])
        if record_frames:
            frames.append(observation)
        outcome = info["outcome"] if (terminated or truncated) else None
    return ExpertEpisode(seed, outcome, info["reason"], float(info["time"]), np.asarray(positions),
                         np.asarray(commands, dtype=np.float32), frames)
