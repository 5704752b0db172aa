"""Evaluation conditions: named, parameterised perturbations of an episode, combinable with any world.

A :class:`Family` is one kind of perturbation with a strength scale (its ``unit``), a ``neutral`` level (the
unperturbed world) and the ``levels`` of the standard suite. It acts at one stage of an episode:

* ``image``: the frame the pilot sees (never the recorded view): :meth:`Condition.frame_filter`;
* ``world``: the world spec, derived with ``dataclasses.replace`` (target size / shape, distractors, range);
* ``scene``: every sampled scene (target rotation, an occluding wall), through ``EnvConfig.scene_edit``;
* ``env``: camera timing (``EnvConfig.timing``) and wind (``EnvConfig.disturbance``).

A :class:`Condition` is what one evaluation cell applies: ``nominal`` (nothing), one family at one level, or a
named composite of several families (applied in :data:`FAMILIES` order). Image perturbations draw their
randomness from the episode seed alone, so every model sees the same noise on the same seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from liquid_nav.evaluate.pilots import FrameFilter
from liquid_nav.sim.env import EnvConfig
from liquid_nav.sim.frame_timing import PRESETS, FrameTiming
from liquid_nav.sim.vehicle import VehicleParams
from liquid_nav.sim.worlds import SHAPES, PartSpec, Primitive, PropFamily, Scene, WorldSpec, load_world
from liquid_nav.validation import Range, is_number

Level = Union[float, str]
STAGES = ("image", "world", "scene", "env")
_IMAGE_SALT = 0x1E7A
_WIND_SALT = 0x3A1D


class ConditionError(ValueError):
    """A condition that does not exist or a level outside its family's scale; the message says which."""


@dataclass(frozen=True)
class Family:
    """One kind of perturbation. ``apply`` depends on the stage: image ``(level, rng) -> FrameFilter``,
    world ``(WorldSpec, level) -> WorldSpec``, scene ``(Scene, level) -> Scene``, env ``(EnvConfig, level)
    -> EnvConfig``. Numeric levels lie in ``bounds``; categorical families list their ``choices``."""

    name: str
    stage: str
    unit: str
    neutral: Optional[Level]  # None: the world's own value
    levels: Tuple[Level, ...]
    description: str
    apply: Callable[..., Any]
    bounds: Range = (-math.inf, math.inf)
    choices: Tuple[str, ...] = ()

    def parse(self, value: Any) -> Level:
        """A level of this family from YAML or the command line (numbers as text are read as numbers)."""
        if self.name == "range":
            return _parse_band(value)
        if self.choices:
            if value not in self.choices:
                raise ConditionError(f"condition {self.name!r}: level {value!r} is not one of {list(self.choices)}")
            return str(value)
        number = _number(value)
        low, high = self.bounds
        if number is None or not low <= number <= high:
            raise ConditionError(f"condition {self.name!r}: level {value!r} is not a number in [{low}, {high}] "
                                 f"({self.unit})")
        return number

    def numeric(self, level: Level) -> Optional[float]:
        """Where ``level`` sits on a plot's strength axis (None for categorical levels)."""
        if self.name == "range":
            low, high = _band(level)
            return (low + high) / 2
        return None if self.choices else float(level)


def _number(value: Any) -> Optional[float]:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            return None
    return float(value) if is_number(value) else None


def _parse_band(value: Any) -> str:
    """A start-distance band ``"lo-hi"`` (metres) from ``"15-25"`` or ``[15, 25]``."""
    parts = value.split("-") if isinstance(value, str) else value
    numbers = [_number(v) for v in parts] if isinstance(parts, (list, tuple)) and len(parts) == 2 else [None]
    if None in numbers or not 0 < numbers[0] <= numbers[1]:
        raise ConditionError(f"condition 'range': level {value!r} is not a band of start distances "
                             f"'min-max' (m) with 0 < min <= max")
    return f"{numbers[0]:g}-{numbers[1]:g}"


