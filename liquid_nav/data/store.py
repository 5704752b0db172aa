"""The episode store: one compressed, checksummed HDF5 file per episode and a JSON manifest.

Layout of a store directory (details and the measurements behind the format: docs/data.md)::

    manifest.json          {"format", "format_version", "episodes": {id: {"file", "bytes", "mtime_ns", "metadata"}}}
    episodes/<id>.h5       the arrays of one EpisodeRecord + its metadata (JSON attribute)
    .lock                  flock'ed while a writer updates the manifest

Every array is chunked with a Fletcher-32 checksum per chunk; frames are stored one frame per chunk,
Blosc/zstd-compressed, at the camera's resolution. An episode is written to a temporary file in
``episodes/`` and renamed into place, then the manifest is rewritten (temporary file + rename) under
the lock, so a killed writer leaves either the whole episode or none of it. The manifest is derived
data: opening a store checks it against the episode files (name, size, mtime) and re-reads the
metadata of any file it does not describe, so a stale or lost manifest is rebuilt, never trusted.
"""
from __future__ import annotations

import copy
import fcntl
import json
import os
import re
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

import h5py
import hdf5plugin
import numpy as np

from liquid_nav.files import atomic_write_bytes
from liquid_nav.sim.rollout import EpisodeRecord

FORMAT = "liquid_nav.episode_store"
EPISODE_FORMAT = "liquid_nav.episode"
FORMAT_VERSION = 1
MANIFEST_NAME = "manifest.json"
EPISODES_DIR = "episodes"
EPISODE_SUFFIX = ".h5"
TEMPORARY_SUFFIX = ".tmp"
COMMAND_CHANNELS = ("vx", "vy", "vz", "yaw_rate")
_EPISODE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,199}")
_FRAME_COMPRESSION = hdf5plugin.Blosc(cname="zstd", clevel=3, shuffle=hdf5plugin.Blosc.NOSHUFFLE)

PathLike = Union[str, "os.PathLike[str]"]


@dataclass(frozen=True)
class ArraySpec:
    """How one EpisodeRecord array is stored: dtype, trailing shape (None: any size) and what indexes rows."""

    dtype: Any
    trailing: Tuple[Optional[int], ...]
    rows: str  # "observation" (T + 1 rows), "command" (T rows) or "episode" (the whole array)
    optional: bool = False


ARRAYS: Dict[str, ArraySpec] = {
    "frames": ArraySpec(np.uint8, (None, None, 3), "observation", optional=True),
    "stamps_ns": ArraySpec(np.int64, (), "observation"),
    "dts": ArraySpec(np.float32, (), "observation"),
    "positions": ArraySpec(np.float64, (3,), "observation"),
    "quaternions": ArraySpec(np.float64, (4,), "observation"),
    "velocities_body": ArraySpec(np.float64, (3,), "observation"),
    "yaws": ArraySpec(np.float64, (), "observation"),
    "distances": ArraySpec(np.float64, (), "observation"),
    "bearings": ArraySpec(np.float64, (), "observation"),
    "collisions": ArraySpec(np.bool_, (), "observation"),
    "commands": ArraySpec(np.float32, (4,), "command"),
    "labels": ArraySpec(np.float32, (4,), "command", optional=True),
    "target_position": ArraySpec(np.float64, (3,), "episode"),
}
ARRAY_NAMES = tuple(ARRAYS)
# What the store itself writes into every episode's metadata (a caller may pass them only with equal values).
STORE_KEYS = ("episode_id", "frames", "steps", "outcome", "reason", "seed", "world", "duration_s", "shapes")


class DatasetError(RuntimeError):
    """A store or episode that cannot be read: the message names the episode and the file."""

    def __init__(self, message: str, episode_id: Optional[str] = None, path: Optional[Path] = None) -> None:
        super().__init__(message)
        self.episode_id = episode_id
        self.path = path


@dataclass
class StoredEpisode:
    """One episode read back from a store: the arrays of its EpisodeRecord plus its metadata."""

    episode_id: str
    metadata: Dict[str, Any]
    stamps_ns: np.ndarray
    dts: np.ndarray
    commands: np.ndarray
    positions: np.ndarray
    quaternions: np.ndarray
    velocities_body: np.ndarray
    yaws: np.ndarray
    distances: np.ndarray
    bearings: np.ndarray
    collisions: np.ndarray
    target_position: np.ndarray
    labels: Optional[np.ndarray] = None
    frames: Optional[np.ndarray] = None

    @property
    def steps(self) -> int:
        return len(self.commands)


