"""A real (tiny) training study: expert data collected, two variants x two seeds trained, every run flown
closed-loop on its seed block, pooled into the evaluation format with the spread over seeds; re-running does
nothing; a run directory of another config and malformed study files are refused with the key named."""
import json
import shutil
import statistics

import cv2
import pytest
import yaml

from liquid_nav.cli import main
from liquid_nav.evaluate.rundir import load_run
from liquid_nav.train.study import (StudyError, cell_flights, load_study, parse_study, record_cells, recorded_cell,
                                    run_state, run_study)
from liquid_nav.train.trainer import read_log

TINY_TRAINING = {"policy": {"units": 16, "backbone_units": 16}, "window": 8, "stride": 8, "batch_size": 2,
                 "steps": 3, "validate_every": 2, "checkpoint_every": 2, "log_every": 1,
                 "validation_fraction": 0.25, "validation_windows": 4, "threads": 1,
                 "include_failed": True, "compile": False}  # 2 s expert episodes time out: they still teach


def tiny_study(tmp_path, **changes):
    data = {"name": "tiny", "train": "quick", "seeds": [0, 1], "reference": "lstm", "common": TINY_TRAINING,
            "data": {"dir": str(tmp_path / "store"), "world": "forest", "episodes": 4, "first_seed": 7,
                     "camera": "small", "max_episode_seconds": 2.0},
            "variants": {"cfc_ncp": {}, "lstm": {"policy": {"head": "lstm"}}},
            "evaluation": {"worlds": ["forest"], "episodes_per_seed": 2, "first_seed": 500000,
                           "max_episode_seconds": 3.0, "camera": "small"}}
    data.update(changes)
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture(scope="module")
def study_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    study = load_study(tiny_study(root))
    done = run_study(study, root / "out", root / "report", workers=1, progress=False, log=lambda _: None)
    return study, root, done


def test_every_run_is_trained_and_flown_on_its_seed_block(study_run):
    study, root, done = study_run
    assert done["collected"] == 4 and done["trained"] == 4 and done["flown"] == 2 * 3 * 2  # (2 variants + expert)
    for variant in ("cfc_ncp", "lstm"):
        for seed in (0, 1):
            assert run_state(study, root / "out", variant, seed) == "done"
            config = yaml.safe_load((root / "out" / variant / f"seed{seed}" / "config.yaml").read_text())
            assert config["seed"] == seed and config["policy"]["head"] == variant and config["policy"]["units"] == 16
    for index, seed in enumerate((0, 1)):
        experiment, rows = load_run(root / "out" / "eval" / f"seed{seed}")
        assert [model.label for model in experiment.models] == ["cfc_ncp", "lstm"]
        assert sorted({row["seed"] for row in rows}) == [500000 + 2 * index, 500001 + 2 * index]


def test_pooled_results_are_in_the_evaluation_format_and_paired(study_run):
    _, root, _ = study_run
    results = json.loads((root / "report" / "results.json").read_text())
    assert results["format"] == "liquid_nav.evaluation_results"
    cells = {(cell["model"], cell["world"], cell["condition"]): cell for cell in results["cells"]}
    assert set(cells) == {("cfc_ncp", "forest", "nominal"), ("lstm", "forest", "nominal")}
    rows = []
    for seed in (0, 1):
        rows += load_run(root / "out" / "eval" / f"seed{seed}")[1]
    for label, cell in cells.items():
        mine = [row for row in rows if row["model"] == label[0]]
        assert cell["episodes"] == 4 and cell["successes"] == sum(row["success"] for row in mine)
    paired = next(item for item in results["comparisons"] if item["world"] == "forest")
    assert paired["pairs"] == 4 and paired["only_a"] + paired["only_b"] + paired["both"] + paired["neither"] == 4


def test_summary_figures_are_the_logs_and_their_spread(study_run):
    _, root, _ = study_run
    summary = json.loads((root / "report" / "summary.json").read_text())
    finals = []
    for seed in (0, 1):
        rows = read_log(root / "out" / "cfc_ncp" / f"seed{seed}")
        final = [float(row["validation_loss"]) for row in rows if row["kind"] == "validation"][-1]
        entry = summary["variants"]["cfc_ncp"]["seeds"][str(seed)]
        assert entry["final_validation_loss"] == pytest.approx(final) and entry["steps"] == 3
        assert entry["cnn_grad_norm"] > 0 and entry["feature_std"] > 0
        finals.append(final)
    spread = summary["variants"]["cfc_ncp"]["spread"]["final_validation_loss"]
    assert spread["n"] == 2 and spread["mean"] == pytest.approx(statistics.fmean(finals))
    assert spread["std"] == pytest.approx(statistics.stdev(finals))
    report = (root / "report" / "report.md").read_text()
    assert "| cfc_ncp | (the recipe) | 2/2 |" in report and "| cfc_ncp | lstm | forest | 4 |" in report
    image = cv2.imread(str(root / "report" / "curves.png"))
    assert image is not None and image.std() > 10


