"""``liquid-nav`` subcommands for the simulator: ``render-world``, and the argument helpers other areas share."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable


def register(subparsers: argparse._SubParsersAction) -> None:
    render = subparsers.add_parser("render-world", help="save an onboard view and a top-down map of a world",
                                   description="Sample the scene of one seed from a world file and save the "
                                               "drone's first onboard camera frame next to a top-down map.")
    render.add_argument("world", help="world name (sim_worlds/<name>.yaml) or path to a world YAML file")
    render.add_argument("--seed", type=seed_argument, default=0, help="episode seed (default 0)")
    render.add_argument("--out", required=True, help="PNG file to write")
    render.add_argument("--camera", default="default", choices=["default", "small"], help="camera preset")
    render.set_defaults(handler=reporting_world_errors(_render_world))


def seed_argument(text: str) -> int:
    """argparse type: an episode seed (a non-negative integer)."""
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return seed


def reporting_world_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``handler`` that prints a world file's error (loading it or placing a scene) and returns 1."""
    def run(args: argparse.Namespace) -> int:
        from liquid_nav.sim.worlds import WorldFileError

        try:
            return handler(args)
        except WorldFileError as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
    return run


def make_env(world: str, **options):
    from liquid_nav.sim.env import FlyToTargetEnv

    return FlyToTargetEnv(world=world, **options)


def _render_world(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from liquid_nav.sim.topdown import draw_topdown

    env = make_env(args.world, camera=args.camera)
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


