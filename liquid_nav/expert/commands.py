"""``liquid-nav expert-eval``: the privileged expert's success rate over many seeds."""
from __future__ import annotations

import argparse
import sys
import time

from liquid_nav.arguments import seed_argument
from liquid_nav.sim.commands import make_env, reporting_world_errors


def register(subparsers: argparse._SubParsersAction) -> None:
    evaluate = subparsers.add_parser("expert-eval", help="success rate of the privileged expert over many seeds",
                                     description="Fly the expert (privileged state only, no rendering) over "
                                                 "seeds start..start+N-1 and print the success rate and each "
                                                 "failure with its reason.")
    evaluate.add_argument("--world", required=True, help="world name or path")
    evaluate.add_argument("--episodes", type=int, default=100, help="number of seeds (default 100)")
    evaluate.add_argument("--start-seed", type=seed_argument, default=0, help="first seed (default 0)")
    evaluate.add_argument("--min-success", type=_fraction, default=None,
                          help="exit with status 1 when the success rate is below this fraction (0 to 1)")
    evaluate.set_defaults(handler=reporting_world_errors(_expert_eval))


def _fraction(text: str) -> float:
    """argparse type: a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not 0.0 <= value <= 1.0:  # also false for NaN
        raise argparse.ArgumentTypeError(f"expected a fraction in [0, 1] (e.g. 0.9), got {text!r}")
    return value


def _expert_eval(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from liquid_nav.expert import PrivilegedExpert
    from liquid_nav.sim.rollout import run_episode

    if args.episodes < 1:
        print("error: --episodes must be >= 1", file=sys.stderr)
        return 2
    env = make_env(args.world, render_observations=False)
    expert = PrivilegedExpert.from_env(env)
    failures = []
    durations = []
    started = time.perf_counter()
    try:
        seeds = range(args.start_seed, args.start_seed + args.episodes)
        for seed in tqdm(seeds, desc=f"expert-eval {env.world.name}", unit="episode"):
            episode = run_episode(env, expert, seed)
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
    if args.min_success is not None and rate < args.min_success:
        print(f"error: success rate {100 * rate:.1f} % is below --min-success {100 * args.min_success:.1f} %",
              file=sys.stderr)
        return 1
    return 0
