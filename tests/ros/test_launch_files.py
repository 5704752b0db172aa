"""Static validation of launch/*.launch.py and config/*.yaml (launch / launch_ros are not installed here).

The launch files are parsed (ast), not imported: they must expose generate_launch_description, start
only executables that setup.py declares as console_scripts, use only declared launch arguments, and
reference params files that exist and hold `/**/node: ros__parameters:` entries whose names the
nodes declare. test_graph.py starts the same executables with the same params files.
"""
import ast
import importlib

import pytest
import yaml

from liquid_nav.nodes.common import parameter_names
from tests.ros.conftest import REPO

pytestmark = pytest.mark.ros

LAUNCH_FILES = sorted((REPO / "launch").glob("*.launch.py"))
CONFIG_FILES = sorted((REPO / "config").glob("*.yaml"))
REQUIRED_ARGUMENTS = {
    "sim.launch.py": {"world", "model", "seed", "use_sim_time", "params_file", "namespace"},
    "onboard.launch.py": {"model", "params_file", "namespace", "camera_topic", "cmd_vel_topic"},
}


def console_scripts() -> dict:
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "entry_points":
            entries = ast.literal_eval(node.value)["console_scripts"]
            return {name.strip(): target.strip() for name, target in (entry.split("=") for entry in entries)}
    raise AssertionError("setup.py has no entry_points")


def declared_parameters(executable: str) -> set:
    module, _ = console_scripts()[executable].split(":")
    return parameter_names(importlib.import_module(module).PARAMETERS)


def calls(tree: ast.AST, name: str):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            called = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if called == name:
                yield node


def keyword(call: ast.Call, name: str):
    return next((k.value for k in call.keywords if k.arg == name), None)


def first_string(call: ast.Call) -> str:
    return ast.literal_eval(call.args[0])


def yaml_names(tree: ast.AST) -> list:
    return [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
            and isinstance(node.value, str) and node.value.endswith(".yaml")]


def test_there_are_launch_and_config_files():
    assert {path.name for path in LAUNCH_FILES} >= set(REQUIRED_ARGUMENTS)
    assert {path.name for path in CONFIG_FILES} >= {"sim.yaml", "onboard.yaml"}


@pytest.mark.parametrize("path", LAUNCH_FILES, ids=lambda p: p.name)
def test_launch_file_wiring(path):
    tree = ast.parse(path.read_text(), filename=str(path))
    functions = [n.name for n in tree.body if isinstance(n, ast.FunctionDef)]
    assert functions == ["generate_launch_description"], "launch files hold only generate_launch_description"
    imported = {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert {"launch", "launch_ros"} <= imported

    arguments = {first_string(call) for call in calls(tree, "DeclareLaunchArgument")}
    assert REQUIRED_ARGUMENTS[path.name] <= arguments
    used = {first_string(call) for call in calls(tree, "LaunchConfiguration")}
    assert used <= arguments, f"undeclared launch arguments {used - arguments}"
    assert arguments <= used, f"declared but unused launch arguments {arguments - used}"

    scripts = console_scripts()
    nodes = list(calls(tree, "Node"))
    assert nodes
    for node in nodes:
        executable = ast.literal_eval(keyword(node, "executable"))
        assert executable in scripts, f"{path.name}: executable {executable!r} is not a console_scripts entry"
        assert ast.literal_eval(keyword(node, "package")) == "liquid_nav"
        assert ast.literal_eval(keyword(node, "name")) == executable
        declared = declared_parameters(executable)
        for item in keyword(node, "parameters").elts:
            if isinstance(item, ast.Dict):
                names = {ast.literal_eval(key) for key in item.keys}
                assert names <= declared, f"{path.name}: {executable} does not declare {names - declared}"

    for name in yaml_names(tree):
        assert (REPO / "config" / name).is_file(), f"{path.name} references missing config/{name}"


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.name)
def test_params_files_match_declared_parameters(path):
    document = yaml.safe_load(path.read_text())
    assert isinstance(document, dict) and document
    scripts = console_scripts()
    for key, entry in document.items():
        assert key.startswith("/**/"), f"{path.name}: use /**/<node>: keys so namespacing works, got {key!r}"
        executable = key[len("/**/"):]
        assert executable in scripts, f"{path.name}: {key!r} names no liquid_nav node"
        assert set(entry) == {"ros__parameters"}, f"{path.name}: {key} must hold only ros__parameters"
        names = set(entry["ros__parameters"])
        declared = declared_parameters(executable)
        assert names <= declared, f"{path.name}: {executable} does not declare {sorted(names - declared)}"
        # values the launch files pass on the command line must not be in the file (the file would win)
        assert not names & {"model_path", "world", "seed", "use_sim_time"}


