"""A stand-in camera driver for the watchdog test: random rgb8 frames at a fixed rate, wall-clock stamps.

    python tests/ros/camera_publisher.py --rate 30 --width 128 --height 72 [--ros-args ...]
"""
import argparse
import sys

import numpy as np
import rclpy
from rclpy.node import Node
from sensor_msgs.msg import Image

from liquid_nav.nodes.common import SENSOR_QOS
from liquid_nav.runtime.image_conversion import rgb_to_image_fields


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=30.0)
    parser.add_argument("--width", type=int, default=128)
    parser.add_argument("--height", type=int, default=72)
    options, ros_args = parser.parse_known_args()
    rclpy.init(args=[sys.argv[0], *ros_args])
    node = Node("camera_publisher")
    publisher = node.create_publisher(Image, "camera/image_raw", SENSOR_QOS)
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (options.height, options.width, 3), dtype=np.uint8) for _ in range(8)]
    count = [0]

    def publish() -> None:
        message = Image(**rgb_to_image_fields(frames[count[0] % len(frames)]))
        message.header.stamp = node.get_clock().now().to_msg()
        message.header.frame_id = "camera"
        publisher.publish(message)
        count[0] += 1

    node.create_timer(1.0 / options.rate, publish)
    rclpy.spin(node)


if __name__ == "__main__":
    main()
