"""Training studies: variants of one training recipe x training seeds, trained on one store, flown closed-loop
on paired seeds, summarised with their spread over seeds (``liquid-nav study``; config/study/*.yaml).

Layout of a study directory::

    OUT/<variant>/seed<k>/     a ``liquid-nav train`` run (config.yaml, log.csv, checkpoints/); a DAgger variant's
                               run starts as a copy of its base variant's run and keeps its own store in store/
    OUT/eval/seed<k>/          a ``liquid-nav evaluate`` run: every variant trained with seed k, on seed block k
    ARCHIVE/<variant>/seed<k>/ the record of a finished cell: config.yaml, log.csv, episodes.jsonl.gz (its flights),
                               cell.json (the evaluation settings); small, so it is committed
    REPORT/                    report.md, results.json (the evaluation format), summary.json, curves.png

A cell (variant x seed) is recorded in the archive once it is trained and flown; the report is built from the
archive alone, and a recorded cell is neither trained nor flown again. So a study grows across machines that
keep only the repository: checkpoints and evaluation directories may go, the record stays.

Training seed number k (its index in ``seeds``) flies the evaluation seeds ``first_seed + k * episodes_per_seed``
onwards, so every variant trained with that seed meets the same worlds (paired), and the pooled results hold
distinct seeds. Every stage resumes: a finished run or episode is never redone, and a run directory written
with another config is refused, not mixed.
"""
from __future__ import annotations

import copy
import gzip
import json
import math
import statistics
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import yaml

from liquid_nav.paths import config_dir, named_yaml_file
from liquid_nav.train.config import TrainConfig, TrainConfigError, parse_train_config, train_config_path
from liquid_nav.validation import MappingReader

if TYPE_CHECKING:
    from liquid_nav.train.dagger import DaggerConfig

STAGES = ("collect", "train", "evaluate", "report")
CELL_FILE = "cell.json"
CELL_EPISODES = "episodes.jsonl.gz"  # the cell's flights, as the evaluation logged them (trajectories: gzip)
CELL_FORMAT = "liquid_nav.study_cell"
FINISHED = ("done", "recorded")  # run states of a trained run (recorded: trained and flown, in the archive)
SUMMARY_FORMAT = "liquid_nav.study_summary"
TAIL_ROWS = 10  # logged training rows averaged for the end-of-training diagnostics


class StudyError(ValueError):
    """A study that cannot run as given; the message names the file, key or directory and the fix."""


@dataclass(frozen=True)
class StudyData:
    """The episode store every variant trains on, collected by the expert when missing."""

    dir: str = "data/forest"
    world: str = "forest"
    episodes: int = 150
    first_seed: int = 0
    camera: str = "default"
    max_episode_seconds: Optional[float] = None  # None: the env's default


@dataclass(frozen=True)
class StudyEvaluation:
    """The closed-loop check of every trained run (``liquid-nav evaluate`` settings)."""

    worlds: Tuple[str, ...] = ("forest", "urban")
    episodes_per_seed: int = 34
    first_seed: int = 500_000
    max_episode_seconds: float = 30.0
    safety: str = "sim"
    camera: str = "default"
    backend: str = "onnxruntime"

    def experiment(self, models, episodes: int, first_seed: int, name: str):
        """The ``liquid-nav evaluate`` experiment of ``models`` with these settings (no sample media)."""
        from liquid_nav.evaluate.experiment import ExperimentConfig, SampleConfig

        return ExperimentConfig(models=tuple(models), worlds=self.worlds, episodes=episodes, first_seed=first_seed,
                                backend=self.backend, camera=self.camera, max_episode_seconds=self.max_episode_seconds,
                                safety=self.safety, samples=SampleConfig(seeds=0, conditions=()), name=name)


@dataclass(frozen=True)
class StudyDagger:
    """A DAgger variant: rounds on top of the ``base`` variant's finished run, on a copy of the study's store."""

    base: str
    settings: "DaggerConfig"


