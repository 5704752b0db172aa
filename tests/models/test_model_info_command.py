"""`liquid-nav model-info` handler."""
from __future__ import annotations

import argparse
import json

from liquid_nav.models import commands
from liquid_nav.models.checkpoint import save_checkpoint
from tests.models.conftest import small_policy


def _run(argv):
    parser = argparse.ArgumentParser()
    commands.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.handler(args)


def test_model_info_reports_config_and_counts(tmp_path, capsys):
    checkpoint = save_checkpoint(tmp_path / "p.lnav", small_policy("cfc_ncp"), {"dataset": "forest"})
    assert _run(["model-info", str(checkpoint), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["config"]["head"] == "cfc_ncp" and info["metadata"] == {"dataset": "forest"}
    assert info["wiring"] == {"sensory_synapses": 768, "neuron_synapses": 100}
    assert info["parameters"]["total"] == info["parameters"]["perception"] + info["parameters"]["head"]
