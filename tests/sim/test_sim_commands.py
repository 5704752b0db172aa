"""The sim subcommands of ``liquid-nav`` through the real CLI entry point."""
import cv2

from liquid_nav.cli import main


def test_render_world_writes_a_png(tmp_path, capsys):
    out = tmp_path / "view" / "urban.png"
    assert main(["render-world", "urban", "--seed", "3", "--camera", "small", "--out", str(out)]) == 0
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 600 and image.std() > 10
    assert "wrote" in capsys.readouterr().out


def test_render_world_reports_an_unknown_world(tmp_path, capsys):
    assert main(["render-world", "atlantis", "--out", str(tmp_path / "x.png")]) == 1
    assert "unknown world 'atlantis'" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_expert_eval_prints_the_success_rate(capsys):
    assert main(["expert-eval", "--world", "urban", "--episodes", "3", "--min-success", "1.0"]) == 0
    assert "success 3/3 = 100.0 %" in capsys.readouterr().out


def test_demo_writes_a_video_and_a_topdown_plot(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--worlds", "urban", "--seed", "2"]) == 0
    videos = list(tmp_path.glob("urban.mp4")) + list(tmp_path.glob("urban.gif"))
    assert videos and videos[0].stat().st_size > 10_000
    capture = cv2.VideoCapture(str(videos[0]))
    ok, frame = capture.read()
    assert ok and frame.shape == (144, 256, 3)
    assert cv2.imread(str(tmp_path / "urban_topdown.png")) is not None
    assert "urban: success" in capsys.readouterr().out


def test_a_world_whose_scene_cannot_be_placed_is_reported_without_a_traceback(tmp_path, capsys):
    import yaml

    from liquid_nav.paths import worlds_dir

    data = yaml.safe_load((worlds_dir() / "forest.yaml").read_text())
    data["target"]["clearance"] = 18.0  # loads, but no start/target pair fits among 150 trees
    world = tmp_path / "crowded.yaml"
    world.write_text(yaml.safe_dump(data))
    assert main(["render-world", str(world), "--out", str(tmp_path / "x.png")]) == 1
    assert "no valid start/target found for seed 0" in capsys.readouterr().err
    assert not (tmp_path / "x.png").exists()


def test_negative_seeds_are_refused_by_the_parser(tmp_path, capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["render-world", "forest", "--seed", "-1", "--out", str(tmp_path / "x.png")])
    assert "non-negative integer" in capsys.readouterr().err
