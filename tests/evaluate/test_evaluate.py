"""Small real evaluations: the expert succeeds, hover times out, a pilot flying into a tree collides, seeds are
paired across models, a run resumes exactly, and the report, plots, videos, saliency maps and bags exist."""
import json
import math

import cv2
import numpy as np
import pytest
from PIL import Image

from liquid_nav.cli import main
from liquid_nav.evaluate.conditions import parse_condition_argument
from liquid_nav.evaluate.episodes import EpisodeRunner, episode_row
from liquid_nav.evaluate.experiment import EpisodeTask, ExperimentConfig, ExperimentError, ModelSpec, load_experiment
from liquid_nav.evaluate.rundir import EPISODES_FILE, load_run
from liquid_nav.evaluate.run import evaluate, fly_episodes
from liquid_nav.models.checkpoint import save_checkpoint
from liquid_nav.sim.env import FlyToTargetEnv
from liquid_nav.sim.rollout import run_episode
from tests.models.conftest import small_policy

WALL_CLOCK = ("latency_ms_mean", "latency_ms_p95", "wall_s")


def deterministic(row):
    return {key: value for key, value in row.items() if key not in WALL_CLOCK}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("models") / "cfc.lnav"
    save_checkpoint(path, small_policy("cfc_ncp", seed=2), {"note": "untrained"})
    return path


@pytest.fixture(scope="module")
def experiment(checkpoint):
    return load_experiment(models=[str(checkpoint), "expert", "hover"], worlds=["forest"],
                           conditions=parse_condition_argument("noise=20"), episodes=2, camera="small",
                           max_episode_seconds=8.0)


@pytest.fixture(scope="module")
def run_dir(experiment, tmp_path_factory):
    out = tmp_path_factory.mktemp("evaluation")
    evaluate(experiment, out, progress=False)
    return out


def test_experiment_cells_and_labels(experiment):
    assert [model.label for model in experiment.models] == ["cfc_ncp", "expert", "hover"]
    assert [c.label for c in experiment.all_conditions()] == ["nominal", "noise=20"]
    assert len(experiment.tasks()) == 3 * 2 * 2  # models x conditions x seeds (the expert is a model here)
    with pytest.raises(ExperimentError, match="twice"):
        ExperimentConfig(models=(ModelSpec("a", "hover"), ModelSpec("a", "expert")), worlds=("forest",))


def test_the_expert_succeeds_and_hover_times_out(run_dir):
    _, rows = load_run(run_dir)
    expert = [row for row in rows if row["model"] == "expert"]
    hover = [row for row in rows if row["model"] == "hover"]
    assert len(expert) == len(hover) == 4
    assert all(row["outcome"] == "success" and row["time_to_target_s"] > 0 for row in expert)
    assert all(row["outcome"] == "timeout" and row["duration_s"] == pytest.approx(8.0) for row in hover)
    assert all(row["path_length_m"] < 0.2 and row["command_jerk"] == 0 for row in hover)


def test_every_model_flies_the_same_scenes(run_dir):
    _, rows = load_run(run_dir)
    scenes = {}
    for row in rows:
        scene = (row["start_distance_m"], tuple(row["target_xy"]), tuple(row["trajectory_xy"][0]))
        scenes.setdefault((row["condition"], row["seed"]), set()).add(scene)
    assert len(scenes) == 4 and all(len(variants) == 1 for variants in scenes.values())
    assert len({next(iter(v)) for v in scenes.values()}) == 2  # two seeds, two scenes (noise leaves them alone)


class IntoTheNearestTrunk:
    """Flies level and straight at the nearest tree trunk (privileged)."""

    def __init__(self, env):
        self.env = env
        self.trunk = np.zeros(2)

    def reset(self, info):
        start = np.asarray(info["position"][:2])
        trunks = [np.asarray(p.position[:2]) for p in self.env.unwrapped.scene.layout.primitives
                  if p.shape == "cylinder" and p.half_extents[2] > 2.0]
        self.trunk = min(trunks, key=lambda center: np.linalg.norm(center - start))

    def act(self, observation, info):
        to_trunk = self.trunk - np.asarray(info["position"][:2])
        heading = math.atan2(to_trunk[1], to_trunk[0]) - info["yaw"]
        return np.array([2.0 * math.cos(heading), 2.0 * math.sin(heading), 0.0, 0.0], np.float32)


def test_a_pilot_flying_into_an_obstacle_is_a_collision():
    env = FlyToTargetEnv(world="forest", render_observations=False, max_episode_seconds=20.0)
    task = EpisodeTask("ram", "forest", parse_condition_argument("nominal")[0], 500_000)
    try:
        record = run_episode(env, IntoTheNearestTrunk(env), task.seed)
        row = episode_row(task, record, env.scene, 0.42, [0.001] * record.steps, 1.0)
    finally:
        env.close()
    assert row["outcome"] == "collision" and not row["success"] and row["time_to_target_s"] is None
    assert row["min_clearance_m"] < 0.1


