"""DAgger: the student flies, the expert labels every visited state, the episodes join the store, training
continues from the last checkpoint; each round reports closed-loop success on held-out seeds.

The expert's label for a state the student produced is what the expert commands from that state, with its
rate limiter following the expert's own previous labels (as in collection, where the executed command is
the noisy one): the label never depends on the student's commands, only on where they took the drone.
With ``beta`` > 0 each step executes the expert's command with that probability instead of the student's.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Dict, List

import numpy as np

from liquid_nav.data.collect import CleanLabel, episode_metadata
from liquid_nav.evaluate.closed_loop import fly_policy, success_rate
from liquid_nav.evaluate.pilots import BackendPilot
from liquid_nav.expert import PrivilegedExpert
from liquid_nav.models.checkpoint import load_checkpoint
from liquid_nav.runtime.backends import make_backend_from_policy
from liquid_nav.sim.env import EnvConfig, FlyToTargetEnv
from liquid_nav.sim.rollout import Info, run_episode
from liquid_nav.train.config import TrainConfig
from liquid_nav.train.trainer import Trainer


class StudentWithExpert:
    """Flies the student (or, with probability ``beta`` per step, the expert); ``clean`` is the expert's label."""

    def __init__(self, student: BackendPilot, expert: PrivilegedExpert, beta: float) -> None:
        self.student = student
        self.expert = expert
        self.beta = beta
        self.clean = np.zeros(4, dtype=np.float32)
        self._rng = np.random.default_rng()

    def reset(self, info: Info) -> None:
        self.student.reset(info)
        self.expert.reset(info)
        self._rng = np.random.default_rng([int(info["scene_seed"]), 0xDA66])

    def act(self, observation: np.ndarray, info: Info) -> np.ndarray:
        self.clean = self.expert.act(observation, info)
        command = self.student.act(observation, info)  # always stepped: the recurrent state sees every frame
        return self.clean if self._rng.random() < self.beta else command


@dataclass(frozen=True)
class DaggerConfig:
    rounds: int = 3
    episodes_per_round: int = 20  # 0: the rounds only train (the control: DAgger's schedule without its data)
    steps_per_round: int = 300
    beta: float = 0.0
    first_seed: int = 200_000  # seeds flown by the student (disjoint from collection and evaluation)
    eval_episodes: int = 20  # 0: no held-out check after a round
    eval_first_seed: int = 100_000


@dataclass
class RoundResult:
    round: int
    episodes: int
    student_success: float  # nan when the round flew no episode
    heldout_success: float  # nan without a held-out check
    validation_loss: float


def round_episodes(dagger: DaggerConfig, index: int, world: str) -> Dict[int, str]:
    """Seed -> store id of round ``index``'s student episodes (its seeds follow from the round alone)."""
    from liquid_nav.data.collect import episode_id

    first = dagger.first_seed + (index - 1) * dagger.episodes_per_round
    seeds = range(first, first + dagger.episodes_per_round)
    return {seed: f"dagger{index}-{episode_id(world, seed)}" for seed in seeds}


def run_dagger(train_config: TrainConfig, dagger: DaggerConfig, env_config: EnvConfig, data_dir: Path,
               run_dir: Path, progress: bool = True, log=print) -> List[RoundResult]:
    """``dagger.rounds`` rounds on top of the run in ``run_dir`` at ``train_config.steps`` (trained there first
    when it is short of them). Round k ends at step ``train_config.steps + k * steps_per_round``, so a rerun
    resumes: finished rounds are skipped, and a round's episodes already in the store are not flown again."""
    from liquid_nav.data.store import EpisodeStore

    run_dir = Path(run_dir)
    last = run_dir / "checkpoints" / "last" / "policy.lnav"

    def step() -> int:
        return int(load_checkpoint(last)[1]["step"]) if last.is_file() else 0

    if step() < train_config.steps:
        resume = (run_dir / "checkpoints" / "last" / "state.pt").is_file()
        Trainer(train_config, data_dir, run_dir, resume=resume).run(progress=progress)
    store = EpisodeStore(Path(data_dir))
    results: List[RoundResult] = []
    for index in range(1, dagger.rounds + 1):
        config = replace(train_config, steps=train_config.steps + index * dagger.steps_per_round)
        if step() >= config.steps:
            continue
        env = FlyToTargetEnv(env_config)
        try:
            episodes = round_episodes(dagger, index, env.world.name)
            missing = {seed: episode for seed, episode in episodes.items() if not store.has(episode)}
            if missing:
                pilot = StudentWithExpert(BackendPilot(make_backend_from_policy(load_checkpoint(last)[0])),
                                          PrivilegedExpert.from_env(env), dagger.beta)
                for seed, episode in missing.items():
                    record = run_episode(env, pilot, seed, labeler=CleanLabel(pilot), record_frames=True)
                    store.write(episode, record, episode_metadata(env, record, f"dagger-{index}", beta=dagger.beta))
        finally:
            env.close()
        flown = sum(store.metadata(episode).get("outcome") == "success" for episode in episodes.values())
        trainer = Trainer(config, data_dir, run_dir, resume=True)
        result = trainer.run(progress=progress)
        seeds = range(dagger.eval_first_seed, dagger.eval_first_seed + dagger.eval_episodes)
        heldout = success_rate(fly_policy(trainer.policy, env_config, seeds)) if dagger.eval_episodes else math.nan
        student = flown / len(episodes) if episodes else math.nan
        results.append(RoundResult(index, len(episodes), student, heldout, result.last_validation_loss))
        log(f"dagger round {index}: student flew {flown}/{len(episodes)} of its episodes; "
            + (f"held-out success {100 * heldout:.0f} % on {dagger.eval_episodes} seeds; " if dagger.eval_episodes
               else "") + f"validation loss {result.last_validation_loss:.4f}")
    return results


def heldout_check(env_config: EnvConfig, episodes: int, first_seed: int, log=print):
    """A closed-loop check for :class:`Trainer` (success on ``episodes`` held-out seeds)."""
    def check(policy, step: int) -> float:
        rate = success_rate(fly_policy(policy, env_config, range(first_seed, first_seed + episodes)))
        log(f"step {step}: closed-loop success {100 * rate:.0f} % on {episodes} held-out seeds")
        return rate
    return check


