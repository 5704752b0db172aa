"""``liquid-nav collect`` and the ``liquid-nav dataset`` subcommands: ``info``, ``verify``, ``export-bag``, ``import-bag``."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Callable, Dict

from liquid_nav.arguments import seed_argument
from liquid_nav.sim.commands import reporting_world_errors


def register(subparsers: argparse._SubParsersAction) -> None:
    collect = subparsers.add_parser("collect", help="expert demonstrations with recovery noise into an episode store",
                                    description="Fly the privileged expert on seeds FIRST..FIRST+N-1 of a world with "
                                                "recovery noise on the executed command (labels: the clean expert "
                                                "command) and store every episode; re-running continues an "
                                                "interrupted collection (docs/training.md).")
    collect.add_argument("--world", default="forest", help="world name or YAML path (default forest)")
    collect.add_argument("--episodes", type=_positive_int, required=True, help="number of episodes (seeds)")
    collect.add_argument("--out", required=True, help="episode store directory (created if missing)")
    collect.add_argument("--first-seed", type=seed_argument, default=0, help="first episode seed (default 0)")
    collect.add_argument("--workers", type=_positive_int, default=1, help="worker processes (default 1)")
    collect.add_argument("--camera", default="default", choices=["default", "small"],
                         help="camera preset: default 256x144 (serves every policy size), small 128x72")
    collect.add_argument("--timing", help="camera frame timing preset (fixed30, jitter30, drops30, mixed, ...)")
    collect.add_argument("--noise", type=float, nargs=2, metavar=("MIN", "MAX"), default=(0.0, 0.6),
                         help="range of the per-episode recovery noise strength (default 0 0.6; 0 0 = clean)")
    collect.add_argument("--max-episode-seconds", type=float, default=30.0, help="episode timeout (default 30)")
    collect.add_argument("--executor", default="local", choices=["local", "ray"],
                         help="where the workers run: a local process pool (default) or a Ray cluster")
    collect.add_argument("--ray-address", help="Ray cluster address (default: start or join a local one)")
    collect.add_argument("--no-progress", action="store_true", help="no progress bar")
    collect.set_defaults(handler=reporting_world_errors(_reporting_errors(_collect)))

    dataset = subparsers.add_parser("dataset", help="inspect, check and convert episode stores",
                                    description="Episode stores (docs/data.md): summaries, integrity checks and "
                                                "ROS 2 bag (MCAP) export and import.")
    commands = dataset.add_subparsers(dest="dataset_command", metavar="COMMAND", required=True)

    info = commands.add_parser("info", help="episodes, frames, worlds, outcomes, sources, statistics, size",
                               description="Summarise a store: episode and frame counts, worlds, outcomes, sources, "
                                           "frame sizes, per-channel statistics of commands, labels and dts, "
                                           "and the size on disk.")
    info.add_argument("store", metavar="DIR", help="episode store directory")
    info.add_argument("--json", action="store_true", help="print the summary as JSON")
    info.set_defaults(handler=_reporting_errors(_info))

    verify = commands.add_parser("verify", help="read every array of every episode; exit 1 if any is corrupt",
                                 description="Read every episode completely (every chunk is checksummed) and print "
                                             "one line per corrupt episode; exit status 1 if any is corrupt.")
    verify.add_argument("store", metavar="DIR", help="episode store directory")
    verify.set_defaults(handler=_reporting_errors(_verify))

    export = commands.add_parser("export-bag", help="write episodes as ROS 2 bags (MCAP), one directory each",
                                 description="Write each episode as the rosbag2 directory OUT/<episode id> (MCAP, "
                                             "zstd chunks): camera/image_raw, camera/camera_info, "
                                             "liquid_nav/cmd_label, liquid_nav/cmd_executed, odom, tf.")
    export.add_argument("store", metavar="DIR", help="episode store directory")
    export.add_argument("out", metavar="OUT", help="directory to write the bags into")
    export.add_argument("--episodes", nargs="+", metavar="ID", help="episode ids (default: all)")
    export.add_argument("--base-time-ns", type=seed_argument, default=0,
                        help="added to every stamp, e.g. to make episode times valid ROS times (default 0)")
    export.set_defaults(handler=_reporting_errors(_export_bag))

    imported = commands.add_parser("import-bag", help="turn a recorded ROS 2 bag into an episode",
                                   description="Read frames and labels from a rosbag2 bag (directory, .mcap or .db3) "
                                               "and write them as one episode of the store OUT (created if missing). "
                                               "Labels come from a TwistStamped topic or from the body velocities of "
                                               "an Odometry topic, matched to each frame stamp.")
    imported.add_argument("bag", metavar="BAG", help="rosbag2 directory or storage file")
    imported.add_argument("out", metavar="OUT", help="episode store directory")
    imported.add_argument("--episode-id", help="id of the new episode (default: the bag's name)")
    imported.add_argument("--image-topic", default="/camera/image_raw",
                          help="sensor_msgs/Image (rgb8, bgr8, rgba8, bgra8, mono8) or CompressedImage (jpeg, png) "
                               "topic (default /camera/image_raw)")
    imported.add_argument("--label-topic", help="geometry_msgs/TwistStamped labels (default /liquid_nav/cmd_label "
                                                "unless --odom-topic is given)")
    imported.add_argument("--odom-topic", help="nav_msgs/Odometry: the pose, and the labels (body twist) when "
                                               "there is no --label-topic")
    imported.add_argument("--executed-topic", help="TwistStamped executed commands (default /liquid_nav/cmd_executed "
                                                   "if the bag has it, else the labels)")
    imported.add_argument("--camera-info-topic", help="CameraInfo for the intrinsics (default /camera/camera_info "
                                                      "if the bag has it)")
    imported.add_argument("--align", choices=("nearest", "interpolate"), default="nearest",
                          help="how labels and poses are matched to frame stamps (default nearest)")
    imported.add_argument("--max-offset-ms", type=float, default=50.0,
                          help="frames with no sample this close on a needed topic are dropped (default 50)")
    imported.add_argument("--source", help="metadata 'source' of the episode (default: the exported one, or 'bag')")
    imported.add_argument("--overwrite", action="store_true", help="replace an episode with the same id")
    imported.set_defaults(handler=_reporting_errors(_import_bag))


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = seed_argument(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def _reporting_errors(handler: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``handler`` that prints a store, bag or argument error as one line on stderr and returns 1."""
    def run(args: argparse.Namespace) -> int:
        from liquid_nav.data.bags import BagError
        from liquid_nav.data.store import DatasetError

        try:
            return handler(args)
        except (DatasetError, BagError, ValueError, KeyError, OSError) as error:
            message = error.args[0] if isinstance(error, KeyError) and error.args else error
            print(f"error: {message}", file=sys.stderr)
            return 1
    return run


