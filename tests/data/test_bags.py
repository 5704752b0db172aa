"""ROS 2 bags both ways: our exporter round-trips exactly; bags written by rosbags itself import correctly."""
from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.highlevel import AnyReader
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from liquid_nav.data.bags import BagError, BagImportConfig, align, export_episode_bag, read_bag_episode
from liquid_nav.data.store import EpisodeStore
from tests.data.episodes import assert_same_arrays, make_record

INTRINSICS = {"fx": 154.4, "fy": 154.4, "cx": 16.0, "cy": 11.0}
BASE_TIME_NS = 1_700_000_000_123_456_789


def _exported(tmp_path, metadata, base_time_ns=0, record=None):
    store = EpisodeStore(tmp_path / "store")
    record = record or make_record(steps=9, seed=4)
    store.write("ep-4", record, metadata)
    return store, record, export_episode_bag(store, "ep-4", tmp_path / "bags" / "ep-4", base_time_ns=base_time_ns)


def test_export_then_import_is_identical(tmp_path):
    metadata = {"source": "expert", "camera_intrinsics": INTRINSICS, "world_sha256": "c0" * 32}
    store, record, export = _exported(tmp_path, metadata, base_time_ns=BASE_TIME_NS)
    assert export.notes == []
    assert export.messages == {"/liquid_nav/episode_metadata": 1, "/camera/image_raw": 10, "/camera/camera_info": 10,
                               "/odom": 10, "/tf": 10, "/liquid_nav/cmd_label": 9, "/liquid_nav/cmd_executed": 9}

    imported = read_bag_episode(export.path, BagImportConfig(label_topic="/liquid_nav/cmd_label", odom_topic="/odom"))
    assert imported.dropped_frames == 0
    assert_same_arrays(imported.record, record, ("frames", "stamps_ns", "dts", "commands", "labels", "positions",
                                                 "quaternions", "velocities_body"))
    np.testing.assert_allclose(imported.record.yaws, np.arctan2(
        2 * (record.quaternions[:, 3] * record.quaternions[:, 2] + record.quaternions[:, 0] * record.quaternions[:, 1]),
        1 - 2 * (record.quaternions[:, 1] ** 2 + record.quaternions[:, 2] ** 2)), atol=1e-12)
    assert (imported.record.seed, imported.record.world, imported.record.outcome, imported.record.reason) == \
        (record.seed, record.world, record.outcome, record.reason)
    assert imported.metadata["camera_intrinsics"] == INTRINSICS
    assert {key: imported.metadata[key] for key in metadata} == metadata

    store.write("ep-4-again", imported.record, imported.metadata)
    again = store.read("ep-4-again")
    assert_same_arrays(again, record, ("frames", "stamps_ns", "dts", "commands", "labels"))
    assert again.metadata["bag"]["dropped_frames"] == 0


def test_exported_bag_is_mcap_with_standard_types(tmp_path):
    _, record, export = _exported(tmp_path, {"camera_intrinsics": INTRINSICS}, base_time_ns=BASE_TIME_NS)
    assert [path.suffix for path in export.path.iterdir() if path.name != "metadata.yaml"] == [".mcap"]
    with AnyReader([export.path]) as reader:
        types = {topic: info.msgtype for topic, info in reader.topics.items()}
        assert types["/camera/image_raw"] == "sensor_msgs/msg/Image"
        assert types["/camera/camera_info"] == "sensor_msgs/msg/CameraInfo"
        assert types["/liquid_nav/cmd_label"] == types["/liquid_nav/cmd_executed"] == "geometry_msgs/msg/TwistStamped"
        assert types["/odom"] == "nav_msgs/msg/Odometry" and types["/tf"] == "tf2_msgs/msg/TFMessage"
        messages = {}
        for connection, timestamp, raw in reader.messages():
            messages.setdefault(connection.topic, []).append((timestamp, reader.deserialize(raw, connection.msgtype)))
    image_stamp, image = messages["/camera/image_raw"][3]
    assert image.encoding == "rgb8" and image.header.frame_id == "camera"
    assert image_stamp == BASE_TIME_NS + int(record.stamps_ns[3])
    assert image.header.stamp.sec * 10 ** 9 + image.header.stamp.nanosec == image_stamp
    info = messages["/camera/camera_info"][0][1]
    assert list(info.k) == [154.4, 0, 16.0, 0, 154.4, 11.0, 0, 0, 1] and (info.width, info.height) == (32, 24)
    label = messages["/liquid_nav/cmd_label"][2][1]
    assert label.header.frame_id == "base_link"
    assert [label.twist.linear.x, label.twist.linear.y, label.twist.linear.z, label.twist.angular.z] == \
        record.labels[2].tolist()
    odometry = messages["/odom"][5][1]
    assert (odometry.header.frame_id, odometry.child_frame_id) == ("odom", "base_link")
    assert odometry.pose.pose.position.x == record.positions[5, 0]
    assert odometry.twist.twist.linear.y == record.velocities_body[5, 1]
    transform = messages["/tf"][5][1].transforms[0]
    assert (transform.header.frame_id, transform.child_frame_id) == ("odom", "base_link")
    assert transform.transform.rotation.w == record.quaternions[5, 3]


