"""Expert demonstrations with recovery data (DART-style), collected in parallel into an episode store.

The executed command is the expert's plus temporally correlated noise (an Ornstein-Uhlenbeck process per
channel, strength drawn per episode), so the drone visits states off the expert's own path; the label
is always the expert's clean command for the state actually visited. Every episode depends on its seed
alone (scene, noise, camera timing), so the same seeds give identical arrays whatever the number of
workers, and an interrupted collection continues where it stopped (finished episodes are kept).
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

from liquid_nav import __version__
from liquid_nav.executor import map_unordered
from liquid_nav.expert import PrivilegedExpert
from liquid_nav.sim.env import EnvConfig, FlyToTargetEnv
from liquid_nav.sim.rollout import EpisodeRecord, Info, run_episode
from liquid_nav.sim.worlds import WorldSpec


@dataclass(frozen=True)
class NoiseConfig:
    """Recovery noise on the executed command: per-episode strength in ``strength`` (0 = clean), times
    ``channel_scale`` (vx, vy, vz, yaw_rate), correlated over ``correlation_time`` seconds."""

    strength: Tuple[float, float] = (0.0, 0.6)
    channel_scale: Tuple[float, float, float, float] = (1.0, 0.6, 0.3, 0.6)
    correlation_time: float = 0.5

    def __post_init__(self) -> None:
        low, high = self.strength
        if not (0.0 <= low <= high) or len(self.channel_scale) != 4 or min(self.channel_scale) < 0:
            raise ValueError(f"NoiseConfig needs 0 <= strength[0] <= strength[1] and 4 channel scales >= 0, got {self}")
        if not self.correlation_time > 0:
            raise ValueError(f"NoiseConfig.correlation_time must be > 0, got {self.correlation_time}")


@dataclass(frozen=True)
class CollectConfig:
    """What to collect: ``episodes`` seeds from ``first_seed`` in ``env.world``."""

    env: EnvConfig = field(default_factory=EnvConfig)
    episodes: int = 200
    first_seed: int = 0
    workers: int = 1
    noise: NoiseConfig = field(default_factory=NoiseConfig)

    def seeds(self) -> range:
        return range(self.first_seed, self.first_seed + self.episodes)


class NoisyExpert:
    """A pilot that flies the expert's command plus recovery noise; ``clean`` is the label of the last act."""

    def __init__(self, expert: PrivilegedExpert, noise: NoiseConfig, dt: float) -> None:
        self.expert = expert
        self.noise = noise
        self.dt = dt
        self.clean = np.zeros(4, dtype=np.float32)
        self.strength = 0.0
        self._state = np.zeros(4)
        self._rng = np.random.default_rng()

    def reset(self, info: Info) -> None:
        self.expert.reset(info)
        self._rng = np.random.default_rng([int(info["scene_seed"]), 0xDA27])
        self.strength = float(self._rng.uniform(*self.noise.strength))
        self._state = np.zeros(4)

    def act(self, observation: np.ndarray, info: Info) -> np.ndarray:
        self.clean = self.expert.act(observation, info)
        decay = np.exp(-self.dt / self.noise.correlation_time)
        self._state = decay * self._state + np.sqrt(1 - decay**2) * self._rng.standard_normal(4)
        offset = self.strength * np.asarray(self.noise.channel_scale) * self._state
        return (self.clean + offset).astype(np.float32)

    @property
    def labeler(self) -> "CleanLabel":
        return CleanLabel(self)


class CleanLabel:
    """Labeler that answers with the noisy pilot's clean expert command for the same observation."""

    def __init__(self, pilot: NoisyExpert) -> None:
        self.pilot = pilot

    def reset(self, info: Info) -> None:
        pass

    def act(self, observation: np.ndarray, info: Info) -> np.ndarray:
        return self.pilot.clean


def episode_id(world: str, seed: int) -> str:
    """Store id of a collected episode: world name and seed."""
    return f"{world}-{seed:07d}"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def world_identity(world: Union[str, Path, WorldSpec]) -> Tuple[str, str]:
    """Where a world came from and its SHA-256: the file's bytes for a world file, the canonical JSON of the
    spec for a world built in code (a :class:`WorldSpec`)."""
    from liquid_nav.sim.worlds import world_path

    if isinstance(world, WorldSpec):
        canonical = json.dumps(asdict(world), sort_keys=True, default=str)
        return world.source, hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return str(world), file_sha256(world_path(world))