def _collect(args: argparse.Namespace) -> int:
    from liquid_nav.data.collect import NoiseConfig, collect, collect_config

    config = collect_config(args.world, args.episodes, args.first_seed, args.workers, camera=args.camera,
                            noise=NoiseConfig(strength=tuple(args.noise)), timing=args.timing,
                            max_episode_seconds=args.max_episode_seconds)
    summary = collect(config, Path(args.out), progress=not args.no_progress, executor=args.executor,
                      ray_address=args.ray_address)
    print(f"{args.out}: wrote {summary.written} episodes ({summary.frames} frames, {summary.successes} expert "
          f"successes), kept {summary.skipped} already there; {summary.wall_seconds:.1f} s, "
          f"{summary.frames / max(summary.wall_seconds, 1e-9):.0f} frames/s")
    return 0


def _open_store(path: str):
    from liquid_nav.data.store import EpisodeStore

    return EpisodeStore(path, create=False)


def _info(args: argparse.Namespace) -> int:
    summary = _open_store(args.store).summary()
    if args.json:
        print(json.dumps(summary, indent=2, sort_keys=True))
        return 0
    print(f"{summary['root']}: {summary['episodes']} episodes, {summary['frames']} frames ({summary['steps']} steps, "
          f"{summary['duration_s']:.1f} s), {summary['bytes'] / 2 ** 20:.1f} MiB on disk")
    for key in ("worlds", "outcomes", "sources", "frame_shapes"):
        counts = ", ".join(f"{name} {count}" for name, count in summary[key].items())
        print(f"{key.replace('_', ' ')}: {counts or '-'}")
    for name, statistics in summary["statistics"].items():
        _print_statistics(name, statistics)
    for problem in summary["corrupt"]:
        print(f"corrupt: {problem['error']}")
    if summary["temporary_files"]:
        print(f"{summary['temporary_files']} temporary files left by interrupted writes in episodes/ "
              "(safe to delete when no writer is running)")
    return 0