def test_camera_info_comes_from_a_vertical_fov_or_is_skipped_with_a_note(tmp_path):
    from liquid_nav.sim.camera import CameraConfig, OnboardCamera

    _, _, export = _exported(tmp_path / "fov", {"camera_fov_deg": 50.0})
    with AnyReader([export.path]) as reader:
        connection = next(c for c in reader.connections if c.topic == "/camera/camera_info")
        info = reader.deserialize(next(reader.messages(connections=[connection]))[2], connection.msgtype)
    fx, fy, cx, cy = OnboardCamera(CameraConfig(width=32, height=24, fov_deg=50.0)).intrinsics()
    assert (info.k[0], info.k[4], info.k[2], info.k[5]) == (fx, fy, cx, cy)

    _, _, export = _exported(tmp_path / "none", {})
    assert "/camera/camera_info" not in export.messages and "camera_intrinsics" in export.notes[0]


def test_export_refuses_an_existing_bag(tmp_path):
    store, _, export = _exported(tmp_path, {})
    with pytest.raises(BagError, match="exists already"):
        export_episode_bag(store, "ep-4", export.path)


# --- bags written by rosbags' own writer, as a drone would record them ------------------------------

HUMBLE = get_typestore(Stores.ROS2_HUMBLE)  # what a drone running ROS 2 Humble records
T0 = 1_712_345_678_000_000_000


def _header(stamp_ns: int, frame_id: str):
    seconds, nanoseconds = divmod(stamp_ns, 10 ** 9)
    return HUMBLE.types["std_msgs/msg/Header"](
        stamp=HUMBLE.types["builtin_interfaces/msg/Time"](sec=seconds, nanosec=nanoseconds), frame_id=frame_id)


def _vector(x, y, z):
    return HUMBLE.types["geometry_msgs/msg/Vector3"](x=float(x), y=float(y), z=float(z))


def _write(path: Path, messages):
    """Write (topic, msgtype, log stamp, message) tuples as an MCAP bag with rosbags' Writer."""
    with Writer(path, version=9, storage_plugin=StoragePlugin.MCAP) as writer:
        connections = {}
        for topic, msgtype, stamp, message in sorted(messages, key=lambda m: m[2]):
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msgtype, typestore=HUMBLE)
            writer.write(connections[topic], stamp, HUMBLE.serialize_cdr(message, msgtype))


def _raw_image(stamp_ns: int, rgb: np.ndarray, encoding: str, padding: int = 0):
    pixels = {"rgb8": rgb, "bgr8": rgb[:, :, ::-1], "mono8": rgb[:, :, :1],
              "rgba8": np.concatenate([rgb, np.full(rgb.shape[:2] + (1,), 255, np.uint8)], axis=2)}[encoding]
    height, width, channels = pixels.shape
    rows = np.zeros((height, width * channels + padding), np.uint8)
    rows[:, :width * channels] = pixels.reshape(height, -1)
    return HUMBLE.types["sensor_msgs/msg/Image"](header=_header(stamp_ns, "cam"), height=height, width=width,
                                                 encoding=encoding, is_bigendian=0, step=rows.shape[1],
                                                 data=rows.reshape(-1))


def _odometry(stamp_ns: int, seconds: float):
    """A drone flying a known trajectory: velocity linear in time, position its integral, yaw = 0.1 t."""
    types = HUMBLE.types
    yaw = 0.1 * seconds
    pose = types["geometry_msgs/msg/Pose"](
        position=types["geometry_msgs/msg/Point"](x=seconds + 0.25 * seconds ** 2, y=0.5 * seconds, z=1.5),
        orientation=types["geometry_msgs/msg/Quaternion"](x=0.0, y=0.0, z=math.sin(yaw / 2), w=math.cos(yaw / 2)))
    twist = types["geometry_msgs/msg/Twist"](linear=_vector(*_velocity(seconds)[:3]), angular=_vector(0, 0, 0.1))
    return types["nav_msgs/msg/Odometry"](
        header=_header(stamp_ns, "odom"), child_frame_id="base_link",
        pose=types["geometry_msgs/msg/PoseWithCovariance"](pose=pose, covariance=np.zeros(36)),
        twist=types["geometry_msgs/msg/TwistWithCovariance"](twist=twist, covariance=np.zeros(36)))