def _safety_config(declared):
    from liquid_nav.runtime.safety import SafetyConfig

    return SafetyConfig(**{name: declared[name] for name in SafetyConfig.__dataclass_fields__})


def _controller_config(declared):
    from liquid_nav.stamps import DtRule

    return DtRule(**{name: declared[name] for name in DtRule.__dataclass_fields__})


CONFIG_CHECKS = {"safety_node": _safety_config, "controller_node": _controller_config}


def test_params_file_values_are_accepted_by_the_nodes(ros):
    """Every value in the files satisfies the node's descriptors (types, ranges, choices) and config rules."""
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from liquid_nav.nodes.common import declare_parameters

    for path in CONFIG_FILES:
        for key, entry in yaml.safe_load(path.read_text()).items():
            executable = key[len("/**/"):]
            module = importlib.import_module(console_scripts()[executable].split(":")[0])
            values = entry["ros__parameters"]
            node = Node(executable, context=ros.context,
                        parameter_overrides=[Parameter(k, value=v) for k, v in values.items()])
            try:
                declared = declare_parameters(node, module.PARAMETERS)
            finally:
                node.destroy_node()
            assert {k: declared[k] for k in values} == values, f"{path.name}: {executable}"
            CONFIG_CHECKS.get(executable, lambda _: None)(declared)  # cross-field rules of the node's config



def test_out_of_range_and_unknown_choice_values_are_refused(ros):
    from rclpy.exceptions import InvalidParameterValueException
    from rclpy.node import Node
    from rclpy.parameter import Parameter

    from liquid_nav.nodes import safety_node
    from liquid_nav.nodes.common import declare_parameters

    for bad, error in ((Parameter("max_vx", value=-1.0), InvalidParameterValueException),
                       (Parameter("lost_action", value="explode"), ValueError)):
        node = Node("safety_node", context=ros.context, parameter_overrides=[bad])
        try:
            with pytest.raises(error, match=bad.name):
                declare_parameters(node, safety_node.PARAMETERS)
        finally:
            node.destroy_node()


def test_every_console_script_target_exists():
    for name, target in console_scripts().items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), name


@pytest.mark.parametrize("ros_args, message", [
    (["-p", "model_path:=/nonexistent/policy.ckpt"], "/nonexistent/policy.ckpt"),
    (["-p", "model_path:=''"], "model_path"),
    (["-p", "model_path:=x.ckpt", "-p", "backend:=tflite"], "backend"),
    (["-p"], "invalid ROS arguments: failed to initialize rcl: Couldn't parse trailing -p flag"),
    (["--params-file", "/nonexistent/params.yaml"],
     "invalid ROS arguments: failed to initialize rcl: Couldn't parse params file"),
])
def test_bad_controller_configuration_exits_with_a_clear_message(ros_args, message):
    import os
    import subprocess
    import sys

    env = dict(os.environ, PYTHONPATH=str(REPO))
    result = subprocess.run([sys.executable, "-m", "liquid_nav.nodes.controller_node", "--ros-args", *ros_args],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "cannot start" in result.stderr and message in result.stderr


def test_onboard_nodes_do_not_import_the_simulator():
    """controller_node and safety_node must run on a Jetson without PyBullet / gymnasium installed."""
    import os
    import subprocess
    import sys

    probe = ("import sys, liquid_nav.nodes.controller_node, liquid_nav.nodes.safety_node; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in ('pybullet', 'gymnasium') "
             "or m.startswith('liquid_nav.sim')))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_sim_launch_defaults_to_the_shipped_cfc_ncp_onnx():
    tree = ast.parse((REPO / "launch" / "sim.launch.py").read_text())
    model = next(call for call in calls(tree, "DeclareLaunchArgument") if first_string(call) == "model")
    default = keyword(model, "default_value")
    assert isinstance(default, ast.Name) and default.id == "shipped_model"
    joined = next(node for node in ast.walk(tree) if isinstance(node, ast.Assign)
                  and any(isinstance(t, ast.Name) and t.id == "shipped_model" for t in node.targets))
    parts = [ast.literal_eval(arg) for arg in joined.value.args[1:]]
    assert parts == ["checkpoints", "cfc_ncp", "policy.onnx"]
    assert (REPO / "checkpoints" / "cfc_ncp" / "policy.onnx").is_file()  # installed by setup.py's data files
    sim = yaml.safe_load((REPO / "config" / "sim.yaml").read_text())
    assert sim["/**/controller_node"]["ros__parameters"]["backend"] == "onnxruntime"
