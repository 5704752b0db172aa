"""World files: the shipped worlds load and sample valid scenes (malformed files: tests/bad_inputs)."""
import math
from pathlib import Path

import numpy as np
import pytest
import yaml

from liquid_nav.paths import worlds_dir
from liquid_nav.sim.worlds import (WorldFileError, available_worlds, layout_seed_for, load_world, sample_scene)

SHIPPED = ("forest", "forest_autumn", "forest_winter", "urban")


def test_shipped_worlds_are_available():
    assert set(SHIPPED) <= set(available_worlds())


@pytest.mark.parametrize("name", SHIPPED)
def test_sampled_scenes_respect_the_world_file(name):
    spec = load_world(name)
    for seed in range(12):
        scene = sample_scene(spec, seed)
        start, target = np.array(scene.start_position), np.array(scene.target_position)
        distance = float(np.hypot(*(target[:2] - start[:2])))
        assert spec.target.distance[0] - 1e-9 <= distance <= spec.target.distance[1] + 1e-9
        bearing = math.degrees(math.atan2(target[1] - start[1], target[0] - start[0]) - scene.start_yaw)
        bearing = (bearing + 180.0) % 360.0 - 180.0
        assert spec.target.bearing_deg[0] - 1e-6 <= bearing <= spec.target.bearing_deg[1] + 1e-6
        assert spec.start.height[0] <= start[2] <= spec.start.height[1]
        clearances = scene.layout.footprints.distance(np.stack([start[:2], target[:2]]))
        assert clearances[0] >= spec.start.clearance and clearances[1] >= spec.target.clearance
        assert np.abs(start[:2]).max() < spec.half_size and np.abs(target[:2]).max() < spec.half_size
        # line of sight at flight level: nothing between start and target
        line = start[:2] + np.linspace(0, 1, 100)[:, None] * (target[:2] - start[:2])
        assert scene.layout.footprints.distance(line).min() > 0.5


def test_the_same_seed_gives_the_same_scene_and_layout_blocks_are_shared():
    spec = load_world("forest")
    first, again = sample_scene(spec, 5), sample_scene(spec, 5)
    assert first.start_position == again.start_position and first.target_position == again.target_position
    assert first.layout.primitives == again.layout.primitives
    block = spec.episodes_per_layout
    sibling = sample_scene(spec, (5 // block) * block + (5 + 1) % block)
    assert layout_seed_for(spec, sibling.seed) == layout_seed_for(spec, 5)
    assert sibling.layout.primitives == first.layout.primitives
    assert sibling.target_position != first.target_position
    other = sample_scene(spec, 5 + block)
    assert other.layout.primitives != first.layout.primitives


def test_forest_has_the_anchor_tree_count_and_urban_has_buildings():
    forest = sample_scene(load_world("forest"), 0).layout
    trunks = [p for p in forest.primitives if p.shape == "cylinder" and p.collision]
    assert len(trunks) == 150
    urban = sample_scene(load_world("urban"), 0).layout
    tall = [p for p in urban.primitives if p.shape == "box" and p.collision and p.half_extents[2] > 2.5]
    assert len(tall) >= 4


def _write(tmp_path: Path, data) -> Path:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def _forest_data():
    return yaml.safe_load((worlds_dir() / "forest.yaml").read_text())


def test_a_user_world_without_code_loads_from_a_path(tmp_path):
    data = _forest_data()
    data["name"] = "sparse"
    data["obstacles"]["trees"]["count"] = 20
    del data["obstacles"]["props"]
    spec = load_world(_write(tmp_path, data))
    trunks = [p for p in sample_scene(spec, 0).layout.primitives if p.shape == "cylinder" and p.collision]
    assert spec.name == "sparse" and len(trunks) == 20


def test_a_world_whose_target_cannot_be_placed_is_reported(tmp_path):
    data = _forest_data()
    data["target"]["clearance"] = 18.0  # no spot in a 150-tree forest is 18 m from every obstacle
    spec = load_world(_write(tmp_path, data))
    with pytest.raises(WorldFileError, match="'target'.*no valid start/target found for seed 0"):
        sample_scene(spec, 0)


@pytest.mark.parametrize("seed", [-1, 1.5, "3", True])
def test_episode_seeds_must_be_non_negative_integers(seed):
    with pytest.raises(ValueError, match="episode seed must be a non-negative integer"):
        sample_scene(load_world("forest"), seed)
    assert sample_scene(load_world("forest"), np.int64(3)).seed == 3


def test_footprint_distances_are_exact_for_circles_and_turned_boxes_in_any_number_of_points():
    from liquid_nav.sim.worlds import Footprints

    footprints = Footprints(np.array([[0.0, 0.0, 1.0]]), np.array([[10.0, 0.0, 2.0, 1.0, math.pi / 2]]))
    # 3001 points along the x axis (more than one chunk); the box is turned so its 2 m half side lies along y
    xs = np.linspace(-5.0, 15.0, 3001)
    distance = footprints.distance(np.stack([xs, np.zeros_like(xs)], axis=1))
    to_circle = np.abs(xs) - 1.0
    to_box = np.abs(xs - 10.0) - 1.0  # outside and inside (the 2 m sides are farther than the 1 m ones)
    assert distance == pytest.approx(np.minimum(to_circle, to_box), abs=1e-12)
    assert footprints.distance(np.array([10.0, 1.5]))[0] == pytest.approx(-0.5)  # inside, 0.5 m from the long side
    assert Footprints(np.zeros((0, 3)), np.zeros((0, 5))).distance(np.zeros((2, 2))).tolist() == [np.inf, np.inf]
