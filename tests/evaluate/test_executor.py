"""The executor layer: in-process, a local spawn pool and a real local Ray cluster give the same results;
an evaluation through Ray gives the same per-episode results as through the local pool."""
import json
import os

import pytest

from liquid_nav.evaluate.conditions import parse_condition_argument
from liquid_nav.evaluate.experiment import load_experiment
from liquid_nav.evaluate.run import fly_episodes
from liquid_nav.evaluate.rundir import EPISODES_FILE, EpisodeLog, row_key
from liquid_nav.executor import map_unordered
from liquid_nav.models.checkpoint import save_checkpoint
from tests.models.conftest import small_policy

_state = {}


def remember_offset(offset: int) -> None:
    _state["offset"] = offset


def shifted(item: int):
    return item + _state["offset"], os.environ.get("OMP_NUM_THREADS"), os.getpid()


def test_in_process_and_pool_give_the_same_results_with_pinned_threads():
    serial = list(map_unordered(shifted, range(6), 1, remember_offset, (100,), finalizer=_state.clear))
    assert sorted(value for value, _, _ in serial) == list(range(100, 106))
    assert {pid for _, _, pid in serial} == {os.getpid()} and not _state
    pooled = list(map_unordered(shifted, range(6), 2, remember_offset, (100,), threads_per_worker=1))
    assert sorted(value for value, _, _ in pooled) == list(range(100, 106))
    assert {threads for _, threads, _ in pooled} == {"1"} and os.getpid() not in {pid for _, _, pid in pooled}
    with pytest.raises(ValueError, match="executor"):
        map_unordered(shifted, [], executor="slurm")


def deterministic_rows(run_dir):
    rows = EpisodeLog(run_dir / EPISODES_FILE).rows()
    return {json.dumps(row_key(row)): {k: v for k, v in row.items() if k not in ("latency_ms_mean", "latency_ms_p95", "wall_s")}
            for row in rows}


def test_ray_and_the_local_pool_give_identical_episodes(tmp_path):
    import ray  # the ray extra (make setup installs it)
    checkpoint = tmp_path / "lstm.lnav"
    save_checkpoint(checkpoint, small_policy("lstm", seed=5), {})
    conditions = parse_condition_argument("rate=15+target_rotation=90")  # env, scene and world edits travel
    experiment = load_experiment(models=[str(checkpoint), "expert"], worlds=["forest"], episodes=2, camera="small",
                                 conditions=conditions, max_episode_seconds=4.0)
    fly_episodes(experiment, tmp_path / "local", workers=2, progress=False)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        fly_episodes(experiment, tmp_path / "ray", workers=2, executor="ray", progress=False)
    finally:
        ray.shutdown()
    local, on_ray = deterministic_rows(tmp_path / "local"), deterministic_rows(tmp_path / "ray")
    assert len(local) == 8 and json.dumps(local, sort_keys=True) == json.dumps(
        {key: on_ray[key] for key in local}, sort_keys=True)
    assert "success" in {row["outcome"] for row in local.values() if row["model"] == "expert"}
