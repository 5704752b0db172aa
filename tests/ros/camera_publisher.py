"""A stand-in camera driver: random frames at a fixed rate, in its own process.

    python tests/ros/camera_publisher.py --rate 30 --width 128 --height 72 [--ros-args ...]
        frames until killed, wall-clock stamps (the watchdog test)
    python tests/ros/camera_publisher.py --rate 30 --streams 640x480:rgb8,1280x720:bgr8 --frames 100 \
        [--warmup 10] [--reliability best_effort]
        waits for a subscriber, then ``--frames`` frames of each stream and exits; synthetic stamps: stream k
        (from 1) at k * 1000 s + i / rate, warm-up frames (first stream's size) at 1 s + i / rate.
"""
import argparse
import sys
import time

import numpy as np
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import Image

from liquid_nav.nodes.common import image_qos, ns_to_stamp
from liquid_nav.runtime.image_conversion import rgb_to_image_fields

STREAM_STAMP_SPACING_NS = 1000 * 1_000_000_000
WARMUP_FIRST_STAMP_NS = 1_000_000_000


def parse_streams(text: str) -> list:
    """'640x480:rgb8,1280x720:bgr8' -> [(640, 480, 'rgb8'), (1280, 720, 'bgr8')]."""
    streams = []
    for item in text.split(","):
        size, encoding = item.split(":")
        width, height = (int(value) for value in size.split("x"))
        streams.append((width, height, encoding))
    return streams


def image(rng, width: int, height: int, encoding: str) -> Image:
    message = Image(**rgb_to_image_fields(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), encoding))
    message.header.frame_id = "camera"
    return message


def publish_streams(node: Node, publisher, options, rng) -> None:
    while publisher.get_subscription_count() == 0:
        rclpy.spin_once(node, timeout_sec=0.05)
    time.sleep(1.0)  # discovery is not symmetric: let the subscriber match this publisher too
    period_ns = round(1e9 / options.rate)
    streams = parse_streams(options.streams)
    plan = [(image(rng, *streams[0]), WARMUP_FIRST_STAMP_NS, options.warmup)]
    plan += [(image(rng, *stream), (k + 1) * STREAM_STAMP_SPACING_NS, options.frames)
             for k, stream in enumerate(streams)]
    deadline = time.monotonic()
    for message, first_stamp, count in plan:
        for i in range(count):
            message.header.stamp = ns_to_stamp(first_stamp + i * period_ns)
            publisher.publish(message)
            deadline += 1.0 / options.rate
            time.sleep(max(deadline - time.monotonic(), 0.0))
        time.sleep(0.5)
        deadline = time.monotonic()
    time.sleep(1.0)  # reliable samples still being acknowledged are not cut off


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--height", type=int, default=72)
    parser.add_argument("--streams", default="", help="WxH:encoding,... (then --frames per stream and exit)")
    parser.add_argument("--frames", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=0)
    parser.add_argument("--reliability", default="reliable", choices=("reliable", "best_effort"))
    parser.add_argument("--depth", type=int, default=5, help="history depth of the image publisher")
    options, ros_args = parser.parse_known_args()
    rclpy.init(args=[sys.argv[0], *ros_args])
    node = Node("camera_publisher")
    publisher = node.create_publisher(Image, "camera/image_raw", image_qos(options.reliability, options.depth))
    rng = np.random.default_rng(0)
    if options.streams:
        publish_streams(node, publisher, options, rng)
        node.destroy_node()
        rclpy.shutdown()
        return
    frames = [image(rng, options.width, options.height, "rgb8") for _ in range(8)]
    count = [0]

    def publish() -> None:
        message = frames[count[0] % len(frames)]
        message.header.stamp = node.get_clock().now().to_msg()
        publisher.publish(message)
        count[0] += 1

    node.create_timer(1.0 / options.rate, publish)
    rclpy.spin(node)


if __name__ == "__main__":
    main()
