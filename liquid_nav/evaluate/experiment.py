"""An evaluation experiment: models x worlds x conditions x seeds, from one YAML file or the command line.

Every model flies the same seeds in every (world, condition) cell, so comparisons are paired. The expert is
flown on every cell as well (privileged, no rendering): it is the upper bound and the reference for path
lengths. Experiment file (``config/eval/ood.yaml`` is the standard suite)::

    name: ood
    models: [expert, hover, {label: cfc, path: runs/cfc/policy.lnav}]   # or plain paths
    worlds: [forest, forest_winter, urban]                              # names or YAML paths
    conditions: {noise: [5, 10], rate: null, winter_fog: {contrast: 0.5, noise: 10}}
    episodes: 20
    first_seed: 500000
    backend: onnxruntime
    camera: default
    max_episode_seconds: 40
    samples: {seeds: 1, conditions: [nominal]}                          # videos, saliency, MCAP
"""
from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import yaml

from liquid_nav.evaluate.conditions import NOMINAL, Condition, ConditionError, conditions_from_yaml
from liquid_nav.paths import config_dir, named_yaml_file
from liquid_nav.runtime.backends import BACKEND_NAMES
from liquid_nav.runtime.safety import SafetyConfig, load_safety_config
from liquid_nav.sim.env import EnvConfig
from liquid_nav.sim.worlds import WorldFileError, load_world, world_path
from liquid_nav.validation import MappingReader

BASELINES = ("expert", "hover")
REFERENCE = "expert"  # flown on every cell: upper bound and path-length reference
CAMERAS = ("default", "small")


class ExperimentError(ValueError):
    """An experiment that cannot run as given; the message names the file, key or argument and the fix."""


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ModelSpec:
    """A model to evaluate: a baseline (``expert``, ``hover``) or a checkpoint / exported ONNX file."""

    label: str
    source: str  # "expert", "hover" or a file path

    @property
    def kind(self) -> str:
        if self.source in BASELINES:
            return self.source
        return "onnx" if Path(self.source).suffix == ".onnx" else "checkpoint"

    @property
    def looks(self) -> bool:
        """Whether the pilot uses the camera (baselines fly from the privileged state, without rendering)."""
        return self.kind not in BASELINES

    def fingerprint(self) -> str:
        """What identifies the model's behaviour: the file's SHA-256, or the baseline's name."""
        return self.source if not self.looks else _file_sha256(Path(self.source))

    @classmethod
    def parse(cls, value: Union[str, Dict[str, Any]], where: str) -> "ModelSpec":
        """``expert`` / ``hover`` / ``PATH`` / ``LABEL=PATH`` or ``{label, path}``; the default label of a
        file is its policy head (``cfc_ncp``)."""
        if isinstance(value, dict):
            node = MappingReader(where, "", value, ExperimentError)
            source, label = node.text("path"), node.raw("label", "")
            node.finish()
        elif isinstance(value, str):
            label, _, source = value.rpartition("=") if "=" in value else ("", "", value)
        else:
            raise ExperimentError(f"{where}: a model is 'expert', 'hover', a checkpoint / ONNX path, LABEL=PATH "
                                  f"or {{label, path}}; got {value!r}")
        if source not in BASELINES and not Path(source).is_file():
            raise ExperimentError(f"{where}: model file {source!r} not found (or use 'expert' / 'hover')")
        return cls(str(label) or (source if source in BASELINES else policy_head(source)), source)


def policy_head(path: str) -> str:
    """The head name of a checkpoint's or exported ONNX file's policy (``cfc_ncp``, ``lstm``, ...)."""
    if Path(path).suffix == ".onnx":
        import onnx

        from liquid_nav.models.export import config_from_onnx_metadata

        model = onnx.load(path, load_external_data=False)
        return config_from_onnx_metadata({item.key: item.value for item in model.metadata_props}, path).head
    from liquid_nav.models.checkpoint import load_checkpoint

    return load_checkpoint(path).policy.config.head


