"""`liquid-nav dataset` info / verify / export-bag / import-bag: outputs, exit codes, one-line errors."""
from __future__ import annotations

import argparse
import json

import pytest

from liquid_nav.data import commands
from liquid_nav.data.store import EpisodeStore
from tests.data.episodes import assert_same_arrays, make_record


def _run(argv):
    parser = argparse.ArgumentParser(prog="liquid-nav")
    commands.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.handler(args)


@pytest.fixture
def store_dir(tmp_path):
    store = EpisodeStore(tmp_path / "store")
    store.write("forest-0", make_record(steps=4, seed=0), {"source": "expert", "camera_intrinsics":
                                                           {"fx": 30.0, "fy": 30.0, "cx": 16.0, "cy": 11.0}})
    store.write("urban-1", make_record(steps=6, seed=1, world="urban", outcome="collision"), {"source": "dagger-1"})
    return tmp_path / "store"


def _one_line_error(capsys, *fragments):
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in captured.err, captured.err
    for fragment in fragments:
        assert fragment in lines[0]
    return lines[0]


@pytest.mark.parametrize("subcommand", [[], ["info"], ["verify"], ["export-bag"], ["import-bag"]])
def test_every_subcommand_answers_help(subcommand, capsys):
    with pytest.raises(SystemExit) as exited:
        _run(["dataset", *subcommand, "--help"])
    assert exited.value.code == 0 and "usage: liquid-nav dataset" in capsys.readouterr().out


def test_info_text_and_json(store_dir, capsys):
    assert _run(["dataset", "info", str(store_dir)]) == 0
    text = capsys.readouterr().out
    assert "2 episodes, 12 frames (10 steps" in text and "MiB on disk" in text
    assert "worlds: forest 1, urban 1" in text and "outcomes: collision 1, success 1" in text
    assert "sources: dagger-1 1, expert 1" in text and "yaw_rate" in text
    assert _run(["dataset", "info", str(store_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 2 and summary["statistics"]["commands"]["count"] == 10
    assert summary["statistics"]["dts"]["channels"] == ["dt"] and summary["bytes"] > 0


def test_verify_exit_codes_and_one_line_per_corrupt_episode(store_dir, capsys):
    assert _run(["dataset", "verify", str(store_dir)]) == 0
    assert "2 of 2 episodes read completely" in capsys.readouterr().out
    path = store_dir / "episodes" / "urban-1.h5"
    path.write_bytes(path.read_bytes()[:1000])
    assert _run(["dataset", "verify", str(store_dir)]) == 1
    captured = capsys.readouterr()
    errors = captured.err.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("corrupt: episode 'urban-1'") and str(path) in errors[0]
    assert "1 of 2 episodes read completely, 1 corrupt" in captured.out


def test_export_and_import_bags_through_the_cli(store_dir, tmp_path, capsys):
    bags = tmp_path / "bags"
    assert _run(["dataset", "export-bag", str(store_dir), str(bags), "--episodes", "forest-0"]) == 0
    assert "forest-0 ->" in capsys.readouterr().out and (bags / "forest-0" / "metadata.yaml").is_file()
    assert not (bags / "urban-1").exists()
    assert _run(["dataset", "export-bag", str(store_dir), str(tmp_path / "all"), "--base-time-ns", "1000000000"]) == 0
    assert "no /camera/camera_info" in capsys.readouterr().out  # urban-1 has no intrinsics

    imported = tmp_path / "imported"
    assert _run(["dataset", "import-bag", str(bags / "forest-0"), str(imported), "--source", "replay"]) == 0
    assert "episode forest-0: 5 frames, 4 commands" in capsys.readouterr().out
    assert _run(["dataset", "import-bag", str(tmp_path / "all" / "urban-1"), str(imported)]) == 0
    store = EpisodeStore(imported)
    assert store.episode_ids() == ["forest-0", "urban-1"]
    assert store.metadata("forest-0")["source"] == "replay"
    compared = ("frames", "stamps_ns", "commands", "labels")
    assert_same_arrays(store.read("forest-0"), make_record(steps=4, seed=0), compared)
    assert_same_arrays(store.read("urban-1"), make_record(steps=6, seed=1), compared)

    assert _run(["dataset", "import-bag", str(bags / "forest-0"), str(imported)]) == 1
    _one_line_error(capsys, "already exists", "--overwrite")
    assert _run(["dataset", "import-bag", str(bags / "forest-0"), str(imported), "--overwrite"]) == 0


def test_errors_are_one_line_on_stderr(store_dir, tmp_path, capsys):
    assert _run(["dataset", "info", str(tmp_path / "nowhere")]) == 1
    _one_line_error(capsys, "not an episode store")
    assert _run(["dataset", "verify", str(tmp_path / "nowhere")]) == 1
    _one_line_error(capsys, "not an episode store")
    assert _run(["dataset", "export-bag", str(store_dir), str(tmp_path / "bags"), "--episodes", "nope"]) == 1
    _one_line_error(capsys, "no episodes ['nope']")
    assert _run(["dataset", "export-bag", str(store_dir), str(tmp_path / "bags"), "--episodes", "forest-0"]) == 0
    capsys.readouterr()
    bag = tmp_path / "bags" / "forest-0"
    assert _run(["dataset", "import-bag", str(bag), str(tmp_path / "out"), "--image-topic", "/cam"]) == 1
    _one_line_error(capsys, "no image topic '/cam'", "/camera/image_raw (sensor_msgs/msg/Image, 5 messages)")
    assert _run(["dataset", "import-bag", str(bag), str(tmp_path / "out"), "--odom-topic", "/camera/image_raw"]) == 1
    _one_line_error(capsys, "is sensor_msgs/msg/Image, expected nav_msgs/msg/Odometry")
    assert _run(["dataset", "import-bag", str(tmp_path / "missing"), str(tmp_path / "out")]) == 1
    _one_line_error(capsys, "cannot open the bag")
    assert _run(["dataset", "import-bag", str(bag), str(tmp_path / "out"), "--episode-id", "a b"]) == 1
    _one_line_error(capsys, "episode id 'a b'")
    assert _run(["dataset", "export-bag", str(store_dir), str(tmp_path / "bags"), "--episodes", "forest-0"]) == 1
    _one_line_error(capsys, "exists already")
