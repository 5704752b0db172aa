"""Bad checkpoint and ONNX files: loading refuses each with one error naming the file and what is wrong.

``CASES`` is the table; add a row for every new kind of bad model file. ``load`` reads the file as
``model-info`` does (``load_checkpoint``) or as the controller does before flight (``make_backend``).
"""
from __future__ import annotations

import hashlib
import io
import json
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict

import pytest
import torch

from liquid_nav.models import checkpoint as ckpt
from liquid_nav.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from liquid_nav.models.export import export_step_onnx
from liquid_nav.runtime.backends import make_backend
from tests.models.conftest import small_policy


def _saved(tmp_path: Path, head: str = "cfc_ncp", **overrides) -> Path:
    return save_checkpoint(tmp_path / "p.lnav", small_policy(head, **overrides), {"note": "x"})


def _sections(path: Path):
    """(header dict, payload bytes) of a saved checkpoint."""
    data = path.read_bytes()
    start = len(ckpt.MAGIC) + 64
    (header_len,) = struct.unpack_from("<Q", data, start)
    return json.loads(data[start + 8:start + 8 + header_len]), data[start + 8 + header_len:]


def _rewrite(path: Path, header: Dict[str, Any], payload: bytes) -> Path:
    """Write ``header`` and ``payload`` with a valid hash: only what was edited is wrong."""
    encoded = json.dumps(header).encode()
    body = struct.pack("<Q", len(encoded)) + encoded + payload
    path.write_bytes(ckpt.MAGIC + hashlib.sha256(body).hexdigest().encode() + body)
    return path


def _edited_header(edit: Callable[[dict], None]) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        path = _saved(tmp_path)
        header, payload = _sections(path)
        edit(header)
        return _rewrite(path, header, payload)
    return make


def _state_dict_of_tensor(tmp_path: Path) -> Path:
    path = _saved(tmp_path)
    header, _ = _sections(path)
    buffer = io.BytesIO()
    torch.save(torch.zeros(3), buffer)
    header["payload_bytes"] = len(buffer.getvalue())
    return _rewrite(path, header, buffer.getvalue())


def _truncated(keep: int) -> Callable[[Path], Path]:
    """The first ``keep`` bytes of a checkpoint (negative: all but the last ``-keep``)."""
    def make(tmp_path: Path) -> Path:
        path = _saved(tmp_path)
        path.write_bytes(path.read_bytes()[:keep])
        return path
    return make


def _flipped_byte(tmp_path: Path) -> Path:
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    return path


def _torch_save(tmp_path: Path) -> Path:
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(3)}, path)
    return path


def _with_weights(value: float, *names: str, count: int = 2) -> Callable[[Path], Path]:
    """A gru checkpoint whose tensors ``names`` hold ``value`` in their first ``count`` entries."""
    def make(tmp_path: Path) -> Path:
        policy = small_policy("gru")
        with torch.no_grad():
            for name in names:
                policy.state_dict()[name].view(-1)[:count] = value
        return save_checkpoint(tmp_path / "diverged.lnav", policy, {})
    return make


def _onnx(edit: Callable[[Any], None]) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        import onnx

        model = onnx.load_from_string(export_step_onnx(small_policy("gru")))
        edit(model)
        path = tmp_path / "step.onnx"
        path.write_bytes(model.SerializeToString())
        return path
    return make


def _poison_first_float_initializer(model: Any) -> None:
    from onnx import numpy_helper

    for index, initializer in enumerate(model.graph.initializer):
        weights = numpy_helper.to_array(initializer)
        if weights.dtype.kind == "f" and weights.size > 1:
            weights = weights.copy()
            weights.flat[0] = float("nan")
            model.graph.initializer[index].CopyFrom(numpy_helper.from_array(weights, initializer.name))
            return


def _unknown_operator(model: Any) -> None:
    model.graph.node[0].op_type = "NoSuchOp"


def _bytes(content: bytes, name: str) -> Callable[[Path], Path]:
    def make(tmp_path: Path) -> Path:
        path = tmp_path / name
        path.write_bytes(content)
        return path
    return make


@dataclass(frozen=True)
class BadModel:
    """How to make the file (``tmp_path`` -> path), how it is loaded, the error and a regex it matches."""

    make: Callable[[Path], Path]
    load: Callable[[Path], Any]
    error: type
    match: str


def _for_flight(name: str) -> Callable[[Path], Any]:
    return lambda path: make_backend(name, path)


def _case(case_id: str, make, match: str, load=load_checkpoint, error: type = CheckpointError, marks=()):
    return pytest.param(BadModel(make, load, error, match), id=case_id, marks=marks)


