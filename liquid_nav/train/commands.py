"""``liquid-nav`` subcommands for learning: ``train`` and ``dagger``."""
from __future__ import annotations

import argparse
import sys

from liquid_nav.arguments import image_file_argument, seed_argument


def register(subparsers: argparse._SubParsersAction) -> None:
    train = subparsers.add_parser("train", help="train a policy by imitation on an episode store",
                                  description="Sequence BPTT on windows of stored episodes (labels: the expert's "
                                              "clean commands). Writes RUN/config.yaml, RUN/log.csv, "
                                              "RUN/checkpoints/{best,last,<step>}/policy.lnav.")
    _common(train)
    train.add_argument("--resume", action="store_true", help="continue the run in --out exactly where it stopped")
    train.add_argument("--init", help="start from this checkpoint's weights (same policy config)")
    train.set_defaults(handler=_train)

    dagger = subparsers.add_parser("dagger", help="DAgger rounds: the student flies, the expert labels, training continues",
                                   description="Each round: fly the student from the run's last checkpoint on new "
                                               "seeds, label every visited state with the expert, add the episodes "
                                               "to the store, train --round-steps more steps, report held-out success. "
                                               "Round k ends at the config's steps + k x --round-steps, so a rerun "
                                               "resumes where it stopped.")
    _common(dagger)
    dagger.add_argument("--rounds", type=int, default=3, help="DAgger rounds (default 3)")
    dagger.add_argument("--episodes", type=int, default=20,
                        help="student episodes per round (default 20; 0: the rounds only train, a control)")
    dagger.add_argument("--round-steps", type=int, default=300, help="training steps per round (default 300)")
    dagger.add_argument("--beta", type=float, default=0.0, help="probability per step of executing the expert")
    dagger.add_argument("--world", default="forest", help="world the student flies (default forest)")
    dagger.add_argument("--first-seed", type=seed_argument, default=200_000, help="first student seed")
    dagger.add_argument("--eval-episodes", type=int, default=20,
                        help="held-out episodes per round (default 20; 0: none)")
    dagger.add_argument("--eval-first-seed", type=seed_argument, default=100_000, help="first held-out seed")
    dagger.set_defaults(handler=_dagger)

    study = subparsers.add_parser(
        "study", help="a training study: recipe variants x seeds, trained, flown closed-loop, one report",
        description="Train every variant of a study file (config/study/*.yaml) with every seed on one store\n"
                    "(collected when missing), fly each finished run closed-loop on paired seeds, and write\n"
                    "REPORT/{report.md, results.json, summary.json, curves.png}: validation loss, feature scale,\n"
                    "state saturation, CNN gradient and success, mean and spread over seeds. Every stage\n"
                    "resumes; --variants and --seeds pick a part of the study.",
        epilog="example:\n  liquid-nav study trainability --out runs/trainability --report docs/results/trainability "
               "--workers 2\n  liquid-nav study trainability --out runs/trainability --variants cfc_ncp lstm --seeds 1",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    study.add_argument("study", help="study name in config/study (trainability) or a study YAML file")
    study.add_argument("--out", required=True, help="study directory (runs and evaluations; created, resumed)")
    study.add_argument("--report", help="report directory (default OUT/report)")
    study.add_argument("--variants", nargs="+", help="train only these variants (default: all; evaluation flies "
                                                     "every finished run of the chosen seeds)")
    study.add_argument("--seeds", nargs="+", type=int, help="only these training seeds (default: all)")
    study.add_argument("--stages", nargs="+", default=None, metavar="STAGE",
                       help="collect, train, evaluate, report (default: all, in that order)")
    study.add_argument("--workers", type=int, default=2, help="collection / evaluation worker processes (default 2)")
    study.add_argument("--no-progress", action="store_true", help="no progress bars")
    study.set_defaults(handler=_study)

    curves = subparsers.add_parser("curves", help="plot training curves and diagnostics of runs into one PNG",
                                   description="Losses, feature scale, state saturation and gradient norms of "
                                               "each run's log.csv, one colour per run.")
    curves.add_argument("runs", nargs="+", metavar="[LABEL=]RUN", help="run directories (label: its name)")
    curves.add_argument("--out", type=image_file_argument, required=True, help="PNG file to write")
    curves.add_argument("--title", default="", help="figure title")
    curves.set_defaults(handler=_curves)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", default="quick", help="preset name (quick, paper) or a training YAML file")
    parser.add_argument("--data", required=True, help="episode store directory (liquid-nav collect --out)")
    parser.add_argument("--out", required=True, help="run directory")
    parser.add_argument("--steps", type=int, help="override the config's total steps")
    parser.add_argument("--head", help="override the policy head (cfc_ncp, ltc_ncp, cfc, lstm, gru, ctrnn)")
    parser.add_argument("--seed", type=seed_argument, help="override the config's seed")
    parser.add_argument("--device", help="override the device (cpu, cuda)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _config(args: argparse.Namespace):
    from dataclasses import replace

    from liquid_nav.train.config import load_train_config

    config = load_train_config(args.config, steps=args.steps, seed=args.seed, device=args.device)
    if args.head:
        from liquid_nav.models.policy import ConfigError

        try:
            config = replace(config, policy=replace(config.policy, head=args.head))
        except ConfigError as error:
            raise ValueError(f"--head: {error}") from error
    return config


def _run(body):
    """Errors a user can cause are one line on stderr and exit status 1."""
    from liquid_nav.models.checkpoint import CheckpointError
    from liquid_nav.train.config import TrainConfigError
    from liquid_nav.train.trainer import TrainingError

    try:
        return body()
    except (TrainConfigError, TrainingError, CheckpointError, ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _train(args: argparse.Namespace) -> int:
    def body() -> int:
        from liquid_nav.train.trainer import Trainer

        config = _config(args)
        closed_loop = None
        if config.closed_loop.every:
            from liquid_nav.sim.env import EnvConfig
            from liquid_nav.train.dagger import heldout_check

            closed_loop = heldout_check(EnvConfig(world=config.closed_loop.world), config.closed_loop.episodes,
                                        config.closed_loop.first_seed)
        trainer = Trainer(config, args.data, args.out, resume=args.resume, init_checkpoint=args.init,
                          closed_loop=closed_loop)
        result = trainer.run(progress=not args.no_progress)
        print(f"{config.policy.head}: step {result.step}, validation loss {result.last_validation_loss:.4f} "
              f"(best {result.best_validation_loss:.4f}); {result.train_frames} training frames; "
              f"checkpoints in {result.run_dir / 'checkpoints'}")
        return 0
    return _run(body)


def _dagger(args: argparse.Namespace) -> int:
    def body() -> int:
        from liquid_nav.sim.env import EnvConfig
        from liquid_nav.train.dagger import DaggerConfig, run_dagger

        for name, low in (("rounds", 1), ("episodes", 0), ("round_steps", 1), ("eval_episodes", 0)):
            if getattr(args, name) < low:
                raise ValueError(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}")
        if not 0.0 <= args.beta <= 1.0:
            raise ValueError(f"--beta must be in [0, 1], got {args.beta}")
        dagger = DaggerConfig(rounds=args.rounds, episodes_per_round=args.episodes, steps_per_round=args.round_steps,
                              beta=args.beta, first_seed=args.first_seed, eval_episodes=args.eval_episodes,
                              eval_first_seed=args.eval_first_seed)
        run_dagger(_config(args), dagger, EnvConfig(world=args.world), args.data, args.out,
                   progress=not args.no_progress)
        return 0
    return _run(body)


def _study(args: argparse.Namespace) -> int:
    from pathlib import Path

    def body() -> int:
        from liquid_nav.evaluate.experiment import ExperimentError
        from liquid_nav.train.study import STAGES, StudyError, load_study, run_study

        if args.workers < 1:
            raise ValueError(f"--workers must be >= 1, got {args.workers}")
        try:
            study = load_study(args.study)
            command = " ".join(["liquid-nav study", args.study, "--out", args.out, "--workers", str(args.workers)]
                               + (["--report", args.report] if args.report else []))
            done = run_study(study, Path(args.out), Path(args.report) if args.report else None,
                             stages=args.stages or STAGES, variants=args.variants, seeds=args.seeds,
                             workers=args.workers, progress=not args.no_progress, command=command)
        except (StudyError, ExperimentError) as error:
            raise ValueError(str(error)) from None
        print("; ".join(f"{key} {value}" for key, value in done.items()))
        return 0
    return _run(body)


def _curves(args: argparse.Namespace) -> int:
    from pathlib import Path

    def body() -> int:
        from liquid_nav.train.curves import plot_training_curves

        runs = {}
        for text in args.runs:
            label, _, run = text.rpartition("=") if "=" in text else ("", "", text)
            run_dir = Path(run)
            if not (run_dir / "log.csv").is_file():
                raise FileNotFoundError(f"{run_dir}: no log.csv (not a liquid-nav train run directory)")
            runs[label or run_dir.name] = run_dir
        print(f"wrote {plot_training_curves(runs, args.out, args.title)}")
        return 0
    return _run(body)