def episode_metadata(env: FlyToTargetEnv, record: EpisodeRecord, source: str, **extra: Any) -> Dict[str, Any]:
    """What every stored episode says about where it came from."""
    world_file, world_sha256 = world_identity(env.config.world)
    camera = env.camera.config
    fx, fy, cx, cy = env.camera.intrinsics()
    return {
        "source": source, "world": env.world.name, "world_file": world_file,
        "world_sha256": world_sha256, "seed": record.seed,
        "outcome": record.outcome, "success": record.success, "steps": record.steps,
        "camera": {"width": camera.width, "height": camera.height, "fov_deg": camera.fov_deg,
                   "pitch_deg": camera.pitch_deg},
        "camera_intrinsics": {"fx": fx, "fy": fy, "cx": cx, "cy": cy},
        "env": {"vehicle": env.config.vehicle, "control_hz": env.config.control_hz,
                "physics_hz": env.config.physics_hz, "max_episode_seconds": env.config.max_episode_seconds},
        "liquid_nav_version": __version__, **extra,
    }


# --------------------------------------------------------------------------------------------------------
# Workers: one env (one PyBullet client) per process, built once
_worker: Dict[str, Any] = {}


def _init_worker(config: CollectConfig) -> None:
    import torch

    torch.set_num_threads(1)
    env = FlyToTargetEnv(config.env)
    _worker.update(config=config, env=env,
                   pilot=NoisyExpert(PrivilegedExpert.from_env(env), config.noise, env.control_period))


def _collect_one(seed: int) -> Tuple[EpisodeRecord, Dict[str, Any]]:
    env, pilot, config = _worker["env"], _worker["pilot"], _worker["config"]
    record = run_episode(env, pilot, seed, labeler=pilot.labeler, record_frames=True)
    metadata = episode_metadata(env, record, "expert", noise=asdict(config.noise), noise_strength=pilot.strength)
    return record, metadata


def _close_worker() -> None:
    _worker["env"].close()
    _worker.clear()


def _records(config: CollectConfig, seeds: List[int], executor: str,
             ray_address: Optional[str]) -> Iterator[Tuple[EpisodeRecord, Dict[str, Any]]]:
    return map_unordered(_collect_one, seeds, config.workers, _init_worker, (config,), executor=executor,
                         ray_address=ray_address, finalizer=_close_worker)


@dataclass
class CollectSummary:
    written: int
    skipped: int
    successes: int
    frames: int
    wall_seconds: float


def collect(config: CollectConfig, out: Path, progress: bool = True, executor: str = "local",
            ray_address: Optional[str] = None) -> CollectSummary:
    """Collect ``config.seeds()`` into the store at ``out``, skipping episodes it already holds.

    Episodes are flown by ``config.workers`` workers of the package's executor (``local`` process pool or
    ``ray``, ``liquid_nav.executor``); this process is the only writer of the store.
    """
    from tqdm import tqdm

    from liquid_nav.data.store import EpisodeStore
    from liquid_nav.sim.worlds import load_world

    store = EpisodeStore(Path(out))
    world = config.env.world.name if isinstance(config.env.world, WorldSpec) else load_world(config.env.world).name
    todo = [seed for seed in config.seeds() if not store.has(episode_id(world, seed))]
    started = time.perf_counter()
    written = successes = frames = 0
    with tqdm(total=len(todo), desc=f"collect {world}", unit="episode", disable=not progress) as bar:
        for record, metadata in _records(config, todo, executor, ray_address):
            store.write(episode_id(world, record.seed), record, metadata)
            written += 1
            successes += record.success
            frames += record.steps + 1
            elapsed = time.perf_counter() - started
            bar.update(1)
            bar.set_postfix(frames_s=f"{frames / elapsed:.0f}", success=f"{successes}/{written}")
    return CollectSummary(written, len(config.seeds()) - len(todo), successes, frames, time.perf_counter() - started)


def collect_config(world: str, episodes: int, first_seed: int, workers: int, camera: str = "default",
                   noise: Optional[NoiseConfig] = None, **env_options: Any) -> CollectConfig:
    """A :class:`CollectConfig` from command-line style arguments."""
    env = replace(EnvConfig(), world=world, camera=camera, **env_options)
    return CollectConfig(env=env, episodes=episodes, first_seed=first_seed, workers=workers,
                         noise=noise or NoiseConfig())