def test_rerun_does_nothing_and_keeps_every_file(study_run):
    study, root, _ = study_run
    log = root / "out" / "lstm" / "seed1" / "log.csv"
    before = log.read_bytes()
    episodes = (root / "out" / "eval" / "seed1" / "episodes.jsonl").read_bytes()
    done = run_study(study, root / "out", root / "report", workers=1, progress=False, log=lambda _: None)
    assert (done["collected"], done["trained"], done["flown"]) == (0, 0, 0)
    assert log.read_bytes() == before and (root / "out" / "eval" / "seed1" / "episodes.jsonl").read_bytes() == episodes
    # choosing variants picks what is trained; a seed's evaluation keeps every finished variant
    done = run_study(study, root / "out", root / "report", stages=["evaluate", "report"], variants=["lstm"],
                     workers=1, progress=False)
    assert done["flown"] == 0
    results = json.loads((root / "report" / "results.json").read_text())
    assert sorted(cell["model"] for cell in results["cells"]) == ["cfc_ncp", "lstm"]


def test_a_run_of_another_config_is_refused(study_run, tmp_path):
    _, root, _ = study_run
    changed = load_study(tiny_study(tmp_path, common={**TINY_TRAINING, "optim": {"lr": 1e-3}}))
    with pytest.raises(StudyError, match=r"another training config \(keys \['optim'\] differ\)"):
        run_state(changed, root / "out", "cfc_ncp", 0)


def test_a_run_stopped_before_its_first_log_row_is_trained_again(study_run, tmp_path):
    study, _, _ = study_run
    run = study.run_dir(tmp_path, "lstm", 0)
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump(study.train_config("lstm", 0).to_dict(), sort_keys=False))
    assert run_state(study, tmp_path, "lstm", 0) == "partial"
    assert run_study(study, tmp_path, stages=["train"], variants=["lstm"], seeds=[0], progress=False,
                     log=lambda _: None) == {"trained": 1}
    assert run_state(study, tmp_path, "lstm", 0) == "done"