@dataclass(frozen=True)
class StudyConfig:
    """Variants (label -> overrides of the base training config) x seeds, one store, one evaluation."""

    name: str
    train: str  # preset name or training YAML file every variant starts from
    variants: Dict[str, Dict[str, Any]]
    seeds: Tuple[int, ...] = (0, 1, 2)
    common: Dict[str, Any] = field(default_factory=dict)  # overrides applied to every variant first
    reference: Optional[str] = None  # the variant whose paired comparisons the report lists first
    data: StudyData = field(default_factory=StudyData)
    evaluation: StudyEvaluation = field(default_factory=StudyEvaluation)
    archive: Optional[str] = None  # where finished cells are recorded; None: OUT/archive
    dagger: Dict[str, StudyDagger] = field(default_factory=dict)  # variant -> its DAgger rounds

    def train_config(self, variant: str, seed: int) -> TrainConfig:
        """The full training config of one run (base file, then ``common``, then the variant, then the seed); a
        DAgger variant's is its base variant's, ending after the rounds' steps."""
        if variant in self.dagger:
            spec = self.dagger[variant]
            base = self.train_config(spec.base, seed)
            return replace(base, steps=base.steps + spec.settings.rounds * spec.settings.steps_per_round)
        path = train_config_path(self.train)
        try:
            base = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as error:
            raise StudyError(f"{path}: not valid YAML: {error}") from error
        merged = deep_merge(deep_merge(base, self.common), self.variants[variant])
        merged["seed"] = seed
        try:
            return parse_train_config(merged, f"{path} + study variant {variant!r}")
        except TrainConfigError as error:
            raise StudyError(str(error)) from None

    def run_dir(self, out: Path, variant: str, seed: int) -> Path:
        return Path(out) / variant / f"seed{seed}"

    def archive_dir(self, out: Path) -> Path:
        """Where finished cells are recorded: the study's ``archive``, else ``OUT/archive``."""
        return Path(self.archive) if self.archive is not None else Path(out) / "archive"

    def cell_dir(self, out: Path, variant: str, seed: int) -> Path:
        return self.archive_dir(out) / variant / f"seed{seed}"

    def evaluation_first_seed(self, seed: int) -> int:
        return self.evaluation.first_seed + self.seeds.index(seed) * self.evaluation.episodes_per_seed


def deep_merge(base: Any, overrides: Any) -> Any:
    """``base`` with ``overrides`` applied: mappings merge key by key, anything else replaces."""
    if not isinstance(base, dict) or not isinstance(overrides, dict):
        return copy.deepcopy(overrides)
    merged = copy.deepcopy(base)
    for key, value in overrides.items():
        merged[key] = deep_merge(merged[key], value) if key in merged else copy.deepcopy(value)
    return merged


def study_path(name_or_path: Union[str, Path]) -> Path:
    """A study by name in ``config/study`` (``trainability``) or a YAML file path."""
    try:
        return named_yaml_file(name_or_path, config_dir() / "study", "study")
    except FileNotFoundError as error:
        raise StudyError(str(error)) from None


def load_study(name_or_path: Union[str, Path]) -> StudyConfig:
    """Read and validate a study file; every variant's training config is checked now."""
    path = study_path(name_or_path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise StudyError(f"{path}: not valid YAML: {error}") from None
    return parse_study(data, str(path))


def parse_study(data: Any, source: str) -> StudyConfig:
    root = MappingReader(source, "", data, StudyError)
    variants = root.raw("variants")
    if not isinstance(variants, dict) or not variants or not all(
            isinstance(label, str) and label and "/" not in label and isinstance(value, (dict, type(None)))
            for label, value in variants.items()):
        root.fail("variants", "a mapping of variant labels (no '/') to training-config overrides ({} for none)")
    seeds = root.raw("seeds", [0, 1, 2])
    if (not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds)
            or not all(isinstance(seed, int) and not isinstance(seed, bool) and seed >= 0 for seed in seeds)):
        root.fail("seeds", f"a list of distinct training seeds >= 0, got {seeds!r}")
    common = root.raw("common", {}) or {}
    if not isinstance(common, dict):
        root.fail("common", f"a mapping of training-config overrides, got {common!r}")
    reference = root.raw("reference") if root.has("reference") else None
    if reference is not None and reference not in variants:
        root.fail("reference", f"one of the variants {list(variants)}, got {reference!r}")
    default_data, default_eval = StudyData(), StudyEvaluation()
    data_node = root.child("data", required=False) or MappingReader(source, "data", {}, StudyError)
    max_seconds = data_node.raw("max_episode_seconds") if data_node.has("max_episode_seconds") else None
    if max_seconds is not None and not (isinstance(max_seconds, (int, float)) and max_seconds > 0):
        data_node.fail("max_episode_seconds", f"a number of seconds > 0, got {max_seconds!r}")
    study_data = StudyData(
        dir=data_node.text("dir", default=default_data.dir), world=data_node.text("world", default=default_data.world),
        episodes=data_node.number("episodes", default=default_data.episodes, low=1, integer=True),
        first_seed=data_node.number("first_seed", default=default_data.first_seed, low=0, integer=True),
        camera=data_node.text("camera", default=default_data.camera),
        max_episode_seconds=float(max_seconds) if max_seconds is not None else None)
    data_node.finish()
    eval_node = root.child("evaluation", required=False) or MappingReader(source, "evaluation", {}, StudyError)
    worlds = eval_node.raw("worlds", list(default_eval.worlds))
    if not isinstance(worlds, list) or not worlds or not all(isinstance(world, str) for world in worlds):
        eval_node.fail("worlds", f"a list of world names or paths, got {worlds!r}")
    evaluation = StudyEvaluation(
        worlds=tuple(worlds),
        episodes_per_seed=eval_node.number("episodes_per_seed", default=default_eval.episodes_per_seed, low=1,
                                           integer=True),
        first_seed=eval_node.number("first_seed", default=default_eval.first_seed, low=0, integer=True),
        max_episode_seconds=eval_node.number("max_episode_seconds", default=default_eval.max_episode_seconds,
                                             low=0.1),
        safety=eval_node.text("safety", default=default_eval.safety),
        camera=eval_node.text("camera", default=default_eval.camera),
        backend=eval_node.text("backend", default=default_eval.backend))
    eval_node.finish()
    dagger = {label: parse_study_dagger(MappingReader(source, f"variants.{label}", value, StudyError), variants)
              for label, value in variants.items() if isinstance(value, dict) and "dagger" in value}
    study = StudyConfig(name=root.text("name", default=Path(source).stem), train=root.text("train", default="quick"),
                        variants={label: value or {} for label, value in variants.items()}, seeds=tuple(seeds),
                        common=common, reference=reference, data=study_data, evaluation=evaluation,
                        archive=root.text("archive") if root.has("archive") else None, dagger=dagger)
    root.finish()
    for variant in study.variants:
        study.train_config(variant, study.seeds[0])  # a bad override fails now, naming the variant
    return study