@dataclass(frozen=True)
class SampleConfig:
    """Which episodes get a video, saliency maps and an MCAP bag: the first ``seeds`` seeds of these conditions
    (by label, e.g. ``nominal``, ``noise=20``), for every model and world."""

    seeds: int = 1
    conditions: Tuple[str, ...] = ("nominal",)


@dataclass(frozen=True)
class EpisodeTask:
    """One episode of the experiment: ``model`` (label) flies ``seed`` in ``world`` (label) under ``condition``."""

    model: str
    world: str
    condition: Condition
    seed: int

    @property
    def key(self) -> Tuple[str, str, str, int]:
        return self.model, self.world, self.condition.label, self.seed


@dataclass(frozen=True)
class ExperimentConfig:
    """What to evaluate. ``worlds`` are names or YAML paths; ``conditions`` exclude ``nominal``, which every
    world always gets."""

    models: Tuple[ModelSpec, ...]
    worlds: Tuple[str, ...]
    conditions: Tuple[Condition, ...] = ()
    episodes: int = 10
    first_seed: int = 500_000
    backend: str = "onnxruntime"
    camera: str = "default"
    max_episode_seconds: float = 40.0
    samples: SampleConfig = field(default_factory=SampleConfig)
    name: str = "evaluation"
    safety: str = "sim"  # the safety gate policies fly behind: sim (config/sim.yaml), none, or a params file

    def __post_init__(self) -> None:
        if not self.models:
            raise ExperimentError("an experiment needs at least one model (--model CKPT|ONNX|expert|hover)")
        if not self.worlds:
            raise ExperimentError("an experiment needs at least one world (--world NAME|PATH)")
        labels = [model.label for model in self.models]
        twice = sorted({label for label in labels if labels.count(label) > 1})
        if twice:
            raise ExperimentError(f"model label(s) {twice} given twice: label them LABEL=PATH (e.g. cfc_a=run_a.lnav)")
        if self.episodes < 1 or self.first_seed < 0:
            raise ExperimentError(f"episodes must be >= 1 and first_seed >= 0, got {self.episodes}, {self.first_seed}")
        if self.backend not in BACKEND_NAMES:
            raise ExperimentError(f"backend {self.backend!r}: expected one of {list(BACKEND_NAMES)}")
        if self.camera not in CAMERAS:
            raise ExperimentError(f"camera {self.camera!r}: expected one of {list(CAMERAS)}")
        if not self.max_episode_seconds > 0:
            raise ExperimentError(f"max_episode_seconds must be > 0, got {self.max_episode_seconds}")
        self.safety_config()  # a bad safety params file fails now
        object.__setattr__(self, "conditions", tuple(dict.fromkeys(c for c in self.conditions if c != NOMINAL)))
        names = [world_label(world) for world in self.worlds]
        if len(set(names)) != len(names):
            raise ExperimentError(f"worlds {list(self.worlds)} have repeated names {names}")
        for condition in self.conditions:  # refuse impossible combinations (e.g. jitter > half a period) now
            for world in self.worlds:
                self.env_config(world, condition, render=True)

    # --- cells and tasks --------------------------------------------------------------------------
    def seeds(self) -> range:
        return range(self.first_seed, self.first_seed + self.episodes)

    def all_conditions(self) -> Tuple[Condition, ...]:
        return (NOMINAL,) + self.conditions

    def model(self, label: str) -> ModelSpec:
        """A flown model (the expert reference included) by label."""
        return next(model for model in self.flown_models() if model.label == label)

    def flown_models(self) -> Tuple[ModelSpec, ...]:
        """The models plus the expert reference when it is not among them."""
        labels = {model.label for model in self.models}
        return self.models + (() if REFERENCE in labels else (ModelSpec(REFERENCE, REFERENCE),))

    def world_source(self, label: str) -> str:
        return next(world for world in self.worlds if world_label(world) == label)

    def tasks(self) -> List[EpisodeTask]:
        """Every episode, ordered so that consecutive tasks share a world, a condition and a scene."""
        return [EpisodeTask(model.label, world_label(world), condition, seed)
                for world in self.worlds for condition in self.all_conditions() for seed in self.seeds()
                for model in self.flown_models()]

    def env_config(self, world: str, condition: Condition, render: bool) -> EnvConfig:
        """The env of one cell; ``world`` is a label or a source. Raises ExperimentError for an impossible one."""
        source = world if world in self.worlds else self.world_source(world)
        base = EnvConfig(world=source, camera=self.camera, max_episode_seconds=self.max_episode_seconds,
                         render_observations=render)
        try:
            return condition.env_config(base)
        except (ConditionError, ValueError) as problem:
            raise ExperimentError(f"condition {condition.label} in world {world}: {problem}") from None

    def safety_config(self) -> Optional[SafetyConfig]:
        """The gate between a policy and the vehicle, as ``safety_node`` runs it (None: ``safety: none``)."""
        if self.safety == "none":
            return None
        path = config_dir() / "sim.yaml" if self.safety == "sim" else Path(self.safety)
        try:
            return load_safety_config(path)
        except ValueError as problem:
            raise ExperimentError(f"safety {self.safety!r}: {problem}") from None

    def is_sample(self, task: EpisodeTask) -> bool:
        return task.condition.label in self.samples.conditions and task.seed < self.first_seed + self.samples.seeds

    # --- identity -----------------------------------------------------------------------------------
    def settings(self) -> Dict[str, Any]:
        """What every episode's outcome depends on besides its cell and seed: a run directory holds one setting."""
        safety = self.safety_config()
        return {"backend": self.backend, "camera": self.camera, "max_episode_seconds": self.max_episode_seconds,
                "safety": asdict(safety) if safety is not None else None,
                "models": {model.label: model.fingerprint() for model in self.flown_models()},
                "worlds": {world_label(world): _world_fingerprint(world) for world in self.worlds}}

    def to_dict(self) -> Dict[str, Any]:
        """JSON form (``run.json``), read back by :func:`experiment_from_dict`."""
        return {"name": self.name, "models": [asdict(model) for model in self.models], "worlds": list(self.worlds),
                "conditions": [condition_to_dict(condition) for condition in self.conditions],
                "episodes": self.episodes, "first_seed": self.first_seed, "backend": self.backend,
                "camera": self.camera, "max_episode_seconds": self.max_episode_seconds, "safety": self.safety,
                "samples": {"seeds": self.samples.seeds, "conditions": list(self.samples.conditions)}}


