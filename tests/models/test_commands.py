"""`liquid-nav export` and `liquid-nav model-info` handlers."""
from __future__ import annotations

import argparse
import json

import numpy as np

from liquid_nav.models import commands
from liquid_nav.models.checkpoint import save_checkpoint
from liquid_nav.runtime.backends import make_backend
from tests.models.conftest import small_policy


def _run(argv):
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.handler(args)


def test_export_writes_a_runnable_onnx_step(tmp_path, capsys):
    checkpoint = save_checkpoint(tmp_path / "p.lnav", small_policy("ltc_ncp"), {"epochs": 3})
    onnx_path = tmp_path / "step.onnx"
    assert _run(["export", str(checkpoint), str(onnx_path), "--check"]) == 0
    assert "max |difference|" in capsys.readouterr().out
    backend = make_backend("onnxruntime", onnx_path)
    assert backend.input_shape == (72, 128, 3)
    assert np.isfinite(backend.step(np.zeros((30, 40, 3), np.uint8), 0.03)).all()


def test_model_info_reports_config_and_counts(tmp_path, capsys):
    checkpoint = save_checkpoint(tmp_path / "p.lnav", small_policy("cfc_ncp"), {"dataset": "forest"})
    assert _run(["model-info", str(checkpoint), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config"]["head"] == "cfc_ncp" and info["metadata"] == {"dataset": "forest"}
    assert info["wiring"] == {"sensory_synapses": 768, "neuron_synapses": 100}
    assert info["parameters"]["total"] == info["parameters"]["perception"] + info["parameters"]["head"]


def test_bad_checkpoint_is_a_clear_error_not_a_traceback(tmp_path, capsys):
    bad = tmp_path / "bad.lnav"
    bad.write_bytes(b"garbage")
    assert _run(["model-info", str(bad)]) == 1
    assert "not a liquid_nav checkpoint" in capsys.readouterr().err
    assert _run(["export", str(bad), str(tmp_path / "x.onnx")]) == 1
