"""EpisodeStore: exact round trips, the manifest, atomic writes under SIGKILL and corrupt-file handling."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from liquid_nav.data.store import STORE_KEYS, DatasetError, EpisodeStore
from tests.data.episodes import assert_same_arrays, make_record

REPO_ROOT = Path(__file__).resolve().parents[2]
METADATA = {"source": "expert", "world_sha256": "ab" * 32, "success": True, "noise": {"camera": 0.0}}


def test_write_read_round_trip_is_exact(tmp_path):
    store = EpisodeStore(tmp_path / "store")
    record = make_record(steps=7, seed=3)
    store.write("ep-0003", record, METADATA)

    episode = store.read("ep-0003")
    assert_same_arrays(episode, record)
    assert episode.episode_id == "ep-0003" and episode.steps == 7
    assert episode.metadata == store.metadata("ep-0003")
    assert {key: episode.metadata[key] for key in METADATA} == METADATA
    assert episode.metadata["frames"] == 8 and episode.metadata["steps"] == 7
    assert episode.metadata["outcome"] == "success" and episode.metadata["world"] == "forest"
    assert episode.metadata["seed"] == 3 and episode.metadata["reason"] == "synthetic success"
    assert episode.metadata["shapes"]["frames"] == [8, 24, 32, 3]
    assert episode.metadata["duration_s"] == pytest.approx(7 * 33_333_333e-9)


def test_a_reopened_store_lists_and_reads_the_same(tmp_path):
    store = EpisodeStore(tmp_path)
    records = {f"ep-{i}": make_record(seed=i) for i in (2, 0, 1)}
    for episode_id, record in records.items():
        store.write(episode_id, record, {"source": "expert"})
    reopened = EpisodeStore(tmp_path)
    assert reopened.episode_ids() == ["ep-0", "ep-1", "ep-2"]
    assert reopened.has("ep-1") and not reopened.has("ep-9")
    for episode_id, record in records.items():
        assert_same_arrays(reopened.read(episode_id), record)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["format_version"] == 1 and sorted(manifest["episodes"]) == ["ep-0", "ep-1", "ep-2"]
    assert manifest["episodes"]["ep-2"]["metadata"]["frames"] == 7


def test_optional_arrays_may_be_absent_and_frames_can_be_skipped(tmp_path):
    store = EpisodeStore(tmp_path)
    store.write("privileged", make_record(frames=False, labels=False), {})
    episode = store.read("privileged")
    assert episode.frames is None and episode.labels is None
    store.write("full", make_record(), {})
    without = store.read("full", frames=False)
    assert without.frames is None and without.labels is not None


def test_read_arrays_gives_aligned_windows(tmp_path):
    store = EpisodeStore(tmp_path)
    record = make_record(steps=20)
    store.write("ep", record, {})
    window = store.read_arrays("ep", ["frames", "dts", "commands", "labels", "target_position"], start=5, stop=13)
    assert np.array_equal(window["frames"], record.frames[5:13])
    assert np.array_equal(window["dts"], record.dts[5:13])
    assert np.array_equal(window["commands"], record.commands[5:13])
    assert np.array_equal(window["labels"], record.labels[5:13])
    assert np.array_equal(window["target_position"], record.target_position)
    tail = store.read_arrays("ep", ["frames", "commands"], start=18)
    assert len(tail["frames"]) == 3 and len(tail["commands"]) == 2  # the last frame has no command
    with pytest.raises(ValueError, match="unknown arrays"):
        store.read_arrays("ep", ["images"])


def test_a_real_simulator_episode_round_trips(tmp_path):
    from liquid_nav.expert import PrivilegedExpert
    from liquid_nav.sim.env import FlyToTargetEnv
    from liquid_nav.sim.rollout import run_episode

    env = FlyToTargetEnv(world="forest", camera="small")
    try:
        record = run_episode(env, PrivilegedExpert.from_env(env), seed=1, labeler=PrivilegedExpert.from_env(env),
                             record_frames=True, max_steps=6)
        intrinsics = dict(zip(("fx", "fy", "cx", "cy"), env.unwrapped.camera.intrinsics()))
    finally:
        env.close()
    store = EpisodeStore(tmp_path)
    store.write("forest-1", record, {"source": "expert", "camera_intrinsics": intrinsics})
    episode = store.read("forest-1")
    assert_same_arrays(episode, record)
    assert episode.frames.shape == (7, 72, 128, 3)  # the camera's resolution
    assert episode.metadata["outcome"] == "cut" and episode.metadata["camera_intrinsics"] == intrinsics


def test_write_rejects_bad_input_with_the_reason(tmp_path):
    store = EpisodeStore(tmp_path)
    with pytest.raises(ValueError, match="episode id"):
        store.write("../escape", make_record(), {})
    with pytest.raises(ValueError, match="episode id"):
        store.write(".hidden", make_record(), {})
    with pytest.raises(ValueError, match="JSON-serialisable"):
        store.write("ep", make_record(), {"bad": np.float32(1.0)})
    with pytest.raises(ValueError, match="JSON-serialisable"):
        store.write("ep", make_record(), {"bad": float("nan")})
    with pytest.raises(ValueError, match=r"\['world'\] are set by the store"):
        store.write("ep", make_record(world="forest"), {"world": "urban"})
    record = make_record(steps=4)
    record.commands = record.commands[:3]
    with pytest.raises(ValueError, match=r"record.commands has shape \(3, 4\), expected \(4, 4\)"):
        store.write("ep", record, {})
    record = make_record()
    record.stamps_ns = record.stamps_ns.astype(np.float64)
    with pytest.raises(ValueError, match="record.stamps_ns must be int64"):
        store.write("ep", record, {})
    assert store.episode_ids() == [] and list((tmp_path / "episodes").iterdir()) == []


def test_existing_episode_is_kept_unless_overwrite(tmp_path):
    store = EpisodeStore(tmp_path)
    store.write("ep", make_record(seed=1), {"source": "expert"})
    with pytest.raises(ValueError, match="already exists"):
        store.write("ep", make_record(seed=2), {"source": "dagger-1"})
    assert store.metadata("ep")["source"] == "expert"
    replacement = make_record(seed=2)
    store.write("ep", replacement, {"source": "dagger-1"}, overwrite=True)
    assert_same_arrays(EpisodeStore(tmp_path).read("ep"), replacement)
    assert EpisodeStore(tmp_path).metadata("ep")["source"] == "dagger-1"


def test_manifest_is_rebuilt_from_the_episode_files(tmp_path):
    store = EpisodeStore(tmp_path)
    for i in range(3):
        store.write(f"ep-{i}", make_record(seed=i), {"source": f"s{i}"})
    expected = {episode_id: store.metadata(episode_id) for episode_id in store.episode_ids()}
    (tmp_path / "manifest.json").unlink()
    assert {i: EpisodeStore(tmp_path).metadata(i) for i in expected} == expected
    (tmp_path / "manifest.json").write_text("{ not json")
    assert EpisodeStore(tmp_path).episode_ids() == sorted(expected)
    (tmp_path / "episodes" / "ep-1.h5").unlink()  # a manifest entry whose file is gone is dropped
    assert EpisodeStore(tmp_path).episode_ids() == ["ep-0", "ep-2"]
    assert "ep-1" not in json.loads((tmp_path / "manifest.json").read_text())["episodes"]


def test_a_newer_store_format_is_refused(tmp_path):
    EpisodeStore(tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["format_version"] = 99
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DatasetError, match="format version 99 is not supported"):
        EpisodeStore(tmp_path)


def test_opening_a_missing_store_without_create_fails(tmp_path):
    with pytest.raises(DatasetError, match="not an episode store"):
        EpisodeStore(tmp_path / "nothing", create=False)
    assert not (tmp_path / "nothing").exists()


_KILLED_WRITER = textwrap.dedent("""
    import sys
    import numpy as np
    from liquid_nav.data.store import EpisodeStore
    from tests.data.episodes import make_record

    store = EpisodeStore(sys.argv[1])
    store.write("complete", make_record(steps=5), {"source": "expert"})
    big = make_record(steps=800, height=144, width=256)  # random pixels: seconds of compression
    print("writing", flush=True)
    store.write("interrupted", big, {"source": "expert"})
    print("finished", flush=True)
