"""ROS 2 bags (MCAP) to and from the episode store, through the pure-Python ``rosbags`` library (no ROS install).

Export writes one rosbag2 directory per episode (zstd-compressed MCAP chunks) that ``ros2 bag`` and
Foxglove open; import turns a bag recorded on a real drone (or an exported one) into an episode.
Topics, types and the alignment rules are listed in docs/data.md.
"""
from __future__ import annotations

import json
import math
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import cv2
import numpy as np
from rosbags.highlevel import AnyReader, AnyReaderError
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from liquid_nav.data.store import STORE_KEYS, EpisodeStore, StoredEpisode
from liquid_nav.runtime.image_conversion import ImageConversionError, image_to_rgb
from liquid_nav.sim.rollout import EpisodeRecord
from liquid_nav.stamps import DtRule, sequence_dts

IMAGE_TOPIC = "/camera/image_raw"
CAMERA_INFO_TOPIC = "/camera/camera_info"
LABEL_TOPIC = "/liquid_nav/cmd_label"
EXECUTED_TOPIC = "/liquid_nav/cmd_executed"
ODOM_TOPIC = "/odom"
TF_TOPIC = "/tf"
METADATA_TOPIC = "/liquid_nav/episode_metadata"
CAMERA_FRAME, BODY_FRAME, ODOM_FRAME = "camera", "base_link", "odom"

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED_IMAGE = "sensor_msgs/msg/CompressedImage"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
TWIST_STAMPED = "geometry_msgs/msg/TwistStamped"
ODOMETRY = "nav_msgs/msg/Odometry"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
STRING = "std_msgs/msg/String"
ALIGNMENTS = ("nearest", "interpolate")

_TYPESTORE = get_typestore(Stores.ROS2_JAZZY)


class BagError(ValueError):
    """A bag that cannot be written or imported; the message says which topic, message or file and why."""


@dataclass(frozen=True)
class BagExport:
    """What :func:`export_episode_bag` wrote: the bag directory, messages per topic and what it left out."""

    path: Path
    messages: Dict[str, int]
    notes: List[str] = field(default_factory=list)


@dataclass(frozen=True)
class BagImportConfig:
    """Which topics hold what, and how labels and poses are matched to frame stamps.

    ``label_topic`` (TwistStamped) gives the labels; without it they are the body velocities of
    ``odom_topic`` (Odometry), which also gives the pose. With neither, ``LABEL_TOPIC`` is used.
    ``executed_topic`` (TwistStamped) defaults to ``EXECUTED_TOPIC`` when the bag has it, otherwise the
    executed commands are the labels; ``camera_info_topic`` defaults to ``CAMERA_INFO_TOPIC`` when present.
    A frame with no sample within ``max_offset_s`` on a topic it needs is dropped.
    """

    image_topic: str = IMAGE_TOPIC
    label_topic: Optional[str] = None
    odom_topic: Optional[str] = None
    executed_topic: Optional[str] = None
    camera_info_topic: Optional[str] = None
    alignment: str = "nearest"
    max_offset_s: float = 0.05
    dt_rule: DtRule = DtRule()

    def __post_init__(self) -> None:
        if self.alignment not in ALIGNMENTS:
            raise ValueError(f"alignment must be one of {', '.join(ALIGNMENTS)}, got {self.alignment!r}")
        if not (isinstance(self.max_offset_s, (int, float)) and 0.0 <= self.max_offset_s < math.inf):
            raise ValueError(f"max_offset_s must be a finite number >= 0, got {self.max_offset_s!r}")


@dataclass
class BagEpisode:
    """An episode read from a bag: the record and metadata to hand to :meth:`EpisodeStore.write`."""

    record: EpisodeRecord
    metadata: Dict[str, Any]
    dropped_frames: int


# --- export ------------------------------------------------------------------------------------------