def parse_study_dagger(variant: MappingReader, variants: Dict[str, Any]) -> StudyDagger:
    """``{dagger: {base, rounds, episodes_per_round, steps_per_round, beta, first_seed}}``: nothing else in the
    variant (its training config is the base variant's)."""
    from liquid_nav.train.dagger import DaggerConfig

    node = variant.child("dagger")
    variant.finish()
    base = node.text("base")
    if base not in variants or (isinstance(variants[base], dict) and "dagger" in variants[base]):
        node.fail("base", f"a variant of the study without DAgger rounds, got {base!r}")
    default = DaggerConfig()
    settings = DaggerConfig(
        rounds=node.number("rounds", default=default.rounds, low=1, integer=True),
        episodes_per_round=node.number("episodes_per_round", default=default.episodes_per_round, low=0, integer=True),
        steps_per_round=node.number("steps_per_round", default=default.steps_per_round, low=1, integer=True),
        beta=node.number("beta", default=default.beta, low=0.0, high=1.0),
        first_seed=node.number("first_seed", default=default.first_seed, low=0, integer=True),
        eval_episodes=0)  # the study flies its own evaluation
    node.finish()
    return StudyDagger(base, settings)


# --- training runs ----------------------------------------------------------------------------------------
def config_difference(config_file: Path, expected: TrainConfig, ignore: Sequence[str] = ()) -> List[str]:
    """The top-level keys (but ``ignore``) in which the training config stored in ``config_file`` differs from
    ``expected``, both with every default filled in (a key added to the configs later, at its default, is no
    difference)."""
    stored = yaml.safe_load(config_file.read_text(encoding="utf-8"))
    try:
        stored = parse_train_config(stored, str(config_file)).to_dict()
    except TrainConfigError:  # not a config of this version: compare it as it is
        pass
    wanted = expected.to_dict()
    if not isinstance(stored, dict):
        return sorted(wanted)
    return sorted(key for key in set(wanted) | set(stored) if stored.get(key) != wanted.get(key) and key not in ignore)


def run_state(study: StudyConfig, out: Path, variant: str, seed: int) -> str:
    """``missing``, ``partial`` or ``done``; raises StudyError when the directory holds another config's run."""
    run = study.run_dir(out, variant, seed)
    config_file = run / "config.yaml"
    if not config_file.is_file():
        return "missing"
    expected = study.train_config(variant, seed)
    # a DAgger run between rounds stores the config of its last round
    changed = config_difference(config_file, expected, ignore=("steps",) if variant in study.dagger else ())
    if changed:
        raise StudyError(f"{run} holds a run with another training config (keys {changed} differ); move it away "
                         f"or study into a new --out directory")
    from liquid_nav.train.trainer import read_log

    if not (run / "log.csv").is_file():  # stopped before its first log row
        return "partial"
    steps = [int(row["step"]) for row in read_log(run) if row["kind"] == "validation"]
    return "done" if steps and max(steps) >= expected.steps else "partial"


def train_runs(study: StudyConfig, out: Path, runs: Sequence[Tuple[str, int]], progress: bool = True,
               log: Callable[[str], None] = print) -> int:
    """Train (or resume) every run of ``runs`` (variant, seed) that is not done; returns how many were trained."""
    trained = 0
    for variant, seed in runs:
        if recorded_cell(study, out, variant, seed) is not None:
            continue
        state = run_state(study, out, variant, seed)
        if state == "done":
            continue
        log(f"study {study.name}: training {variant} seed {seed}" + (" (resumed)" if state == "partial" else ""))
        if variant in study.dagger:
            train_dagger_run(study, out, variant, seed, progress, log)
        else:
            _train(study, out, variant, seed, progress)
        trained += 1
    return trained