""")


def test_a_writer_killed_mid_episode_leaves_a_readable_store(tmp_path):
    root = tmp_path / "store"
    process = subprocess.Popen([sys.executable, "-c", _KILLED_WRITER, str(root)], cwd=REPO_ROOT,
                               stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "writing"
        deadline = time.monotonic() + 60
        partial = []
        while not partial and time.monotonic() < deadline:
            partial = [path for path in (root / "episodes").glob(".interrupted.*") if path.stat().st_size > 4 << 20]
            time.sleep(0.005)
        assert partial, "the writer never got 4 MiB into the episode"
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL

    store = EpisodeStore(root)
    assert store.episode_ids() == ["complete"]
    assert store.verify() == []
    assert_same_arrays(store.read("complete"), make_record(steps=5))
    assert store.summary()["temporary_files"] == 1  # the partial file, reported, never listed
    store.write("interrupted", make_record(steps=3), {})
    assert EpisodeStore(root).episode_ids() == ["complete", "interrupted"]


# --- corrupt files -------------------------------------------------------------------------------


def _store_with_three(tmp_path) -> EpisodeStore:
    store = EpisodeStore(tmp_path)
    for i in range(3):
        store.write(f"ep-{i}", make_record(steps=8, seed=i), {"source": "expert"})
    return store


def _check_only_ep1_is_broken(tmp_path, message: str, frames_only: bool = False) -> None:
    store = EpisodeStore(tmp_path)
    assert store.episode_ids() == ["ep-0", "ep-1", "ep-2"]
    path = tmp_path / "episodes" / "ep-1.h5"
    with pytest.raises(DatasetError, match=message) as raised:
        store.read("ep-1")
    assert "'ep-1'" in str(raised.value) and str(path) in str(raised.value)
    assert raised.value.episode_id == "ep-1" and raised.value.path == path
    if frames_only:
        assert store.read("ep-1", frames=False).labels is not None
    for episode_id, seed in (("ep-0", 0), ("ep-2", 2)):
        assert_same_arrays(store.read(episode_id), make_record(steps=8, seed=seed))
    problems = store.verify()
    assert [episode_id for episode_id, _ in problems] == ["ep-1"] and str(path) in problems[0][1]
    summary = store.summary()  # reads commands, labels and dts, not frames
    assert [c["episode_id"] for c in summary["corrupt"]] == ([] if frames_only else ["ep-1"])
    assert summary["episodes"] == (3 if frames_only else 2)


def test_truncated_episode_file_is_named_and_the_rest_stays_readable(tmp_path):
    _store_with_three(tmp_path)
    path = tmp_path / "episodes" / "ep-1.h5"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    _check_only_ep1_is_broken(tmp_path, "cannot open the episode file")
    with pytest.raises(DatasetError, match="ep-1"):
        EpisodeStore(tmp_path).metadata("ep-1")


def test_garbage_in_a_frame_chunk_fails_its_checksum(tmp_path):
    _store_with_three(tmp_path)
    path = tmp_path / "episodes" / "ep-1.h5"
    with h5py.File(path, "r") as file:
        chunk = file["frames"].id.get_chunk_info(4)
    with open(path, "r+b") as stream:
        stream.seek(chunk.byte_offset + chunk.size // 3)
        stream.write(bytes(np.random.default_rng(0).integers(0, 256, 64, dtype=np.uint8)))
    _check_only_ep1_is_broken(tmp_path, "cannot read array 'frames'", frames_only=True)


def test_a_missing_array_is_named(tmp_path):
    _store_with_three(tmp_path)
    with h5py.File(tmp_path / "episodes" / "ep-1.h5", "r+") as file:
        del file["commands"]
    _check_only_ep1_is_broken(tmp_path, "array 'commands' is missing")


def test_bad_metadata_json_is_named(tmp_path):
    store = _store_with_three(tmp_path)
    with h5py.File(tmp_path / "episodes" / "ep-1.h5", "r+") as file:
        file.attrs["metadata"] = '{"frames": 9, '
    with pytest.raises(DatasetError, match="bad metadata JSON"):
        store.read("ep-1")  # the store opened before the damage sees it too
    _check_only_ep1_is_broken(tmp_path, "bad metadata JSON")


def test_summary_counts_and_statistics(tmp_path):
    store = EpisodeStore(tmp_path)
    records = [make_record(steps=4, seed=0, world="forest"),
               make_record(steps=6, seed=1, world="urban", outcome="collision"),
               make_record(steps=5, seed=2, world="forest", labels=False)]
    for i, record in enumerate(records):
        store.write(f"ep-{i}", record, {"source": "expert" if i < 2 else "dagger-1"})
    summary = store.summary()
    assert summary["episodes"] == 3 and summary["frames"] == 5 + 7 + 6 and summary["steps"] == 15
    assert summary["worlds"] == {"forest": 2, "urban": 1}
    assert summary["outcomes"] == {"collision": 1, "success": 2}
    assert summary["sources"] == {"dagger-1": 1, "expert": 2}
    assert summary["frame_shapes"] == {"24x32": 3}
    commands = np.concatenate([r.commands for r in records]).astype(np.float64)
    statistics = summary["statistics"]["commands"]
    assert statistics["channels"] == ["vx", "vy", "vz", "yaw_rate"] and statistics["count"] == 15
    np.testing.assert_allclose(statistics["mean"], commands.mean(axis=0))
    np.testing.assert_allclose(statistics["std"], commands.std(axis=0))
    np.testing.assert_allclose(statistics["min"], commands.min(axis=0))
    assert summary["statistics"]["labels"]["count"] == 10
    assert summary["statistics"]["dts"]["count"] == 18
    on_disk = sum(path.stat().st_size for path in (tmp_path / "episodes").iterdir())
    assert summary["bytes"] == on_disk + (tmp_path / "manifest.json").stat().st_size
    assert set(STORE_KEYS) <= set(store.metadata("ep-0"))