def camera_intrinsics(metadata: Dict[str, Any], width: int, height: int) -> Optional[Tuple[float, float, float, float]]:
    """(fx, fy, cx, cy) from ``metadata["camera_intrinsics"]`` ({fx, fy, cx, cy}), else from a vertical
    ``metadata["camera_fov_deg"]`` by the simulator camera's own model, else None."""
    intrinsics = metadata.get("camera_intrinsics")
    keys = ("fx", "fy", "cx", "cy")
    if isinstance(intrinsics, dict) and all(isinstance(intrinsics.get(key), (int, float)) for key in keys):
        return tuple(float(intrinsics[key]) for key in keys)
    if isinstance(metadata.get("camera_fov_deg"), (int, float)):
        from liquid_nav.sim.camera import CameraConfig, OnboardCamera

        camera = CameraConfig(width=width, height=height, fov_deg=float(metadata["camera_fov_deg"]))
        return OnboardCamera(camera).intrinsics()
    return None


def export_episode_bag(store: EpisodeStore, episode_id: str, out: Path, base_time_ns: int = 0) -> BagExport:
    """Write episode ``episode_id`` as the rosbag2 (MCAP) directory ``out``; stamps are frame stamps + ``base_time_ns``.

    The directory appears whole (written next to ``out`` and renamed); an existing ``out`` is a BagError.
    """
    out = Path(out)
    if out.exists():
        raise BagError(f"{out} exists already; choose a new bag directory")
    if base_time_ns < 0:
        raise BagError(f"base_time_ns must be >= 0, got {base_time_ns}")
    episode = store.read(episode_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        counts, notes = _write_bag(staging / out.name, episode, base_time_ns)
        (staging / out.name).rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return BagExport(out, counts, notes)


def _write_bag(path: Path, episode: StoredEpisode, base_time_ns: int) -> Tuple[Dict[str, int], List[str]]:
    types = _TYPESTORE.types
    stamps = episode.stamps_ns.astype(np.int64) + int(base_time_ns)
    messages: List[Tuple[int, str, Any]] = []  # (stamp, topic, message)
    notes: List[str] = []
    metadata_json = json.dumps({"episode_id": episode.episode_id, "base_time_ns": int(base_time_ns),
                                "metadata": episode.metadata}, sort_keys=True)
    messages.append((int(stamps[0]), METADATA_TOPIC, types[STRING](data=metadata_json)))
    if episode.frames is None:
        notes.append(f"no {IMAGE_TOPIC} or {CAMERA_INFO_TOPIC}: the episode has no frames")
        intrinsics = None
    else:
        height, width = episode.frames.shape[1:3]
        intrinsics = camera_intrinsics(episode.metadata, width, height)
        if intrinsics is None:
            notes.append(f"no {CAMERA_INFO_TOPIC}: the metadata has neither camera_intrinsics nor camera_fov_deg")
    has_pose = bool(np.isfinite(episode.positions).all() and np.isfinite(episode.quaternions).all())
    if not has_pose:
        notes.append(f"no {ODOM_TOPIC} or {TF_TOPIC}: the episode has no finite pose")
    for k, stamp in enumerate(stamps):
        stamp = int(stamp)
        if episode.frames is not None:
            frame = episode.frames[k]
            messages.append((stamp, IMAGE_TOPIC, types[IMAGE](
                header=_header(stamp, CAMERA_FRAME), height=frame.shape[0], width=frame.shape[1], encoding="rgb8",
                is_bigendian=0, step=frame.shape[1] * 3, data=np.ascontiguousarray(frame).reshape(-1))))
            if intrinsics is not None:
                info = _camera_info(stamp, frame.shape[1], frame.shape[0], intrinsics)
                messages.append((stamp, CAMERA_INFO_TOPIC, info))
        if has_pose:
            messages.append((stamp, ODOM_TOPIC, _odometry(stamp, episode.positions[k], episode.quaternions[k],
                                                          episode.velocities_body[k])))
            messages.append((stamp, TF_TOPIC, types[TF_MESSAGE](transforms=[_transform(
                stamp, episode.positions[k], episode.quaternions[k])])))
        if k < episode.steps:
            if episode.labels is not None:
                messages.append((stamp, LABEL_TOPIC, _twist(stamp, episode.labels[k])))
            messages.append((stamp, EXECUTED_TOPIC, _twist(stamp, episode.commands[k])))
    counts: Dict[str, int] = {}
    writer = Writer(path, version=Writer.VERSION_LATEST, storage_plugin=StoragePlugin.MCAP)
    writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    with writer:
        connections = {}
        for stamp, topic, message in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, message.__msgtype__, typestore=_TYPESTORE)
            writer.write(connections[topic], stamp, _TYPESTORE.serialize_cdr(message, message.__msgtype__))
            counts[topic] = counts.get(topic, 0) + 1
    return counts, notes