@lru_cache(maxsize=64)
def world_label(world: str) -> str:
    """The name a world goes by in results (its file's ``name``)."""
    try:
        return load_world(world).name
    except WorldFileError as problem:
        raise ExperimentError(str(problem)) from None


def _world_fingerprint(world: str) -> str:
    return _file_sha256(world_path(world))


def condition_to_dict(condition: Condition) -> Dict[str, Any]:
    return {"name": condition.name, "strength": condition.strength,
            "perturbations": {item.family: item.level for item in condition.perturbations}}


def condition_from_dict(data: Dict[str, Any]) -> Condition:
    if data["strength"] is None:
        return Condition.composite(data["name"], data["perturbations"])
    return Condition.single(data["name"], data["strength"])


def experiment_from_dict(data: Dict[str, Any]) -> ExperimentConfig:
    return ExperimentConfig(
        models=tuple(ModelSpec(**model) for model in data["models"]), worlds=tuple(data["worlds"]),
        conditions=tuple(condition_from_dict(item) for item in data["conditions"]), episodes=data["episodes"],
        first_seed=data["first_seed"], backend=data["backend"], camera=data["camera"],
        max_episode_seconds=data["max_episode_seconds"], safety=data.get("safety", "none"),  # older runs: no gate
        samples=SampleConfig(data["samples"]["seeds"], tuple(data["samples"]["conditions"])), name=data["name"])