def _velocity(seconds):
    return np.array([1.0 + 0.5 * seconds, 0.5, -0.2 * seconds, 0.1])


def _frames(count: int) -> np.ndarray:
    return np.random.default_rng(7).integers(0, 256, (count, 20, 28, 3), dtype=np.uint8)


def _camera_stamps(count: int) -> np.ndarray:
    """~30 Hz with up to 4 ms of jitter, starting 0.1 s into the odometry stream."""
    jitter = np.random.default_rng(3).integers(-4_000_000, 4_000_000, count)
    return T0 + 100_000_000 + np.arange(count) * 33_333_333 + jitter


def _odometry_messages(duration_s: float, rate_hz: float = 50.0):
    return [("/mavros/odom", "nav_msgs/msg/Odometry", T0 + round(k * 1e9 / rate_hz), _odometry(
        T0 + round(k * 1e9 / rate_hz), k / rate_hz)) for k in range(int(duration_s * rate_hz) + 1)]


@pytest.mark.parametrize("alignment", ["interpolate", "nearest"])
def test_a_drone_bag_with_bgr8_images_and_odometry_labels(tmp_path, alignment):
    frames, stamps = _frames(12), _camera_stamps(12)
    messages = [("/drone/camera/image", "sensor_msgs/msg/Image", int(s) + 2_000_000, _raw_image(int(s), f, "bgr8"))
                for f, s in zip(frames, stamps)]
    early = T0 - 200_000_000  # a frame 0.2 s before the first odometry message: nothing to label it with
    messages.append(("/drone/camera/image", "sensor_msgs/msg/Image", early, _raw_image(early, frames[0], "bgr8")))
    _write(tmp_path / "flight", messages + _odometry_messages(0.6))

    config = BagImportConfig(image_topic="/drone/camera/image", odom_topic="/mavros/odom", alignment=alignment,
                             max_offset_s=0.015)
    imported = read_bag_episode(tmp_path / "flight", config)
    record = imported.record
    assert imported.dropped_frames == 1 and imported.metadata["bag"]["dropped_frames"] == 1
    assert np.array_equal(record.frames, frames) and np.array_equal(record.stamps_ns, stamps)
    seconds = (stamps - T0) * 1e-9
    if alignment == "interpolate":
        expected = np.stack([_velocity(t) for t in seconds])
    else:
        expected = np.stack([_velocity(round(t * 50) / 50) for t in seconds])
    np.testing.assert_allclose(record.labels, expected[:-1].astype(np.float32), atol=1e-6)
    assert np.array_equal(record.commands, record.labels)  # no executed topic
    np.testing.assert_allclose(record.dts[1:], np.diff(stamps) * 1e-9, rtol=1e-6)
    sampled = seconds if alignment == "interpolate" else np.round(seconds * 50) / 50
    np.testing.assert_allclose(record.yaws, 0.1 * sampled, atol=1e-4)
    assert np.isnan(record.distances).all() and not record.collisions.any()
    assert imported.metadata["source"] == "bag" and "camera_intrinsics" not in imported.metadata

    store = EpisodeStore(tmp_path / "store")
    store.write("flight", record, imported.metadata)
    assert_same_arrays(store.read("flight"), record)


@pytest.mark.parametrize("encoding", ["mono8", "rgba8", "rgb8"])
def test_raw_encodings_with_row_padding_import(tmp_path, encoding):
    frames, stamps = _frames(4), _camera_stamps(4)
    messages = [("/cam", "sensor_msgs/msg/Image", int(s), _raw_image(int(s), f, encoding, padding=4))
                for f, s in zip(frames, stamps)]
    _write(tmp_path / "bag", messages + _odometry_messages(0.3))
    record = read_bag_episode(tmp_path / "bag", BagImportConfig(image_topic="/cam", odom_topic="/mavros/odom")).record
    expected = np.repeat(frames[..., :1], 3, axis=3) if encoding == "mono8" else frames
    assert np.array_equal(record.frames, expected)


