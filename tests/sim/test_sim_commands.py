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