def test_part_of_a_study_and_the_command_line(study_run, tmp_path, capsys):
    _, root, _ = study_run
    path = tiny_study(tmp_path, data={"dir": str(root / "store"), "world": "forest", "episodes": 4, "first_seed": 7,
                                      "camera": "small", "max_episode_seconds": 2.0})
    out = tmp_path / "out"
    assert main(["study", str(path), "--out", str(out), "--variants", "cfc_ncp", "--seeds", "1",
                 "--stages", "train", "report", "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["cfc_ncp", "report"]
    report = (out / "report" / "report.md").read_text()
    assert "| cfc_ncp | (the recipe) | 1/2 |" in report and "(1 seed)" in report
    assert main(["study", str(path), "--out", str(out), "--variants", "gru", "--stages", "report"]) == 1
    assert "variant 'gru' is not in study 'tiny'" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    ({"variants": []}, "key 'variants': expected a mapping of variant labels"),
    ({"variants": {"a/b": {}}}, "key 'variants': expected a mapping of variant labels"),
    ({"seeds": [1, 1]}, "key 'seeds': expected a list of distinct training seeds"),
    ({"reference": "gru"}, "key 'reference': expected one of the variants"),
    ({"variants": {"x": {"policy": {"head": "transformer"}}}, "reference": "x"}, "study variant 'x'"),
    ({"variants": {"x": {"optim": {"lr": 5}}}, "reference": "x"}, "key 'optim.lr'"),
    ({"evaluation": {"episodes_per_seed": 0}}, "key 'evaluation.episodes_per_seed'"),
    ({"colour": "red"}, "unknown key 'colour'"),
    ({"variants": {"x": {"dagger": {"base": "gru"}}}, "reference": "x"}, "key 'variants.x.dagger.base'"),
    ({"variants": {"x": {"dagger": {"base": "x"}}}, "reference": "x"}, "key 'variants.x.dagger.base'"),
    ({"variants": {"a": {}, "x": {"dagger": {"base": "a"}, "steps": 9}}, "reference": "a"},
     "key 'variants.x.steps': expected one of the known keys"),
    ({"variants": {"a": {}, "x": {"dagger": {"base": "a", "rounds": 0}}}, "reference": "a"},
     "key 'variants.x.dagger.rounds'"),
])
def test_bad_study_files_name_the_key(tmp_path, change, message):
    data = yaml.safe_load(tiny_study(tmp_path).read_text())
    data.update(change)
    with pytest.raises(StudyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_study(data, "tiny.yaml")


def test_a_machine_that_keeps_only_the_archive_trains_and_flies_nothing(study_run, tmp_path):
    """The record of finished cells is what a fresh clone has: the report rebuilt from it alone is the same."""
    _, root, _ = study_run
    for variant in ("cfc_ncp", "lstm"):
        for seed in (0, 1):
            cell = root / "out" / "archive" / variant / f"seed{seed}"
            assert sorted(p.name for p in cell.iterdir()) == ["cell.json", "config.yaml", "episodes.jsonl.gz", "log.csv"]
            assert (cell / "log.csv").read_bytes() == (root / "out" / variant / f"seed{seed}" / "log.csv").read_bytes()
            flown = [row for row in load_run(root / "out" / "eval" / f"seed{seed}")[1] if row["model"] == variant]
            assert cell_flights(cell) == flown
    shutil.copytree(root / "out" / "archive", tmp_path / "archive")
    fresh = load_study(tiny_study(tmp_path, archive=str(tmp_path / "archive")))  # its store does not exist either
    done = run_study(fresh, tmp_path / "out", tmp_path / "report", stages=["train", "evaluate", "report"],
                     progress=False, log=lambda _: None)
    assert (done["trained"], done["flown"], done["recorded"]) == (0, 0, 0)
    before, after = (json.loads((path / "results.json").read_text()) for path in (root / "report", tmp_path / "report"))
    assert after["cells"] == before["cells"] and after["comparisons"] == before["comparisons"]
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert {entry["state"] for item in summary["variants"].values() for entry in item["seeds"].values()} == {"recorded"}
    assert "| cfc_ncp | (the recipe) | 2/2 |" in (tmp_path / "report" / "report.md").read_text()


def test_a_record_of_another_config_or_a_damaged_record_is_refused(study_run, tmp_path):
    _, root, _ = study_run
    shutil.copytree(root / "out" / "archive", tmp_path / "archive")
    changed = load_study(tiny_study(tmp_path, archive=str(tmp_path / "archive"),
                                    common={**TINY_TRAINING, "optim": {"lr": 1e-3}}))
    with pytest.raises(StudyError, match=r"records a run with another training config \(keys \['optim'\] differ\)"):
        recorded_cell(changed, tmp_path, "cfc_ncp", 0)
    longer = load_study(tiny_study(tmp_path, archive=str(tmp_path / "archive"),
                                   evaluation={"worlds": ["forest"], "episodes_per_seed": 2, "first_seed": 500000,
                                               "max_episode_seconds": 5.0, "camera": "small"}))
    with pytest.raises(StudyError, match="other evaluation settings \\(max_episode_seconds was 3.0, now 5.0\\)"):
        recorded_cell(longer, tmp_path, "cfc_ncp", 0)
    same = load_study(tiny_study(tmp_path, archive=str(tmp_path / "archive")))
    (tmp_path / "archive" / "lstm" / "seed1" / "cell.json").write_text('{"format": "liquid_nav.study_cell", "form')
    with pytest.raises(StudyError, match="a damaged cell record"):
        run_study(same, tmp_path / "out", stages=["report"], progress=False)
    shutil.copy(root / "out" / "archive" / "lstm" / "seed1" / "cell.json", tmp_path / "archive" / "lstm" / "seed1")
    flights = tmp_path / "archive" / "cfc_ncp" / "seed0" / "episodes.jsonl.gz"
    flights.write_bytes(flights.read_bytes()[:-9])  # cut short
    with pytest.raises(StudyError, match="episodes.jsonl.gz: a damaged cell record"):
        run_study(same, tmp_path / "out", stages=["report"], progress=False)


def test_a_cell_is_recorded_only_when_every_flight_is_in(study_run, tmp_path):
    study, root, _ = study_run
    shutil.copytree(root / "out" / "cfc_ncp" / "seed0", tmp_path / "cfc_ncp" / "seed0")
    (tmp_path / "eval" / "seed0").mkdir(parents=True)
    shutil.copy(root / "out" / "eval" / "seed0" / "run.json", tmp_path / "eval" / "seed0")
    lines = (root / "out" / "eval" / "seed0" / "episodes.jsonl").read_text().splitlines(keepends=True)
    kept = [line for line in lines if json.loads(line)["model"] != "cfc_ncp"] + \
        [line for line in lines if json.loads(line)["model"] == "cfc_ncp"][:1]
    (tmp_path / "eval" / "seed0" / "episodes.jsonl").write_text("".join(kept))
    assert record_cells(study, tmp_path) == 0 and not (tmp_path / "archive").exists()
    (tmp_path / "eval" / "seed0" / "episodes.jsonl").write_text("".join(lines))
    assert record_cells(study, tmp_path) == 1 and recorded_cell(study, tmp_path, "cfc_ncp", 0) is not None


def test_a_run_stored_before_a_config_key_existed_is_the_same_run(study_run, tmp_path):
    study, _, _ = study_run
    run = study.run_dir(tmp_path, "cfc_ncp", 0)
    run.mkdir(parents=True)
    config = study.train_config("cfc_ncp", 0).to_dict()
    del config["policy"]["motor_readout"]  # a key added after the run, at its default
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    assert run_state(study, tmp_path, "cfc_ncp", 0) == "partial"
    config["policy"]["motor_readout"] = "affine"
    (run / "config.yaml").write_text(yaml.safe_dump(config))
    with pytest.raises(StudyError, match=r"keys \['policy'\] differ"):
        run_state(study, tmp_path, "cfc_ncp", 0)


def test_a_dagger_variant_continues_a_copy_of_its_base_run_on_a_copy_of_the_store(study_run, tmp_path):
    from liquid_nav.data.store import EpisodeStore
    from liquid_nav.models.checkpoint import load_checkpoint

    study, root, _ = study_run
    out = tmp_path / "out"
    shutil.copytree(root / "out", out)
    data = yaml.safe_load(tiny_study(root).read_text())
    data["variants"].update({
        "cfc_ncp_dagger": {"dagger": {"base": "cfc_ncp", "rounds": 1, "episodes_per_round": 1, "steps_per_round": 2}},
        "cfc_ncp_control": {"dagger": {"base": "cfc_ncp", "rounds": 1, "episodes_per_round": 0, "steps_per_round": 2}}})
    dagger_study = parse_study(data, "tiny.yaml")
    shared = EpisodeStore(root / "store").episode_ids()
    base_log = (out / "cfc_ncp" / "seed0" / "log.csv").read_text()
    done = run_study(dagger_study, out, tmp_path / "report", stages=("train", "evaluate"), seeds=[0],
                     variants=["cfc_ncp_dagger", "cfc_ncp_control"], progress=False, log=lambda _: None)
    assert done["trained"] == 2 and done["recorded"] == 2
    assert EpisodeStore(root / "store").episode_ids() == shared  # the study's store is untouched
    assert (out / "cfc_ncp" / "seed0" / "log.csv").read_text() == base_log
    for variant, added in (("cfc_ncp_dagger", 1), ("cfc_ncp_control", 0)):
        run = out / variant / "seed0"
        assert load_checkpoint(run / "checkpoints" / "last" / "policy.lnav")[1]["step"] == 3 + 2
        assert yaml.safe_load((run / "config.yaml").read_text())["steps"] == 5
        assert run_state(dagger_study, out, variant, 0) == "done"
        ids = EpisodeStore(run / "store").episode_ids()
        assert sorted(set(ids) - set(shared)) == [i for i in ids if i.startswith("dagger1-")] and \
            len(ids) == len(shared) + added
        assert (run / "log.csv").read_text().startswith(base_log.rsplit("\n", 2)[0])  # the base run's rows first
        flights = cell_flights(recorded_cell(dagger_study, out, variant, 0))
        assert sorted(row["seed"] for row in flights) == [500000, 500001]  # paired with the base variant's seeds
    again = run_study(dagger_study, out, tmp_path / "report", stages=("train", "evaluate"), seeds=[0],
                      progress=False, log=lambda _: None)
    assert again["trained"] == 0 and again["flown"] == 0
