"""Policy = perception CNN + recurrent head + output scaling; body-frame FLU commands in physical units.

Time: ``dt`` is the real elapsed time between frames in seconds, per sample (and per step for
sequences). The head integrates ``dt * config.time_scale`` model time units; the default time_scale of
30 makes one frame at the published 30 Hz one unit, the rate the published cells were tuned for.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any, Dict, Mapping, Optional, Tuple

import torch
from torch import Tensor, nn

from liquid_nav.models.heads import HEAD_NAMES, MOTOR_READOUTS, build_head
from liquid_nav.models.perception import FEATURE_NORMS, PerceptionCNN
from liquid_nav.models.preprocessing import PreprocessingConfig
from liquid_nav.models.wiring import NCPConfig, build_ncp
from liquid_nav.validation import check_field_types, is_number, is_number_list

COMMAND_NAMES = ("vx", "vy", "vz", "yaw_rate")


class ConfigError(ValueError):
    """A policy configuration dictionary that does not describe a valid policy."""


@dataclass(frozen=True)
class PolicyConfig:
    """Everything needed to rebuild a policy (weights aside); stored in every checkpoint.

    ``units`` sizes the dense heads (cfc, lstm, gru, ctrnn); the NCP heads are sized by ``ncp``.
    ``output_scale`` maps the head outputs to m/s, m/s, m/s, rad/s.
    """

    head: str = "cfc_ncp"
    preprocessing: PreprocessingConfig = field(default_factory=PreprocessingConfig)
    feature_dim: int = 128
    feature_norm: str = "none"  # "none" (published), "layernorm", "tanh": what bounds the head's input
    perception_dropout: float = 0.1
    ncp: NCPConfig = field(default_factory=NCPConfig)
    units: int = 64
    cfc_mode: str = "default"
    motor_readout: str = "identity"  # cfc_ncp: "identity" (published: motor states are the commands) or "affine"
    backbone_units: int = 128
    backbone_layers: int = 1
    head_dropout: float = 0.0
    ode_unfolds: int = 6
    time_scale: float = 30.0
    output_scale: Tuple[float, float, float, float] = (3.0, 1.0, 1.0, 1.0)
    seed: int = 0

    def __post_init__(self) -> None:
        check_field_types(self, ConfigError, "policy config")
        if self.feature_norm not in FEATURE_NORMS:
            raise ConfigError(f"policy config: feature_norm must be one of {list(FEATURE_NORMS)}, "
                              f"got {self.feature_norm!r}")
        if self.head not in HEAD_NAMES:
            raise ConfigError(f"policy config: head must be one of {list(HEAD_NAMES)}, got {self.head!r}")
        if self.motor_readout not in MOTOR_READOUTS:
            raise ConfigError(f"policy config: motor_readout must be one of {list(MOTOR_READOUTS)}, "
                              f"got {self.motor_readout!r}")
        if self.motor_readout != "identity" and self.head != "cfc_ncp":
            raise ConfigError(f"policy config: motor_readout {self.motor_readout!r} is for head cfc_ncp (the other "
                              f"heads have their own readout), got head {self.head!r}")
        if not is_number_list(self.output_scale, 4):
            raise ConfigError(f"policy config: output_scale needs 4 finite numbers (vx, vy, vz, yaw_rate), "
                              f"got {self.output_scale!r}")
        for name in ("preprocessing", "ncp"):
            expected = PreprocessingConfig if name == "preprocessing" else NCPConfig
            if not isinstance(getattr(self, name), expected):
                raise ConfigError(f"policy config: {name} must be a {expected.__name__}, got {getattr(self, name)!r}")
        if self.head in ("cfc_ncp", "ltc_ncp") and self.ncp.motor_neurons != 4:
            raise ConfigError(f"policy config: ncp.motor_neurons must be 4 (one per command), "
                              f"got {self.ncp.motor_neurons}")
        if not (is_number(self.time_scale) and self.time_scale > 0):
            raise ConfigError(f"policy config: time_scale must be a finite number > 0, got {self.time_scale}")
        object.__setattr__(self, "output_scale", tuple(float(v) for v in self.output_scale))

    @classmethod
    def small(cls, **overrides: Any) -> "PolicyConfig":
        """A config with the small (72 x 128) image preset."""
        return cls(preprocessing=PreprocessingConfig.preset("small"), **overrides)

    def to_dict(self) -> Dict[str, Any]:
        data = asdict(self)
        data["preprocessing"] = self.preprocessing.to_dict()
        data["output_scale"] = list(self.output_scale)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "PolicyConfig":
        """Inverse of :meth:`to_dict`; unknown or ill-typed keys raise :class:`ConfigError` naming the key."""
        if not isinstance(data, Mapping):
            raise ConfigError(f"policy config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"policy config: unknown keys {unknown}; expected a subset of {sorted(known)}")
        values = dict(data)
        for key, sub_cls in (("preprocessing", PreprocessingConfig), ("ncp", NCPConfig)):
            if key in values:
                sub = values[key]
                sub_known = {f.name for f in fields(sub_cls)}
                if not isinstance(sub, Mapping) or set(sub) - sub_known:
                    raise ConfigError(f"policy config: {key!r} must be a mapping with keys from "
                                      f"{sorted(sub_known)}, got {sub!r}")
                try:
                    values[key] = sub_cls(**sub)
                except (TypeError, ValueError) as error:
                    raise ConfigError(f"policy config: invalid {key!r}: {error}") from error
        try:
            return cls(**values)
        except TypeError as error:
            raise ConfigError(f"policy config: {error}") from error


class Policy(nn.Module):
    """Camera frames -> body FLU velocity commands (vx, vy, vz, yaw_rate) with a recurrent state."""

    def __init__(self, config: PolicyConfig):
        super().__init__()
        self.config = config
        self.perception = PerceptionCNN(config.preprocessing, config.feature_dim, config.perception_dropout,
                                        config.feature_norm)
        wiring = build_ncp(config.ncp, config.feature_dim) if config.head in ("cfc_ncp", "ltc_ncp") else None
        self.head = build_head(config.head, config.feature_dim, 4, units=config.units, wiring=wiring,
                               cfc_mode=config.cfc_mode, backbone_units=config.backbone_units,
                               backbone_layers=config.backbone_layers, dropout=config.head_dropout,
                               ode_unfolds=config.ode_unfolds, motor_readout=config.motor_readout)
        self.state_size: int = self.head.state_size
        self.time_scale: float = config.time_scale
        self.register_buffer("output_scale", torch.tensor(config.output_scale, dtype=torch.float32))

    @classmethod
    def from_config(cls, config: PolicyConfig) -> "Policy":
        """Build a freshly initialised policy; ``config.seed`` makes the initial weights reproducible."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(config.seed)
            return cls(config)

    @torch.jit.export
    def initial_state(self, batch: int) -> Tensor:
        """Zero recurrent state (batch, state_size) on the policy's device."""
        return torch.zeros(batch, self.state_size, device=self.output_scale.device)

    @torch.jit.export
    def step(self, image_u8: Tensor, state: Tensor, dt: Tensor) -> Tuple[Tensor, Tensor]:
        """One control step: image (B, H, W, 3) uint8 RGB, state (B, S), dt (B,) s -> (command (B, 4), state)."""
        features = self.perception(image_u8)
        out, new_state = self.head.step(features, state, dt.to(features.dtype) * self.time_scale)
        return out * self.output_scale, new_state

    @torch.jit.export
    def sequence(self, images: Tensor, dts: Tensor, state: Optional[Tensor] = None) -> Tuple[Tensor, Tensor]:
        """Like :meth:`forward`, also returning the final state."""
        commands, final_state, _ = self.sequence_with_features(images, dts, state)
        return commands, final_state

    @torch.jit.export
    def sequence_with_features(self, images: Tensor, dts: Tensor, state: Optional[Tensor] = None
                               ) -> Tuple[Tensor, Tensor, Tensor]:
        """:meth:`sequence` plus the perception features (B, L, feature_dim) the head saw (training diagnostics)."""
        batch, length = images.shape[0], images.shape[1]
        features = self.perception(images.flatten(0, 1)).view(batch, length, -1)
        commands, final_state = self.sequence_from_features(features, dts, state)
        return commands, final_state, features

    @torch.jit.export
    def sequence_from_features(self, features: Tensor, dts: Tensor, state: Optional[Tensor] = None
                               ) -> Tuple[Tensor, Tensor]:
        """The head and the output scaling over perception features (B, L, feature_dim): commands, final state."""
        if state is None:
            state = self.initial_state(features.shape[0])
        out, final_state = self.head.sequence(features, dts.to(features.dtype) * self.time_scale, state)
        return out * self.output_scale, final_state

    def forward(self, images: Tensor, dts: Tensor, state: Optional[Tensor] = None) -> Tensor:
        """Training-time rollout: images (B, L, H, W, 3) uint8, dts (B, L) s -> commands (B, L, 4)."""
        return self.sequence(images, dts, state)[0]


class PolicyStep(nn.Module):
    """``Policy.step`` as a module's forward, for TorchScript and ONNX export of one control step."""

    def __init__(self, policy: Policy):
        super().__init__()
        self.policy = policy

    def forward(self, image_u8: Tensor, state: Tensor, dt: Tensor) -> Tuple[Tensor, Tensor]:
        return self.policy.step(image_u8, state, dt)