def _train(study: StudyConfig, out: Path, variant: str, seed: int, progress: bool) -> None:
    from liquid_nav.train.trainer import Trainer

    run = study.run_dir(out, variant, seed)
    resume = (run / "checkpoints" / "last" / "state.pt").is_file()
    Trainer(study.train_config(variant, seed), Path(study.data.dir), run, resume=resume).run(progress=progress)


def train_dagger_run(study: StudyConfig, out: Path, variant: str, seed: int, progress: bool = True,
                     log: Callable[[str], None] = print) -> None:
    """A DAgger variant's run: a copy of its base variant's finished run (trained first when it is not) with a
    copy of the study's store in ``store/``, then the rounds (student episodes join the copy, never the shared
    store); resumes where it stopped."""
    import shutil

    from liquid_nav.sim.env import EnvConfig
    from liquid_nav.train.dagger import run_dagger

    spec = study.dagger[variant]
    run = study.run_dir(out, variant, seed)
    if not (run / "config.yaml").is_file():
        if run_state(study, out, spec.base, seed) != "done":
            log(f"study {study.name}: training {spec.base} seed {seed} first (the base of {variant})")
            _train(study, out, spec.base, seed, progress)
        copying = run.with_name(run.name + ".copying")  # renamed into place whole
        shutil.rmtree(copying, ignore_errors=True)
        shutil.copytree(study.run_dir(out, spec.base, seed), copying)
        shutil.copytree(Path(study.data.dir), copying / "store")
        shutil.rmtree(run, ignore_errors=True)
        copying.rename(run)
    options = {} if study.data.max_episode_seconds is None else {"max_episode_seconds": study.data.max_episode_seconds}
    env = EnvConfig(world=study.data.world, camera=study.data.camera, **options)
    run_dagger(study.train_config(spec.base, seed), spec.settings, env, run / "store", run, progress=progress, log=log)


# --- closed loop ------------------------------------------------------------------------------------------
def evaluation_experiment(study: StudyConfig, out: Path, seed: int, variants: Sequence[str]):
    """The evaluation of the ``variants`` trained with ``seed`` (their last checkpoints), on seed block k."""
    from liquid_nav.evaluate.experiment import ModelSpec

    evaluation = study.evaluation
    models = tuple(ModelSpec(variant, str(study.run_dir(out, variant, seed) / "checkpoints" / "last" / "policy.lnav"))
                   for variant in variants)
    return evaluation.experiment(models, evaluation.episodes_per_seed, study.evaluation_first_seed(seed),
                                 f"{study.name}-seed{seed}")


def evaluate_runs(study: StudyConfig, out: Path, seeds: Sequence[int], workers: int = 1,
                  progress: bool = True) -> int:
    """Fly every finished run of the training ``seeds`` (all variants: a seed's evaluation directory holds them
    all) that is neither flown nor recorded yet; returns the number of episodes flown."""
    from liquid_nav.evaluate.run import fly_episodes

    flown = 0
    for seed in seeds:
        variants = [variant for variant in study.variants if recorded_cell(study, out, variant, seed) is None
                    and run_state(study, out, variant, seed) == "done"]
        if variants:
            flown += fly_episodes(evaluation_experiment(study, out, seed, variants), Path(out) / "eval" / f"seed{seed}",
                                  workers=workers, progress=progress)
    return flown


# --- the record of finished cells -------------------------------------------------------------------------
def evaluation_settings(study: StudyConfig) -> Dict[str, Any]:
    """What a flight's outcome depends on besides its checkpoint and seed (backend, camera, time limit, safety,
    the worlds' SHA-256s), as the evaluation run directory stores it."""
    from liquid_nav.evaluate.experiment import REFERENCE, ModelSpec

    evaluation = study.evaluation
    experiment = evaluation.experiment([ModelSpec(REFERENCE, REFERENCE)], evaluation.episodes_per_seed,
                                       evaluation.first_seed, study.name)
    return {key: value for key, value in experiment.settings().items() if key != "models"}


def _cell_block(study: StudyConfig, seed: int) -> Dict[str, Any]:
    from liquid_nav.evaluate.experiment import world_label

    return {"worlds": [world_label(world) for world in study.evaluation.worlds],
            "first_seed": study.evaluation_first_seed(seed), "episodes_per_seed": study.evaluation.episodes_per_seed}


