"""Inference backends: any frame size, kept state, reset, ONNX Runtime parity over a 200-step rollout."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from liquid_nav.models.checkpoint import save_checkpoint
from liquid_nav.models.export import export_step_onnx
from liquid_nav.models.policy import Policy, PolicyConfig
from liquid_nav.models.preprocessing import PreprocessingConfig, prepare_frame
from liquid_nav.runtime.backends import (BackendUnavailableError, make_backend, make_backend_from_policy)
from tests.models.conftest import small_policy


def _frames(count: int, seed: int, shape=(90, 160, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count,) + shape, dtype=np.uint8)


def _reference_rollout(policy, frames, dts):
    """The commands Policy.step gives for the same frames (prepared the same way)."""
    state = policy.initial_state(1)
    commands = []
    with torch.no_grad():
        for frame, dt in zip(frames, dts):
            image = torch.from_numpy(prepare_frame(frame, policy.config.preprocessing)).unsqueeze(0)
            command, state = policy.step(image, state, torch.tensor([dt], dtype=torch.float32))
            commands.append(command[0].numpy())
    return np.stack(commands)


@pytest.mark.parametrize("head", ["cfc_ncp", "ltc_ncp", "lstm"])
def test_onnxruntime_matches_torch_over_200_step_closed_loop(head, tmp_path):
    policy = small_policy(head, seed=5)
    path = save_checkpoint(tmp_path / "p.lnav", policy, {})
    backend = make_backend("onnxruntime", path)
    frames = _frames(200, seed=1)
    dts = np.random.default_rng(2).uniform(0.02, 0.05, 200)  # jittered real frame intervals
    got = np.stack([backend.step(frame, dt) for frame, dt in zip(frames, dts)])
    assert got.dtype == np.float32 and got.shape == (200, 4)
    np.testing.assert_allclose(got, _reference_rollout(policy, frames, dts), rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", ["torch", "torchscript", "onnxruntime"])
def test_backend_keeps_state_resets_and_accepts_any_frame_size(name):
    policy = small_policy("cfc_ncp", seed=3)
    backend = make_backend_from_policy(policy, name)
    assert backend.input_shape == (72, 128, 3)
    frames = _frames(5, seed=4)
    first = [backend.step(f, 1 / 30) for f in frames]
    np.testing.assert_allclose(np.stack(first), _reference_rollout(policy, frames, [1 / 30] * 5), atol=1e-5)
    assert not np.allclose(first[0], backend.step(frames[0], 1 / 30))  # state carried over
    backend.reset()
    np.testing.assert_allclose(backend.step(frames[0], 1 / 30), first[0], atol=1e-6)
    for shape in [(1, 1, 3), (480, 640, 3), (73, 129, 3), (1080, 1920, 3)]:
        assert backend.step(np.full(shape, 200, np.uint8), 0.05).shape == (4,)


def test_onnx_file_runs_without_the_checkpoint(tmp_path):
    policy = small_policy("gru", seed=9)
    onnx_path = tmp_path / "step.onnx"
    export_step_onnx(policy, onnx_path)
    backend = make_backend("onnxruntime", onnx_path)
    frames = _frames(3, seed=6)
    np.testing.assert_allclose(np.stack([backend.step(f, 0.03) for f in frames]),
                               _reference_rollout(policy, frames, [0.03] * 3), atol=1e-5)


def test_unavailable_gpu_paths_fail_clearly(tmp_path):
    policy = small_policy("cfc_ncp")
    path = save_checkpoint(tmp_path / "p.lnav", policy, {})
    with pytest.raises(BackendUnavailableError, match="tensorrt"):
        make_backend("tensorrt", path)
    if not torch.cuda.is_available():
        with pytest.raises(BackendUnavailableError, match="CUDA"):
            make_backend("torch", path, device="cuda")
    with pytest.raises(BackendUnavailableError, match="CUDAExecutionProvider"):
        make_backend("onnxruntime", path, device="cuda")
    with pytest.raises(ValueError, match="unknown inference backend 'tflite'"):
        make_backend("tflite", path)


def test_prepare_frame_resizes_with_area_and_rejects_bad_frames():
    config = PreprocessingConfig.preset("small")
    frame = np.zeros((144, 256, 3), np.uint8)
    frame[:, 128:] = 255
    out = prepare_frame(frame, config)
    assert out.shape == (72, 128, 3) and out.dtype == np.uint8
    assert out[:, :64].max() == 0 and out[:, 64:].min() == 255
    same = np.zeros((72, 128, 3), np.uint8)
    assert prepare_frame(same, config).shape == (72, 128, 3)
    with pytest.raises(ValueError, match="RGB uint8"):
        prepare_frame(np.zeros((72, 128, 3), np.float32), config)
    with pytest.raises(ValueError, match="RGB uint8"):
        prepare_frame(np.zeros((72, 128), np.uint8), config)


def test_export_uses_eval_mode_and_leaves_the_policy_mode_alone():
    import onnxruntime as ort

    policy = small_policy("cfc_ncp", seed=2, perception_dropout=0.5).train()
    session = ort.InferenceSession(export_step_onnx(policy))
    assert policy.training
    frame = _frames(1, seed=8, shape=(72, 128, 3))
    command = session.run(None, {"image": frame, "state": np.zeros((1, policy.state_size), np.float32),
                                 "dt": np.array([0.03], np.float32)})[0][0]
    np.testing.assert_allclose(command, _reference_rollout(policy.eval(), frame, [0.03])[0], atol=1e-5)


def test_thread_cap_reaches_onnxruntime_and_keeps_results(tmp_path):
    policy = small_policy("cfc_ncp", seed=6)
    path = save_checkpoint(tmp_path / "p.lnav", policy, {})
    capped = make_backend("onnxruntime", path, threads=1)
    options = capped._session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    default = make_backend("onnxruntime", path)
    frame = _frames(1, seed=7)[0]
    np.testing.assert_allclose(capped.step(frame, 1 / 30), default.step(frame, 1 / 30), atol=1e-6)


def test_onnx_files_with_foreign_io_or_bad_metadata_are_refused_at_load(tmp_path):
    import onnx

    from liquid_nav.models.export import CONFIG_KEY

    policy = small_policy("gru", seed=1)
    model = onnx.load_from_string(export_step_onnx(policy))
    model.graph.output[0].name = "velocity"
    for node in model.graph.node:
        node.output[:] = ["velocity" if out == "command" else out for out in node.output]
    renamed = tmp_path / "renamed.onnx"
    renamed.write_bytes(model.SerializeToString())
    with pytest.raises(ValueError, match="renamed.onnx: ONNX inputs .* outputs .*velocity"):
        make_backend("onnxruntime", renamed)

    other = Policy.from_config(PolicyConfig(head="gru", units=16, preprocessing=PreprocessingConfig(height=64, width=64)))
    model = onnx.load_from_string(export_step_onnx(other))
    entry = next(p for p in model.metadata_props if p.key == CONFIG_KEY)
    entry.value = json.dumps(policy.config.to_dict())  # metadata says 72 x 128, graph takes 64 x 64
    mismatched = tmp_path / "mismatched.onnx"
    mismatched.write_bytes(model.SerializeToString())
    with pytest.raises(ValueError, match="mismatched.onnx: ONNX image input is \\[1, 64, 64, 3\\]"):
        make_backend("onnxruntime", mismatched)

    entry.value = "{not json"
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(model.SerializeToString())
    with pytest.raises(ValueError, match="broken.onnx: invalid 'liquid_nav.config' metadata"):
        make_backend("onnxruntime", broken)
