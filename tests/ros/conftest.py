"""Harness for ROS 2 tests over real DDS (run inside scripts/isolated.sh).

rclpy is imported unconditionally: if it is missing these tests fail at collection, never skip.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest
import rclpy  # noqa: F401 - a missing rclpy must fail the ROS tests, not skip them
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

REPO = Path(__file__).resolve().parents[2]


class RosHarness:
    """One rclpy context; the test node and every node under test spin in their own executor thread
    (as they would in their own processes)."""

    def __init__(self) -> None:
        self.context = Context()
        rclpy.init(context=self.context)
        self._spinning: List[tuple] = []
        self.node = self.add(Node("test_harness", context=self.context))

    def add(self, node: Node) -> Node:
        executor = SingleThreadedExecutor(context=self.context)
        executor.add_node(node)
        thread = threading.Thread(target=_spin, args=(executor,), daemon=True)
        thread.start()
        self._spinning.append((node, executor, thread))
        return node

    def close(self) -> None:
        for _, executor, _ in self._spinning:
            executor.shutdown(timeout_sec=5.0)
        for node, _, thread in self._spinning:
            thread.join(timeout=5.0)
            node.destroy_node()
        rclpy.try_shutdown(context=self.context)


def _spin(executor) -> None:
    try:
        executor.spin()
    except Exception:  # noqa: BLE001 - shutdown races end the spin thread
        pass


@pytest.fixture
def ros():
    harness = RosHarness()
    yield harness
    harness.close()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll until ``predicate()``; fail with ``what`` if it never holds (a guard, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.01)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def call(node: Node, service_type, name: str, request, timeout: float = 20.0):
    """Call a service from the harness node (its executor runs in the background thread)."""
    client = node.create_client(service_type, name)
    wait_for(client.service_is_ready, timeout, f"service {name}")
    future = client.call_async(request)
    wait_for(future.done, timeout, f"reply from {name}")
    node.destroy_client(client)
    return future.result()


class NodeProcesses:
    """Nodes started as separate processes, the way launch files start them."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.processes: List[tuple] = []  # (name, log path, Popen)

    def start(self, name: str, arguments: List[str], extra_env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        """Run ``python <arguments>`` (e.g. ``["-m", "liquid_nav.nodes.sim_node", "--ros-args", ...]``)."""
        env = {**os.environ, **(extra_env or {})}
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
        env.setdefault("AMENT_PREFIX_PATH", str(REPO / ".venv"))
        env["PYTHONUNBUFFERED"] = "1"
        log_path = self.log_dir / f"{name}.log"
        with open(log_path, "w") as log:
            process = subprocess.Popen([sys.executable, *arguments], cwd=REPO, env=env, stdout=log,
                                       stderr=subprocess.STDOUT)
        self.processes.append((name, log_path, process))
        return process

    def node(self, executable: str, *ros_args: str, extra_env: Optional[Dict[str, str]] = None) -> subprocess.Popen:
        """Start ``liquid_nav.nodes.<executable>`` as its console script would, with ``--ros-args``."""
        return self.start(executable, ["-m", f"liquid_nav.nodes.{executable}", "--ros-args", *ros_args], extra_env)

    def logs(self) -> str:
        return "\n".join(f"--- {name}\n" + log_path.read_text()[-3000:] for name, log_path, _ in self.processes)

    def stop_all(self) -> None:
        for _, _, process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for _, _, process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


@pytest.fixture
def processes(tmp_path):
    group = NodeProcesses(tmp_path)
    yield group
    group.stop_all()


def write_checkpoint(path: Path, nan_outputs: bool = False) -> Path:
    """An untrained small (72x128) cfc_ncp policy checkpoint; ``nan_outputs`` makes every output NaN.

    The weights stay finite (flight loading refuses non-finite weights): the feature layer's weights
    alternate +-3e38, so every feature is inf - inf = NaN for any image that activates the trunk.
    """
    import torch

    from liquid_nav.models.checkpoint import save_checkpoint
    from liquid_nav.models.policy import Policy, PolicyConfig

    policy = Policy.from_config(PolicyConfig.small())
    if nan_outputs:
        with torch.no_grad():
            weight = policy.perception.dense.weight
            weight.copy_(torch.where(torch.arange(weight.shape[1]) % 2 == 0, 3e38, -3e38).expand_as(weight))
            policy.perception.trunk[-2].bias.fill_(1.0)  # the last convolution's outputs are all positive
    return save_checkpoint(path, policy, {"purpose": "ROS tests (untrained)"})


@pytest.fixture(scope="session")
def small_checkpoint(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "small.ckpt")


@pytest.fixture(scope="session")
def nan_checkpoint(tmp_path_factory) -> Path:
    return write_checkpoint(tmp_path_factory.mktemp("ckpt") / "nan.ckpt", nan_outputs=True)