def recorded_cell(study: StudyConfig, out: Path, variant: str, seed: int) -> Optional[Path]:
    """The archive directory of the cell when it is recorded (None when not); raises StudyError when the record
    is of another training config or evaluation, or is damaged."""
    from liquid_nav.evaluate.experiment import settings_difference

    cell = study.cell_dir(out, variant, seed)
    if not (cell / CELL_FILE).is_file():
        return None
    try:
        record = json.loads((cell / CELL_FILE).read_text(encoding="utf-8"))
        changed = config_difference(cell / "config.yaml", study.train_config(variant, seed))
    except (OSError, ValueError, yaml.YAMLError) as error:
        raise StudyError(f"{cell}: a damaged cell record ({error}); delete the directory to redo the cell") from None
    if not isinstance(record, dict) or record.get("format") != CELL_FORMAT or record.get("format_version") != 1:
        raise StudyError(f"{cell / CELL_FILE}: not a {CELL_FORMAT} v1 file")
    if changed:
        raise StudyError(f"{cell} records a run with another training config (keys {changed} differ); move it "
                         f"away or give the study another archive")
    if record.get("block") != _cell_block(study, seed):
        raise StudyError(f"{cell} records flights of another seed block ({record.get('block')}, the study flies "
                         f"{_cell_block(study, seed)})")
    difference = settings_difference({**record["settings"], "models": {}},
                                     {**evaluation_settings(study), "models": {}})
    if difference:
        raise StudyError(f"{cell} records flights with other evaluation settings ({difference})")
    return cell


def cell_flights(cell: Path) -> List[Dict[str, Any]]:
    """The episode rows of a recorded cell; raises StudyError when the file is damaged."""
    try:
        text = gzip.decompress((Path(cell) / CELL_EPISODES).read_bytes()).decode("utf-8")
        return [json.loads(line) for line in text.splitlines() if line.strip()]
    except (OSError, EOFError, ValueError) as error:
        raise StudyError(f"{cell / CELL_EPISODES}: a damaged cell record ({error}); delete the directory to redo "
                         f"the cell") from None


def record_cells(study: StudyConfig, out: Path) -> int:
    """Record every cell that is trained and completely flown but not recorded yet; returns how many were."""
    from liquid_nav.evaluate.rundir import RUN_FILE, load_run
    from liquid_nav.files import atomic_write_bytes, atomic_write_text

    recorded = 0
    for variant in study.variants:
        for seed in study.seeds:
            eval_dir = Path(out) / "eval" / f"seed{seed}"
            if (recorded_cell(study, out, variant, seed) is not None or not (eval_dir / RUN_FILE).is_file()
                    or run_state(study, out, variant, seed) != "done"):
                continue
            block = _cell_block(study, seed)
            rows = [row for row in load_run(eval_dir)[1] if row["model"] == variant]
            if len(rows) < len(block["worlds"]) * block["episodes_per_seed"]:
                continue  # not completely flown
            settings = json.loads((eval_dir / RUN_FILE).read_text(encoding="utf-8"))["settings"]
            run, cell = study.run_dir(out, variant, seed), study.cell_dir(out, variant, seed)
            cell.mkdir(parents=True, exist_ok=True)
            for name in ("config.yaml", "log.csv"):
                atomic_write_bytes(cell / name, (run / name).read_bytes())
            lines = "".join(json.dumps(row, allow_nan=False) + "\n" for row in rows)
            atomic_write_bytes(cell / CELL_EPISODES, gzip.compress(lines.encode("utf-8"), mtime=0))
            atomic_write_text(cell / CELL_FILE, json.dumps(  # written last: its presence marks a whole record
                {"format": CELL_FORMAT, "format_version": 1, "study": study.name, "variant": variant, "seed": seed,
                 "checkpoint_sha256": settings["models"][variant], "block": block,
                 "settings": {key: value for key, value in settings.items() if key != "models"}}, indent=1))
            recorded += 1
    return recorded


# --- the summary ------------------------------------------------------------------------------------------
def run_summary(run_dir: Path) -> Dict[str, Any]:
    """What a training run's log says about its trainability: losses, feature scale, saturation, CNN gradient."""
    from liquid_nav.train.trainer import read_log

    rows = read_log(run_dir) if (Path(run_dir) / "log.csv").is_file() else []  # none: stopped before its first row
    train = [row for row in rows if row["kind"] == "train"]
    validation = [row for row in rows if row["kind"] == "validation" and row["validation_loss"]]

    def values(key: str, source: List[Dict[str, str]]) -> List[float]:
        return [float(row[key]) for row in source if row.get(key) not in (None, "")]

    def tail_mean(key: str) -> Optional[float]:
        tail = values(key, train[-TAIL_ROWS:])
        return statistics.fmean(tail) if tail else None

    def extreme(key: str, pick) -> Optional[float]:
        every = values(key, train)
        return pick(every) if every else None

    validation_losses = values("validation_loss", validation)
    return {"steps": int(train[-1]["step"]) if train else 0,
            "final_validation_loss": validation_losses[-1] if validation_losses else None,
            "best_validation_loss": min(validation_losses) if validation_losses else None,
            "feature_std": tail_mean("feature_std"), "feature_std_max": extreme("feature_std", max),
            "feature_absmax_max": extreme("feature_absmax", max),
            "state_saturation": tail_mean("state_saturation"),
            "state_saturation_max": extreme("state_saturation", max),
            "gate_saturation": tail_mean("gate_saturation"), "gate_saturation_max": extreme("gate_saturation", max),
            "cnn_grad_norm": tail_mean("cnn_grad_norm"), "cnn_grad_norm_min": extreme("cnn_grad_norm", min),
            "frames_per_s": statistics.median(values("frames_per_s", train)) if train else None,
            "wall_s": _wall_seconds(rows)}


