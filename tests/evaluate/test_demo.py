"""``liquid-nav demo``: the shipped cfc_ncp flies, through the evaluation, with videos, plots and a table."""
import json

import cv2

from liquid_nav.cli import main


def test_demo_flies_the_shipped_controller_and_writes_videos_plots_and_a_table(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--worlds", "urban", "--episodes", "1", "--workers", "1"]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    cells = {cell["model"]: cell for cell in results["cells"]}
    assert set(cells) == {"cfc_ncp"} and cells["cfc_ncp"]["episodes"] == 1
    model = results["experiment"]["models"][0]
    assert model["label"] == "cfc_ncp" and model["source"].endswith("checkpoints/cfc_ncp/policy.onnx")
    assert "cfc_ncp" in printed and "urban" in printed and f"{cells['cfc_ncp']['successes']}/1" in printed
    videos = sorted((out / "videos").glob("cfc_ncp__urban__nominal__500000.*"))
    assert videos and videos[0].stat().st_size > 10_000
    ok, frame = cv2.VideoCapture(str(videos[0])).read()
    assert ok and frame.shape[0] >= 144 and frame.shape[1] > 256  # the onboard view beside the map and commands
    assert cv2.imread(str(out / "plots" / "topdown_urban.png")) is not None