def experiment_path(name_or_path: Union[str, Path]) -> Path:
    """An experiment file by path, or by name in ``config/eval`` (``ood``)."""
    try:
        return named_yaml_file(name_or_path, config_dir() / "eval", "experiment")
    except FileNotFoundError as error:
        raise ExperimentError(str(error)) from None


def load_experiment(name_or_path: Union[str, Path, None] = None, models: Sequence[str] = (),
                    **overrides: Any) -> ExperimentConfig:
    """An experiment from a file (optional) and command-line values: ``models`` are added to the file's,
    every other override that is not None replaces the file's value (``worlds``, ``conditions`` as parsed
    :class:`Condition` lists, ``episodes``, ...)."""
    data: Dict[str, Any] = {}
    source = "<command line>"
    if name_or_path is not None:
        path = experiment_path(name_or_path)
        source = str(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise ExperimentError(f"{path}: not valid YAML: {error}") from None
    root = MappingReader(source, "", data, ExperimentError)
    default = ExperimentConfig.__dataclass_fields__
    file_models = root.raw("models", [])
    if not isinstance(file_models, list):
        root.fail("models", f"a list of models, got {file_models!r}")
    specs = [ModelSpec.parse(item, f"{source}: models[{index}]") for index, item in enumerate(file_models)]
    specs += [ModelSpec.parse(item, f"--model {item}") for item in models]
    worlds = root.raw("worlds", [])
    if not isinstance(worlds, list) or not all(isinstance(world, str) for world in worlds):
        root.fail("worlds", f"a list of world names or paths, got {worlds!r}")
    try:
        conditions = conditions_from_yaml(root.raw("conditions", {}), source)
    except ConditionError as problem:
        raise ExperimentError(str(problem)) from None
    samples = root.child("samples", required=False)
    values = dict(
        name=root.text("name", default=Path(source).stem if name_or_path else "evaluation"),
        worlds=tuple(worlds), conditions=tuple(conditions),
        episodes=root.number("episodes", default=default["episodes"].default, low=1, integer=True),
        first_seed=root.number("first_seed", default=default["first_seed"].default, low=0, integer=True),
        backend=root.choice("backend", BACKEND_NAMES, default=default["backend"].default),
        camera=root.choice("camera", CAMERAS, default=default["camera"].default),
        max_episode_seconds=root.number("max_episode_seconds", default=default["max_episode_seconds"].default,
                                        low=0.1),
        samples=_samples(samples) if samples else SampleConfig(),
        safety=root.text("safety", default=default["safety"].default),
    )
    root.finish()
    values.update({key: tuple(value) if isinstance(value, list) else value
                   for key, value in overrides.items() if value is not None})
    return ExperimentConfig(models=tuple(specs), **values)


def _samples(node: MappingReader) -> SampleConfig:
    conditions = node.raw("conditions", ["nominal"])
    if not isinstance(conditions, list) or not all(isinstance(item, str) for item in conditions):
        node.fail("conditions", f"a list of condition labels (nominal, noise=20, ...), got {conditions!r}")
    config = SampleConfig(node.number("seeds", default=1, low=0, integer=True), tuple(conditions))
    node.finish()
    return config


def settings_difference(stored: Dict[str, Any], current: Dict[str, Any]) -> Optional[str]:
    """Why a run directory's stored settings cannot take episodes of ``current`` (None: they can)."""
    for key in ("backend", "camera", "max_episode_seconds", "safety"):
        if stored.get(key) != current[key]:
            return f"{key} was {stored.get(key)!r}, now {current[key]!r}"
    for group in ("models", "worlds"):
        for label, fingerprint in current[group].items():
            if label in stored[group] and stored[group][label] != fingerprint:
                return f"{group[:-1]} {label!r} changed (SHA-256 {stored[group][label][:12]} -> {fingerprint[:12]})"
    return None


def merged_settings(stored: Dict[str, Any], current: Dict[str, Any]) -> Dict[str, Any]:
    return {**current, **{group: {**stored[group], **current[group]} for group in ("models", "worlds")}}

