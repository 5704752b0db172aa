"""Policy checkpoints: one self-describing, hash-protected file.

Layout (all integers little-endian)::

    b"LIQUIDNAV-CKPT\\n"                       magic
    64 ASCII hex digits                        SHA-256 of everything after this field
    uint64                                     length of the JSON header in bytes
    JSON header                                {"format_version", "config", "metadata", "payload_bytes"}
    payload                                    torch.save(state_dict) bytes (loaded with weights_only)

``config`` is :meth:`PolicyConfig.to_dict` (it holds the preprocessing constants: input size, channel
order, normalisation); ``metadata`` is any JSON-serialisable dict (training data summary, metrics ...).
Files are written to a temporary file in the same directory and renamed into place. Weights holding NaN
or infinity load unless the caller asks for finite ones (``require_finite``: the inference backends do).
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import struct
from pathlib import Path
from typing import Any, Dict, List, NamedTuple, Union

import torch

from liquid_nav.files import atomic_write_bytes
from liquid_nav.models.policy import ConfigError, Policy, PolicyConfig
from liquid_nav.models.wiring import WiringError

MAGIC = b"LIQUIDNAV-CKPT\n"
FORMAT_VERSION = 1
_HASH_LEN = 64
_LEN_FORMAT = "<Q"
_PREFIX_LEN = len(MAGIC) + _HASH_LEN + struct.calcsize(_LEN_FORMAT)

PathLike = Union[str, "os.PathLike[str]"]


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, truncated, corrupt, of another format version or mismatched."""


class LoadedCheckpoint(NamedTuple):
    """What :func:`load_checkpoint` returns; unpacks as ``policy, metadata = load_checkpoint(path)``."""

    policy: Policy
    metadata: Dict[str, Any]


def save_checkpoint(path: PathLike, policy: Policy, metadata: Dict[str, Any]) -> Path:
    """Write ``policy`` (weights + config) and JSON-serialisable ``metadata`` atomically to ``path``."""
    path = Path(path)
    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in policy.state_dict().items()}, buffer)
    payload = buffer.getvalue()
    try:
        header = json.dumps({"format_version": FORMAT_VERSION, "config": policy.config.to_dict(),
                             "metadata": metadata, "payload_bytes": len(payload)}, sort_keys=True,
                            allow_nan=False).encode("utf-8")
    except (TypeError, ValueError) as error:
        raise ValueError(f"checkpoint metadata must be JSON-serialisable (finite numbers, str keys): {error}") from error
    body = struct.pack(_LEN_FORMAT, len(header)) + header + payload
    digest = hashlib.sha256(body).hexdigest().encode("ascii")
    return atomic_write_bytes(path, MAGIC + digest + body)