def check_episode_id(episode_id: str) -> str:
    """``episode_id`` if it is a safe file name (letters, digits, ``_ . -``; not starting with ``.``)."""
    if not isinstance(episode_id, str) or not _EPISODE_ID.fullmatch(episode_id):
        raise ValueError(f"episode id {episode_id!r} must be 1-200 letters, digits, '_', '.' or '-', "
                         "starting with a letter or digit")
    return episode_id


def record_arrays(record: EpisodeRecord) -> Dict[str, np.ndarray]:
    """The arrays of ``record`` in their stored dtypes, checked against each other (ValueError names the array)."""
    arrays: Dict[str, np.ndarray] = {}
    for name, spec in ARRAYS.items():
        value = getattr(record, name)
        if value is None:
            if not spec.optional:
                raise ValueError(f"record.{name} is required")
            continue
        array = np.asarray(value)
        if name == "frames" and array.dtype != np.uint8:
            raise ValueError(f"record.{name} must be uint8, got {array.dtype}")
        if not np.can_cast(array.dtype, spec.dtype, "same_kind"):
            raise ValueError(f"record.{name} must be {np.dtype(spec.dtype)}, got {array.dtype}")
        arrays[name] = np.ascontiguousarray(array, dtype=spec.dtype)
    observations = len(arrays["stamps_ns"])
    if observations < 1:
        raise ValueError("record has no observation (stamps_ns is empty)")
    for name, array in arrays.items():
        spec = ARRAYS[name]
        rows = {"observation": (observations,), "command": (observations - 1,), "episode": ()}[spec.rows]
        expected = rows + spec.trailing
        if array.ndim != len(expected) or any(e is not None and e != a for e, a in zip(expected, array.shape)):
            shown = tuple("any" if e is None else e for e in expected)
            raise ValueError(f"record.{name} has shape {array.shape}, expected {shown} "
                             f"({observations} observations, {observations - 1} commands)")
    return arrays


