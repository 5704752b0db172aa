"""``liquid-nav evaluate`` (fly models x worlds x conditions, paired seeds, resumable) and ``liquid-nav report``."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from liquid_nav.arguments import output_dir_argument, seed_argument
from liquid_nav.sim.commands import reporting_world_errors

EXAMPLES = """examples:
  liquid-nav evaluate --model runs/cfc/policy.lnav expert hover --world forest urban --episodes 20 --out out/eval
  liquid-nav evaluate --experiment ood --model cfc=runs/cfc/policy.lnav lstm=runs/lstm/policy.lnav --out out/ood
  liquid-nav evaluate --model m.onnx --world urban --condition noise=10,20 rate wind=4+rate=10 --out out/x
  liquid-nav evaluate --experiment ood --model m.lnav --executor ray --ray-address auto --out out/ood
  liquid-nav evaluate --list-conditions

--model, --world and --condition take several values; --model adds to an experiment file's models, every other
option replaces the file's value. Re-running a command continues where it stopped.
"""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    from liquid_nav.executor import EXECUTORS
    from liquid_nav.runtime.backends import BACKEND_NAMES

    evaluate = subparsers.add_parser(
        "evaluate", help="closed-loop evaluation of models across worlds and conditions (paired seeds)",
        description="Fly every model on the same seeds in every world x condition cell, append each episode\n"
                    "to OUT/episodes.jsonl as it finishes (re-running skips what is done), then write sample\n"
                    "videos, saliency maps, MCAP bags and the report (results.json, episodes.csv, report.md,\n"
                    "plots/). Policies fly through the controller node's core and backend (docs/evaluation.md).",
        epilog=EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    evaluate.add_argument("--experiment", help="experiment YAML file, or a name in config/eval (ood: the standard suite)")
    evaluate.add_argument("--model", nargs="+", action="extend", default=[], metavar="MODEL",
                          help="checkpoint (.lnav) or exported .onnx, LABEL=PATH, expert (upper bound) or hover (floor)")
    evaluate.add_argument("--world", nargs="+", action="extend", metavar="WORLD", help="world names or YAML paths")
    evaluate.add_argument("--condition", nargs="+", action="extend", metavar="CONDITION",
                          help="NAME (standard levels), NAME=L1,L2, NAME=L+NAME=L (a composite), or all; nominal is "
                               "always included (--list-conditions shows them)")
    evaluate.add_argument("--episodes", type=_positive, help="seeds per cell (default 10)")
    evaluate.add_argument("--first-seed", type=seed_argument, help="first seed (default 500000)")
    evaluate.add_argument("--backend", choices=BACKEND_NAMES, help="inference backend (default onnxruntime)")
    evaluate.add_argument("--camera", choices=["default", "small"], help="camera preset (default: default)")
    evaluate.add_argument("--max-episode-seconds", type=float, help="episode time limit (default 40)")
    evaluate.add_argument("--safety", help="the safety gate policies fly behind: sim (safety_node in config/sim.yaml, "
                                           "the default), none, or a ROS 2 params file")
    evaluate.add_argument("--workers", type=_positive, default=None,
                          help="worker processes (default 1 local; with ray, one per cluster CPU)")
    evaluate.add_argument("--executor", choices=EXECUTORS, default="local", help="local process pool or Ray")
    evaluate.add_argument("--ray-address", help="Ray cluster address (default: start a local one; auto: find one)")
    evaluate.add_argument("--no-media", action="store_true", help="skip videos, saliency maps and bags")
    evaluate.add_argument("--list-conditions", action="store_true", help="print the condition families and exit")
    evaluate.add_argument("--out", type=output_dir_argument, help="run directory (created; an existing one is resumed)")
    evaluate.set_defaults(handler=reporting_world_errors(reporting_experiment_errors(_evaluate)))

    demo = subparsers.add_parser(
        "demo", help="fly the shipped cfc_ncp controller in a forest and a city; videos, plots, a success table",
        description="Fly the shipped liquid controller (checkpoints/cfc_ncp, trained in the forest only) on a few\n"
                    "held-out seeds per world, through the same evaluation as liquid-nav evaluate, and write\n"
                    "onboard videos with the command overlaid (videos/), top-down trajectories (plots/topdown_*.png)\n"
                    "and report.md into DIR. The privileged expert flies the same seeds as the reference.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    demo.add_argument("--out", type=output_dir_argument, required=True, help="output directory (created; resumed)")
    demo.add_argument("--model", default=None,
                      help="checkpoint or .onnx to fly instead of the shipped cfc_ncp (or expert)")
    demo.add_argument("--worlds", nargs="+", default=["forest", "urban"], help="worlds to fly (default: forest urban)")
    demo.add_argument("--episodes", type=_positive, default=3, help="seeds per world, each with a video (default 3)")
    demo.add_argument("--first-seed", type=seed_argument, default=500_000,
                      help="first seed (default 500000, disjoint from the training data)")
    demo.add_argument("--workers", type=_positive, default=2, help="worker processes (default 2)")
    demo.set_defaults(handler=reporting_world_errors(reporting_experiment_errors(_demo)))

    report = subparsers.add_parser("report", help="write results.json, episodes.csv, report.md and plots of a run",
                                   description="Rebuild the report of an evaluation run directory from its "
                                               "episodes.jsonl (evaluate writes it at the end).")
    report.add_argument("run_dir", help="the --out directory of liquid-nav evaluate")
    report.set_defaults(handler=reporting_world_errors(reporting_experiment_errors(_report)))


def reporting_experiment_errors(handler):
    """``handler`` that prints an experiment's or a condition's error and returns 2."""
    def run(args: argparse.Namespace) -> int:
        from liquid_nav.evaluate.conditions import ConditionError
        from liquid_nav.evaluate.experiment import ExperimentError

        try:
            return handler(args)
        except (ExperimentError, ConditionError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
    return run


def _evaluate(args: argparse.Namespace) -> int:
    from liquid_nav.evaluate.conditions import describe_families, parse_condition_argument
    from liquid_nav.evaluate.experiment import load_experiment
    from liquid_nav.evaluate.run import evaluate

    if args.list_conditions:
        print(describe_families())
        return 0
    if not args.out:
        print("error: --out DIR is required", file=sys.stderr)
        return 2
    conditions = [c for text in args.condition for c in parse_condition_argument(text)] if args.condition else None
    experiment = load_experiment(args.experiment, models=args.model, worlds=args.world, conditions=conditions,
                                 episodes=args.episodes, first_seed=args.first_seed, backend=args.backend,
                                 camera=args.camera, max_episode_seconds=args.max_episode_seconds,
                                 safety=args.safety)
    report = evaluate(experiment, args.out, workers=args.workers, executor=args.executor,
                      ray_address=args.ray_address, media=not args.no_media)
    print(f"wrote {report}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    import json
    import time

    from liquid_nav.evaluate.experiment import ExperimentConfig, ModelSpec, SampleConfig
    from liquid_nav.evaluate.run import evaluate
    from liquid_nav.paths import shipped_model

    try:
        model = args.model or f"cfc_ncp={shipped_model('cfc_ncp', onnx=True)}"
    except FileNotFoundError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    experiment = ExperimentConfig(models=(ModelSpec.parse(model, "--model"),), worlds=tuple(args.worlds),
                                  episodes=args.episodes, first_seed=args.first_seed, max_episode_seconds=30.0,
                                  samples=SampleConfig(seeds=args.episodes, conditions=("nominal",)), name="demo")
    started = time.perf_counter()
    report = evaluate(experiment, args.out, workers=args.workers)
    results = json.loads((args.out / "results.json").read_text())
    print(f"\n{'model':>14} {'world':>14} {'success':>9}  {'95 % Wilson':>13}  outcomes")
    for cell in results["cells"]:
        outcomes = ", ".join(f"{name} {count}" for name, count in cell["outcomes"].items() if count)
        print(f"{cell['model']:>14} {cell['world']:>14} {cell['successes']:>4}/{cell['episodes']:<4} "
              f"[{100 * cell['wilson_low']:3.0f} %, {100 * cell['wilson_high']:3.0f} %]  {outcomes}")
    print(f"\n{time.perf_counter() - started:.0f} s; videos in {args.out / 'videos'}, top-down plots in "
          f"{args.out / 'plots'}, report {report}")
    return 0


def _report(args: argparse.Namespace) -> int:
    from liquid_nav.evaluate.report import write_report

    print(f"wrote {write_report(Path(args.run_dir))}")
    return 0
