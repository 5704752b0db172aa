"""Imitation learning over an episode store: sequence BPTT on windows, exact resume, honest logs.

Run directory (LeRobot-like)::

    RUN/config.yaml                 the TrainConfig as run
    RUN/log.csv                     one row per logged step (and validation / closed-loop rows)
    RUN/tensorboard/                when tensorboard is installed
    RUN/checkpoints/last/state.pt   everything --resume needs (model, optimiser, scheduler, data cursor)
    RUN/checkpoints/last/policy.lnav, RUN/checkpoints/best/policy.lnav, RUN/checkpoints/<step>/policy.lnav

All randomness of a step (window order, frame drops, augmentation, dropout) derives from the config seed
and the step number, so N steps in one go equal N/2 steps, an interruption, and N/2 resumed.
"""
from __future__ import annotations

import csv
import io
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np
import torch
import yaml

from liquid_nav import __version__
from liquid_nav.data.windows import WindowDataset, load_episode_arrays, split_episodes
from liquid_nav.files import atomic_write_bytes, atomic_write_text
from liquid_nav.models.checkpoint import load_checkpoint, save_checkpoint
from liquid_nav.models.diagnostics import gate_saturation
from liquid_nav.models.policy import Policy
from liquid_nav.stamps import DtRule
from liquid_nav.train.augment import augment_windows
from liquid_nav.train.config import TrainConfig

LOG_FIELDS = ("step", "kind", "loss", "validation_loss", "lr", "grad_norm", "cnn_grad_norm", "feature_std",
              "feature_absmax", "state_saturation", "gate_saturation", "frames_per_s", "closed_loop_success", "elapsed_s")
STATE_FORMAT = 1


class TrainingError(RuntimeError):
    """Training cannot start or continue (no usable data, a mismatched resume state, ...)."""


@dataclass
class TrainResult:
    step: int
    best_validation_loss: float
    last_validation_loss: float
    run_dir: Path
    train_frames: int
    validation_frames: int


ClosedLoopCheck = Callable[[Policy, int], float]