def _json_text(metadata: Dict[str, Any], what: str) -> str:
    try:
        return json.dumps(metadata, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{what} must be JSON-serialisable (finite numbers, str keys): {error}") from error


def _fsync_directory(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


class EpisodeStore:
    """A directory of episodes (created if missing unless ``create=False``); see the module docstring."""

    def __init__(self, root: PathLike, create: bool = True) -> None:
        self.root = Path(root)
        self.episodes_dir = self.root / EPISODES_DIR
        self.manifest_path = self.root / MANIFEST_NAME
        if not self.episodes_dir.is_dir():
            if not create:
                raise DatasetError(f"{self.root}: not an episode store (no {EPISODES_DIR}/ directory)", path=self.root)
            self.episodes_dir.mkdir(parents=True, exist_ok=True)
        with self._locked():
            stored = self._read_manifest()
            self._entries = self._reconcile(stored or {})
            if self._entries != stored:
                self._write_manifest()

    # --- reading -------------------------------------------------------------------------------------

    def episode_ids(self) -> List[str]:
        return sorted(self._entries)

    def has(self, episode_id: str) -> bool:
        return episode_id in self._entries

    def episode_path(self, episode_id: str) -> Path:
        return self.episodes_dir / f"{check_episode_id(episode_id)}{EPISODE_SUFFIX}"

    def metadata(self, episode_id: str) -> Dict[str, Any]:
        """The episode's metadata (the caller's and the store's keys) from the manifest."""
        return copy.deepcopy(self._entry(episode_id)["metadata"])

    def read(self, episode_id: str, frames: bool = True) -> StoredEpisode:
        """The whole episode; ``frames=False`` skips decompressing the images (``frames`` is then None)."""
        names = [name for name in ARRAY_NAMES if frames or name != "frames"]
        arrays, metadata = self._read(episode_id, names, 0, None)
        return StoredEpisode(episode_id=episode_id, metadata=metadata, **arrays)

    def read_arrays(self, episode_id: str, names: Sequence[str], start: int = 0,
                    stop: Optional[int] = None) -> Dict[str, Optional[np.ndarray]]:
        """Rows ``start:stop`` of the named arrays (None for an optional array the episode lacks).

        Observation ``k`` and command ``k`` share row ``k``, so one slice gives a training window of
        frames, dts and the commands answered to them; ``target_position`` is returned whole. Only the
        frame chunks inside the slice are read and decompressed.
        """
        unknown = [name for name in names if name not in ARRAYS]
        if unknown:
            raise ValueError(f"unknown arrays {unknown}; expected some of {', '.join(ARRAY_NAMES)}")
        return self._read(episode_id, names, start, stop)[0]

    def verify(self) -> List[Tuple[str, str]]:
        """(episode_id, error) for every episode that cannot be read completely (every array, every chunk)."""
        problems = []
        for episode_id in self.episode_ids():
            try:
                self.read(episode_id, frames=True)
            except DatasetError as error:
                problems.append((episode_id, str(error)))
        return problems

    def summary(self) -> Dict[str, Any]:
        """Counts over the store (episodes, frames, worlds, outcomes, sources, bytes) and command / dt statistics.

        Reads every episode's commands, labels and dts (not its frames); episodes that cannot be read
        are listed under ``corrupt`` and left out of the counts.
        """
        counts: Dict[str, Dict[str, int]] = {"worlds": {}, "outcomes": {}, "sources": {}, "frame_shapes": {}}
        series: Dict[str, List[np.ndarray]] = {"commands": [], "labels": [], "dts": []}
        corrupt, frames, steps, duration = [], 0, 0, 0.0
        for episode_id in self.episode_ids():
            try:
                metadata = self._entry(episode_id)["metadata"]
                arrays = self.read_arrays(episode_id, tuple(series))
            except DatasetError as error:
                corrupt.append({"episode_id": episode_id, "error": str(error)})
                continue
            frames += metadata["frames"]
            steps += metadata["steps"]
            duration += metadata["duration_s"]
            shape = metadata["shapes"].get("frames")
            for key, value in (("worlds", metadata["world"]), ("outcomes", metadata["outcome"]),
                               ("sources", metadata.get("source", "unknown")),
                               ("frame_shapes", "x".join(map(str, shape[1:3])) if shape else "none")):
                counts[key][str(value)] = counts[key].get(str(value), 0) + 1
            for name, array in arrays.items():
                if array is not None:
                    series[name].append(array.reshape(len(array), -1))
        episode_bytes = sum(entry["bytes"] for entry in self._entries.values())
        return {
            "root": str(self.root), "format_version": FORMAT_VERSION,
            "episodes": len(self._entries) - len(corrupt), "corrupt": corrupt,
            "frames": frames, "steps": steps, "duration_s": duration,
            "bytes": episode_bytes + (self.manifest_path.stat().st_size if self.manifest_path.exists() else 0),
            **{key: dict(sorted(value.items())) for key, value in counts.items()},
            "statistics": {name: _channel_statistics(parts, COMMAND_CHANNELS if name != "dts" else ("dt",))
                           for name, parts in series.items()},
            "temporary_files": len(list(self.episodes_dir.glob(f".*{TEMPORARY_SUFFIX}"))),
        }

    # --- writing -------------------------------------------------------------------------------------

    def write(self, episode_id: str, record: EpisodeRecord, metadata: Dict[str, Any], overwrite: bool = False) -> None:
        """Store ``record`` as ``episode_id`` with the caller's JSON-serialisable ``metadata``.

        The store adds ``STORE_KEYS`` (frames, steps, outcome, reason, seed, world, duration_s, shapes);
        a caller key among them must agree with the record. Atomic: the episode appears whole or not at all.
        """
        path = self.episode_path(episode_id)
        arrays = record_arrays(record)
        full_metadata = self._episode_metadata(episode_id, record, arrays, metadata)
        text = _json_text(full_metadata, "episode metadata")
        handle, temporary = tempfile.mkstemp(prefix=f".{episode_id}.", suffix=TEMPORARY_SUFFIX, dir=self.episodes_dir)
        os.close(handle)
        try:
            with h5py.File(temporary, "w") as file:
                file.attrs["format"] = EPISODE_FORMAT
                file.attrs["format_version"] = FORMAT_VERSION
                file.attrs["metadata"] = text
                for name, array in arrays.items():
                    _create_dataset(file, name, array)
            descriptor = os.open(temporary, os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            with self._locked():
                if path.exists() and not overwrite:
                    raise ValueError(f"episode {episode_id!r} already exists in {self.root} (pass overwrite=True)")
                entries = self._reconcile(self._read_manifest() or {})  # other writers' episodes too
                os.replace(temporary, path)
                _fsync_directory(self.episodes_dir)
                stat = path.stat()
                entries[episode_id] = {"file": f"{EPISODES_DIR}/{path.name}", "bytes": stat.st_size,
                                       "mtime_ns": stat.st_mtime_ns, "metadata": json.loads(text)}
                self._entries = entries
                self._write_manifest()
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)

    # --- internals -----------------------------------------------------------------------------------

    @staticmethod
    def _episode_metadata(episode_id: str, record: EpisodeRecord, arrays: Dict[str, np.ndarray],
                          metadata: Dict[str, Any]) -> Dict[str, Any]:
        if not isinstance(metadata, dict):
            raise ValueError(f"metadata must be a dict, got {type(metadata).__name__}")
        stamps = arrays["stamps_ns"]
        own = {"episode_id": episode_id, "frames": len(stamps), "steps": len(stamps) - 1,
               "outcome": str(record.outcome), "reason": str(record.reason), "seed": int(record.seed),
               "world": str(record.world), "duration_s": float(stamps[-1] - stamps[0]) * 1e-9,
               "shapes": {name: list(array.shape) for name, array in arrays.items()}}
        clashes = [key for key in STORE_KEYS if key in metadata and metadata[key] != own[key]]
        if clashes:
            raise ValueError(f"metadata keys {clashes} are set by the store and disagree with the record: "
                             + ", ".join(f"{key}={metadata[key]!r} vs {own[key]!r}" for key in clashes))
        return {**metadata, **own}

    def _entry(self, episode_id: str) -> Dict[str, Any]:
        if episode_id not in self._entries:
            raise KeyError(f"no episode {episode_id!r} in {self.root}")
        entry = self._entries[episode_id]
        if "error" in entry:
            raise DatasetError(entry["error"], episode_id, self.episode_path(episode_id))
        return entry

    def _read(self, episode_id: str, names: Sequence[str], start: int,
              stop: Optional[int]) -> Tuple[Dict[str, Optional[np.ndarray]], Dict[str, Any]]:
        self._entry(episode_id)  # an unknown id is a KeyError, one found unreadable when listed a DatasetError
        path = self.episode_path(episode_id)

        def fail(what: str, error: Optional[BaseException] = None) -> DatasetError:
            return episode_error(episode_id, path, what, error)

        arrays: Dict[str, Optional[np.ndarray]] = {}
        with _open_episode(episode_id, path) as file:
            metadata = _file_metadata(file, episode_id, path)
            shapes = metadata["shapes"]
            for name in names:
                if name not in shapes:
                    if not ARRAYS[name].optional:
                        raise fail(f"its metadata lists no array {name!r}")
                    arrays[name] = None
                    continue
                if name not in file:
                    raise fail(f"array {name!r} is missing")
                dataset = file[name]
                if list(dataset.shape) != shapes[name] or dataset.dtype != ARRAYS[name].dtype:
                    raise fail(f"array {name!r} is {dataset.dtype} {list(dataset.shape)}, metadata says "
                               f"{np.dtype(ARRAYS[name].dtype)} {shapes[name]}")
                try:
                    arrays[name] = dataset[()] if ARRAYS[name].rows == "episode" else dataset[start:stop]
                except (OSError, ValueError, RuntimeError) as error:
                    raise fail(f"cannot read array {name!r} (corrupt chunk)", error) from error
        return arrays, metadata

    def _read_manifest(self) -> Optional[Dict[str, Dict[str, Any]]]:
        """The manifest's episode entries; None when it is missing or unreadable (it is rebuilt from the files)."""
        try:
            manifest = json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
            return None
        if manifest.get("format_version") != FORMAT_VERSION:
            raise DatasetError(f"{self.manifest_path}: store format version {manifest.get('format_version')!r} is "
                               f"not supported (this liquid_nav reads version {FORMAT_VERSION})",
                               path=self.manifest_path)
        episodes = manifest.get("episodes")
        return episodes if isinstance(episodes, dict) else None

    def _reconcile(self, entries: Dict[str, Dict[str, Any]]) -> Dict[str, Dict[str, Any]]:
        """Entries for exactly the episode files on disk: kept where name, size and mtime match, else re-read."""
        reconciled = {}
        for path in sorted(self.episodes_dir.glob(f"*{EPISODE_SUFFIX}")):
            episode_id = path.name[:-len(EPISODE_SUFFIX)]
            if not _EPISODE_ID.fullmatch(episode_id):
                continue
            stat = path.stat()
            entry = entries.get(episode_id)
            if not (isinstance(entry, dict) and entry.get("bytes") == stat.st_size
                    and entry.get("mtime_ns") == stat.st_mtime_ns):
                entry = {"file": f"{EPISODES_DIR}/{path.name}", "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns,
                         **_entry_from_file(episode_id, path)}
            reconciled[episode_id] = entry
        return reconciled

    def _write_manifest(self) -> None:
        manifest = {"format": FORMAT, "format_version": FORMAT_VERSION, "episodes": self._entries}
        atomic_write_bytes(self.manifest_path, (json.dumps(manifest, sort_keys=True, indent=1) + "\n").encode("utf-8"))

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / ".lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            yield


def _create_dataset(file: h5py.File, name: str, array: np.ndarray) -> None:
    if name == "frames":
        file.create_dataset(name, data=array, chunks=(1,) + array.shape[1:], fletcher32=True, **_FRAME_COMPRESSION)
    else:
        file.create_dataset(name, data=array, chunks=True, fletcher32=True)


def episode_error(episode_id: str, path: Path, what: str, error: Optional[BaseException] = None) -> DatasetError:
    """The DatasetError for episode ``episode_id`` at ``path``: ``what`` went wrong (and the library's ``error``)."""
    detail = f": {error}" if error is not None else ""
    return DatasetError(f"episode {episode_id!r} ({path}): {what}{detail}", episode_id, path)


def _open_episode(episode_id: str, path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except (OSError, ValueError) as error:
        raise episode_error(episode_id, path, "cannot open the episode file (truncated or not HDF5)", error) from error


def _file_metadata(file: h5py.File, episode_id: str, path: Path) -> Dict[str, Any]:
    """The metadata attribute of an open episode file, checked (format, version, JSON, the store's keys)."""
    if file.attrs.get("format") != EPISODE_FORMAT:
        raise episode_error(episode_id, path, f"not a liquid_nav episode file (format attribute "
                                              f"{file.attrs.get('format')!r})")
    if file.attrs.get("format_version") != FORMAT_VERSION:
        raise episode_error(episode_id, path, f"episode format version {file.attrs.get('format_version')!r} is "
                                              f"not supported (this liquid_nav reads version {FORMAT_VERSION})")
    try:
        metadata = json.loads(file.attrs["metadata"])
    except (KeyError, TypeError, ValueError) as error:
        raise episode_error(episode_id, path, "bad metadata JSON", error) from error
    if not isinstance(metadata, dict) or not isinstance(metadata.get("shapes"), dict):
        raise episode_error(episode_id, path, "bad metadata (needs a JSON object with 'shapes')")
    missing = [key for key in STORE_KEYS if key not in metadata]
    if missing:
        raise episode_error(episode_id, path, f"bad metadata (missing {missing})")
    return metadata


def _entry_from_file(episode_id: str, path: Path) -> Dict[str, Any]:
    """{"metadata": ...} read from the episode file, or {"error": message} when it cannot be read."""
    try:
        with _open_episode(episode_id, path) as file:
            return {"metadata": _file_metadata(file, episode_id, path)}
    except DatasetError as error:
        return {"error": str(error)}


def _channel_statistics(parts: List[np.ndarray], channels: Sequence[str]) -> Optional[Dict[str, Any]]:
    """Per-channel count, mean, std, min, max over the concatenated rows (None when there are none)."""
    if not parts or not sum(len(part) for part in parts):
        return None
    values = np.concatenate(parts).astype(np.float64)
    return {"channels": list(channels), "count": int(len(values)), "mean": values.mean(axis=0).tolist(),
            "std": values.std(axis=0).tolist(), "min": values.min(axis=0).tolist(), "max": values.max(axis=0).tolist()}
