"""Fly a policy closed-loop on a list of seeds (the training check, DAgger's rounds, the demo)."""
from __future__ import annotations

from typing import Iterable, List, Optional

from liquid_nav.evaluate.pilots import BackendPilot
from liquid_nav.runtime.backends import make_backend_from_policy
from liquid_nav.runtime.safety import SafetyConfig
from liquid_nav.sim.env import EnvConfig, FlyToTargetEnv
from liquid_nav.sim.rollout import EpisodeRecord, run_episode


def fly_policy(policy, env_config: EnvConfig, seeds: Iterable[int], backend: str = "torch", threads: int = 0,
               record_frames: bool = False, safety: Optional[SafetyConfig] = None) -> List[EpisodeRecord]:
    """One episode per seed with ``policy`` behind ``backend``, as controller_node would fly it (and behind
    ``safety_node``'s gate with ``safety``)."""
    pilot = BackendPilot(make_backend_from_policy(policy, backend, threads=threads), safety=safety)
    env = FlyToTargetEnv(env_config)
    try:
        return [run_episode(env, pilot, seed, record_frames=record_frames) for seed in seeds]
    finally:
        env.close()


def success_rate(records: List[EpisodeRecord]) -> float:
    return sum(record.success for record in records) / max(1, len(records))