def _header(stamp_ns: int, frame_id: str):
    types = _TYPESTORE.types
    seconds, nanoseconds = divmod(int(stamp_ns), 1_000_000_000)
    return types["std_msgs/msg/Header"](stamp=types["builtin_interfaces/msg/Time"](sec=seconds, nanosec=nanoseconds),
                                        frame_id=frame_id)


def _vector(values) -> Any:
    return _TYPESTORE.types["geometry_msgs/msg/Vector3"](x=float(values[0]), y=float(values[1]), z=float(values[2]))


def _quaternion(xyzw) -> Any:
    return _TYPESTORE.types["geometry_msgs/msg/Quaternion"](x=float(xyzw[0]), y=float(xyzw[1]), z=float(xyzw[2]),
                                                            w=float(xyzw[3]))


def _twist(stamp_ns: int, command) -> Any:
    types = _TYPESTORE.types
    twist = types["geometry_msgs/msg/Twist"](linear=_vector(command[:3]), angular=_vector((0.0, 0.0, command[3])))
    return types[TWIST_STAMPED](header=_header(stamp_ns, BODY_FRAME), twist=twist)


def _odometry(stamp_ns: int, position, quaternion, velocity_body) -> Any:
    """Pose in ``odom``; twist in ``base_link`` (body FLU linear velocity; angular velocity is not recorded: 0)."""
    types = _TYPESTORE.types
    pose = types["geometry_msgs/msg/Pose"](position=types["geometry_msgs/msg/Point"](
        x=float(position[0]), y=float(position[1]), z=float(position[2])), orientation=_quaternion(quaternion))
    twist = types["geometry_msgs/msg/Twist"](linear=_vector(velocity_body), angular=_vector((0.0, 0.0, 0.0)))
    return types[ODOMETRY](
        header=_header(stamp_ns, ODOM_FRAME), child_frame_id=BODY_FRAME,
        pose=types["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
        twist=types["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=np.zeros(36)))


def _transform(stamp_ns: int, position, quaternion) -> Any:
    types = _TYPESTORE.types
    transform = types["geometry_msgs/msg/Transform"](translation=_vector(position), rotation=_quaternion(quaternion))
    return types["geometry_msgs/msg/TransformStamped"](header=_header(stamp_ns, ODOM_FRAME), child_frame_id=BODY_FRAME,
                                                       transform=transform)


def _camera_info(stamp_ns: int, width: int, height: int, intrinsics: Sequence[float]) -> Any:
    fx, fy, cx, cy = intrinsics
    types = _TYPESTORE.types
    return types[CAMERA_INFO](
        header=_header(stamp_ns, CAMERA_FRAME), height=height, width=width, distortion_model="plumb_bob",
        d=np.zeros(5), k=np.array([fx, 0.0, cx, 0.0, fy, cy, 0.0, 0.0, 1.0]), r=np.eye(3).reshape(-1),
        p=np.array([fx, 0.0, cx, 0.0, 0.0, fy, cy, 0.0, 0.0, 0.0, 1.0, 0.0]), binning_x=0, binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False))


# --- import ------------------------------------------------------------------------------------------


def read_bag_episode(path: Path, config: Optional[BagImportConfig] = None) -> BagEpisode:
    """Read the bag at ``path`` (a rosbag2 directory or an ``.mcap`` / ``.db3`` file) into one episode.

    Frames (T + 1) come from the image topic in header-stamp order (a repeated stamp is dropped), and
    command ``k`` is the label (or executed command) matched to frame ``k``; the last frame ends the
    episode. Stamps are the header stamps, less the base time of a bag written by :func:`export_episode_bag`.
    """
    config = config or BagImportConfig()
    path = Path(path)
    try:
        reader = AnyReader([path], default_typestore=_TYPESTORE)
        reader.open()
    except (AnyReaderError, FileNotFoundError, OSError) as error:
        raise BagError(f"{path}: cannot open the bag: {error}") from error
    try:
        topics = {topic: (info.msgtype, info.msgcount) for topic, info in reader.topics.items()}
        wanted = _wanted_topics(path, topics, config)
        streams = _read_streams(reader, path, wanted)
    finally:
        reader.close()
    return _episode_from_streams(path, streams, wanted, config)


def _topic_list(topics: Dict[str, Tuple[str, int]]) -> str:
    return ", ".join(f"{topic} ({msgtype}, {count} messages)" for topic, (msgtype, count) in sorted(topics.items())) \
        or "no topics"


def _resolve(path: Path, topics: Dict[str, Tuple[str, int]], topic: str, allowed: Sequence[str], role: str) -> str:
    """The bag's name for ``topic`` (a leading ``/`` is optional), checked to be one of the ``allowed`` types."""
    name = topic if topic in topics else "/" + topic.lstrip("/")
    if name not in topics:
        raise BagError(f"{path}: no {role} topic {topic!r} in the bag; it has: {_topic_list(topics)}")
    if topics[name][0] not in allowed:
        raise BagError(f"{path}: {role} topic {name} is {topics[name][0]}, expected {' or '.join(allowed)}; "
                       f"the bag has: {_topic_list(topics)}")
    return name


def _wanted_topics(path: Path, topics: Dict[str, Tuple[str, int]], config: BagImportConfig) -> Dict[str, str]:
    """``{role: topic}`` for the roles the import reads (image, label, odom, executed, camera_info, metadata)."""
    wanted = {"image": _resolve(path, topics, config.image_topic, (IMAGE, COMPRESSED_IMAGE), "image")}
    if config.label_topic is not None or config.odom_topic is None:
        wanted["label"] = _resolve(path, topics, config.label_topic or LABEL_TOPIC, (TWIST_STAMPED,), "label")
    if config.odom_topic is not None:
        wanted["odom"] = _resolve(path, topics, config.odom_topic, (ODOMETRY,), "odometry")
    for role, topic, default, msgtype in (("executed", config.executed_topic, EXECUTED_TOPIC, TWIST_STAMPED),
                                          ("camera_info", config.camera_info_topic, CAMERA_INFO_TOPIC, CAMERA_INFO),
                                          ("metadata", None, METADATA_TOPIC, STRING)):
        if topic is not None:
            wanted[role] = _resolve(path, topics, topic, (msgtype,), role.replace("_", " "))
        elif topics.get(default, ("",))[0] == msgtype:
            wanted[role] = default
    return wanted


def _read_streams(reader: AnyReader, path: Path, wanted: Dict[str, str]) -> Dict[str, Tuple[List[int], List[Any]]]:
    """Every message on the ``wanted`` topics, decoded: ``{role: (header stamps in ns, values)}``."""
    roles = {topic: role for role, topic in wanted.items()}
    streams: Dict[str, Tuple[List[int], List[Any]]] = {role: ([], []) for role in wanted}
    connections = [connection for connection in reader.connections if connection.topic in roles]
    for connection, _, raw in reader.messages(connections=connections):
        role = roles[connection.topic]
        try:
            message = reader.deserialize(raw, connection.msgtype)
        except AnyReaderError as error:
            raise BagError(f"{path}: cannot decode a {connection.msgtype} message on {connection.topic}: "
                           f"{error}") from error
        if role == "metadata":
            streams[role][1].append(message.data)
            continue
        stamp = message.header.stamp.sec * 1_000_000_000 + message.header.stamp.nanosec
        index = len(streams[role][1])
        if role == "image":
            value = _decode_image(message, connection.msgtype, f"{path}: {connection.topic} message {index}")
        elif role == "odom":
            pose, twist = message.pose.pose, message.twist.twist
            value = np.array([pose.position.x, pose.position.y, pose.position.z, pose.orientation.x,
                              pose.orientation.y, pose.orientation.z, pose.orientation.w, twist.linear.x,
                              twist.linear.y, twist.linear.z, twist.angular.z])
        elif role == "camera_info":
            value = (message.k[0], message.k[4], message.k[2], message.k[5])
        else:
            value = np.array([message.twist.linear.x, message.twist.linear.y, message.twist.linear.z,
                              message.twist.angular.z])
        streams[role][0].append(stamp)
        streams[role][1].append(value)
    return streams


def _decode_image(message: Any, msgtype: str, where: str) -> np.ndarray:
    if msgtype == COMPRESSED_IMAGE:
        bgr = cv2.imdecode(np.asarray(message.data, dtype=np.uint8), cv2.IMREAD_COLOR)
        if bgr is None:
            raise BagError(f"{where}: cannot decode the {message.format!r} CompressedImage "
                           "(jpeg and png are supported)")
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    try:
        return image_to_rgb(message.height, message.width, message.encoding, message.step, message.data)
    except ImageConversionError as error:
        raise BagError(f"{where}: {error}") from error


def align(sample_stamps: np.ndarray, samples: np.ndarray, stamps: np.ndarray, alignment: str,
          max_offset_ns: int) -> Tuple[np.ndarray, np.ndarray]:
    """``samples`` (M, C) at ``sample_stamps`` (M,) matched to ``stamps`` (N,): values (N, C) and valid (N,).

    A stamp is valid when a sample lies within ``max_offset_ns``; its value is that nearest sample
    (``nearest``) or the linear interpolation between the samples around it (``interpolate``; the edge
    sample outside their range). A repeated sample stamp keeps its last sample.
    """
    order = np.argsort(sample_stamps, kind="stable")
    sample_stamps, samples = sample_stamps[order], samples[order]
    last = np.append(sample_stamps[1:] != sample_stamps[:-1], True)
    sample_stamps, samples = sample_stamps[last], samples[last]
    right = np.clip(np.searchsorted(sample_stamps, stamps), 0, len(sample_stamps) - 1)
    left = np.clip(right - 1, 0, len(sample_stamps) - 1)
    left_gap, right_gap = np.abs(stamps - sample_stamps[left]), np.abs(sample_stamps[right] - stamps)
    nearest = np.where(right_gap < left_gap, right, left)
    valid = np.minimum(left_gap, right_gap) <= max_offset_ns
    if alignment == "nearest":
        return samples[nearest], valid
    origin = stamps[0] if len(stamps) else 0
    times, sample_times = (stamps - origin).astype(np.float64), (sample_stamps - origin).astype(np.float64)
    values = np.stack([np.interp(times, sample_times, samples[:, c]) for c in range(samples.shape[1])], axis=1)
    return values, valid


def _aligned(path: Path, streams: Dict[str, Tuple[List[int], List[Any]]], wanted: Dict[str, str], role: str,
             stamps: np.ndarray, config: BagImportConfig) -> Tuple[np.ndarray, np.ndarray]:
    sample_stamps, values = streams[role]
    if not values:
        raise BagError(f"{path}: the {role} topic {wanted[role]} has no messages")
    samples = np.asarray(values, dtype=np.float64)
    blend_quaternions = role == "odom" and config.alignment == "interpolate"
    if blend_quaternions:  # one hemisphere first, so a blend never takes the long way round; renormalised after
        quaternions = samples[:, 3:7]
        signs = np.where(np.sum(quaternions[1:] * quaternions[:-1], axis=1) < 0, -1.0, 1.0)
        quaternions[1:] *= np.cumprod(signs)[:, None]
    aligned, valid = align(np.asarray(sample_stamps, dtype=np.int64), samples, stamps, config.alignment,
                           round(config.max_offset_s * 1e9))
    if blend_quaternions:
        aligned[:, 3:7] /= np.linalg.norm(aligned[:, 3:7], axis=1, keepdims=True)
    return aligned, valid


def _exported_metadata(path: Path, wanted: Dict[str, str],
                       streams: Dict[str, Tuple[List[int], List[Any]]]) -> Dict[str, Any]:
    """The JSON the exporter wrote on ``METADATA_TOPIC`` ({} for a bag recorded elsewhere)."""
    texts = streams.get("metadata", ([], []))[1]
    if not texts:
        return {}
    try:
        export = json.loads(texts[0])
    except ValueError as error:
        raise BagError(f"{path}: {wanted['metadata']} does not hold episode metadata JSON: {error}") from error
    if not (isinstance(export, dict) and isinstance(export.get("metadata", {}), dict)
            and isinstance(export.get("base_time_ns", 0), int)):
        raise BagError(f"{path}: {wanted['metadata']} does not hold episode metadata JSON "
                       "(an object with 'metadata' and 'base_time_ns')")
    return export


def _episode_from_streams(path: Path, streams: Dict[str, Tuple[List[int], List[Any]]], wanted: Dict[str, str],
                          config: BagImportConfig) -> BagEpisode:
    frame_stamps, frames = streams["image"]
    if not frames:
        raise BagError(f"{path}: the image topic {wanted['image']} has no messages")
    order = np.argsort(np.asarray(frame_stamps, dtype=np.int64), kind="stable")
    stamps = np.asarray(frame_stamps, dtype=np.int64)[order]
    first = np.append(True, stamps[1:] != stamps[:-1])
    keep = order[first]
    stamps = stamps[first]
    shapes = {frames[i].shape for i in keep}
    if len(shapes) > 1:
        raise BagError(f"{path}: the images change size within the bag ({sorted(shapes)})")
    aligned = {role: _aligned(path, streams, wanted, role, stamps, config) for role in ("label", "odom", "executed")
               if role in streams}
    valid = np.logical_and.reduce([ok for _, ok in aligned.values()])
    if not valid.any():
        raise BagError(f"{path}: no frame has a sample within {config.max_offset_s * 1e3:.0f} ms on "
                       + ", ".join(wanted[role] for role in aligned))
    stamps = stamps[valid]
    values = {role: value[valid] for role, (value, _) in aligned.items()}
    labels = (values["label"] if "label" in values else values["odom"][:, (7, 8, 9, 10)]).astype(np.float32)
    executed = values["executed"].astype(np.float32) if "executed" in values else labels.copy()
    export = _exported_metadata(path, wanted, streams)
    restored = dict(export.get("metadata", {}))
    stamps = stamps - int(export.get("base_time_ns", 0))
    count = len(stamps)
    if "odom" in values:
        odom = values["odom"]
        positions, quaternions, velocities = odom[:, 0:3], odom[:, 3:7], odom[:, 7:10]
        x, y, z, w = quaternions.T
        yaws = np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    else:
        positions, velocities = np.full((count, 3), np.nan), np.full((count, 3), np.nan)
        quaternions, yaws = np.full((count, 4), np.nan), np.full(count, np.nan)
    record = EpisodeRecord(
        seed=int(restored.get("seed", -1)), world=str(restored.get("world", "bag")),
        outcome=str(restored.get("outcome", "recorded")),
        reason=str(restored.get("reason", f"imported from {path.name}")),
        stamps_ns=stamps, dts=sequence_dts(stamps, config.dt_rule), commands=executed[:-1],
        positions=positions, quaternions=quaternions, velocities_body=velocities, yaws=yaws,
        distances=np.full(count, np.nan), bearings=np.full(count, np.nan), collisions=np.zeros(count, dtype=bool),
        target_position=np.full(3, np.nan), labels=labels[:-1],
        frames=np.stack([frames[i] for i, ok in zip(keep, valid) if ok]))
    metadata = {key: value for key, value in restored.items() if key not in STORE_KEYS}
    metadata.setdefault("source", "bag")
    if streams.get("camera_info", ([], []))[1]:
        metadata["camera_intrinsics"] = dict(zip(("fx", "fy", "cx", "cy"), map(float, streams["camera_info"][1][0])))
    dropped = int(len(frames) - count)
    metadata["bag"] = {"path": str(path), "topics": wanted, "alignment": config.alignment,
                       "max_offset_s": config.max_offset_s, "dropped_frames": dropped}
    return BagEpisode(record, metadata, dropped)
