"""Checkpoints: round trip, atomic write, and a clear CheckpointError for every kind of bad file."""
from __future__ import annotations

import json
import struct

import pytest
import torch

from liquid_nav.models import checkpoint as ckpt
from liquid_nav.models.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from tests.models.conftest import HEADS, random_images, small_policy


@pytest.mark.parametrize("head", HEADS)
def test_round_trip_restores_weights_config_and_metadata(head, tmp_path, rng):
    policy = small_policy(head, seed=7)
    metadata = {"dataset": {"episodes": 12, "worlds": ["forest"]}, "val_loss": 0.25}
    path = save_checkpoint(tmp_path / "policy.lnav", policy, metadata)
    loaded, loaded_meta = load_checkpoint(path)
    assert loaded_meta == metadata
    assert loaded.config == policy.config
    assert not loaded.training
    images, dts = random_images(2, 3, rng), torch.full((2, 3), 0.04)
    torch.testing.assert_close(loaded(images, dts), policy(images, dts), rtol=0, atol=0)
    assert [p.name for p in tmp_path.iterdir()] == ["policy.lnav"]  # no temporary file left behind


def _saved(tmp_path, **kwargs):
    return save_checkpoint(tmp_path / "p.lnav", small_policy(**kwargs), {"note": "x"})


def test_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nope.lnav")


@pytest.mark.parametrize("keep", [0, 5, 40, 300, -10])
def test_truncated_file(tmp_path, keep):
    path = _saved(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[:keep] if keep >= 0 else data[:keep])
    with pytest.raises(CheckpointError, match="truncated"):
        load_checkpoint(path)


def test_flipped_weight_byte_is_a_hash_mismatch(tmp_path):
    path = _saved(tmp_path)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt.*SHA-256"):
        load_checkpoint(path)


def test_not_a_checkpoint(tmp_path):
    path = tmp_path / "model.pt"
    torch.save({"w": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match="not a liquid_nav checkpoint"):
        load_checkpoint(path)


def _rewrite_header(path, edit):
    """Rewrite the JSON header with ``edit`` applied and a recomputed, valid hash."""
    import hashlib

    data = path.read_bytes()
    start = len(ckpt.MAGIC) + 64
    (header_len,) = struct.unpack_from("<Q", data, start)
    header = json.loads(data[start + 8:start + 8 + header_len])
    edit(header)
    new_header = json.dumps(header).encode()
    body = struct.pack("<Q", len(new_header)) + new_header + data[start + 8 + header_len:]
    path.write_bytes(ckpt.MAGIC + hashlib.sha256(body).hexdigest().encode() + body)


def test_wrong_format_version(tmp_path):
    path = _saved(tmp_path)
    _rewrite_header(path, lambda h: h.update(format_version=99))
    with pytest.raises(CheckpointError, match="format version 99 is not supported"):
        load_checkpoint(path)


def test_config_weight_mismatch_names_the_tensors(tmp_path):
    path = _saved(tmp_path, head="cfc_ncp")
    _rewrite_header(path, lambda h: h["config"].update(head="gru"))
    with pytest.raises(CheckpointError, match="weights do not match the stored config.*missing.*head.rnn"):
        load_checkpoint(path)
    _rewrite_header(path, lambda h: h["config"].update(head="cfc_ncp", feature_dim=64))
    with pytest.raises(CheckpointError, match="wrong shapes.*perception.dense.weight"):
        load_checkpoint(path)


@pytest.mark.parametrize("field, value, message", [
    ("payload_bytes", "12", "payload_bytes must be a non-negative integer"),
    ("payload_bytes", -1, "payload_bytes must be a non-negative integer"),
    ("metadata", [1, 2], "metadata must be a JSON object"),
])
def test_ill_typed_header_fields_are_checkpoint_errors(tmp_path, field, value, message):
    path = _saved(tmp_path)
    _rewrite_header(path, lambda h: h.update({field: value}))
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(path)


def test_payload_that_is_not_a_state_dict(tmp_path):
    import hashlib
    import io

    path = _saved(tmp_path)
    buffer = io.BytesIO()
    torch.save(torch.zeros(3), buffer)
    payload = buffer.getvalue()
    data = path.read_bytes()
    start = len(ckpt.MAGIC) + 64
    (header_len,) = struct.unpack_from("<Q", data, start)
    header = json.loads(data[start + 8:start + 8 + header_len])
    header["payload_bytes"] = len(payload)
    new_header = json.dumps(header).encode()
    body = struct.pack("<Q", len(new_header)) + new_header + payload
    path.write_bytes(ckpt.MAGIC + hashlib.sha256(body).hexdigest().encode() + body)
    with pytest.raises(CheckpointError, match="not a state dict of tensors"):
        load_checkpoint(path)


def test_invalid_stored_config(tmp_path):
    path = _saved(tmp_path)
    _rewrite_header(path, lambda h: h["config"].update(hidden_layers=3))
    with pytest.raises(CheckpointError, match="config is invalid.*hidden_layers"):
        load_checkpoint(path)


def test_unserialisable_metadata_is_refused_and_old_file_kept(tmp_path):
    path = _saved(tmp_path)
    before = path.read_bytes()
    with pytest.raises(ValueError, match="JSON-serialisable"):
        save_checkpoint(path, small_policy(), {"loss": float("nan")})
    assert path.read_bytes() == before


def test_loading_leaves_the_global_random_state_alone(tmp_path):
    path = _saved(tmp_path)
    torch.manual_seed(5)
    expected = torch.rand(3)
    torch.manual_seed(5)
    load_checkpoint(path)
    torch.testing.assert_close(torch.rand(3), expected, rtol=0, atol=0)
