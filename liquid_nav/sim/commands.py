"""``liquid-nav`` subcommands for the simulator: ``render-world``, and the argument helpers other areas share."""
from __future__ import annotations

import argparse
import io
import os
import sys
from pathlib import Path
from typing import Callable


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


def seed_argument(text: str) -> int:
    """argparse type: an episode seed (a non-negative integer)."""
    try:
        seed = int(text)
    except ValueError:
        seed = -1
    if seed < 0:
        raise argparse.ArgumentTypeError(f"expected a non-negative integer, got {text!r}")
    return seed


def output_file_argument(text: str) -> Path:
    """argparse type: a file the command may create (not a directory; missing parent directories are created)."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a directory; expected a file name")
    _check_creatable(text, path.parent)
    return path


def output_dir_argument(text: str) -> Path:
    """argparse type: a directory the command may create or write into."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is an existing file; expected a directory")
    _check_creatable(text, path)
    return path


def image_file_argument(text: str) -> Path:
    """argparse type: an image file to create; the suffix picks the format and a missing one becomes ``.png``."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = output_file_argument(text)
    if not path.suffix:
        path = output_file_argument(f"{text}.png")
    formats = FigureCanvasBase.get_supported_filetypes()
    if path.suffix[1:].lower() not in formats:
        raise argparse.ArgumentTypeError(f"{text}: {path.suffix!r} is not an image format; expected a name ending in "
                                         + ", ".join(f".{name}" for name in sorted(formats)))
    return path


def _check_creatable(text: str, path: Path) -> None:
    """Refuse ``path`` unless it is, or can be created in, a writable directory."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"{text}: the directory {existing} is not writable")


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


def os_error_line(error: OSError) -> str:
    """A failed file operation in one line: the file and the reason."""
    return f"{error.filename}: {error.strerror}" if error.filename and error.strerror else str(error)


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