def test_results_json_cells_and_paired_tests(run_dir):
    results = json.loads((run_dir / "results.json").read_text())
    cells = {(cell["model"], cell["label"]): cell for cell in results["cells"]}
    assert len(cells) == 6
    expert = cells[("expert", "nominal")]
    assert expert["world"] == "forest" and expert["condition"] == "nominal" and expert["strength"] is None
    assert (expert["episodes"], expert["successes"], expert["spl"], expert["path_ratio_median"]) == (2, 2, 1.0, 1.0)
    assert expert["wilson_low"] == pytest.approx(0.3424, abs=1e-4) and expert["wilson_high"] == 1.0
    assert cells[("hover", "noise=20")]["strength"] == 20.0 and cells[("hover", "noise=20")]["outcomes"]["timeout"] == 2
    pooled = next(item for item in results["comparisons"] if item["model_a"] == "expert"
                  and item["model_b"] == "hover" and item["world"] == "all")
    assert (pooled["pairs"], pooled["only_a"], pooled["only_b"]) == (4, 4, 0)
    assert pooled["p_value"] == pytest.approx(2 / 16)


def png_has_content(path):
    pixels = np.asarray(Image.open(path).convert("RGB"), dtype=float)
    return pixels.shape[0] > 100 and pixels.std() > 10


def test_report_files_exist_and_pictures_are_not_empty(run_dir):
    report = (run_dir / "report.md").read_text()
    assert "| cfc_ncp |" in report and "Paired comparisons" in report
    csv_lines = (run_dir / "episodes.csv").read_text().splitlines()
    assert len(csv_lines) == 1 + 12 and "path_ratio" in csv_lines[0]
    for name in ("success_by_world", "outcomes_by_world", "overview", "success_vs_noise",
                 "success_vs_start_distance", "topdown_forest"):
        assert png_has_content(run_dir / "plots" / f"{name}.png"), name
        assert f"plots/{name}.png" in report
    assert png_has_content(run_dir / "saliency" / "saliency_forest.png")
    videos = sorted((run_dir / "videos").glob("*.mp4"))
    assert [video.stem for video in videos] == [f"{m}__forest__nominal__500000" for m in ("cfc_ncp", "expert", "hover")]
    capture = cv2.VideoCapture(str(videos[1]))
    ok, frame = capture.read()
    assert ok and frame.shape == (288, 512 + 288, 3) and frame.std() > 10
    assert capture.get(cv2.CAP_PROP_FRAME_COUNT) > 30
    bags = sorted((run_dir / "bags").iterdir())
    assert len(bags) == 3 and all(list(bag.glob("*.mcap")) for bag in bags)
    assert json.loads((run_dir / "media_notes.json").read_text()) == []  # the samples re-flew identically


def test_a_rerun_flies_only_what_an_interrupted_run_left_and_gets_the_same_numbers(run_dir, experiment):
    log = run_dir / EPISODES_FILE
    lines = log.read_text().splitlines()
    log.write_text("\n".join(lines[:-3]) + "\n" + lines[-3][:40])  # killed mid-write: two lost, one cut short
    assert fly_episodes(experiment, run_dir, progress=False) == 3
    again = log.read_text().splitlines()
    assert again[:-3] == lines[:-3] and len(again) == len(lines)
    before = sorted(json.dumps(deterministic(json.loads(line)), sort_keys=True) for line in lines)
    after = sorted(json.dumps(deterministic(json.loads(line)), sort_keys=True) for line in again)
    assert after == before
    assert fly_episodes(experiment, run_dir, progress=False) == 0


def test_a_run_directory_refuses_other_settings(run_dir, checkpoint):
    other = load_experiment(models=[str(checkpoint), "expert", "hover"], worlds=["forest"], episodes=2,
                            camera="small", max_episode_seconds=5.0)
    with pytest.raises(ExperimentError, match="max_episode_seconds"):
        fly_episodes(other, run_dir, progress=False)


def test_the_runner_flies_what_the_log_holds(run_dir, experiment):
    _, rows = load_run(run_dir)
    runner = EpisodeRunner(experiment)
    try:
        task = next(t for t in experiment.tasks() if t.model == "cfc_ncp" and t.condition.label == "noise=20")
        flown = runner.fly(task)
    finally:
        runner.close()
    logged = next(row for row in rows if row["model"] == "cfc_ncp" and row["condition"] == "noise"
                  and row["seed"] == task.seed)
    assert deterministic(flown.row) == deterministic(logged)


def test_cli_help_and_errors(capsys, tmp_path):
    for command in (["evaluate", "--help"], ["report", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            main(command)
        assert exit_info.value.code == 0
    assert "--model" in capsys.readouterr().out
    assert main(["evaluate", "--list-conditions"]) == 0
    assert "target_occlusion" in capsys.readouterr().out
    assert main(["evaluate", "--model", "hover", "--world", "forest", "--condition", "smoke", "--out",
                 str(tmp_path / "x")]) == 2
    assert "unknown condition 'smoke'" in capsys.readouterr().err
    assert main(["report", str(tmp_path)]) == 2


def test_the_standard_suite_loads(checkpoint):
    suite = load_experiment("ood", models=[f"cfc={checkpoint}"])
    labels = [model.label for model in suite.models]
    assert labels[-1] == "cfc" and {"expert", "hover"} <= set(labels)
    assert {"forest", "urban"} <= {w for w in suite.worlds}
    names = {condition.name for condition in suite.conditions}
    assert {"noise", "target_shape", "distractors", "range", "rate", "wind"} <= names
