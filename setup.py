"""ament_python / pip build script for liquid_nav."""
import os
from glob import glob

from setuptools import find_packages, setup

PACKAGE = "liquid_nav"


def tree_data_files(top: str) -> list:
    """(install dir, [files]) pairs that mirror ``top`` below share/liquid_nav."""
    pairs = []
    for directory, _, files in os.walk(top):
        paths = [os.path.join(directory, name) for name in files if not name.endswith((".pyc", "~"))]
        if paths:
            pairs.append((os.path.join("share", PACKAGE, directory), paths))
    return pairs


setup(
    name=PACKAGE,
    version="0.1.0",
    description="Liquid neural network (CfC / NCP) drone navigation: PyBullet worlds, imitation learning, ROS 2 nodes",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=find_packages(include=[PACKAGE, PACKAGE + ".*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/" + PACKAGE]),
        ("share/" + PACKAGE, ["package.xml"]),
        ("share/" + PACKAGE + "/launch", glob("launch/*.launch.py")),
        ("share/" + PACKAGE + "/config", glob("config/*.yaml") + glob("config/*.xml")),
        ("share/" + PACKAGE + "/config/train", glob("config/train/*.yaml")),
        ("share/" + PACKAGE + "/config/eval", glob("config/eval/*.yaml")),
    ]
    + tree_data_files("sim_worlds")
    + tree_data_files("checkpoints"),
    # Ranges, not pins: Jetson builds of torch / ONNX Runtime must satisfy them.
    # Exact versions for the development machines live in requirements/constraints.txt.
    install_requires=[
        "numpy>=1.24",
        "torch>=2.1,<3",
        "pybullet>=3.2.5",
        "gymnasium>=0.29",
        "opencv-python-headless>=4.8",
        "pyyaml>=6.0",
        "tqdm>=4.60",
        "matplotlib>=3.7",
        # episode store (liquid_nav.data.store): HDF5 files, Blosc/zstd frame chunks
        "h5py>=3.11",
        "hdf5plugin>=4.4",
        # ROS 2 bags without a ROS install (liquid_nav.data.bags): MCAP read and write
        "rosbags>=0.11",
    ],
    extras_require={
        "export": ["onnx>=1.15", "onnxruntime>=1.17"],
        # Real rclpy from PyPI (community Jazzy wheels); on a robot, use the distro's ROS 2 instead.
        "ros": [
            "ros-jazzy-rclpy[fastrtps]>=7.1",
            "ros-jazzy-std-msgs",
            "ros-jazzy-sensor-msgs",
            "ros-jazzy-geometry-msgs",
            "ros-jazzy-nav-msgs",
            "ros-jazzy-std-srvs",
            "ros-jazzy-rosgraph-msgs",
            "ros-jazzy-lifecycle-msgs",
            "ros-jazzy-diagnostic-msgs",
        ],
        # the cluster executor of liquid_nav.executor (liquid-nav evaluate --executor ray)
        "ray": ["ray>=2.9"],
        "test": ["pytest>=7", "pytest-timeout>=2", "onnx>=1.15", "onnxruntime>=1.17", "ncps==1.0.1"],
    },
    zip_safe=True,
    entry_points={
        "console_scripts": [
            "liquid-nav = liquid_nav.cli:main",
            "sim_node = liquid_nav.nodes.sim_node:main",
            "controller_node = liquid_nav.nodes.controller_node:main",
            "safety_node = liquid_nav.nodes.safety_node:main",
        ],
    },
)
