"""Export of one control step to ONNX: (image uint8 (1, H, W, 3) RGB, state (1, S), dt (1,) s) -> (command, state).

The ONNX file carries the policy config (with the preprocessing constants) as the metadata entry
``liquid_nav.config`` so a runtime needs nothing else to feed it.
"""
from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Optional, Union

import torch

from liquid_nav.files import atomic_write_bytes
from liquid_nav.models.policy import Policy, PolicyConfig, PolicyStep

INPUT_NAMES = ("image", "state", "dt")
OUTPUT_NAMES = ("command", "new_state")
CONFIG_KEY = "liquid_nav.config"
OPSET = 17


def export_step_onnx(policy: Policy, path: Optional[Union[str, Path]] = None) -> bytes:
    """Export ``policy.step`` (batch 1, eval mode) to ONNX; writes ``path`` (atomically) if given and returns the
    model bytes.

    The policy's training/eval mode is left as it was.
    """
    import onnx  # lazily: export is an optional extra

    height, width, _ = policy.config.preprocessing.shape
    device = policy.output_scale.device
    example = (torch.zeros(1, height, width, 3, dtype=torch.uint8, device=device),
               policy.initial_state(1), torch.full((1,), 1.0 / 30.0, device=device))
    buffer = io.BytesIO()
    was_training = policy.training
    # The TorchScript-based exporter (dynamo=False) needs no onnxscript; torch >= 2.9 flags it as deprecated.
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            torch.onnx.export(PolicyStep(policy).eval(), example, buffer, input_names=list(INPUT_NAMES),
                              output_names=list(OUTPUT_NAMES), opset_version=OPSET, dynamo=False)
    finally:
        policy.train(was_training)
    model = onnx.load_from_string(buffer.getvalue())
    entry = model.metadata_props.add()
    entry.key, entry.value = CONFIG_KEY, json.dumps(policy.config.to_dict(), sort_keys=True)
    onnx.checker.check_model(model)
    data = model.SerializeToString()
    if path is not None:
        atomic_write_bytes(path, data)
    return data


def config_from_onnx_metadata(metadata: dict, source: str) -> PolicyConfig:
    """Read the policy config stored by :func:`export_step_onnx` from an ONNX metadata map."""
    if CONFIG_KEY not in metadata:
        raise ValueError(f"{source}: ONNX file has no {CONFIG_KEY!r} metadata; export it with `liquid-nav export`")
    try:
        return PolicyConfig.from_dict(json.loads(metadata[CONFIG_KEY]))
    except ValueError as error:  # JSONDecodeError and ConfigError are ValueErrors
        raise ValueError(f"{source}: invalid {CONFIG_KEY!r} metadata: {error}") from error