def _wall_seconds(rows: List[Dict[str, str]]) -> Optional[float]:
    """Training wall time summed over the segments of a resumed run (``elapsed_s`` restarts at each resume)."""
    elapsed = [float(row["elapsed_s"]) for row in rows if row.get("elapsed_s")]
    if not elapsed:
        return None
    total = 0.0
    for previous, current in zip(elapsed, elapsed[1:]):
        if current < previous:
            total += previous
    return total + elapsed[-1]


def spread(values: Sequence[Optional[float]]) -> Dict[str, Any]:
    """Mean, sample standard deviation (None for one value), min, max and count of the values present."""
    present = [value for value in values if value is not None and math.isfinite(value)]
    if not present:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    return {"n": len(present), "mean": statistics.fmean(present),
            "std": statistics.stdev(present) if len(present) > 1 else None, "min": min(present), "max": max(present)}


def study_summary(study: StudyConfig, out: Path) -> Dict[str, Any]:
    """Per variant: every seed's run summary and success per world, the spread over seeds, the pooled success
    (Wilson); plus the pooled results in the evaluation format (with every paired test). Flights come from the
    recorded cells only; a run that is trained but not recorded shows its training figures."""
    from liquid_nav.evaluate.experiment import ModelSpec, world_label
    from liquid_nav.evaluate.report import build_results

    out = Path(out)
    evaluation = study.evaluation
    worlds = [world_label(world) for world in evaluation.worlds]
    rows: List[Dict[str, Any]] = []
    variants: Dict[str, Any] = {}
    for variant in study.variants:
        per_seed = {}
        for seed in study.seeds:
            cell = recorded_cell(study, out, variant, seed)
            if cell is not None:
                state, source = "recorded", cell
                seed_rows = [{**row, "training_seed": seed} for row in cell_flights(cell)]
                rows += seed_rows
            else:
                state, source, seed_rows = run_state(study, out, variant, seed), study.run_dir(out, variant, seed), []
                if state == "missing":
                    continue
            success = {world: _rate([row for row in seed_rows if row["world"] == world]) for world in worlds}
            per_seed[seed] = {"state": state, "source": str(source), **run_summary(source), "success": success}
        done = [summary for summary in per_seed.values() if summary["state"] in FINISHED]
        keys = ("final_validation_loss", "best_validation_loss", "feature_std", "feature_std_max",
                "feature_absmax_max", "state_saturation", "state_saturation_max", "gate_saturation",
                "gate_saturation_max", "cnn_grad_norm",
                "cnn_grad_norm_min", "frames_per_s", "wall_s")
        variants[variant] = {
            "overrides": study.variants[variant], "seeds": per_seed,
            "spread": {key: spread([summary[key] for summary in done]) for key in keys},
            "success_spread": {world: spread([summary["success"][world] for summary in done]) for world in worlds}}
    pooled = evaluation.experiment(
        [ModelSpec(variant, str(out / variant / "seed*" / "checkpoints" / "last" / "policy.lnav"))
         for variant in study.variants], evaluation.episodes_per_seed * len(study.seeds), evaluation.first_seed,
        study.name)
    results = build_results(pooled, rows)
    for variant, item in variants.items():
        item["pooled"] = {cell["world"]: {key: cell[key] for key in ("episodes", "successes", "success_rate",
                                                                      "wilson_low", "wilson_high")}
                          for cell in results["cells"] if cell["model"] == variant}
    return {"format": SUMMARY_FORMAT, "format_version": 1, "study": study.name, "train": study.train,
            "common": study.common, "seeds": list(study.seeds), "reference": study.reference, "worlds": worlds,
            "episodes_per_seed": evaluation.episodes_per_seed, "variants": variants, "results": results}


def _rate(rows: List[Dict[str, Any]]) -> Optional[float]:
    return sum(bool(row["success"]) for row in rows) / len(rows) if rows else None


# --- the report -------------------------------------------------------------------------------------------
def _figure(stats: Dict[str, Any], digits: int = 4, percent: bool = False) -> str:
    if not stats["n"]:
        return "-"
    scale = 100.0 if percent else 1.0
    unit = " %" if percent else ""
    mean = f"{scale * stats['mean']:.{0 if percent else digits}f}"
    if stats["std"] is None:
        return f"{mean}{unit} (1 seed)"
    return f"{mean} ± {scale * stats['std']:.{0 if percent else digits}f}{unit}"


