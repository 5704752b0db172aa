"""``liquid-nav`` subcommands for the simulator: ``render-world``, and the world-error wrapper other areas share."""
from __future__ import annotations

import argparse
import io
import sys
from typing import Callable

from liquid_nav.arguments import image_file_argument, os_error_line, seed_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    render = subparsers.add_parser("render-world", help="save an onboard view and a top-down map of a world",
                                   description="Sample the scene of one seed from a world file and save the "
                                               "drone's first onboard camera frame next to a top-down map.")
    render.add_argument("world", help="world name (sim_worlds/<name>.yaml) or path to a world YAML file")
    render.add_argument("--seed", type=seed_argument, default=0, help="episode seed (default 0)")
    render.add_argument("--out", type=image_file_argument, required=True,
                        help="image file to write; its suffix picks the format (none: .png is added)")
    render.add_argument("--camera", default="default", choices=["default", "small"], help="camera preset")
    render.set_defaults(handler=reporting_world_errors(_render_world))


def reporting_world_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``handler`` that prints a world file's error (loading it or placing a scene) or a failed file operation
    as one line and returns 1."""
    def run(args: argparse.Namespace) -> int:
        from liquid_nav.sim.worlds import WorldFileError

        try:
            return handler(args)
        except WorldFileError as error:
            print(f"error: {error}", file=sys.stderr)
        except OSError as error:
            print(f"error: {os_error_line(error)}", file=sys.stderr)
        return 1
    return run


def make_env(world: str, **options):
    from liquid_nav.sim.env import FlyToTargetEnv

    return FlyToTargetEnv(world=world, **options)


def _render_world(args: argparse.Namespace) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from liquid_nav.files import atomic_write_bytes
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
    image = io.BytesIO()
    figure.savefig(image, format=args.out.suffix[1:].lower(), dpi=110)
    plt.close(figure)
    atomic_write_bytes(args.out, image.getvalue())
    print(f"wrote {args.out} ({info['world']}, seed {args.seed}, layout {scene.layout.layout_seed}, "
          f"{len(scene.layout.primitives)} primitives)")
    return 0


