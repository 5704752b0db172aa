"""liquid-nav collect: recovery noise, labels, determinism across worker counts, resume after a kill."""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from liquid_nav.data.collect import NoiseConfig, collect, collect_config, episode_id
from liquid_nav.data.store import EpisodeStore

ARRAYS = ("frames", "commands", "labels", "stamps_ns", "positions")


def small(episodes, workers, **noise):
    return collect_config("forest", episodes, 40, workers, camera="small", max_episode_seconds=2.0,
                          noise=NoiseConfig(**noise) if noise else None)


def test_two_workers_write_what_one_worker_writes(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    assert collect(small(2, 1), one, progress=False).written == 2
    assert collect(small(2, 2), two, progress=False).written == 2
    a, b = EpisodeStore(one), EpisodeStore(two)
    assert a.episode_ids() == b.episode_ids() == [episode_id("forest", 40), episode_id("forest", 41)]
    for name in a.episode_ids():
        first, second = a.read(name), b.read(name)
        for array in ARRAYS:
            assert np.array_equal(getattr(first, array), getattr(second, array)), (name, array)


def test_executed_is_the_label_plus_correlated_noise(tmp_path):
    collect(small(1, 1, strength=(0.5, 0.5)), tmp_path, progress=False)
    store = EpisodeStore(tmp_path)
    episode = store.read(store.episode_ids()[0])
    metadata = store.metadata(store.episode_ids()[0])
    noise = episode.commands - episode.labels
    assert metadata["source"] == "expert" and metadata["noise_strength"] == pytest.approx(0.5)
    assert metadata["camera_intrinsics"]["fx"] > 0 and len(metadata["world_sha256"]) == 64
    assert np.abs(noise[:, 0]).max() > 0.1  # the drone really flew off the expert's command
    lag1 = np.corrcoef(noise[:-1, 0], noise[1:, 0])[0, 1]
    assert lag1 > 0.5  # temporally correlated (white noise: ~0; OU over 0.5 s at 30 Hz: 0.94, less over 2 s)


def test_a_killed_collection_keeps_finished_episodes_and_resumes(tmp_path):
    out = tmp_path / "store"
    code = ("import sys; from liquid_nav.data.collect import collect, collect_config\n"
            "collect(collect_config('forest', 6, 40, 1, camera='small', max_episode_seconds=2.0), sys.argv[1], progress=False)\n")
    process = subprocess.Popen([sys.executable, "-c", code, str(out)], start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if out.is_dir() and len(EpisodeStore(out).episode_ids()) >= 1:
            break
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    kept = EpisodeStore(out).episode_ids()
    assert 1 <= len(kept) < 6
    summary = collect(small(6, 1), out, progress=False)
    assert summary.skipped == len(kept) and summary.written == 6 - len(kept)
    assert len(EpisodeStore(out).episode_ids()) == 6 and EpisodeStore(out).verify() == []


def test_cli_collects_with_camera_timing_and_reports_bad_worlds(tmp_path, capsys):
    from liquid_nav.cli import main

    out = tmp_path / "store"
    assert main(["collect", "--world", "urban", "--episodes", "1", "--out", str(out), "--camera", "small",
                 "--timing", "drops30", "--max-episode-seconds", "1.5", "--no-progress"]) == 0
    assert "wrote 1 episodes" in capsys.readouterr().out
    episode = EpisodeStore(out).read(episode_id("urban", 0), frames=False)
    assert (episode.dts[1:] > 0.05).any()  # dropped frames: some intervals span two periods
    assert main(["collect", "--world", "atlantis", "--episodes", "1", "--out", str(out)]) == 1
    assert "unknown world 'atlantis'" in capsys.readouterr().err


def test_a_world_built_in_code_is_collected_with_its_own_identity(tmp_path):
    from dataclasses import replace

    from liquid_nav.data.collect import world_identity
    from liquid_nav.sim.worlds import load_world

    spec = replace(load_world("forest"), name="forest_sparse", source="<built in code>")
    collect(collect_config(spec, 1, 40, 1, camera="small", max_episode_seconds=1.0), tmp_path, progress=False)
    metadata = EpisodeStore(tmp_path).metadata(episode_id("forest_sparse", 40))
    assert metadata["world"] == "forest_sparse" and metadata["world_file"] == "<built in code>"
    assert metadata["world_sha256"] == world_identity(spec)[1] != world_identity(load_world("forest"))[1]
    assert world_identity("forest")[0] == "forest" and len(world_identity("forest")[1]) == 64
