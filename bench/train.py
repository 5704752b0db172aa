"""Imitation-pipeline benchmark: collection, the window loader and the full training step, measured in one run.

Prints
* collection frames/s with 1 and 2 workers and the bare expert env loop (``run_episode``, frames recorded,
  nothing stored) on the same seeds: the overhead of collection and the worker speed-up;
* loader windows/s (windows cut from the in-memory episodes + augmentation) against the training step's
  own consumption;
* full-pipeline training frames/s per head at 72x128 and 144x256 (B8, L32, the Trainer's own step:
  frame drops, augmentation, BPTT, clipping, AdamW): unoptimised (NCHW, eager), with the perception in
  channels_last memory format, and channels_last + ``torch.compile`` of the perception (the quick preset's
  setting), per head, with an ncps 1.0.1 CfC on the same NCP wiring swapped in as the anchor head.

Anchors: ~540 frames/s (72x128) and ~75 frames/s (144x256) for the unoptimised full policy at B8 L32 on
2 threads (measured before this pipeline existed). Goals: collection overhead <= 25 %; 2 workers >= 1.7x
one; the loader never the bottleneck; 72x128 training >= 2x the anchor; cfc_ncp >= 0.8x lstm.

    PYTHONPATH=. .venv/bin/python bench/train.py [--steps 6] [--episodes 6]
"""
from __future__ import annotations

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Dict

import torch
from table import record

ANCHOR_FRAMES_PER_S = {"72x128": 540.0, "144x256": 75.0}


def bench_collection(episodes: int, root: Path) -> Dict[str, float]:
    from liquid_nav.data.collect import NoisyExpert, collect, collect_config
    from liquid_nav.expert import PrivilegedExpert
    from liquid_nav.sim.env import FlyToTargetEnv
    from liquid_nav.sim.rollout import run_episode

    figures: Dict[str, float] = {}
    config = collect_config("forest", episodes, 0, 1)
    env = FlyToTargetEnv(config.env)
    try:
        pilot = NoisyExpert(PrivilegedExpert.from_env(env), config.noise, env.control_period)
        run_episode(env, pilot, 0, record_frames=True)  # warm: the layout of seeds 0-9 is built once
        started, frames = time.perf_counter(), 0
        for seed in config.seeds():
            frames += run_episode(env, pilot, seed, labeler=pilot.labeler, record_frames=True).steps + 1
        figures["bare"] = frames / (time.perf_counter() - started)
    finally:
        env.close()
    for workers in (1, 2):
        summary = collect(replace(config, workers=workers), root / f"workers{workers}", progress=False)
        figures[f"workers{workers}"] = summary.frames / summary.wall_seconds
    return figures


def _trainer(store: Path, run: Path, head: str, size: str, channels_last: bool = True, compile: bool = False):
    from liquid_nav.models.preprocessing import PreprocessingConfig
    from liquid_nav.train.config import load_train_config
    from liquid_nav.train.trainer import Trainer

    config = load_train_config("quick")
    height, width = (72, 128) if size == "72x128" else (144, 256)
    policy = replace(config.policy, head=head, preprocessing=PreprocessingConfig(height=height, width=width))
    config = replace(config, policy=policy, batch_size=8, window=32, stride=4, validation_fraction=0.0,
                     steps=10**6, threads=2, include_failed=True, channels_last=channels_last, compile=compile)
    return Trainer(config, store, run)


def _swap_in_ncps_head(trainer) -> None:
    """The anchor: an ncps CfC on the published NCP wiring as the policy's head, same optimiser settings."""
    import ncps.torch as ncps_torch
    from ncps.wirings import NCP

    class NcpsHead(torch.nn.Module):
        def __init__(self, features: int) -> None:
            super().__init__()
            wiring = NCP(inter_neurons=18, command_neurons=12, motor_neurons=4, sensory_fanout=6, inter_fanout=4,
                         recurrent_command_synapses=4, motor_fanin=6, seed=22224)
            self.rnn = ncps_torch.CfC(features, wiring, batch_first=True)
            self.state_size = wiring.units

        def sequence(self, x, t, state):
            out, final = self.rnn(x, state)  # ncps: dt = 1 per step (its timespans fail for B > 1)
            return out, final

    policy = trainer.policy
    policy.head = NcpsHead(policy.config.feature_dim)
    policy.state_size = policy.head.state_size
    trainer.optimizer = torch.optim.AdamW(policy.parameters(), lr=trainer.config.optim.lr)
    trainer.scheduler = torch.optim.lr_scheduler.LambdaLR(trainer.optimizer, trainer._lr_factor)


def train_rate(trainer, steps: int) -> float:
    trainer._train_step()  # warm-up (and compilation)
    trainer._train_step()
    started = time.perf_counter()
    for _ in range(steps):
        trainer._train_step()
        trainer.step += 1
    return steps * trainer.config.batch_size * trainer.config.window / (time.perf_counter() - started)