def write_study_report(study: StudyConfig, out: Path, report_dir: Path, command: str = "") -> Path:
    """Write ``report.md``, ``results.json``, ``summary.json`` and ``curves.png`` into ``report_dir``."""
    from liquid_nav.files import atomic_write_text
    from liquid_nav.train.curves import plot_training_curves

    summary = study_summary(study, out)
    report_dir = Path(report_dir)
    report_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(report_dir / "results.json", json.dumps(summary["results"], indent=1, allow_nan=False))
    atomic_write_text(report_dir / "summary.json", json.dumps({k: v for k, v in summary.items() if k != "results"},
                                                              indent=1, allow_nan=False))
    runs = {f"{variant}/seed{seed}": Path(entry["source"])
            for variant, item in summary["variants"].items() for seed, entry in item["seeds"].items()
            if (Path(entry["source"]) / "log.csv").is_file()}
    if runs:
        plot_training_curves(runs, report_dir / "curves.png", f"study {study.name}: every run (colour = variant)",
                             group=lambda label: label.split("/")[0])
    worlds = summary["worlds"]
    lines = [f"# Study: {study.name}", "",
             f"Variants of the `{study.train}` training recipe, {len(study.seeds)} training seeds each "
             f"({', '.join(map(str, study.seeds))}), all on the store `{study.data.dir}` "
             f"({study.data.episodes} expert episodes of `{study.data.world}`, seeds from {study.data.first_seed}). "
             f"Each finished run flies {study.evaluation.episodes_per_seed} episodes per world in "
             f"{', '.join(worlds)} (seed block k of training seed k, from {study.evaluation.first_seed}; every "
             f"variant of a training seed on the same seeds, so the comparisons are paired), at most "
             f"{study.evaluation.max_episode_seconds:g} s, safety `{study.evaluation.safety}`. "
             "Figures are mean ± standard deviation over the finished seeds; success pooled over seeds has a "
             "Wilson 95 % interval. The training seed also draws the validation episodes, so validation losses "
             "compare variants within a seed; across seeds they move with the split as well.", "",
             f"Every figure is read from the cells recorded in `{study.archive_dir(out)}` "
             "(config, training log and flights of each finished run; state *recorded*); a run that is trained but "
             "not completely flown shows its training figures only (state *done*).", ""]
    if study.common:
        lines += [f"Overrides of every variant: `{json.dumps(study.common)}`", ""]
    if (report_dir / "findings.md").is_file():
        lines += ["What the figures below mean and what changed in the defaults: [findings.md](findings.md) "
                  "(written by hand; this file is generated).", ""]
    lines += ["## Ablation table", "",
              "| variant | overrides | seeds done | validation loss (final) | feature std (end) | feature max abs "
              "| saturated states (end) | saturated gates (end) | CNN gradient norm (end) | "
              + " | ".join(f"{world} success (seed mean ± sd) | {world} pooled [95 %]" for world in worlds) + " |",
              "|" + "---|" * (9 + 2 * len(worlds))]
    for variant, item in summary["variants"].items():
        spreads = item["spread"]
        done = sum(1 for entry in item["seeds"].values() if entry["state"] in FINISHED)
        cells = [variant, f"`{json.dumps(item['overrides'])}`" if item["overrides"] else "(the recipe)",
                 f"{done}/{len(study.seeds)}", _figure(spreads["final_validation_loss"]),
                 _figure(spreads["feature_std"], 2), _figure(spreads["feature_absmax_max"], 1),
                 _figure(spreads["state_saturation"], 3), _figure(spreads["gate_saturation"], 3),
                 _figure(spreads["cnn_grad_norm"], 3)]
        for world in worlds:
            cells.append(_figure(item["success_spread"][world], percent=True))
            pooled = item["pooled"].get(world)
            cells.append(f"{pooled['successes']}/{pooled['episodes']} = {100 * pooled['success_rate']:.0f} % "
                         f"[{100 * pooled['wilson_low']:.0f}-{100 * pooled['wilson_high']:.0f}]" if pooled else "-")
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Every run", "",
              "| variant | seed | state | steps | validation loss (final / best) | feature std (end / max) "
              "| saturated states (end / max) | saturated gates (end / max) | CNN gradient (end / min) | frames/s "
              "| wall (min) | "
              + " | ".join(f"{world} success" for world in worlds) + " |", "|" + "---|" * (11 + len(worlds))]
    for variant, item in summary["variants"].items():
        for seed, entry in item["seeds"].items():
            def pair(a: Optional[float], b: Optional[float], digits: int) -> str:
                return " / ".join("-" if value is None else f"{value:.{digits}f}" for value in (a, b))
            success = [f"{100 * entry['success'][world]:.0f} %" if entry["success"][world] is not None else "-"
                       for world in worlds]
            lines.append(f"| {variant} | {seed} | {entry['state']} | {entry['steps']} | "
                         f"{pair(entry['final_validation_loss'], entry['best_validation_loss'], 4)} | "
                         f"{pair(entry['feature_std'], entry['feature_std_max'], 2)} | "
                         f"{pair(entry['state_saturation'], entry['state_saturation_max'], 3)} | "
                         f"{pair(entry['gate_saturation'], entry['gate_saturation_max'], 3)} | "
                         f"{pair(entry['cnn_grad_norm'], entry['cnn_grad_norm_min'], 3)} | "
                         f"{entry['frames_per_s'] or 0:.0f} | "
                         f"{(entry['wall_s'] or 0) / 60:.1f} | " + " | ".join(success) + " |")
    lines += ["", "## Paired comparisons (exact McNemar, pooled over training seeds)", "",
              "Pairs are (training seed, world seed): both variants trained with the same seed flew the same "
              "world. *only A*: A reached the target and B did not. Holm-adjusted over every per-world test.", "",
              "| A | B | world | pairs | only A | only B | p | p (Holm) | better (5 %) |", "|---|---|---|---|---|---|---|---|---|"]
    comparisons = sorted(summary["results"]["comparisons"],  # the reference's pairs first, then the others
                         key=lambda item: study.reference not in (item["model_a"], item["model_b"]))
    for item in comparisons:
        holm = f"{item['p_holm']:.4f}" if "p_holm" in item else "-"
        lines.append(f"| {item['model_a']} | {item['model_b']} | {item['world']} | {item['pairs']} | {item['only_a']} | "
                     f"{item['only_b']} | {item['p_value']:.4f} | {holm} | {item['better_at_5pct'] or '-'} |")
    lines += ["", "## Curves", "", "![curves](curves.png)", "",
              "Feature std is measured at the head input; saturated states are the fraction of head states with "
              "|x| > 0.99, saturated gates the fraction of the head's sigmoid gates within 0.01 of 0 or 1 (runs "
              "trained before the log had the column show -); the CNN gradient norm is what reaches the "
              "perception before clipping. A run going the way of the probe in docs/training.md shows growing features, saturation near 1 and a CNN gradient "
              "at zero.", "", "## How to rerun", "", "```bash", command or f"liquid-nav study {study.name}", "```", ""]
    atomic_write_text(report_dir / "report.md", "\n".join(lines))
    return report_dir / "report.md"


