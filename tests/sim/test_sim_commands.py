"""The sim subcommands of ``liquid-nav`` through the real CLI entry point."""
import cv2

from liquid_nav.cli import main


def test_render_world_writes_a_png(tmp_path, capsys):
    out = tmp_path / "view" / "urban.png"
    assert main(["render-world", "urban", "--seed", "3", "--camera", "small", "--out", str(out)]) == 0
    image = cv2.imread(str(out))
    assert image is not None and image.shape[0] > 300 and image.shape[1] > 600 and image.std() > 10
    assert "wrote" in capsys.readouterr().out


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
