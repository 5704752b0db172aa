"""``liquid-nav`` subcommand for the onboard runtime: ``export`` (checkpoint -> ONNX step, parity-checked
against the ONNX Runtime backend the vehicle runs)."""
from __future__ import annotations

import argparse
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser("export", help="export one control step of a checkpoint to ONNX",
                                   description="Write the policy's single control step (image uint8 HxWx3, "
                                               "state, dt -> command, new state) as an ONNX file that "
                                               "the onnxruntime and tensorrt backends load directly.")
    export.add_argument("checkpoint", help="liquid_nav checkpoint file")
    export.add_argument("output", help="ONNX file to write")
    export.add_argument("--check", action="store_true",
                        help="run 50 random steps through ONNX Runtime and compare them with PyTorch")
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    import numpy as np

    from liquid_nav.models.checkpoint import CheckpointError, load_checkpoint
    from liquid_nav.models.export import export_step_onnx

    try:
        policy, _ = load_checkpoint(args.checkpoint)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    export_step_onnx(policy, args.output)
    print(f"wrote {args.output} (input {policy.config.preprocessing.shape}, state {policy.state_size})")
    if args.check:
        from liquid_nav.runtime.backends import OnnxRuntimeBackend, TorchBackend

        onnx_backend = OnnxRuntimeBackend(args.output)
        torch_backend = TorchBackend(policy)
        rng = np.random.default_rng(0)
        worst = 0.0
        for _ in range(50):
            frame = rng.integers(0, 256, policy.config.preprocessing.shape, dtype=np.uint8)
            worst = max(worst, float(np.abs(onnx_backend.step(frame, 1 / 30) - torch_backend.step(frame, 1 / 30)).max()))
        print(f"ONNX Runtime vs PyTorch over 50 steps: max |difference| = {worst:.2e}")
        return 0 if worst <= 1e-4 else 1
    return 0
