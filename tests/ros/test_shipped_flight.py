"""The shipped controller flies over ROS 2 exactly as it is evaluated.

sim_node (lock-step) + controller_node (the shipped ONNX export) + safety_node, started as separate processes
with config/sim.yaml as launch/sim.launch.py starts them, over real DDS: armed, the drone reaches the target in
the forest and in the city, with the outcome and flight time of the in-process evaluation of the same seed
(``BackendPilot`` over the same ONNX file behind the same safety limits).
"""
import pytest
import yaml
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus
from std_msgs.msg import String

from liquid_nav.evaluate.pilots import BackendPilot
from liquid_nav.nodes.common import COMMAND_QOS, LATCHED_QOS
from liquid_nav.paths import shipped_model
from liquid_nav.runtime.backends import make_backend
from liquid_nav.runtime.safety import load_safety_config
from liquid_nav.sim.env import EnvConfig, FlyToTargetEnv
from liquid_nav.sim.rollout import run_episode
from tests.ros.conftest import REPO, wait_for
from tests.ros.test_graph import Recorder, arm, write_overrides

pytestmark = pytest.mark.ros

SIM_PARAMS = REPO / "config" / "sim.yaml"
LOCK_STEP = ("/**/sim_node:\n  ros__parameters:\n    auto_reset: false\n    lock_step: true\n"
             "    real_time_factor: 0.0\n    lock_step_timeout: 120.0\n")
CASES = [("forest", 500_000), ("urban", 500_001)]  # held-out seeds the shipped cfc_ncp flies to the target


def in_process_flight(world, seed):
    """The evaluation's flight of the shipped ONNX export: the sim_node env of config/sim.yaml, its safety limits."""
    sim = yaml.safe_load(SIM_PARAMS.read_text())["/**/sim_node"]["ros__parameters"]
    env = FlyToTargetEnv(EnvConfig(world=world, camera=sim["camera"], vehicle=sim["vehicle"],
                                   control_hz=sim["control_hz"], max_episode_seconds=sim["max_episode_seconds"]))
    pilot = BackendPilot(make_backend("onnxruntime", shipped_model("cfc_ncp", onnx=True), threads=1),
                         safety=load_safety_config(SIM_PARAMS))
    try:
        return run_episode(env, pilot, seed)
    finally:
        env.close()


@pytest.mark.slow
@pytest.mark.parametrize("world, seed", CASES)
def test_shipped_controller_reaches_the_target_over_ros_as_in_process(ros, processes, tmp_path, world, seed):
    expected = in_process_flight(world, seed)
    assert expected.outcome == "success", (expected.outcome, expected.reason)
    params = str(SIM_PARAMS)
    processes.node("sim_node", "--params-file", params, "--params-file", write_overrides(tmp_path, LOCK_STEP),
                   "-p", f"world:={world}", "-p", f"seed:={seed}")
    processes.node("controller_node", "--params-file", params, "-p", "use_sim_time:=true",
                   "-p", f"model_path:={shipped_model('cfc_ncp', onnx=True)}")
    processes.node("safety_node", "--params-file", params, "-p", "use_sim_time:=true")
    recorder = Recorder(ros.node)
    recorder.listen(DiagnosticArray, "diagnostics", COMMAND_QOS)
    recorder.listen(DiagnosticStatus, "liquid_nav/episode", LATCHED_QOS)
    recorder.listen(String, "liquid_nav/safety_mode", LATCHED_QOS)
    try:
        wait_for(lambda: recorder.get("liquid_nav/episode"), 90, "the first frame")
        first = {kv.key: kv.value for kv in recorder.get("liquid_nav/episode")[0].values}
        # the first frame waits (lock-step) while the controller answers it and the safety layer is armed
        wait_for(lambda: int(recorder.diagnostics("liquid_nav/safety").get("accepted", 0)) >= 1, 90,
                 "the controller's command for the first frame at the safety layer")
        arm(ros, recorder)
        wait_for(lambda: recorder.get("liquid_nav/episode")[-1].message != "running", 180, "the episode to end")
        final = {kv.key: kv.value for kv in recorder.get("liquid_nav/episode")[-1].values}
        print(f"{world} seed {seed}: ROS {final['outcome']} at {final['time']} s ({final['reason']}); "
              f"in process {expected.outcome} at {expected.duration:.3f} s ({expected.reason})")
        assert final["outcome"] == "success" and int(final["seed"]) == seed and float(first["time"]) == 0.0
        assert float(final["time"]) == pytest.approx(expected.duration, abs=0.5 / 30)  # the same frame
    except AssertionError:
        print(processes.logs())
        raise