def loader_rate(trainer, seconds: float = 2.0) -> float:
    import numpy as np

    from liquid_nav.train.augment import augment_windows

    count, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        batch = trainer.train_set.batch(trainer._batch_indices(), np.random.default_rng(count))
        augment_windows(torch.from_numpy(batch["images"]), trainer.config.augment, torch.Generator().manual_seed(count))
        count += len(batch["images"])
        trainer.step += 1
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per configuration")
    parser.add_argument("--episodes", type=int, default=6, help="episodes collected per measurement")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        collection = bench_collection(args.episodes, root)
        store = root / "workers2"
        rows = []
        for size in ("72x128", "144x256"):
            for head, variant in (("cfc_ncp", "unoptimised"), ("cfc_ncp", "channels_last"), ("cfc_ncp", "compiled"),
                                  ("lstm", "channels_last"), ("ltc_ncp", "channels_last"), ("cfc_ncp", "ncps")):
                if size == "144x256" and head == "ltc_ncp":
                    continue
                trainer = _trainer(store, root / f"run-{size}-{head}-{variant}", head, size,
                                   channels_last=variant != "unoptimised", compile=variant == "compiled")
                if variant == "ncps":
                    _swap_in_ncps_head(trainer)
                rows.append((size, f"{head} ({variant})", train_rate(trainer, args.steps)))
        loader = loader_rate(_trainer(store, root / "loader", "cfc_ncp", "72x128"))

    print(f"collection ({args.episodes} forest episodes, 256x144 camera, expert + recovery noise):")
    print(f"  bare expert loop (run_episode, frames recorded)   {collection['bare']:8.0f} frames/s")
    for workers in (1, 2):
        print(f"  liquid-nav collect, {workers} worker(s)                   {collection[f'workers{workers}']:8.0f} frames/s")
    print(f"  collection overhead vs bare loop (1 worker): {100 * (collection['bare'] / collection['workers1'] - 1):+.0f} %"
          f"   target <= 25 %")
    print(f"  2 workers / 1 worker: {collection['workers2'] / collection['workers1']:.2f}x   target >= 1.7x")
    overhead = collection["bare"] / collection["workers1"] - 1
    record("train", "collection frames/s, 1 worker", collection["workers1"], "frames/s", collection["bare"],
           "bare expert loop", "overhead <= 25 %", overhead <= 0.25)
    record("train", "collection frames/s, 2 workers", collection["workers2"], "frames/s", collection["workers1"],
           "1 worker", ">= 1.7x", collection["workers2"] >= 1.7 * collection["workers1"])
    print("training, full pipeline (B8 L32, 2 threads, frames/s):")
    rates = {}
    for size, label, rate in rows:
        rates[(size, label)] = rate
        print(f"  {size:8s} {label:22s} {rate:8.0f}   vs unoptimised anchor {ANCHOR_FRAMES_PER_S[size]:.0f}: "
              f"{rate / ANCHOR_FRAMES_PER_S[size]:.2f}x")
    for size in ("72x128", "144x256"):
        speedup = rates[(size, "cfc_ncp (compiled)")] / rates[(size, "cfc_ncp (unoptimised)")]
        print(f"  {size}: optimised (channels_last + compile) / unoptimised, same run: {speedup:.2f}x   target >= 2x")
    head_ratio = rates[("72x128", "cfc_ncp (channels_last)")] / rates[("72x128", "lstm (channels_last)")]
    print(f"  cfc_ncp / lstm at 72x128: {head_ratio:.2f}   target >= 0.8")
    ncps_ratio = rates[("72x128", "cfc_ncp (channels_last)")] / rates[("72x128", "cfc_ncp (ncps)")]
    print(f"  cfc_ncp vs ncps CfC head at 72x128: {ncps_ratio:.2f}x")
    for size in ("72x128", "144x256"):
        optimised, plain = rates[(size, "cfc_ncp (compiled)")], rates[(size, "cfc_ncp (unoptimised)")]
        record("train", f"train frames/s {size} cfc_ncp (quick preset)", optimised, "frames/s", plain,
               "unoptimised, same run", ">= 2x", optimised >= 2 * plain)
        record("train", f"train frames/s {size} cfc_ncp (quick preset)", optimised, "frames/s",
               ANCHOR_FRAMES_PER_S[size], "anchor (other machine state)")
    record("train", "cfc_ncp / lstm train frames/s 72x128", head_ratio, "", None, "", ">= 0.8", head_ratio >= 0.8)
    consumed = rates[("72x128", "cfc_ncp (compiled)")] / 32
    record("train", "loader windows/s 72x128", loader, "windows/s", consumed, "consumed by training", "> 1x",
           loader > consumed)
    print(f"loader: {loader:.0f} windows/s (72x128, with augmentation) vs {consumed:.1f} windows/s consumed by "
          f"cfc_ncp training: {loader / consumed:.0f}x headroom")


if __name__ == "__main__":
    main()
