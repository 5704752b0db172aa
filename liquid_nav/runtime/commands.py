"""``liquid-nav`` subcommand for the onboard runtime: ``export`` (checkpoint -> ONNX step, parity-checked
against the ONNX Runtime backend the vehicle runs)."""
from __future__ import annotations

import argparse
import os
import sys

from liquid_nav.arguments import os_error_line, output_file_argument

CHECK_STEPS = 50
CHECK_TOLERANCE = 1e-4


def register(subparsers: argparse._SubParsersAction) -> None:
    export = subparsers.add_parser("export", help="export one control step of a checkpoint to ONNX",
                                   description="Write the policy's single control step (image uint8 HxWx3, "
                                               "state, dt -> command, new state) as an ONNX file that "
                                               "the onnxruntime and tensorrt backends load directly. The file "
                                               "is written atomically, and only once the checkpoint has loaded "
                                               "(finite weights) and --check has passed.")
    export.add_argument("checkpoint", help="liquid_nav checkpoint file")
    export.add_argument("output", type=output_file_argument, help="ONNX file to write (parent directories are created)")
    export.add_argument("--check", action="store_true",
                        help=f"run {CHECK_STEPS} random steps through ONNX Runtime and compare them with PyTorch")
    export.add_argument("--force", action="store_true", help="overwrite an existing output file")
    export.set_defaults(handler=_export)


def _export(args: argparse.Namespace) -> int:
    from liquid_nav.files import atomic_write_bytes
    from liquid_nav.models.checkpoint import CheckpointError, load_checkpoint
    from liquid_nav.models.export import export_step_onnx

    problem = _output_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 1
    try:
        policy, _ = load_checkpoint(args.checkpoint, require_finite=True)
    except CheckpointError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    onnx_model = export_step_onnx(policy)
    if args.check:
        failure = _check(policy, onnx_model)
        if failure:
            print(f"error: --check failed, {args.output} not written: {failure}", file=sys.stderr)
            return 1
    try:
        atomic_write_bytes(args.output, onnx_model)
    except OSError as error:
        print(f"error: cannot write {args.output}: {os_error_line(error)}", file=sys.stderr)
        return 1
    print(f"wrote {args.output} (input {policy.config.preprocessing.shape}, state {policy.state_size})")
    return 0


def _output_problem(args: argparse.Namespace) -> str:
    """Why ``args.output`` must not be written ('' when it may)."""
    if not args.output.exists():
        return ""
    if os.path.exists(args.checkpoint) and os.path.samefile(args.output, args.checkpoint):
        return f"output {args.output} is the input checkpoint; choose another file name for the ONNX file"
    if not args.force:
        return f"output {args.output} already exists; pass --force to overwrite it"
    return ""


def _check(policy, onnx_model: bytes) -> str:
    """Compare ONNX Runtime with PyTorch over random frames; the reason it fails ('' when it passes)."""
    import numpy as np

    from liquid_nav.runtime.backends import OnnxRuntimeBackend, TorchBackend

    onnx_backend = OnnxRuntimeBackend(onnx_model)
    torch_backend = TorchBackend(policy)
    rng = np.random.default_rng(0)
    worst = 0.0
    for step in range(CHECK_STEPS):
        frame = rng.integers(0, 256, policy.config.preprocessing.shape, dtype=np.uint8)
        onnx_command, torch_command = onnx_backend.step(frame, 1 / 30), torch_backend.step(frame, 1 / 30)
        if not (np.isfinite(onnx_command).all() and np.isfinite(torch_command).all()):
            return (f"step {step} gave a non-finite command (ONNX Runtime {onnx_command.tolist()}, "
                    f"PyTorch {torch_command.tolist()})")
        worst = max(worst, float(np.abs(onnx_command - torch_command).max()))
    print(f"ONNX Runtime vs PyTorch over {CHECK_STEPS} steps: max |difference| = {worst:.2e}")
    if worst > CHECK_TOLERANCE:
        return f"max |difference| {worst:.2e} exceeds {CHECK_TOLERANCE:.0e}"
    return ""
