"""`liquid-nav export` handler: checkpoint -> ONNX step, parity-checked on ONNX Runtime."""
from __future__ import annotations

import numpy as np

from liquid_nav.cli import main
from liquid_nav.models.checkpoint import save_checkpoint
from liquid_nav.runtime.backends import make_backend
from tests.models.conftest import small_policy


def test_export_writes_a_runnable_onnx_step(tmp_path, capsys):
    checkpoint = save_checkpoint(tmp_path / "p.lnav", small_policy("ltc_ncp"), {"epochs": 3})
    onnx_path = tmp_path / "step.onnx"
    assert main(["export", str(checkpoint), str(onnx_path), "--check"]) == 0
    assert "max |difference|" in capsys.readouterr().out
    backend = make_backend("onnxruntime", onnx_path)
    assert backend.input_shape == (72, 128, 3)
    assert np.isfinite(backend.step(np.zeros((30, 40, 3), np.uint8), 0.03)).all()