def _read_header(path: Path, data: bytes) -> Dict[str, Any]:
    if not data.startswith(MAGIC):
        if MAGIC.startswith(data):
            raise CheckpointError(f"{path}: truncated checkpoint ({len(data)} bytes, not even a complete header)")
        raise CheckpointError(f"{path}: not a liquid_nav checkpoint (expected the magic bytes {MAGIC!r} at the start)")
    if len(data) < _PREFIX_LEN:
        raise CheckpointError(f"{path}: truncated checkpoint ({len(data)} bytes, header needs {_PREFIX_LEN})")
    (header_len,) = struct.unpack_from(_LEN_FORMAT, data, len(MAGIC) + _HASH_LEN)
    if _PREFIX_LEN + header_len > len(data):
        raise CheckpointError(f"{path}: truncated checkpoint (header declares {header_len} bytes, "
                              f"file has {len(data) - _PREFIX_LEN} after the prefix)")
    try:
        header = json.loads(data[_PREFIX_LEN:_PREFIX_LEN + header_len].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as error:
        raise CheckpointError(f"{path}: corrupt checkpoint header (not valid JSON: {error})") from error
    if not isinstance(header, dict) or not {"format_version", "config", "payload_bytes"} <= set(header):
        raise CheckpointError(f"{path}: corrupt checkpoint header (needs format_version, config, payload_bytes)")
    payload_bytes = header["payload_bytes"]
    if not isinstance(payload_bytes, int) or isinstance(payload_bytes, bool) or payload_bytes < 0:
        raise CheckpointError(f"{path}: corrupt checkpoint header (payload_bytes must be a non-negative integer, "
                              f"got {payload_bytes!r})")
    if not isinstance(header.get("metadata") or {}, dict):
        raise CheckpointError(f"{path}: corrupt checkpoint header (metadata must be a JSON object, "
                              f"got {type(header['metadata']).__name__})")
    return header


def load_checkpoint(path: PathLike, map_location: str = "cpu", require_finite: bool = False) -> LoadedCheckpoint:
    """Load a checkpoint into a new :class:`Policy` (eval mode); every failure is a :class:`CheckpointError`.

    ``require_finite`` (what loading for flight passes) also refuses weights holding NaN or infinity,
    naming the first such tensor; otherwise :func:`non_finite_tensors` tells the caller.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint file not found")
    data = path.read_bytes()
    header = _read_header(path, data)
    version = header["format_version"]
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version!r} is not supported "
                              f"(this liquid_nav reads version {FORMAT_VERSION})")
    (header_len,) = struct.unpack_from(_LEN_FORMAT, data, len(MAGIC) + _HASH_LEN)
    payload_start = _PREFIX_LEN + header_len
    actual = len(data) - payload_start
    if actual < header["payload_bytes"]:
        raise CheckpointError(f"{path}: truncated checkpoint (weights need {header['payload_bytes']} bytes, "
                              f"file has {actual})")
    stored = data[len(MAGIC):len(MAGIC) + _HASH_LEN].decode("ascii", errors="replace")
    computed = hashlib.sha256(data[len(MAGIC) + _HASH_LEN:]).hexdigest()
    if actual != header["payload_bytes"] or stored != computed:
        raise CheckpointError(f"{path}: corrupt checkpoint (SHA-256 mismatch: stored {stored[:16]}..., "
                              f"computed {computed[:16]}...)")
    try:
        config = PolicyConfig.from_dict(header["config"])
        policy = Policy.from_config(config)  # seeded in a forked RNG: loading leaves the caller's RNG alone
    except (ConfigError, WiringError, ValueError, TypeError) as error:
        raise CheckpointError(f"{path}: the stored model config is invalid: {error}") from error
    try:
        state_dict = torch.load(io.BytesIO(data[payload_start:]), map_location=map_location, weights_only=True)
    except Exception as error:  # noqa: BLE001 - any unpickling failure means a bad payload
        raise CheckpointError(f"{path}: cannot read the weights: {error}") from error
    _load_weights(path, policy, state_dict)
    bad = non_finite_tensors(policy) if require_finite else []
    if bad:
        more = f" (and {len(bad) - 1} other tensor(s))" if len(bad) > 1 else ""
        raise CheckpointError(f"{path}: non-finite weights, refusing to load them for flight: {bad[0]}{more}")
    return LoadedCheckpoint(policy.to(map_location).eval(), dict(header.get("metadata") or {}))


def _load_weights(path: Path, policy: Policy, state_dict: Any) -> None:
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError(f"{path}: the weights payload is not a state dict of tensors "
                              f"(got {type(state_dict).__name__})")
    expected = policy.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong_shape = [f"{k}: file {tuple(state_dict[k].shape)} vs config {tuple(v.shape)}"
                   for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    if missing or unexpected or wrong_shape:
        raise CheckpointError(f"{path}: weights do not match the stored config (head {policy.config.head!r}): "
                              f"missing {missing[:5]}{'...' if len(missing) > 5 else ''}, "
                              f"unexpected {unexpected[:5]}{'...' if len(unexpected) > 5 else ''}, "
                              f"wrong shapes {wrong_shape[:5]}")
    policy.load_state_dict(state_dict)


def non_finite_tensors(policy: Policy) -> List[str]:
    """``"name: k of n values are NaN or infinite"`` for each weight or buffer of ``policy`` that has any."""
    found = []
    for name, tensor in policy.state_dict().items():
        if tensor.is_floating_point():
            count = int((~torch.isfinite(tensor)).sum())
            if count:
                found.append(f"{name}: {count} of {tensor.numel()} values are NaN or infinite")
    return found