CASES = [
    _case("missing-file", lambda tmp_path: tmp_path / "nope.lnav", "not found"),
    _case("empty-file", _truncated(0), "truncated"),
    _case("truncated-in-magic", _truncated(5), "truncated"),
    _case("truncated-in-hash", _truncated(40), "truncated"),
    _case("truncated-in-header", _truncated(300), "truncated"),
    _case("truncated-weights", _truncated(-10), "truncated"),
    _case("flipped-weight-byte", _flipped_byte, "corrupt.*SHA-256"),
    _case("plain-torch-file", _torch_save, "not a liquid_nav checkpoint"),
    _case("future-format-version", _edited_header(lambda h: h.update(format_version=99)),
          "format version 99 is not supported"),
    _case("weights-of-another-head", _edited_header(lambda h: h["config"].update(head="gru")),
          "weights do not match the stored config.*missing.*head.rnn"),
    _case("weights-of-another-size", _edited_header(lambda h: h["config"].update(feature_dim=64)),
          "wrong shapes.*perception.dense.weight"),
    _case("payload-size-as-string", _edited_header(lambda h: h.update(payload_bytes="12")),
          "payload_bytes must be a non-negative integer"),
    _case("negative-payload-size", _edited_header(lambda h: h.update(payload_bytes=-1)),
          "payload_bytes must be a non-negative integer"),
    _case("metadata-not-an-object", _edited_header(lambda h: h.update(metadata=[1, 2])),
          "metadata must be a JSON object"),
    _case("payload-not-a-state-dict", _state_dict_of_tensor, "not a state dict of tensors"),
    _case("unknown-config-key", _edited_header(lambda h: h["config"].update(hidden_layers=3)),
          "config is invalid.*hidden_layers"),
    _case("nan-weights-for-flight", _with_weights(float("nan"), "head.readout.bias"),
          "diverged.lnav: non-finite weights.*head.readout.bias: 2 of 4 values", load=_for_flight("torch")),
    _case("inf-weights-for-flight-on-onnxruntime", _with_weights(float("inf"), "head.rnn.weight_hh_l0", count=1),
          "non-finite weights.*head.rnn.weight_hh_l0: 1 of 768 values", load=_for_flight("onnxruntime")),
    _case("minus-inf-weights-for-flight", _with_weights(-float("inf"), "perception.dense.weight", count=5),
          "non-finite weights.*perception.dense.weight: 5 of", load=_for_flight("torchscript")),
    _case("output-scale-overflowing-float32-for-flight",
          lambda tmp_path: save_checkpoint(tmp_path / "p.lnav", small_policy("gru", output_scale=(1e39, 1, 1, 1)), {}),
          "non-finite weights.*output_scale: 1 of 4 values", load=_for_flight("torch")),
    _case("nan-weights-in-two-tensors-for-flight",
          _with_weights(float("nan"), "head.readout.weight", "head.readout.bias"),
          "head.readout.weight: 2 of 64 values are NaN or infinite \\(and 1 other tensor\\(s\\)\\)",
          load=_for_flight("torch")),
    _case("onnx-without-config-metadata", _onnx(lambda model: model.metadata_props.pop()),
          "step.onnx: ONNX file has no 'liquid_nav.config' metadata", load=_for_flight("onnxruntime"),
          error=ValueError),
    _case("onnx-for-the-torch-backend", _onnx(lambda model: None), "needs a liquid_nav checkpoint, not an ONNX file",
          load=_for_flight("torch"), error=ValueError),
    _case("garbage-onnx-file", _bytes(b"not a model", "garbage.onnx"), "garbage.onnx: not an ONNX model",
          load=_for_flight("onnxruntime"), error=ValueError),
    _case("missing-onnx-file", lambda tmp_path: tmp_path / "missing.onnx", "missing.onnx.*not found",
          load=_for_flight("onnxruntime"), error=ValueError),
    _case("onnx-with-nan-weights", _onnx(_poison_first_float_initializer),
          "step.onnx: non-finite ONNX weights, refusing to fly it", load=_for_flight("onnxruntime"), error=ValueError),
    _case("onnx-graph-onnxruntime-rejects", _onnx(_unknown_operator),
          "step.onnx: onnxruntime cannot load this model", load=_for_flight("onnxruntime"), error=ValueError),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_model_files_are_refused_with_one_line_naming_the_file(case: BadModel, tmp_path):
    path = case.make(tmp_path)
    with pytest.raises(case.error, match=case.match) as raised:
        case.load(path)
    message = str(raised.value)
    assert str(path) in message and "\n" not in message


def test_only_loading_for_flight_refuses_non_finite_weights(tmp_path):
    path = _with_weights(float("nan"), "head.readout.bias")(tmp_path)
    policy, _ = load_checkpoint(path)  # model-info and training may still read a diverged checkpoint
    assert ckpt.non_finite_tensors(policy) == ["head.readout.bias: 2 of 4 values are NaN or infinite"]
    with pytest.raises(CheckpointError, match="non-finite weights"):
        load_checkpoint(path, require_finite=True)