# --- the whole study --------------------------------------------------------------------------------------
def study_runs(study: StudyConfig, variants: Optional[Sequence[str]] = None,
               seeds: Optional[Sequence[int]] = None) -> List[Tuple[str, int]]:
    """The (variant, seed) runs selected, seed by seed (so a partial study has every variant at its first seeds)."""
    chosen_variants = list(variants) if variants else list(study.variants)
    chosen_seeds = list(seeds) if seeds else list(study.seeds)
    for variant in chosen_variants:
        if variant not in study.variants:
            raise StudyError(f"variant {variant!r} is not in study {study.name!r} (variants: {list(study.variants)})")
    for seed in chosen_seeds:
        if seed not in study.seeds:
            raise StudyError(f"seed {seed} is not in study {study.name!r} (seeds: {list(study.seeds)})")
    return [(variant, seed) for seed in chosen_seeds for variant in chosen_variants]


def run_study(study: StudyConfig, out: Path, report_dir: Optional[Path] = None, stages: Sequence[str] = STAGES,
              variants: Optional[Sequence[str]] = None, seeds: Optional[Sequence[int]] = None, workers: int = 1,
              progress: bool = True, command: str = "", log: Callable[[str], None] = print) -> Dict[str, Any]:
    """Run the chosen stages for the chosen runs; returns what each stage did."""
    unknown = [stage for stage in stages if stage not in STAGES]
    if unknown:
        raise StudyError(f"stages {unknown}: expected some of {list(STAGES)}")
    runs = study_runs(study, variants, seeds)
    done: Dict[str, Any] = {}
    if "collect" in stages:
        from liquid_nav.data.collect import collect, collect_config

        options = {} if study.data.max_episode_seconds is None else {"max_episode_seconds":
                                                                     study.data.max_episode_seconds}
        config = collect_config(study.data.world, study.data.episodes, study.data.first_seed, workers,
                                camera=study.data.camera, **options)
        done["collected"] = collect(config, Path(study.data.dir), progress=progress).written
    if "train" in stages:
        done["trained"] = train_runs(study, out, runs, progress=progress, log=log)
    if "evaluate" in stages:
        done["flown"] = evaluate_runs(study, out, sorted({seed for _, seed in runs}, key=study.seeds.index),
                                      workers=workers, progress=progress)
    if "evaluate" in stages or "report" in stages:
        done["recorded"] = record_cells(study, out)
    if "report" in stages:
        done["report"] = write_study_report(study, out, Path(report_dir or Path(out) / "report"), command)
    return done
