"""Sample episodes of a run, flown again with the camera recorded: videos, saliency maps and MCAP bags.

For every model and world, the experiment's sample seeds and conditions (``samples`` in the experiment) are
re-flown in this process (episodes are deterministic, so they repeat the logged ones; a difference is noted
in the report) and written as

* ``videos/<episode>.mp4``: what the pilot saw (the condition's perturbation included) beside a top-down map
  with the flight so far, the command as bars and the outcome at the end;
* ``samples/`` (an episode store, the clean camera view) and ``bags/<episode>/`` (rosbag2 / MCAP through
  :mod:`liquid_nav.data.bags`) that replay in Foxglove;
* ``saliency/saliency_<world>.png``: VisualBackProp of each checkpoint model on the same frames (the
  expert's flight of the first sample seed), so every model is asked about the same images.

Existing files are kept: re-running finishes what is missing.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np

from liquid_nav.evaluate.conditions import NOMINAL
from liquid_nav.evaluate.episodes import EpisodeRunner, FlownEpisode
from liquid_nav.evaluate.experiment import REFERENCE, EpisodeTask, ExperimentConfig
from liquid_nav.evaluate.rundir import load_run, row_key
from liquid_nav.files import atomic_write_text
from liquid_nav.sim.worlds import Scene

VIDEOS_DIR, SALIENCY_DIR, STORE_DIR, BAGS_DIR = "videos", "saliency", "samples", "bags"
NOTES_FILE = "media_notes.json"
PANEL_HEIGHT = 288
SALIENCY_FRAMES = 4
HOLD_SECONDS = 1.0  # the last frame, with the outcome, stays this long
COMMAND_SCALE = (3.0, 3.0, 1.5, 1.5)  # bar full scale: vx, vy, vz (m/s), yaw rate (rad/s)


def sample_name(task: EpisodeTask) -> str:
    """A file and episode-store name for a task (letters, digits, ``_ . -``)."""
    text = f"{task.model}__{task.world}__{task.condition.label}__{task.seed}"
    return re.sub(r"[^A-Za-z0-9_.-]", "-", text)


def sample_tasks(experiment: ExperimentConfig) -> List[EpisodeTask]:
    labels = {model.label for model in experiment.models}
    return [task for task in experiment.tasks() if task.model in labels and experiment.is_sample(task)]


def write_samples(run_dir: Path) -> None:
    """Write the missing videos, bags and saliency maps of ``run_dir`` (see the module docstring)."""
    from liquid_nav.media import write_video

    run_dir = Path(run_dir)
    experiment, rows = load_run(run_dir)
    logged = {row_key(row): row for row in rows}
    notes: List[str] = []
    runner = EpisodeRunner(experiment, threads=0)
    try:
        for task in sample_tasks(experiment):
            name = sample_name(task)
            bag = run_dir / BAGS_DIR / name
            if list((run_dir / VIDEOS_DIR).glob(f"{name}.*")) and bag.is_dir():
                continue
            flown = runner.fly(task, keep_frames=True)
            before = logged.get(task.key)
            if before is not None and (before["outcome"], before["frames_seen"]) != (flown.row["outcome"],
                                                                                    flown.row["frames_seen"]):
                notes.append(f"{name}: re-flown as {flown.row['outcome']} in {flown.row['frames_seen']} frames, "
                             f"logged as {before['outcome']} in {before['frames_seen']} (not deterministic)")
            rate = experiment.env_config(task.world, task.condition, render=True).frame_timing().rate_hz
            (run_dir / VIDEOS_DIR).mkdir(parents=True, exist_ok=True)
            write_video(run_dir / VIDEOS_DIR / name, video_frames(task, flown, rate), rate)
            if not bag.is_dir():
                _export_bag(run_dir, name, task, flown, experiment.camera)
        notes += write_saliency(run_dir, experiment, runner)
    finally:
        runner.close()
    atomic_write_text(run_dir / NOTES_FILE, json.dumps(notes, indent=1))


def media_files(run_dir: Path) -> Dict[str, List[str]]:
    """The videos, saliency maps and bags of a run directory (paths relative to it) and the notes."""
    run_dir = Path(run_dir)

    def listed(directory: str, pattern: str) -> List[str]:
        return sorted(str(path.relative_to(run_dir)) for path in (run_dir / directory).glob(pattern))

    notes_file = run_dir / NOTES_FILE
    return {"videos": listed(VIDEOS_DIR, "*.mp4") + listed(VIDEOS_DIR, "*.gif"),
            "saliency": listed(SALIENCY_DIR, "*.png"), "bags": listed(BAGS_DIR, "*"),
            "notes": json.loads(notes_file.read_text(encoding="utf-8")) if notes_file.is_file() else []}


def _export_bag(run_dir: Path, name: str, task: EpisodeTask, flown: FlownEpisode, camera: str) -> None:
    from liquid_nav.data.bags import export_episode_bag
    from liquid_nav.data.store import EpisodeStore
    from liquid_nav.sim.camera import CameraConfig, OnboardCamera

    config = CameraConfig.preset(camera)
    fx, fy, cx, cy = OnboardCamera(config).intrinsics()
    store = EpisodeStore(run_dir / STORE_DIR)
    if not store.has(name):
        store.write(name, flown.record, {"source": "evaluation", "model": task.model, "condition": task.condition.label,
                                         "camera_fov_deg": config.fov_deg,
                                         "camera_intrinsics": {"fx": fx, "fy": fy, "cx": cx, "cy": cy}})
    export_episode_bag(store, name, run_dir / BAGS_DIR / name)


# --- videos ----------------------------------------------------------------------------------------------
class _MapPanel:
    """A top-down map of the episode's scene as an RGB image, with world -> pixel coordinates."""

    def __init__(self, scene: Scene, positions: np.ndarray, size: int) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        from liquid_nav.evaluate.plots import draw_zoomed

        figure, ax = plt.subplots(figsize=(size / 100, size / 100), dpi=100)
        draw_zoomed(ax, scene, np.vstack([positions[:, :2], np.asarray(scene.target_position[:2])[None]]), 3.0)
        ax.get_legend().remove()
        ax.set_title("")
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(labelsize=6)
        figure.subplots_adjust(left=0.1, right=0.98, bottom=0.07, top=0.98)
        figure.canvas.draw()
        self.image = np.asarray(figure.canvas.buffer_rgba())[:, :, :3].copy()
        transform, height = ax.transData, self.image.shape[0]
        self.pixels = lambda xy: np.column_stack([transform.transform(xy)[:, 0], height - transform.transform(xy)[:, 1]])
        plt.close(figure)


