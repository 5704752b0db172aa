"""``liquid-nav`` subcommands for the simulator: ``render-world``, ``demo`` and ``expert-eval``."""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Callable, List


def register(subparsers: argparse._SubParsersAction) -> None:
    render = subparsers.add_parser("render-world", help="save an onboard view and a top-down map of a world",
                                   description="Sample the scene of one seed from a world file and save the "
                                               "drone's first onboard camera frame next to a top-down map.")
    render.add_argument("world", help="world name (sim_worlds/<name>.yaml) or path to a world YAML file")
    render.add_argument("--seed", type=_seed, default=0, help="episode seed (default 0)")
    render.add_argument("--out", required=True, help="PNG file to write")
    render.add_argument("--camera", default="default", choices=["default", "small"], help="camera preset")
    render.set_defaults(handler=_reporting_world_errors(_render_world))

    demo = subparsers.add_parser("demo", help="fly the expert in a forest and an urban world; write videos and plots",
                                 description="Fly the privileged expert once per world with the onboard camera "
                                             "on; write <world>.mp4 (or .gif when MP4 cannot be written) and "
                                             "<world>_topdown.png into DIR and print a summary.")
    demo.add_argument("--out", required=True, help="output directory")
    demo.add_argument("--worlds", nargs="+", default=["forest", "urban"], help="worlds to fly (default: forest urban)")
    demo.add_argument("--seed", type=_seed, default=0, help="episode seed (default 0)")
    demo.set_defaults(handler=_reporting_world_errors(_demo))

    evaluate = subparsers.add_parser("expert-eval", help="success rate of the privileged expert over many seeds",
                                     description="Fly the expert (privileged state only, no rendering) over "
                                                 "seeds start..start+N-1 and print the success rate and each "
                                                 "failure with its reason.")
    evaluate.add_argument("--world", required=True, help="world name or path")
    evaluate.add_argument("--episodes", type=int, default=100, help="number of seeds (default 100)")
    evaluate.add_argument("--start-seed", type=_seed, default=0, help="first seed (default 0)")
    evaluate.add_argument("--min-success", type=float, default=None,
                          help="exit with status 1 when the success rate is below this fraction")
    evaluate.set_defaults(handler=_reporting_world_errors(_expert_eval))


def _seed(text: str) -> int:
    """argparse type: an episode seed (a non-negative integer)."""
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return seed


def _reporting_world_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``handler`` that prints a world file's error (loading it or placing a scene) and returns 1."""
    def run(args: argparse.Namespace) -> int:
        from liquid_nav.sim.worlds import WorldFileError

        try:
            return handler(args)
        except WorldFileError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return run


def _make_env(world: str, **options):
    from liquid_nav.sim.env import FlyToTargetEnv

    return FlyToTargetEnv(world=world, **options)


def _render_world(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from liquid_nav.sim.topdown import draw_topdown

    env = _make_env(args.world, camera=args.camera)
    try:
        frame, info = env.reset(seed=args.seed)
        scene = env.scene
    finally:
        env.close()
    figure, (view, plan) = plt.subplots(1, 2, figsize=(13, 5.5), gridspec_kw={"width_ratios": [1.3, 1]})
    view.imshow(frame)
    view.set_title(f"onboard camera {frame.shape[1]}x{frame.shape[0]} - target {info['distance']:.1f} m, "
                   f"bearing {info['bearing']:.2f} rad")
    view.axis("off")
    draw_topdown(plan, scene)
    figure.tight_layout()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(args.out, dpi=110)
    plt.close(figure)
    print(f"wrote {args.out} ({info['world']}, seed {args.seed}, layout {scene.layout.layout_seed}, "
          f"{len(scene.layout.primitives)} primitives)")
    return 0


def write_video(path_without_suffix: Path, frames: List, fps: float) -> Path:
    """Write RGB frames as MP4 (OpenCV); fall back to an animated GIF (Pillow) when MP4 fails."""
    import cv2
    import numpy as np

    height, width = frames[0].shape[:2]
    mp4 = path_without_suffix.with_suffix(".mp4")
    writer = cv2.VideoWriter(str(mp4), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (width, height))
    if writer.isOpened():
        for frame in frames:
            writer.write(cv2.cvtColor(np.ascontiguousarray(frame), cv2.COLOR_RGB2BGR))
        writer.release()
        if mp4.is_file() and mp4.stat().st_size > 0:
            return mp4
    from PIL import Image

    gif = path_without_suffix.with_suffix(".gif")
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(gif, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
    return gif


def _demo(args: argparse.Namespace) -> int:
    from liquid_nav.expert import PrivilegedExpert
    from liquid_nav.expert.rollout import fly_expert_episode
    from liquid_nav.sim.topdown import save_topdown

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    failures = 0
    for world in args.worlds:
        env = _make_env(world)
        try:
            started = time.perf_counter()
            episode = fly_expert_episode(env, PrivilegedExpert.from_env(env), args.seed, record_frames=True)
            wall = time.perf_counter() - started
            video = write_video(out / world, episode.frames, env.config.control_hz)
            plot = out / f"{world}_topdown.png"
            save_topdown(str(plot), env.scene, episode.positions,
                         title=f"{world}, seed {args.seed}: {episode.outcome} in {episode.duration:.1f} s")
        finally:
            env.close()
        failures += not episode.success
        path_length = float((((episode.positions[1:] - episode.positions[:-1]) ** 2).sum(axis=1) ** 0.5).sum())
        print(f"{world:>14}: {episode.outcome} ({episode.reason}); {episode.duration:.1f} s simulated, "
              f"{path_length:.1f} m flown, {len(episode.frames)} frames, {wall:.1f} s wall -> {video}, {plot}")
    return 1 if failures else 0


def _expert_eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from liquid_nav.expert import PrivilegedExpert
    from liquid_nav.expert.rollout import fly_expert_episode

    if args.episodes < 1:
        print("error: --episodes must be >= 1", file=sys.stderr)
        return 2
    env = _make_env(args.world, render_observations=False)
    expert = PrivilegedExpert.from_env(env)
    failures = []
    durations = []
    started = time.perf_counter()
    try:
        seeds = range(args.start_seed, args.start_seed + args.episodes)
        for seed in tqdm(seeds, desc=f"expert-eval {env.world.name}", unit="episode"):
            episode = fly_expert_episode(env, expert, seed)
            durations.append(episode.duration)
            if not episode.success:
                failures.append(episode)
    finally:
        env.close()
    rate = 1.0 - len(failures) / args.episodes
    print(f"world {args.world}: success {args.episodes - len(failures)}/{args.episodes} = {100 * rate:.1f} % "
          f"(seeds {args.start_seed}..{args.start_seed + args.episodes - 1}; mean episode "
          f"{sum(durations) / len(durations):.1f} s simulated; {time.perf_counter() - started:.1f} s wall)")
    for episode in failures:
        print(f"  seed {episode.seed}: {episode.outcome}: {episode.reason}")
    return 1 if args.min_success is not None and rate < args.min_success else 0
