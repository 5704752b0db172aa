"""Training configs: validated frozen dataclasses, read from YAML presets (``config/train/<name>.yaml``) or files.

Every error names the file and the key (``quick.yaml: key 'optim.lr': expected a number in (0, 1]``).
The whole config is saved into the run directory and into every checkpoint's metadata.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Dict, Union

import yaml

from liquid_nav.models.policy import ConfigError, PolicyConfig
from liquid_nav.paths import config_dir, named_yaml_file
from liquid_nav.validation import MappingReader


class TrainConfigError(ValueError):
    """A training config is missing, malformed or inconsistent; the message names file and key."""


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to ``final_lr_fraction`` of ``lr``; global-norm clipping."""

    lr: float = 3e-4
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    final_lr_fraction: float = 0.05
    grad_clip: float = 1.0


@dataclass(frozen=True)
class AugmentConfig:
    """Photometric augmentation, one draw per sequence (the same for all frames of a window)."""

    brightness: float = 0.3  # additive, fraction of the full range: U(-b, b)
    contrast: float = 0.3  # multiplicative around the mean: U(1 - c, 1 + c)
    saturation: float = 0.3  # blend with grey: U(1 - s, 1 + s)
    hue: float = 0.03  # channel rotation angle, fraction of a turn
    noise: float = 0.02  # Gaussian pixel noise std (image in [0, 1]), per frame
    blur_probability: float = 0.2  # 3x3 box blur of the whole window


@dataclass(frozen=True)
class ClosedLoopConfig:
    """Periodic closed-loop check during training (0 = off): success on held-out seeds."""

    every: int = 0
    episodes: int = 10
    world: str = "forest"
    first_seed: int = 100_000


@dataclass(frozen=True)
class TrainConfig:
    """One training run: the policy, the windows, the optimiser, the budget, the logging."""

    name: str = "quick"
    policy: PolicyConfig = field(default_factory=PolicyConfig.small)
    window: int = 32
    stride: int = 8
    burn_in: int = 0  # first frames of a window only warm the state (no loss)
    drop_probability: float = 0.1  # random frame drops inside windows (dts change accordingly)
    batch_size: int = 16
    steps: int = 1500
    validation_fraction: float = 0.1
    validate_every: int = 100
    validation_windows: int = 256
    checkpoint_every: int = 500
    log_every: int = 10
    include_failed: bool = False  # train on episodes whose expert failed
    optim: OptimConfig = field(default_factory=OptimConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    closed_loop: ClosedLoopConfig = field(default_factory=ClosedLoopConfig)
    seed: int = 0
    threads: int = 2
    device: str = "cpu"
    channels_last: bool = True  # perception convolutions in NHWC memory (measured faster on CPU, bench/train.py)
    compile: bool = False  # torch.compile the perception for the training step (needs a C++ compiler; ~40 s once)

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["policy"] = self.policy.to_dict()
        return data


def train_config_path(name_or_path: Union[str, Path]) -> Path:
    """A preset name (``quick``, ``paper``) in ``config/train/`` or a YAML file path."""
    try:
        return named_yaml_file(name_or_path, config_dir() / "train", "training config")
    except FileNotFoundError as error:
        raise TrainConfigError(str(error)) from None


def load_train_config(name_or_path: Union[str, Path], **overrides: Any) -> TrainConfig:
    """Load and validate a training config; ``overrides`` replace top-level keys (e.g. ``steps=200``)."""
    path = train_config_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise TrainConfigError(f"{path}: not valid YAML: {error}") from error
    if isinstance(data, dict):
        data = {**data, **{key: value for key, value in overrides.items() if value is not None}}
    return parse_train_config(data, str(path))


def parse_train_config(data: Any, source: str) -> TrainConfig:
    """Validate parsed YAML ``data`` (``source`` names it in errors)."""
    root = MappingReader(source, "", data, TrainConfigError)
    default = TrainConfig()
    config = TrainConfig(
        name=root.text("name", default=Path(source).stem),
        policy=_policy(root, source),
        window=root.number("window", default=default.window, low=1, high=4096, integer=True),
        stride=root.number("stride", default=default.stride, low=1, high=4096, integer=True),
        burn_in=root.number("burn_in", default=default.burn_in, low=0, high=4095, integer=True),
        drop_probability=root.number("drop_probability", default=default.drop_probability, low=0.0, high=0.9),
        batch_size=root.number("batch_size", default=default.batch_size, low=1, high=65536, integer=True),
        steps=root.number("steps", default=default.steps, low=1, high=10**8, integer=True),
        validation_fraction=root.number("validation_fraction", default=default.validation_fraction, low=0.0, high=0.9),
        validate_every=root.number("validate_every", default=default.validate_every, low=1, integer=True),
        validation_windows=root.number("validation_windows", default=default.validation_windows, low=1, integer=True),
        checkpoint_every=root.number("checkpoint_every", default=default.checkpoint_every, low=1, integer=True),
        log_every=root.number("log_every", default=default.log_every, low=1, integer=True),
        include_failed=root.flag("include_failed", default.include_failed),
        optim=_section(root, "optim", OptimConfig, {
            "lr": dict(low=1e-7, high=1.0), "weight_decay": dict(low=0.0, high=10.0),
            "warmup_steps": dict(low=0, integer=True), "final_lr_fraction": dict(low=0.0, high=1.0),
            "grad_clip": dict(low=1e-6)}),
        augment=_section(root, "augment", AugmentConfig, {
            "brightness": dict(low=0.0, high=1.0), "contrast": dict(low=0.0, high=0.95),
            "saturation": dict(low=0.0, high=1.0), "hue": dict(low=0.0, high=0.5), "noise": dict(low=0.0, high=1.0),
            "blur_probability": dict(low=0.0, high=1.0)}),
        closed_loop=_closed_loop(root),
        seed=root.number("seed", default=default.seed, low=0, integer=True),
        threads=root.number("threads", default=default.threads, low=0, high=1024, integer=True),
        device=root.text("device", default=default.device),
        channels_last=root.flag("channels_last", default.channels_last),
        compile=root.flag("compile", default.compile),
    )
    root.finish()
    if config.burn_in >= config.window:
        root.fail("burn_in", f"fewer frames than window ({config.window}), got {config.burn_in}")
    return config


def _policy(root: MappingReader, source: str) -> PolicyConfig:
    data = root.raw("policy", default={"preprocessing": {"height": 72, "width": 128}})
    if not isinstance(data, dict):
        root.fail("policy", f"a mapping of policy config keys, got {data!r}")
    try:
        return PolicyConfig.from_dict(data)
    except ConfigError as error:
        raise TrainConfigError(f"{source}: key 'policy': {error}") from error


def _section(root: MappingReader, key: str, cls, bounds: Dict[str, Dict[str, Any]]):
    node = root.child(key, required=False) or MappingReader(root.source, key, {}, TrainConfigError)
    default = cls()
    values = {name: node.number(name, default=getattr(default, name), **limits) for name, limits in bounds.items()}
    node.finish()
    return cls(**values)


def _closed_loop(root: MappingReader) -> ClosedLoopConfig:
    node = root.child("closed_loop", required=False) or MappingReader(root.source, "closed_loop", {}, TrainConfigError)
    default = ClosedLoopConfig()
    config = ClosedLoopConfig(
        every=node.number("every", default=default.every, low=0, integer=True),
        episodes=node.number("episodes", default=default.episodes, low=1, high=100000, integer=True),
        world=node.text("world", default=default.world),
        first_seed=node.number("first_seed", default=default.first_seed, low=0, integer=True),
    )
    node.finish()
    return config