def _put(image: np.ndarray, text: str, origin: Tuple[int, int], scale: float = 0.45,
         color: Tuple[int, int, int] = (255, 255, 255)) -> None:
    import cv2

    x, y = origin
    for dx, dy in ((-1, -1), (-1, 1), (1, -1), (1, 1)):  # a dark outline (a thicker stroke would widen the glyphs)
        cv2.putText(image, text, (x + dx, y + dy), cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(image, text, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, color, 1, cv2.LINE_AA)


def _command_bars(image: np.ndarray, command: np.ndarray) -> None:
    import cv2

    height = image.shape[0]
    for index, (name, value, scale) in enumerate(zip(("vx", "vy", "vz", "wz"), command, COMMAND_SCALE)):
        y = height - 16 - 18 * (3 - index)
        cv2.rectangle(image, (40, y - 6), (160, y + 6), (40, 40, 40), -1)
        end = int(100 + 60 * float(np.clip(value / scale, -1, 1)))
        cv2.rectangle(image, (min(100, end), y - 5), (max(100, end), y + 5), (80, 200, 255), -1)
        cv2.line(image, (100, y - 7), (100, y + 7), (255, 255, 255), 1)
        _put(image, f"{name}", (8, y + 5), 0.4)
        _put(image, f"{value:+.2f}", (166, y + 5), 0.4)


def video_frames(task: EpisodeTask, flown: FlownEpisode, rate: float) -> List[np.ndarray]:
    """The video of one flown episode: the pilot's view with the command beside the map of the flight."""
    import cv2

    record = flown.record
    views = list(flown.seen) + [record.frames[-1]]
    panel = _MapPanel(flown.scene, record.positions, PANEL_HEIGHT)
    track = panel.pixels(record.positions[:, :2]).astype(np.int32)
    success = record.success
    frames = []
    for index, view in enumerate(views):
        height, width = view.shape[:2]
        left = cv2.resize(view, (round(width * PANEL_HEIGHT / height), PANEL_HEIGHT), interpolation=cv2.INTER_NEAREST)
        _put(left, f"{task.model} | {task.world} | {task.condition.label} | seed {task.seed}", (8, 18))
        _put(left, f"t {record.stamps_ns[index] * 1e-9:5.1f} s   target {record.distances[index]:5.1f} m", (8, 38))
        command = record.commands[min(index, record.steps - 1)] if record.steps else np.zeros(4)
        _command_bars(left, command)
        right = panel.image.copy()
        cv2.polylines(right, [track[:index + 1]], False, (0, 0, 0), 2, cv2.LINE_AA)
        x, y = track[index]
        yaw = record.yaws[index]
        cv2.circle(right, (int(x), int(y)), 5, (30, 90, 255), -1)
        cv2.line(right, (int(x), int(y)), (int(x + 14 * np.cos(yaw)), int(y - 14 * np.sin(yaw))), (30, 90, 255), 2)
        frame = np.concatenate([left, cv2.resize(right, (PANEL_HEIGHT, PANEL_HEIGHT))], axis=1)
        frames.append(frame)
    outcome = frames[-1].copy()
    color = (60, 220, 60) if success else (255, 80, 60)
    _put(outcome, f"{record.outcome.replace('_', ' ').upper()}: {record.reason}"[:70], (8, PANEL_HEIGHT // 2), 0.55,
         color)
    frames[-1] = outcome
    return frames + [outcome] * int(HOLD_SECONDS * rate)


# --- saliency --------------------------------------------------------------------------------------------
def write_saliency(run_dir: Path, experiment: ExperimentConfig, runner: EpisodeRunner) -> List[str]:
    """``saliency/saliency_<world>.png`` for every world; returns notes on models without torch weights."""
    from liquid_nav.models.checkpoint import load_checkpoint

    checkpoints = [model for model in experiment.models if model.kind == "checkpoint"]
    notes = [f"{model.label}: no saliency map (an ONNX graph has no torch weights; give its checkpoint)"
             for model in experiment.models if model.kind == "onnx"]
    if not checkpoints:
        return notes
    policies = {model.label: load_checkpoint(model.source).policy for model in checkpoints}
    for world in dict.fromkeys(task.world for task in experiment.tasks()):
        path = run_dir / SALIENCY_DIR / f"saliency_{world}.png"
        if path.is_file():
            continue
        flown = runner.fly(EpisodeTask(REFERENCE, world, NOMINAL, experiment.first_seed), keep_frames=True)
        frames = flown.record.frames
        picks = np.linspace(0, len(frames) - 1, SALIENCY_FRAMES + 2).round().astype(int)[1:-1]
        _saliency_figure(path, world, experiment.first_seed, frames[picks], policies)
    return notes


def _saliency_figure(path: Path, world: str, seed: int, frames: np.ndarray, policies: Dict[str, Any]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from liquid_nav.evaluate.saliency import visual_backprop
    from liquid_nav.models.preprocessing import prepare_frame

    figure, axes = plt.subplots(1 + len(policies), len(frames), figsize=(3.2 * len(frames), 2.1 * (1 + len(policies))),
                                squeeze=False)
    for column, frame in enumerate(frames):
        axes[0][column].imshow(frame)
        axes[0][column].set_title(f"frame {column + 1}", fontsize=8)
    for row, (label, policy) in enumerate(policies.items(), start=1):
        inputs = np.stack([prepare_frame(frame, policy.config.preprocessing) for frame in frames])
        maps = visual_backprop(policy.perception, inputs)
        for column, (image, heat) in enumerate(zip(inputs, maps)):
            axes[row][column].imshow(image)
            axes[row][column].imshow(heat, cmap="inferno", alpha=0.6, vmin=0, vmax=1)
        axes[row][0].set_ylabel(label, fontsize=9)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    axes[0][0].set_ylabel("camera", fontsize=9)
    figure.suptitle(f"VisualBackProp: what each model looks at ({world}, the expert's flight of seed {seed})",
                    fontsize=10)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)