def _print_statistics(name: str, statistics: Dict[str, Any]) -> None:
    if statistics is None:
        print(f"{name}: none")
        return
    print(f"{name} ({statistics['count']} rows):  " + "  ".join(f"{key:>9}" for key in ("mean", "std", "min", "max")))
    for index, channel in enumerate(statistics["channels"]):
        values = "  ".join(f"{statistics[key][index]:9.4f}" for key in ("mean", "std", "min", "max"))
        print(f"  {channel:>9}  {values}")


def _verify(args: argparse.Namespace) -> int:
    store = _open_store(args.store)
    problems = store.verify()
    for _, error in problems:
        print(f"corrupt: {error}", file=sys.stderr)
    total = len(store.episode_ids())
    corrupt = f", {len(problems)} corrupt" if problems else ""
    print(f"{total - len(problems)} of {total} episodes read completely{corrupt}")
    return 1 if problems else 0


def _export_bag(args: argparse.Namespace) -> int:
    from liquid_nav.data.bags import export_episode_bag

    store = _open_store(args.store)
    episode_ids = args.episodes or store.episode_ids()
    unknown = [episode_id for episode_id in episode_ids if not store.has(episode_id)]
    if unknown:
        raise ValueError(f"no episodes {unknown} in {args.store}")
    for episode_id in episode_ids:
        result = export_episode_bag(store, episode_id, Path(args.out) / episode_id, base_time_ns=args.base_time_ns)
        notes = "".join(f"; {note}" for note in result.notes)
        print(f"{episode_id} -> {result.path} ({sum(result.messages.values())} messages on "
              f"{len(result.messages)} topics{notes})")
    return 0


def _import_bag(args: argparse.Namespace) -> int:
    from liquid_nav.data.bags import BagImportConfig, read_bag_episode
    from liquid_nav.data.store import EpisodeStore, check_episode_id

    config = BagImportConfig(image_topic=args.image_topic, label_topic=args.label_topic, odom_topic=args.odom_topic,
                             executed_topic=args.executed_topic, camera_info_topic=args.camera_info_topic,
                             alignment=args.align, max_offset_s=args.max_offset_ms / 1e3)
    bag = Path(args.bag)
    episode_id = check_episode_id(args.episode_id or (bag.stem if bag.is_file() else bag.name))
    store = EpisodeStore(args.out)
    if store.has(episode_id) and not args.overwrite:
        raise ValueError(f"episode {episode_id!r} already exists in {args.out} (use --overwrite or --episode-id)")
    episode = read_bag_episode(bag, config)
    if args.source:
        episode.metadata["source"] = args.source
    store.write(episode_id, episode.record, episode.metadata, overwrite=args.overwrite)
    dropped = f", {episode.dropped_frames} frames dropped (no sample within {args.max_offset_ms:g} ms)" \
        if episode.dropped_frames else ""
    print(f"{bag} -> {args.out} episode {episode_id}: {len(episode.record.stamps_ns)} frames, "
          f"{episode.record.steps} commands{dropped}")
    return 0