@pytest.mark.parametrize("image_format", ["png", "jpeg"])
def test_compressed_images_with_twist_labels(tmp_path, image_format):
    frames, stamps = _frames(6), _camera_stamps(6)
    types = HUMBLE.types
    messages = []
    for k, (frame, stamp) in enumerate(zip(frames, stamps)):
        ok, encoded = cv2.imencode("." + image_format, frame[:, :, ::-1])
        assert ok
        messages.append(("/cam/compressed", "sensor_msgs/msg/CompressedImage", int(stamp), types[
            "sensor_msgs/msg/CompressedImage"](header=_header(int(stamp), "cam"), format=image_format,
                                               data=encoded.reshape(-1))))
        twist = types["geometry_msgs/msg/Twist"](linear=_vector(k, -k, 0.5), angular=_vector(0, 0, -0.1 * k))
        label_stamp = int(stamp) + 3_000_000  # the planner answers 3 ms after the frame
        messages.append(("/planner/cmd", "geometry_msgs/msg/TwistStamped", label_stamp, types[
            "geometry_msgs/msg/TwistStamped"](header=_header(label_stamp, "base_link"), twist=twist)))
    _write(tmp_path / "bag", messages)
    config = BagImportConfig(image_topic="/cam/compressed", label_topic="/planner/cmd")
    imported = read_bag_episode(tmp_path / "bag", config)
    record = imported.record
    if image_format == "png":
        assert np.array_equal(record.frames, frames)
    else:
        assert record.frames.shape == frames.shape
        reference = cv2.imdecode(cv2.imencode(".jpeg", frames[2][:, :, ::-1])[1], cv2.IMREAD_COLOR)[:, :, ::-1]
        assert np.array_equal(record.frames[2], reference)
    expected = np.array([[k, -k, 0.5, -0.1 * k] for k in range(5)], dtype=np.float32)
    assert np.array_equal(record.labels, expected) and np.array_equal(record.commands, expected)
    assert np.array_equal(record.stamps_ns, stamps) and np.isnan(record.positions).all()


def test_wrong_topic_names_or_types_list_what_the_bag_has(tmp_path):
    frames, stamps = _frames(3), _camera_stamps(3)
    _write(tmp_path / "bag", [("/cam", "sensor_msgs/msg/Image", int(s), _raw_image(int(s), f, "rgb8"))
                              for f, s in zip(frames, stamps)] + _odometry_messages(0.2))
    listing = "/cam (sensor_msgs/msg/Image, 3 messages), /mavros/odom (nav_msgs/msg/Odometry, 11 messages)"
    with pytest.raises(BagError, match="no image topic '/camera/image_raw'") as raised:
        read_bag_episode(tmp_path / "bag", BagImportConfig(odom_topic="/mavros/odom"))
    assert listing in str(raised.value)
    with pytest.raises(BagError, match="no label topic '/liquid_nav/cmd_label'") as raised:
        read_bag_episode(tmp_path / "bag", BagImportConfig(image_topic="/cam"))
    assert listing in str(raised.value)
    with pytest.raises(BagError, match="odometry topic /cam is sensor_msgs/msg/Image, expected nav_msgs/msg/Odometry"):
        read_bag_episode(tmp_path / "bag", BagImportConfig(image_topic="/cam", odom_topic="cam"))
    with pytest.raises(BagError, match="image topic /mavros/odom is nav_msgs/msg/Odometry, expected sensor_msgs/msg/"):
        read_bag_episode(tmp_path / "bag", BagImportConfig(image_topic="/mavros/odom", odom_topic="/mavros/odom"))
    with pytest.raises(BagError, match="cannot open the bag"):
        read_bag_episode(tmp_path / "missing")


def test_frames_far_from_every_label_fail_with_the_tolerance(tmp_path):
    frames, stamps = _frames(3), _camera_stamps(3) + 10 ** 9  # a second after the last odometry message
    _write(tmp_path / "bag", [("/cam", "sensor_msgs/msg/Image", int(s), _raw_image(int(s), f, "rgb8"))
                              for f, s in zip(frames, stamps)] + _odometry_messages(0.2))
    with pytest.raises(BagError, match="no frame has a sample within 50 ms on /mavros/odom"):
        read_bag_episode(tmp_path / "bag", BagImportConfig(image_topic="/cam", odom_topic="/mavros/odom"))


def test_align_nearest_interpolate_and_tolerance():
    sample_stamps = np.array([0, 100, 200, 200, 400], dtype=np.int64)
    samples = np.array([[0.0], [1.0], [2.0], [3.0], [5.0]])  # the repeated stamp 200 keeps its last sample (3)
    stamps = np.array([-30, 0, 40, 60, 200, 290, 310, 430, 460], dtype=np.int64)
    values, valid = align(sample_stamps, samples, stamps, "nearest", 40)
    assert values[:, 0].tolist() == [0, 0, 0, 1, 3, 3, 5, 5, 5]
    assert valid.tolist() == [True, True, True, True, True, False, False, True, False]
    values, valid = align(sample_stamps, samples, stamps, "interpolate", 40)
    np.testing.assert_allclose(values[:, 0], [0, 0, 0.4, 0.6, 3, 3 + 2 * 0.45, 3 + 2 * 0.55, 5, 5])
    assert valid.tolist() == [True, True, True, True, True, False, False, True, False]
