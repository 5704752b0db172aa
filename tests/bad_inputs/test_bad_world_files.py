"""Bad world and vehicle files: each is refused with one error naming the file, the key and what was expected.

``CASES`` is the table; add a row for every new kind of bad file.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Tuple, Union

import pytest
import yaml

from liquid_nav.paths import worlds_dir
from liquid_nav.sim.vehicle import VehicleFileError, load_vehicle
from liquid_nav.sim.worlds import WorldFileError, load_world


def _shipped(name: str) -> Any:
    return yaml.safe_load((worlds_dir() / name).read_text(encoding="utf-8"))


def _drop(*keys) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        for key in keys[:-1]:
            data = data[key]
        del data[keys[-1]]
    return edit


def _set(value, *keys) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        for key in keys[:-1]:
            data = data[key]
        data[keys[-1]] = value
    return edit


def _urban_buildings_per_block(data: dict) -> None:
    streets = _shipped("urban.yaml")["obstacles"]["streets"]
    streets["buildings"]["per_block"] = [1.5, 3]
    data["obstacles"] = {"streets": streets}


@dataclass(frozen=True)
class BadFile:
    """How to make the file (``tmp_path``, ``monkeypatch`` -> path or name), which loader reads it, what the
    error says besides the path or name."""

    make: Callable[[Path, pytest.MonkeyPatch], Union[Path, str]]
    load: Callable[[Union[Path, str]], Any]
    error: type
    fragments: Tuple[str, ...]


def _world(edit: Callable[[dict], None]) -> Callable[[Path, pytest.MonkeyPatch], Path]:
    """A copy of forest.yaml with ``edit`` applied."""
    def make(tmp_path: Path, _) -> Path:
        data = _shipped("forest.yaml")
        edit(data)
        path = tmp_path / "broken.yaml"
        path.write_text(yaml.safe_dump(data), encoding="utf-8")
        return path
    return make


def _raw(content: bytes, name: str = "broken.yaml") -> Callable[[Path, pytest.MonkeyPatch], Path]:
    def make(tmp_path: Path, _) -> Path:
        path = tmp_path / name
        path.write_bytes(content)
        return path
    return make


def _unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A world file the process may not read (root reads anything, so the refusal is simulated)."""
    path = _raw(b"name: x\n")(tmp_path, monkeypatch)
    real_read_text = Path.read_text

    def read_text(self, *args, **kwargs):
        if self == path:
            raise PermissionError(13, "Permission denied", str(path))
        return real_read_text(self, *args, **kwargs)
    monkeypatch.setattr(Path, "read_text", read_text)
    return path


def _directory(tmp_path: Path, _) -> Path:
    path = tmp_path / "folder.yaml"
    path.mkdir()
    return path


def _world_case(case_id: str, edit: Callable[[dict], None], *fragments: str):
    return pytest.param(BadFile(_world(edit), load_world, WorldFileError, fragments), id=case_id)


def _raw_case(case_id: str, make, load, error: type, *fragments: str):
    return pytest.param(BadFile(make, load, error, fragments), id=case_id)


CASES = [
    _world_case("missing-target", _drop("target"), "'target'", "required"),
    _world_case("distance-not-a-range", _set("far", "target", "distance"), "'target.distance'", "[min, max]"),
    _world_case("distance-min-above-max", _set([9.0, 3.0], "target", "distance"), "'target.distance'", "min <= max"),
    _world_case("colour-above-one", _set([1.2, 0.5, 0.3], "ground", "color"), "'ground.color'", "[r, g, b]"),
    _world_case("unknown-canopy-shape", _set("pyramid", "obstacles", "trees", "canopy", "shape"),
                "'obstacles.trees.canopy.shape'", "one of"),
    _world_case("fractional-tree-count", _set(12.5, "obstacles", "trees", "count"), "'obstacles.trees.count'",
                "an integer"),
    _world_case("unknown-key", _set(1, "area", "bogus"), "'area.bogus'", "unknown key"),
    _world_case("floating-canopy", _set([20.0, 30.0], "obstacles", "trees", "canopy", "base"),
                "'obstacles.trees.canopy.base'", "canopy base"),
    _world_case("two-component-colour", _set([[0.1, 0.2]], "obstacles", "props", 0, "parts", 0, "colors"),
                "'obstacles.props[0].parts[0].colors[0]'", "[r, g, b]"),
    _world_case("street-placement-without-streets", _set("streets", "start", "placement"), "'start.placement'",
                "obstacles.streets"),
    _world_case("target-outside-area", _set([5.0, 80.0], "target", "distance"), "'target.distance'",
                "inside the area"),
    _world_case("negative-ambient-light", _set(-0.2, "light", "ambient"), "'light.ambient'",
                "a number in [0.0, 2.0]"),
    _world_case("nan-in-range", _set([float("nan"), 0.3], "obstacles", "trees", "trunk_radius"),
                "'obstacles.trees.trunk_radius'", "finite numbers"),
    _world_case("inf-in-range", _set([1.2, float("inf")], "start", "height"), "'start.height'", "finite numbers"),
    _world_case("zero-light-direction", _set([0.0, 0.0, 0.0], "light", "direction"), "'light.direction'",
                "non-zero"),
    _world_case("fractional-buildings-per-block", _urban_buildings_per_block,
                "'obstacles.streets.buildings.per_block'", "whole numbers"),
    _world_case("inf-light-direction", _set([float("inf"), 0.0, 1.0], "light", "direction"), "'light.direction'",
                "3 finite numbers"),
    _world_case("null-section", _set(None, "ground"), "'ground'", "a mapping, got nothing"),
    _raw_case("invalid-yaml", _raw(b"name: [unclosed\n"), load_world, WorldFileError, "not valid YAML at line 2"),
    _raw_case("top-level-list", _raw(b"- just\n- a list\n"), load_world, WorldFileError, "a mapping"),
    _raw_case("empty-file", _raw(b""), load_world, WorldFileError, "a mapping"),
    _raw_case("latin-1-text", _raw("name: Müllheim\n".encode("latin-1")), load_world, WorldFileError,
              "not UTF-8 text (byte 0xfc at offset 7)"),
    _raw_case("utf-16-text", _raw("name: forest\n".encode("utf-16")), load_world, WorldFileError, "not UTF-8 text"),
    _raw_case("unreadable-file", _unreadable, load_world, WorldFileError, "cannot read the file (Permission denied)"),
    _raw_case("missing-file", lambda tmp_path, _: tmp_path / "missing.yaml", load_world, WorldFileError,
              "world file not found"),
    _raw_case("unknown-world-name", lambda tmp_path, _: "atlantis", load_world, WorldFileError,
              "unknown world 'atlantis'", "forest"),
    _raw_case("directory-named-like-a-world-file", _directory, load_world, WorldFileError, "world file not found"),
    _raw_case("vehicle-latin-1-text", _raw("name: Müller\n".encode("latin-1")), load_vehicle, VehicleFileError,
              "not UTF-8 text (byte 0xfc at offset 7)"),
    _raw_case("vehicle-invalid-yaml", _raw(b"mass: [1\n"), load_vehicle, VehicleFileError, "not valid YAML at line 2"),
]


@pytest.mark.parametrize("case", CASES)
def test_bad_world_and_vehicle_files_name_the_file_and_the_expectation(case: BadFile, tmp_path, monkeypatch):
    source = case.make(tmp_path, monkeypatch)
    with pytest.raises(case.error) as raised:
        case.load(source)
    message = str(raised.value)
    assert "\n" not in message and str(source) in message
    assert all(fragment in message for fragment in case.fragments), message
