"""Simulator benchmark: the forest world built the project's way (compound bodies) vs naively (one body per
primitive), measured in the same run.

Prints physics steps/s with the drone flying, camera frames/s at 256x144 and 128x72, scene build and reset
times and env steps/s, with ratios against the naive build and the anchor figures
(shared/reference/anchors.md: physics >= 50k steps/s with 150 trees; camera >= 2x naive at 256x144).

    PYTHONPATH=. .venv/bin/python bench/sim.py [--world forest] [--seed 0]

Runs in about a minute on 2 cores. Figures are wall-clock per process (one thread); noisy (+-30 %)
when other processes share the cores.
"""
from __future__ import annotations

import argparse
import math
import time
from dataclasses import replace
from typing import Callable, Dict

import numpy as np
import pybullet as pb

ANCHOR_COMPOUND_STEPS = 78_000  # anchors.md 3: 150 trees as compound bodies
ANCHOR_NAIVE_STEPS = 10_000  # anchors.md 3: 150 trees as 301 separate bodies
TARGET_STEPS = 50_000
ANCHOR_CAMERA_FPS = 49.0  # anchors.md 3: TinyRenderer 256x144, 150-tree forest, shadows off


def _rate(run: Callable[[], int], min_seconds: float) -> float:
    """Operations per second of ``run`` (returns how many it did), repeated for at least ``min_seconds``."""
    count, started = 0, time.perf_counter()
    while True:
        count += run()
        elapsed = time.perf_counter() - started
        if elapsed >= min_seconds:
            return count / elapsed


def measure(world: str, seed: int, mode: str) -> Dict[str, float]:
    from liquid_nav.expert import PrivilegedExpert
    from liquid_nav.sim.camera import CameraConfig
    from liquid_nav.sim.env import FlyToTargetEnv

    figures: Dict[str, float] = {}
    env = FlyToTargetEnv(world=world, build_mode=mode)
    try:
        sim = env.sim
        started = time.perf_counter()
        env.reset(seed=seed)
        figures["build_ms"] = 1000 * (time.perf_counter() - started)
        figures["bodies"] = pb.getNumBodies(physicsClientId=sim.client_id)
        figures["collision_bodies"] = len(env.builder.collision_bodies)
        resets = [seed + 1 + k for k in range(env.world.episodes_per_layout - 1)] or [seed]
        started = time.perf_counter()
        for episode_seed in resets:
            env.reset(seed=seed - seed % env.world.episodes_per_layout + episode_seed % env.world.episodes_per_layout)
        figures["reset_ms"] = 1000 * (time.perf_counter() - started) / len(resets)

        env.reset(seed=seed)
        start, yaw = env.scene.start_position, env.scene.start_yaw

        def physics_burst() -> int:  # bare stepSimulation, drone in the air at its start (re-placed every 60)
            sim.reset_drone(start, yaw)
            for _ in range(60):
                pb.stepSimulation(physicsClientId=sim.client_id)
            return 60

        def flight_burst() -> int:  # full control loop: controller + rotor model + physics, flying forward
            sim.reset_drone(start, yaw)
            for _ in range(30):
                sim.advance((1.0, 0.0, 0.0, 0.2))
            return 30 * round(sim.config.physics_hz / sim.config.control_hz)

        figures["physics_steps_per_s"] = _rate(physics_burst, 1.5)
        figures["flight_steps_per_s"] = _rate(flight_burst, 1.5)

        for name, config in (("256x144", CameraConfig.preset("default")), ("128x72", CameraConfig.preset("small"))):
            from liquid_nav.sim.camera import OnboardCamera

            camera = OnboardCamera(config)
            headings = [yaw + k * math.pi / 4 for k in range(8)]

            def frames() -> int:
                for heading in headings:
                    sim.reset_drone(start, heading)
                    state = sim.state()
                    env.builder.cull(camera.pose(state))
                    camera.render(sim.client_id, state)
                return len(headings)

            figures[f"camera_fps_{name}"] = _rate(frames, 3.0)

        expert = PrivilegedExpert.from_env(env)
        for label, render in (("env_steps_per_s", True), ("env_steps_per_s_privileged", False)):
            env.config = replace(env.config, render_observations=render)
            _, info = env.reset(seed=seed)
            expert.reset(info)

            def episode_steps(state={"info": info}) -> int:
                count = 0
                for _ in range(30):
                    _, _, terminated, truncated, state["info"] = env.step(expert.act(state["info"]))
                    count += 1
                    if terminated or truncated:
                        _, state["info"] = env.reset(seed=seed)
                        expert.reset(state["info"])
                return count

            figures[label] = _rate(episode_steps, 3.0)
    finally:
        env.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--world", default="forest")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    results = {mode: measure(args.world, args.seed, mode) for mode in ("compound", "naive")}
    compound, naive = results["compound"], results["naive"]
    rows = [
        ("bodies (all)", "bodies", "{:.0f}"),
        ("static bodies with collision shapes", "collision_bodies", "{:.0f}"),
        ("scene build (ms)", "build_ms", "{:.1f}"),
        ("env.reset same layout, 1st frame (ms)", "reset_ms", "{:.2f}"),
        ("stepSimulation/s, drone in the air", "physics_steps_per_s", "{:,.0f}"),
        ("physics steps/s flying (ctrl+rotors)", "flight_steps_per_s", "{:,.0f}"),
        ("camera fps 256x144", "camera_fps_256x144", "{:.1f}"),
        ("camera fps 128x72", "camera_fps_128x72", "{:.1f}"),
        ("env steps/s (256x144, expert)", "env_steps_per_s", "{:.1f}"),
        ("env steps/s (privileged only)", "env_steps_per_s_privileged", "{:.1f}"),
    ]
    print(f"world {args.world}, seed {args.seed}: project build (compound) vs naive build (one body per primitive)")
    print(f"{'':34s}{'compound':>12s}{'naive':>12s}{'ratio':>9s}")
    for label, key, fmt in rows:
        ratio = compound[key] / naive[key] if naive[key] else float("nan")
        print(f"{label:34s}{fmt.format(compound[key]):>12s}{fmt.format(naive[key]):>12s}{ratio:>8.2f}x")
    steps = compound["physics_steps_per_s"]
    print(f"physics vs target {TARGET_STEPS:,}/s: {steps / TARGET_STEPS:.2f}x; vs anchor compound "
          f"{ANCHOR_COMPOUND_STEPS:,}/s: {steps / ANCHOR_COMPOUND_STEPS:.2f}x; naive vs anchor naive "
          f"{ANCHOR_NAIVE_STEPS:,}/s: {naive['physics_steps_per_s'] / ANCHOR_NAIVE_STEPS:.2f}x")
    fps = compound["camera_fps_256x144"]
    print(f"camera 256x144 vs naive: {fps / naive['camera_fps_256x144']:.2f}x (target 2x); vs anchor "
          f"{ANCHOR_CAMERA_FPS:.0f} fps: {fps / ANCHOR_CAMERA_FPS:.2f}x")


if __name__ == "__main__":
    main()
