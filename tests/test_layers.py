"""The package's import picture is strictly layered, read from the real imports (module and function level).

Layers, lowest first: the base modules (``liquid_nav/*.py``: paths, validation, stamps, media) ->
``sim`` and ``models`` -> ``expert`` (-> sim) and ``runtime`` (-> models) -> ``data`` -> ``evaluate``
-> ``train``; ``nodes`` (rclpy) sit on runtime, sim and expert; ``cli`` on everything. No module imports
a layer above it, there are no import cycles between modules, and only ``nodes`` import ROS.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path
from typing import Dict, Set

import liquid_nav

PACKAGE_DIR = Path(liquid_nav.__file__).resolve().parent

MAY_IMPORT: Dict[str, Set[str]] = {
    "base": set(),
    "sim": {"base"},
    "models": {"base"},
    "expert": {"base", "sim"},
    "runtime": {"base", "models"},
    "data": {"base", "sim", "models", "runtime", "expert"},
    "evaluate": {"base", "sim", "models", "runtime", "expert", "data"},
    "train": {"base", "sim", "models", "runtime", "expert", "data", "evaluate"},
    "nodes": {"base", "sim", "models", "runtime", "expert"},
    "cli": {"base", "sim", "models", "runtime", "expert", "data", "evaluate", "train"},
}
ROS_MODULES = ("rclpy", "std_msgs", "sensor_msgs", "geometry_msgs", "nav_msgs", "std_srvs", "rosgraph_msgs",
               "diagnostic_msgs", "builtin_interfaces", "lifecycle_msgs", "rcl_interfaces")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "base"
    if parts[1] == "cli":
        return "cli"
    return parts[1] if parts[1] in MAY_IMPORT else "base"


def imports_of(path: Path) -> Set[str]:
    """Every module imported anywhere in the file (``from a import b`` counts ``a`` and ``a.b`` if it is one)."""
    found: Set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def package_graph() -> Dict[str, Set[str]]:
    modules = {module_name(path): path for path in PACKAGE_DIR.rglob("*.py")}
    return {name: {imported for imported in imports_of(path) if imported in modules and imported != name}
            for name, path in modules.items()}


def test_the_layer_map_knows_every_subpackage():
    subpackages = {path.parent.name for path in PACKAGE_DIR.glob("*/__init__.py")}
    assert subpackages <= set(MAY_IMPORT), f"add {subpackages - set(MAY_IMPORT)} to MAY_IMPORT"


def test_no_module_imports_a_layer_above_it():
    wrong = sorted(f"{module} ({layer_of(module)}) imports {imported} ({layer_of(imported)})"
                   for module, imported_modules in package_graph().items() for imported in imported_modules
                   if layer_of(imported) != layer_of(module) and layer_of(imported) not in MAY_IMPORT[layer_of(module)])
    assert not wrong, "\n".join(wrong)


def test_no_import_cycles():
    graph = package_graph()
    # a package's __init__ re-exporting its own modules is not a cycle: drop package -> own-submodule edges
    edges = {module: {imported for imported in targets if not imported.startswith(module + ".")}
             for module, targets in graph.items()}
    state: Dict[str, int] = {}
    stack: list = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for imported in sorted(edges[module]):
            if state.get(imported) == 1:
                cycle = stack[stack.index(imported):] + [imported]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if imported not in state:
                visit(imported)
        stack.pop()
        state[module] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module)


def test_only_nodes_import_ros():
    wrong = sorted(f"{module_name(path)} imports {imported}" for path in PACKAGE_DIR.rglob("*.py")
                   if layer_of(module_name(path)) != "nodes" for imported in imports_of(path)
                   if imported.split(".")[0] in ROS_MODULES)
    assert not wrong, "\n".join(wrong)


def test_the_runtime_loads_no_simulator():
    """What runs on the vehicle: importing every runtime module loads neither PyBullet nor the simulator."""
    runtime_modules = sorted(module_name(path) for path in (PACKAGE_DIR / "runtime").glob("*.py"))
    code = ("import importlib, sys\n"
            f"for name in {runtime_modules!r}: importlib.import_module(name)\n"
            "loaded = sorted(m for m in sys.modules if m.split('.')[0] == 'pybullet' or m.startswith('liquid_nav.sim')"
            " or m.startswith('liquid_nav.expert') or m == 'gymnasium')\n"
            "print(loaded)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=PACKAGE_DIR.parent)
    assert result.stdout.strip() == "[]", result.stdout


def test_the_layer_checks_see_a_back_arrow(tmp_path):
    """The checker itself: a file importing upwards is reported (the test above can fail)."""
    path = tmp_path / "probe.py"
    path.write_text("def f():\n    from liquid_nav.sim.env import FlyToTargetEnv\n")
    assert "liquid_nav.sim.env" in imports_of(path)
    assert layer_of("liquid_nav.sim.env") not in MAY_IMPORT[layer_of("liquid_nav.runtime.backends")]