class Trainer:
    """Trains ``config.policy`` (or continues ``init_checkpoint``) on the episodes in ``data_dir``."""

    def __init__(self, config: TrainConfig, data_dir: Path, run_dir: Path, resume: bool = False,
                 init_checkpoint: Optional[Path] = None, closed_loop: Optional[ClosedLoopCheck] = None) -> None:
        from liquid_nav.data.store import EpisodeStore

        self.config = config
        self.run_dir = Path(run_dir)
        self.closed_loop = closed_loop
        if config.threads > 0:
            torch.set_num_threads(config.threads)
        self.device = torch.device(config.device)
        self.rule = DtRule()
        if not Path(data_dir).is_dir():
            raise TrainingError(f"{data_dir}: no such episode store (collect one with liquid-nav collect --out)")
        store = EpisodeStore(Path(data_dir))
        usable = [episode_id for episode_id in store.episode_ids() if self._usable(store.metadata(episode_id))]
        if len(usable) < 1:
            raise TrainingError(f"{data_dir}: no usable episodes (of {len(store.episode_ids())}; failed expert "
                                f"episodes are skipped unless include_failed)")
        # The split is drawn over the collected episodes only; episodes a DAgger round aggregates always train.
        # Adding them therefore moves no episode between training and validation, and validation stays on the
        # expert's own flights.
        aggregated = {i for i in usable if self._aggregated(store.metadata(i))}
        train_ids, validation_ids = split_episodes([i for i in usable if i not in aggregated],
                                                   config.validation_fraction, config.seed)
        train_ids = sorted([*train_ids, *aggregated])
        preprocessing = config.policy.preprocessing
        load = lambda ids: [load_episode_arrays(store, i, preprocessing, self.rule) for i in ids]  # noqa: E731
        self.train_set = WindowDataset(load(train_ids), config.window, config.stride, self.rule, config.drop_probability)
        self.validation_set = WindowDataset(load(validation_ids), config.window, config.window, self.rule)
        if len(self.train_set) == 0:
            raise TrainingError(f"{data_dir}: no training window of {config.window} frames (episodes too short)")
        self.data_summary = {"store": str(Path(data_dir).resolve()), "episodes": len(usable),
                             "train_episodes": len(train_ids), "validation_episodes": len(validation_ids),
                             "train_frames": self.train_set.frames, "validation_frames": self.validation_set.frames,
                             "worlds": sorted({str(store.metadata(i).get("world")) for i in usable})}

        self.step = 0
        self.best_validation = math.inf
        self.last_validation = math.nan
        if init_checkpoint is not None and not resume:
            self.policy, _ = load_checkpoint(init_checkpoint)
            if self.policy.config != config.policy:
                raise TrainingError(f"{init_checkpoint}: its policy config {self.policy.config.to_dict()} is not the "
                                    f"training config's {config.policy.to_dict()}; use the same policy section")
        else:
            self.policy = Policy.from_config(config.policy)
        self.policy.to(self.device)
        if config.channels_last:
            self.policy.perception.to(memory_format=torch.channels_last)
        # The training step's perception: compiled for the one training batch shape; validation, checkpoints and
        # closed-loop checks use the module itself (same parameters, no recompilation for other shapes).
        self._train_perception = torch.compile(self.policy.perception, dynamic=False) if config.compile else None
        self.optimizer = torch.optim.AdamW(self.policy.parameters(), lr=config.optim.lr,
                                           weight_decay=config.optim.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, self._lr_factor)
        self.output_scale = torch.tensor(config.policy.output_scale, device=self.device)
        if resume:
            self._load_state()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
        self._writer = _tensorboard(self.run_dir / "tensorboard")

    # ------------------------------------------------------------------------------------------------
    def run(self, progress: bool = True, stop_after: Optional[int] = None) -> TrainResult:
        """Train until ``config.steps`` (or ``stop_after`` more steps); checkpoints and logs on the way."""
        from tqdm import tqdm

        config = self.config
        end = config.steps if stop_after is None else min(config.steps, self.step + stop_after)
        bar = tqdm(total=config.steps, initial=self.step, desc=f"train {config.policy.head}", unit="step",
                   disable=not progress, dynamic_ncols=True)
        started = time.perf_counter()
        window_started, window_frames = time.perf_counter(), 0
        while self.step < end:
            logged = (self.step + 1) % config.log_every == 0 or self.step + 1 == end
            figures = self._train_step(diagnose=logged)
            self.step += 1
            window_frames += config.batch_size * config.window
            bar.update(1)
            if logged:
                rate = window_frames / max(time.perf_counter() - window_started, 1e-9)
                window_started, window_frames = time.perf_counter(), 0
                self._log("train", figures, frames_per_s=rate, elapsed_s=time.perf_counter() - started)
                bar.set_postfix(loss=f"{figures['loss']:.4f}", frames_s=f"{rate:.0f}")
            if self.step % config.validate_every == 0 or self.step == config.steps:
                self._validate(elapsed=time.perf_counter() - started)
            if self.closed_loop is not None and config.closed_loop.every and self.step % config.closed_loop.every == 0:
                success = self.closed_loop(self.policy, self.step)
                self.policy.train()
                self._log("closed_loop", {}, closed_loop_success=success, elapsed_s=time.perf_counter() - started)
            if self.step % config.checkpoint_every == 0 or self.step == end:
                self._save(periodic=self.step % config.checkpoint_every == 0)
        bar.close()
        if self._writer is not None:
            self._writer.flush()
        return TrainResult(self.step, self.best_validation, self.last_validation, self.run_dir,
                           self.train_set.frames, self.validation_set.frames)

    # ------------------------------------------------------------------------------------------------
    def _usable(self, metadata: Dict[str, Any]) -> bool:
        failed_expert = metadata.get("source", "expert") == "expert" and metadata.get("outcome") != "success"
        return self.config.include_failed or not failed_expert

    @staticmethod
    def _aggregated(metadata: Dict[str, Any]) -> bool:
        """An episode a DAgger round added (source ``dagger-k``)."""
        return str(metadata.get("source", "expert")).startswith("dagger")

    def _lr_factor(self, step: int) -> float:
        optim = self.config.optim
        if step < optim.warmup_steps:
            return (step + 1) / optim.warmup_steps
        progress = min(1.0, (step - optim.warmup_steps) / max(1, self.config.steps - optim.warmup_steps))
        return optim.final_lr_fraction + (1 - optim.final_lr_fraction) * 0.5 * (1 + math.cos(math.pi * progress))

    def _batch_indices(self) -> np.ndarray:
        """The windows of this step: epochs are seeded permutations, so the order follows from the step alone."""
        count, size = len(self.train_set), self.config.batch_size
        orders: Dict[int, np.ndarray] = {}
        indices = []
        for position in range(self.step * size, (self.step + 1) * size):
            epoch, offset = divmod(position, count)
            if epoch not in orders:
                orders[epoch] = np.random.default_rng([self.config.seed, 0x0DE, epoch]).permutation(count)
            indices.append(orders[epoch][offset])
        return np.asarray(indices)

    def _tensors(self, batch: Dict[str, np.ndarray]):
        images = torch.from_numpy(batch["images"]).to(self.device)
        dts = torch.from_numpy(batch["dts"]).to(self.device)
        labels = torch.from_numpy(batch["labels"]).to(self.device)
        return images, dts, labels

    def _loss(self, images, dts, labels, perception=None):
        if perception is None:
            commands, final_state, features = self.policy.sequence_with_features(images, dts)
        else:  # the compiled perception of the training step, then the policy's own head
            features = perception(images.flatten(0, 1)).view(images.shape[0], images.shape[1], -1)
            commands, final_state = self.policy.sequence_from_features(features, dts)
        burn = self.config.burn_in
        error = (commands[:, burn:] - labels[:, burn:]) / self.output_scale
        return error.pow(2).mean(), final_state, features

    def _train_step(self, diagnose: bool = True) -> Dict[str, float]:
        """One optimisation step; its figures, with the gate saturation of the batch when ``diagnose``."""
        config = self.config
        seed = [config.seed, 0x57E9, self.step]
        batch = self.train_set.batch(self._batch_indices(), np.random.default_rng(seed))
        generator = torch.Generator().manual_seed(int(np.random.default_rng(seed).integers(2**62)))
        batch["images"] = augment_windows(torch.from_numpy(batch["images"]), config.augment, generator).numpy()
        images, dts, labels = self._tensors(batch)  # one copy to the device, after the CPU augmentation
        torch.manual_seed(int(np.random.default_rng(seed + [1]).integers(2**62)))  # dropout
        self.policy.train()
        loss, final_state, features = self._loss(images, dts, labels, self._train_perception)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        cnn_grad = _grad_norm(self.policy.perception.parameters())
        grad_norm = float(torch.nn.utils.clip_grad_norm_(self.policy.parameters(), config.optim.grad_clip))
        self.optimizer.step()
        self.scheduler.step()
        with torch.no_grad():
            figures = {"loss": float(loss), "lr": self.scheduler.get_last_lr()[0], "grad_norm": grad_norm,
                       "cnn_grad_norm": cnn_grad, "feature_std": float(features.std()),
                       "feature_absmax": float(features.abs().max()),
                       "state_saturation": float((final_state.abs() > 0.99).float().mean())}
        if diagnose:
            saturation = gate_saturation(self.policy, features.detach(), dts)
            if saturation is not None:
                figures["gate_saturation"] = saturation
        return figures

    @torch.no_grad()
    def _validate(self, elapsed: float) -> None:
        if len(self.validation_set) == 0:
            return
        self.policy.eval()
        count = min(len(self.validation_set), self.config.validation_windows)
        picks = np.linspace(0, len(self.validation_set) - 1, count).round().astype(int)
        losses, weights = [], []
        for start in range(0, count, self.config.batch_size):
            chunk = picks[start:start + self.config.batch_size]
            loss, _, _ = self._loss(*self._tensors(self.validation_set.batch(chunk)))
            losses.append(float(loss))
            weights.append(len(chunk))
        self.last_validation = float(np.average(losses, weights=weights))
        self._log("validation", {}, validation_loss=self.last_validation, elapsed_s=elapsed)
        if self.last_validation < self.best_validation:
            self.best_validation = self.last_validation
            self._save_policy(self.run_dir / "checkpoints" / "best" / "policy.lnav")

    # ------------------------------------------------------------------------------------------------
    def _metadata(self) -> Dict[str, Any]:
        return {"train_config": self.config.to_dict(), "step": self.step, "data": self.data_summary,
                "best_validation_loss": _finite_or_none(self.best_validation),
                "validation_loss": _finite_or_none(self.last_validation), "liquid_nav_version": __version__}

    def _save_policy(self, path: Path) -> None:
        save_checkpoint(path, self.policy, self._metadata())

    def _save(self, periodic: bool) -> None:
        checkpoints = self.run_dir / "checkpoints"
        state = {"format": STATE_FORMAT, "step": self.step, "best_validation": self.best_validation,
                 "last_validation": self.last_validation, "policy_config": self.config.policy.to_dict(),
                 "model": self.policy.state_dict(), "optimizer": self.optimizer.state_dict(),
                 "scheduler": self.scheduler.state_dict()}
        buffer = io.BytesIO()
        torch.save(state, buffer)
        self._save_policy(checkpoints / "last" / "policy.lnav")
        atomic_write_bytes(checkpoints / "last" / "state.pt", buffer.getvalue())
        if periodic:
            self._save_policy(checkpoints / f"{self.step:07d}" / "policy.lnav")

    def _load_state(self) -> None:
        path = self.run_dir / "checkpoints" / "last" / "state.pt"
        if not path.is_file():
            raise TrainingError(f"--resume: {path} does not exist (nothing to resume in {self.run_dir})")
        try:
            state = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as error:  # noqa: BLE001 - any unreadable file is the same error for the user
            raise TrainingError(f"--resume: {path} is not a readable training state: {error}") from error
        if state.get("format") != STATE_FORMAT or state.get("policy_config") != self.config.policy.to_dict():
            raise TrainingError(f"--resume: {path} was written for another policy config or format; "
                                "resume with the run's own config.yaml")
        self.policy.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.best_validation = float(state["best_validation"])
        self.last_validation = float(state["last_validation"])
        self._truncate_log()

    def _truncate_log(self) -> None:
        """Drop log rows written after the resumed step (they belong to the interrupted continuation)."""
        path = self.run_dir / "log.csv"
        if not path.is_file():
            return
        with path.open(newline="") as stream:
            rows = [row for row in csv.DictReader(stream) if int(row["step"]) <= self.step]
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, LOG_FIELDS)
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_text(path, buffer.getvalue())

    def _log(self, kind: str, figures: Dict[str, float], **extra: float) -> None:
        row: Dict[str, Any] = {"step": self.step, "kind": kind, **figures, **extra}
        path = self.run_dir / "log.csv"
        new = not path.is_file()
        # a run resumed from an older log keeps its columns (a figure it did not log stays out of log.csv)
        fields = LOG_FIELDS if new else _header(path)
        with path.open("a", newline="") as stream:
            writer = csv.DictWriter(stream, fields)
            if new:
                writer.writeheader()
            writer.writerow({key: row.get(key, "") for key in fields})
        if self._writer is not None:
            for key, value in row.items():
                if key not in ("step", "kind") and isinstance(value, (int, float)):
                    self._writer.add_scalar(f"{kind}/{key}", value, self.step)


def read_log(run_dir: Path) -> List[Dict[str, str]]:
    """The rows of a run's ``log.csv``."""
    with (Path(run_dir) / "log.csv").open(newline="") as stream:
        return list(csv.DictReader(stream))


def _header(path: Path) -> List[str]:
    with path.open(newline="") as stream:
        return next(csv.reader(stream), list(LOG_FIELDS))


def _grad_norm(parameters) -> float:
    norms = [p.grad.detach().norm() for p in parameters if p.grad is not None]
    return float(torch.linalg.vector_norm(torch.stack(norms))) if norms else 0.0


def _finite_or_none(value: float) -> Optional[float]:
    return value if math.isfinite(value) else None


def _tensorboard(directory: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(directory))