def _band(level: Level) -> Range:
    low, high = str(level).split("-")
    return float(low), float(high)


# ---------------------------------------------------------------------------------------------------------
# image: what the pilot sees
def _u8(image: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _noise(sigma: float, rng: np.random.Generator) -> FrameFilter:
    return lambda frame: _u8(frame + sigma * rng.standard_normal(frame.shape, dtype=np.float32))


def _brightness(shift: float, rng: np.random.Generator) -> FrameFilter:
    return lambda frame: _u8(frame.astype(np.float32) + 255.0 * shift)


def _exposure(gain: float, rng: np.random.Generator) -> FrameFilter:
    return lambda frame: _u8(frame.astype(np.float32) * gain)


def _contrast(reduction: float, rng: np.random.Generator) -> FrameFilter:
    def apply(frame: np.ndarray) -> np.ndarray:
        mean = float(frame.mean())
        return _u8(mean + (1.0 - reduction) * (frame.astype(np.float32) - mean))
    return apply


_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _saturation(reduction: float, rng: np.random.Generator) -> FrameFilter:
    def apply(frame: np.ndarray) -> np.ndarray:
        image = frame.astype(np.float32)
        gray = (image @ _LUMA)[..., None]
        return _u8(gray + (1.0 - reduction) * (image - gray))
    return apply


def _blur(sigma: float, rng: np.random.Generator) -> FrameFilter:
    import cv2

    return lambda frame: cv2.GaussianBlur(frame, (0, 0), sigmaX=sigma, sigmaY=sigma)


_PATCHES = 3
_PATCH_RGB = (45, 42, 40)


def _occlusion(fraction: float, rng: np.random.Generator) -> FrameFilter:
    """Three non-overlapping dark patches (dirt on the lens) covering ``fraction`` of the image, fixed for the
    episode; their corners are drawn in image fractions once, before the first frame."""
    side = math.sqrt(fraction / _PATCHES)
    boxes: List[Tuple[float, float, float, float]] = []
    for _ in range(200):
        if len(boxes) == _PATCHES:
            break
        aspect = float(rng.uniform(0.6, 1.6))
        width = min(1.0, side * aspect)
        height = min(1.0, side * side / width)
        x, y = float(rng.uniform(0, 1 - width)), float(rng.uniform(0, 1 - height))
        if all(x >= bx + bw or bx >= x + width or y >= by + bh or by >= y + height for bx, by, bw, bh in boxes):
            boxes.append((x, y, width, height))

    def apply(frame: np.ndarray) -> np.ndarray:
        out = frame.copy()
        rows, columns = frame.shape[:2]
        for x, y, width, height in boxes:
            out[round(y * rows):round((y + height) * rows), round(x * columns):round((x + width) * columns)] = _PATCH_RGB
        return out
    return apply


# ---------------------------------------------------------------------------------------------------------
# world: derived world specs
def _target_size(spec: WorldSpec, factor: float) -> WorldSpec:
    return replace(spec, target=replace(spec.target, size=spec.target.size * factor))


def _target_shape(spec: WorldSpec, shape: str) -> WorldSpec:
    return replace(spec, target=replace(spec.target, shape=shape))


_DISTRACTOR_PARTS = (PartSpec("box", (0.5, 0.5, 0.9), (0.0, 0.0, 0.0), ()),
                     PartSpec("cylinder", (0.45, 0.45, 0.8), (0.0, 0.0, 0.0), ()),
                     PartSpec("sphere", (0.7, 0.7, 0.7), (0.0, 0.0, 0.0), ()))


def _distractors(spec: WorldSpec, count: float) -> WorldSpec:
    """``count`` red boxes, cylinders and spheres (the target's colour, about its size) among the obstacles,
    anywhere clear of them (on streets and sidewalks in a city: the sidewalks alone cannot hold 25)."""
    families = []
    for index, part in enumerate(_DISTRACTOR_PARTS):
        share = int(count) // len(_DISTRACTOR_PARTS) + (index < int(count) % len(_DISTRACTOR_PARTS))
        families.append(PropFamily(name=f"distractor_{part.shape}s", count=share, placement="anywhere",
                                   scale=(0.8, 1.2), parts=(replace(part, colors=(spec.target.color,)),),
                                   min_spacing=1.0))
    return replace(spec, props=spec.props + tuple(families))


def _start_range(spec: WorldSpec, band: str) -> WorldSpec:
    return replace(spec, target=replace(spec.target, distance=_band(band)))


# ---------------------------------------------------------------------------------------------------------
# scene: edits of every sampled scene
def _rotated(prim: Primitive, center: Tuple[float, float], angle: float) -> Primitive:
    dx, dy = prim.position[0] - center[0], prim.position[1] - center[1]
    cos, sin = math.cos(angle), math.sin(angle)
    position = (center[0] + dx * cos - dy * sin, center[1] + dx * sin + dy * cos, prim.position[2])
    return replace(prim, position=position, yaw=prim.yaw + angle)


def _target_rotation(scene: Scene, degrees: float) -> Scene:
    """The target turned by ``degrees`` about its vertical axis (0: facing the start as in training)."""
    angle = math.radians(degrees)
    center = scene.target_position[:2]
    return replace(scene, target_yaw=scene.target_yaw + angle,
                   target_parts=tuple(_rotated(prim, center, angle) for prim in scene.target_parts))


_WALL_GAP = 0.8  # m from the target's centre towards the start
_WALL_RGBA = (0.52, 0.50, 0.47, 1.0)


def _target_occlusion(scene: Scene, fraction: float) -> Scene:
    """A low wall ``_WALL_GAP`` in front of the target (towards the start), as wide as the target and
    ``fraction`` of its height: from a distance it hides that lower part of the target."""
    target = np.asarray(scene.target_position[:2])
    toward_start = np.asarray(scene.start_position[:2]) - target
    toward_start /= max(float(np.linalg.norm(toward_start)), 1e-9)
    center = target + _WALL_GAP * toward_start
    half_height = fraction * scene.target_position[2]  # target_position[2] is half the target's height
    wall = Primitive("box", (float(center[0]), float(center[1]), half_height),
                     (0.08, scene.target_radius + 0.2, half_height),
                     math.atan2(toward_start[1], toward_start[0]), _WALL_RGBA)
    return replace(scene, target_parts=scene.target_parts + (wall,))


# ---------------------------------------------------------------------------------------------------------
# env: camera timing and wind
def _timing(field: str, scale: float = 1.0) -> Callable[[EnvConfig, float], EnvConfig]:
    """Sets ``FrameTiming.<field>`` to level x ``scale`` on the config's timing."""

    def apply(config: EnvConfig, level: float) -> EnvConfig:
        try:
            timing = replace(config.frame_timing(), **{field: level * scale})
        except ValueError as problem:
            raise ConditionError(f"timing condition {field}: {problem}") from None
        return replace(config, timing=timing, control_hz=EnvConfig.control_hz)
    return apply


def _bursts(config: EnvConfig, probability: float) -> EnvConfig:
    timing = replace(config.frame_timing(), burst_probability=probability, burst_length=(3, 8))
    return replace(config, timing=timing, control_hz=EnvConfig.control_hz)


def _timing_preset(config: EnvConfig, name: str) -> EnvConfig:
    return replace(config, timing=FrameTiming.preset(name), control_hz=EnvConfig.control_hz)


@dataclass(frozen=True)
class Wind:
    """Steady wind of ``speed`` m/s from a direction drawn per episode, plus gusts: four sinusoids per
    horizontal axis (periods 2-20 s, random phases) with a standard deviation of ``gust_fraction * speed``.

    It acts as the extra drag force the vehicle's own linear drag model gives for that airspeed, at hover:
    ``(linear_drag_x + rotor_drag_xy * 4 * hover_rpm) * wind_velocity`` (N).
    """

    speed: float
    gust_fraction: float = 0.4

    def episode(self, seed: int, vehicle: VehicleParams) -> "WindEpisode":
        return WindEpisode(self, seed, vehicle)


class WindEpisode:
    """The wind of one episode: ``velocity(t)`` (m/s, world xy) and, called, the force (N) at time ``t``."""

    def __init__(self, wind: Wind, seed: int, vehicle: VehicleParams) -> None:
        rng = np.random.default_rng([int(seed), _WIND_SALT])
        heading = float(rng.uniform(-math.pi, math.pi))
        self.steady = wind.speed * np.array([math.cos(heading), math.sin(heading)])
        self.frequencies = 2 * math.pi * rng.uniform(0.05, 0.5, size=(2, 4))
        self.phases = rng.uniform(0.0, 2 * math.pi, size=(2, 4))
        self.amplitude = wind.gust_fraction * wind.speed / math.sqrt(2.0)  # four sinusoids: std = amplitude * sqrt(2)
        self.drag = vehicle.linear_drag[0] + vehicle.rotor_drag_xy * 4.0 * vehicle.hover_rpm

    def velocity(self, time: float) -> np.ndarray:
        return self.steady + self.amplitude * np.sin(self.frequencies * time + self.phases).sum(axis=1)

    def __call__(self, time: float) -> Tuple[float, float, float]:
        wind = self.velocity(time)
        return self.drag * float(wind[0]), self.drag * float(wind[1]), 0.0


def _wind(config: EnvConfig, speed: float) -> EnvConfig:
    return replace(config, disturbance=Wind(speed))


# ---------------------------------------------------------------------------------------------------------
def _family_list() -> List[Family]:
    timing_presets = tuple(sorted(PRESETS))
    return [
        Family("noise", "image", "pixel std (0-255)", 0.0, (5.0, 10.0, 20.0, 40.0),
               "Gaussian noise on every pixel, fresh each frame", _noise, (0.0, 255.0)),
        Family("brightness", "image", "shift (fraction of 255)", 0.0, (-0.4, -0.2, 0.2, 0.4),
               "every pixel shifted by level x 255", _brightness, (-1.0, 1.0)),
        Family("exposure", "image", "gain", 1.0, (0.6, 0.8, 1.2, 1.4),
               "every pixel multiplied by the gain (under- and over-exposure)", _exposure, (0.01, 10.0)),
        Family("contrast", "image", "reduction (0-1)", 0.0, (0.25, 0.5, 0.75),
               "pixels pulled towards the frame mean (haze-like)", _contrast, (0.0, 1.0)),
        Family("saturation", "image", "reduction (0-1)", 0.0, (0.25, 0.5, 0.75, 1.0),
               "colours pulled towards grey (1: grey image)", _saturation, (0.0, 1.0)),
        Family("blur", "image", "Gaussian sigma (camera pixels)", 0.0, (1.0, 2.0, 4.0),
               "Gaussian blur at the camera resolution", _blur, (0.01, 50.0)),
        Family("occlusion", "image", "covered fraction of the image", 0.0, (0.05, 0.1, 0.2, 0.3),
               "three dark patches fixed for the episode (dirt on the lens)", _occlusion, (0.0, 0.6)),
        Family("target_size", "world", "size factor", 1.0, (0.5, 0.75, 1.5, 2.0),
               "the target scaled", _target_size, (0.1, 5.0)),
        Family("target_rotation", "scene", "degrees about the vertical", 0.0, (45.0, 90.0, 135.0, 180.0),
               "the target turned away from the start", _target_rotation, (-360.0, 360.0)),
        Family("target_shape", "world", "shape", "chair", SHAPES,
               "a red primitive of the target's height instead of the chair", _target_shape, choices=SHAPES),
        Family("target_occlusion", "scene", "hidden fraction of the target height", 0.0, (0.25, 0.5, 0.7),
               "a low wall 0.8 m in front of the target", _target_occlusion, (0.0, 0.7)),
        Family("distractors", "world", "red objects in the world", 0.0, (10.0, 25.0, 50.0),
               "red boxes, cylinders and spheres that are not the target", _distractors, (0.0, 300.0)),
        Family("range", "world", "start distance band (m)", None, ("15-25", "25-40"),
               "start distances beyond the training range", _start_range),
        Family("rate", "env", "camera Hz", 30.0, (10.0, 15.0, 20.0, 60.0),
               "camera frame rate, one command per frame", _timing("rate_hz"), (1.0, 240.0)),
        Family("jitter", "env", "interval std (ms)", 0.0, (2.0, 5.0, 10.0),
               "Gaussian jitter of the frame intervals", _timing("jitter_s", 1e-3), (0.0, 500.0)),
        Family("drops", "env", "drop probability", 0.0, (0.1, 0.2, 0.4),
               "single frames lost", _timing("drop_probability"), (0.0, 0.95)),
        Family("bursts", "env", "burst probability per frame", 0.0, (0.01, 0.03, 0.06),
               "bursts of 3-8 frames lost", _bursts, (0.0, 0.5)),
        Family("latency", "env", "added latency (ms)", 0.0, (25.0, 50.0, 100.0, 200.0),
               "delay between a frame and its command taking effect", _timing("latency_s", 1e-3), (0.0, 2000.0)),
        Family("timing", "env", "frame timing preset", "fixed30", ("jitter30", "drops30", "bursts30", "latency30", "mixed"),
               "a named camera timing (liquid_nav.sim.frame_timing.PRESETS)", _timing_preset, choices=timing_presets),
        Family("wind", "env", "mean wind speed (m/s)", 0.0, (2.0, 4.0, 6.0, 8.0),
               "steady wind + gusts (std 40 % of the mean) as forces in the physics", _wind, (0.0, 30.0)),
    ]


FAMILIES: Dict[str, Family] = {family.name: family for family in _family_list()}
_ORDER = {name: index for index, name in enumerate(FAMILIES)}


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise ConditionError(f"unknown condition {name!r}; expected one of {sorted(FAMILIES)} (or 'nominal')")
    return FAMILIES[name]


@dataclass(frozen=True)
class Perturbation:
    family: str
    level: Level


@dataclass(frozen=True)
class SceneEdits:
    """The scene-stage perturbations of a condition as ``EnvConfig.scene_edit`` (a picklable callable)."""

    perturbations: Tuple[Perturbation, ...]

    def __call__(self, scene: Scene) -> Scene:
        for item in self.perturbations:
            scene = FAMILIES[item.family].apply(scene, item.level)
        return scene


@dataclass(frozen=True)
class Condition:
    """What one evaluation cell applies. ``name``: ``"nominal"``, a family name or a composite's name;
    ``strength``: the family's level (None for nominal and composites)."""

    name: str
    strength: Optional[Level] = None
    perturbations: Tuple[Perturbation, ...] = ()

    @classmethod
    def single(cls, family_name: str, level: Any) -> "Condition":
        parsed = family(family_name).parse(level)
        return cls(family_name, parsed, (Perturbation(family_name, parsed),))

    @classmethod
    def composite(cls, name: str, levels: Mapping[str, Any]) -> "Condition":
        if not levels:
            raise ConditionError(f"composite condition {name!r} names no perturbations")
        if name in FAMILIES or name == "nominal":
            raise ConditionError(f"composite condition {name!r}: the name is taken by a condition family")
        items = sorted((Perturbation(key, family(key).parse(value)) for key, value in levels.items()),
                       key=lambda item: _ORDER[item.family])
        return cls(name, None, tuple(items))

    @property
    def label(self) -> str:
        """``name`` or ``name=strength``: how tables, files and progress bars name the cell's condition."""
        return condition_label(self.name, self.strength)

    def stage(self, stage: str) -> Tuple[Perturbation, ...]:
        return tuple(item for item in self.perturbations if FAMILIES[item.family].stage == stage)

    def env_config(self, base: EnvConfig) -> EnvConfig:
        """``base`` with this condition's world, scene and env perturbations."""
        config = base
        world_changes = self.stage("world")
        if world_changes:
            spec = base.world if isinstance(base.world, WorldSpec) else load_world(base.world)
            for item in world_changes:
                spec = FAMILIES[item.family].apply(spec, item.level)
            config = replace(config, world=spec)
        scene_changes = self.stage("scene")
        if scene_changes:
            config = replace(config, scene_edit=SceneEdits(scene_changes))
        for item in self.stage("env"):
            config = FAMILIES[item.family].apply(config, item.level)
        return config

    def frame_filter(self, seed: int) -> Optional[FrameFilter]:
        """What the pilot's frames go through in episode ``seed`` (None: nothing); the same for every model."""
        filters = [FAMILIES[item.family].apply(item.level, np.random.default_rng([int(seed), _IMAGE_SALT, index]))
                   for index, item in enumerate(self.stage("image"))]
        if not filters:
            return None

        def apply(frame: np.ndarray) -> np.ndarray:
            for step in filters:
                frame = step(frame)
            return frame
        return apply


NOMINAL = Condition("nominal")


def _level_text(level: Level) -> str:
    return f"{level:g}" if isinstance(level, float) else str(level)


def condition_label(name: str, strength: Optional[Level]) -> str:
    """``name`` or ``name=strength`` (``noise=10``, ``range=15-25``)."""
    return name if strength is None else f"{name}={_level_text(strength)}"


def family_conditions(name: str, levels: Optional[Sequence[Any]] = None) -> List[Condition]:
    """One condition per level of family ``name`` (its standard levels when ``levels`` is None)."""
    chosen = family(name).levels if levels is None else levels
    return [Condition.single(name, level) for level in chosen]


def parse_condition_argument(text: str) -> List[Condition]:
    """Conditions from a command-line word: ``all`` (every family at its standard levels), ``nominal``,
    ``noise`` (standard levels), ``noise=5,10`` (these levels), ``noise=10+rate=10`` (one composite)."""
    text = text.strip()
    if text == "all":
        return [condition for name in FAMILIES for condition in family_conditions(name)]
    if text == "nominal":
        return [NOMINAL]
    if "+" in text:
        pairs = [part.split("=", 1) for part in text.split("+")]
        if any(len(pair) != 2 for pair in pairs):
            raise ConditionError(f"composite condition {text!r}: expected family=level+family=level")
        return [Condition.composite(text, dict(pairs))]
    name, _, levels = text.partition("=")
    return family_conditions(name, levels.split(",") if levels else None)


def conditions_from_yaml(value: Any, source: str) -> List[Condition]:
    """Conditions from an experiment file's ``conditions`` mapping: ``family: [levels]`` (or null for the
    standard levels, or one level), ``name: {family: level, ...}`` for a composite, or ``all: null``."""
    if value is None:
        return []
    if not isinstance(value, dict):
        raise ConditionError(f"{source}: key 'conditions': expected a mapping of condition names, got {value!r}")
    conditions: List[Condition] = []
    for name, levels in value.items():
        try:
            if isinstance(levels, dict):
                conditions.append(Condition.composite(str(name), levels))
            elif name in ("all", "nominal"):
                conditions += parse_condition_argument(name)
            else:
                listed = levels if levels is None or isinstance(levels, list) else [levels]
                conditions += family_conditions(str(name), listed)
        except ConditionError as problem:
            raise ConditionError(f"{source}: key 'conditions.{name}': {problem}") from None
    return conditions


def describe_families() -> str:
    """A table of every condition family: stage, unit, neutral and standard levels."""
    rows = [f"{'condition':<17} {'stage':<6} {'unit':<38} {'neutral':<8} standard levels"]
    for item in FAMILIES.values():
        neutral = "world's" if item.neutral is None else _level_text(item.neutral)
        levels = ", ".join(_level_text(level) for level in item.levels)
        rows.append(f"{item.name:<17} {item.stage:<6} {item.unit:<38} {neutral:<8} {levels}  ({item.description})")
    return "\n".join(rows)
